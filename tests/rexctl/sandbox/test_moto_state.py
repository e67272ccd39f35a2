"""What the daemon writes into and reads from moto's backends (in-process, a fake clock): the
ElastiCache states over time, the execution role's access to a secret, ECS's deployment
configuration defaults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from rexctl.sandbox import moto_state
from rexctl.sandbox.moto_state import CacheTime, DeploymentConfig, Moto

REGION = "us-east-1"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    clock: Clock
    time: CacheTime
    moto: Moto
    ec: Any
    ec2: Any

    def status(self, group_id: str) -> str:
        groups = self.ec.describe_replication_groups(ReplicationGroupId=group_id)
        return str(groups["ReplicationGroups"][0]["Status"])

    def later(self, seconds: float) -> None:
        self.clock.now += seconds
        self.time.advance()


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        clock = Clock()
        cache_time = CacheTime(REGION, clock=clock)
        cache_time.install()
        yield World(
            clock,
            cache_time,
            Moto(REGION),
            boto3.client("elasticache", region_name=REGION),
            boto3.client("ec2", region_name=REGION),
        )


def create(w: World, group_id: str = "cache") -> dict[str, Any]:
    return dict(
        w.ec.create_replication_group(
            ReplicationGroupId=group_id, ReplicationGroupDescription="cache", Engine="redis",
            CacheNodeType="cache.t4g.micro", NumCacheClusters=1,
        )["ReplicationGroup"]
    )  # fmt: skip


def test_a_new_group_is_creating_without_an_endpoint_then_available(world: World) -> None:
    group = create(world)
    assert group["Status"] == "creating"
    assert "PrimaryEndpoint" not in group["NodeGroups"][0]
    assert "ReadEndpoint" not in group["NodeGroups"][0]["NodeGroupMembers"][0]
    (endpoint,) = [e for e in world.moto.cache_endpoints() if ".ng.0001." in e and "-ro." not in e]
    world.later(moto_state.CREATE_SECONDS - 0.1)
    assert world.status("cache") == "creating"
    world.later(0.1)
    described = world.ec.describe_replication_groups(ReplicationGroupId="cache")
    node_group = described["ReplicationGroups"][0]["NodeGroups"][0]
    assert described["ReplicationGroups"][0]["Status"] == "available"
    assert node_group["PrimaryEndpoint"]["Address"] == endpoint, "the same name, now shown"
    assert node_group["NodeGroupMembers"][0]["ReadEndpoint"]["Port"] == 6379
    assert node_group["Status"] == "available"


def test_the_gate_has_no_path_to_a_group_before_it_is_available(world: World) -> None:
    vpc = world.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = world.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    create(world)
    assert world.moto.path("cache", subnet, []).exists is False
    world.later(moto_state.CREATE_SECONDS)
    assert world.moto.path("cache", subnet, []).exists is True
    world.ec.modify_replication_group(ReplicationGroupId="cache", ApplyImmediately=True,
                                      ReplicationGroupDescription="changed")  # fmt: skip
    world.later(moto_state.MODIFY_STARTS_AFTER)
    assert world.status("cache") == "modifying"
    assert world.moto.path("cache", subnet, []).exists is True, "a modifying node serves"
    world.ec.delete_replication_group(ReplicationGroupId="cache")
    world.time.advance()
    assert world.moto.path("cache", subnet, []).exists is False


def test_a_modify_shows_available_then_modifying_then_available(world: World) -> None:
    create(world)
    with pytest.raises(ClientError) as info:
        world.ec.modify_replication_group(ReplicationGroupId="cache", ApplyImmediately=True,
                                          ReplicationGroupDescription="too early")  # fmt: skip
    assert info.value.response["Error"]["Code"] == "InvalidReplicationGroupState"
    world.later(moto_state.CREATE_SECONDS)
    answer = world.ec.modify_replication_group(
        ReplicationGroupId="cache", ReplicationGroupDescription="changed", ApplyImmediately=True
    )
    assert answer["ReplicationGroup"]["Status"] == "available", "as AWS may answer"
    world.later(moto_state.MODIFY_STARTS_AFTER - 0.05)
    assert world.status("cache") == "available", "still available just after the call"
    world.later(0.05)
    assert world.status("cache") == "modifying"
    world.later(moto_state.MODIFY_SECONDS)
    assert world.status("cache") == "available"
    assert world.time.pending("cache") == []


def test_a_deleted_group_is_deleting_then_gone_and_its_id_free(world: World) -> None:
    create(world)
    world.later(moto_state.CREATE_SECONDS)
    answer = world.ec.delete_replication_group(ReplicationGroupId="cache")
    assert answer["ReplicationGroup"]["Status"] == "deleting"
    with pytest.raises(ClientError) as info:
        world.ec.delete_replication_group(ReplicationGroupId="cache")
    assert info.value.response["Error"]["Code"] == "InvalidReplicationGroupState"
    world.later(moto_state.DELETE_SECONDS - 0.1)
    assert world.status("cache") == "deleting"
    world.later(0.1)
    with pytest.raises(ClientError) as gone:
        world.ec.describe_replication_groups(ReplicationGroupId="cache")
    assert gone.value.response["Error"]["Code"] == "ReplicationGroupNotFoundFault"
    assert create(world)["Status"] == "creating", "the id can be used again"


def test_cache_time_survives_a_moto_reset(world: World) -> None:
    """moto rebuilds its backends on reset; the next advance wraps the new one."""
    world.time.backend.reset()
    world.time.advance()
    assert create(world)["Status"] == "creating"


@pytest.fixture
def accounts() -> Iterator[tuple[Moto, Any, Any]]:
    with mock_aws():
        yield (
            Moto(REGION),
            boto3.client("iam", region_name=REGION),
            boto3.client("secretsmanager", region_name=REGION),
        )


def role(iam_client: Any, name: str, trust: dict[str, Any], **inline: dict[str, Any]) -> str:
    arn = iam_client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    for policy, document in inline.items():
        iam_client.put_role_policy(
            RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document)
        )
    return str(arn["Role"]["Arn"])


def allow(action: str, resource: str, effect: str = "Allow") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": action, "Resource": resource}],
    }


def test_the_execution_role_must_allow_get_secret_value(
    accounts: tuple[Moto, Any, Any],
) -> None:
    moto, iam_client, sm = accounts
    secret = sm.create_secret(Name="rexctl/c/auth-token", SecretString="t")["ARN"]
    prefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    reader = role(iam_client, "reader", TRUST,
                  secrets=allow("secretsmanager:GetSecretValue", f"{prefix}rexctl/*"))  # fmt: skip
    assert moto.secret_problem(reader, secret, "t1") == ""
    assert moto.secret_problem(reader, f"{secret}:password::", "t1") == "", "a JSON key"
    bare = role(iam_client, "bare", TRUST)
    assert moto.secret_problem(bare, secret, "t1") == (
        "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/bare/t1 is not "
        f"authorized to perform: secretsmanager:GetSecretValue on resource: {secret} because no "
        "identity-based policy allows the secretsmanager:GetSecretValue action"
    )
    denied = role(iam_client, "denied", TRUST,
                  all=allow("secretsmanager:*", "*"),
                  deny=allow("secretsmanager:GetSecretValue", secret, "Deny"))  # fmt: skip
    assert moto.secret_problem(denied, secret, "t1").endswith(
        "with an explicit deny in an identity-based policy"
    )


def test_a_role_ecs_cannot_assume_or_a_customer_key_fails_the_secret(
    accounts: tuple[Moto, Any, Any],
) -> None:
    moto, iam_client, sm = accounts
    secret = sm.create_secret(Name="rexctl/c/auth-token", SecretString="t")["ARN"]
    read = allow("secretsmanager:GetSecretValue", "*")
    untrusted = role(iam_client, "untrusted", {"Version": "2012-10-17", "Statement": []},
                     read=read)  # fmt: skip
    assert moto.secret_problem(untrusted, secret, "t1").startswith(
        f"ECS was unable to assume the role '{untrusted}' that was provided for this task."
    )
    missing = "arn:aws:iam::123456789012:role/nobody"
    assert moto.secret_problem(missing, secret, "t1").startswith("ECS was unable to assume")
    assert "no executionRoleArn" in moto.secret_problem("", secret, "t1")
    assert "by ARN" in moto.secret_problem(untrusted, "rexctl/c/auth-token", "t1")

    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    locked = sm.create_secret(Name="rexctl/c/locked", SecretString="t", KmsKeyId=key)["ARN"]
    reader = role(iam_client, "reader", TRUST, read=read)
    assert moto.secret_problem(reader, locked, "t1") == (
        "AccessDeniedException: Access to KMS is not allowed"
    )
    iam_client.put_role_policy(RoleName="reader", PolicyName="kms",
                               PolicyDocument=json.dumps(allow("kms:Decrypt", key)))  # fmt: skip
    assert moto.secret_problem(reader, locked, "t1") == ""


def test_the_aws_managed_execution_policy_can_be_attached(
    accounts: tuple[Moto, Any, Any],
) -> None:
    moto, iam_client, _ = accounts
    moto.provide_ecs_task_execution_policy()
    moto.provide_ecs_task_execution_policy()  # twice is harmless
    role(iam_client, "exec", TRUST)
    iam_client.attach_role_policy(
        RoleName="exec", PolicyArn=moto_state.ECS_TASK_EXECUTION_POLICY_ARN
    )
    policy = iam_client.get_policy(PolicyArn=moto_state.ECS_TASK_EXECUTION_POLICY_ARN)["Policy"]
    version = iam_client.get_policy_version(
        PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"]
    )["PolicyVersion"]
    assert version["Document"] == moto_state.ECS_TASK_EXECUTION_DOCUMENT
    found = moto.role_documents("arn:aws:iam::123456789012:role/exec")
    assert found is not None and len(found[1]) == 1


def test_a_service_without_a_deployment_configuration_gets_ecs_defaults() -> None:
    class Service:
        deployment_configuration: Any = None

    svc = Service()
    assert Moto.deployment_configuration(svc) == DeploymentConfig()
    assert svc.deployment_configuration == moto_state.DEFAULT_DEPLOYMENT_CONFIGURATION
    svc.deployment_configuration = {
        "minimumHealthyPercent": 50,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    cfg = Moto.deployment_configuration(svc)
    assert (cfg.minimum_healthy_percent, cfg.maximum_percent) == (50, 200)
    assert (cfg.circuit_breaker, cfg.rollback, cfg.reset_on_healthy_task) == (True, True, True)


# In-transit encryption and AUTH: what moto 5.2's ModifyReplicationGroup ignores (issue 13).

TOKEN_1 = "Token-one-0123456789"
TOKEN_2 = "Token-two-9876543210"


def ready(world: World, group_id: str = "cache", **changes: Any) -> dict[str, Any]:
    """Create the group (with `changes`) and let it become available."""
    params: dict[str, Any] = {
        "ReplicationGroupId": group_id, "ReplicationGroupDescription": "cache", "Engine": "redis",
        "EngineVersion": "7.1", "CacheNodeType": "cache.t4g.micro", "NumCacheClusters": 1,
        "CacheSubnetGroupName": "cache-subnets",
        **changes,
    }  # fmt: skip
    world.ec.create_replication_group(**params)
    world.later(moto_state.CREATE_SECONDS)
    return described(world, group_id)


def described(world: World, group_id: str = "cache") -> dict[str, Any]:
    return dict(world.ec.describe_replication_groups(ReplicationGroupId=group_id)
                ["ReplicationGroups"][0])  # fmt: skip


def modify(world: World, **params: Any) -> dict[str, Any]:
    world.ec.modify_replication_group(ReplicationGroupId="cache", ApplyImmediately=True, **params)
    world.later(moto_state.MODIFY_STARTS_AFTER)
    during = described(world)
    world.later(moto_state.MODIFY_SECONDS)
    return during


def test_tls_later_preferred_then_required_with_aws_endpoint_names(world: World) -> None:
    group = ready(world)
    plain_name = group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    assert plain_name.startswith("cache.") and ".ng.0001.use1.cache.amazonaws.com" in plain_name
    assert group["TransitEncryptionEnabled"] is False and world.moto.transit_mode("cache") == "off"
    during = modify(world, TransitEncryptionEnabled=True, TransitEncryptionMode="preferred")
    assert during["Status"] == "modifying"
    assert during["PendingModifiedValues"] == {
        "TransitEncryptionEnabled": True, "TransitEncryptionMode": "preferred"
    }  # fmt: skip
    assert during["TransitEncryptionEnabled"] is False, "applied when the modify is done"
    group = described(world)
    tls_name = group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    assert (group["Status"], group["TransitEncryptionMode"]) == ("available", "preferred")
    assert tls_name.startswith("master.cache.") and tls_name != plain_name
    assert {plain_name, tls_name} <= set(world.moto.cache_endpoints()), "both names resolve"
    assert world.moto.transit_mode("cache") == "preferred"
    modify(world, TransitEncryptionMode="required")
    assert world.moto.transit_mode("cache") == "required"
    assert plain_name not in world.moto.cache_endpoints(), "the plain names are gone"
    assert tls_name in world.moto.cache_endpoints()


def test_a_group_created_with_tls_is_required_and_keeps_moto_s_names(world: World) -> None:
    group = ready(world, TransitEncryptionEnabled=True, AuthToken=TOKEN_1)
    assert group["NodeGroups"][0]["PrimaryEndpoint"]["Address"].startswith("master.cache.")
    assert group["TransitEncryptionMode"] == "required" and group["AuthTokenEnabled"] is True
    auth = world.moto.node_auth()
    assert auth.tokens == (TOKEN_1,) and auth.open is False
    with pytest.raises(ClientError) as refused:  # SET is allowed only after ROTATE
        world.ec.modify_replication_group(
            ReplicationGroupId="cache",
            ApplyImmediately=True,
            AuthToken=TOKEN_1,
            AuthTokenUpdateStrategy="SET",
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterCombination"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"TransitEncryptionEnabled": True, "TransitEncryptionMode": "required"},
         "InvalidParameterCombination"),
        ({"TransitEncryptionMode": "required"}, "InvalidParameterCombination"),
        ({"AuthToken": TOKEN_1, "AuthTokenUpdateStrategy": "ROTATE"},
         "InvalidParameterCombination"),
    ],
)  # fmt: skip
def test_what_aws_refuses_on_a_plain_group_changes_nothing(
    world: World, params: dict[str, Any], code: str
) -> None:
    ready(world)
    with pytest.raises(ClientError) as refused:
        world.ec.modify_replication_group(ReplicationGroupId="cache", ApplyImmediately=True,
                                          **params)  # fmt: skip
    assert refused.value.response["Error"]["Code"] == code
    assert TOKEN_1 not in str(refused.value)
    world.later(moto_state.MODIFY_STARTS_AFTER + moto_state.MODIFY_SECONDS)
    group = described(world)
    assert (group["Status"], group["TransitEncryptionEnabled"]) == ("available", False)
    assert world.moto.node_auth().tokens == ()


def test_rotate_keeps_the_previous_token_set_keeps_only_the_new(world: World) -> None:
    ready(world, TransitEncryptionEnabled=True)
    assert world.moto.node_auth() == moto_state.NodeAuth((), True)
    during = modify(world, AuthToken=TOKEN_1, AuthTokenUpdateStrategy="ROTATE")
    assert during["PendingModifiedValues"] == {"AuthTokenStatus": "ROTATING"}
    auth = world.moto.node_auth()
    assert (auth.tokens, auth.open) == ((TOKEN_1,), True), "a token, and still none at all"
    assert described(world)["AuthTokenEnabled"] is True
    first = described(world)["AuthTokenLastModifiedDate"]
    modify(world, AuthToken=TOKEN_1, AuthTokenUpdateStrategy="SET")
    assert (world.moto.node_auth().tokens, world.moto.node_auth().open) == ((TOKEN_1,), False)
    assert described(world)["AuthTokenLastModifiedDate"] >= first
    modify(world, AuthToken=TOKEN_2, AuthTokenUpdateStrategy="ROTATE")
    assert world.moto.node_auth().tokens == (TOKEN_1, TOKEN_2)
    with pytest.raises(ClientError):  # SET must name the token rotated last
        world.ec.modify_replication_group(
            ReplicationGroupId="cache",
            ApplyImmediately=True,
            AuthToken=TOKEN_1,
            AuthTokenUpdateStrategy="SET",
        )
    modify(world, AuthToken=TOKEN_2, AuthTokenUpdateStrategy="SET")
    assert world.moto.node_auth().tokens == (TOKEN_2,)
    assert TOKEN_2 not in repr(world.moto.node_auth())


def test_the_node_follows_the_group_whose_security_changed_last(world: World) -> None:
    ready(world, "cache", TransitEncryptionEnabled=True, AuthToken=TOKEN_1)
    ready(world, "other")
    assert world.moto.node_auth().tokens == (), "the newer group has no token"
    modify(world, AuthToken=TOKEN_2, AuthTokenUpdateStrategy="ROTATE")
    assert world.moto.node_auth().tokens == (TOKEN_1, TOKEN_2)


# Secrets Manager: AWSCURRENT as AWS keeps it ----------------------------------------------------


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        moto_state.fix_secret_versions()
        yield boto3.client("secretsmanager", region_name=REGION)


def test_a_promoted_version_is_what_a_read_without_version_gets(sm: Any) -> None:
    """AWS: "If you don't specify either a VersionStage or VersionId, Secrets Manager returns the
    AWSCURRENT version." moto 5.2 kept answering the version it last put as current."""
    arn = sm.create_secret(Name="rexctl/cache/auth-token", SecretString="old-token")["ARN"]
    old = sm.get_secret_value(SecretId=arn)["VersionId"]
    new = sm.put_secret_value(SecretId=arn, SecretString="new-token",
                              VersionStages=["AWSPENDING"])["VersionId"]  # fmt: skip
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "old-token", "staged, not current"
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=new,
                                   RemoveFromVersionId=old)  # fmt: skip
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "new-token"
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert stages == {old: ["AWSPREVIOUS"], new: ["AWSPENDING", "AWSCURRENT"]}


def test_a_label_on_another_version_moves_only_when_named(sm: Any) -> None:
    arn = sm.create_secret(Name="rexctl/cache/auth-token", SecretString="old-token")["ARN"]
    old = sm.get_secret_value(SecretId=arn)["VersionId"]
    new = sm.put_secret_value(SecretId=arn, SecretString="new-token",
                              VersionStages=["AWSPENDING"])["VersionId"]  # fmt: skip
    with pytest.raises(ClientError) as refused:  # moto alone puts AWSPENDING on both versions
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING",
                                       MoveToVersionId=old)  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "RemoveFromVersionId must name the version" in refused.value.response["Error"]["Message"]
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert stages == {old: ["AWSCURRENT"], new: ["AWSPENDING"]}
