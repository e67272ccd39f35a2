"""`rexctl teardown` core: only what carries managed-by=rexctl, in dependency order.

moto cannot finish a replication-group deletion nor delete a cache subnet group, so the
ElastiCache side of the full path runs through a botocore Stubber with exact parameters; EC2,
ECS and Secrets Manager stay on moto.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

from rexctl.aws.session import ClientSet
from rexctl.errors import AwsError
from rexctl.provision import plan_teardown, teardown
from rexctl.provision.model import RecordingReporter
from rexctl.provision.tags import managed_tags
from tests.helpers import FakeTime
from tests.rexctl.aws.world import REGION, World, build_world, write_config

RG_ARN = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rexpress-redis"
SNG_ARN = "arn:aws:elasticache:us-east-1:123456789012:subnetgroup:rexpress-redis-subnets"
ENDPOINT = "master.rexpress-redis.abc123.use1.cache.amazonaws.com"
TAGS = [
    {"Key": "managed-by", "Value": "rexctl"},
    {"Key": "rexctl:cache-id", "Value": "rexpress-redis"},
]


def group(status: str) -> dict[str, Any]:
    return {
        "ReplicationGroups": [
            {
                "ReplicationGroupId": "rexpress-redis",
                "Status": status,
                "ARN": RG_ARN,
                "MemberClusters": ["rexpress-redis-001"],
                "NodeGroups": [
                    {"NodeGroupId": "0001", "PrimaryEndpoint": {"Address": ENDPOINT, "Port": 6379}}
                ],
                "ClusterEnabled": False,
                "CacheNodeType": "cache.t4g.micro",
            }
        ]
    }


def tagged_sg(aws: ClientSet, world: World) -> str:
    sg: str = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg",
        Description="rexctl",
        VpcId=world.vpc_id,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": k, "Value": v} for k, v in managed_tags("rexpress-redis").items()],
            }
        ],
    )["GroupId"]
    return sg


def test_teardown_deletes_tagged_resources_in_order_and_keeps_the_rest(
    aws: ClientSet, tmp_path: Path
) -> None:
    world = build_world(
        aws,
        environment=[
            {"name": "REDIS_HOST", "value": ENDPOINT},
            {"name": "REDIS_PORT", "value": "6379"},
        ],
    )
    cfg = write_config(tmp_path / "rexctl.toml", world)
    sg = tagged_sg(aws, world)
    # A secret with rexctl's name but without its tag: kept.
    aws.secretsmanager.create_secret(Name="rexctl/rexpress-redis/auth-token", SecretString="x" * 20)

    ec = boto3.client("elasticache", region_name=REGION)
    stub = Stubber(ec)
    name = {"ReplicationGroupId": "rexpress-redis"}
    stub.add_response("describe_replication_groups", group("available"), name)
    stub.add_response("list_tags_for_resource", {"TagList": TAGS}, {"ResourceName": RG_ARN})
    stub.add_response(
        "describe_cache_subnet_groups",
        {
            "CacheSubnetGroups": [
                {
                    "CacheSubnetGroupName": "rexpress-redis-subnets",
                    "ARN": SNG_ARN,
                    "VpcId": world.vpc_id,
                    "Subnets": [],
                }
            ]
        },
        {"CacheSubnetGroupName": "rexpress-redis-subnets"},
    )
    stub.add_response("list_tags_for_resource", {"TagList": TAGS}, {"ResourceName": SNG_ARN})
    # teardown: delete, wait (deleting -> gone), then the subnet group.
    stub.add_response("describe_replication_groups", group("available"), name)
    stub.add_response(
        "delete_replication_group",
        {"ReplicationGroup": group("deleting")["ReplicationGroups"][0]},
        name,
    )
    stub.add_response("describe_replication_groups", group("deleting"), name)
    stub.add_response("describe_replication_groups", group("deleting"), name)
    stub.add_client_error(
        "describe_replication_groups",
        "ReplicationGroupNotFoundFault",
        "not found",
        expected_params=name,
    )
    stub.add_response(
        "delete_cache_subnet_group", {}, {"CacheSubnetGroupName": "rexpress-redis-subnets"}
    )
    mixed = ClientSet(ec2=aws.ec2, ecs=aws.ecs, elasticache=ec, secretsmanager=aws.secretsmanager)
    t = FakeTime()
    reporter = RecordingReporter()
    with stub:
        plan = plan_teardown(mixed, cfg)
        assert [(r.kind, r.delete) for r in plan.resources] == [
            ("replication group", True),
            ("cache subnet group", True),
            ("security group", True),
            ("secret", False),
        ]
        assert plan.kept[0].why == "not managed by rexctl"
        assert plan.warnings == [
            f"Task definition backend:1 still points REDIS_HOST at {ENDPOINT}. After the teardown "
            "the service runs without its cache (it should degrade gracefully); deploy a "
            "revision with REDIS_ENABLED=false to stop the errors."
        ]
        result = teardown(
            mixed, cfg, plan, reporter=reporter, timeout=60, clock=t.clock, sleep=t.sleep
        )
        stub.assert_no_pending_responses()
    assert result.error() is None
    assert [r.kind for r in result.deleted] == [
        "replication group",
        "cache subnet group",
        "security group",
    ]
    assert t.sleeps == [1.0, 2.0]
    assert [s for s, _ in reporter.progress_reports] == ["deleting", "deleting", "deleted"]
    assert (
        aws.ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [sg]}])[
            "SecurityGroups"
        ]
        == []
    )
    # The untagged secret is still there.
    assert aws.secretsmanager.describe_secret(SecretId="rexctl/rexpress-redis/auth-token")["Name"]
    assert result.to_dict()["kept"][0]["why"] == "not managed by rexctl"


def test_teardown_stops_when_the_group_is_not_gone_in_time(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    tagged_sg(aws, world)
    ec = boto3.client("elasticache", region_name=REGION)
    stub = Stubber(ec)
    name = {"ReplicationGroupId": "rexpress-redis"}
    stub.add_response("describe_replication_groups", group("deleting"), name)
    stub.add_response("list_tags_for_resource", {"TagList": TAGS}, {"ResourceName": RG_ARN})
    stub.add_client_error(
        "describe_cache_subnet_groups",
        "CacheSubnetGroupNotFoundFault",
        "none",
        expected_params={"CacheSubnetGroupName": "rexpress-redis-subnets"},
    )
    stub.add_response("describe_replication_groups", group("deleting"), name)  # no second delete
    for _ in range(3):
        stub.add_response("describe_replication_groups", group("deleting"), name)
    mixed = ClientSet(ec2=aws.ec2, ecs=aws.ecs, elasticache=ec, secretsmanager=aws.secretsmanager)
    t = FakeTime()
    with stub:
        plan = plan_teardown(mixed, cfg)
        result = teardown(
            mixed,
            cfg,
            plan,
            reporter=RecordingReporter(),
            timeout=3,
            clock=t.clock,
            sleep=t.sleep,
        )
        stub.assert_no_pending_responses()
    error = result.error()
    assert isinstance(error, AwsError)
    assert (
        "- replication group rexpress-redis: Replication group rexpress-redis was not "
        "deleted after 3 s (it is deleting)." in error.message
    )
    assert "- security group rexpress-redis-sg" in error.message
    assert "not attempted: replication group rexpress-redis is not gone yet" in error.message
    assert error.hint == (
        "Nothing is broken: run `rexctl teardown` again to keep waiting, or pass a longer "
        "`--timeout` (or set `cache.wait_timeout`)."
    )
    assert result.deleted == []
    assert aws.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["rexpress-redis-sg"]}]
    )["SecurityGroups"]


def test_teardown_keeps_everything_not_tagged(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    # Made by hand, with rexctl's names, without its tags.
    sg = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="by hand", VpcId=world.vpc_id
    )["GroupId"]
    aws.elasticache.create_cache_subnet_group(
        CacheSubnetGroupName="rexpress-redis-subnets",
        CacheSubnetGroupDescription="by hand",
        SubnetIds=world.private_subnets,
    )
    aws.elasticache.create_replication_group(
        ReplicationGroupId="rexpress-redis",
        ReplicationGroupDescription="by hand",
        Engine="redis",
        CacheNodeType="cache.t4g.micro",
        NumCacheClusters=1,
        CacheSubnetGroupName="rexpress-redis-subnets",
        SecurityGroupIds=[sg],
    )
    plan = plan_teardown(aws, cfg)
    assert [(r.kind, r.delete, r.why) for r in plan.resources] == [
        ("replication group", False, "not managed by rexctl"),
        ("cache subnet group", False, "not managed by rexctl"),
        ("security group", False, "not managed by rexctl"),
    ]
    result = teardown(
        aws,
        cfg,
        plan,
        reporter=RecordingReporter(),
        timeout=5,
        clock=lambda: 0.0,
        sleep=lambda s: None,
    )
    assert result.deleted == [] and result.error() is None
    assert aws.elasticache.describe_replication_groups()["ReplicationGroups"][0]["Status"] == (
        "available"
    )


def test_tagged_sg_in_use_by_an_unmanaged_cache_is_kept(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    sg = tagged_sg(aws, world)
    aws.elasticache.create_replication_group(
        ReplicationGroupId="rexpress-redis",
        ReplicationGroupDescription="by hand",
        Engine="redis",
        CacheNodeType="cache.t4g.micro",
        SecurityGroupIds=[sg],
    )
    plan = plan_teardown(aws, cfg)
    assert [(r.kind, r.delete, r.why) for r in plan.resources] == [
        ("replication group", False, "not managed by rexctl"),
        ("security group", False, "in use by rexpress-redis, which rexctl does not manage"),
    ]


def test_teardown_after_provision_deletes_secret_and_sg(aws: ClientSet, tmp_path: Path) -> None:
    """Against moto end to end: the fake sleep finishes the deletion moto never finishes."""
    from moto.backends import get_backend

    from rexctl.provision import provision

    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    provision(aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None)
    backend = get_backend("elasticache")["123456789012"][REGION]
    # moto cannot delete a cache subnet group: drop rexctl's tag so teardown keeps it.
    arn = backend.cache_subnet_groups["rexpress-redis-subnets"].arn
    aws.elasticache.remove_tags_from_resource(ResourceName=arn, TagKeys=["managed-by"])
    plan = plan_teardown(aws, cfg)
    assert [(r.kind, r.delete) for r in plan.resources] == [
        ("replication group", True),
        ("cache subnet group", False),
        ("security group", True),
        ("secret", True),
    ]

    def finish(seconds: float) -> None:
        backend.replication_groups.pop("rexpress-redis", None)

    result = teardown(
        aws, cfg, plan, reporter=RecordingReporter(), timeout=60, clock=lambda: 0.0, sleep=finish
    )
    assert result.error() is None, result.failed
    assert [r.kind for r in result.deleted] == ["replication group", "security group", "secret"]
    assert aws.secretsmanager.list_secrets()["SecretList"] == []
    assert aws.elasticache.describe_replication_groups()["ReplicationGroups"] == []


def test_resources_tagged_for_another_cache_are_kept(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    aws.secretsmanager.create_secret(
        Name="rexctl/rexpress-redis/auth-token",
        SecretString="x" * 20,
        Tags=[{"Key": k, "Value": v} for k, v in managed_tags("other-cache").items()],
    )
    sg = tagged_sg(aws, world)
    other_vpc = aws.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    aws.ec2.create_security_group(  # same name and tags, another VPC: not this cache's group
        GroupName="rexpress-redis-sg",
        Description="rexctl",
        VpcId=other_vpc,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": k, "Value": v} for k, v in managed_tags("rexpress-redis").items()],
            }
        ],
    )
    plan = plan_teardown(aws, cfg)
    assert [(r.kind, r.id, r.delete, r.why) for r in plan.resources] == [
        ("security group", sg, True, ""),
        ("secret", plan.resources[1].id, False, "managed by rexctl for cache other-cache"),
    ]


def register_with_secret(aws: ClientSet, secret_arn: str) -> str:
    """A revision of the backend whose container reads REDIS_AUTH_TOKEN from the secret."""
    from tests.helpers import EXECUTION_ROLE_ARN

    td: str = aws.ecs.register_task_definition(
        executionRoleArn=EXECUTION_ROLE_ARN,
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
                "secrets": [{"name": "REDIS_AUTH_TOKEN", "valueFrom": secret_arn}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return td


def test_the_auth_secret_is_kept_while_a_task_definition_names_it(
    aws: ClientSet, tmp_path: Path
) -> None:
    """ECS resolves a container's `secrets` each time a task starts: deleting the AUTH secret
    while the service's task definition (or an ACTIVE revision of its family, a rollback away)
    still names it makes every new task fail. Teardown keeps it, says what to do first, and
    exits CHECK_FAILED; the other resources still go."""
    from moto.backends import get_backend

    from rexctl.errors import CheckFailed
    from rexctl.provision import provision

    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    provision(aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None)
    backend = get_backend("elasticache")["123456789012"][REGION]
    arn = backend.cache_subnet_groups["rexpress-redis-subnets"].arn
    aws.elasticache.remove_tags_from_resource(ResourceName=arn, TagKeys=["managed-by"])
    secret = aws.secretsmanager.describe_secret(SecretId="rexctl/rexpress-redis/auth-token")
    with_secret = register_with_secret(aws, secret["ARN"])  # backend:2, the service's now
    aws.ecs.update_service(cluster=world.cluster, service=world.service, taskDefinition=with_secret)

    plan = plan_teardown(aws, cfg)
    [kept] = [r for r in plan.resources if r.kind == "secret"]
    assert not kept.delete
    assert kept.why == (
        "still named in `secrets` by task definition revision(s) backend:2 of the service "
        "backend (the current one or ACTIVE ones); ECS reads it each time a task starts, so "
        "deleting it would make every new task (and any rollback to those revisions) fail"
    )
    [(_, todo)] = plan.refused
    assert todo.startswith("Secret kept. First put backend on a revision that does not name it")
    assert todo.endswith(
        "then deregister the revisions that name it (`aws ecs deregister-task-definition "
        "--task-definition backend:2`), then run `rexctl teardown` again."
    )

    def finish(seconds: float) -> None:
        backend.replication_groups.pop("rexpress-redis", None)

    result = teardown(
        aws, cfg, plan, reporter=RecordingReporter(), timeout=60, clock=lambda: 0.0, sleep=finish
    )
    assert [r.kind for r in result.deleted] == ["replication group", "security group"]
    error = result.error()
    assert isinstance(error, CheckFailed) and error.exit_code == 1
    assert "- secret rexctl/rexpress-redis/auth-token" in error.message
    assert error.hint == todo
    assert aws.secretsmanager.describe_secret(SecretId=secret["ARN"])["Name"]

    # Back on a revision without it, but an ACTIVE older one still names it: still kept.
    plain = register_with_secret(aws, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    aws.ecs.update_service(cluster=world.cluster, service=world.service, taskDefinition=plain)
    plan = plan_teardown(aws, cfg)
    assert [r.delete for r in plan.resources if r.kind == "secret"] == [False]
    assert "backend:2" in plan.refused[0][1] and "put backend on" not in plan.refused[0][1]
    # Once deregistered, it goes.
    aws.ecs.deregister_task_definition(taskDefinition=with_secret)
    plan = plan_teardown(aws, cfg)
    assert [r.delete for r in plan.resources if r.kind == "secret"] == [True]
    assert plan.error() is None


def test_the_cache_id_tag_is_compared_as_elasticache_compares_ids(
    aws: ClientSet, tmp_path: Path
) -> None:
    """An older rexctl tagged with the id as written (`Rexpress-Redis`); ElastiCache's id is
    `rexpress-redis`: the same cache."""
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    sg: str = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg",
        Description="rexctl",
        VpcId=world.vpc_id,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": k, "Value": v} for k, v in managed_tags("Rexpress-Redis").items()],
            }
        ],
    )["GroupId"]
    plan = plan_teardown(aws, cfg)
    assert [(r.id, r.delete) for r in plan.resources] == [(sg, True)]
