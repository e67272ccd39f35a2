"""`rexctl plan`: the 15 steps and their state, read-only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import elasticache as ec_api
from rexctl.aws.ecs import ServiceView
from rexctl.aws.session import ClientSet
from rexctl.config import Config, load
from rexctl.errors import ExitCode
from rexctl.provision import plan_account, provision
from rexctl.provision.discover import Discovery
from rexctl.provision.model import RecordingReporter
from rexctl.provision.plan import Plan, Ref, State, Step, build_plan
from tests.rexctl.aws.world import (
    build_world,
    roll_service_with_env,
    snapshot,
    write_config,
)


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
    data = plan.to_dict()
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
    roll_service_with_env(
        aws,
        world,
        {"REDIS_ENABLED": "true", "REDIS_HOST": result.cache.endpoint, "REDIS_PORT": "6379"},
    )
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
    plan = plan_account(aws, load(path, environ={}))
    assert (
        f"rexctl.toml says ecs.vpc_id = vpc-0123456789abcdef0, the service is in {world.vpc_id}; "
        "using the live service (re-run `rexctl init --force`)." in plan.warnings
    )


# build_plan is pure: the branches below depend on what moto cannot show (the primary node's
# subnet group and security groups, a cluster-mode group, ...), so they get a hand-made Discovery.

VPC = "vpc-0aaaaaaaaaaaaaaa1"
ECS_SG = "sg-0eeeeeeeeeeeeeee1"
CACHE_SG = "sg-0ccccccccccccccc1"
PRIVATE = [
    ec2_api.Subnet("subnet-0aaaaaaaaaaaaaaa1", VPC, "us-east-1a", "10.0.1.0/24", "rtb-1", ""),
    ec2_api.Subnet("subnet-0bbbbbbbbbbbbbbb1", VPC, "us-east-1b", "10.0.2.0/24", "rtb-1", ""),
]
PUBLIC = ec2_api.Subnet(
    "subnet-0fffffffffffffff1", VPC, "us-east-1a", "10.0.0.0/24", "rtb-2", "igw-1"
)


# What AWS gives every new security group: all traffic out, to 0.0.0.0/0.
ALL_OUT = ec2_api.Rule("sgr-0out", ECS_SG, True, "-1", -1, -1, cidr="0.0.0.0/0")


def service(security_groups: list[str] | None = None) -> ServiceView:
    return ServiceView(
        cluster="rexpress",
        name="backend",
        arn="arn:aws:ecs:us-east-1:123456789012:service/rexpress/backend",
        status="ACTIVE",
        task_definition="",
        desired=1,
        running=1,
        pending=0,
        launch_type="FARGATE",
        awsvpc=True,
        subnets=[PRIVATE[0].id],
        security_groups=[ECS_SG] if security_groups is None else security_groups,
    )


def group(group_id: str, *rules: ec2_api.Rule) -> ec2_api.SecurityGroup:
    return ec2_api.SecurityGroup(group_id, "rexpress-redis-sg", VPC, "d", rules=list(rules))


def from_ecs(group_id: str = CACHE_SG, source: str = ECS_SG) -> ec2_api.Rule:
    return ec2_api.Rule("sgr-1", group_id, False, "tcp", 6379, 6379, source_group=source)


def cache(**changes: object) -> ec_api.CacheView:
    view = ec_api.CacheView(
        id="rexpress-redis",
        arn="arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rexpress-redis",
        status="available",
        endpoint="master.rexpress-redis.abc123.use1.cache.amazonaws.com",
        port=6379,
        node_type="cache.t4g.micro",
        member_clusters=["rexpress-redis-001"],
        automatic_failover="disabled",
        multi_az="disabled",
        transit_encryption=False,
        at_rest_encryption=True,
        auth_enabled=False,
        cluster_mode="disabled",
        engine="redis",
    )
    return replace(view, **changes)  # type: ignore[arg-type]


def discovery(**changes: object) -> Discovery:
    """An account where everything rexctl would create already exists and matches."""
    d = Discovery(
        region="us-east-1",
        service=service(),
        vpc_id=VPC,
        ecs_groups=[ec2_api.SecurityGroup(ECS_SG, "backend-sg", VPC, "d", rules=[ALL_OUT])],
        missing_ecs_groups=[],
        subnets=[*PRIVATE, PUBLIC],
        cache_sg=group(CACHE_SG, from_ecs()),
        subnet_group=ec_api.SubnetGroupView(
            "rexpress-redis-subnets", "arn:sng", VPC, sorted(s.id for s in PRIVATE)
        ),
        subnet_group_tags={"managed-by": "rexctl"},
        cache=cache(),
        cache_tags={"managed-by": "rexctl"},
        node=ec_api.NodeNetwork("rexpress-redis-001", "rexpress-redis-subnets", [CACHE_SG], "7.1"),
        secret=None,
    )
    return replace(d, **changes)  # type: ignore[arg-type]


def config(tmp_path: Path, **cache_values: object) -> Config:
    from rexctl.config import render_toml

    values = {"ecs.cluster": "rexpress", "ecs.service": "backend"}
    values.update({f"cache.{k}": v for k, v in cache_values.items()})  # type: ignore[misc]
    path = tmp_path / "rexctl.toml"
    path.write_text(render_toml(values), encoding="utf-8")
    return load(path, environ={})


def step(plan: Plan, number: int) -> Step:
    return next(s for s in plan.steps if s.number == number)


def test_a_matching_account_is_all_done(tmp_path: Path) -> None:
    plan = build_plan(discovery(), config(tmp_path))
    assert [str(step(plan, n).state) for n in range(4, 12)] == ["done"] * 8
    assert plan.actions() == [] and plan.blockers == [] and plan.manual == []


def test_existing_cache_in_another_group_is_moved_into_rexctl_group(tmp_path: Path) -> None:
    node = ec_api.NodeNetwork("rexpress-redis-001", "rexpress-redis-subnets", ["sg-0old"], "7.1")
    plan = build_plan(discovery(node=node), config(tmp_path))
    s = step(plan, 8)
    assert s.state == State.CHANGE
    assert [a.to_dict() for a in s.actions] == [
        {
            "step": 8,
            "kind": "modify_replication_group",
            "summary": f"put rexpress-redis in security group {CACHE_SG}",
            "params": {
                "ReplicationGroupId": "rexpress-redis",
                "SecurityGroupIds": [CACHE_SG],
                "ApplyImmediately": True,
            },
        }
    ]


def test_existing_cache_whose_group_is_missing_gets_the_new_group(tmp_path: Path) -> None:
    """The cache exists, rexctl's group does not (renamed in rexctl.toml, or deleted by hand):
    creating the group is not enough, the cache must be put in it."""
    node = ec_api.NodeNetwork("rexpress-redis-001", "rexpress-redis-subnets", ["sg-0old"], "7.1")
    plan = build_plan(discovery(cache_sg=None, node=node), config(tmp_path))
    s = step(plan, 8)
    assert s.state == State.CHANGE
    assert [a.kind for a in plan.actions()] == [
        "create_security_group",
        "authorize_ingress",
        "modify_replication_group",
    ]
    modify = plan.actions()[-1]
    assert modify.params["SecurityGroupIds"] == [Ref("cache_sg_id")]
    assert "uses sg-0old; will use the new group rexpress-redis-sg" in s.detail


def test_service_without_its_own_security_group_is_explained(tmp_path: Path) -> None:
    d = discovery(service=service(security_groups=[]), ecs_groups=[], cache=None, node=None)
    plan = build_plan(d, config(tmp_path))
    assert step(plan, 8).state == State.BLOCKED
    [blocker] = plan.blockers
    assert blocker.message == (
        "The ECS service backend lists no security group, so its tasks use the VPC's default "
        "group; guide step 8 needs a group of the service's own as the source of the cache's "
        "inbound rule."
    )
    assert blocker.hint.startswith("Give the service its own security group")


def test_subnet_group_of_an_existing_cache_cannot_change(tmp_path: Path) -> None:
    node = ec_api.NodeNetwork("rexpress-redis-001", "hand-made", [CACHE_SG], "7.1")
    plan = build_plan(discovery(node=node), config(tmp_path))
    assert step(plan, 7).state == State.MANUAL
    assert plan.manual == [
        "Step 7: rexpress-redis uses subnet group hand-made, not rexpress-redis-subnets; the "
        "subnet group of an existing cache cannot be changed in place."
    ]


def test_public_subnet_in_an_existing_subnet_group_blocks(tmp_path: Path) -> None:
    sng = ec_api.SubnetGroupView("rexpress-redis-subnets", "arn:sng", VPC, [PUBLIC.id])
    plan = build_plan(discovery(subnet_group=sng, cache=None, node=None), config(tmp_path))
    assert step(plan, 7).state == State.BLOCKED
    [blocker] = plan.blockers
    assert blocker.message.startswith(
        f"Cache subnet group rexpress-redis-subnets contains public subnet {PUBLIC.id} "
        "(its route table rtb-2 sends 0.0.0.0/0 to igw-1)"
    )
    assert "aws elasticache modify-cache-subnet-group" in blocker.hint


def test_subnet_group_in_another_vpc_blocks(tmp_path: Path) -> None:
    sng = ec_api.SubnetGroupView("rexpress-redis-subnets", "arn:sng", "vpc-0other", [])
    plan = build_plan(discovery(subnet_group=sng, cache=None, node=None), config(tmp_path))
    [blocker] = plan.blockers
    assert blocker.message == (
        f"Cache subnet group rexpress-redis-subnets is in vpc-0other, but the ECS service is "
        f"in {VPC}."
    )
    assert blocker.exit_code == ExitCode.BAD_INPUT


def test_vpc_without_private_subnets_blocks(tmp_path: Path) -> None:
    plan = build_plan(discovery(subnets=[PUBLIC], cache=None, subnet_group=None), config(tmp_path))
    [blocker] = plan.blockers
    assert blocker.message == (
        f"VPC {VPC} has no private subnet: every subnet's route table sends 0.0.0.0/0 to an "
        "internet gateway."
    )
    assert blocker.exit_code == ExitCode.CHECK_FAILED


def test_subnet_outside_the_vpc_is_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path, subnets=["subnet-0123456789abcdef0"])
    plan = build_plan(discovery(cache=None, subnet_group=None), cfg)
    [blocker] = plan.blockers
    assert blocker.message.startswith(
        "Subnet subnet-0123456789abcdef0 (cache.subnets) is not in the ECS service's VPC"
    )


def test_another_group_sourced_rule_on_the_port_is_a_warning(tmp_path: Path) -> None:
    other = ec2_api.Rule("sgr-2", CACHE_SG, False, "tcp", 6379, 6379, source_group="sg-0other")
    plan = build_plan(discovery(cache_sg=group(CACHE_SG, from_ecs(), other)), config(tmp_path))
    assert step(plan, 8).state == State.DONE
    assert (
        f"Security group {CACHE_SG} also allows port 6379 from sg-0other (rule sgr-2); step 8 "
        "wants only the ECS service's group. Remove it with `aws ec2 "
        f"revoke-security-group-ingress --group-id {CACHE_SG} --security-group-rule-ids sgr-2`."
        in plan.warnings
    )


def test_ipv6_range_is_refused_like_ipv4(tmp_path: Path) -> None:
    v6 = ec2_api.Rule("sgr-3", CACHE_SG, False, "tcp", 6379, 6379, cidr="::/0")
    plan = build_plan(discovery(cache_sg=group(CACHE_SG, from_ecs(), v6)), config(tmp_path))
    assert step(plan, 8).state == State.BLOCKED
    assert "(rule sgr-3 from ::/0)" in plan.blockers[0].message


def test_cluster_mode_and_other_engine_are_manual(tmp_path: Path) -> None:
    d = discovery(cache=cache(cluster_mode="enabled", engine="memcached"))
    plan = build_plan(d, config(tmp_path))
    assert step(plan, 5).state == State.MANUAL
    assert "its engine is memcached, not redis and cluster mode is enabled" in plan.manual[0]
    assert plan.actions() == []


def test_failover_and_multi_az_change_in_place(tmp_path: Path) -> None:
    d = discovery(cache=cache(member_clusters=["rexpress-redis-001", "rexpress-redis-002"]))
    plan = build_plan(d, config(tmp_path, replicas=1, multi_az=True))
    s = step(plan, 6)
    assert s.state == State.CHANGE
    assert s.actions[0].params == {
        "ReplicationGroupId": "rexpress-redis",
        "AutomaticFailoverEnabled": True,
        "MultiAZEnabled": True,
        "ApplyImmediately": True,
    }
    # While AWS is still turning failover on, it is not asked again.
    d = discovery(
        cache=cache(
            member_clusters=["rexpress-redis-001", "rexpress-redis-002"],
            automatic_failover="enabling",
            multi_az="enabled",
        )
    )
    assert step(build_plan(d, config(tmp_path, replicas=1, multi_az=True)), 6).state == State.DONE


def test_auth_on_without_the_secret_rotates_a_new_token_in(tmp_path: Path) -> None:
    """The token is lost with its secret; the running tasks still have it. rexctl stores a new
    one and ROTATEs it in (the old keeps working), rolls the service, then SETs it (issue 13)."""
    d = discovery(cache=cache(transit_encryption=True, auth_enabled=True))
    plan = build_plan(d, config(tmp_path, tls=True, auth=True))
    s = step(plan, 9)
    assert s.state == State.CHANGE
    assert [x.kind for x in s.secure.steps] == [
        "auth-secret", "auth-rotate", "deploy", "verify", "auth-set"
    ]  # fmt: skip
    assert "At no step does the API lose its cache" in s.detail


def test_port_of_an_existing_cache_cannot_change(tmp_path: Path) -> None:
    plan = build_plan(discovery(), config(tmp_path, port=6380))
    assert step(plan, 11).state == State.BLOCKED
    [blocker] = plan.blockers
    assert blocker.message == (
        "rexpress-redis listens on port 6379, but `cache.port` is 6380; the port of an existing "
        "cache cannot be changed."
    )
    assert blocker.hint == f"Set `cache.port = 6379` in {tmp_path / 'rexctl.toml'}."
    assert blocker.exit_code == ExitCode.BAD_INPUT


# Issue 10: green here means green on AWS.


def test_removing_the_last_replica_turns_multi_az_and_failover_off_first(tmp_path: Path) -> None:
    """AWS refuses DecreaseReplicaCount to 0 (or removing the last replica) while Multi-AZ or
    automatic failover is on: rexctl plans the modify that turns them off, and the decrease
    comes after it, in that order."""
    d = discovery(
        cache=cache(
            member_clusters=["rexpress-redis-001", "rexpress-redis-002"],
            automatic_failover="enabled",
            multi_az="enabled",
        )
    )
    plan = build_plan(d, config(tmp_path, replicas=0))
    s = step(plan, 6)
    assert s.state == State.MANUAL
    assert [a.to_dict() for a in s.actions] == [
        {
            "step": 6,
            "kind": "modify_replication_group",
            "summary": "modify rexpress-redis: multi-AZ enabled → disabled; automatic failover "
            "enabled → disabled",
            "params": {
                "ReplicationGroupId": "rexpress-redis",
                "MultiAZEnabled": False,
                "AutomaticFailoverEnabled": False,
                "ApplyImmediately": True,
            },
        }
    ]
    assert plan.manual == [
        "Step 6: rexpress-redis has 1 replica(s), rexctl.toml asks for 0. AWS refuses to remove "
        "the last replica while multi-AZ or automatic failover is on, so rexctl turns them off "
        "first (multi-AZ enabled → disabled; automatic failover enabled → disabled, in place). "
        "Once that is done, run `aws elasticache decrease-replica-count --replication-group-id "
        "rexpress-redis --new-replica-count 0 --apply-immediately`, then `rexctl provision` "
        "again."
    ]
    # Fewer replicas but not none: no such order needed.
    d = discovery(
        cache=cache(
            member_clusters=["rexpress-redis-001", "rexpress-redis-002", "rexpress-redis-003"],
            automatic_failover="enabled",
            multi_az="enabled",
        )
    )
    plan = build_plan(d, config(tmp_path, replicas=1, multi_az=True))
    assert step(plan, 6).state == State.MANUAL and plan.actions() == []


def test_step_texts_match_the_drills_and_what_to_do(tmp_path: Path) -> None:
    """Revoking a security-group rule does not cut tracked connections (docs/chaos.md); a
    create-failed group stays until it is deleted."""
    plan = build_plan(discovery(cache=cache(status="create-failed")), config(tmp_path))
    text = step(plan, 15).detail
    assert "`break-sg` revokes the inbound rule (new connections only" in text
    assert "`break-nacl` denies the port in the cache subnets' network ACLs (cuts existing" in text
    assert "removes the inbound rule (and cuts existing connections)" not in text
    assert step(plan, 10).state == State.BLOCKED
    [blocker] = plan.blockers
    assert blocker.message == (
        "Replication group rexpress-redis is create-failed: it failed to create, and it will "
        "neither recover nor go away by itself."
    )
    assert "delete it (`aws elasticache delete-replication-group --replication-group-id "
    assert (
        "delete it (`aws elasticache delete-replication-group --replication-group-id "
        "rexpress-redis`, or `rexctl teardown` when rexctl created it), wait until it is gone"
        in blocker.hint
    )
    assert blocker.exit_code == ExitCode.AWS_ERROR


def versions(**kwargs: object) -> ec_api.EngineVersions:
    values: dict[str, object] = {"engine": "redis", "version": "7.1", "answered": True}
    values.update(kwargs)
    return ec_api.EngineVersions(**values)  # type: ignore[arg-type]


def test_engine_version_is_checked_against_what_aws_offers(tmp_path: Path) -> None:
    fresh = {"cache": None, "node": None, "subnet_group": None, "cache_sg": None}
    d = discovery(**fresh, engine_versions=versions(version="7.3", versions=["7.0", "7.1"]))
    plan = build_plan(d, config(tmp_path, engine_version="7.3"))
    assert step(plan, 5).state == State.BLOCKED
    [blocker] = plan.blockers
    assert blocker.message == (
        "`cache.engine_version` '7.3' is not a redis version ElastiCache offers in us-east-1 "
        "(DescribeCacheEngineVersions lists: 7.0, 7.1)."
    )
    assert blocker.exit_code == ExitCode.BAD_INPUT
    assert blocker.hint == (
        f"Set `cache.engine_version` to one of them in {tmp_path / 'rexctl.toml'}."
    )
    offered = build_plan(
        discovery(**fresh, engine_versions=versions(offered=True)), config(tmp_path)
    )
    assert step(offered, 5).state == State.TODO
    assert step(offered, 5).detail == "Redis OSS 7.1, cluster mode disabled."
    # An endpoint that does not implement the call (moto, the sandbox): a warning, not a block.
    unknown = build_plan(
        discovery(**fresh, engine_versions=versions(answered=False)), config(tmp_path)
    )
    assert step(unknown, 5).state == State.TODO
    assert (
        "This endpoint does not answer DescribeCacheEngineVersions (moto and the local sandbox "
        "do not implement it): `cache.engine_version` '7.1' was not checked against the redis "
        "versions ElastiCache offers." in unknown.warnings
    )


def test_valkey_create_and_in_place_upgrade(tmp_path: Path) -> None:
    fresh = {"cache": None, "node": None, "subnet_group": None, "cache_sg": None}
    d = discovery(**fresh, engine_versions=versions(engine="valkey", version="8.0", offered=True))
    plan = build_plan(d, config(tmp_path, engine="valkey", engine_version="8.0"))
    create = plan.actions()[-1]
    assert (create.params["Engine"], create.params["EngineVersion"]) == ("valkey", "8.0")
    assert create.params["ReplicationGroupDescription"] == (
        "rexctl: Valkey cache for ECS service backend"
    )

    # An existing Redis OSS group: the upgrade to Valkey is an in-place change.
    d = discovery(engine_versions=versions(engine="valkey", version="8.0", offered=True))
    plan = build_plan(d, config(tmp_path, engine="valkey", engine_version="8.0"))
    s = step(plan, 5)
    assert s.state == State.CHANGE
    assert [a.params for a in s.actions] == [
        {
            "ReplicationGroupId": "rexpress-redis",
            "Engine": "valkey",
            "EngineVersion": "8.0",
            "ApplyImmediately": True,
        }
    ]
    assert plan.blockers == [] and plan.manual == []

    # Valkey -> Redis OSS: AWS offers no such change.
    plan = build_plan(discovery(cache=cache(engine="valkey")), config(tmp_path))
    assert step(plan, 5).state == State.MANUAL
    assert plan.manual[0].startswith(
        "Step 5: rexpress-redis runs Valkey and rexctl.toml asks for Redis OSS; ElastiCache "
        "upgrades Redis OSS to Valkey in place but offers no way back. Set "
        '`cache.engine = "valkey"`'
    )
    assert plan.actions() == []
    # Valkey configured and running: done.
    plan = build_plan(discovery(cache=cache(engine="valkey")), config(tmp_path, engine="valkey"))
    assert step(plan, 5).state == State.DONE


def test_a_secret_deleted_without_recovery_is_not_a_blocker(tmp_path: Path) -> None:
    """Secrets Manager deletes asynchronously: a secret force-deleted a moment ago still shows,
    with a deletion date in the past. It goes away by itself; creating it again waits for that."""
    from rexctl.aws.secrets import SecretView

    gone = SecretView(
        "rexctl/rexpress-redis/auth-token",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/rexpress-redis/auth-token-a1B2c3",
        scheduled_for_deletion=True,
        being_deleted=True,
    )
    fresh = {"cache": None, "node": None, "subnet_group": None, "cache_sg": None}
    plan = build_plan(discovery(**fresh, secret=gone), config(tmp_path, tls=True, auth=True))
    assert plan.blockers == []
    assert [a.kind for a in step(plan, 9).actions] == ["create_auth_secret"]
    # A recovery window that is still running does block (it can be restored, or deleted now).
    waiting = replace(gone, being_deleted=False)
    plan = build_plan(discovery(**fresh, secret=waiting), config(tmp_path, tls=True, auth=True))
    assert step(plan, 9).state == State.BLOCKED


def test_names_with_capitals_are_refused(tmp_path: Path) -> None:
    """ElastiCache stores replication group ids and subnet group names in lower case."""
    plan = build_plan(discovery(), config(tmp_path, id="Rexpress-Redis"))
    [blocker] = plan.blockers  # the subnet group's default name follows cache.id
    assert blocker.step == 0 and blocker.exit_code == ExitCode.BAD_INPUT
    assert blocker.message == (
        "`cache.id` 'Rexpress-Redis' has capital letters, but ElastiCache stores replication "
        "group ids in lower case ('rexpress-redis'): write it as "
        '`cache.id = "rexpress-redis"`.'
    )
    plan = build_plan(discovery(), config(tmp_path, subnet_group="Cache-Subnets"))
    assert [b.message.split(" has ")[0] for b in plan.blockers] == [
        "`cache.subnet_group` 'Cache-Subnets'"
    ]


def test_step_7_compares_the_subnet_group_as_elasticache_names_it(tmp_path: Path) -> None:
    """ElastiCache answers the node's subnet group in lower case."""
    node = ec_api.NodeNetwork("rexpress-redis-001", "rexpress-redis-subnets", [CACHE_SG], "7.1")
    d = discovery(node=node)
    plan = build_plan(d, config(tmp_path, subnet_group="rexpress-redis-subnets"))
    assert step(plan, 7).state == State.DONE


def ecs_group(*rules: ec2_api.Rule) -> ec2_api.SecurityGroup:
    return ec2_api.SecurityGroup(ECS_SG, "backend-sg", VPC, "d", rules=list(rules))


def out(cidr: str = "", group: str = "", protocol: str = "tcp", port: int = 6379) -> ec2_api.Rule:
    return ec2_api.Rule("sgr-0o", ECS_SG, True, protocol, port, port, cidr=cidr, source_group=group)


def test_step_8_checks_the_service_may_send_to_the_cache_port(tmp_path: Path) -> None:
    """Security groups filter outbound traffic too: an ECS group whose egress was locked down
    blocks the cache, whatever the cache's inbound rule says."""
    locked = discovery(
        ecs_groups=[ecs_group(out(cidr="10.99.0.0/16"), out(port=443, cidr="0.0.0.0/0"))]
    )
    plan = build_plan(locked, config(tmp_path))
    s = step(plan, 8)
    assert s.state == State.MANUAL
    command = (
        f"aws ec2 authorize-security-group-egress --group-id {ECS_SG} --ip-permissions "
        f'\'[{{"IpProtocol":"tcp","FromPort":6379,"ToPort":6379,"UserIdGroupPairs":'
        f'[{{"GroupId":"{CACHE_SG}"}}]}}]\''
    )
    assert plan.manual == [
        f"Step 8: The ECS service's security group(s) {ECS_SG} allow no outbound TCP 6379 to the "
        "cache (to rexpress-redis-sg, to its subnets 10.0.1.0/24, 10.0.2.0/24, or to "
        f"0.0.0.0/0): its tasks could not connect. Allow it to rexpress-redis-sg ({CACHE_SG}): "
        f"`{command}`, then run `rexctl provision` again."
    ]
    # Before the cache's group exists: the cache subnets' ranges.
    fresh = discovery(
        ecs_groups=[ecs_group()], cache=None, node=None, subnet_group=None, cache_sg=None
    )
    plan = build_plan(fresh, config(tmp_path))
    assert step(plan, 8).state == State.MANUAL
    assert (
        '\'[{"IpProtocol":"tcp","FromPort":6379,"ToPort":6379,"IpRanges":'
        '[{"CidrIp":"10.0.1.0/24"},{"CidrIp":"10.0.2.0/24"}]}]\'' in plan.manual[0]
    )
    assert [a.kind for a in step(plan, 8).actions] == ["create_security_group", "authorize_ingress"]
    # What lets it out: the cache's group, a range holding every cache subnet, all traffic.
    for rule in (
        out(group=CACHE_SG),
        out(cidr="10.0.0.0/16"),
        out(protocol="-1", port=-1, cidr="0.0.0.0/0"),
    ):
        plan = build_plan(discovery(ecs_groups=[ecs_group(rule)]), config(tmp_path))
        assert step(plan, 8).state == State.DONE, rule
    # A range holding only one of the cache's subnets is not enough.
    plan = build_plan(discovery(ecs_groups=[ecs_group(out(cidr="10.0.1.0/24"))]), config(tmp_path))
    assert step(plan, 8).state == State.MANUAL
