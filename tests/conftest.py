"""Shared fixtures: fake AWS credentials, our own redis-server, a moto server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RedisServer


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test ever talks to real AWS: fake credentials, no config files, a fixed region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                 "REXCTL_DEBUG", "REXCTL_SANDBOX", "REXCTL_CONFIG"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def aws_refuses_what_aws_refuses(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every boto3 client any test creates checks its requests against `rexctl.aws.rules`, so a
    test that sends what AWS would refuse fails whatever moto (or a Stubber) says. The answer is
    AWS's: a ClientError with the code AWS documents. `@pytest.mark.moto_only` opts out, for the
    few tests that show what moto alone accepts."""
    if request.node.get_closest_marker("moto_only"):
        return
    from botocore.client import ClientCreator

    from rexctl.aws import rules

    create_client = ClientCreator.create_client

    def checked(self: ClientCreator, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, *args, **kwargs)
        rules.install(client)
        return client

    monkeypatch.setattr(ClientCreator, "create_client", checked)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
