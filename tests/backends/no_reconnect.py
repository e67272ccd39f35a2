"""Breaks the promise like the guide's `reconnectStrategy: false`: its Redis calls have a
timeout, but after the first error it closes the connection and never opens another. It
survives the outage and then never uses the cache again."""

from __future__ import annotations

from backend_lib import RedisLink, log, serve


def give_up(link: RedisLink, exc: Exception) -> None:
    if not link.closed_for_good:
        log("⚠️ Redis connection closed")
    link.closed_for_good = True


serve(RedisLink(timeout=0.3, on_error=give_up))
