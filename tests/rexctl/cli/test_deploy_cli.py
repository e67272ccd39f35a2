"""`rexctl deploy` and `rexctl rollback` through the CLI against a moto server."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rexctl.cli import app
from tests.rexctl.deploy.world import (
    TOKEN,
    World,
    finish_moto_rollout,
    make_world,
    write_config,
)

runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    monkeypatch.chdir(tmp_path)
    return make_world(tmp_path, endpoint_url=moto_server, tls=True, auth=True)


def rexctl(moto_server: str, tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "rexctl.toml"
    return runner.invoke(
        app, ["--endpoint-url", moto_server, "--config", str(config), *args], catch_exceptions=False
    )


def test_dry_run_json_changes_nothing(world: World, moto_server: str, tmp_path: Path) -> None:
    before = (world.family_arns, world.service())
    result = rexctl(moto_server, tmp_path, "deploy", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "dry-run" and data["to"] is None
    backend = data["plan"]["revision"]["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in backend["environment"]}
    assert env["REDIS_HOST"] == world.endpoint and env["REDIS_TLS"] == "true"
    assert [s["name"] for s in backend["secrets"]] == ["REDIS_AUTH_TOKEN"]
    assert data["plan"]["service_update"]["service"] == "svc"
    assert TOKEN not in result.output
    assert (world.family_arns, world.service()) == before


def test_dry_run_text_shows_the_diff(world: World, moto_server: str, tmp_path: Path) -> None:
    result = rexctl(moto_server, tmp_path, "deploy", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "REDIS_HOST" in result.stdout and world.endpoint in result.stdout
    assert "Dry run: would update service svc in cluster c to the new revision" in result.stderr
    assert TOKEN not in result.output
    assert len(world.family_arns) == 1


def test_deploy_waits_then_unchanged_then_rollback(
    world: World, moto_server: str, tmp_path: Path, ecs_finishes_rollouts: None
) -> None:
    result = rexctl(moto_server, tmp_path, "deploy", "--poll", "0.05", "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert "The PRIMARY deployment runs backend:2: rollout COMPLETED, running 1/1." in result.stderr
    assert TOKEN not in result.output

    again = rexctl(moto_server, tmp_path, "deploy", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["status"] == "unchanged"
    assert "already runs the right revision (backend:2)" in again.stderr
    assert len(world.family_arns) == 2

    back = rexctl(moto_server, tmp_path, "rollback", "--poll", "0.05", "--json")
    assert back.exit_code == 0, back.output
    data = json.loads(back.stdout)
    assert (data["status"], data["to"].rsplit("/", 1)[-1]) == ("deployed", "backend:1")
    assert world.service()["taskDefinition"].endswith("backend:1")

    nothing = rexctl(moto_server, tmp_path, "rollback")
    assert nothing.exit_code == 2, nothing.output
    assert "Error: The service runs backend:1, which has no `rexctl:previous-revision` tag" in (
        nothing.stderr
    )

    to = rexctl(moto_server, tmp_path, "rollback", "--to", "backend:2", "--no-wait")
    assert to.exit_code == 0, to.output
    assert "✓ Started: service svc is rolling to backend:2 (not waiting" in to.stderr
    assert world.service()["taskDefinition"].endswith("backend:2")


def test_rollout_that_never_completes_exits_1(
    world: World, moto_server: str, tmp_path: Path
) -> None:
    result = rexctl(moto_server, tmp_path, "deploy", "--timeout", "1", "--poll", "0.2")
    assert result.exit_code == 1, result.output
    assert "Error: Timed out after 1s: waiting for ECS to make backend:2 the PRIMARY" in (
        result.stderr
    )
    assert (
        "ECS goes on with the rollout. To go back: `rexctl rollback --to backend:1` (or "
        "`rexctl deploy --rollback-on-failure` next time)." in result.stderr
    )
    # off a terminal the progress is plain lines, one whenever the deployments change
    assert result.stderr.count("Deployments: ") == 1
    assert "Deployments: PRIMARY backend:1 COMPLETED, running 1/1\n" in result.stderr


def test_progress_off_a_terminal_shows_deployments_and_events_as_they_come(
    world: World, moto_server: str, tmp_path: Path
) -> None:
    """ECS (played by a thread) takes a second, says it started a task, then finishes."""
    from datetime import UTC, datetime

    from tests.rexctl.deploy.world import ecs_service_object

    svc = ecs_service_object()
    message = "(service svc) has started 1 tasks: (task 0123abcd)."
    stop = threading.Event()

    def ecs() -> None:
        while not svc.task_definition.endswith("backend:2"):
            if stop.wait(0.02):
                return
        if stop.wait(1.0):  # the command's first looks see the old deployment
            return
        svc.events.insert(0, {"id": "e1", "createdAt": datetime.now(UTC), "message": message})
        finish_moto_rollout()

    thread = threading.Thread(target=ecs, daemon=True)
    thread.start()
    try:
        result = rexctl(moto_server, tmp_path, "deploy", "--timeout", "20", "--poll", "0.05")
    finally:
        stop.set()
        thread.join(5)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]
    progress = lines[: lines.index(next(x for x in lines if x.startswith("✓")))]
    assert progress[0] == "Deployments: PRIMARY backend:1 COMPLETED, running 1/1"
    assert "Deployments: PRIMARY backend:2 COMPLETED, running 1/1" in progress[1:]
    (event_line,) = [line for line in progress if message in line]
    assert re.fullmatch(r"  \d\d:\d\d:\d\d " + re.escape(message), event_line)
    assert len(progress) == 3, progress


def test_circuit_breaker_rollback_exits_1_with_the_events(
    world: World, moto_server: str, tmp_path: Path
) -> None:
    """moto never rolls back: the test plays ECS's circuit breaker on moto's service object."""
    from datetime import UTC, datetime

    from tests.rexctl.deploy.world import ecs_service_object

    svc = ecs_service_object()
    svc.events.append(
        {"id": "old", "createdAt": datetime(2020, 1, 1, tzinfo=UTC), "message": "steady"}
    )
    message = "(service svc) rolling back to deployment ecs-svc/1."
    stop = threading.Event()

    def circuit_breaker() -> None:
        while not stop.wait(0.02):
            if svc.task_definition.endswith("backend:2"):
                svc.events.insert(0, {"id": "e1", "createdAt": datetime.now(UTC),
                                      "message": message})  # fmt: skip
                svc.task_definition = svc.deployments[0]["taskDefinition"]
                return

    thread = threading.Thread(target=circuit_breaker, daemon=True)
    thread.start()
    try:
        result = rexctl(moto_server, tmp_path, "deploy", "--timeout", "10", "--poll", "0.1")
    finally:
        stop.set()
        thread.join(5)
    assert result.exit_code == 1, result.output
    assert "Error: The deployment circuit breaker rolled the service back" in result.stderr
    assert result.stderr.count(message) == 1, "each event once, as it came"
    assert "steady" not in result.stderr


def test_deploy_without_a_cache_names_provision(
    tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    make_world(tmp_path, endpoint_url=moto_server, cache=False)
    result = rexctl(moto_server, tmp_path, "deploy")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "Error: The cache 'rexpress-redis' does not exist, so there is no endpoint to deploy.",
        "Run `rexctl provision` first (guide steps 1-11), or set `cache.id` in rexctl.toml to "
        "the replication group you made.",
    ]


def test_deploy_needs_the_service_settings(tmp_path: Path, moto_server: str) -> None:
    write_config(tmp_path)
    (tmp_path / "rexctl.toml").write_text('[cache]\nid = "x"\n', encoding="utf-8")
    result = rexctl(moto_server, tmp_path, "rollback")
    assert result.exit_code == 2, result.output
    assert "Error: `ecs.cluster` is not set" in result.stderr
