"""CloudWatch Logs adapter: where a container logs (its awslogs options) and phrase searches.

`search_events` asks CloudWatch Logs for a quoted phrase (`"Redis error"`), which AWS matches as
an exact, case-sensitive phrase. moto honours only a plain or a single quoted-phrase pattern and
silently returns every event for anything else, so the events are also filtered here by the
phrase: the answer is the same against AWS and against moto.

A search reads at most MAX_PAGES pages. One that stops there has not read everything: what it
found is returned marked `complete=False`, and when it found nothing it raises
`LogSearchIncomplete` (an AwsError), because "nothing found in what was read" is not "no events".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import unless_missing
from rexctl.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

    from rexctl.aws.ecs import TaskDefinition

MAX_PAGES = 200  # a search stops after this many pages (each up to 10,000 events or 1 MB)


class LogGroupNotFound(AwsError):
    """The log group named in the container's awslogs options does not exist (what
    `search_events` raises for it: a search needs its group, see rexctl.aws.errors)."""


class LogSearchIncomplete(AwsError):
    """A search stopped at MAX_PAGES before the end and found nothing in what it read: the
    answer is not known, which is not "no events"."""


@dataclass(frozen=True)
class AwsLogsConfig:
    group: str
    stream_prefix: str  # the awslogs-stream-prefix option ('' when the container has none)
    region: str  # the awslogs-region option ('' when the container has none)

    def task_stream_prefix(self, container: str) -> str:
        """The prefix of the container's task streams: `<prefix>/<container>/` (awslogs names
        each stream `<prefix>/<container>/<task id>`); '' without a prefix option."""
        return f"{self.stream_prefix}/{container}/" if self.stream_prefix else ""


@dataclass(frozen=True)
class LogEvent:
    stream: str
    timestamp: int  # milliseconds since the epoch
    message: str


class LogEvents(list[LogEvent]):
    """The events a search found, in time order; `complete` is False when it stopped at its
    page limit before the end (what it found is real, but there may be more)."""

    complete: bool = True


def awslogs_config(td: TaskDefinition, container: str) -> AwsLogsConfig | None:
    """The container's awslogs settings, or None when it logs elsewhere (or has no group)."""
    log_config: dict[str, Any] = td.container(container).get("logConfiguration") or {}
    if log_config.get("logDriver") != "awslogs":
        return None
    options: dict[str, str] = log_config.get("options") or {}
    group = options.get("awslogs-group", "")
    if not group:
        return None
    return AwsLogsConfig(
        group=group,
        stream_prefix=options.get("awslogs-stream-prefix", ""),
        region=options.get("awslogs-region", ""),
    )


def search_events(
    logs: CloudWatchLogsClient,
    *,
    group: str,
    stream_prefix: str,
    phrase: str,
    start_ms: int,
    end_ms: int | None = None,
) -> LogEvents:
    """Events of `group` (streams starting with `stream_prefix`, all when '') that contain the
    exact `phrase`, from `start_ms` (inclusive) to `end_ms`, in time order.

    A missing log group raises LogGroupNotFound; a search that stopped at MAX_PAGES with nothing
    found raises LogSearchIncomplete (with something found: `complete` is False); other AWS
    failures raise AwsError.
    """
    if not phrase or '"' in phrase:
        raise ValueError(f"phrase must be non-empty text without double quotes: {phrase!r}")
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "filterPattern": f'"{phrase}"',
        "startTime": start_ms,
    }
    if stream_prefix:
        kwargs["logStreamNamePrefix"] = stream_prefix
    if end_ms is not None:
        kwargs["endTime"] = end_ms
    events = LogEvents()
    doing = f"search log group {group} for {phrase!r}"
    pages = MAX_PAGES  # read when called (tests lower it)
    for page in range(1, pages + 1):
        resp = unless_missing(
            "ResourceNotFoundException", doing, lambda: logs.filter_log_events(**kwargs)
        )
        if resp is None:
            raise LogGroupNotFound(
                f"The log group {group!r} does not exist.",
                hint="Check the container's awslogs-group option (and awslogs-region).",
            )
        for e in resp.get("events", []):
            message = e.get("message", "")
            stream = e.get("logStreamName", "")
            if phrase not in message or not stream.startswith(stream_prefix):
                continue
            timestamp = int(e.get("timestamp", 0))
            if timestamp < start_ms or (end_ms is not None and timestamp > end_ms):
                continue
            events.append(LogEvent(stream=stream, timestamp=timestamp, message=message))
        token = resp.get("nextToken")
        if not token:
            break
        if page == pages:  # more to read, and no page left
            events.complete = False
            break
        kwargs["nextToken"] = token
    if not events.complete and not events:
        raise LogSearchIncomplete(
            f"The search of log group {group} for {phrase!r} stopped after {pages} pages, "
            "before the end of what there is to read: nothing was found in what it read, which "
            'is not "no events".',
            hint="Search a shorter time range, or look in CloudWatch Logs Insights.",
        )
    events.sort(key=lambda e: (e.timestamp, e.stream))
    return events
