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


def service_network(sb: Sandbox) -> tuple[str, str, list[str]]:
    """The service's security group, its VPC, and the VPC's private subnets (the seed's)."""
    ec2 = sb.client("ec2")
    service_sg: str = sb.service()["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"][
        0
    ]
    vpc: str = ec2.describe_security_groups(GroupIds=[service_sg])["SecurityGroups"][0]["VpcId"]
    private = [
        s["SubnetId"]
        for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc]},
                     {"Name": "tag:Name", "Values": ["rexpress-private-*"]}]
        )["Subnets"]
    ]  # fmt: skip
    return service_sg, vpc, private


def roll_onto_cache(sb: Sandbox, group_id: str) -> tuple[str, dict[str, Any]]:
    """Wait until replication group `group_id` is available, then roll the service onto its
    primary endpoint (REDIS_* in a new revision); returns the endpoint and a running task that
    reaches the cache through the gate."""
    ecs, ec = sb.client("ecs"), sb.client("elasticache")

    def available() -> dict[str, Any] | None:
        found = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
        return found if found["Status"] == "available" else None

    endpoint: str = wait_for(available, timeout=10, what="the cache to be available")["NodeGroups"][
        0
    ]["PrimaryEndpoint"]["Address"]
    td = ecs.describe_task_definition(taskDefinition=sb.service()["taskDefinition"])[
        "taskDefinition"
    ]
    container = dict(td["containerDefinitions"][0])
    container["environment"] = [
        e for e in container["environment"] if not e["name"].startswith("REDIS_")
    ] + [{"name": "REDIS_ENABLED", "value": "true"}, {"name": "REDIS_HOST", "value": endpoint},
         {"name": "REDIS_PORT", "value": "6379"}]  # fmt: skip
    new_td = ecs.register_task_definition(
        family=td["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", executionRoleArn=td["executionRoleArn"],
        containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    ecs.update_service(cluster="rexpress", service="backend", taskDefinition=new_td)
    wait_for(lambda: steady(sb, new_td), what="the rollout onto the cache")
    task = next(t for t in sb.runtime() if t["status"] == "RUNNING" and t["gate_port"])
    return endpoint, task


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    cwd = tmp_path_factory.mktemp("sandbox")
    result = control.up(cwd)
    try:
        yield Sandbox(cwd, result.state)
    finally:
        control.down(cwd)
