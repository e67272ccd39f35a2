"""`rexctl status`: the cache, its security group rules, its subnet group and the ECS service on
one screen. Read-only; works (and says what is missing) before anything was provisioned.

Secrets are redacted by the one rule of `rexctl.redact`: the AUTH token is never read, secret
REDIS_* values show as `(redacted)`, and the container's `secrets` entries show only where they
come from.
"""

from __future__ import annotations

from typing import Any

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import elasticache as ec_api
from rexctl.aws import secrets as sm_api
from rexctl.aws.ecs import TaskDefinition, describe_task_definition
from rexctl.aws.session import Clients
from rexctl.config import Config
from rexctl.errors import RexctlError
from rexctl.provision.discover import service_network
from rexctl.provision.tags import is_managed
from rexctl.redact import redact_value


def redis_settings(td: TaskDefinition, container: str) -> dict[str, str]:
    """The container's REDIS_* settings, secrets redacted."""
    shown: dict[str, str] = {}
    for name, value in sorted(td.environment(container).items()):
        if name.startswith("REDIS_"):
            shown[name] = redact_value(name, value)
    for name, source in sorted(td.secrets(container).items()):
        if name.startswith("REDIS_"):
            shown[name] = f"(secret: {source})"
    return shown


def gather_status(clients: Clients, cfg: Config) -> dict[str, Any]:
    cc = cfg.cache
    ec = clients.elasticache
    missing: list[str] = []
    report: dict[str, Any] = {"cache_id": cc.id, "missing": missing}

    cache = ec_api.get_replication_group(ec, cc.id)
    if cache is None:
        report["cache"] = None
        missing.append(f"replication group {cc.id} (run `rexctl provision`)")
    else:
        tags = ec_api.list_tags(ec, cache.arn) if cache.arn else {}
        report["cache"] = {
            "id": cache.id,
            "status": cache.status,
            "endpoint": cache.endpoint or None,
            "port": cache.port or None,
            "node_type": cache.node_type,
            "engine": cache.engine or "redis",
            "replicas": cache.replicas,
            "automatic_failover": cache.automatic_failover,
            "multi_az": cache.multi_az,
            "at_rest_encryption": cache.at_rest_encryption,
            "transit_encryption": cache.transit_encryption,
            "auth": cache.auth_enabled,
            "managed_by_rexctl": is_managed(tags),
        }

    vpc_id = cfg.ecs.vpc_id
    service_report: dict[str, Any] | None = None
    if cfg.ecs.cluster and cfg.ecs.service:
        try:
            service, vpc_id = service_network(clients, cfg)
            service_report = _service(clients, cfg, service, cache)
        except RexctlError as exc:
            missing.append(f"ECS service: {exc.message}")
    else:
        missing.append("ecs.cluster / ecs.service are not set (run `rexctl init`)")
    report["service"] = service_report

    groups = [
        g
        for g in ec2_api.find_security_groups(clients.ec2, cc.security_group)
        if not vpc_id or g.vpc_id == vpc_id
    ]
    if not groups:
        report["security_group"] = None
        missing.append(f"security group {cc.security_group}")
    else:
        sg = groups[0]
        report["security_group"] = {
            "id": sg.id,
            "name": sg.name,
            "vpc_id": sg.vpc_id,
            "managed_by_rexctl": is_managed(sg.tags),
            "inbound": [
                {
                    "rule": r.id,
                    "protocol": r.protocol,
                    "ports": r.ports,
                    "source": r.source,
                    "description": r.description,
                }
                for r in sg.ingress()
            ],
        }
        if not any(r.covers(cc.port) for r in sg.ingress()):
            missing.append(f"an inbound rule for port {cc.port} in {sg.id}")

    subnet_group = ec_api.get_subnet_group(ec, cc.subnet_group)
    if subnet_group is None:
        report["subnet_group"] = None
        missing.append(f"cache subnet group {cc.subnet_group}")
    else:
        subnets = {s.id: s for s in ec2_api.vpc_subnets(clients.ec2, subnet_group.vpc_id)}
        report["subnet_group"] = {
            "name": subnet_group.name,
            "vpc_id": subnet_group.vpc_id,
            "managed_by_rexctl": is_managed(ec_api.list_tags(ec, subnet_group.arn)),
            "subnets": [
                {
                    "id": i,
                    "az": subnets[i].az if i in subnets else "?",
                    "public": subnets[i].public if i in subnets else None,
                }
                for i in subnet_group.subnet_ids
            ],
        }

    if cc.auth or (cache is not None and cache.auth_enabled):
        secret = sm_api.find_secret(clients.secretsmanager, sm_api.secret_name(cc.id))
        report["auth_secret"] = (
            {"name": secret.name, "arn": secret.arn, "managed_by_rexctl": is_managed(secret.tags)}
            if secret
            else None
        )
        if secret is None:
            missing.append(f"secret {sm_api.secret_name(cc.id)}")
    return report


def _service(
    clients: Clients, cfg: Config, service: Any, cache: ec_api.CacheView | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cluster": cfg.ecs.cluster,
        "name": service.name,
        "status": service.status,
        "running": service.running,
        "desired": service.desired,
        "security_groups": list(service.security_groups),
        "task_definition": service.task_definition,
        "container": cfg.ecs.container,
        "redis": {},
        "points_at_cache": False,
    }
    if not service.task_definition:
        return out
    td = describe_task_definition(clients.ecs, service.task_definition)
    out["task_definition"] = f"{td.family}:{td.revision}"
    try:
        out["redis"] = redis_settings(td, cfg.ecs.container)
    except RexctlError as exc:
        out["redis_error"] = exc.message
        return out
    host = td.environment(cfg.ecs.container).get("REDIS_HOST", "")
    out["points_at_cache"] = bool(cache and cache.endpoint and host == cache.endpoint)
    return out
