"""Waiting for the cache: `available` after create/modify, gone after delete.

Polls with an injected clock and sleep (tests never really sleep), reports every poll to the
reporter (elapsed time and current status), and stops at a deadline with a message that says
re-running is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rexctl.aws.elasticache import CacheView, get_replication_group
from rexctl.errors import AwsError
from rexctl.provision.model import Reporter

if TYPE_CHECKING:
    from mypy_boto3_elasticache import ElastiCacheClient

# Poll quickly first (a group that is already there answers at once), then every 15 s.
INTERVALS = (1.0, 2.0, 4.0, 8.0)
MAX_INTERVAL = 15.0
FAILED = ("create-failed", "incompatible-network", "restore-failed")


def wait_for_cache(
    client: ElastiCacheClient,
    group_id: str,
    *,
    gone: bool = False,
    timeout: float,
    reporter: Reporter,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    rerun: str = "rexctl provision",
) -> CacheView | None:
    """Poll until the group is `available` (or, with `gone`, deleted); returns the last view."""
    start = clock()
    polls = 0
    while True:
        view = get_replication_group(client, group_id)
        elapsed = clock() - start
        status = "deleted" if view is None else view.status
        reporter.progress(status, elapsed)
        if gone and view is None:
            return None
        if not gone:
            if view is None:
                raise AwsError(
                    f"Replication group {group_id} disappeared while rexctl waited for it.",
                    hint=f"Check the ElastiCache console, then run `{rerun}` again.",
                )
            if view.status == "available":
                return view
            if view.status in FAILED or view.status == "deleting":
                raise AwsError(
                    f"Replication group {group_id} is {view.status}.",
                    hint="Its events in the ElastiCache console say why.",
                )
        remaining = timeout - elapsed
        if remaining <= 0:
            want = "deleted" if gone else "available"
            raise AwsError(
                f"Replication group {group_id} was not {want} after {int(timeout)} s "
                f"(it is {status}).",
                hint=f"Nothing is broken: run `{rerun}` again to keep waiting, or pass a longer "
                "`--timeout` (or set `cache.wait_timeout`).",
            )
        interval = INTERVALS[polls] if polls < len(INTERVALS) else MAX_INTERVAL
        polls += 1
        sleep(min(interval, remaining))
