"""ECS adapter: reading the backend service and its task definitions.

Later issues add the deploy side (register a revision, update the service, wait) here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors
from rexctl.errors import AwsError, ConfigError

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
        reasons = "; ".join(f.get("reason", "") for f in resp.get("failures", []))
        raise AwsError(
            f"ECS service {service!r} was not found in cluster {cluster!r}"
            + (f" ({reasons})." if reasons else "."),
            hint="Check `ecs.cluster` and `ecs.service` in rexctl.toml and the region; "
            "`aws ecs list-services --cluster CLUSTER` lists what exists.",
        )
    raw = services[0]
    net = (raw.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
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
    with aws_errors(f"describe task definition {arn_or_family}"):
        resp = ecs.describe_task_definition(taskDefinition=arn_or_family, include=["TAGS"])
    raw: dict[str, Any] = dict(resp["taskDefinition"])
    return TaskDefinition(
        arn=raw.get("taskDefinitionArn", ""),
        family=raw.get("family", ""),
        revision=int(raw.get("revision", 0)),
        raw=raw,
        tags=[{"key": t["key"], "value": t["value"]} for t in resp.get("tags", [])],
    )
