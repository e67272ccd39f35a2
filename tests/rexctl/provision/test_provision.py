"""`rexctl.provision.provision` against in-process moto (steps 1-11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rexctl.aws.secrets import secret_name, token_problem
from rexctl.aws.session import ClientSet
from rexctl.errors import AwsError, CheckFailed, ConfigError, ExitCode
from rexctl.provision import provision
from rexctl.provision.model import RecordingReporter
from tests.helpers import FakeTime
from tests.rexctl.aws.world import (
    World,
    build_world,
    elasticache_backend,
    snapshot,
    write_config,
)


@pytest.fixture
def world(aws: ClientSet) -> World:
    return build_world(aws)


def run(aws: ClientSet, cfg: Any, **kwargs: Any) -> tuple[Any, RecordingReporter]:
    reporter = kwargs.pop("reporter", None) or RecordingReporter()
    t = kwargs.pop("time", None) or FakeTime(start=1000.0)
    result = provision(aws, cfg, reporter=reporter, clock=t.clock, sleep=t.sleep, **kwargs)
    return result, reporter


def test_fresh_provision_creates_everything_tagged(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world)
    result, reporter = run(aws, cfg)

    assert result.error() is None
    assert result.changed
    assert [a.split(" ")[0:2] for a in result.applied] == [
        ["create", "cache"],
        ["create", "security"],
        ["allow", "TCP"],
        ["create", "replication"],
    ]
    assert result.cache.status == "available"
    assert result.cache.endpoint.startswith("master.rexpress-redis.")
    assert f"primary endpoint {result.cache.endpoint}:6379" in reporter.text()

    # Step 8: the SG is in the service's VPC with exactly one inbound rule, from the ECS SG.
    sgs = aws.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["rexpress-redis-sg"]}]
    )["SecurityGroups"]
    assert len(sgs) == 1 and sgs[0]["VpcId"] == world.vpc_id
    tags = {t["Key"]: t["Value"] for t in sgs[0]["Tags"]}
    assert tags == {"managed-by": "rexctl", "rexctl:cache-id": "rexpress-redis"}
    perms = sgs[0]["IpPermissions"]
    assert len(perms) == 1
    assert (perms[0]["FromPort"], perms[0]["ToPort"], perms[0]["IpProtocol"]) == (
        6379,
        6379,
        "tcp",
    )
    assert [p["GroupId"] for p in perms[0]["UserIdGroupPairs"]] == [world.ecs_sg]
    assert perms[0]["IpRanges"] == [] and perms[0]["Ipv6Ranges"] == []
    # A description AWS accepts: EC2 refuses an apostrophe (UserIdGroupPair.Description), which
    # step 8 sent until issue 10 ("rexctl: the ECS service's tasks"); moto accepted it.
    assert perms[0]["UserIdGroupPairs"][0]["Description"] == "rexctl: from the ECS service tasks"

    # Step 7: private subnets only.
    group = aws.elasticache.describe_cache_subnet_groups(
        CacheSubnetGroupName="rexpress-redis-subnets"
    )["CacheSubnetGroups"][0]
    assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted(world.private_subnets)
    managed = [
        {"Key": "managed-by", "Value": "rexctl"},
        {"Key": "rexctl:cache-id", "Value": "rexpress-redis"},
    ]
    assert aws.elasticache.list_tags_for_resource(ResourceName=group["ARN"])["TagList"] == managed
    rules = aws.ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [sgs[0]["GroupId"]]}]
    )["SecurityGroupRules"]
    [inbound] = [r for r in rules if not r["IsEgress"]]
    assert inbound["Tags"] == managed

    # Steps 4-6, 9: the replication group as the guide asks.
    rg = aws.elasticache.describe_replication_groups(ReplicationGroupId="rexpress-redis")[
        "ReplicationGroups"
    ][0]
    assert rg["ClusterEnabled"] is False
    assert rg["CacheNodeType"] == "cache.t4g.micro"
    assert rg["MemberClusters"] == ["rexpress-redis-001"]
    assert rg["AutomaticFailover"] == "disabled" and rg["MultiAZ"] == "disabled"
    assert rg["AtRestEncryptionEnabled"] is True
    assert rg["TransitEncryptionEnabled"] is False and rg["AuthTokenEnabled"] is False
    assert aws.elasticache.list_tags_for_resource(ResourceName=rg["ARN"])["TagList"] == managed
    backend_rg = elasticache_backend().replication_groups["rexpress-redis"]
    assert backend_rg.cache_subnet_group_name == "rexpress-redis-subnets"
    assert backend_rg.security_group_ids == [sgs[0]["GroupId"]]
    assert backend_rg.engine == "redis"

    # In-transit encryption off by default, with a visible warning.
    assert ("warn", result.plan.warnings[0]) in reporter.events
    assert "In-transit encryption is off" in result.plan.warnings[0]


def test_second_run_is_a_no_op_and_says_so(aws: ClientSet, world: World, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world)
    run(aws, cfg)
    before = snapshot(aws)
    result, reporter = run(aws, cfg)
    assert result.applied == []
    assert not result.changed
    assert "Nothing to do: steps 1-11 already match rexctl.toml." in reporter.text()
    assert result.cache.endpoint
    assert snapshot(aws) == before


def test_replicas_turn_on_failover_and_multi_az(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    sent: dict[str, Any] = {}
    aws.elasticache.meta.events.register(
        "provide-client-params.elasticache.CreateReplicationGroup",
        lambda params, **_: sent.update(params),
    )
    cfg = write_config(tmp_path / "rexctl.toml", world, replicas=1, multi_az=True)
    run(aws, cfg)
    # moto ignores NumCacheClusters (it only counts ReplicasPerNodeGroup), so check what was sent.
    assert sent["NumCacheClusters"] == 2
    assert sent["ClusterMode"] == "disabled"
    rg = aws.elasticache.describe_replication_groups(ReplicationGroupId="rexpress-redis")[
        "ReplicationGroups"
    ][0]
    assert rg["AutomaticFailover"] == "enabled" and rg["MultiAZ"] == "enabled"


def test_configured_public_subnet_is_refused(aws: ClientSet, world: World, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "rexctl.toml", world, subnets=[world.private_subnets[0], world.public_subnets[1]]
    )
    before = snapshot(aws)
    result, _ = run(aws, cfg)
    error = result.error()
    assert isinstance(error, ConfigError) and error.exit_code == ExitCode.BAD_INPUT
    assert (
        f"Step 7: Subnet {world.public_subnets[1]} (cache.subnets) is public: its route table "
        in error.message
    )
    assert f"sends 0.0.0.0/0 to {world.igw}. Guide step 7 allows private subnets only." in (
        error.message
    )
    assert "nothing was changed" in error.message
    assert error.hint == (
        f"Fix `cache.subnets` in {cfg.path}, or leave it empty to use the VPC's private subnets."
    )
    assert result.applied == []
    assert snapshot(aws) == before


def test_a_refused_setting_from_the_environment_names_the_variable(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    from rexctl.config import load

    path = tmp_path / "rexctl.toml"
    write_config(path, world)
    cfg = load(
        path,
        environ={
            "REXCTL_CACHE_SUBNETS": world.public_subnets[0],
            "REXCTL_CACHE_ENGINE_VERSION": "latest",
        },
    )
    error = run(aws, cfg)[0].error()
    assert isinstance(error, ConfigError)
    assert error.hint == (
        "Set `cache.engine_version` to one of them in the environment variable "
        "REXCTL_CACHE_ENGINE_VERSION.\n"
        "Fix `cache.subnets` in the environment variable REXCTL_CACHE_SUBNETS, or leave it "
        "empty to use the VPC's private subnets."
    )


def test_single_az_is_a_warning(aws: ClientSet, world: World, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world, subnets=[world.private_subnets[1]])
    result, reporter = run(aws, cfg)
    assert result.error() is None
    assert any(
        kind == "warn" and "subnets are all in us-east-1b" in text for kind, text in reporter.events
    )


def test_existing_cidr_rule_stops_provisioning_and_names_it(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    sg = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="by hand", VpcId=world.vpc_id
    )["GroupId"]
    rule = aws.ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6000,
                "ToPort": 7000,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
            }
        ],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    cfg = write_config(tmp_path / "rexctl.toml", world)
    before = snapshot(aws)
    result, _ = run(aws, cfg)
    error = result.error()
    assert isinstance(error, CheckFailed)
    assert (
        f"Step 8: Security group {sg} (rexpress-redis-sg) allows port 6379 from an address range "
        f"(rule {rule} from 10.0.0.0/8); guide step 8 allows only the ECS service's security "
        "group." in error.message
    )
    assert error.hint == (
        f"Remove it: `aws ec2 revoke-security-group-ingress --group-id {sg} "
        f"--security-group-rule-ids {rule}`, then run `rexctl provision` again."
    )
    assert snapshot(aws) == before


def test_open_to_the_world_rule_is_refused_even_on_all_ports(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    sg = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="by hand", VpcId=world.vpc_id
    )["GroupId"]
    aws.ec2.authorize_security_group_ingress(
        GroupId=sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    cfg = write_config(tmp_path / "rexctl.toml", world)
    error = run(aws, cfg)[0].error()
    assert error is not None and "from 0.0.0.0/0" in error.message


def test_existing_untagged_sg_is_reused_and_gets_its_rule(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    sg = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="by hand", VpcId=world.vpc_id
    )["GroupId"]
    cfg = write_config(tmp_path / "rexctl.toml", world)
    result, _ = run(aws, cfg)
    assert result.error() is None
    assert f"allow TCP 6379 into {sg} from {world.ecs_sg}" in result.applied
    assert not any(a.startswith("create security group") for a in result.applied)
    groups = aws.ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert groups[0]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == world.ecs_sg


def test_missing_ecs_security_group_is_a_clear_error(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    aws.ec2.delete_security_group(GroupId=world.ecs_sg)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    result, _ = run(aws, cfg)
    error = result.error()
    assert isinstance(error, AwsError) and error.exit_code == ExitCode.AWS_ERROR
    assert (
        f"Step 8: The ECS service backend's security group {world.ecs_sg} does not exist, so "
        "there is no source for the cache's inbound rule." in error.message
    )
    assert result.applied == []


def test_non_awsvpc_service_is_refused(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws, network_mode="bridge")
    cfg = write_config(tmp_path / "rexctl.toml", world)
    with pytest.raises(ConfigError, match="does not use awsvpc networking"):
        run(aws, cfg)


def test_waits_while_creating_and_reports_progress(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world)
    t = FakeTime(start=1000.0)

    class Flipper(RecordingReporter):
        def success(self, message: str) -> None:
            super().success(message)
            if "create replication group" in message:  # moto says available at once
                elasticache_backend().replication_groups["rexpress-redis"].status = "creating"

    def finish(sleeps: int) -> None:
        if sleeps == 3:
            elasticache_backend().replication_groups["rexpress-redis"].status = "available"

    t.on_sleep.append(finish)
    reporter = Flipper()
    result, _ = run(aws, cfg, reporter=reporter, time=t)
    assert result.cache.status == "available"
    assert t.sleeps == [1.0, 2.0, 4.0]
    assert reporter.progress_reports == [
        ("creating", 0.0),
        ("creating", 1.0),
        ("creating", 3.0),
        ("available", 7.0),
    ]


def test_wait_times_out_with_advice(aws: ClientSet, world: World, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world)
    run(aws, cfg)
    elasticache_backend().replication_groups["rexpress-redis"].status = "creating"
    t = FakeTime(start=1000.0)
    reporter = RecordingReporter()
    with pytest.raises(AwsError) as info:
        run(aws, cfg, reporter=reporter, time=t, timeout=20)
    assert info.value.message == (
        "Replication group rexpress-redis was not available after 20 s (it is creating)."
    )
    assert "run `rexctl provision` again to keep waiting" in (info.value.hint or "")
    assert sum(t.sleeps) == 20
    assert reporter.progress_reports[-1] == ("creating", 20.0)


def test_auth_token_generated_stored_and_never_shown(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    sent: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.update(params)

    aws.elasticache.meta.events.register(
        "provide-client-params.elasticache.CreateReplicationGroup", capture
    )
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    result, reporter = run(aws, cfg)
    assert result.error() is None

    secret = aws.secretsmanager.describe_secret(SecretId=secret_name("rexpress-redis"))
    assert {"Key": "managed-by", "Value": "rexctl"} in secret["Tags"]
    token = aws.secretsmanager.get_secret_value(SecretId=secret["ARN"])["SecretString"]
    assert token_problem(token) is None
    assert sent["AuthToken"] == token
    assert sent["TransitEncryptionEnabled"] is True
    rg = aws.elasticache.describe_replication_groups(ReplicationGroupId="rexpress-redis")
    assert rg["ReplicationGroups"][0]["AuthTokenEnabled"] is True
    assert token not in reporter.text()
    assert token not in repr(result.to_dict())
    assert "In-transit encryption is off" not in reporter.text()

    # A second run reuses the stored secret and changes nothing.
    again, reporter2 = run(aws, cfg)
    assert again.applied == []
    assert token not in reporter2.text()


def test_auth_token_is_redacted_from_a_failure(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    token = "Abcdefghijklmnop1234567890-xyz!!"

    def explode(params: dict[str, Any], **_: Any) -> None:
        raise AwsError(f"refused token {params['AuthToken']}")

    aws.elasticache.meta.events.register(
        "provide-client-params.elasticache.CreateReplicationGroup", explode
    )
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    with pytest.raises(AwsError) as info:
        run(aws, cfg, token_factory=lambda: token)
    assert token not in str(info.value)
    assert "refused token (redacted)" in info.value.message
    assert "Done before this failed: create cache subnet group rexpress-redis-subnets;" in (
        info.value.hint or ""
    )
    assert "Run `rexctl provision` again: it continues from there." in (info.value.hint or "")
    # Re-running continues: the secret and the token already exist, the group is created.
    aws.elasticache.meta.events.unregister(
        "provide-client-params.elasticache.CreateReplicationGroup", explode
    )
    result, _ = run(aws, cfg)
    assert [a.split(" (")[0] for a in result.applied] == [
        "use the AUTH token stored in rexctl/rexpress-redis/auth-token",
        "create replication group rexpress-redis",
    ]


def test_bad_generated_token_is_refused_before_any_call(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    with pytest.raises(Exception, match="AUTH token is not usable: an AUTH token may only use"):
        run(aws, cfg, token_factory=lambda: "x" * 20 + "@")
    assert aws.secretsmanager.list_secrets()["SecretList"] == []


def test_dry_run_changes_nothing(aws: ClientSet, world: World, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    before = snapshot(aws)
    result, reporter = run(aws, cfg, dry_run=True)
    assert snapshot(aws) == before
    assert result.dry_run and not result.changed
    assert "Would create replication group rexpress-redis" in reporter.text()
    kinds = [a.kind for a in result.plan.actions()]
    assert kinds == [
        "create_subnet_group",
        "create_security_group",
        "authorize_ingress",
        "create_auth_secret",
        "create_replication_group",
    ]
    params = result.plan.actions()[-1].params
    assert str(params["AuthToken"]) == "<auth_token>"
    assert str(params["SecurityGroupIds"][0]) == "<cache_sg_id>"
    assert [s.number for s in result.plan.steps] == list(range(1, 12))


def test_node_type_change_is_applied_in_place(aws: ClientSet, world: World, tmp_path: Path) -> None:
    run(aws, write_config(tmp_path / "rexctl.toml", world))
    cfg = write_config(tmp_path / "rexctl.toml", world, node_type="cache.t4g.small")
    result, _ = run(aws, cfg)
    assert result.applied == ["modify rexpress-redis: node type cache.t4g.micro → cache.t4g.small"]
    rg = aws.elasticache.describe_replication_groups(ReplicationGroupId="rexpress-redis")
    assert rg["ReplicationGroups"][0]["CacheNodeType"] == "cache.t4g.small"


def test_changes_that_cannot_be_made_in_place_are_explained(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    run(aws, write_config(tmp_path / "rexctl.toml", world, tls=True))
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=False, replicas=2)
    before = snapshot(aws)
    result, _ = run(aws, cfg)
    assert result.applied == []
    error = result.error()
    assert isinstance(error, CheckFailed)
    assert "Step 6: rexpress-redis has 0 replica(s), rexctl.toml asks for 2." in error.message
    assert "aws elasticache increase-replica-count --replication-group-id rexpress-redis" in (
        error.message
    )
    # TLS is turned on later in place (issue 13), never off: AWS documents enabling only.
    assert (
        "Step 9: rexpress-redis has in-transit encryption and rexctl.toml asks for none. AWS "
        "documents in-transit encryption on a running group only as something to turn on"
        in error.message
    )
    assert error.message.endswith("then `rexctl teardown` with the old `cache.id`.")
    assert "Nothing was deleted." in (error.hint or "")
    assert snapshot(aws) == before


def test_a_deleting_group_blocks(aws: ClientSet, world: World, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "rexctl.toml", world)
    run(aws, cfg)
    elasticache_backend().replication_groups["rexpress-redis"].status = "deleting"
    error = run(aws, cfg)[0].error()
    assert isinstance(error, AwsError)
    assert "Step 10: Replication group rexpress-redis is deleting." in error.message


def test_bad_inputs_are_refused_before_aws(aws: ClientSet, world: World, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "rexctl.toml", world, engine_version="seven", subnet_group="bad_name!"
    )
    before = snapshot(aws)
    result = run(aws, cfg)[0]
    error = result.error()
    assert isinstance(error, ConfigError) and error.exit_code == ExitCode.BAD_INPUT
    # The engine version is checked against what ElastiCache lists (DescribeCacheEngineVersions),
    # the subnet group's name against the rule AWS documents for CreateCacheSubnetGroup.
    assert (
        "Step 5: `cache.engine_version` 'seven' is not a redis version ElastiCache offers in "
        "us-east-1 (DescribeCacheEngineVersions lists: 4.0.10, 5.0.6, 6.0, 6.2, 7.0, 7.1)."
        in error.message
    )
    assert (
        "Step 7: AWS would refuse CreateCacheSubnetGroup: CacheSubnetGroupName must be at most "
        "255 letters, digits or hyphens (it contains '_', '!') (ElastiCache API reference, "
        "CreateCacheSubnetGroup.CacheSubnetGroupName). The value comes from "
        "`cache.subnet_group` ('bad_name!')." in error.message
    )
    assert result.applied == []
    assert snapshot(aws) == before


def test_existing_cache_is_moved_into_rexctl_group(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    """moto hides member clusters and ignores SecurityGroupIds on modify: ElastiCache is stubbed
    with exact parameters, EC2 and ECS stay on moto."""
    import boto3
    from botocore.stub import Stubber

    from tests.rexctl.aws.world import REGION

    sg = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="rexctl", VpcId=world.vpc_id
    )["GroupId"]
    aws.ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": world.ecs_sg}],
            }
        ],
    )
    cfg = write_config(tmp_path / "rexctl.toml", world)
    rg_arn = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rexpress-redis"
    sng_arn = "arn:aws:elasticache:us-east-1:123456789012:subnetgroup:rexpress-redis-subnets"
    endpoint = "master.rexpress-redis.abc123.use1.cache.amazonaws.com"

    def group(status: str) -> dict[str, Any]:
        return {
            "ReplicationGroupId": "rexpress-redis",
            "Status": status,
            "ARN": rg_arn,
            "MemberClusters": ["rexpress-redis-001"],
            "NodeGroups": [{"PrimaryEndpoint": {"Address": endpoint, "Port": 6379}}],
            "ClusterEnabled": False,
            "Engine": "redis",
            "CacheNodeType": "cache.t4g.micro",
            "AutomaticFailover": "disabled",
            "MultiAZ": "disabled",
            "AtRestEncryptionEnabled": True,
            "TransitEncryptionEnabled": False,
            "AuthTokenEnabled": False,
        }

    ec = boto3.client("elasticache", region_name=REGION)
    stub = Stubber(ec)
    name = {"ReplicationGroupId": "rexpress-redis"}
    tags = {"TagList": [{"Key": "managed-by", "Value": "rexctl"}]}
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group("available")]}, name
    )
    stub.add_response(
        "describe_cache_subnet_groups",
        {
            "CacheSubnetGroups": [
                {
                    "CacheSubnetGroupName": "rexpress-redis-subnets",
                    "ARN": sng_arn,
                    "VpcId": world.vpc_id,
                    "Subnets": [{"SubnetIdentifier": s} for s in world.private_subnets],
                }
            ]
        },
        {"CacheSubnetGroupName": "rexpress-redis-subnets"},
    )
    stub.add_response(
        "describe_cache_clusters",
        {
            "CacheClusters": [
                {
                    "CacheClusterId": "rexpress-redis-001",
                    "CacheSubnetGroupName": "rexpress-redis-subnets",
                    "SecurityGroups": [{"SecurityGroupId": "sg-0123456789abcdef0"}],
                }
            ]
        },
        {"CacheClusterId": "rexpress-redis-001"},
    )
    stub.add_response("list_tags_for_resource", tags, {"ResourceName": sng_arn})
    stub.add_response("list_tags_for_resource", tags, {"ResourceName": rg_arn})
    stub.add_response(
        "modify_replication_group",
        {"ReplicationGroup": group("available")},
        {
            "ReplicationGroupId": "rexpress-redis",
            "SecurityGroupIds": [sg],
            "ApplyImmediately": True,
        },
    )

    def node(security_group: str) -> dict[str, Any]:
        return {
            "CacheClusters": [
                {
                    "CacheClusterId": "rexpress-redis-001",
                    "CacheSubnetGroupName": "rexpress-redis-subnets",
                    "SecurityGroups": [{"SecurityGroupId": security_group}],
                }
            ]
        }

    member = {"CacheClusterId": "rexpress-redis-001"}
    # AWS may still show `available`, and the old group, right after the modify call (issue 10,
    # item 8): the wait goes on until the node shows the new group.
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group("available")]}, name
    )
    stub.add_response("describe_cache_clusters", node("sg-0123456789abcdef0"), member)
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group("modifying")]}, name
    )
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group("available")]}, name
    )
    stub.add_response("describe_cache_clusters", node(sg), member)
    mixed = ClientSet(ec2=aws.ec2, ecs=aws.ecs, elasticache=ec, secretsmanager=aws.secretsmanager)
    t = FakeTime(start=1000.0)
    with stub:
        result, reporter = run(mixed, cfg, time=t)
        stub.assert_no_pending_responses()
    assert result.error() is None
    assert result.applied == [f"put rexpress-redis in security group {sg}"]
    assert reporter.progress_reports == [
        ("available, not yet changed: security groups are still sg-0123456789abcdef0", 0.0),
        ("modifying", 1.0),
        ("available", 3.0),
    ]


# Issue 10: green here means green on AWS.


def test_the_executor_retries_a_new_group_ec2_does_not_find_yet(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    """EC2 answers InvalidGroup.NotFound for a moment after CreateSecurityGroup (its eventual
    consistency; the sandbox does the same for 0.5 s): the rule is authorized after retries."""
    import boto3
    from botocore.stub import Stubber

    from rexctl.aws import ec2 as ec2_api
    from rexctl.provision.apply import Executor
    from rexctl.provision.discover import discover
    from rexctl.provision.plan import build_plan
    from tests.rexctl.aws.world import REGION

    cfg = write_config(tmp_path / "rexctl.toml", world)
    plan = build_plan(discover(aws, cfg), cfg)
    actions = [a for a in plan.actions() if a.step == 8]
    assert [a.kind for a in actions] == ["create_security_group", "authorize_ingress"]
    ec2 = boto3.client("ec2", region_name=REGION)
    stub = Stubber(ec2)
    tags = {"managed-by": "rexctl", "rexctl:cache-id": "rexpress-redis"}
    stub.add_response(
        "create_security_group",
        {"GroupId": "sg-0new"},
        ec2_api.security_group_request(
            "rexpress-redis-sg",
            world.vpc_id,
            "rexctl: Redis rexpress-redis, port 6379 from the ECS service",
            tags,
        ),
    )
    authorize = ec2_api.ingress_from_group_request(
        "sg-0new", 6379, world.ecs_sg, "rexctl: from the ECS service tasks", tags
    )
    for _ in range(2):
        stub.add_client_error(
            "authorize_security_group_ingress",
            "InvalidGroup.NotFound",
            "The security group 'sg-0new' does not exist",
            expected_params=authorize,
        )
    stub.add_response(
        "authorize_security_group_ingress",
        {"Return": True, "SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1"}]},
        authorize,
    )
    t = FakeTime()
    stubbed = ClientSet(
        ec2=ec2, ecs=aws.ecs, elasticache=aws.elasticache, secretsmanager=aws.secretsmanager
    )
    executor = Executor(stubbed, RecordingReporter(), sleep=t.sleep)
    with stub:
        executor.apply(actions)
        stub.assert_no_pending_responses()
    assert t.sleeps == [0.2, 0.4]
    assert executor.outputs["cache_sg_id"] == "sg-0new"


def test_valkey_from_the_environment_is_created_with_engine_valkey(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    from rexctl.config import load

    sent: dict[str, Any] = {}
    aws.elasticache.meta.events.register(
        "provide-client-params.elasticache.CreateReplicationGroup",
        lambda params, **_: sent.update(params),
    )
    path = tmp_path / "rexctl.toml"
    write_config(path, world)
    cfg = load(
        path, environ={"REXCTL_CACHE_ENGINE": "valkey", "REXCTL_CACHE_ENGINE_VERSION": "8.0"}
    )
    result, _ = run(aws, cfg)
    assert result.error() is None
    assert (sent["Engine"], sent["EngineVersion"]) == ("valkey", "8.0")
    assert elasticache_backend().replication_groups["rexpress-redis"].engine == "valkey"
    # The default version is a Redis OSS one: Valkey does not offer it, and AWS's list says so.
    with pytest.raises(ConfigError, match="must be redis or valkey"):
        load(path, environ={"REXCTL_CACHE_ENGINE": "memcached"})


def test_a_locked_down_egress_is_reported_with_the_command(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    """A service whose security group allows no outbound TCP 6379 cannot reach the cache: step 8
    says so with the command that fixes it; the rest is created, and provision exits 1."""
    aws.ec2.revoke_security_group_egress(
        GroupId=world.ecs_sg,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    aws.ec2.authorize_security_group_egress(
        GroupId=world.ecs_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    cfg = write_config(tmp_path / "rexctl.toml", world)
    result, _ = run(aws, cfg)
    error = result.error()
    assert isinstance(error, CheckFailed) and error.exit_code == ExitCode.CHECK_FAILED
    assert result.plan.steps[7].state == "manual"
    assert (
        f"Step 8: The ECS service's security group(s) {world.ecs_sg} allow no outbound TCP 6379 "
        "to the cache" in error.message
    )
    assert (
        f"`aws ec2 authorize-security-group-egress --group-id {world.ecs_sg} --ip-permissions "
        '\'[{"IpProtocol":"tcp","FromPort":6379,"ToPort":6379,"IpRanges":'
        '[{"CidrIp":"10.20.10.0/24"},{"CidrIp":"10.20.11.0/24"}]}]\'`' in error.message
    )
    assert result.cache is not None and result.cache.status == "available"
    # Fixed by the command's rule: done.
    aws.ec2.authorize_security_group_egress(
        GroupId=world.ecs_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "IpRanges": [{"CidrIp": "10.20.10.0/24"}, {"CidrIp": "10.20.11.0/24"}],
            }
        ],
    )
    again, _ = run(aws, cfg)
    assert again.error() is None and again.plan.steps[7].state == "done"


def _stubbed_group(world: World, **changes: Any) -> dict[str, Any]:
    group = {
        "ReplicationGroupId": "rexpress-redis",
        "Status": "available",
        "ARN": "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rexpress-redis",
        "MemberClusters": ["rexpress-redis-001"],
        "NodeGroups": [
            {
                "PrimaryEndpoint": {
                    "Address": "master.rexpress-redis.abc123.use1.cache.amazonaws.com",
                    "Port": 6379,
                }
            }
        ],
        "ClusterEnabled": False,
        "Engine": "redis",
        "CacheNodeType": "cache.t4g.micro",
        "AutomaticFailover": "disabled",
        "MultiAZ": "disabled",
        "AtRestEncryptionEnabled": True,
        "TransitEncryptionEnabled": False,
        "AuthTokenEnabled": False,
    }
    group.update(changes)
    return group


def _existing_cache_stub(world: World, sg: str, ec: Any) -> Any:
    """ElastiCache answering discover for a cache in rexctl's subnet group and security group."""
    from botocore.stub import Stubber

    stub = Stubber(ec)
    rg_arn = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rexpress-redis"
    sng_arn = "arn:aws:elasticache:us-east-1:123456789012:subnetgroup:rexpress-redis-subnets"
    name = {"ReplicationGroupId": "rexpress-redis"}
    tags = {"TagList": [{"Key": "managed-by", "Value": "rexctl"}]}
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [_stubbed_group(world)]}, name
    )
    stub.add_response(
        "describe_cache_subnet_groups",
        {
            "CacheSubnetGroups": [
                {
                    "CacheSubnetGroupName": "rexpress-redis-subnets",
                    "ARN": sng_arn,
                    "VpcId": world.vpc_id,
                    "Subnets": [{"SubnetIdentifier": s} for s in world.private_subnets],
                }
            ]
        },
        {"CacheSubnetGroupName": "rexpress-redis-subnets"},
    )
    stub.add_response(
        "describe_cache_clusters",
        {
            "CacheClusters": [
                {
                    "CacheClusterId": "rexpress-redis-001",
                    "CacheSubnetGroupName": "rexpress-redis-subnets",
                    "EngineVersion": "7.1.0",
                    "SecurityGroups": [{"SecurityGroupId": sg}],
                }
            ]
        },
        {"CacheClusterId": "rexpress-redis-001"},
    )
    return stub, name, tags, rg_arn, sng_arn


def _cache_sg(aws: ClientSet, world: World) -> str:
    sg: str = aws.ec2.create_security_group(
        GroupName="rexpress-redis-sg", Description="rexctl", VpcId=world.vpc_id
    )["GroupId"]
    aws.ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": world.ecs_sg}],
            }
        ],
    )
    return sg


def test_upgrade_to_valkey_then_a_node_type_change_waits_between_the_modifies(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    """Redis OSS -> Valkey is an in-place upgrade (ModifyReplicationGroup Engine=valkey and
    EngineVersion), its version checked against DescribeCacheEngineVersions. ElastiCache refuses
    a modify while the group is modifying, and may still show `available` with the old values
    right after the call: the node-type modify waits until the upgrade shows (engine valkey, the
    node on 8.0.x, nothing pending), and provision waits until the node type shows."""
    import boto3

    from tests.rexctl.aws.world import REGION

    sg = _cache_sg(aws, world)
    path = tmp_path / "rexctl.toml"
    cfg = write_config(
        path, world, engine="valkey", engine_version="8.0", node_type="cache.t4g.small"
    )
    ec = boto3.client("elasticache", region_name=REGION)
    stub, name, tags, rg_arn, sng_arn = _existing_cache_stub(world, sg, ec)
    stub.add_response(
        "describe_cache_engine_versions",
        {"CacheEngineVersions": [{"Engine": "valkey", "EngineVersion": "8.0"}]},
        {"Engine": "valkey", "EngineVersion": "8.0"},
    )
    stub.add_response("list_tags_for_resource", tags, {"ResourceName": sng_arn})
    stub.add_response("list_tags_for_resource", tags, {"ResourceName": rg_arn})
    stub.add_response(
        "modify_replication_group",
        {"ReplicationGroup": _stubbed_group(world)},
        {**name, "Engine": "valkey", "EngineVersion": "8.0", "ApplyImmediately": True},
    )
    member = {"CacheClusterId": "rexpress-redis-001"}

    def node(version: str) -> dict[str, Any]:
        return {
            "CacheClusters": [{"CacheClusterId": "rexpress-redis-001", "EngineVersion": version}]
        }

    # Right after the call: still available, still redis.
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [_stubbed_group(world)]}, name
    )
    stub.add_response("describe_cache_clusters", node("7.1.0"), member)
    stub.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [_stubbed_group(world, Status="modifying")]},
        name,
    )
    stub.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [_stubbed_group(world, Engine="valkey")]},
        name,
    )
    stub.add_response("describe_cache_clusters", node("8.0.1"), member)
    stub.add_response(
        "modify_replication_group",
        {"ReplicationGroup": _stubbed_group(world, Engine="valkey")},
        {**name, "CacheNodeType": "cache.t4g.small", "ApplyImmediately": True},
    )
    stub.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [_stubbed_group(world, Engine="valkey", Status="modifying")]},
        name,
    )
    stub.add_response(
        "describe_replication_groups",
        {
            "ReplicationGroups": [
                _stubbed_group(world, Engine="valkey", CacheNodeType="cache.t4g.small")
            ]
        },
        name,
    )
    mixed = ClientSet(ec2=aws.ec2, ecs=aws.ecs, elasticache=ec, secretsmanager=aws.secretsmanager)
    t = FakeTime(start=1000.0)
    with stub:
        result, reporter = run(mixed, cfg, time=t)
        stub.assert_no_pending_responses()
    assert result.error() is None
    assert result.applied == [
        "upgrade rexpress-redis in place from Redis OSS to Valkey 8.0",
        "modify rexpress-redis: node type cache.t4g.micro → cache.t4g.small",
    ]
    assert [s for s, _ in reporter.progress_reports] == [
        "available, not yet changed: engine is still redis; engine version is still 7.1.0",
        "modifying",
        "available",
        "modifying",
        "available",
    ]


def test_a_capitalised_id_finds_aws_lower_cased_cache_and_is_refused(
    aws: ClientSet, world: World, tmp_path: Path
) -> None:
    """ElastiCache stores `Rexpress-Redis` as `rexpress-redis` and answers with that (moto keeps
    the case it was sent). rexctl asks for the lower-cased names, compares with them (step 7 is
    done, not "manual" forever), and refuses the capitalised setting, saying what to write."""
    import boto3

    from tests.rexctl.aws.world import REGION

    sg = _cache_sg(aws, world)
    cfg = write_config(
        tmp_path / "rexctl.toml", world, id="Rexpress-Redis", security_group="rexpress-redis-sg"
    )
    ec = boto3.client("elasticache", region_name=REGION)
    stub, _, tags, rg_arn, sng_arn = _existing_cache_stub(world, sg, ec)
    stub.add_response("list_tags_for_resource", tags, {"ResourceName": sng_arn})
    stub.add_response("list_tags_for_resource", tags, {"ResourceName": rg_arn})
    mixed = ClientSet(ec2=aws.ec2, ecs=aws.ecs, elasticache=ec, secretsmanager=aws.secretsmanager)
    with stub:
        result, _ = run(mixed, cfg)
        stub.assert_no_pending_responses()
    assert {s.number: str(s.state) for s in result.plan.steps if 4 <= s.number <= 11} == {
        n: "done" for n in range(4, 12)
    }
    error = result.error()
    assert isinstance(error, ConfigError)
    assert (
        "`cache.id` 'Rexpress-Redis' has capital letters, but ElastiCache stores replication "
        "group ids in lower case ('rexpress-redis'): write it as `cache.id = \"rexpress-redis\"`."
        in error.message
    )
