"""A sandbox of the tests' own, started once per module in a temporary directory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rexctl.sandbox import control
from rexctl.sandbox.state import SandboxState, sandbox_dir


class Sandbox:
    def __init__(self, cwd: Path, state: SandboxState) -> None:
        self.cwd = cwd
        self.state = state
        self.dir = sandbox_dir(cwd)

    def client(self, name: str) -> Any:
        return boto3.client(
            name,
            endpoint_url=self.state.endpoint_url,
            region_name=self.state.region,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    def runtime(self) -> list[dict[str, Any]]:
        try:
            data = json.loads((self.dir / "runtime.json").read_text())
        except (FileNotFoundError, ValueError):
            return []
        return list(data["tasks"])

    def service(self) -> dict[str, Any]:
        ecs = self.client("ecs")
        return dict(ecs.describe_services(cluster="rexpress", services=["backend"])["services"][0])


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def steady(sb: Sandbox, task_definition: str = "") -> bool:
    svc = sb.service()
    primary = svc["deployments"][0]
    return (
        len(svc["deployments"]) == 1
        and primary["rolloutState"] == "COMPLETED"
        and svc["runningCount"] == svc["desiredCount"]
        and (not task_definition or primary["taskDefinition"] == task_definition)
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    cwd = tmp_path_factory.mktemp("sandbox")
    result = control.up(cwd)
    try:
        yield Sandbox(cwd, result.state)
    finally:
        control.down(cwd)
