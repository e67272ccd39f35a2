"""Cache-aside for the product list: near cache, Redis, single-flight, safe invalidation.

A read goes, in order, to:

1. the near cache: the ready-encoded response body held in this process for at most
   NEAR_CACHE_TTL_MS. It is only filled from values Redis confirmed (a GET hit or a successful
   SET) and is dropped when the breaker opens, so while Redis is known to be away requests go to
   the database;
2. Redis (`GET products:all`), unless it is disabled or the breaker is open. A value that is not a
   product list (bad JSON, wrong shape) is a miss and is replaced;
3. the database, then a conditional SET back into Redis.

A Redis hit on a list with less than a fifth of CACHE_TTL_SECONDS left starts one background
re-read, so a busy list never expires under its readers (no periodic DB_DELAY_MS stall).

Concurrent lookups share one task (single flight), so 50 cold requests make one Redis GET and one
database read, whatever Redis does. A request that is cancelled does not cancel the shared task.

Writes and several processes: a write commits to the database, then (non-transactional pipeline)
DEL the key, INCR a generation key and PUBLISH an invalidation. Every process drops its near entry
when the message arrives (milliseconds); the near TTL bounds the time if the message is lost. A fill
stores its value only if the generation is still the one it saw before reading the database (a
small Lua compare-and-set), so a slow read that started before a write never puts the old list
back after the write's DEL. A write that cannot reach Redis stays pending: the breaker stays open,
and the DEL is sent before the breaker closes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from .logs import LogSink
from .metrics import Metrics
from .redis_link import RedisLink, RedisSkipped, stop_requested
from .settings import Settings
from .store import Product, ProductStore

# Store the list only if no write bumped the generation since the reader looked at it.
SET_IF_GENERATION = """
local gen = redis.call('GET', KEYS[2])
if (gen or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    source: str  # "cache" | "db"
    x_cache: str  # "HIT" | "MISS" | "BYPASS"
    layer: str  # "near" | "redis" | "db"
    redis_ms: float | None = None
    db_ms: float | None = None


def encode(source: str, data_json: bytes) -> bytes:
    return b'{"source":"' + source.encode() + b'","data":' + data_json + b"}"


def encode_products(products: list[Product]) -> bytes:
    return json.dumps(products, separators=(",", ":"), ensure_ascii=False).encode()


def parse_cached(raw: bytes) -> bytes | None:
    """The canonical JSON of a cached product list, or None when it is not one."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, list):
        return None
    for item in data:
        if not (
            isinstance(item, dict)
            and item.keys() == {"id", "name"}
            and type(item["id"]) is int
            and isinstance(item["name"], str)
        ):
            return None
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class ProductCache:
    def __init__(
        self,
        settings: Settings,
        store: ProductStore,
        link: RedisLink,
        log: LogSink,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.link = link
        self.log = log
        self.metrics = metrics
        self.instance = uuid.uuid4().hex
        self._clock = clock
        self._key = settings.cache_key
        self._gen_key = settings.generation_key
        self._channel = settings.invalidation_channel
        self._near_ttl = settings.near_cache_ttl
        self._near: Answer | None = None
        self._near_expires = 0.0
        self._generation = 0  # local: bumped by every invalidation this process sees
        self._inflight: asyncio.Task[Answer] | None = None
        self._pending_invalidation = False
        self._invalid_logged = False
        self._listener: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        # refresh a busy list when less than a fifth of its Redis TTL is left
        self._refresh_below_ms = settings.cache_ttl_seconds * 1000 // 5
        self._script: AsyncScript | None = None
        link.before_ready.append(self._flush_pending)
        link.on_open.append(self._drop_near)

    async def start(self) -> None:
        if self.link.enabled:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        for task in (self._listener, self._refresh):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._refresh = None

    # -- reads ----------------------------------------------------------------------------------
    def near_hit(self) -> Answer | None:
        """The request path's first look: no await, no allocation."""
        if self._near is not None and self._clock() < self._near_expires:
            return self._near
        return None

    async def get(self) -> Answer:
        answer = self.near_hit()
        if answer is not None:
            return answer
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._lookup())
            self._inflight = task
            task.add_done_callback(self._lookup_done)
        else:
            self.metrics.coalesced += 1
        return await asyncio.shield(task)

    def _lookup_done(self, task: asyncio.Task[Answer]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here so an error nobody awaited is not reported twice

    async def _lookup(self) -> Answer:
        generation = self._generation
        remote_gen: bytes | None = None
        x_cache = "BYPASS"
        redis_ms: float | None = None
        if self.link.usable:
            started = time.perf_counter()
            sent = self._clock()
            try:
                raw, remote, ttl_ms = await self.link.call("GET", self._mget)
            except RedisSkipped:
                pass
            else:
                redis_ms = (time.perf_counter() - started) * 1000
                remote_gen = remote or b"0"
                x_cache = "MISS"
                data = parse_cached(raw) if raw is not None else None
                if data is not None:
                    self.metrics.hits["redis"] += 1
                    answer = Answer(encode("cache", data), "cache", "HIT", "redis", redis_ms)
                    self._fill_near(data, generation, sent)
                    if 0 <= ttl_ms < self._refresh_below_ms:
                        self._refresh_ahead(remote_gen, generation)
                    return answer
                self.metrics.misses += 1
                if raw is not None:
                    self._invalid_value()
        data, db_ms = await self._read_db()
        if remote_gen is not None:
            await self._store(data, remote_gen, generation)
        return Answer(encode("db", data), "db", x_cache, "db", redis_ms, db_ms)

    async def _mget(self, client: aioredis.Redis) -> tuple[bytes | None, bytes | None, int]:
        """The list, the generation and the list's remaining TTL, in one round trip."""
        pipe = client.pipeline(transaction=False)
        pipe.mget(self._key, self._gen_key)
        pipe.pttl(self._key)
        (raw, remote), ttl_ms = await pipe.execute()
        return cast(bytes | None, raw), cast(bytes | None, remote), int(ttl_ms)

    def _refresh_ahead(self, remote_gen: bytes, generation: int) -> None:
        """Re-read the list in the background before its Redis TTL runs out.

        Without this, a busy list expires every CACHE_TTL_SECONDS and every request arriving in
        the next DB_DELAY_MS waits for the database read that refills it.
        """
        if self._refresh is not None and not self._refresh.done():
            return
        self._refresh = asyncio.get_running_loop().create_task(
            self._refresh_now(remote_gen, generation)
        )

    async def _refresh_now(self, remote_gen: bytes, generation: int) -> None:
        self.metrics.refreshes += 1
        try:
            data, _ms = await self._read_db()
        except Exception as exc:  # the next miss reads again; a request will see the error
            self.log.error(f"background refresh of {self._key} failed: {exc}")
            return
        await self._store(data, remote_gen, generation)

    async def _read_db(self) -> tuple[bytes, float]:
        started = time.perf_counter()
        self.metrics.db_reads += 1
        products = await self.store.list_products()
        return encode_products(products), (time.perf_counter() - started) * 1000

    async def _store(self, data: bytes, remote_gen: bytes, generation: int) -> None:
        script = self._set_script()
        sent = self._clock()
        try:
            stored = await self.link.call(
                "SET",
                lambda r: script(
                    keys=[self._key, self._gen_key],
                    args=[remote_gen, data, self.settings.cache_ttl_seconds],
                    client=r,
                ),
            )
        except RedisSkipped:
            return
        self.link.write_succeeded()
        self._invalid_logged = False
        if stored:
            self._fill_near(data, generation, sent)

    def _set_script(self) -> AsyncScript:
        if self._script is None:
            assert self.link.client is not None
            self._script = self.link.client.register_script(SET_IF_GENERATION)
        return self._script

    def _fill_near(self, data: bytes, generation: int, sent: float) -> None:
        # The entry's life starts when the confirming command was sent, not when it answered:
        # so it can never outlive an invalidation by more than NEAR_CACHE_TTL_MS.
        if self._near_ttl > 0 and generation == self._generation:
            self._near = Answer(encode("cache", data), "cache", "HIT", "near")
            self._near_expires = sent + self._near_ttl

    def _drop_near(self) -> None:
        # Redis is unusable: answer from the database from now on, as the drills expect.
        self._near = None

    def _invalid_value(self) -> None:
        self.metrics.invalid_values += 1
        if not self._invalid_logged:
            self._invalid_logged = True
            self.log.warning(
                f"⚠️ cached value at {self._key} is not a product list: "
                "treated as a miss and replaced"
            )

    # -- writes ---------------------------------------------------------------------------------
    async def add(self, name: str) -> Product:
        product = await self.store.add_product(name)
        self.metrics.writes += 1
        self.invalidate_local("local")
        if self.link.enabled:
            self._pending_invalidation = True
            with contextlib.suppress(RedisSkipped):
                await self.link.call("invalidate", self._flush_pending)
            if self._pending_invalidation and not self.link.breaker_open:
                # Redis answered but refused the DEL (read-only replica, ...): its copy is stale,
                # so stop reading it until the DEL goes through.
                self.link.open_breaker("invalidate", "it holds a list older than this write")
        return product

    @property
    def invalidation_pending(self) -> bool:
        return self._pending_invalidation

    def invalidate_local(self, origin: str) -> None:
        self._generation += 1
        self._near = None
        self._inflight = None  # later requests must not join a lookup that began before this
        self.metrics.invalidations[origin] = self.metrics.invalidations.get(origin, 0) + 1

    async def _flush_pending(self, client: aioredis.Redis) -> None:
        """DEL the list, bump the generation, tell the other processes; raise if DEL failed."""
        if not self._pending_invalidation:
            return
        pipe = client.pipeline(transaction=False)
        pipe.delete(self._key)
        pipe.incr(self._gen_key)
        pipe.publish(self._channel, self.instance)
        deleted, bumped, _published = await pipe.execute(raise_on_error=False)
        if isinstance(deleted, Exception):
            raise deleted
        self._pending_invalidation = False
        self.link.write_succeeded()
        if isinstance(bumped, Exception):  # e.g. OOM: DEL went through, which is what matters
            self.link.failed("INCR", bumped)

    # -- other processes' writes ----------------------------------------------------------------
    async def _listen(self) -> None:
        while not stop_requested():
            await self.link.wait_ready()
            client = self.link.client
            if client is None:
                return
            pubsub = client.pubsub()
            try:
                async with asyncio.timeout(self.link.timeout):
                    await pubsub.subscribe(self._channel)
                # Messages sent while we were not subscribed are lost: drop what we hold (the
                # near TTL bounds what a fill already under way may still put there).
                self._near = None
                while self.link.usable and not stop_requested():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message.get("data") != self.instance.encode():
                        self.invalidate_local("pubsub")
            except Exception as exc:  # the listener must outlive any error
                if stop_requested():
                    return
                if self.link.usable:
                    self.link.failed("SUBSCRIBE", exc)
                await asyncio.sleep(self.settings.breaker_probe)
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.link.timeout):
                        # redis-py types `aclose` only from 8.x on: call it untyped either way.
                        await cast(Any, pubsub).aclose()

    def health(self) -> dict[str, object]:
        remaining = self._near_expires - self._clock() if self._near is not None else 0.0
        return {
            "near_cache_ttl_ms": self.settings.near_cache_ttl_ms,
            "near_cache_entry_ms_left": max(0, round(remaining * 1000)),
            "pending_invalidation": self._pending_invalidation,
        }
