"""Steps 13 and 14: prove the deployed backend uses the cache.

Three checks, each `passed`, `failed` or `warning` with its evidence:

- deployment: the PRIMARY deployment's task definition has REDIS_ENABLED=true (a rollout still in
  progress, or a completed one with fewer tasks running than desired, is a warning; REDIS_ENABLED
  missing or false is a failure: run `rexctl deploy`).
- logs (step 13): in the container's awslogs group, the task streams (`<prefix>/<container>/`)
  are searched for `Redis ready` and `Redis error` (`app.ready_phrase`, `app.error_phrase`)
  since the PRIMARY deployment began. Ready (in
  at least as many streams as the deployment runs tasks) and no error: passed. Ready in fewer
  streams, or ready and errors: warning. Errors and no ready: failed. Neither, or no awslogs
  configuration: warning (nothing proves or disproves it; logs can lag by a minute). A log group
  that does not exist: failed (awslogs cannot have written anything).
- api and cache (step 14): `rexctl probe`'s machinery GETs the products URL N times. Any failed
  request (non-2xx, unreachable, not JSON) fails `api`. `cache` passes when the first answer came
  from `db` and the later ones from `cache` ("cold", with the speed-up), and also when the first
  answer already came from `cache` ("warm": an earlier request filled it; not a failure). No
  answer from `cache` fails it.

The verdict is failed when any check failed; warnings do not fail it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rexctl.aws.ecs import ServiceView, TaskDefinition, describe_service, short_arn
from rexctl.aws.logs import (
    AwsLogsConfig,
    LogEvent,
    LogGroupNotFound,
    LogSearchIncomplete,
    search_events,
)
from rexctl.checks import FAILED, PASSED, WARNING, Check
from rexctl.deploy.rollout import is_settled
from rexctl.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_logs import CloudWatchLogsClient

    from rexctl.config import Config
    from rexctl.probe import ProbeReport

READY_PHRASE = "Redis ready"
ERROR_PHRASE = "Redis error"
DEFAULT_LOOKBACK = timedelta(hours=1)  # when ECS does not say when the deployment began
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

ProbeFn = Callable[..., "ProbeReport"]
LogsClientFn = Callable[[str], "CloudWatchLogsClient"]


def _check(name: str, status: str, evidence: str, state: str = "") -> Check:
    return Check(name, status, [evidence], state)


@dataclass(frozen=True)
class PhraseHits:
    count: int = 0
    first: LogEvent | None = None
    last: LogEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        def one(e: LogEvent | None) -> dict[str, Any] | None:
            return None if e is None else {"timestamp": e.timestamp, "message": e.message}

        return {"count": self.count, "first": one(self.first), "last": one(self.last)}


@dataclass(frozen=True)
class StreamFindings:
    stream: str
    ready: PhraseHits
    error: PhraseHits

    @property
    def task(self) -> str:
        return self.stream.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "task": self.task,
            "ready": self.ready.to_dict(),
            "error": self.error.to_dict(),
        }


@dataclass(frozen=True)
class LogsFindings:
    group: str
    stream_prefix: str
    region: str
    since_ms: int
    streams: list[StreamFindings] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "stream_prefix": self.stream_prefix,
            "region": self.region,
            "since": iso_ms(self.since_ms),
            "streams": [s.to_dict() for s in self.streams],
        }


@dataclass(frozen=True)
class VerifyReport:
    checks: list[Check]
    service: str
    task_definition: str
    logs: LogsFindings | None = None
    probe: ProbeReport | None = None

    @property
    def ok(self) -> bool:
        return all(c.status != FAILED for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "service": self.service,
            "task_definition": self.task_definition,
            "checks": [c.to_dict() for c in self.checks],
            "logs": self.logs.to_dict() if self.logs else None,
            "probe": self.probe.to_dict() if self.probe else None,
        }


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def to_ms(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: a duration back from now (`90s`, `15m`, `2h`, `1d`, `1h30m`) or an ISO 8601
    time (`2025-01-31T12:00:00Z`; no zone means UTC)."""
    value = text.strip()
    if value and _DURATION.sub("", value).strip() == "" and _DURATION.search(value):
        delta = timedelta()
        for amount, unit in _DURATION.findall(value):
            delta += timedelta(**{_UNITS[unit]: int(amount)})
        return now - delta
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a time.",
            hint="Use a duration such as 15m, 2h or 1d, or a time such as 2025-01-31T12:00:00Z.",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# The checks


def check_deployment(view: ServiceView, td: TaskDefinition, container: str) -> Check:
    env = td.environment(container)
    name = f"{td.family}:{td.revision}"
    enabled = env.get("REDIS_ENABLED", "")
    if enabled.lower() != "true":
        return _check(
            "deployment",
            FAILED,
            f"The PRIMARY deployment runs {name}, whose container {container!r} has "
            f"REDIS_ENABLED={enabled or '(not set)'}: the backend does not use the cache. "
            "Run `rexctl deploy`.",
            "redis-disabled",
        )
    primary = view.primary
    where = f"REDIS_HOST={env.get('REDIS_HOST', '(not set)')}:{env.get('REDIS_PORT', '?')}"
    if (
        primary is not None
        and primary.rollout_state == "COMPLETED"
        and not is_settled(view, primary)
    ):
        return _check(
            "deployment",
            WARNING,
            f"The rollout of {name} ({where}) COMPLETED, but {primary.running} of "
            f"{primary.desired} tasks run now: tasks are stopping or being replaced (`aws ecs "
            "list-tasks --desired-status STOPPED` and their stoppedReason say why).",
            "unsteady",
        )
    if primary is None or not is_settled(view, primary):
        state = (primary.rollout_state or "rollout state not reported") if primary else "none"
        return _check(
            "deployment",
            WARNING,
            f"{name} ({where}) is still rolling out ({state}, running "
            f"{view.running}/{view.desired}); the checks below may see old tasks.",
            "in-progress",
        )
    return _check(
        "deployment",
        PASSED,
        f"PRIMARY deployment runs {name} with REDIS_ENABLED=true, {where}; rollout "
        f"{primary.rollout_state or 'settled'}, running {primary.running}/{primary.desired}.",
        "completed",
    )


def _hits(events: Sequence[LogEvent]) -> dict[str, PhraseHits]:
    by_stream: dict[str, list[LogEvent]] = {}
    for e in events:
        by_stream.setdefault(e.stream, []).append(e)
    return {s: PhraseHits(len(es), es[0], es[-1]) for s, es in by_stream.items()}


def check_logs(
    logs: CloudWatchLogsClient | None,
    config: AwsLogsConfig | None,
    *,
    container: str,
    since_ms: int,
    end_ms: int | None = None,
    running: int | None = None,
    ready_phrase: str = READY_PHRASE,
    error_phrase: str = ERROR_PHRASE,
) -> tuple[Check, LogsFindings | None]:
    """Step 13: `Redis ready` / `Redis error` per task stream since `since_ms`. With `running`
    (the PRIMARY deployment's running tasks), fewer streams with `Redis ready` than that is a
    warning: a task that never said it is ready is not shown by a per-stream count alone."""
    if config is None or logs is None:
        return (
            _check(
                "logs",
                WARNING,
                f"Container {container!r} has no awslogs log configuration, so rexctl cannot "
                "read its logs: look for `Redis ready` wherever it logs (guide step 13).",
                "no-log-config",
            ),
            None,
        )
    prefix = config.task_stream_prefix(container)
    where = f"log group {config.group}" + (f", streams {prefix}*" if prefix else "")
    since = iso_ms(since_ms)
    try:
        ready = search_events(
            logs, group=config.group, stream_prefix=prefix, phrase=ready_phrase,
            start_ms=since_ms, end_ms=end_ms,
        )  # fmt: skip
        errors = search_events(
            logs, group=config.group, stream_prefix=prefix, phrase=error_phrase,
            start_ms=since_ms, end_ms=end_ms,
        )  # fmt: skip
    except LogSearchIncomplete as exc:
        # Nothing found in the pages read is not "no events": say the search is incomplete.
        return (
            _check("logs", WARNING, f"{exc.message} {where}, since {since}.", "incomplete"),
            None,
        )
    except LogGroupNotFound:
        return (
            _check(
                "logs",
                FAILED,
                f"The log group {config.group} named by the container's awslogs options does "
                "not exist, so the tasks cannot have written logs there.",
                "no-log-group",
            ),
            None,
        )
    ready_by, error_by = _hits(ready), _hits(errors)
    streams = [
        StreamFindings(s, ready_by.get(s, PhraseHits()), error_by.get(s, PhraseHits()))
        for s in sorted(set(ready_by) | set(error_by))
    ]
    findings = LogsFindings(config.group, prefix, config.region, since_ms, streams)
    n_ready = sum(1 for s in streams if s.ready.count)
    n_error = sum(1 for s in streams if s.error.count)
    if not ready and not errors:
        return (
            _check(
                "logs",
                WARNING,
                f"No `{ready_phrase}` or `{error_phrase}` in {where} since {since}. The tasks "
                "may not have logged yet (logs can lag by a minute), or they run without Redis.",
                "no-events",
            ),
            findings,
        )
    if ready and not errors and running is not None and n_ready < running:
        return (
            _check(
                "logs",
                WARNING,
                f"`{ready_phrase}` in only {n_ready} task stream(s) of {where} since {since}, "
                f"no `{error_phrase}`; but {running} tasks run, so the others have not logged "
                "it (yet: logs can lag by a minute).",
                "some-ready",
            ),
            findings,
        )
    if ready and not errors:
        return (
            _check(
                "logs",
                PASSED,
                f"`{ready_phrase}` in {n_ready} task stream(s) of {where} since {since}, "
                f"no `{error_phrase}`.",
                "ready",
            ),
            findings,
        )
    last_error = errors[-1].message.strip()
    if ready:
        return (
            _check(
                "logs",
                WARNING,
                f"`{ready_phrase}` in {n_ready} task stream(s), but `{error_phrase}` "
                f"{len(errors)} time(s) in {n_error} stream(s) of {where} since {since}; "
                f"last: {last_error}",
                "ready-with-errors",
            ),
            findings,
        )
    return (
        _check(
            "logs",
            FAILED,
            f"`{error_phrase}` {len(errors)} time(s) in {n_error} task stream(s) of {where} "
            f"since {since} and no `{ready_phrase}`: the tasks cannot use the cache (security "
            f"group rule for the port, step 8; REDIS_HOST, step 12). Last: {last_error}",
            "errors-only",
        ),
        findings,
    )


def check_probe(
    report: ProbeReport, source_field: str = "source", source_header: str = "X-Cache"
) -> list[Check]:
    """Step 14: every request answered (`api`), and the cache answers after the first (`cache`)."""
    results = sorted(report.results, key=lambda r: r.index)
    total = len(results)
    bad = [r for r in results if not r.ok]
    if bad:
        first = bad[0]
        api = _check(
            "api",
            FAILED,
            f"{len(bad)} of {total} requests to {report.url} failed; first: request "
            f"{first.index}: {first.error}.",
            "errors",
        )
    else:
        api = _check("api", PASSED, f"{total} of {total} requests to {report.url} answered.", "ok")
    good = [r for r in results if r.ok]
    if not good:
        return [api, _check("cache", FAILED, "No answer came back to judge the cache by.", "none")]
    sources = [r.source or "" for r in good]
    db, cache = report.summary("db"), report.summary("cache")
    cache_ms = f"{cache.p50:.1f} ms p50" if cache else ""
    if sources[0] == "cache":
        return [
            api,
            _check(
                "cache",
                PASSED,
                f"Warm: the first answer already came from the cache ({cache_ms}); an earlier "
                "request filled it. All "
                f"{sources.count('cache')} of {len(sources)} answers came from the cache.",
                "warm",
            ),
        ]
    if sources[0] != "db":
        return [
            api,
            _check(
                "cache",
                FAILED,
                f"The first answer says {_source_said(source_field, source_header)}="
                f"{sources[0] or '(missing)'}, neither `db` nor `cache`: is this the products "
                "endpoint (app.path), and does the backend say where an answer came from "
                "(app.source_field, app.source_header)?",
                "unknown-source",
            ),
        ]
    later = sources[1:]
    db_ms = f"{good[0].latency_ms:.1f} ms"
    if not later:
        return [api, _check("cache", FAILED, "Only one answer came back; need two.", "too-few")]
    hits = later.count("cache")
    if hits == 0:
        return [
            api,
            _check(
                "cache",
                FAILED,
                f"All {len(sources)} answers came from `db`: the backend does not use the cache "
                "(REDIS_ENABLED, the security group rule, the logs check).",
                "no-cache",
            ),
        ]
    speedup = f", {report.speedup:.1f}x faster" if report.speedup else ""
    evidence = f"First answer from `db` ({db_ms}), then `cache` ({cache_ms}){speedup}."
    if hits < len(later):
        return [
            api,
            _check(
                "cache",
                WARNING,
                f"{evidence} But {len(later) - hits} of the {len(later)} later answers also "
                "came from `db` (several tasks each filling the cache, or a flapping Redis).",
                "mixed",
            ),
        ]
    if report.speedup is not None and report.speedup < 1.0 and db is not None:
        return [
            api,
            _check("cache", WARNING, f"{evidence} The cache is not faster than the DB.", "slow"),
        ]
    return [api, _check("cache", PASSED, evidence, "cold")]


def _source_said(source_field: str, source_header: str) -> str:
    """How the answers were read: `source`, `X-Cache`, or `source/X-Cache`."""
    return "/".join(x for x in (source_field, source_header) if x) or "source"


# ---------------------------------------------------------------------------------------------
# The whole verification


def verify(
    cfg: Config,
    *,
    ecs: ECSClient,
    logs_client: LogsClientFn,
    url: str = "",
    requests: int = 10,
    timeout: float = 10.0,
    since: str = "",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    probe: ProbeFn | None = None,
    on_step: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Run the deployment, logs and probe checks; never raises for a check that fails.

    `logs_client(region)` gives a CloudWatch Logs client for the awslogs region ('' = default).
    """
    from rexctl.aws.ecs import describe_task_definition
    from rexctl.aws.logs import awslogs_config

    cfg.require("ecs.cluster", "ecs.service")
    app = cfg.app
    url = app.products_url(url)
    if not url:
        raise ConfigError(
            "`app.url` is not set and no --url was given: verify needs the products URL "
            "(guide step 14).",
            hint="Pass `--url https://<ALB-DNS>/api/products` or set `app.url` in rexctl.toml.",
        )
    if requests < 2:
        raise UsageError(f"--requests must be 2 or more (got {requests}): db first, then cache.")
    step = on_step or (lambda _text: None)
    step("Reading the service")
    view = describe_service(ecs, cfg.ecs.cluster, cfg.ecs.service)
    primary = view.primary
    td = describe_task_definition(ecs, primary.task_definition if primary else view.task_definition)
    container = cfg.ecs.container
    checks = [check_deployment(view, td, container)]

    started = now()
    if since:
        since_at = parse_since(since, started)
    elif primary is not None and primary.created_at is not None:
        since_at = primary.created_at
    else:
        since_at = started - DEFAULT_LOOKBACK
    step("Searching the logs")
    log_config = awslogs_config(td, container)
    client = logs_client(log_config.region) if log_config else None
    logs_check, findings = check_logs(
        client,
        log_config,
        container=container,
        since_ms=to_ms(since_at),
        running=primary.running if primary else None,
        ready_phrase=app.ready_phrase,
        error_phrase=app.error_phrase,
    )
    checks.append(logs_check)

    step(f"Probing {url}")
    if probe is None:
        from rexctl.probe import run_probe

        probe = run_probe
    report = probe(
        url,
        requests=requests,
        timeout=timeout,
        source_field=app.source_field,
        source_header=app.source_header,
    )
    checks.extend(check_probe(report, app.source_field, app.source_header))
    return VerifyReport(
        checks=checks,
        service=f"{cfg.ecs.cluster}/{cfg.ecs.service}",
        task_definition=short_arn(td.arn),
        logs=findings,
        probe=report,
    )
