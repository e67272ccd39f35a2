"""Every Redis failure the issue lists, against a real redis-server: never a 5xx, never a hang."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest

from tests.helpers import RedisServer, free_port
from tests.service.conftest import Harness, admin, running, settings_for

pytestmark = pytest.mark.anyio

SEED_DATA = [{"id": 1, "name": "Laptop"}, {"id": 2, "name": "Phone"}]
ERROR = "⚠️ Redis error (ignored): "
DB, TIMEOUT = 0.2, 0.1  # DB_DELAY_MS=200, REDIS_TIMEOUT_MS=100 below
SLACK = 0.4  # a busy 2-core machine; the bounds tested are about hanging, not speed


def slow_db(tmp_path: Path, redis: RedisServer, **env: str | int) -> dict[str, str | int]:
    return {"DB_DELAY_MS": 200, "REDIS_TIMEOUT_MS": 100, "NEAR_CACHE_TTL_MS": 0, **env}


async def timed(h: Harness) -> tuple[float, str, str]:
    started = time.monotonic()
    response = await h.products()
    return time.monotonic() - started, response.json()["source"], response.headers["x-cache"]


async def until_source(h: Harness, wanted: str, timeout: float = 5.0) -> float:
    async def check() -> bool:
        return await h.source() == wanted

    return await h.wait_for(check, timeout, f"source {wanted}")


async def test_starts_without_redis_and_uses_it_when_it_appears(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)  # its port is free: nothing listens yet
    async with running(settings_for(tmp_path, redis)) as h:
        response = await h.products()
        assert response.json()["source"] == "db" and response.headers["x-cache"] == "BYPASS"
        health = await h.client.get("/health")
        assert health.status_code == 200
        assert health.json()["redis"]["state"] == "unavailable"
        log = h.log()
        assert f"{ERROR}connect: Error 111 connecting to 127.0.0.1:{redis.port}." in log
        assert " WARNING ⚠️ Redis unavailable at startup\n" in log
        assert "✅ Redis ready" not in log

        redis.start()
        try:
            await until_source(h, "cache")
            log = h.log()
            assert log.index("⚠️ Redis unavailable at startup") < log.index("✅ Redis ready")
            assert (await h.client.get("/health")).json()["redis"]["state"] == "ready"
        finally:
            redis.stop()


async def test_frozen_redis_costs_one_timeout_then_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(
        settings_for(tmp_path, redis_server, **slow_db(tmp_path, redis_server))
    ) as h:
        assert await h.source() == "db"
        assert await h.source() == "cache"
        redis_server.freeze()
        try:
            started = time.monotonic()
            health = await h.client.get("/health")  # never touches Redis
            assert health.status_code == 200 and time.monotonic() - started < SLACK

            elapsed, source, x_cache = await timed(h)
            assert (source, x_cache) == ("db", "BYPASS")
            assert elapsed <= DB + 2 * TIMEOUT + SLACK
            assert await h.metric('redis_errors_total{kind="timeout"}') == 1
            assert await h.metric("redis_breaker_state") == 1

            for _ in range(3):  # breaker open: Redis is not tried again, the timeout not paid
                elapsed, source, x_cache = await timed(h)
                assert (source, x_cache) == ("db", "BYPASS") and elapsed < DB + SLACK
            assert await h.metric('redis_errors_total{kind="timeout"}') == 1
            body = (await h.client.get("/health")).json()
            assert body["redis"]["breaker"] == "open" and body["redis"]["state"] == "unavailable"
            assert h.log().count(ERROR) == 1  # once per change of state, not per request
        finally:
            redis_server.thaw()
        await until_source(h, "cache")
        assert h.log().count("✅ Redis ready") == 2
        assert await h.metric("redis_breaker_state") == 0


async def test_a_stalled_write_is_bounded_too(tmp_path: Path, redis_server: RedisServer) -> None:
    """Reads answer but writes hang (CLIENT PAUSE WRITE, as during a failover): the fill's SET
    and a POST's DEL are each cut at REDIS_TIMEOUT_MS."""
    async with running(
        settings_for(tmp_path, redis_server, **slow_db(tmp_path, redis_server))
    ) as h:
        await admin(redis_server, "CLIENT", "PAUSE", "5000", "WRITE")
        try:
            elapsed, source, x_cache = await timed(h)  # GET answers, the SET hangs
            assert (source, x_cache) == ("db", "MISS")
            assert elapsed <= DB + 2 * TIMEOUT + SLACK
            assert await h.metric('redis_errors_total{kind="timeout"}') == 1
            assert ERROR + "SET: timed out after 100 ms" in h.log()

            started = time.monotonic()
            created = await h.client.post("/api/products", json={"name": "Tablet"})
            assert created.status_code == 201 and time.monotonic() - started < TIMEOUT + SLACK
        finally:
            await admin(redis_server, "CLIENT", "UNPAUSE")
        await until_source(h, "cache")
        assert len((await h.products()).json()["data"]) == 3


async def test_killed_and_restarted_redis_is_used_again(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(
        settings_for(tmp_path, redis_server, **slow_db(tmp_path, redis_server))
    ) as h:
        await h.products()
        assert await h.source() == "cache"
        redis_server.stop()
        for _ in range(3):
            elapsed, source, _x = await timed(h)
            assert source == "db" and elapsed < DB + 2 * TIMEOUT + SLACK
        redis_server.start()  # same port, empty
        await until_source(h, "cache")
        assert h.log().count("✅ Redis ready") == 2


@pytest.mark.parametrize(
    "garbage",
    [b"not json", b'{"id": 1}', b"[1, 2]", b'[{"id": "1", "name": "x"}]',
     b'[{"id": true, "name": "x"}]', b'[{"id": 1, "name": "x", "admin": true}]', b"\xff\xfe"],
)  # fmt: skip
async def test_a_foreign_cached_value_is_a_miss_and_is_replaced(
    tmp_path: Path, redis_server: RedisServer, garbage: bytes
) -> None:
    redis_server.client().set("products:all", garbage)
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=0)) as h:
        response = await h.products()
        assert response.json() == {"source": "db", "data": SEED_DATA}
        assert response.headers["x-cache"] == "MISS"
        assert json.loads(redis_server.client().get("products:all") or b"") == SEED_DATA
        assert await h.source() == "cache"
        assert await h.metric("products_cache_invalid_values_total") == 1
        assert "cached value at products:all is not a product list" in h.log()


async def test_out_of_memory_on_write_never_fails_a_request(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=0)) as h:
        await admin(redis_server, "CONFIG", "SET", "maxmemory-policy", "noeviction")
        await admin(redis_server, "CONFIG", "SET", "maxmemory", "1")
        for _ in range(3):
            response = await h.products()
            assert (response.json()["source"], response.headers["x-cache"]) == ("db", "MISS")
        created = await h.client.post("/api/products", json={"name": "Tablet"})
        assert created.status_code == 201
        assert await h.metric('redis_errors_total{kind="oom"}') >= 3
        assert await h.metric("redis_breaker_state") == 0  # Redis answers: reads still use it
        oom_lines = [
            line for line in h.log().splitlines() if "not allowed when used memory" in line
        ]
        assert len(oom_lines) == 2  # the fill's SET once (not per request), the write's INCR
        assert ERROR + "SET: " in oom_lines[0] and ERROR + "INCR: " in oom_lines[1]

        await admin(redis_server, "CONFIG", "SET", "maxmemory", "0")
        assert (await h.products()).json()["data"][-1] == {"id": 3, "name": "Tablet"}
        assert await h.source() == "cache"


async def test_read_only_replica_never_fails_a_request(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=0)) as h:
        await h.products()
        assert await h.source() == "cache"
        # a primary demoted to a replica (failover): reads work, writes are refused
        await admin(redis_server, "REPLICAOF", "127.0.0.1", str(free_port()))
        created = await h.client.post("/api/products", json={"name": "Tablet"})
        assert created.status_code == 201
        log = h.log()
        assert ERROR + "invalidate: You can't write against a read only replica." in log
        assert "⚠️ Redis skipped until invalidate succeeds: it holds a list older" in log
        assert "POST /api/products 201 id=3: cache invalidation pending until Redis is back" in log
        # the stale list could not be deleted: it is not served, the database is
        response = await h.products()
        assert response.json()["source"] == "db" and len(response.json()["data"]) == 3
        assert response.headers["x-cache"] == "BYPASS"
        assert await h.metric('redis_errors_total{kind="readonly"}') >= 1
        assert (await h.client.get("/health")).json()["redis"]["state"] == "unavailable"

        await admin(redis_server, "REPLICAOF", "NO", "ONE")  # promoted again
        await until_source(h, "cache")
        assert len((await h.products()).json()["data"]) == 3
        assert h.log().count("✅ Redis ready") == 2


async def test_a_read_only_replica_only_refusing_fills_keeps_reads(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=0)) as h:
        await admin(redis_server, "REPLICAOF", "127.0.0.1", str(free_port()))
        for _ in range(3):
            assert (await h.products()).json()["source"] == "db"
        assert h.log().count(ERROR) == 1
        assert ERROR + "SET: You can't write against a read only replica." in h.log()
        await admin(redis_server, "REPLICAOF", "NO", "ONE")
        await h.products()
        assert await h.source() == "cache"


async def test_a_user_without_write_permission_keeps_reads_and_logs_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """An ACL user that may read but not run the fill's script (e.g. a read-only RBAC user)."""
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=0)) as h:
        await admin(redis_server, "ACL", "SETUSER", "default", "-evalsha", "-eval")
        for _ in range(3):
            response = await h.products()
            assert (response.json()["source"], response.headers["x-cache"]) == ("db", "MISS")
            await asyncio.sleep(0.25)  # longer than BREAKER_PROBE_MS: a flapping breaker shows
        assert await h.metric('redis_errors_total{kind="noperm"}') == 3
        assert await h.metric("redis_breaker_state") == 0  # Redis answers reads: keep using it
        log = h.log()
        assert log.count(ERROR) == 1, log
        assert ERROR + "SET: this user has no permissions to run the 'evalsha' command" in log
        assert log.count("✅ Redis ready") == 1, log

        await admin(redis_server, "ACL", "SETUSER", "default", "+@all")
        await h.products()
        assert await h.source() == "cache"


async def test_auth_errors_never_fail_a_request(tmp_path: Path, redis_server: RedisServer) -> None:
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=0)) as h:
        await h.products()
        assert await h.source() == "cache"
        keeper = redis_server.client()  # stays authenticated: it unlocks the server later
        await asyncio.to_thread(keeper.config_set, "requirepass", "now-required")
        for kind in ("normal", "pubsub"):  # CLIENT KILL spares the calling connection (SKIPME)
            await asyncio.to_thread(keeper.execute_command, "CLIENT", "KILL", "TYPE", kind)
        for _ in range(3):
            response = await h.products()
            assert response.status_code == 200 and response.json()["source"] == "db"
        assert await h.metric('redis_errors_total{kind="auth"}') >= 1
        pattern = re.escape(ERROR) + r"(GET|SUBSCRIBE): Authentication required\.\n"
        assert re.search(pattern, h.log()), h.log()
        assert (await h.client.get("/health")).json()["redis"]["state"] == "unavailable"

        await asyncio.to_thread(keeper.config_set, "requirepass", "")
        await until_source(h, "cache")


async def test_the_token_is_used_and_never_shown(tmp_path: Path, redis_server: RedisServer) -> None:
    token = "tok-Zq81-secret"
    await admin(redis_server, "CONFIG", "SET", "requirepass", token)
    settings = settings_for(tmp_path, redis_server, REDIS_AUTH_TOKEN=token)
    try:
        async with running(settings) as h:
            await h.products()
            assert await h.source() == "cache"
            shown = h.log() + (await h.client.get("/health")).text
            shown += (await h.client.get("/metrics")).text
        assert token not in shown
        wrong = settings_for(tmp_path, redis_server, REDIS_AUTH_TOKEN="tok-wrong-77")
        async with running(wrong) as h:
            assert (await h.products()).json()["source"] == "db"
            assert "⚠️ Redis unavailable at startup" in h.log()
            assert "tok-wrong-77" not in h.log() and token not in h.log()
    finally:
        await asyncio.to_thread(
            lambda: (
                __import__("redis")
                .Redis(host=redis_server.host, port=redis_server.port, password=token)
                .config_set("requirepass", "")
            )
        )


async def test_fifty_cold_requests_make_one_database_read(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server, DB_DELAY_MS=300)) as h:
        responses = await asyncio.gather(*(h.products() for _ in range(50)))
        assert {r.json()["source"] for r in responses} == {"db"}
        assert await h.metric("products_db_reads_total") == 1
        assert await h.metric("products_coalesced_requests_total") == 49


async def test_fifty_cold_requests_make_one_database_read_while_redis_is_down(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = settings_for(tmp_path, redis_server, DB_DELAY_MS=300, NEAR_CACHE_TTL_MS=0)
    async with running(settings) as h:
        redis_server.stop()
        await h.products()  # opens the breaker
        before = await h.metric("products_db_reads_total")
        responses = await asyncio.gather(*(h.products() for _ in range(50)))
        assert {r.json()["source"] for r in responses} == {"db"}
        assert await h.metric("products_db_reads_total") == before + 1


async def test_fifty_requests_while_redis_freezes_make_one_read_and_none_hangs(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(
        settings_for(tmp_path, redis_server, **slow_db(tmp_path, redis_server))
    ) as h:
        redis_server.freeze()
        try:
            started = time.monotonic()
            responses = await asyncio.gather(*(h.products() for _ in range(50)))
            elapsed = time.monotonic() - started
        finally:
            redis_server.thaw()
        assert {r.status_code for r in responses} == {200}
        assert elapsed <= DB + 2 * TIMEOUT + SLACK
        assert await h.metric("products_db_reads_total") == 1


async def test_a_write_while_redis_is_away_deletes_the_stale_list_when_it_returns(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(
        settings_for(tmp_path, redis_server, **slow_db(tmp_path, redis_server))
    ) as h:
        await h.products()
        assert await h.source() == "cache"
        redis_server.freeze()
        try:
            started = time.monotonic()
            created = await h.client.post("/api/products", json={"name": "Tablet"})
            assert created.status_code == 201 and time.monotonic() - started < TIMEOUT + SLACK
            assert (await h.client.get("/health")).json()["cache"]["pending_invalidation"]
            response = await h.products()
            assert response.json()["source"] == "db" and len(response.json()["data"]) == 3
        finally:
            redis_server.thaw()
        await until_source(h, "cache")
        assert len((await h.products()).json()["data"]) == 3
        assert not (await h.client.get("/health")).json()["cache"]["pending_invalidation"]


async def test_a_known_outage_drops_the_near_copy(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=30_000)) as h:
        await h.products()
        assert (await h.products()).headers["server-timing"].startswith('cache;desc="near"')
        redis_server.stop()  # the pub/sub connection sees it close: no request needed

        async def noticed() -> bool:
            health = await h.client.get("/health")
            return bool(health.json()["redis"]["state"] == "unavailable")

        await h.wait_for(noticed, timeout=5.0, what="the breaker opens")
        response = await h.products()
        assert (response.json()["source"], response.headers["x-cache"]) == ("db", "BYPASS")


async def test_an_unexpected_client_error_is_a_skip_not_a_500(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Whatever a Redis call raises (a client bug, an answer of an unexpected shape from a
    Redis-compatible proxy), the request goes on without the cache."""
    from service.redis_link import RedisSkipped

    async def odd_answer(client: object) -> None:
        raise TypeError("an answer of an unexpected shape")

    async with running(settings_for(tmp_path, redis_server)) as h:
        with pytest.raises(RedisSkipped):
            await h.link.call("GET", odd_answer)
        assert await h.metric('redis_errors_total{kind="response"}') == 1
        assert ERROR + "GET: an answer of an unexpected shape" in h.log()
        assert await h.metric("redis_breaker_state") == 0
        assert (await h.products()).status_code == 200
