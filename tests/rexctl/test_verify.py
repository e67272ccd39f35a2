"""rexctl verify's core: --since, the deployment, logs and probe checks, and the whole run against
moto plus the real bundled service and a real redis-server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from rexctl.aws.ecs import (
    Deployment,
    ServiceView,
    TaskDefinition,
    describe_service,
    describe_task_definition,
)
from rexctl.aws.logs import AwsLogsConfig
from rexctl.errors import ConfigError, UsageError
from rexctl.probe import ProbeReport, ProbeResult, SourceSummary
from rexctl.verify import check_deployment, check_logs, check_probe, parse_since, verify
from tests.helpers import EXECUTION_ROLE_ARN, RedisServer, ServiceProcess, free_port
from tests.rexctl.deploy.world import LOG_GROUP, World, make_world

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("1h30m", NOW - timedelta(minutes=90)),
        ("2d", NOW - timedelta(days=2)),
        ("2025-06-01T11:00:00Z", datetime(2025, 6, 1, 11, tzinfo=UTC)),
        ("2025-06-01T11:00:00", datetime(2025, 6, 1, 11, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_parse_since_refuses_nonsense() -> None:
    with pytest.raises(UsageError, match="--since 'soon' is neither a duration nor a time"):
        parse_since("soon", NOW)


# ---------------------------------------------------------------------------------------------
# The probe check, on made-up reports (pure)


def report(*answers: tuple[str | None, float, str | None], speedup: float | None = None) -> Any:
    results = [
        ProbeResult(i, 200 if err is None else 500, src, ms, err, None, 0.0)
        for i, (src, ms, err) in enumerate(answers, start=1)
    ]
    by: dict[str, list[float]] = {}
    for r in results:
        if r.ok and r.source:
            by.setdefault(r.source, []).append(r.latency_ms)
    summaries = [SourceSummary(s, len(v), min(v), max(v), max(v), max(v)) for s, v in by.items()]
    return ProbeReport("http://x/api/products", results, summaries, speedup)


def verdicts(checks: list[Any]) -> list[tuple[str, str, str]]:
    return [(c.name, c.status, c.state) for c in checks]


def test_probe_cold_then_cached() -> None:
    checks = check_probe(report(("db", 200, None), ("cache", 2, None), ("cache", 2, None),
                                speedup=100.0))  # fmt: skip
    assert verdicts(checks) == [("api", "passed", "ok"), ("cache", "passed", "cold")]
    assert checks[1].text == (
        "First answer from `db` (200.0 ms), then `cache` (2.0 ms p50), 100.0x faster."
    )


def test_probe_warm_cache_is_a_pass() -> None:
    checks = check_probe(report(("cache", 2, None), ("cache", 3, None)))
    assert verdicts(checks) == [("api", "passed", "ok"), ("cache", "passed", "warm")]
    assert checks[1].text.startswith("Warm: the first answer already came from the cache")


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ((("db", 200, None), ("db", 200, None)), ("cache", "failed", "no-cache")),
        ((("db", 200, None), ("cache", 2, None), ("db", 200, None)), ("cache", "warning", "mixed")),
        ((("hello", 5, None), ("hello", 5, None)), ("cache", "failed", "unknown-source")),
        ((("db", 200, None), (None, 5, "HTTP 500")), ("cache", "failed", "too-few")),
        (((None, 5, "connection refused"), (None, 5, "connection refused")),
         ("cache", "failed", "none")),
    ],
)  # fmt: skip
def test_probe_failures(answers: Any, expected: tuple[str, str, str]) -> None:
    assert verdicts(check_probe(report(*answers)))[1] == expected


def test_probe_request_errors_fail_the_api_check() -> None:
    checks = check_probe(report(("db", 200, None), (None, 5, "HTTP 503"), ("cache", 2, None)))
    assert checks[0].status == "failed"
    assert checks[0].text == (
        "1 of 3 requests to http://x/api/products failed; first: request 2: HTTP 503."
    )


# ---------------------------------------------------------------------------------------------
# Deployment and logs checks against moto


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    with mock_aws():
        yield make_world(tmp_path)


def logs_config() -> AwsLogsConfig:
    return AwsLogsConfig(LOG_GROUP, "ecs", "us-east-1")


def test_deployment_check_fails_without_redis_enabled(world: World) -> None:
    view = describe_service(world.ecs, "c", "svc")
    td = describe_task_definition(world.ecs, view.task_definition)
    check = check_deployment(view, td, "backend")
    assert (check.status, check.state) == ("failed", "redis-disabled")
    assert "REDIS_ENABLED=false" in check.text and "Run `rexctl deploy`" in check.text


def _view(*deployments: tuple[str, str, int, int]) -> ServiceView:
    deps = [
        Deployment(f"d{i}", status, "arn:td/backend:2" if status == "PRIMARY" else "arn:td/b:1",
                   state, "", running, desired, 0, 0, None)
        for i, (status, state, running, desired) in enumerate(deployments)
    ]  # fmt: skip
    running = sum(d.running for d in deps)
    return ServiceView(
        "c", "svc", "arn:svc", "ACTIVE", "arn:td/backend:2", 2, running, 0, "FARGATE", True,
        deployments=deps,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("deployments", "expected"),
    [
        ((("PRIMARY", "COMPLETED", 2, 2),), ("passed", "completed")),
        ((("PRIMARY", "", 2, 2),), ("passed", "completed")),  # no rollout state reported
        ((("PRIMARY", "IN_PROGRESS", 2, 2), ("ACTIVE", "COMPLETED", 1, 2)),
         ("warning", "in-progress")),
        ((("PRIMARY", "", 2, 2), ("ACTIVE", "", 1, 2)), ("warning", "in-progress")),
        ((("PRIMARY", "COMPLETED", 1, 2),), ("warning", "unsteady")),  # tasks crash after it
        ((), ("warning", "in-progress")),
    ],
)  # fmt: skip
def test_deployment_check_passes_only_a_settled_rollout(
    deployments: tuple[tuple[str, str, int, int], ...], expected: tuple[str, str]
) -> None:
    env = [{"name": "REDIS_ENABLED", "value": "true"}]
    raw = {"family": "backend", "containerDefinitions": [{"name": "backend", "environment": env}]}
    td = TaskDefinition("arn:td/backend:2", "backend", 2, raw, [])
    check = check_deployment(_view(*deployments), td, "backend")
    assert (check.status, check.state) == expected, check.text
    if expected[1] == "unsteady":
        assert check.text.startswith(
            "The rollout of backend:2 (REDIS_HOST=(not set):?) COMPLETED, but 1 of 2 tasks run now"
        )


def test_logs_found(world: World) -> None:
    world.put_logs("task1", ["listening", "✅ Redis ready"])
    world.put_logs("task2", ["✅ Redis ready"])
    world.put_logs("task3", ["✅ Redis ready"], container="sidecar")  # not the backend's stream
    check, findings = check_logs(world.logs, logs_config(), container="backend", since_ms=0)
    assert (check.status, check.state) == ("passed", "ready")
    assert check.text.startswith("`Redis ready` in 2 task stream(s) of log group /ecs/backend")
    assert findings is not None
    assert [(s.task, s.ready.count, s.error.count) for s in findings.streams] == [
        ("task1", 1, 0),
        ("task2", 1, 0),
    ]
    assert findings.to_dict()["streams"][0]["ready"]["first"]["message"] == "✅ Redis ready"
    check, _ = check_logs(world.logs, logs_config(), container="backend", since_ms=0, running=2)
    assert (check.status, check.state) == ("passed", "ready")


def test_logs_ready_in_fewer_streams_than_running_tasks_warn(world: World) -> None:
    world.put_logs("task1", ["✅ Redis ready"])
    world.put_logs("task2", ["listening on 8080"])  # a task that never got to Redis
    check, findings = check_logs(world.logs, logs_config(), container="backend", since_ms=0,
                                 running=2)  # fmt: skip
    assert (check.status, check.state) == ("warning", "some-ready")
    assert "`Redis ready` in only 1 task stream(s)" in check.text
    assert "but 2 tasks run" in check.text
    assert findings is not None and [s.task for s in findings.streams] == ["task1"]


def test_logs_errors_only_fail_and_mixed_warn(world: World) -> None:
    world.put_logs("task1", ["⚠️ Redis error (ignored): connect ETIMEDOUT"] * 2)
    check, _ = check_logs(world.logs, logs_config(), container="backend", since_ms=0)
    assert (check.status, check.state) == ("failed", "errors-only")
    assert check.text.endswith("Last: ⚠️ Redis error (ignored): connect ETIMEDOUT")
    world.put_logs("task2", ["✅ Redis ready"])
    check, findings = check_logs(world.logs, logs_config(), container="backend", since_ms=0)
    assert (check.status, check.state) == ("warning", "ready-with-errors")
    assert findings is not None and findings.streams[0].error.count == 2


def test_logs_not_found(world: World) -> None:
    world.put_logs("task1", ["listening on 3000"])
    check, findings = check_logs(world.logs, logs_config(), container="backend", since_ms=0)
    assert (check.status, check.state) == ("warning", "no-events")
    assert check.text.startswith(
        "No `Redis ready` or `Redis error` in log group /ecs/backend, streams ecs/backend/* since "
    )
    assert findings is not None and findings.streams == []


def test_logs_are_searched_for_the_configured_phrases(world: World) -> None:
    """app.ready_phrase / app.error_phrase: a backend that logs in its own words."""
    world.put_logs("task1", ["cache connected", "✅ Redis ready"])
    world.put_logs("task2", ["cache connected"])
    check, _ = check_logs(
        world.logs, logs_config(), container="backend", since_ms=0, running=2,
        ready_phrase="cache connected", error_phrase="cache failed",
    )  # fmt: skip
    assert (check.status, check.state) == ("passed", "ready")
    assert check.text.startswith("`cache connected` in 2 task stream(s) of log group")
    assert check.text.endswith("no `cache failed`.")
    world.put_logs("task3", ["cache failed: timeout", "Redis error"])
    check, _ = check_logs(world.logs, logs_config(), container="backend", since_ms=0,
                          ready_phrase="cache connected", error_phrase="cache failed")  # fmt: skip
    assert check.state == "ready-with-errors"
    assert "`cache failed` 1 time(s) in 1 stream(s)" in check.text


def test_logs_since_excludes_older_events(world: World) -> None:
    world.put_logs("task1", ["✅ Redis ready"])
    future = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp() * 1000)
    check, _ = check_logs(world.logs, logs_config(), container="backend", since_ms=future)
    assert check.state == "no-events"


def test_no_log_config_and_missing_group(world: World) -> None:
    check, findings = check_logs(None, None, container="backend", since_ms=0)
    assert (check.status, check.state, findings) == ("warning", "no-log-config", None)
    missing = AwsLogsConfig("/ecs/nope", "ecs", "us-east-1")
    check, _ = check_logs(world.logs, missing, container="backend", since_ms=0)
    assert (check.status, check.state) == ("failed", "no-log-group")


# ---------------------------------------------------------------------------------------------
# The whole run: moto for AWS, the real service and Redis for the probe


def deployed_world(world: World, endpoint: str = "127.0.0.1") -> None:
    """The service already runs a revision with Redis on (as after `rexctl deploy`)."""
    world.ecs.register_task_definition(
        executionRoleArn=EXECUTION_ROLE_ARN,
        family="backend",
        containerDefinitions=[
            {"name": "backend", "image": "b", "memory": 256,
             "environment": [{"name": "REDIS_ENABLED", "value": "true"},
                             {"name": "REDIS_HOST", "value": endpoint}],
             "logConfiguration": {"logDriver": "awslogs", "options": {
                 "awslogs-group": LOG_GROUP, "awslogs-stream-prefix": "ecs"}}},
        ],
    )  # fmt: skip
    from tests.rexctl.deploy.world import finish_moto_rollout

    world.ecs.update_service(cluster="c", service="svc", taskDefinition="backend:2")
    finish_moto_rollout()


@pytest.fixture
def service(tmp_path: Path, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    env = {"REDIS_ENABLED": "true", "REDIS_HOST": "127.0.0.1",
           "REDIS_PORT": str(redis_server.port), "DB_DELAY_MS": "200"}  # fmt: skip
    proc = ServiceProcess(env, tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_verify_passes_cold_then_reports_warm(world: World, service: ServiceProcess) -> None:
    deployed_world(world)
    world.put_logs("task1", ["✅ Redis ready"])
    url = f"{service.url}/api/products"

    def run() -> Any:
        return verify(world.cfg, ecs=world.ecs, logs_client=lambda _r: world.logs, url=url,
                      requests=3, timeout=5, since="10m")  # fmt: skip

    first = run()
    assert first.ok, first.to_dict()["checks"]
    assert verdicts(first.checks) == [
        ("deployment", "passed", "completed"),
        ("logs", "passed", "ready"),
        ("api", "passed", "ok"),
        ("cache", "passed", "cold"),
    ]
    assert first.probe is not None and first.probe.speedup is not None
    assert first.probe.speedup > 1
    second = run()
    assert second.ok and verdicts(second.checks)[3] == ("cache", "passed", "warm")
    data = second.to_dict()
    assert data["task_definition"] == "backend:2" and data["logs"]["group"] == LOG_GROUP


def test_verify_fails_when_the_api_is_unreachable(world: World) -> None:
    deployed_world(world)
    url = f"http://127.0.0.1:{free_port()}/api/products"
    result = verify(world.cfg, ecs=world.ecs, logs_client=lambda _r: world.logs, url=url,
                    requests=2, timeout=2)  # fmt: skip
    assert not result.ok
    assert verdicts(result.checks)[2:] == [("api", "failed", "errors"), ("cache", "failed", "none")]
    assert "connection refused" in result.checks[2].text


class _Broken(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"error": "Internal server error"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_verify_fails_on_5xx(world: World) -> None:
    deployed_world(world)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/products"
        result = verify(world.cfg, ecs=world.ecs, logs_client=lambda _r: world.logs, url=url,
                        requests=2, timeout=2)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert not result.ok
    assert result.checks[2].status == "failed" and "500" in result.checks[2].text


def test_verify_needs_a_url(world: World) -> None:
    with pytest.raises(ConfigError, match=r"`app\.url` is not set and no --url was given"):
        verify(world.cfg, ecs=world.ecs, logs_client=lambda _r: world.logs)
    with pytest.raises(UsageError, match="--requests must be 2 or more"):
        verify(world.cfg, ecs=world.ecs, logs_client=lambda _r: world.logs, url="http://x/",
               requests=1)  # fmt: skip


def test_a_log_search_cut_at_its_page_limit_is_a_warning_not_no_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS: FilterLogEvents can answer pages with no events and a nextToken for a long time (it
    scans the streams bit by bit). A search cut at its page limit does not know the answer:
    verify says so (warning, state `incomplete`) instead of "no events"."""
    import boto3
    from botocore.stub import Stubber

    import rexctl.aws.logs

    monkeypatch.setattr(rexctl.aws.logs, "MAX_PAGES", 2)
    logs = boto3.client("logs", region_name="us-east-1")
    with Stubber(logs) as stubber:
        for _ in range(2):
            stubber.add_response("filter_log_events", {"events": [], "nextToken": "more"})
        check, findings = check_logs(logs, logs_config(), container="backend", since_ms=0)
        stubber.assert_no_pending_responses()
    assert (check.status, check.state, findings) == ("warning", "incomplete", None)
    assert "stopped after 2 pages" in check.text and 'is not "no events"' in check.text
