"""Writes reach every process's near cache in bounded time, and never let an old list back in.

Two apps built in one test stand for two service processes behind one load balancer: they share
the SQLite file and the redis-server, nothing else. (test_process.py does it with real processes.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.helpers import RedisServer
from tests.service.conftest import running, settings_for

pytestmark = pytest.mark.anyio

SLACK = 0.4


async def names(h: object) -> list[str]:
    response = await h.products()  # type: ignore[attr-defined]
    return [p["name"] for p in response.json()["data"]]


async def test_pubsub_drops_the_other_process_copy_at_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=30_000)
    async with running(settings) as a, running(settings) as b:
        await b.products()
        assert (await b.products()).headers["server-timing"].startswith('cache;desc="near"')
        assert (await a.client.post("/api/products", json={"name": "Tablet"})).status_code == 201

        async def b_sees_it() -> bool:
            return "Tablet" in await names(b)

        # far below the 30 s near TTL: only the pub/sub message can have done it
        assert await b.wait_for(b_sees_it, timeout=2.0, what="B serves the new list") < 1.0
        assert await b.metric('products_near_cache_invalidations_total{origin="pubsub"}') >= 1


async def test_without_pubsub_the_near_ttl_bounds_a_stale_copy(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = settings_for(tmp_path, redis_server, NEAR_CACHE_TTL_MS=500)
    async with running(settings) as a, running(settings) as b:
        await b.cache.close()  # B's pub/sub listener is gone: only the TTL is left
        await b.products()
        await b.products()  # B's near copy, filled from a Redis hit just now
        assert (await a.client.post("/api/products", json={"name": "Tablet"})).status_code == 201
        posted = time.monotonic()
        stale = await b.products()
        assert stale.headers["x-cache"] == "HIT" and len(stale.json()["data"]) == 2

        async def b_sees_it() -> bool:
            return "Tablet" in await names(b)

        await b.wait_for(b_sees_it, timeout=3.0, what="B serves the new list")
        assert time.monotonic() - posted <= 0.5 + SLACK


async def test_a_slow_read_that_began_before_a_write_does_not_put_the_old_list_back(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    slow = settings_for(tmp_path, redis_server, DB_DELAY_MS=600, NEAR_CACHE_TTL_MS=0)
    fast = settings_for(tmp_path, redis_server, DB_DELAY_MS=0, NEAR_CACHE_TTL_MS=0)
    async with running(slow) as a, running(fast) as b:
        cold = asyncio.create_task(a.products())
        await asyncio.sleep(0.2)  # A has read the two-product list and is "slow" now
        assert (await b.client.post("/api/products", json={"name": "Tablet"})).status_code == 201
        old = await cold
        assert len(old.json()["data"]) == 2  # it began before the write: fine to answer
        # ...but it must not be stored: the write's DEL would be undone for CACHE_TTL_SECONDS
        assert redis_server.client().get("products:all") is None
        assert "Tablet" in await names(a) and "Tablet" in await names(b)


async def test_a_request_after_a_write_does_not_join_an_older_lookup(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running(settings_for(tmp_path, redis_server, DB_DELAY_MS=400)) as h:
        cold = asyncio.create_task(h.products())
        await asyncio.sleep(0.1)
        assert (await h.client.post("/api/products", json={"name": "Tablet"})).status_code == 201
        assert "Tablet" in await names(h)  # a fresh lookup, not the one under way
        assert len((await cold).json()["data"]) == 2
        assert await h.metric("products_db_reads_total") == 2
        assert "Tablet" in await names(h)
