"""What the sandbox's AWS looks like before step 1 (seeded in moto, in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rexctl.aws.ec2 import vpc_subnets
from rexctl.sandbox.seed import Seeded, seed


@pytest.fixture
def seeded() -> Iterator[tuple[Seeded, dict[str, Any]]]:
    with mock_aws():
        clients = {n: boto3.client(n, region_name="us-east-1") for n in ("ec2", "ecs", "logs")}
        yield seed(clients["ec2"], clients["ecs"], clients["logs"], "us-east-1"), clients


def test_the_vpc_has_two_private_and_two_public_subnets_by_route_table(
    seeded: tuple[Seeded, dict[str, Any]],
) -> None:
    done, clients = seeded
    ec2 = clients["ec2"]
    dns = ec2.describe_vpc_attribute(VpcId=done.vpc_id, Attribute="enableDnsHostnames")
    assert dns["EnableDnsHostnames"]["Value"] is True
    subnets = {s.id: s for s in vpc_subnets(ec2, done.vpc_id)}
    private = sorted(
        (subnets[i].cidr, subnets[i].az, subnets[i].public) for i in done.private_subnets
    )
    public = sorted(
        (subnets[i].cidr, subnets[i].az, subnets[i].public) for i in done.public_subnets
    )
    assert private == [("10.0.1.0/24", "us-east-1a", False), ("10.0.2.0/24", "us-east-1b", False)]
    assert public == [("10.0.101.0/24", "us-east-1a", True), ("10.0.102.0/24", "us-east-1b", True)]
    assert len({subnets[i].route_table for i in done.private_subnets}) == 1


def test_the_backend_service_runs_the_bundled_service_with_awslogs(
    seeded: tuple[Seeded, dict[str, Any]],
) -> None:
    done, clients = seeded
    ecs, logs = clients["ecs"], clients["logs"]
    svc = ecs.describe_services(cluster="rexpress", services=["backend"])["services"][0]
    assert (svc["status"], svc["launchType"], svc["desiredCount"]) == ("ACTIVE", "FARGATE", 2)
    net = svc["networkConfiguration"]["awsvpcConfiguration"]
    assert sorted(net["subnets"]) == sorted(done.public_subnets)
    assert net["securityGroups"] == [done.service_sg]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    assert td["networkMode"] == "awsvpc"
    container = td["containerDefinitions"][0]
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/rexpress-backend",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "ecs",
        },
    }
    groups = logs.describe_log_groups(logGroupNamePrefix="/ecs/rexpress-backend")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/ecs/rexpress-backend"]
