"""`rexctl verify` through the CLI, and deploy -> verify as a user would run them: a moto server
for AWS, the real bundled service and a real redis-server for the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rexctl.cli import app
from tests.helpers import RedisServer, ServiceProcess
from tests.rexctl.deploy.world import World, make_world

runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    monkeypatch.chdir(tmp_path)
    return make_world(tmp_path, endpoint_url=moto_server)


def rexctl(moto_server: str, tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "rexctl.toml"
    return runner.invoke(
        app, ["--endpoint-url", moto_server, "--config", str(config), *args], catch_exceptions=False
    )


@pytest.fixture
def task(world: World, tmp_path: Path, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """The backend "task" after `rexctl deploy`: the service started with the deployed
    revision's environment. moto's cache endpoint does not resolve, so REDIS_HOST/REDIS_PORT
    point at our own redis-server instead (the one thing a real ElastiCache would provide)."""
    arn = world.service()["taskDefinition"]
    env = world.container_env(arn)
    assert env["REDIS_ENABLED"] == "true" and env["REDIS_HOST"] == world.endpoint
    env.update(REDIS_HOST=redis_server.host, REDIS_PORT=str(redis_server.port), DB_DELAY_MS="200")
    proc = ServiceProcess(env, tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def ship_logs(world: World, task: ServiceProcess, task_id: str = "0123456789abcdef") -> None:
    """What the awslogs driver does: the container's output lines into its task stream."""
    lines = [line for line in task.log().splitlines() if line.strip()]
    assert any("Redis ready" in line for line in lines), task.log()
    world.put_logs(task_id, lines)


def test_provisionless_deploy_then_verify_as_a_user_would(
    world: World,
    moto_server: str,
    tmp_path: Path,
    ecs_finishes_rollouts: None,
    request: pytest.FixtureRequest,
) -> None:
    deployed = rexctl(moto_server, tmp_path, "deploy", "--poll", "0.05", "--timeout", "20")
    assert deployed.exit_code == 0, deployed.output

    task: ServiceProcess = request.getfixturevalue("task")
    ship_logs(world, task)
    url = f"{task.url}/api/products"

    first = rexctl(moto_server, tmp_path, "verify", "--url", url, "--requests", "3", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["ok"] is True and data["task_definition"] == "backend:2"
    assert [(c["name"], c["status"], c["state"]) for c in data["checks"]] == [
        ("deployment", "passed", "completed"),
        ("logs", "passed", "ready"),
        ("api", "passed", "ok"),
        ("cache", "passed", "cold"),
    ]
    (stream,) = data["logs"]["streams"]
    assert stream["task"] == "0123456789abcdef" and stream["ready"]["count"] == 1
    assert [r["source"] for r in data["probe"]["results"]] == ["db", "cache", "cache"]

    second = rexctl(moto_server, tmp_path, "verify", "--url", url, "--requests", "2")
    assert second.exit_code == 0, second.output
    assert "Warm: the first answer already came from the cache" in second.stdout
    assert "0123456789abcdef" in second.stdout  # the per-task logs table

    task.stop()
    down = rexctl(moto_server, tmp_path, "verify", "--url", url, "--requests", "2")
    assert down.exit_code == 1, down.output
    assert "Error: Verification failed: api, cache." in down.stderr


def test_verify_before_deploy_fails_the_deployment_check(
    world: World, moto_server: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """The service still runs with REDIS_ENABLED=false: every answer comes from the DB."""
    proc = ServiceProcess({"REDIS_ENABLED": "false", "DB_DELAY_MS": "50"}, tmp_path)
    proc.start()
    try:
        result = rexctl(moto_server, tmp_path, "verify", "--url", f"{proc.url}/api/products",
                        "--requests", "2", "--json")  # fmt: skip
    finally:
        proc.stop()
    assert result.exit_code == 1, result.output
    checks = {c["name"]: (c["status"], c["state"]) for c in json.loads(result.stdout)["checks"]}
    assert checks == {
        "deployment": ("failed", "redis-disabled"),
        "logs": ("warning", "no-events"),
        "api": ("passed", "ok"),
        "cache": ("failed", "no-cache"),
    }
    assert "Error: Verification failed: deployment, cache." in result.stderr


def test_verify_without_a_url(world: World, moto_server: str, tmp_path: Path) -> None:
    result = rexctl(moto_server, tmp_path, "verify")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == (
        "Error: `app.url` is not set and no --url was given: verify needs the products URL "
        "(guide step 14)."
    )


def test_verify_refuses_a_bad_since(world: World, moto_server: str, tmp_path: Path) -> None:
    result = rexctl(moto_server, tmp_path, "verify", "--url", "http://127.0.0.1:9/", "--since",
                    "yesterday")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Error: --since 'yesterday' is neither a duration nor a time." in result.stderr
