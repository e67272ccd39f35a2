"""Read-only: everything the plan needs to know about the account, in one snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import elasticache as ec_api
from rexctl.aws import secrets as sm_api
from rexctl.aws.ecs import ServiceView, TaskDefinition, describe_service, describe_task_definition
from rexctl.aws.session import Clients
from rexctl.config import Config
from rexctl.errors import ConfigError, RexctlError


@dataclass(frozen=True)
class Discovery:
    region: str
    service: ServiceView
    vpc_id: str
    ecs_groups: list[ec2_api.SecurityGroup]  # the service's security groups that exist
    missing_ecs_groups: list[str]  # ...and those that do not
    subnets: list[ec2_api.Subnet]  # every subnet of the VPC
    cache_sg: ec2_api.SecurityGroup | None
    subnet_group: ec_api.SubnetGroupView | None
    subnet_group_tags: dict[str, str]
    cache: ec_api.CacheView | None
    cache_tags: dict[str, str]
    node: ec_api.NodeNetwork | None  # primary node's subnet group and SGs, when readable
    secret: sm_api.SecretView | None
    task_definition: TaskDefinition | None = None
    task_definition_error: str = ""
    # What ElastiCache offers for cache.engine / cache.engine_version; looked up only when a
    # request will carry them (a create, or the in-place upgrade to Valkey). None: not looked up.
    engine_versions: ec_api.EngineVersions | None = None
    drift: list[str] = field(default_factory=list)  # rexctl.toml's ecs.* vs the live service

    def subnet(self, subnet_id: str) -> ec2_api.Subnet | None:
        return next((s for s in self.subnets if s.id == subnet_id), None)


def service_network(clients: Clients, cfg: Config) -> tuple[ServiceView, str]:
    """The ECS service and its VPC; refuses a service without awsvpc networking."""
    cfg.require("ecs.cluster", "ecs.service")
    service = describe_service(clients.ecs, cfg.ecs.cluster, cfg.ecs.service)
    if not service.awsvpc or not service.subnets:
        raise ConfigError(
            f"ECS service {service.name!r} in cluster {cfg.ecs.cluster!r} does not use awsvpc "
            "networking, so it has no security group of its own for the cache to trust "
            "(guide step 8).",
            hint="rexctl supports Fargate and EC2 services with `networkMode: awsvpc`. "
            "Switch the service to awsvpc, or create the cache by hand.",
        )
    return service, ec2_api.vpc_of_subnet(clients.ec2, service.subnets[0])


def discover(clients: Clients, cfg: Config, *, task_definition: bool = False) -> Discovery:
    service, vpc_id = service_network(clients, cfg)
    drift = []
    if cfg.ecs.vpc_id and cfg.ecs.vpc_id != vpc_id:
        drift.append(f"rexctl.toml says ecs.vpc_id = {cfg.ecs.vpc_id}, the service is in {vpc_id}")
    if cfg.ecs.security_groups and sorted(cfg.ecs.security_groups) != sorted(
        service.security_groups
    ):
        drift.append(
            f"rexctl.toml lists security groups {', '.join(cfg.ecs.security_groups)}, "
            f"the service uses {', '.join(service.security_groups) or 'none'}"
        )
    ecs_groups, missing = ec2_api.get_security_groups(clients.ec2, service.security_groups)
    cache = ec_api.get_replication_group(clients.elasticache, cfg.cache.id)
    subnet_group = ec_api.get_subnet_group(clients.elasticache, cfg.cache.subnet_group)
    node = None
    if cache and cache.member_clusters:
        node = ec_api.member_network(clients.elasticache, cache.member_clusters[0])
    versions = None
    if cache is None or (cache.engine == "redis" and cfg.cache.engine == "valkey"):
        versions = ec_api.engine_versions(
            clients.elasticache, cfg.cache.engine, cfg.cache.engine_version
        )
    td: TaskDefinition | None = None
    td_error = ""
    if task_definition and service.task_definition:
        try:
            td = describe_task_definition(clients.ecs, service.task_definition)
        except RexctlError as exc:
            td_error = exc.message
    return Discovery(
        region=str(clients.ec2.meta.region_name),
        service=service,
        vpc_id=vpc_id,
        ecs_groups=ecs_groups,
        missing_ecs_groups=missing,
        subnets=ec2_api.vpc_subnets(clients.ec2, vpc_id),
        cache_sg=ec2_api.find_security_group(clients.ec2, cfg.cache.security_group, vpc_id),
        subnet_group=subnet_group,
        subnet_group_tags=(
            ec_api.list_tags(clients.elasticache, subnet_group.arn)
            if subnet_group and subnet_group.arn
            else {}
        ),
        cache=cache,
        cache_tags=ec_api.list_tags(clients.elasticache, cache.arn) if cache and cache.arn else {},
        node=node,
        secret=(
            sm_api.find_secret(clients.secretsmanager, sm_api.secret_name(cfg.cache.id))
            if cfg.cache.auth or (cache is not None and cache.auth_enabled)
            else None
        ),
        task_definition=td,
        task_definition_error=td_error,
        drift=drift,
        engine_versions=versions,
    )
