"""The service with in-transit encryption and an AUTH token (issue 13): REDIS_TLS verifies the
node's certificate against REDIS_TLS_CA_FILE or the system's store, REDIS_AUTH_TOKEN
authenticates, and a certificate it does not trust, a missing or a wrong token are Redis errors in
the log, the token never.

The node is a real redis-server whose default user has the token as its password; TLS is done in
front of it by the sandbox's gate (rexctl/sandbox/proxy.py, the same code a rehearsal runs), on a
thread of its own, with a certificate from the sandbox's CA (rexctl/sandbox/certs.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rexctl.sandbox import certs
from rexctl.sandbox.proxy import Gate, Link, NodeAuth, Verdict, server_context
from service.settings import Settings, SettingsError
from tests.helpers import RedisServer
from tests.service.conftest import Harness, running, settings_for

pytestmark = pytest.mark.anyio

TOKEN = "Service-token-0123456789!&#$^<>-xyz"
ERROR = "⚠️ Redis error (ignored): "


@dataclass
class TlsNode:
    port: int  # TLS in front of the redis-server
    ca: Path
    redis: RedisServer


@pytest.fixture
def tls_node(tmp_path: Path, redis_server: RedisServer) -> Iterator[TlsNode]:
    made = certs.make(tmp_path / "certs")
    redis_server.client().execute_command(
        "ACL", "SETUSER", "default", "on", "resetpass", f">{TOKEN}", "~*", "&*", "+@all"
    )
    gate = Gate(
        redis_server.port,
        lambda link, port, established: Verdict.OPEN,
        tls=server_context(str(made.cert), str(made.key)),
        transit_mode=lambda group_id: "required",
        node_auth=lambda: NodeAuth((TOKEN,), open=False),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        link = Link("task", "cache", "subnet", [], 6379)
        port = asyncio.run_coroutine_threadsafe(gate.open(link), loop).result(10)
        yield TlsNode(port, made.ca, redis_server)
    finally:
        asyncio.run_coroutine_threadsafe(gate.close_all(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def secure(tmp_path: Path, node: TlsNode, **env: str) -> Settings:
    return settings_for(
        tmp_path,
        REDIS_ENABLED="true",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(node.port),
        REDIS_TLS="true",
        REDIS_TIMEOUT_MS="3000",  # a TLS handshake on a busy machine; these tests are not timed
        **env,
    )


async def test_tls_with_the_ca_file_and_the_token_uses_the_cache(
    tmp_path: Path, tls_node: TlsNode
) -> None:
    settings = secure(tmp_path, tls_node, REDIS_TLS_CA_FILE=str(tls_node.ca),
                      REDIS_AUTH_TOKEN=TOKEN)  # fmt: skip
    async with running(settings) as h:
        assert await h.source() == "db"
        await h.wait_for(lambda: _from_cache(h), 5, "a cache hit")
        log = h.log()
        assert " INFO ✅ Redis ready (TLS, AUTH)\n" in log
        assert TOKEN not in log
        assert (await h.client.get("/health")).json()["redis"]["state"] == "ready"


async def _from_cache(h: Harness) -> bool:
    return await h.source() == "cache"


async def test_the_system_store_is_used_when_no_ca_file_is_given(
    tmp_path: Path, tls_node: TlsNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a task does in the sandbox (and on AWS with Amazon's CAs): no REDIS_TLS_CA_FILE, the
    system's store, which SSL_CERT_FILE names."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_node.ca))
    async with running(secure(tmp_path, tls_node, REDIS_AUTH_TOKEN=TOKEN)) as h:
        assert await h.source() == "db"
        await h.wait_for(lambda: _from_cache(h), 5, "a cache hit")
        assert "✅ Redis ready (TLS, AUTH)" in h.log()


async def test_a_node_whose_certificate_is_not_trusted_is_a_redis_error(
    tmp_path: Path, tls_node: TlsNode
) -> None:
    other = certs.make(tmp_path / "other-ca")  # a CA that did not sign the node's certificate
    settings = secure(tmp_path, tls_node, REDIS_TLS_CA_FILE=str(other.ca), REDIS_AUTH_TOKEN=TOKEN)
    async with running(settings) as h:
        response = await h.products()
        assert response.json()["source"] == "db" and response.headers["x-cache"] == "BYPASS"
        log = h.log()
        assert f"{ERROR}connect: " in log and "CERTIFICATE_VERIFY_FAILED" in log
        assert "✅ Redis ready" not in log
        assert (await h.client.get("/health")).json()["redis"]["state"] == "unavailable"


@pytest.mark.parametrize(
    ("token", "said"),
    [("", "Authentication required"), ("Wrong-token-0123456789", "invalid username-password")],
    ids=["missing", "wrong"],
)
async def test_a_missing_or_wrong_token_is_a_redis_error_that_never_shows_it(
    tmp_path: Path, tls_node: TlsNode, token: str, said: str
) -> None:
    env = {"REDIS_TLS_CA_FILE": str(tls_node.ca)} | ({"REDIS_AUTH_TOKEN": token} if token else {})
    async with running(secure(tmp_path, tls_node, **env)) as h:
        response = await h.products()
        assert response.status_code == 200 and response.json()["source"] == "db"
        log = h.log()
        assert ERROR in log and said in log, log
        assert "✅ Redis ready" not in log
        if token:
            assert token not in log
            assert token not in (await h.client.get("/health")).text
        assert await h.metric('redis_errors_total{kind="auth"}') >= 1


def test_a_ca_file_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"REDIS_TLS_CA_FILE": str(tmp_path / "missing.pem")})
    assert str(err.value).startswith("REDIS_TLS_CA_FILE=")
    assert "no such file" in str(err.value)


def test_the_ca_file_is_shown_the_token_is_not(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings.from_env({"REDIS_TLS": "true", "REDIS_TLS_CA_FILE": str(ca),
                           "REDIS_AUTH_TOKEN": TOKEN})  # fmt: skip
    shown = s.describe()
    assert shown["redis_tls_ca_file"] == str(ca) and shown["redis_auth_token"] == "***"
    assert TOKEN not in repr(s) and TOKEN not in str(shown)
