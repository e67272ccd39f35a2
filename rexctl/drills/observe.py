"""What a drill watches: API answers, the service's tasks and events, and "Redis error" logs.

`Sensors` bundles three plain callables so the runner never touches AWS or HTTP itself; tests
swap any of them. `build_sensors` wires the real ones: `rexctl.probe.probe_once` on one kept-alive
httpx client, `rexctl.aws.ecs` for the tasks, `rexctl.aws.logs.search_events` for the logs.
`LiveState` keeps the counters the live view shows and renders them as plain lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from mypy_boto3_logs import CloudWatchLogsClient

    from rexctl.aws.session import Clients

REDIS_ERROR = "Redis error"


@dataclass(frozen=True)
class Answer:
    """One API request: when (seconds since the drill started), what came back, how fast."""

    t: float
    phase: str  # before | during | after
    status: int | None
    source: str | None
    latency_ms: float
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "latency_ms": round(self.latency_ms, 3), "ok": self.ok}


@dataclass(frozen=True)
class Task:
    arn: str
    task_definition: str
    last_status: str
    started_at: str
    stopped_reason: str = ""
    stop_code: str = ""


@dataclass(frozen=True)
class TaskSample:
    t: float
    running: int  # the service's runningCount
    desired: int
    tasks: list[Task]  # tasks whose desired status is RUNNING
    stopped: list[Task]  # tasks of the service that are stopping or stopped
    events: list[dict[str, str]] = field(default_factory=list)  # the service's recent events
    phase: str = "during"  # before | injected (wrong-host's baseline) | during

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LogLine:
    stream: str
    timestamp: int  # ms since the epoch
    message: str


class LogLines(list[LogLine]):
    """What one log search found; `complete` is False when it stopped at its page limit."""

    complete: bool = True


@dataclass
class Sensors:
    probe: Callable[[], tuple[int | None, str | None, float, str | None]]  # status, src, ms, err
    tasks: Callable[[], tuple[int, int, list[Task], list[Task], list[dict[str, str]]]]
    logs: Callable[[int, int | None], list[LogLine]] | None  # None: the container has no awslogs
    logs_missing_reason: str = ""
    close: Callable[[], None] = lambda: None
    timeout: float = 5.0  # each request's, as a whole (connect, headers, body)


def build_sensors(
    clients: Clients,
    *,
    cluster: str,
    service: str,
    container: str,
    url: str,
    timeout: float = 5.0,
    http: httpx.Client | None = None,
    logs_client: Callable[[str], CloudWatchLogsClient] | None = None,
) -> Sensors:
    """The real sensors for a service and an API URL.

    The container's log group is searched in the region its `awslogs-region` option names,
    through `logs_client(region)` (the CLI's client factory, as `rexctl verify` does); without
    that option, or without a factory, with `clients.logs`.
    """
    import httpx

    from rexctl.aws import ecs as ecs_mod
    from rexctl.aws.logs import awslogs_config, search_events
    from rexctl.probe import probe_once

    client = http or httpx.Client(timeout=timeout, follow_redirects=False)
    counter = iter(range(1, 10**9))

    def probe() -> tuple[int | None, str | None, float, str | None]:
        r = probe_once(client, url, index=next(counter), timeout=timeout)
        return r.status, r.source, r.latency_ms, r.error

    def tasks() -> tuple[int, int, list[Task], list[Task], list[dict[str, str]]]:
        view = ecs_mod.describe_service(clients.ecs, cluster, service)
        running = ecs_mod.list_tasks(clients.ecs, cluster, service, desired_status="RUNNING")
        stopped = ecs_mod.list_tasks(clients.ecs, cluster, service, desired_status="STOPPED")

        def task(t: ecs_mod.TaskView) -> Task:
            return Task(
                arn=t.arn,
                task_definition=t.task_definition,
                last_status=t.last_status,
                started_at=t.started_at.isoformat() if t.started_at else "",
                stopped_reason=t.stopped_reason,
                stop_code=t.stop_code,
            )

        events = [
            {
                "id": e.id,
                "created_at": e.created_at.isoformat() if e.created_at else "",
                "message": e.message,
            }
            for e in view.events[:20]
        ]
        return (
            view.running,
            view.desired,
            [task(t) for t in running],
            [task(t) for t in stopped],
            events,
        )

    td = ecs_mod.describe_task_definition(
        clients.ecs, ecs_mod.describe_service(clients.ecs, cluster, service).task_definition
    )
    config = awslogs_config(td, container)
    logs: Callable[[int, int | None], list[LogLine]] | None = None
    missing = ""
    if config is None:
        missing = (
            f"container {container!r} of {td.family}:{td.revision} does not log to CloudWatch "
            "(no awslogs log configuration), so rexctl cannot read its logs"
        )
    else:
        group, prefix = config.group, config.task_stream_prefix(container)
        logs_api = clients.logs
        if config.region and logs_client is not None:
            logs_api = logs_client(config.region)

        def logs(start_ms: int, end_ms: int | None) -> list[LogLine]:
            found = search_events(
                logs_api,
                group=group,
                stream_prefix=prefix,
                phrase=REDIS_ERROR,
                start_ms=start_ms,
                end_ms=end_ms,
            )
            lines = LogLines(LogLine(e.stream, e.timestamp, e.message) for e in found)
            lines.complete = found.complete
            return lines

    return Sensors(
        probe=probe,
        tasks=tasks,
        logs=logs,
        logs_missing_reason=missing,
        close=client.close if http is None else (lambda: None),
        timeout=timeout,
    )


@dataclass
class LiveState:
    """The counters behind the live view (and the sink that keeps them)."""

    drill: str
    duration: float
    phase: str = "starting"
    elapsed: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    running: int | None = None
    desired: int | None = None
    redis_errors: int = 0
    last: str = ""

    def update(self, kind: str, data: Any) -> None:
        if kind == "phase":
            self.phase = str(data)
        elif kind == "answer" and isinstance(data, Answer):
            self.elapsed = max(self.elapsed, data.t)
            self.statuses[str(data.status) if data.status is not None else "no answer"] += 1
            self.sources[data.source or "-"] += 1
            self.last = (
                f"{data.status or '-'} {data.source or data.error or ''} {data.latency_ms:.0f} ms"
            )
        elif kind == "tasks" and isinstance(data, TaskSample):
            self.running, self.desired = data.running, data.desired
        elif kind == "logs" and isinstance(data, list):
            self.redis_errors += len(data)

    def lines(self) -> list[str]:
        def fmt(c: Counter[str]) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none yet"

        tasks = "?" if self.running is None else f"{self.running}/{self.desired}"
        return [
            f"{self.drill} · {self.phase} · {self.elapsed:.0f}s of {self.duration:.0f}s",
            f"responses by status: {fmt(self.statuses)}",
            f"responses by source: {fmt(self.sources)}",
            f"tasks running/desired: {tasks} · Redis errors seen: {self.redis_errors}",
            f"last: {self.last}",
        ]
