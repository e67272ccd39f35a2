"""What the sandbox's AWS looks like before step 1 (seeded in moto, in-process), and that AWS
would accept every request that builds it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rexctl.aws import rules
from rexctl.aws.ec2 import vpc_subnets
from rexctl.sandbox import iam
from rexctl.sandbox.moto_state import ECS_TASK_EXECUTION_POLICY_ARN, Moto
from rexctl.sandbox.seed import Seeded, seed

SERVICES = ("ec2", "ecs", "logs", "iam")


def _seed(clients: dict[str, Any]) -> Seeded:
    return seed(clients["ec2"], clients["ecs"], clients["logs"], "us-east-1", clients["iam"])


@pytest.fixture
def seeded() -> Iterator[tuple[Seeded, dict[str, Any]]]:
    with mock_aws():
        Moto("us-east-1").provide_ecs_task_execution_policy()  # as the daemon does
        clients = {n: boto3.client(n, region_name="us-east-1") for n in SERVICES}
        yield _seed(clients), clients


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


def test_every_request_of_the_seed_is_one_aws_accepts() -> None:
    """Each call seed() makes passes `rules.check` (the rules AWS documents), whichever way the
    AWS managed policy is found."""
    sent: list[tuple[str, str, dict[str, Any]]] = []
    with mock_aws():
        clients = {n: boto3.client(n, region_name="us-east-1") for n in SERVICES}
        for client in clients.values():
            rules.install(client)  # refuses what AWS refuses, as the sandbox's moto server does

            def record(params: Mapping[str, Any], model: Any, **_: Any) -> None:
                sent.append((model.service_model.service_name, model.name, dict(params)))

            client.meta.events.register("before-parameter-build", record)
        _seed(clients)  # moto without AWS managed policies: the seed attaches a copy
    assert [(s, o) for s, o, p in sent if rules.check(s, o, p)] == []
    operations = {(s, o) for s, o, _ in sent}
    covered = {op for op in operations if op in rules.COVERED}
    assert {
        ("ec2", "CreateSecurityGroup"),
        ("ec2", "AuthorizeSecurityGroupIngress"),
        ("ecs", "RegisterTaskDefinition"),
    } <= covered
    register = next(p for s, o, p in sent if o == "RegisterTaskDefinition")
    assert register["requiresCompatibilities"] == ["FARGATE"]
    assert (register["networkMode"], register["cpu"], register["memory"]) == (
        "awsvpc",
        "256",
        "512",
    )
    assert register["executionRoleArn"].endswith(":role/ecsTaskExecutionRole")


def test_the_execution_role_is_trusted_by_ecs_tasks_and_may_read_rexctl_secrets(
    seeded: tuple[Seeded, dict[str, Any]],
) -> None:
    done, clients = seeded
    client = clients["iam"]
    role = client.get_role(RoleName="ecsTaskExecutionRole")["Role"]
    assert role["Arn"] == done.execution_role
    assert iam.trusts(role["AssumeRolePolicyDocument"])
    attached = client.list_attached_role_policies(RoleName="ecsTaskExecutionRole")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [ECS_TASK_EXECUTION_POLICY_ARN]
    inline = client.get_role_policy(RoleName="ecsTaskExecutionRole", PolicyName="rexctl-secrets")
    documents = [inline["PolicyDocument"]]
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    secret = f"{arn}rexctl/rexpress-redis/auth-token-Ab1234"
    assert iam.evaluate(documents, "secretsmanager:GetSecretValue", secret) is iam.Decision.ALLOWED
    other = f"{arn}prod/db-Ab1234"
    assert iam.evaluate(documents, "secretsmanager:GetSecretValue", other) is not (
        iam.Decision.ALLOWED
    )
    svc = clients["ecs"].describe_services(cluster="rexpress", services=["backend"])["services"][0]
    td = clients["ecs"].describe_task_definition(taskDefinition=svc["taskDefinition"])
    assert td["taskDefinition"]["executionRoleArn"] == done.execution_role
