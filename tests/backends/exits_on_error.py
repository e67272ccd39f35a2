"""Breaks the promise by exiting on a Redis error (an unhandled `error` event in Node does the
same): its Redis calls have a timeout, but the first failed call ends the process, and ECS
replaces the task."""

from __future__ import annotations

import os

from backend_lib import RedisLink, log, serve


def exit_now(link: RedisLink, exc: Exception) -> None:
    log(f"fatal: {exc or type(exc).__name__}")
    os._exit(1)


serve(RedisLink(timeout=0.3, on_error=exit_now))
