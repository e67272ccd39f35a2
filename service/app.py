"""The products API: routes and lifespan.

    GET  /api/products   {"source": "cache" | "db", "data": [...]}, X-Cache and Server-Timing
    POST /api/products   {"name": "..."} -> 201 {"id": ..., "name": ...}; invalidates the cache;
                         4xx for any other body (validation.py), 503 + Retry-After when the
                         database stays locked longer than DB_WRITE_TIMEOUT_MS
    GET  /health         200 while the process can serve; reports the Redis state it already knows
    GET  /metrics        Prometheus text

The cache-hit path does no JSON encoding, no Redis call (near hit), adds no middleware: it copies
ready-made bytes into a response, adds to a few ints and appends one log line to a buffer.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .cache import Answer, ProductCache
from .logs import LogSink
from .metrics import CONTENT_TYPE, Metrics
from .redis_link import RedisLink
from .settings import Settings
from .store import ProductStore, StoreBusy
from .validation import MAX_BODY_BYTES, InvalidProduct, check_content_type, parse_new_product

JSON = b"application/json"
X_CACHE = {value: value.encode() for value in ("HIT", "MISS", "BYPASS")}


class ProductList:
    """GET /api/products as a bare ASGI app: the hottest route skips Request and Response.

    Starlette mounts a callable object (not a function) as an ASGI app, without the
    request/response wrapping a function endpoint gets.
    """

    def __init__(
        self, cache: ProductCache, metrics: Metrics, log: LogSink, retry_after: bytes = b"1"
    ) -> None:
        self.cache = cache
        self.retry_after = retry_after
        self.requests = metrics.requests
        self.hits = metrics.hits
        self.latency = metrics.latency
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        answer = self.cache.near_hit()
        if answer is None:
            try:
                answer = await self.cache.get()
            except StoreBusy as exc:  # outside WAL mode a reader may wait for a writer
                await self.busy(scope, send, exc)
                return
        else:
            self.hits["near"] += 1
        elapsed = time.perf_counter() - started
        source = answer.source
        self.requests[source] += 1
        self.latency[source].observe(elapsed)
        ms = elapsed * 1000
        self.log.request(
            scope["method"], "/api/products", 200, source, ms,
            answer.layer if source == "cache" else answer.x_cache.lower(),
        )  # fmt: skip
        body = answer.body
        headers = [
            (b"content-type", JSON),
            (b"content-length", str(len(body)).encode()),
            (b"x-cache", X_CACHE[answer.x_cache]),
            (b"server-timing", server_timing(answer, ms)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def busy(self, scope: Scope, send: Send, exc: StoreBusy) -> None:
        self.log.warning(f"{scope['method']} /api/products 503: {exc}")
        body = error_body("the database is busy, retry later")
        headers = [
            (b"content-type", JSON),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", self.retry_after),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def error_body(detail: str) -> bytes:
    """`{"error": ...}`; never fails to encode (a lone surrogate is written as its escape)."""
    return json.dumps({"error": detail}, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "backslashreplace"
    )


def server_timing(answer: Answer, total_ms: float) -> bytes:
    if answer.layer == "near":
        return f'cache;desc="near";dur={total_ms:.3f}'.encode()
    parts = []
    if answer.redis_ms is not None:
        parts.append(f'cache;desc="redis";dur={answer.redis_ms:.2f}')
    if answer.db_ms is not None:
        parts.append(f"db;dur={answer.db_ms:.1f}")
    parts.append(f"total;dur={total_ms:.2f}")
    return ", ".join(parts).encode()


def create_app(settings: Settings | None = None, *, log: LogSink | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    token = settings.redis_auth_token
    log = log or LogSink(settings.log_format, secrets=[str(token)] if token else ())
    metrics = Metrics()
    store = ProductStore(
        settings.database_path, delay=settings.db_delay, write_timeout=settings.db_write_timeout
    )
    # A refused write waited DB_WRITE_TIMEOUT_MS: suggest waiting as long before the next try.
    retry_after = str(max(1, math.ceil(settings.db_write_timeout)))
    link = RedisLink(settings, log, metrics)
    cache = ProductCache(settings, store, link, log, metrics)

    async def post_products(request: Request) -> Response:
        # The body is parsed as JSON whatever Content-Type says (`curl -d` sends a form type).
        too_large = HTTPException(413, f"body larger than {MAX_BODY_BYTES} bytes")
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():  # a chunked body has no length: stop at the limit
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise too_large
        try:
            check_content_type(request.headers.get("content-type"))
            name = parse_new_product(bytes(body))
        except InvalidProduct as exc:
            raise HTTPException(exc.status, str(exc)) from None
        try:
            product = await cache.add(name)
        except StoreBusy as exc:
            log.warning(f"POST /api/products 503: {exc}")
            raise HTTPException(
                503, "the database is busy, retry later", headers={"Retry-After": retry_after}
            ) from None
        done = "pending until Redis is back" if cache.invalidation_pending else "done"
        log.info(f"POST /api/products 201 id={product['id']}: cache invalidation {done}")
        return JSONResponse(product, status_code=201)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "redis": link.health(), "cache": cache.health()})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return Response(
            error_body(exc.detail), exc.status_code, exc.headers, media_type="application/json"
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error(f"{request.method} {request.url.path} 500: {type(exc).__name__}: {exc}")
        return JSONResponse({"error": "internal server error"}, status_code=500)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.start()
        log.info(
            f"products service starting on {settings.host}:{settings.port}",
            settings=json.dumps(settings.describe()),
        )
        await asyncio.to_thread(store.open)
        await link.start()
        await cache.start()
        try:
            yield
        finally:
            await cache.close()
            await link.close()
            store.close()
            log.info("products service stopped")
            await log.close()

    app = Starlette(
        routes=[
            Route(
                "/api/products",
                ProductList(cache, metrics, log, retry_after.encode()),
                methods=["GET", "HEAD"],
            ),
            Route("/api/products", post_products, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, 500: server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.cache = cache
    app.state.link = link
    app.state.metrics = metrics
    app.state.log = log
    return app
