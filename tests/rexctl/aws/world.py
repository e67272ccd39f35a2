"""A realistic account for provisioning tests: a VPC with two private subnets (one routes through
a NAT gateway, one uses the main table with no default route) and two public subnets (0.0.0.0/0
to an internet gateway), in two AZs; an ECS cluster with an awsvpc service and its security group.

Works with in-process moto clients and with clients pointed at a moto server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from rexctl.aws.session import ClientSet
from rexctl.config import Config, load, render_toml
from tests.helpers import EXECUTION_ROLE_ARN

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


@dataclass
class World:
    vpc_id: str
    private_subnets: list[str]
    public_subnets: list[str]
    igw: str
    ecs_sg: str
    cluster: str
    service: str
    task_definition: str


def clients(endpoint_url: str | None = None) -> ClientSet:
    def make(name: str) -> Any:
        return boto3.client(name, region_name=REGION, endpoint_url=endpoint_url)

    return ClientSet(
        ec2=make("ec2"),
        ecs=make("ecs"),
        elasticache=make("elasticache"),
        secretsmanager=make("secretsmanager"),
    )


def build_world(
    c: ClientSet,
    *,
    cluster: str = "rexpress",
    service: str = "backend",
    environment: list[dict[str, str]] | None = None,
    secrets: list[dict[str, str]] | None = None,
    network_mode: str = "awsvpc",
) -> World:
    ec2 = c.ec2
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})

    def subnet(cidr: str, az: str, name: str) -> str:
        sid: str = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"][
            "SubnetId"
        ]
        ec2.create_tags(Resources=[sid], Tags=[{"Key": "Name", "Value": name}])
        return sid

    public = [
        subnet("10.20.0.0/24", "us-east-1a", "public-a"),
        subnet("10.20.1.0/24", "us-east-1b", "public-b"),
    ]
    private = [
        subnet("10.20.10.0/24", "us-east-1a", "private-a"),
        subnet("10.20.11.0/24", "us-east-1b", "private-b"),
    ]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for sid in public:
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=sid)
    # private-a: default route through a NAT gateway (still private).
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public[0], AllocationId=eip)["NatGateway"]
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(
        RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"]
    )
    ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private[0])
    # private-b: no association, so the main table decides (local route only).
    ecs_sg = ec2.create_security_group(
        GroupName=f"{service}-sg", Description="ECS backend tasks", VpcId=vpc
    )["GroupId"]

    ecs = c.ecs
    ecs.create_cluster(clusterName=cluster)
    container: dict[str, Any] = {
        "name": "backend",
        "image": "example/backend:1",
        "memory": 512,
        "essential": True,
        "portMappings": [{"containerPort": 3000}],
        "environment": environment or [],
    }
    if secrets:
        container["secrets"] = secrets
    td = ecs.register_task_definition(
        executionRoleArn=EXECUTION_ROLE_ARN,
        family="backend",
        networkMode=network_mode,
        requiresCompatibilities=["FARGATE"] if network_mode == "awsvpc" else ["EC2"],
        cpu="256",
        memory="512",
        containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]
    kwargs: dict[str, Any] = {}
    if network_mode == "awsvpc":
        kwargs["networkConfiguration"] = {
            "awsvpcConfiguration": {
                "subnets": private,
                "securityGroups": [ecs_sg],
                "assignPublicIp": "DISABLED",
            }
        }
    ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=td,
        desiredCount=1,
        launchType="FARGATE" if network_mode == "awsvpc" else "EC2",
        **kwargs,
    )
    return World(vpc, private, public, igw, ecs_sg, cluster, service, td)


def roll_service_with_env(aws: ClientSet, world: World, environment: dict[str, str]) -> str:
    """Register a revision of the backend with `environment` and point the service at it."""
    td = aws.ecs.register_task_definition(
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
                "environment": [{"name": k, "value": v} for k, v in environment.items()],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    aws.ecs.update_service(cluster=world.cluster, service=world.service, taskDefinition=td)
    return str(td)


def write_config(path: Path, world: World, **cache: Any) -> Config:
    """A rexctl.toml for this world (as `rexctl init` would write it) and its loaded Config."""
    values: dict[str, Any] = {
        "region": REGION,
        "ecs.cluster": world.cluster,
        "ecs.service": world.service,
        "ecs.container": "backend",
        "ecs.vpc_id": world.vpc_id,
        "ecs.subnets": world.private_subnets,
        "ecs.security_groups": [world.ecs_sg],
    }
    values.update({f"cache.{k}": v for k, v in cache.items()})
    path.write_text(render_toml(values), encoding="utf-8")
    return load(path, environ={})


def snapshot(c: ClientSet) -> dict[str, Any]:
    """A full describe of what provisioning could change (for dry-run comparisons)."""

    def clean(resp: dict[str, Any]) -> dict[str, Any]:
        resp.pop("ResponseMetadata", None)
        return resp

    return {
        "security_groups": clean(c.ec2.describe_security_groups()),
        "rules": clean(c.ec2.describe_security_group_rules()),
        "subnet_groups": clean(c.elasticache.describe_cache_subnet_groups()),
        "replication_groups": clean(c.elasticache.describe_replication_groups()),
        "secrets": clean(c.secretsmanager.list_secrets()),
    }


def elasticache_backend() -> Any:
    from moto.backends import get_backend

    return get_backend("elasticache")[ACCOUNT_ID][REGION]


# DescribeCacheEngineVersions as AWS answers it (us-east-1, node-based engines; each version as
# the API lists it: EngineVersion "7.1", not the patch level a node runs). moto 5.2 does not
# implement the call (in process: NotImplementedError; as a server: HTTP 500), so tests that run
# provisioning on moto give it AWS's answer with `answer_engine_versions`.
AWS_ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "redis": ("4.0.10", "5.0.6", "6.0", "6.2", "7.0", "7.1"),
    "valkey": ("7.2", "8.0", "8.1"),
}


def answer_engine_versions(monkeypatch: Any) -> None:
    """Make moto (in process, and a ThreadedMotoServer of this process) answer
    DescribeCacheEngineVersions like AWS: filtered by Engine and EngineVersion, an unknown
    version answering an empty list."""
    from moto.core.responses import ActionResult
    from moto.elasticache.responses import ElastiCacheResponse

    def describe_cache_engine_versions(self: Any) -> Any:
        engine = self._get_param("Engine")
        version = self._get_param("EngineVersion")
        rows = [
            {
                "Engine": name,
                "EngineVersion": v,
                "CacheParameterGroupFamily": f"{name}{v.split('.')[0]}",
                "CacheEngineDescription": "Redis OSS" if name == "redis" else "Valkey",
                "CacheEngineVersionDescription": f"{name} version {v}",
            }
            for name, versions in AWS_ENGINE_VERSIONS.items()
            for v in versions
            if (not engine or engine == name) and (not version or version == v)
        ]
        return ActionResult({"CacheEngineVersions": rows})

    monkeypatch.setattr(
        ElastiCacheResponse,
        "describe_cache_engine_versions",
        describe_cache_engine_versions,
        raising=False,
    )
