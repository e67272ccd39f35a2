"""A small AWS world in moto for the drills: VPC, subnets, ACL, security groups, cache subnet
group, an ECS service with running tasks, a log group; plus a stand-in for ECS's scheduler.

moto's ECS never runs tasks and keeps `deployments[0]` on the first task definition, so
`EcsScheduler` does what ECS would after `update_service`: it points the deployment at the new
revision, stops the old tasks and starts new ones (a background thread, as ECS is).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexctl.aws import nacl
from rexctl.drills.changes import Change, NaclEntryChange
from rexctl.drills.journal import Journal
from tests.helpers import EXECUTION_ROLE_ARN

if TYPE_CHECKING:
    from tests.rexctl.drills.conftest import Aws

CLUSTER = "rex"
SERVICE = "backend"
CONTAINER = "backend"
CACHE_ID = "rexpress-redis"
LOG_GROUP = "/ecs/backend"
ECS_CIDR = "10.0.1.0/24"
ECS_CIDR_2 = "10.0.4.0/24"
ACCOUNT = "123456789012"


@dataclass
class World:
    vpc_id: str
    ecs_subnets: list[str]
    cache_subnets: list[str]
    acl_id: str
    ecs_sg: str
    cache_sg: str
    td_arn: str
    region: str = "us-east-1"

    def toml(self, url: str, state_dir: Path, endpoint_url: str = "") -> str:
        lines = [
            'region = "us-east-1"',
            f'state_dir = "{state_dir}"',
        ]
        if endpoint_url:
            lines.append(f'endpoint_url = "{endpoint_url}"')
        lines += [
            "",
            "[cache]",
            f'id = "{CACHE_ID}"',
            "",
            "[ecs]",
            f'cluster = "{CLUSTER}"',
            f'service = "{SERVICE}"',
            f'container = "{CONTAINER}"',
            f'vpc_id = "{self.vpc_id}"',
            "",
            "[app]",
            f'url = "{url}"',
        ]
        return "\n".join(lines) + "\n"


def world_host() -> str:
    return f"master.{CACHE_ID}.abc123.use1.cache.amazonaws.com"


def keep_tasks_running(endpoint_url: str = "") -> None:
    """moto moves a task one step towards STOPPED on every describe_tasks unless told not to."""
    config = {"progression": "manual", "times": 10**9}
    if endpoint_url:
        import httpx

        httpx.post(
            f"{endpoint_url}/moto-api/state-manager/set-transition",
            json={"model_name": "ecs::task", "transition": config},
        ).raise_for_status()
    else:
        from moto.moto_api import state_manager

        state_manager.set_transition("ecs::task", config)


def default_task_transitions() -> None:
    """Undo `keep_tasks_running`: moto's state manager is process-wide, other tests share it."""
    from moto.moto_api import state_manager

    state_manager.unset_transition("ecs::task")


def build(clients: Any, *, tasks: int = 2) -> World:
    """Create the world through boto3 clients (in-process mock_aws or a moto server)."""
    import os

    ec2, ecs, cache, logs = clients.ec2, clients.ecs, clients.elasticache, clients.logs
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ecs_subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone="us-east-1a")["Subnet"][
            "SubnetId"
        ]
        for cidr in (ECS_CIDR, ECS_CIDR_2)
    ]
    cache_subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (("10.0.2.0/24", "us-east-1a"), ("10.0.3.0/24", "us-east-1b"))
    ]
    # A custom ACL for the cache subnets, numbered the usual way (100, 110, ...).
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow", Egress=egress,
            CidrBlock="10.0.0.0/16", PortRange={"From": 0, "To": 65535},
        )  # fmt: skip
        ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=2, Protocol="17", RuleAction="allow", Egress=egress,
            CidrBlock="10.0.0.0/16", PortRange={"From": 53, "To": 53},
        )  # fmt: skip
    for subnet in cache_subnets:
        assoc = ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
        )["NetworkAcls"][0]["Associations"]
        assoc_id = next(a for a in assoc if a["SubnetId"] == subnet)["NetworkAclAssociationId"]
        ec2.replace_network_acl_association(AssociationId=assoc_id, NetworkAclId=acl)
    ecs_sg = ec2.create_security_group(GroupName="backend-sg", Description="ecs", VpcId=vpc)[
        "GroupId"
    ]
    cache_sg = ec2.create_security_group(
        GroupName=f"{CACHE_ID}-sg", Description="cache", VpcId=vpc
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=cache_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": ecs_sg, "Description": "Redis from ECS"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "10.9.0.0/16", "Description": "admin"}],
            },
        ],
        TagSpecifications=[
            {"ResourceType": "security-group-rule", "Tags": [{"Key": "owner", "Value": "rexctl"}]}
        ],
    )
    cache.create_cache_subnet_group(
        CacheSubnetGroupName=f"{CACHE_ID}-subnets",
        CacheSubnetGroupDescription="cache",
        SubnetIds=cache_subnets,
    )
    logs.create_log_group(logGroupName=LOG_GROUP)
    ecs.create_cluster(clusterName=CLUSTER)
    td = ecs.register_task_definition(
        executionRoleArn=EXECUTION_ROLE_ARN,
        family="backend",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": "backend:1",
                "memory": 512,
                "environment": [
                    {"name": "REDIS_ENABLED", "value": "true"},
                    {
                        "name": "REDIS_HOST",
                        "value": world_host(),
                    },
                    {"name": "REDIS_PORT", "value": "6379"},
                ],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": LOG_GROUP,
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "ecs",
                    },
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    previous = os.environ.get("MOTO_ECS_SERVICE_RUNNING")
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = str(tasks)  # read by moto at create_service
    try:
        ecs.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=td,
            desiredCount=tasks,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": ecs_subnets, "securityGroups": [ecs_sg]}
            },
        )
    finally:
        if previous is None:
            del os.environ["MOTO_ECS_SERVICE_RUNNING"]
        else:
            os.environ["MOTO_ECS_SERVICE_RUNNING"] = previous
    world = World(vpc, ecs_subnets, cache_subnets, acl, ecs_sg, cache_sg, td)
    run_tasks(ecs, world, td, tasks)
    return world


def run_tasks(ecs: Any, world: World, td: str, count: int) -> list[str]:
    resp = ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=td,
        count=count,
        launchType="FARGATE",
        group=f"service:{SERVICE}",
        startedBy="ecs-svc/1234",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": world.ecs_subnets,
                "securityGroups": [world.ecs_sg],
            }
        },
    )
    return [t["taskArn"] for t in resp["tasks"]]


def running_tasks(ecs: Any) -> list[str]:
    arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
    return sorted(arns)


def moto_service() -> Any:
    from moto.backends import get_backend

    return get_backend("ecs")[ACCOUNT]["us-east-1"].services[f"{CLUSTER}:{SERVICE}"]


class EcsScheduler:
    """What ECS does after update_service, done to moto: deployment, old tasks out, new in."""

    def __init__(self, ecs: Any, world: World, tasks: int = 2, on_rollout: Any = None) -> None:
        self.ecs, self.world, self.tasks = ecs, world, tasks
        self.on_rollout = on_rollout  # called with the new revision's ARN before it "completes"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.rollouts = 0

    def __enter__(self) -> EcsScheduler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            service = moto_service()
            deployment = service.deployments[0]
            if deployment["taskDefinition"] == service.task_definition:
                continue
            for arn in running_tasks(self.ecs):
                self.ecs.stop_task(cluster=CLUSTER, task=arn, reason="rolling update")
            run_tasks(self.ecs, self.world, service.task_definition, self.tasks)
            if self.on_rollout is not None:
                self.on_rollout(service.task_definition)
            deployment["taskDefinition"] = service.task_definition
            deployment["rolloutState"] = "COMPLETED"
            self.rollouts += 1


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


# What the drill tests compare before and after a drill, and the journal they restore from.


def journal_for(plan: Any) -> Journal:
    return Journal(
        id="t-1",
        drill=plan.drill,
        created_at="now",
        aws={"region": "us-east-1"},
        changes=plan.changes,
        summary=plan.summary,
        before=plan.before,
        manual_undo=[],
    )


def full_sg(aws: Aws) -> dict[str, Any]:
    """The whole describe of the cache group, minus the one field that may differ: rule ids.

    moto (like AWS) gives a re-authorized rule a new SecurityGroupRuleId; the id is a handle,
    not part of what the rule allows, so it is dropped. The order of IpPermissions is not
    meaningful either (a re-authorized rule is listed last), so they are sorted; everything else
    must be equal.
    """
    group = aws.clients.ec2.describe_security_groups(GroupIds=[aws.world.cache_sg])[
        "SecurityGroups"
    ][0]
    group["IpPermissions"] = sorted(group["IpPermissions"], key=repr)
    rules = aws.clients.ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [aws.world.cache_sg]}]
    )["SecurityGroupRules"]
    for r in rules:
        r.pop("SecurityGroupRuleId")
    return {"group": group, "rules": sorted(rules, key=repr)}


def full_acl(aws: Aws) -> dict[str, Any]:
    """The whole describe of the cache subnets' ACL, minus the association ids: AWS (and moto)
    gives a subnet a new association id each time it moves to another ACL and back (break-nacl
    moves the cache's subnets to a copy); which subnets use the ACL must be equal."""
    acl = aws.clients.ec2.describe_network_acls(NetworkAclIds=[aws.world.acl_id])["NetworkAcls"][0]
    acl["Entries"] = sorted(acl["Entries"], key=lambda e: (e["Egress"], e["RuleNumber"]))
    acl["Associations"] = sorted(a["SubnetId"] for a in acl["Associations"])
    return dict(acl)


def old_nacl_entries(aws: Aws) -> list[Change]:
    """The DENY entries break-nacl of earlier rexctl added in place (journals/break-nacl.json)."""
    return [
        NaclEntryChange(nacl.AclEntry(aws.world.acl_id, number, egress, cidr, 6379))
        for egress in (False, True)
        for number, cidr in ((1, ECS_CIDR), (3, ECS_CIDR_2))
    ]


def normalized_service(aws: Aws) -> dict[str, Any]:
    """The service's describe, minus what a deployment always renews (ids, times, events)."""
    svc = aws.clients.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    for key in ("deployments", "events", "createdAt"):
        svc.pop(key, None)
    return dict(svc)
