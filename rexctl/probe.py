"""The latency probe of the guide's step 14: GET a products URL n times and say where each answer
came from (database or cache) and how long it took.

It works against any backend that follows the seed's contract:

- the body is JSON with a `source` field (`"db"` or `"cache"`; the field name is a parameter);
- when the body has no such field (or it is not a non-empty string), the `X-Cache` response header
  decides: a value starting with `HIT` means `cache`, `MISS` means `db`, anything else is kept
  as given. The body field wins when both are present, because it is the seed's contract and an
  `X-Cache` header may come from a CDN in front of the backend.

A request is OK when it got a 2xx answer whose body is valid JSON. Everything else (connection
refused, DNS failure, TLS error, timeout, non-2xx, invalid JSON) becomes a short reason in
`ProbeResult.error`, never an exception: callers (`rexctl probe`, `rexctl verify`, `rexctl chaos`)
decide what a failure means.

Requests are sequential by default, over one kept-alive connection, like a client that reuses its
pool. With `concurrency > 1` a thread pool keeps at most that many requests in flight. Latency is
wall time from sending the request to having read the whole body. The timeout bounds each request
as a whole (connect, headers and body together: `rexctl.deadline.within`), not each read, so a
server that trickles its answer is given up on at the timeout.

Percentiles use the nearest-rank method: p95 is a latency that was actually observed (with fewer
than 20 samples, p95 and p99 are the maximum). Only successful requests enter the per-source
summaries; failed ones are counted separately.
"""

from __future__ import annotations

import json
import math
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from rexctl import __version__
from rexctl.errors import UsageError

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"rexctl/{__version__}"
MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 1_000
UNKNOWN_SOURCE = "unknown"
_SOURCE_ORDER = {"db": 0, "cache": 1}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


@dataclass(frozen=True)
class ProbeResult:
    index: int
    status: int | None  # HTTP status, None when no response came back
    source: str | None  # "db", "cache", another string the backend sent, or None
    latency_ms: float
    error: str | None  # None when OK (2xx and valid JSON), else a short reason
    x_cache: str | None
    started_at: float  # time.time() when the request was sent

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "ok": self.ok,
            "status": self.status,
            "source": self.source,
            "latency_ms": round(self.latency_ms, 3),
            "error": self.error,
            "x_cache": self.x_cache,
            "started_at": self.started_at,
        }


@dataclass(frozen=True)
class SourceSummary:
    source: str
    count: int
    p50: float
    p95: float
    p99: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "count": self.count,
            "p50_ms": round(self.p50, 3),
            "p95_ms": round(self.p95, 3),
            "p99_ms": round(self.p99, 3),
            "max_ms": round(self.max, 3),
        }


@dataclass(frozen=True)
class ProbeReport:
    url: str
    results: list[ProbeResult]
    summaries: list[SourceSummary]
    speedup: float | None  # p50 of db answers / p50 of cache answers

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    def summary(self, source: str) -> SourceSummary | None:
        return next((s for s in self.summaries if s.source == source), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "requests": len(self.results),
            "ok": self.ok,
            "failed": self.failed,
            "speedup": None if self.speedup is None else round(self.speedup, 3),
            "summaries": [s.to_dict() for s in self.summaries],
            "results": [r.to_dict() for r in self.results],
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank: the smallest observed value such that at
    least q% of the values are less than or equal to it. q=0 gives the minimum, q=100 the maximum.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(results: Sequence[ProbeResult]) -> tuple[list[SourceSummary], float | None]:
    """Per-source latency summaries of the successful results (db, cache, others by name,
    `unknown` last) and the speed-up p50(db) / p50(cache), None when either side is missing."""
    by_source: dict[str, list[float]] = {}
    for r in results:
        if r.ok:
            by_source.setdefault(r.source or UNKNOWN_SOURCE, []).append(r.latency_ms)

    def order(name: str) -> tuple[int, str]:
        return (_SOURCE_ORDER.get(name, 3 if name == UNKNOWN_SOURCE else 2), name)

    summaries = [
        SourceSummary(
            source=name,
            count=len(lat),
            p50=percentile(lat, 50),
            p95=percentile(lat, 95),
            p99=percentile(lat, 99),
            max=max(lat),
        )
        for name, lat in sorted(by_source.items(), key=lambda item: order(item[0]))
    ]
    found = {s.source: s for s in summaries}
    db, cache = found.get("db"), found.get("cache")
    speedup = db.p50 / cache.p50 if db and cache and cache.p50 > 0 else None
    return summaries, speedup


def source_of(body: Any, x_cache: str | None, source_field: str = "source") -> str | None:
    """Where an answer came from: the body's field if it is a non-empty string, else X-Cache."""
    if isinstance(body, dict):
        value = body.get(source_field)
        if isinstance(value, str) and value:
            return value
    if x_cache is None or not x_cache.strip():
        return None
    word = x_cache.strip().split()[0].upper()
    if word.startswith("HIT"):
        return "cache"
    if word.startswith("MISS"):
        return "db"
    return x_cache.strip()


def describe_error(exc: BaseException, timeout: float, url: str = "") -> str:
    """A short reason for a failed request, e.g. "connection refused", "timeout after 10.0s"."""
    import httpx

    seconds = f"{float(timeout)}s"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timeout after {seconds}"
    if isinstance(exc, httpx.PoolTimeout):
        return f"timeout after {seconds} waiting for a free connection"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout after {seconds}"
    cause: BaseException | None = exc
    for _ in range(10):  # a bounded walk down the chain: httpx -> httpcore -> OSError
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed for {urlparse(url).hostname or url}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {getattr(cause, 'reason', None) or cause}"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc)
        return "connection closed by server" if "disconnected" in text else f"bad response: {text}"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def probe_once(
    client: httpx.Client,
    url: str,
    *,
    index: int = 0,
    source_field: str = "source",
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> ProbeResult:
    """One GET, given `timeout` seconds as a whole: connect, headers and body together (a
    server that trickles its answer cannot stretch it). Never raises for network or HTTP
    trouble (see `ProbeResult.error`)."""
    from rexctl.deadline import DeadlineExceeded, within

    started_at = time.time()
    start = time.perf_counter()
    try:
        return within(
            timeout,
            lambda: _get(client, url, index, source_field, timeout, headers, started_at, start),
            "the request",
        )
    except DeadlineExceeded:
        latency = (time.perf_counter() - start) * 1000
        error = f"timeout after {float(timeout)}s"
        return ProbeResult(index, None, None, latency, error, None, started_at)


def _get(
    client: httpx.Client,
    url: str,
    index: int,
    source_field: str,
    timeout: float,
    headers: Mapping[str, str] | None,
    started_at: float,
    start: float,
) -> ProbeResult:
    """The request itself (on `within`'s worker): it stops reading a body once the deadline
    has passed, so a worker the caller gave up on ends soon after too."""
    import httpx

    sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    deadline = start + timeout
    try:
        with client.stream("GET", url, headers=sent_headers, timeout=timeout) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.perf_counter() > deadline:
                    raise httpx.ReadTimeout("the whole request took longer than its timeout")
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        latency = (time.perf_counter() - start) * 1000
        return ProbeResult(
            index, None, None, latency, describe_error(exc, timeout, url), None, started_at
        )
    latency = (time.perf_counter() - start) * 1000
    x_cache = response.headers.get("x-cache")
    body: Any = None
    error: str | None = None
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        body = None
        error = "invalid JSON"
    if not 200 <= response.status_code < 300:
        error = f"HTTP {response.status_code}"
        location = response.headers.get("location")
        if 300 <= response.status_code < 400 and location:
            error += f" redirect to {location}"
    source = source_of(body, x_cache, source_field)
    return ProbeResult(index, response.status_code, source, latency, error, x_cache, started_at)


def check_inputs(url: str, requests: int, concurrency: int, timeout: float) -> None:
    """Refuse bad input with a message the user can act on (exit code 2 at the CLI edge)."""
    import httpx

    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError when out of range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise UsageError(f"Bad URL {url!r}: {exc}.") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(
            f"URL must start with http:// or https:// and name a host, got {url!r}.",
            hint="Example: rexctl probe http://127.0.0.1:3000/api/products",
        )
    if not 1 <= requests <= MAX_REQUESTS:
        raise UsageError(
            f"Number of requests (-n) must be between 1 and {MAX_REQUESTS}, got {requests}."
        )
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(
            f"Concurrency (--concurrency) must be between 1 and {MAX_CONCURRENCY}, "
            f"got {concurrency}."
        )
    if not timeout > 0 or math.isinf(timeout):
        raise UsageError(
            f"Timeout (--timeout) must be a positive number of seconds, got {timeout}."
        )


def parse_headers(values: Sequence[str]) -> dict[str, str]:
    """`["Name: value", ...]` as a dict; refuses anything that is not a header line."""
    headers: dict[str, str] = {}
    for raw in values:
        name, sep, value = raw.partition(":")
        name = name.strip()
        if not sep or not _TOKEN.fullmatch(name):
            raise UsageError(f"Bad --header {raw!r}: expected 'Name: value'.")
        value = value.strip()
        if not all(" " <= c <= "~" or c == "\t" for c in value):
            raise UsageError(f"Bad --header {raw!r}: the value must be printable ASCII.")
        headers[name] = value
    return headers


def run_probe(
    url: str,
    *,
    requests: int = 10,
    concurrency: int = 1,
    timeout: float = 10.0,
    source_field: str = "source",
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    on_result: Callable[[ProbeResult], None] | None = None,
) -> ProbeReport:
    """Send `requests` GETs (1-based indexes), at most `concurrency` in flight, and summarize.

    `on_result` is called on the caller's thread as each request completes (in completion order);
    the report lists results in index order. Pass `client` to reuse a connection pool; otherwise
    one is opened and closed here. Raises UsageError for bad input, nothing for failed requests.
    """
    check_inputs(url, requests, concurrency, timeout)
    import httpx

    own = client is None
    if client is None:
        # No cap on connections: a request given up at its deadline may still hold one.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)
        client = httpx.Client(timeout=timeout, limits=limits, follow_redirects=False)
    use = client

    def one(index: int) -> ProbeResult:
        return probe_once(
            use, url, index=index, source_field=source_field, timeout=timeout, headers=headers
        )

    results: list[ProbeResult] = []
    try:
        if concurrency == 1:
            for i in range(1, requests + 1):
                results.append(one(i))
                if on_result:
                    on_result(results[-1])
        else:
            pool = ThreadPoolExecutor(max_workers=min(concurrency, requests))
            try:
                futures = [pool.submit(one, i) for i in range(1, requests + 1)]
                for future in as_completed(futures):
                    results.append(future.result())
                    if on_result:
                        on_result(results[-1])
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if own:
            client.close()
    results.sort(key=lambda r: r.index)
    summaries, speedup = summarize(results)
    return ProbeReport(url=url, results=results, summaries=summaries, speedup=speedup)


def failure_message(report: ProbeReport) -> str:
    """E.g. "3 of 10 requests failed: HTTP 503 ×2, timeout after 10.0s ×1."""
    reasons = Counter(r.error for r in report.results if r.error)
    listed = ", ".join(f"{reason} ×{count}" for reason, count in reasons.most_common(3))
    if len(reasons) > 3:
        listed += f", and {len(reasons) - 3} other reasons"
    return f"{report.failed} of {len(report.results)} requests failed: {listed}."


def notes(report: ProbeReport, source_field: str = "source") -> list[str]:
    """Warnings worth printing even when every request succeeded."""
    found = {s.source for s in report.summaries}
    ok = len(report.results) - report.failed
    out: list[str] = []
    if found == {UNKNOWN_SOURCE}:
        out.append(
            f"No answer said where it came from (no {source_field!r} field in the body, no "
            "X-Cache header): check --source-field."
        )
    elif ok >= 2 and "db" in found and "cache" not in found:
        out.append(
            "No answer came from the cache: is the backend connected to Redis "
            "(REDIS_ENABLED=true, REDIS_HOST, security group on 6379)?"
        )
    return out


def table_rows(results: Sequence[ProbeResult], limit: int = 200) -> list[ProbeResult]:
    """The rows worth a table: all of them up to `limit`, else the first tenth and the failures."""
    if len(results) <= limit:
        return list(results)
    head = limit // 10
    failed = [r for r in results[head:] if not r.ok]
    return list(results[:head]) + failed[: limit - head]
