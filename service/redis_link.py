"""The one connection to Redis: every call bounded, a circuit breaker, a background probe.

Every call runs under `asyncio.timeout(REDIS_TIMEOUT_MS)` on top of the same socket timeouts, and
redis-py retries once only on a connection error (a pooled socket that died with a restart), never
on a timeout, so no call can outlive the timeout.

The breaker opens on the first connection error, timeout or authentication error: while it is open
no request touches Redis (they go straight to the database, paying nothing for Redis), and a
background task PINGs Redis every BREAKER_PROBE_MS. When Redis answers (and the `before_ready`
hooks, such as an invalidation that could not be sent while Redis was away, succeed) the breaker
closes and `✅ Redis ready` is logged. Errors that do not make Redis unusable (out of memory on a
write, a read-only replica, a command the user's ACL forbids) are counted and logged but leave the
breaker closed, unless they stop a write's invalidation (see `service/cache.py`).

Errors are logged when the state changes (closed -> open) or when the error differs from the last
one logged, never once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .logs import LogSink
from .metrics import Metrics
from .settings import Settings

T = TypeVar("T")
Hook = Callable[[aioredis.Redis], Awaitable[None]]

MSG_READY = "✅ Redis ready"  # plain; with TLS or AUTH: "✅ Redis ready (TLS, AUTH)"
MSG_ERROR = "⚠️ Redis error (ignored): "
MSG_UNAVAILABLE_AT_STARTUP = "⚠️ Redis unavailable at startup"
MSG_DISABLED = "Redis disabled via env"

# Kinds that mean "Redis cannot be used right now": they open the breaker.
BREAKING = frozenset({"timeout", "connection", "auth"})


def stop_requested() -> bool:
    """True once the running task was cancelled, even if the CancelledError never came out.

    redis-py may turn a cancellation that arrives together with a reply into the reply's own error
    (or into no error): a background loop that relies on CancelledError alone then runs on, and
    whoever cancelled it and waits for it (`close()`) waits forever. Such loops check this too.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def ready_message(settings: Settings) -> str:
    """`✅ Redis ready`, saying how the connection is protected: what `rexctl provision` reads in
    each task's log to know that every task uses TLS (and the AUTH token) before it turns plain
    connections (or the old token) away."""
    how = [w for w, on in (("TLS", settings.redis_tls), ("AUTH", settings.redis_auth_token)) if on]
    return f"{MSG_READY} ({', '.join(how)})" if how else MSG_READY


class RedisSkipped(Exception):
    """Redis was not used (disabled, breaker open) or failed; already counted and logged."""


def classify(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "timeout"
    text = str(exc)
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return "auth"
    # An ACL that forbids one command (a read-only user and the fill's script) leaves the others
    # usable: not a reason to open the breaker, which would flap with every probe.
    if isinstance(exc, NoPermissionError) or "NOPERM" in text:
        return "noperm"
    # Inside a Lua script the server's error loses its READONLY/OOM prefix: match the text too.
    if isinstance(exc, ReadOnlyError) or "READONLY" in text or "read only replica" in text:
        return "readonly"
    if isinstance(exc, OutOfMemoryError) or "not allowed when used memory" in text:
        return "oom"
    if "NOAUTH" in text or "WRONGPASS" in text:
        return "auth"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection"
    return "response"


class RedisLink:
    def __init__(
        self,
        settings: Settings,
        log: LogSink,
        metrics: Metrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.enabled = settings.redis_enabled
        self.timeout = settings.redis_timeout
        self.log = log
        self.metrics = metrics
        self.client: aioredis.Redis | None = None
        self.breaker_open = False
        self.before_ready: list[Hook] = []
        self.on_open: list[Callable[[], None]] = []
        self.last_error: str | None = None
        self._last_logged: str | None = None
        self._since = clock()
        self._clock = clock
        self._sleep = sleep
        self._ready = asyncio.Event()
        self._probe_task: asyncio.Task[None] | None = None
        metrics.breaker_state = lambda: "open" if self.breaker_open else "closed"

    @property
    def state(self) -> str:
        if not self.enabled:
            return "disabled"
        return "unavailable" if self.breaker_open else "ready"

    @property
    def usable(self) -> bool:
        return self.client is not None and not self.breaker_open

    def health(self) -> dict[str, object]:
        return {
            "state": self.state,
            "breaker": "open" if self.breaker_open else "closed",
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._since)),
            "last_error": self.last_error,
            "host": self.settings.redis_host,
            "port": self.settings.redis_port,
        }

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.enabled:
            self.log.info(MSG_DISABLED)
            if self.settings.redis_enabled_note:
                self.log.warning(f"{self.settings.redis_enabled_note}: {MSG_DISABLED}")
            return
        self.client = self._make_client()
        try:
            await self._ping()
        except Exception as exc:  # whatever it is, start without Redis and keep probing
            self.metrics.redis_error(classify(exc))
            self._log_error(self._reason("connect", exc))
            self.log.warning(MSG_UNAVAILABLE_AT_STARTUP)
            self._open(log=False)
            return
        self._set_ready()

    async def close(self) -> None:
        task, self._probe_task = self._probe_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await client.aclose()

    def _make_client(self) -> aioredis.Redis:
        s = self.settings
        return aioredis.Redis(
            host=s.redis_host,
            port=s.redis_port,
            password=str(s.redis_auth_token) if s.redis_auth_token else None,
            ssl=s.redis_tls,
            # The node's certificate is verified, name included: against REDIS_TLS_CA_FILE, or
            # the system's store (where a task on AWS finds Amazon's root CAs).
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_ca_certs=s.redis_tls_ca_file or None,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=0,
            protocol=2,  # RESP2: no HELLO, works with every Redis and ElastiCache version
        )

    # -- calls ----------------------------------------------------------------------------------
    async def call(self, op: str, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run one bounded Redis call; raise RedisSkipped instead of any Redis failure."""
        client = self.client
        if client is None or self.breaker_open:
            raise RedisSkipped(op)
        try:
            async with asyncio.timeout(self.timeout):
                return await fn(client)
        except Exception as exc:  # a client bug or an odd answer must not fail the request either
            self.failed(op, exc)
            raise RedisSkipped(op) from None

    def failed(self, op: str, exc: BaseException) -> None:
        """Count and log a Redis failure; open the breaker when Redis is unusable."""
        kind = classify(exc)
        self.metrics.redis_error(kind)
        reason = self._reason(op, exc)
        self.last_error = reason
        if kind in BREAKING:
            if not self.breaker_open:
                self._log_error(reason)
                self._open(log=True)
        else:
            self._log_error(reason)

    def write_succeeded(self) -> None:
        """A write went through: the next write error is news again, log it."""
        self._last_logged = None

    def _reason(self, op: str, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError) and not str(exc):
            return f"{op}: timed out after {self.settings.redis_timeout_ms} ms"
        return f"{op}: {exc}"

    def _log_error(self, reason: str) -> None:
        if reason != self._last_logged:
            self._last_logged = reason
            self.log.warning(MSG_ERROR + reason)

    # -- breaker --------------------------------------------------------------------------------
    def open_breaker(self, op: str, reason: str) -> None:
        """Open the breaker for a reason other than a failed call (a lost invalidation)."""
        if not self.breaker_open:
            self.log.warning(f"⚠️ Redis skipped until {op} succeeds: {reason}")
            self._open(log=True)

    def _open(self, *, log: bool) -> None:
        self.breaker_open = True
        self._ready.clear()
        self._since = self._clock()
        self.metrics.breaker_opened += 1
        for callback in self.on_open:
            callback()
        if log:
            self.log.warning(
                "⚠️ Redis circuit open: serving from the database, "
                f"probing every {self.settings.breaker_probe_ms} ms"
            )
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.get_running_loop().create_task(self._probe_until_ready())

    def _set_ready(self) -> None:
        self.breaker_open = False
        self._last_logged = None
        self.last_error = None
        self._since = self._clock()
        self._ready.set()
        self.log.info(ready_message(self.settings))

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def _probe_until_ready(self) -> None:
        while self.breaker_open and self.client is not None and not stop_requested():
            await self._sleep(self.settings.breaker_probe)
            try:
                await self._ping()
                for hook in self.before_ready:
                    async with asyncio.timeout(self.timeout):
                        await hook(self.client)
            except Exception as exc:  # whatever it is, keep probing: never stay open for good
                if stop_requested():
                    return
                self.metrics.probe_failures += 1
                self.last_error = self._reason("probe", exc)
                continue
            self._set_ready()

    async def _ping(self) -> None:
        assert self.client is not None
        async with asyncio.timeout(self.timeout):
            await self.client.ping()
