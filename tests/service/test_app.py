"""The API contract, headers, /health, /metrics and log lines, against a real redis-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from tests.helpers import RedisServer
from tests.service.conftest import running, settings_for

pytestmark = pytest.mark.anyio

SEED_DATA = [{"id": 1, "name": "Laptop"}, {"id": 2, "name": "Phone"}]


async def test_first_answer_from_db_then_from_cache(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server)) as h:
        first = await h.products()
        assert first.json() == {"source": "db", "data": SEED_DATA}
        assert first.headers["x-cache"] == "MISS"
        assert first.headers["content-type"] == "application/json"
        timing = first.headers["server-timing"]
        assert timing.startswith('cache;desc="redis";dur=') and ", db;dur=1" in timing

        second = await h.products()
        assert second.json() == {"source": "cache", "data": SEED_DATA}
        assert second.headers["x-cache"] == "HIT"
        assert second.headers["server-timing"].startswith('cache;desc="near";dur=')
        # what Redis holds is the seed's format: the bare list
        stored = redis_server.client().get("products:all")
        assert stored is not None and json.loads(stored) == SEED_DATA

        log = h.log()
        assert 'GET /api/products 200 source: "db" (miss)' in log
        assert 'GET /api/products 200 source: "cache" (near)' in log
        assert " INFO ✅ Redis ready\n" in log


async def test_redis_hit_when_the_near_cache_is_off(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=0)) as h:
        assert await h.source() == "db"
        response = await h.products()
        assert response.json()["source"] == "cache"
        assert response.headers["server-timing"].startswith('cache;desc="redis";dur=')
        assert await h.metric('products_cache_hits_total{layer="redis"}') == 1
        assert await h.metric('products_cache_hits_total{layer="near"}') == 0


async def test_redis_disabled_always_reads_the_database(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path, REDIS_ENABLED="True")) as h:
        for _ in range(2):
            response = await h.products()
            assert response.json()["source"] == "db"
            assert response.headers["x-cache"] == "BYPASS"
            assert response.headers["server-timing"].startswith("db;dur=")
        health = (await h.client.get("/health")).json()
        assert health["redis"]["state"] == "disabled"
        log = h.log()
        assert " INFO Redis disabled via env\n" in log
        assert "REDIS_ENABLED is 'True', not exactly \"true\": Redis disabled via env" in log
        assert await h.metric("products_db_reads_total") == 2


async def test_post_adds_a_product_and_invalidates_the_list(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server)) as h:
        await h.products()
        assert await h.source() == "cache"
        created = await h.client.post("/api/products", json={"name": "  Tablet "})
        assert created.status_code == 201, created.text
        assert created.json() == {"id": 3, "name": "Tablet"}
        after = await h.products()
        assert after.json() == {"source": "db", "data": [*SEED_DATA, {"id": 3, "name": "Tablet"}]}
        assert await h.source() == "cache"
        assert await h.metric("products_writes_total") == 1
        assert "POST /api/products 201 id=3: cache invalidation done" in h.log()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "body is not valid JSON: Expecting property name enclosed in double "
                            "quotes: line 1 column 2 (char 1)"),
        (b"", 400, "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b'["Tablet"]', 422, 'body must be a JSON object like {"name": "Tablet"}'),
        (b'{"name": "Tablet", "price": 3}', 422, "unknown field(s): price; only name is accepted"),
        (b'{"id": 9, "name": "Tablet"}', 422, "unknown field(s): id; only name is accepted"),
        (b"{}", 422, "name is required"),
        (b'{"name": 42}', 422, "name must be a string"),
        (b'{"name": "   "}', 422, "name must not be empty"),
        (b'{"name": "' + b"x" * 201 + b'"}', 422, "name must be at most 200 characters"),
        (b'{"name": "a\\u0000b"}', 422, "name must not contain control characters (U+0000)"),
        (b'{"name": "' + b"x" * 20_000 + b'"}', 413, "body larger than 16384 bytes"),
    ],
)  # fmt: skip
async def test_post_refuses_bad_bodies(
    tmp_path: Path, body: bytes, status: int, error: str
) -> None:
    async with running(settings_for(tmp_path)) as h:
        response = await h.client.post(
            "/api/products", content=body, headers={"content-type": "application/json"}
        )
        assert (response.status_code, response.json()) == (status, {"error": error})
        assert (await h.products()).json()["data"] == SEED_DATA


async def test_unknown_routes_and_methods_answer_json(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path)) as h:
        missing = await h.client.get("/api/nothing")
        assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
        wrong = await h.client.delete("/api/products")
        assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})


async def test_a_200_character_name_is_accepted(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path)) as h:
        response = await h.client.post("/api/products", content=json.dumps({"name": "é" * 200}))
        assert response.status_code == 201 and response.json()["name"] == "é" * 200


async def test_health_reports_the_known_state(tmp_path: Path, redis_server: RedisServer) -> None:
    async with running(settings_for(tmp_path, redis_server)) as h:
        response = await h.client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["redis"]["state"] == "ready" and body["redis"]["breaker"] == "closed"
        assert body["redis"]["last_error"] is None
        assert body["cache"]["near_cache_ttl_ms"] == 1000


async def test_metrics_expose_what_the_benchmark_reads(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server)) as h:
        await h.products()
        await h.products()
        response = await h.client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert await h.metric("products_db_reads_total") == 1
        assert await h.metric('products_requests_total{source="db"}') == 1
        assert await h.metric('products_requests_total{source="cache"}') == 1
        assert await h.metric('products_cache_hits_total{layer="near"}') == 1
        assert await h.metric("products_cache_misses_total") == 1
        assert await h.metric('redis_errors_total{kind="timeout"}') == 0
        assert await h.metric("redis_breaker_state") == 0
        assert await h.metric('products_request_duration_seconds_count{source="cache"}') == 1
        assert (
            await h.metric('products_request_duration_seconds_bucket{le="+Inf",source="db"}') == 1
        )
        assert "# TYPE products_request_duration_seconds histogram" in response.text


async def test_json_logs_carry_the_same_message(tmp_path: Path, redis_server: RedisServer) -> None:
    async with running(settings_for(tmp_path, redis_server, LOG_FORMAT="json")) as h:
        await h.products()
        await h.products()
        records = [json.loads(line) for line in h.log().splitlines()]
    messages = [r["msg"] for r in records]
    assert "✅ Redis ready" in messages
    requests = [r for r in records if r.get("path") == "/api/products"]
    assert [r["source"] for r in requests] == ["db", "cache"]
    assert 'source: "cache"' in requests[1]["msg"]
    assert all({"ts", "level", "msg"} <= r.keys() for r in records)


async def test_a_busy_list_is_refreshed_before_its_redis_ttl_runs_out(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = settings_for(tmp_path, redis_server, CACHE_TTL_SECONDS=2, NEAR_CACHE_TTL_MS=0)
    async with running(settings) as h:
        assert await h.source() == "db"
        await asyncio.sleep(1.7)  # under 400 ms (a fifth of the TTL) left
        assert await h.source() == "cache"  # the reader does not wait for the refresh

        async def refreshed() -> bool:
            return bool(redis_server.client().pttl("products:all") > 1000)

        await h.wait_for(refreshed, timeout=3.0, what="a background refresh")
        assert await h.metric("products_db_reads_total") == 2
        assert await h.metric("products_cache_refreshes_total") == 1
        assert await h.source() == "cache"


async def test_by_default_the_app_logs_to_stdout(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings_for(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            assert (await client.get("/api/products")).status_code == 200
    out = capfd.readouterr().out
    assert "Redis disabled via env" in out and 'source: "db" (bypass)' in out


async def test_a_chunked_body_is_cut_at_the_limit_not_read_to_the_end(tmp_path: Path) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 16 MB if nobody stops reading
            sent += 1
            yield b" " * 16_384

    async with running(settings_for(tmp_path)) as h:
        response = await h.client.post("/api/products", content=chunks())
        assert (response.status_code, response.json()) == (
            413,
            {"error": "body larger than 16384 bytes"},
        )
        assert sent <= 3
