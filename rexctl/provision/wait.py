"""Waiting for the cache: `available` after create/modify, gone after delete.

Polls with an injected clock and sleep (tests never really sleep), reports every poll to the
reporter (elapsed time and current status), and stops at a deadline with a message that says
re-running is safe.

After a modify, `available` alone proves nothing: AWS may still show it right after the call,
before the change starts. `until(view)` then says what of the change does not show yet; the wait
ends when the group is `available` and nothing is missing.
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
    until: Callable[[CacheView], list[str]] | None = None,
) -> CacheView | None:
    """Poll until the group is `available` (and, with `until`, shows the change: `until` returns
    what is still missing) or, with `gone`, deleted; returns the last view."""
    start = clock()
    polls = 0
    while True:
        view = get_replication_group(client, group_id)
        elapsed = clock() - start
        status = "deleted" if view is None else view.status
        missing: list[str] = []
        if not gone and view is not None and view.status == "available" and until is not None:
            missing = until(view)
            if missing:
                status = f"available, not yet changed: {'; '.join(missing)}"
        reporter.progress(status, elapsed)
        if gone and view is None:
            return None
        if not gone:
            if view is None:
                raise AwsError(
                    f"Replication group {group_id} disappeared while rexctl waited for it.",
                    hint=f"Check the ElastiCache console, then run `{rerun}` again.",
                )
            if view.status == "available" and not missing:
                return view
            if view.status in FAILED or view.status == "deleting":
                raise AwsError(f"Replication group {group_id} is {view.status}.", hint=_why(view))
        remaining = timeout - elapsed
        if remaining <= 0:
            want = "deleted" if gone else "available"
            if missing:
                want = "showing the change"
            raise AwsError(
                f"Replication group {group_id} was not {want} after {int(timeout)} s "
                f"(it is {status}).",
                hint=f"Nothing is broken: run `{rerun}` again to keep waiting, or pass a longer "
                "`--timeout` (or set `cache.wait_timeout`).",
            )
        interval = INTERVALS[polls] if polls < len(INTERVALS) else MAX_INTERVAL
        polls += 1
        sleep(min(interval, remaining))


def _why(view: CacheView) -> str:
    events = (
        "`aws elasticache describe-events --source-type replication-group --source-identifier "
        f"{view.id} --duration 1440` (or its events in the ElastiCache console) say why"
    )
    if view.status == "create-failed":
        return (
            f"A group that failed to create stays so; it will not recover or go away by itself. "
            f"Its events: {events}. Delete it (`aws elasticache delete-replication-group "
            f"--replication-group-id {view.id}`, or `rexctl teardown` when rexctl created it), "
            "wait until it is gone, then run `rexctl provision` again."
        )
    return f"Its events: {events}."
