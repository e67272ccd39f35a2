"""The deploy plan (guide step 12): which REDIS_* values the next revision gets, and the diff.

Read-only: the cache, the service, its task definition and the AUTH secret's ARN are read; nothing
is changed. The next revision is built with `rexctl.aws.ecs.build_revision` and tagged with the
revision it replaces (`rexctl:previous-revision`), which is what `rexctl rollback` reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rexctl.aws.ecs import (
    ServiceView,
    TaskDefinition,
    build_revision,
    describe_service,
    describe_task_definition,
    short_arn,
)
from rexctl.deploy.rollout import is_settled
from rexctl.errors import UsageError
from rexctl.redact import redact_data, redact_value

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rexctl.aws.elasticache import CacheView
    from rexctl.config import Config

PREVIOUS_TAG = "rexctl:previous-revision"
AUTH_VAR = "REDIS_AUTH_TOKEN"
REDIS_VARS = ("REDIS_ENABLED", "REDIS_HOST", "REDIS_PORT", "REDIS_TLS", AUTH_VAR)
USABLE_CACHE_STATUSES = ("available", "modifying", "snapshotting")


def auth_secret_name(cache_id: str) -> str:
    """The Secrets Manager name `rexctl provision` gives the cache's AUTH token."""
    from rexctl.aws.secrets import secret_name

    return secret_name(cache_id)


@dataclass(frozen=True)
class VarChange:
    """One container variable that the new revision changes. `old`/`new` are None when absent;
    `*_secret` says the value is a Secrets Manager reference (an ARN, never the token)."""

    name: str
    old: str | None
    new: str | None
    old_secret: bool = False
    new_secret: bool = False

    def shown(self, which: str) -> str:
        value, secret = (
            (self.old, self.old_secret) if which == "old" else (self.new, self.new_secret)
        )
        if value is None:
            return "(not set)"
        if secret:
            return f"secret {value}"
        return redact_value(self.name, value)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "old": self.shown("old"), "new": self.shown("new")}


@dataclass(frozen=True)
class DeployPlan:
    cluster: str
    service: str
    container: str
    current: TaskDefinition  # the revision the service runs now
    cache: CacheView
    changes: list[VarChange]
    revision: dict[str, Any]  # register_task_definition kwargs of the next revision
    warnings: list[str] = field(default_factory=list)
    # '' when the PRIMARY deployment runs `current` with its rollout finished; else what is not
    rollout_pending: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "service": self.service,
            "container": self.container,
            "current": self.current.arn,
            "cache": {
                "id": self.cache.id,
                "endpoint": self.cache.endpoint,
                "port": self.cache.port,
            },
            "changed": self.changed,
            "changes": [c.to_dict() for c in self.changes],
            "revision": redacted_revision(self.revision) if self.changed else None,
            "service_update": (
                {
                    "cluster": self.cluster,
                    "service": self.service,
                    "taskDefinition": f"{self.current.family}:<next revision>",
                }
                if self.changed
                else None
            ),
            "warnings": list(self.warnings),
            "rollout_pending": self.rollout_pending or None,
        }


def redacted_revision(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The register kwargs fit to print: secrets hidden by the one rule of `rexctl.redact`
    (environment values by name, credentials inside URLs anywhere)."""
    return redact_data(kwargs)  # type: ignore[no-any-return]


def _vars(raw_container: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """name -> (value, is_secret) for the container's environment and secrets."""
    out = {e["name"]: (e.get("value", ""), False) for e in raw_container.get("environment", [])}
    out.update(
        {s["name"]: (s.get("valueFrom", ""), True) for s in raw_container.get("secrets", [])}
    )
    return out


def diff_vars(
    before: dict[str, Any], after: dict[str, Any], names: Iterable[str]
) -> list[VarChange]:
    """What changes for `names` between two container definitions."""
    old, new = _vars(before), _vars(after)
    changes = []
    for name in names:
        if old.get(name) != new.get(name):
            o, n = old.get(name), new.get(name)
            changes.append(
                VarChange(
                    name=name,
                    old=o[0] if o else None,
                    new=n[0] if n else None,
                    old_secret=bool(o and o[1]),
                    new_secret=bool(n and n[1]),
                )
            )
    return changes


def auth_secret_arn(secretsmanager: SecretsManagerClient, name: str) -> str:
    """The ARN of the secret called `name`; a UsageError naming `rexctl provision` when absent."""
    from rexctl.aws.secrets import find_secret

    secret = find_secret(secretsmanager, name)
    if secret is None or secret.scheduled_for_deletion:
        state = "is scheduled for deletion" if secret else "does not exist"
        raise UsageError(
            f"The cache uses an AUTH token, but the secret {name!r} that hands it to the "
            f"container {state} in Secrets Manager.",
            hint="Run `rexctl provision` (with `cache.auth = true` it stores the token there).",
        )
    return secret.arn


def get_usable_cache(elasticache: ElastiCacheClient, cache_id: str) -> CacheView:
    from rexctl.aws.elasticache import get_replication_group

    cache = get_replication_group(elasticache, cache_id)
    if cache is None:
        raise UsageError(
            f"The cache {cache_id!r} does not exist, so there is no endpoint to deploy.",
            hint="Run `rexctl provision` first (guide steps 1-11), or set `cache.id` in "
            "rexctl.toml to the replication group you made.",
        )
    if cache.status not in USABLE_CACHE_STATUSES or not cache.endpoint:
        raise UsageError(
            f"The cache {cache_id!r} is {cache.status!r}, not available: it has no endpoint yet.",
            hint="Wait for it (`rexctl provision` waits until it is available) and run "
            "`rexctl deploy` again.",
        )
    return cache


def plan_deploy(
    cfg: Config,
    *,
    ecs: ECSClient,
    elasticache: ElastiCacheClient,
    secretsmanager: SecretsManagerClient,
) -> DeployPlan:
    """Read the cache and the service and build the next revision (changes nothing)."""
    cfg.require("ecs.cluster", "ecs.service")
    cache = get_usable_cache(elasticache, cfg.cache.id)
    view = describe_service(ecs, cfg.ecs.cluster, cfg.ecs.service)
    refuse_other_controllers(view)
    current = describe_task_definition(ecs, view.task_definition)
    container = cfg.ecs.container
    before = current.container(container)

    set_env = {"REDIS_ENABLED": "true", "REDIS_HOST": cache.endpoint, "REDIS_PORT": str(cache.port)}
    remove: list[str] = []
    if cache.transit_encryption:
        set_env["REDIS_TLS"] = "true"
    else:
        remove.append("REDIS_TLS")
    set_secrets: dict[str, str] = {}
    warnings: list[str] = []
    if cache.auth_enabled or cfg.cache.auth:
        set_secrets[AUTH_VAR] = auth_secret_arn(secretsmanager, auth_secret_name(cache.id))
    else:
        remove.append(AUTH_VAR)
    existing = _vars(before)
    revision = build_revision(
        current,
        container=container,
        set_env=set_env,
        set_secrets=set_secrets,
        remove_env=[name for name in remove if name in existing],
        extra_tags={PREVIOUS_TAG: current.arn},
    )
    refuse_what_aws_refuses(revision, current)
    warnings += rollout_warnings(view)
    after = next(c for c in revision["containerDefinitions"] if c.get("name") == container)
    if existing.get(AUTH_VAR, ("", True))[1] is False:
        warnings.append(
            f"{AUTH_VAR} was in the container's plain environment; the new revision moves it "
            "to `secrets`. Older revisions still show it: consider rotating the token."
        )
    return DeployPlan(
        cluster=cfg.ecs.cluster,
        service=cfg.ecs.service,
        container=container,
        current=current,
        cache=cache,
        changes=diff_vars(before, after, REDIS_VARS),
        revision=revision,
        warnings=warnings,
        rollout_pending=_rollout_pending(view, current),
    )


def refuse_other_controllers(view: ServiceView) -> None:
    """Only the rolling-update (ECS) controller takes a new task definition from UpdateService
    (ECS API reference, UpdateService: with CODE_DEPLOY "create a new CodeDeploy deployment",
    with EXTERNAL "create a new task set"). Refused before anything is registered."""
    controller = view.deployment_controller or "ECS"
    if controller == "ECS":
        return
    how = (
        "a CodeDeploy deployment (`aws deploy create-deployment`) with the new revision"
        if controller == "CODE_DEPLOY"
        else "a new task set (`aws ecs create-task-set`) from the tool that manages it"
    )
    raise UsageError(
        f"ECS service {view.name} uses the {controller} deployment controller: ECS does not "
        "accept a new task definition through UpdateService for it, so `rexctl deploy` cannot "
        "roll it. Nothing was registered or changed.",
        hint=f"Register the revision (`rexctl deploy --dry-run --json` shows it) and roll it "
        f"with {how}.",
    )


def refuse_what_aws_refuses(revision: dict[str, Any], current: TaskDefinition) -> None:
    """The revision as RegisterTaskDefinition would receive it, checked against AWS's documented
    rules (rexctl.aws.rules) before anything is sent: e.g. container `secrets`, or FARGATE with the
    awslogs driver, without an execution role."""
    from rexctl.aws.rules import check

    violations = check("ecs", "RegisterTaskDefinition", revision)
    if not violations:
        return
    lines = "\n".join(f"- {v.message()}" for v in violations)
    hint = "Nothing was registered or changed."
    if any(v.parameter == "executionRoleArn" for v in violations):
        hint = (
            f"Give task definition {current.family} an execution role that may read the secret "
            "(secretsmanager:GetSecretValue on it; kms:Decrypt for a customer key): register a "
            "revision with `executionRoleArn`, roll the service to it, then run `rexctl deploy` "
            "again. " + hint
        )
    raise UsageError(f"ECS would refuse the new revision of {current.family}:\n{lines}", hint=hint)


def rollout_warnings(view: ServiceView) -> list[str]:
    """What makes a rollout of a revision whose tasks cannot start slow or disruptive."""
    out = []
    if not view.circuit_breaker:
        out.append(
            f"Service {view.name} has no deployment circuit breaker: if the new tasks cannot "
            "start, ECS keeps the rollout IN_PROGRESS and retries (rexctl stops waiting once "
            "tasks of the new revision stopped before starting, and says why). Turn it on with "
            "rollback (`aws ecs update-service --deployment-configuration "
            "'deploymentCircuitBreaker={enable=true,rollback=true}'`)."
        )
    if view.minimum_healthy_percent is not None and view.minimum_healthy_percent < 100:
        out.append(
            f"Service {view.name} has minimumHealthyPercent {view.minimum_healthy_percent}: ECS "
            "stops old tasks before the new ones are healthy, so a bad revision takes capacity "
            "away during the rollout."
        )
    return out


def _rollout_pending(view: ServiceView, current: TaskDefinition) -> str:
    primary = view.primary
    name = f"{current.family}:{current.revision}"
    if primary is None or primary.task_definition != current.arn:
        now = short_arn(primary.task_definition) if primary else "none"
        return f"the PRIMARY deployment does not run {name} yet (it runs {now})"
    if not is_settled(view, primary):
        return (
            f"the rollout of {name} is {primary.rollout_state or 'not settled'}, running "
            f"{primary.running}/{primary.desired}"
        )
    return ""
