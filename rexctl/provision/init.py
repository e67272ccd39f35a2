"""`rexctl init`: read the ECS service and its VPC, write rexctl.toml.

The [cache] defaults are written out explicitly so the user sees every choice the guide makes
(steps 4-9) and can change it before `rexctl provision`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rexctl.aws.ecs import describe_task_definition
from rexctl.aws.session import Clients
from rexctl.config import BY_KEY, Config, render_toml
from rexctl.errors import ConfigError, UsageError
from rexctl.provision.discover import service_network


@dataclass(frozen=True)
class InitResult:
    path: Path
    values: dict[str, Any]
    text: str


def _container(clients: Clients, task_definition: str, wanted: str, default: str) -> str:
    td = describe_task_definition(clients.ecs, task_definition)
    names = [str(c.get("name", "")) for c in td.raw.get("containerDefinitions", [])]
    if wanted:
        td.container(wanted)  # refuses a name the task definition does not have
        return wanted
    if len(names) == 1:
        return names[0]
    if default in names:
        return default
    raise ConfigError(
        f"Task definition {td.family}:{td.revision} has several containers "
        f"({', '.join(names)}) and none is called {default!r}.",
        hint="Pass `--container NAME`: the container that should get REDIS_* (guide step 12).",
    )


def init_config(
    clients: Clients,
    cfg: Config,
    *,
    cluster: str,
    service: str,
    container: str = "",
    url: str = "",
    force: bool = False,
) -> InitResult:
    """Describe the service, then write cfg.path (refusing to overwrite it without `force`)."""
    path = cfg.path
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists; rexctl init does not overwrite it.",
            hint="Pass `--force` to replace it, or `--config OTHER.toml` to write elsewhere.",
        )
    if not cluster or not service:
        raise UsageError("rexctl init needs `--cluster` and `--service`.")
    check = BY_KEY["app.url"].check
    reason = check(url) if check and url else None
    if reason:
        raise UsageError(f"--url {reason} (got {url!r}).")
    target = _with_ecs(cfg, cluster, service)
    view, vpc_id = service_network(clients, target)
    values: dict[str, Any] = {"region": str(clients.ecs.meta.region_name)}
    if cfg.profile:
        values["profile"] = cfg.profile
    cc = cfg.cache
    values.update(
        {
            "cache.id": cc.id,
            "cache.node_type": cc.node_type,
            "cache.replicas": cc.replicas,
            "cache.multi_az": cc.multi_az,
            "cache.port": cc.port,
            "cache.tls": cc.tls,
            "cache.auth": cc.auth,
            "cache.engine": cc.engine,
            "cache.engine_version": cc.engine_version,
            "cache.security_group": cc.security_group,
            "cache.subnet_group": cc.subnet_group,
            "cache.subnets": list(cc.subnets),
            "cache.wait_timeout": cc.wait_timeout,
            "ecs.cluster": cluster,
            "ecs.service": view.name,
            "ecs.container": _container(
                clients, view.task_definition, container, cfg.ecs.container
            ),
            "ecs.vpc_id": vpc_id,
            "ecs.subnets": list(view.subnets),
            "ecs.security_groups": list(view.security_groups),
            "app.url": url or cfg.app.url,
        }
    )
    text = render_toml(values)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"Cannot write {path}: {exc.strerror}.") from None
    return InitResult(path=path, values=values, text=text)


def _with_ecs(cfg: Config, cluster: str, service: str) -> Config:
    return replace(cfg, ecs=replace(cfg.ecs, cluster=cluster, service=service))
