"""In-process harness for the service: the app with its lifespan, an httpx client, its log lines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from service.app import create_app
from service.cache import ProductCache
from service.logs import LogSink
from service.redis_link import RedisLink
from service.settings import Settings
from tests.helpers import RedisServer

FAST = {"DB_DELAY_MS": "100", "REDIS_TIMEOUT_MS": "100", "BREAKER_PROBE_MS": "100"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings_for(tmp_path: Path, redis: RedisServer | None = None, /, **env: str | int) -> Settings:
    """Settings from an environment like the container's, with small delays."""
    environ = {**FAST, "DATABASE_PATH": str(tmp_path / "products.sqlite3")}
    if redis is not None:
        environ.update(REDIS_ENABLED="true", REDIS_HOST=redis.host, REDIS_PORT=str(redis.port))
    environ.update({k: str(v) for k, v in env.items()})
    return Settings.from_env(environ)


@dataclass
class Harness:
    app: Starlette
    client: httpx.AsyncClient
    sink: LogSink
    lines: list[str] = field(default_factory=list)

    @property
    def cache(self) -> ProductCache:
        cache: ProductCache = self.app.state.cache
        return cache

    @property
    def link(self) -> RedisLink:
        link: RedisLink = self.app.state.link
        return link

    def log(self) -> str:
        self.sink.flush()
        return "".join(self.lines)

    async def products(self) -> httpx.Response:
        response = await self.client.get("/api/products")
        assert response.status_code == 200, response.text
        return response

    async def source(self) -> str:
        source: str = (await self.products()).json()["source"]
        return source

    async def metric(self, name: str) -> float:
        """A sample from /metrics, e.g. `products_cache_hits_total{layer="near"}`."""
        text = (await self.client.get("/metrics")).text
        for line in text.splitlines():
            key, _, value = line.rpartition(" ")
            if key == name:
                return float(value)
        raise AssertionError(f"{name} not in /metrics:\n{text}")

    async def wait_for(
        self, check: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = ""
    ) -> float:
        """Poll `check` until it is true; return the seconds it took."""
        started = time.monotonic()
        while not await check():
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not true after {timeout}s: {what}\n{self.log()}")
            await asyncio.sleep(0.02)
        return time.monotonic() - started


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Harness]:
    lines: list[str] = []
    token = settings.redis_auth_token
    sink = LogSink(settings.log_format, lines.append, secrets=[str(token)] if token else ())
    app = create_app(settings, log=sink)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service") as client,
    ):
        yield Harness(app, client, sink, lines)


async def admin(redis: RedisServer, *args: Any) -> Any:
    """Run one command on our redis-server outside the event loop's way."""
    return await asyncio.to_thread(lambda: redis.client().execute_command(*args))
