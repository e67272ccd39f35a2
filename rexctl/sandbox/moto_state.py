"""The one module that reaches into moto's in-process backend objects.

The daemon runs moto in its own process, so it can read and fix up what moto keeps: moto's ECS
never runs a task, keeps `deployments[0]` on the first task definition and records no events.
The sandbox runs the tasks itself and writes here what ECS would show: tasks and their states,
the deployments of a rolling update, running/pending counts and service events. It also reads
the security groups and network ACLs the gate applies. Everything else goes through boto3.
Attribute names are those of moto 5.2.x.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rexctl.sandbox import network

ACCOUNT = "123456789012"  # moto's default account: any access key maps to it


def _now() -> datetime:
    return datetime.now(UTC)


def _backend(name: str, region: str) -> Any:
    from moto.backends import get_backend

    getter: Any = get_backend  # typed per service name; the sandbox reads a few attributes only
    return getter(name)[ACCOUNT][region]


def keep_tasks_running() -> None:
    """moto advances a task towards STOPPED on every describe; the sandbox decides instead."""
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})


@dataclass(frozen=True)
class ContainerSpec:
    """What the sandbox needs of a task definition to run its container."""

    arn: str
    container: str
    environment: dict[str, str]
    secrets: dict[str, str]  # name -> valueFrom
    log_group: str
    log_prefix: str


@dataclass(frozen=True)
class CacheEndpoint:
    group_id: str
    port: int


class Moto:
    """Read and write moto's state for one region."""

    def __init__(self, region: str) -> None:
        self.region = region

    @property
    def ecs(self) -> Any:
        return _backend("ecs", self.region)

    @property
    def ec2(self) -> Any:
        return _backend("ec2", self.region)

    @property
    def elasticache(self) -> Any:
        return _backend("elasticache", self.region)

    # ECS -------------------------------------------------------------------------------------

    def service(self, cluster: str, name: str) -> Any | None:
        svc = self.ecs.services.get(f"{cluster}:{name}")
        return svc if svc is not None and svc.status == "ACTIVE" else None

    def container_spec(self, ref: str) -> ContainerSpec | None:
        """The task definition's first essential container (the sandbox runs one container)."""
        try:
            td = self.ecs.describe_task_definition(ref)
        except Exception:
            return None
        containers = list(td.container_definitions)
        if not containers:
            return None
        c = next((c for c in containers if c.get("essential", True)), containers[0])
        options = (c.get("logConfiguration") or {}).get("options") or {}
        return ContainerSpec(
            arn=td.arn,
            container=c.get("name", ""),
            environment={e["name"]: str(e.get("value", "")) for e in c.get("environment") or []},
            secrets={s["name"]: s.get("valueFrom", "") for s in c.get("secrets") or []},
            log_group=options.get("awslogs-group", ""),
            log_prefix=options.get("awslogs-stream-prefix", ""),
        )

    def new_task(self, svc: Any, td_arn: str, subnet: str, deployment_id: str) -> Any:
        """A PROVISIONING task of the service in moto, with its network interface in `subnet`."""
        net = dict((svc.network_configuration or {}).get("awsvpcConfiguration") or {})
        net["subnets"] = [subnet]
        task = self.ecs.run_task(
            svc.cluster_name,
            td_arn,
            1,
            None,
            deployment_id,
            None,
            "FARGATE",
            {"awsvpcConfiguration": net},
            group=f"service:{svc.name}",
        )[0]
        task.last_status = "PROVISIONING"
        task.containers[0].last_status = "PENDING"
        return task

    @staticmethod
    def task_running(task: Any) -> None:
        task.last_status = "RUNNING"
        task.started_at = _now()
        task.containers[0].last_status = "RUNNING"

    @staticmethod
    def task_stopped(task: Any, reason: str, stop_code: str, exit_code: int | None) -> None:
        if not task.stopped_reason:  # a user's ecs:StopTask reason wins
            task.stopped_reason = reason
        if not getattr(task, "stop_code", ""):
            task.stop_code = stop_code
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        task.stopped_at = _now()
        task.containers[0].last_status = "STOPPED"
        if exit_code is not None:
            task.containers[0].exitCode = exit_code

    @staticmethod
    def stop_requested(task: Any) -> bool:
        """Someone called ecs:StopTask (a user, a drill)."""
        return bool(task.desired_status == "STOPPED")

    @staticmethod
    def write_service(
        svc: Any, *, running: int, pending: int, deployments: list[dict[str, Any]]
    ) -> None:
        svc.running_count = running
        svc.pending_count = pending
        svc.deployments = deployments

    @staticmethod
    def add_event(svc: Any, message: str) -> None:
        event = {"id": str(uuid.uuid4()), "createdAt": _now(), "message": message}
        svc.events = [event, *svc.events][:100]

    @staticmethod
    def moto_deployment_id(svc: Any) -> str:
        """moto rewrites deployments[0]['id'] on update_service(forceNewDeployment=True)."""
        return str(svc.deployments[0]["id"]) if svc.deployments else ""

    # ElastiCache and the VPC -------------------------------------------------------------------

    def cache_endpoints(self) -> dict[str, CacheEndpoint]:
        """Primary and reader endpoint names of every replication group."""
        found: dict[str, CacheEndpoint] = {}
        for rg in list(self.elasticache.replication_groups.values()):
            for ng in rg.node_groups:
                for key in ("primary_endpoint_address", "reader_endpoint_address"):
                    if ng.get(key):
                        found[ng[key]] = CacheEndpoint(rg.replication_group_id, int(rg.port))
        return found

    def path(self, group_id: str, subnet_id: str, task_groups: list[str]) -> network.Path:
        """The rules between a task (subnet, groups) and a replication group, as they are now."""
        rg = self.elasticache.replication_groups.get(group_id)
        task_subnet = self._subnet(subnet_id)
        groups = tuple(g for g in (self._group(i) for i in task_groups) if g)
        if rg is None or rg.status == "deleting":
            return network.Path(task_subnet, groups, (), (), 0, exists=False)
        subnet_group = self.elasticache.cache_subnet_groups.get(rg.cache_subnet_group_name or "")
        subnet_ids = list(subnet_group.subnet_ids) if subnet_group else []
        cache_subnets = tuple(self._subnet(s) for s in subnet_ids)
        return network.Path(
            task_subnet=task_subnet,
            task_groups=groups,
            cache_subnets=cache_subnets,
            cache_groups=tuple(g for g in (self._group(i) for i in self._cache_sg_ids(rg)) if g),
            port=int(rg.port),
        )

    def _cache_sg_ids(self, rg: Any) -> list[str]:
        if rg.security_group_ids:
            return list(rg.security_group_ids)
        # moto ignores SecurityGroupIds on modify; fall back to provisioning's naming.
        name = f"{rg.replication_group_id}-sg"
        return [
            g.id
            for vpc_groups in list(self.ec2.groups.values())
            for g in list(vpc_groups.values())
            if g.name == name
        ]

    def _group(self, group_id: str) -> network.SecurityGroup | None:
        g = self.ec2.get_security_group_from_id(group_id)
        if g is None:
            return None
        return network.SecurityGroup(
            id=g.id,
            ingress=tuple(_sg_rule(r) for r in list(g.ingress_rules)),
            egress=tuple(_sg_rule(r) for r in list(g.egress_rules)),
        )

    def _subnet(self, subnet_id: str) -> network.Subnet:
        try:
            subnet = self.ec2.get_subnet(subnet_id)
        except Exception:
            return network.Subnet(subnet_id, "0.0.0.0/32")
        entries: tuple[network.AclEntry, ...] = ()
        for acl in list(self.ec2.network_acls.values()):
            if any(a.subnet_id == subnet_id for a in acl.associations):
                entries = tuple(_acl_entry(e) for e in list(acl.network_acl_entries))
                break
        return network.Subnet(subnet_id, subnet.cidr_block, entries)


def _port(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _sg_rule(rule: Any) -> network.SgRule:
    ip_range = rule.ip_range or {}
    source = rule.source_group or {}
    return network.SgRule(
        protocol=str(rule.ip_protocol),
        from_port=_port(rule.from_port),
        to_port=_port(rule.to_port),
        groups=(source["GroupId"],) if source.get("GroupId") else (),
        cidrs=(ip_range["CidrIp"],) if ip_range.get("CidrIp") else (),
    )


def _acl_entry(entry: Any) -> network.AclEntry:
    return network.AclEntry(
        rule_number=int(entry.rule_number),
        protocol=str(entry.protocol),
        action=str(entry.rule_action),
        egress=str(entry.egress).lower() == "true",
        cidr=entry.cidr_block or entry.ipv6_cidr_block or "0.0.0.0/0",
        from_port=_port(entry.port_range_from),
        to_port=_port(entry.port_range_to),
    )
