"""What to change in a backend, derived from the checks it failed and how.

verify, the drills and `rexctl rehearse` name each failure with a check and a `state` (see
`rexctl.checks`); this module turns them into advice in the backend's own terms: a timeout on
every Redis call, a reconnect strategy, a health check that does not depend on Redis. It says
nothing about rexctl or AWS settings unless the failure is one of reading the backend
(`app.source_field`, `app.ready_phrase`, ...). Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rexctl.checks import FAILED, Check

TIMEOUT = (
    "Put a timeout on every Redis call, connect and command alike (a few hundred ms), and "
    "answer from the database when it expires: while Redis did not answer, requests waited "
    "for it (node-redis has no command timeout: race each call against a timer; redis-py: "
    "socket_timeout and socket_connect_timeout)."
)
CATCH = (
    "Catch every Redis error in the request path and answer from the database: a Redis "
    "failure reached the API's answers."
)
RECONNECT = (
    "Reconnect to Redis after an error or a closed connection, with a backoff (node-redis: "
    "`reconnectStrategy: retries => Math.min(retries * 100, 3000)`, not `false`; or create a "
    "new client later), so the cache is used again once Redis is back."
)
HEALTH = (
    "Make the health check independent of Redis: it should answer 200 whenever the process "
    "can serve from the database, or the load balancer fails it and ECS replaces every task "
    "during a cache outage."
)
NO_EXIT = (
    "Do not exit on a Redis error: handle the client's `error` event (and rejected "
    "promises) and keep serving from the database; ECS counts every exit as a failed task."
)
START_WITHOUT = (
    "Start without Redis: listen and answer /health before the first Redis connection "
    "succeeds, connect in the background, and never exit because Redis is unreachable."
)
LOG_ERRORS = (
    "Log every failed Redis call with one fixed phrase (the guide's `Redis error`; "
    "`app.error_phrase` if yours differs), so an outage shows in the logs."
)
LOG_READY = (
    "Log one fixed phrase when the Redis connection is ready (the guide's `Redis ready`; "
    "`app.ready_phrase` if yours differs), so a deployment can be verified from its logs."
)
SAY_SOURCE = (
    "Say where each answer came from: a `source` field of `db` or `cache` in the JSON body, or "
    "an `X-Cache: HIT|MISS` header (`app.source_field`, `app.source_header` if yours differ)."
)
USE_CACHE = (
    "The backend never answered from the cache: read REDIS_ENABLED, REDIS_HOST and REDIS_PORT "
    "from the environment and write what you read from the database to Redis."
)
READ_HOST = (
    "Read REDIS_HOST (and REDIS_PORT) from the environment: answers came from a cache the "
    "configured host cannot reach."
)

# (check name, state) -> advice. States are those of rexctl.verify and rexctl.drills.verdict.
ADVICE: Mapping[tuple[str, str], str] = {
    ("API still works", "timeouts"): TIMEOUT,
    ("API still works", "errors"): CATCH,
    ("tasks did not restart", "health-checks"): HEALTH,
    ("tasks did not restart", "exited"): NO_EXIT,
    ("new tasks stayed up", "health-checks"): HEALTH,
    ("new tasks stayed up", "exited"): NO_EXIT,
    ("new tasks stayed up", "failed-to-start"): START_WITHOUT,
    ("cache used again", "never"): RECONNECT,
    ("logs show Redis error", "none"): LOG_ERRORS,
    ("API answers from the database", "from-cache"): READ_HOST,
    ("logs", "no-events"): LOG_READY,
    ("logs", "errors-only"): LOG_READY,
    ("cache", "unknown-source"): SAY_SOURCE,
    ("cache", "no-cache"): USE_CACHE,
}

# A drill that ends before its verdict because the bad revision's tasks never came up.
DID_NOT_COME_UP = START_WITHOUT


# Most important first: what keeps the API up, then the tasks, then the cache, then the logs.
ORDER = (TIMEOUT, CATCH, HEALTH, NO_EXIT, START_WITHOUT, RECONNECT, READ_HOST, USE_CACHE,
         SAY_SOURCE, LOG_ERRORS, LOG_READY)  # fmt: skip


def advice_for(checks: Iterable[Check | Mapping[str, Any]]) -> list[str]:
    """The advice for the failed checks (Check objects or their `to_dict`), each once, most
    important first. verify's `logs` check counts when it failed or found no phrase at all (a
    warning). A backend whose requests hung never saw a Redis error to log: the timeout comes
    first, so "log every failed call" is left out."""
    found: set[str] = set()
    for c in checks:
        name, status, state = (
            (c.name, c.status, c.state)
            if isinstance(c, Check)
            else (str(c.get("name")), str(c.get("status")), str(c.get("state", "")))
        )
        if status != FAILED and (name, state) != ("logs", "no-events"):
            continue
        text = ADVICE.get((name, state))
        if text:
            found.add(text)
    if TIMEOUT in found:
        found.discard(LOG_ERRORS)
    return [a for a in ORDER if a in found]
