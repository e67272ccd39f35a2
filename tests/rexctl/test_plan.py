"""`rexctl plan`: the 15 steps and their state, read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from rexctl.plan import State
from rexctl.provision import plan_account, provision
from rexctl.provisioning import ClientSet, RecordingReporter
from tests.rexctl.aws.world import build_world, clients, snapshot, write_config


@pytest.fixture
def aws() -> Iterator[ClientSet]:
    with mock_aws():
        yield clients()


def states(plan: object) -> dict[int, str]:
    return {s.number: str(s.state) for s in plan.steps}  # type: ignore[attr-defined]


def test_plan_on_an_empty_account(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    before = snapshot(aws)
    plan = plan_account(aws, cfg)
    assert snapshot(aws) == before
    assert states(plan) == {
        1: "info",
        2: "info",
        3: "info",
        4: "to do",
        5: "to do",
        6: "to do",
        7: "to do",
        8: "to do",
        9: "to do",
        10: "to do",
        11: "to do",
        12: "to do",
        13: "info",
        14: "info",
        15: "info",
    }
    step8 = plan.steps[7]
    assert step8.detail == (
        f"rexpress-redis-sg: one inbound rule, TCP 6379 from {world.ecs_sg} (the ECS service's "
        "group)."
    )
    assert "REDIS_ENABLED=(unset), REDIS_HOST=(unset), REDIS_PORT=(unset)" in plan.steps[11].detail
    assert plan.steps[12].detail.startswith("`rexctl verify`")
    assert plan.steps[14].detail.startswith("`rexctl chaos`")
    assert plan.blockers == []
    data = plan.to_json()
    assert [s["step"] for s in data["steps"]] == list(range(1, 16))
    assert data["steps"][9]["actions"][0]["kind"] == "create_replication_group"


def test_plan_on_a_provisioned_account(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    result = provision(
        aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None
    )
    plan = plan_account(aws, cfg)
    assert states(plan) == {
        1: "info",
        2: "done",
        3: "done",
        4: "done",
        5: "done",
        6: "done",
        7: "done",
        8: "done",
        9: "done",
        10: "done",
        11: "done",
        12: "to do",
        13: "info",
        14: "info",
        15: "info",
    }
    assert plan.steps[3].detail == "replication group rexpress-redis exists (created by rexctl)."
    assert plan.steps[10].detail == f"{result.cache.endpoint}:6379"
    assert plan.actions() == []
    assert f"`rexctl deploy` sets REDIS_ENABLED=true, REDIS_HOST={result.cache.endpoint}" in (
        plan.steps[11].detail
    )


def test_step_12_is_done_when_the_task_definition_points_at_the_cache(
    aws: ClientSet, tmp_path: Path
) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    result = provision(
        aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None
    )
    td = aws.ecs.register_task_definition(
        family="backend",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "backend",
                "image": "x",
                "memory": 512,
                "environment": [
                    {"name": "REDIS_ENABLED", "value": "true"},
                    {"name": "REDIS_HOST", "value": result.cache.endpoint},
                    {"name": "REDIS_PORT", "value": "6379"},
                ],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    aws.ecs.update_service(cluster=world.cluster, service=world.service, taskDefinition=td)
    plan = plan_account(aws, cfg)
    assert plan.steps[11].state == State.DONE
    assert plan.steps[11].detail.startswith("backend:2 container backend: REDIS_ENABLED=true")


def test_plan_flags_a_cidr_rule_and_a_wrong_container(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    sg = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="x", VpcId=world.vpc_id
    )["GroupId"]
    aws.ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    path = tmp_path / "rexctl.toml"
    write_config(path, world)
    path.write_text(path.read_text().replace('container = "backend"', 'container = "web"'))
    from rexctl.config import load

    plan = plan_account(aws, load(path, environ={}))
    assert plan.steps[7].state == State.BLOCKED
    assert "from an address range (rule sgr-" in plan.steps[7].detail
    assert "from 0.0.0.0/0" in plan.steps[7].detail
    assert plan.steps[11].state == State.TODO
    assert "has no container named 'web'" in plan.steps[11].detail


def test_plan_warns_when_rexctl_toml_drifted(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    path = tmp_path / "rexctl.toml"
    write_config(path, world)
    path.write_text(path.read_text().replace(world.vpc_id, "vpc-0123456789abcdef0"))
    from rexctl.config import load

    plan = plan_account(aws, load(path, environ={}))
    assert (
        f"rexctl.toml says ecs.vpc_id = vpc-0123456789abcdef0, the service is in {world.vpc_id}; "
        "using the live service (re-run `rexctl init --force`)." in plan.warnings
    )
