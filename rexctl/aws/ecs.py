"""ECS adapter: the backend service, its task definitions and its tasks.

Reading: `describe_service`, `describe_task_definition`, `list_tasks`. The deploy side:
`build_revision` (pure: the next revision's `register_task_definition` arguments),
`register_revision`, `update_service`, `deregister_task_definition`. Waiting for a rollout lives
in `rexctl.deploy`, because deciding when a deployment is done is policy, not transport.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors, unless_missing
from rexctl.errors import AwsError, ConfigError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    rollout_state: str  # IN_PROGRESS | COMPLETED | FAILED ('' when ECS does not say)
    rollout_reason: str
    running: int
    desired: int
    pending: int
    failed_tasks: int
    created_at: datetime | None


@dataclass(frozen=True)
class ServiceEvent:
    id: str
    created_at: datetime | None
    message: str


@dataclass(frozen=True)
class ServiceView:
    cluster: str
    name: str
    arn: str
    status: str
    task_definition: str
    desired: int
    running: int
    pending: int
    launch_type: str
    awsvpc: bool
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    events: list[ServiceEvent] = field(default_factory=list)
    deployment_controller: str = "ECS"  # ECS (rolling update) | CODE_DEPLOY | EXTERNAL
    circuit_breaker: bool = False  # deploymentConfiguration.deploymentCircuitBreaker.enable
    circuit_breaker_rollback: bool = False
    minimum_healthy_percent: int | None = None  # None: ECS did not say (its default is 100)
    maximum_percent: int | None = None

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)


def _deployment(raw: dict[str, Any]) -> Deployment:
    return Deployment(
        id=raw.get("id", ""),
        status=raw.get("status", ""),
        task_definition=raw.get("taskDefinition", ""),
        rollout_state=raw.get("rolloutState", ""),
        rollout_reason=raw.get("rolloutStateReason", ""),
        running=int(raw.get("runningCount", 0)),
        desired=int(raw.get("desiredCount", 0)),
        pending=int(raw.get("pendingCount", 0)),
        failed_tasks=int(raw.get("failedTasks", 0)),
        created_at=raw.get("createdAt"),
    )


def describe_service(ecs: ECSClient, cluster: str, service: str) -> ServiceView:
    """The service as ECS reports it; a clear error when it does not exist or is not active."""
    with aws_errors(f"describe ECS service {service} in cluster {cluster}"):
        resp = ecs.describe_services(cluster=cluster, services=[service])
    services: list[Any] = list(resp.get("services", []))
    if not services or services[0].get("status") == "INACTIVE":
        # ECS says MISSING for an unknown service; other reasons are worth showing as they are.
        reasons = "; ".join(
            r for f in resp.get("failures", []) if (r := f.get("reason", "")) not in ("", "MISSING")
        )
        state = " (it is INACTIVE: deleted)" if services else ""
        raise AwsError(
            f"ECS service {service!r} was not found in cluster {cluster!r}{state}"
            + (f": {reasons}." if reasons else "."),
            hint="Check `ecs.cluster` and `ecs.service` (rexctl.toml, REXCTL_ECS_CLUSTER, "
            f"REXCTL_ECS_SERVICE) and the region; `aws ecs list-services --cluster {cluster}` "
            "lists what exists.",
        )
    raw = services[0]
    net = (raw.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    conf = raw.get("deploymentConfiguration") or {}
    breaker = conf.get("deploymentCircuitBreaker") or {}
    return ServiceView(
        cluster=cluster,
        name=raw.get("serviceName", service),
        arn=raw.get("serviceArn", ""),
        status=raw.get("status", ""),
        task_definition=raw.get("taskDefinition", ""),
        desired=int(raw.get("desiredCount", 0)),
        running=int(raw.get("runningCount", 0)),
        pending=int(raw.get("pendingCount", 0)),
        launch_type=raw.get("launchType", ""),
        awsvpc=bool(net),
        subnets=list(net.get("subnets", [])),
        security_groups=list(net.get("securityGroups", [])),
        deployments=[_deployment(dict(d)) for d in raw.get("deployments", [])],
        events=[
            ServiceEvent(
                id=e.get("id", ""), created_at=e.get("createdAt"), message=e.get("message", "")
            )
            for e in raw.get("events", [])
        ],
        deployment_controller=(raw.get("deploymentController") or {}).get("type", "ECS"),
        circuit_breaker=bool(breaker.get("enable", False)),
        circuit_breaker_rollback=bool(breaker.get("rollback", False)),
        minimum_healthy_percent=conf.get("minimumHealthyPercent"),
        maximum_percent=conf.get("maximumPercent"),
    )


@dataclass(frozen=True)
class TaskDefinition:
    arn: str
    family: str
    revision: int
    raw: dict[str, Any]  # the taskDefinition as described (read-only fields included)
    tags: list[dict[str, str]]

    def container(self, name: str) -> dict[str, Any]:
        for c in self.raw.get("containerDefinitions", []):
            if c.get("name") == name:
                return dict(c)
        names = ", ".join(c.get("name", "?") for c in self.raw.get("containerDefinitions", []))
        raise ConfigError(
            f"Task definition {self.family}:{self.revision} has no container named {name!r} "
            f"(it has: {names}).",
            hint="Set `ecs.container` in rexctl.toml to the container that should get REDIS_*.",
        )

    def environment(self, container: str) -> dict[str, str]:
        return {
            e["name"]: e.get("value", "") for e in self.container(container).get("environment", [])
        }

    def secrets(self, container: str) -> dict[str, str]:
        return {
            s["name"]: s.get("valueFrom", "") for s in self.container(container).get("secrets", [])
        }


def describe_task_definition(ecs: ECSClient, arn_or_family: str) -> TaskDefinition:
    """The task definition (ARN, `family:revision` or family = its latest ACTIVE revision) with
    its tags; a UsageError naming it when it does not exist."""
    # ECS answers a missing revision with a bare ClientException "Unable to describe task
    # definition."; say which one and how to list those that exist.
    resp = unless_missing(
        "ClientException",
        f"describe task definition {arn_or_family}",
        lambda: ecs.describe_task_definition(taskDefinition=arn_or_family, include=["TAGS"]),
    )
    if resp is None:
        family = short_arn(arn_or_family).split(":", 1)[0]
        raise UsageError(
            f"Task definition {short_arn(arn_or_family)} does not exist (in this account and "
            "region).",
            hint=f"`aws ecs list-task-definitions --family-prefix {family}` lists its revisions.",
        )
    return _task_definition(dict(resp["taskDefinition"]), resp.get("tags", []))


# Fields that describe_task_definition returns but register_task_definition refuses. A test checks
# this list against botocore's model, so a field AWS adds later is noticed.
READ_ONLY_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)


def _set_named(
    items: list[dict[str, Any]], key: str, values: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Replace the value of each named entry in place (keeping its position), append new ones."""
    out = [dict(item) for item in items]
    index = {item.get("name"): i for i, item in enumerate(out)}
    for name, value in values.items():
        if name in index:
            out[index[name]][key] = value
        else:
            out.append({"name": name, key: value})
    return out


def build_revision(
    base: TaskDefinition,
    *,
    container: str,
    set_env: Mapping[str, str],
    set_secrets: Mapping[str, str] | None = None,
    remove_env: Iterable[str] = (),
    extra_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The `register_task_definition` arguments for the revision after `base` (pure, no AWS call).

    In `container`: `set_env` sets or replaces environment variables; `set_secrets` sets
    `secrets` entries (name -> Secrets Manager ARN as `valueFrom`) and removes the same names from
    `environment`, so a token never stays readable in plain text (and a name set in `environment`
    leaves `secrets`); `remove_env` removes names from both `environment` and `secrets`. Every
    other variable, container and setting is kept as it is, in its order. Read-only fields of the
    described definition are dropped; tags are kept (except AWS's own `aws:` tags, which cannot
    be set), `extra_tags` added or overwriting by key.
    """
    set_secrets = dict(set_secrets or {})
    removed = set(remove_env)
    overlap = set(set_env) & (set(set_secrets) | removed)
    if overlap:
        raise ValueError(f"variables both set and removed or made secret: {sorted(overlap)}")
    base.container(container)  # a clear error when the container does not exist
    kwargs: dict[str, Any] = {
        k: copy.deepcopy(v)
        for k, v in base.raw.items()
        if k not in READ_ONLY_FIELDS and v is not None
    }
    containers: list[dict[str, Any]] = []
    for c in kwargs.get("containerDefinitions", []):
        if c.get("name") == container:
            c = dict(c)
            drop = removed | set(set_secrets)
            env = [e for e in c.get("environment", []) if e.get("name") not in drop]
            c["environment"] = _set_named(env, "value", set_env)
            # A name set in plain `environment` must not also stay in `secrets` (ECS refuses it).
            drop_secret = removed | set(set_env)
            secrets = [s for s in c.get("secrets", []) if s.get("name") not in drop_secret]
            secrets = _set_named(secrets, "valueFrom", set_secrets)
            if secrets:
                c["secrets"] = secrets
            else:
                c.pop("secrets", None)
        containers.append(c)
    kwargs["containerDefinitions"] = containers
    # `aws:` keys are AWS's own (case-insensitive); register_task_definition refuses them.
    tags = {t["key"]: t["value"] for t in base.tags if not t["key"].lower().startswith("aws:")}
    tags.update(extra_tags or {})
    kwargs.pop("tags", None)
    if tags:
        kwargs["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return kwargs


def _task_definition(raw: dict[str, Any], tags: Iterable[Any]) -> TaskDefinition:
    return TaskDefinition(
        arn=raw.get("taskDefinitionArn", ""),
        family=raw.get("family", ""),
        revision=int(raw.get("revision", 0)),
        raw=raw,
        tags=[{"key": t["key"], "value": t["value"]} for t in tags],
    )


def register_revision(ecs: ECSClient, kwargs: dict[str, Any]) -> TaskDefinition:
    """Register a revision built by `build_revision`; the registered definition with its tags."""
    with aws_errors(f"register a new revision of task definition {kwargs.get('family', '')}"):
        resp = ecs.register_task_definition(**kwargs)
    return _task_definition(dict(resp["taskDefinition"]), resp.get("tags", kwargs.get("tags", [])))


def update_service(ecs: ECSClient, cluster: str, service: str, task_definition_arn: str) -> None:
    """Point the service at a task definition; ECS then rolls the tasks (rolling update)."""
    with aws_errors(f"update ECS service {service} to {short_arn(task_definition_arn)}"):
        ecs.update_service(cluster=cluster, service=service, taskDefinition=task_definition_arn)


def force_new_deployment(ecs: ECSClient, cluster: str, service: str) -> str:
    """Start a new deployment of the service's current task definition (UpdateService
    forceNewDeployment): every task is replaced, and each new one resolves its container's
    `secrets` again when it starts (ECS developer guide, "Pass Secrets Manager secrets through
    Amazon ECS environment variables": a secret rotated later reaches a container only through a
    new task, e.g. with Force new deployment). Returns the new PRIMARY deployment's id."""
    with aws_errors(f"force a new deployment of ECS service {service}"):
        resp = ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
    deployments = (resp.get("service") or {}).get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    return str((primary or {}).get("id", ""))


def deregister_task_definition(ecs: ECSClient, arn: str) -> None:
    """Mark a revision INACTIVE (running tasks keep running; nothing new starts from it)."""
    with aws_errors(f"deregister task definition {short_arn(arn)}"):
        ecs.deregister_task_definition(taskDefinition=arn)


def short_arn(arn: str) -> str:
    """`family:revision` for a task-definition ARN (the input itself for anything else)."""
    return arn.rsplit("/", 1)[-1] if ":task-definition/" in arn else arn


@dataclass(frozen=True)
class TaskView:
    arn: str
    task_definition: str
    last_status: str
    desired_status: str
    started_at: datetime | None
    stopped_at: datetime | None
    stopped_reason: str
    stop_code: str
    started_by: str
    group: str = ""
    exit_codes: dict[str, int] = field(default_factory=dict)  # container -> exitCode (stopped)

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def list_tasks(
    ecs: ECSClient, cluster: str, service: str, *, desired_status: str = "RUNNING"
) -> list[TaskView]:
    """The service's tasks with the given desired status (RUNNING or STOPPED), oldest first.

    ECS filters by `serviceName`; moto ignores that filter, so the tasks are also kept only when
    their `group` is `service:<name>` (what ECS gives a service's tasks) or their `startedBy` is the
    service name or `service:<name>` (what a test can give a task it runs itself).
    """
    arns: list[str] = []
    doing = f"list the tasks of ECS service {service} in cluster {cluster}"
    with aws_errors(doing):
        paginator = ecs.get_paginator("list_tasks")
        for page in paginator.paginate(
            cluster=cluster,
            serviceName=service,
            desiredStatus=desired_status,  # type: ignore[arg-type]
        ):
            arns.extend(page.get("taskArns", []))
    views: list[TaskView] = []
    mine = {f"service:{service}", service}
    for start in range(0, len(arns), 100):
        with aws_errors(doing):
            resp = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])
        for t in resp.get("tasks", []):
            if t.get("group", "") not in mine and t.get("startedBy", "") not in mine:
                continue
            views.append(
                TaskView(
                    arn=t.get("taskArn", ""),
                    task_definition=t.get("taskDefinitionArn", ""),
                    last_status=t.get("lastStatus", ""),
                    desired_status=t.get("desiredStatus", ""),
                    started_at=t.get("startedAt"),
                    stopped_at=t.get("stoppedAt"),
                    stopped_reason=t.get("stoppedReason", ""),
                    stop_code=str(t.get("stopCode", "")),
                    started_by=t.get("startedBy", ""),
                    group=t.get("group", ""),
                    exit_codes={
                        c.get("name", ""): c["exitCode"]
                        for c in t.get("containers", [])
                        if c.get("exitCode") is not None
                    },
                )
            )
    views.sort(key=lambda v: (v.started_at is None, v.started_at or datetime.min, v.arn))
    return views
