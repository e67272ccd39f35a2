"""Prometheus metrics, counted with plain integers on the request path.

prometheus_client's Counter/Histogram take a lock and look up label children on every update;
at tens of thousands of cache hits a second that shows. Everything here runs on the event loop
thread, so the request path just adds to ints and lists, and a custom collector turns them into
metric families when /metrics is scraped. Each app owns its registry (tests build several apps).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SOURCES = ("cache", "db")
BREAKER_STATES = {"closed": 0, "open": 1}


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last slot is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class Metrics:
    def __init__(self) -> None:
        self.requests = dict.fromkeys(SOURCES, 0)
        self.hits = {"near": 0, "redis": 0}
        self.misses = 0
        self.invalid_values = 0
        self.db_reads = 0
        self.coalesced = 0
        self.refreshes = 0
        self.writes = 0
        self.invalidations = {"local": 0, "pubsub": 0}
        self.redis_errors: dict[str, int] = {}
        self.breaker_opened = 0
        self.probe_failures = 0
        self.latency = {source: Histogram() for source in SOURCES}
        # set by the cache layer: () -> "closed" | "open", () -> "disabled" | "ready" | ...
        self.breaker_state: Callable[[], str] = lambda: "closed"
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def redis_error(self, kind: str) -> None:
        self.redis_errors[kind] = self.redis_errors.get(kind, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        requests = CounterMetricFamily(
            "products_requests", "GET /api/products answers by source.", labels=["source"]
        )
        for source, count in m.requests.items():
            requests.add_metric([source], count)
        yield requests
        hits = CounterMetricFamily(
            "products_cache_hits", "Cache hits by layer (near: in-process).", labels=["layer"]
        )
        for layer, count in m.hits.items():
            hits.add_metric([layer], count)
        yield hits
        yield CounterMetricFamily(
            "products_cache_misses", "Redis lookups that found no usable value.", value=m.misses
        )
        yield CounterMetricFamily(
            "products_cache_invalid_values",
            "Cached values that were not a product list (treated as misses and replaced).",
            value=m.invalid_values,
        )
        yield CounterMetricFamily(
            "products_db_reads", "Reads of the product list from the database.", value=m.db_reads
        )
        yield CounterMetricFamily(
            "products_coalesced_requests",
            "Requests that waited for another request's lookup instead of starting their own.",
            value=m.coalesced,
        )
        yield CounterMetricFamily(
            "products_cache_refreshes",
            "Background re-reads of a busy list before its Redis TTL ran out.",
            value=m.refreshes,
        )
        yield CounterMetricFamily("products_writes", "Products added.", value=m.writes)
        invalidations = CounterMetricFamily(
            "products_near_cache_invalidations",
            "Near-cache entries dropped by a local write or a pub/sub message.",
            labels=["origin"],
        )
        for origin, count in m.invalidations.items():
            invalidations.add_metric([origin], count)
        yield invalidations
        errors = CounterMetricFamily(
            "redis_errors", "Redis errors by kind (all ignored by requests).", labels=["kind"]
        )
        for kind in sorted({"timeout", "connection", *m.redis_errors}):
            errors.add_metric([kind], m.redis_errors.get(kind, 0))
        yield errors
        yield GaugeMetricFamily(
            "redis_breaker_state",
            "Circuit breaker in front of Redis: 0 closed (Redis used), 1 open (Redis skipped).",
            value=BREAKER_STATES[m.breaker_state()],
        )
        yield CounterMetricFamily(
            "redis_breaker_opened", "Times the breaker opened.", value=m.breaker_opened
        )
        yield CounterMetricFamily(
            "redis_probe_failures",
            "Background probes (PING while the breaker is open) that failed.",
            value=m.probe_failures,
        )
        latency = HistogramMetricFamily(
            "products_request_duration_seconds",
            "GET /api/products latency by source.",
            labels=["source"],
        )
        for source, hist in m.latency.items():
            latency.add_metric([source], hist.buckets(), hist.total)
        yield latency
