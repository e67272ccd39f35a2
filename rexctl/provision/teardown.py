"""`rexctl teardown`: delete only what carries managed-by=rexctl, in dependency order.

The replication group goes first (its nodes hold the subnet group and the security group), then
rexctl waits until it is gone, then the subnet group, the security group and the AUTH secret.
Anything without the tag, or tagged for another cache id, is listed as kept and never touched.

The AUTH token's secret is kept while a task definition of the service still names it in a
container's `secrets` (the service's current one, or any ACTIVE revision of its family): ECS
resolves secrets each time a task starts, so every task started after the deletion would fail.
Teardown then says what to do first and exits with CHECK_FAILED (1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import elasticache as ec_api
from rexctl.aws import secrets as sm_api
from rexctl.aws.ecs import TaskDefinition, describe_task_definition, short_arn
from rexctl.aws.errors import aws_errors
from rexctl.aws.session import Clients
from rexctl.config import Config
from rexctl.errors import AwsError, CheckFailed, RexctlError
from rexctl.provision.discover import service_network
from rexctl.provision.model import Reporter
from rexctl.provision.tags import CACHE_ID_TAG, is_managed
from rexctl.provision.wait import wait_for_cache

KINDS = ("replication group", "cache subnet group", "security group", "secret")


@dataclass(frozen=True)
class Resource:
    kind: str  # one of KINDS
    name: str
    id: str  # what the delete call takes (group id, sg id, secret ARN)
    delete: bool
    why: str = ""  # for kept resources: why rexctl leaves it

    def label(self) -> str:
        return f"{self.kind} {self.name}" + (f" ({self.id})" if self.id != self.name else "")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "id": self.id, "why": self.why or None}


@dataclass
class TeardownPlan:
    cache_id: str
    resources: list[Resource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Resources rexctl created but refuses to delete now: (why, what to do first).
    refused: list[tuple[Resource, str]] = field(default_factory=list)

    def error(self) -> RexctlError | None:
        """Why teardown leaves something it created (None when it does not)."""
        if not self.refused:
            return None
        lines = "\n".join(f"- {r.label()}: {r.why}." for r, _ in self.refused)
        return CheckFailed(
            f"rexctl teardown kept what it must not delete yet:\n{lines}",
            hint="\n".join(todo for _, todo in self.refused),
        )

    @property
    def doomed(self) -> list[Resource]:
        return [r for r in self.resources if r.delete]

    @property
    def kept(self) -> list[Resource]:
        return [r for r in self.resources if not r.delete]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache_id": self.cache_id,
            "delete": [r.to_dict() for r in self.doomed],
            "kept": [r.to_dict() for r in self.kept],
            "refused": [{**r.to_dict(), "todo": todo} for r, todo in self.refused],
            "warnings": list(self.warnings),
        }


@dataclass
class TeardownResult:
    plan: TeardownPlan
    deleted: list[Resource] = field(default_factory=list)
    failed: list[tuple[Resource, str]] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)  # what the failures' own errors advise

    def fail(self, resource: Resource, error: RexctlError | str) -> None:
        if isinstance(error, str):
            self.failed.append((resource, error))
            return
        self.failed.append((resource, error.message))
        if error.hint and error.hint not in self.hints:
            self.hints.append(error.hint)

    def error(self) -> RexctlError | None:
        if not self.failed:
            return self.plan.error()
        lines = "\n".join(f"- {r.label()}: {why}" for r, why in self.failed)
        return AwsError(
            f"rexctl teardown could not delete everything:\n{lines}",
            hint="\n".join(self.hints)
            or "Run `rexctl teardown` again once the cause is fixed; it only deletes what is "
            "still there.",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache_id": self.plan.cache_id,
            "deleted": [r.to_dict() for r in self.deleted],
            "kept": [r.to_dict() for r in self.plan.kept],
            "failed": [{**r.to_dict(), "error": why} for r, why in self.failed],
            "refused": [{**r.to_dict(), "todo": todo} for r, todo in self.plan.refused],
            "warnings": list(self.plan.warnings),
        }


def _ours(tags: dict[str, str], cache_id: str) -> tuple[bool, str]:
    if not is_managed(tags):
        return False, "not managed by rexctl"
    other = tags.get(CACHE_ID_TAG)
    if other and not ec_api.same_name(other, cache_id):  # ElastiCache's ids are lower case
        return False, f"managed by rexctl for cache {other}"
    return True, ""


def plan_teardown(clients: Clients, cfg: Config) -> TeardownPlan:
    """What teardown would delete and keep. Read-only."""
    cc = cfg.cache
    plan = TeardownPlan(cache_id=cc.id)
    ec = clients.elasticache
    cache = ec_api.get_replication_group(ec, cc.id)
    cache_kept_by_user = False
    if cache is not None:
        ours, why = _ours(ec_api.list_tags(ec, cache.arn) if cache.arn else {}, cc.id)
        cache_kept_by_user = not ours
        plan.resources.append(Resource(KINDS[0], cache.id, cache.id, ours, why))
        _redis_host_warning(clients, cfg, cache, plan)
    in_use = f"in use by {cc.id}, which rexctl does not manage"
    subnet_group = ec_api.get_subnet_group(ec, cc.subnet_group)
    if subnet_group is not None:
        ours, why = _ours(ec_api.list_tags(ec, subnet_group.arn), cc.id)
        if ours and cache_kept_by_user:
            ours, why = False, in_use
        plan.resources.append(Resource(KINDS[1], subnet_group.name, subnet_group.name, ours, why))
    for sg in ec2_api.find_security_groups(clients.ec2, cc.security_group):
        if cfg.ecs.vpc_id and sg.vpc_id != cfg.ecs.vpc_id:
            continue
        ours, why = _ours(sg.tags, cc.id)
        if ours and cache_kept_by_user:
            ours, why = False, in_use
        plan.resources.append(Resource(KINDS[2], sg.name, sg.id, ours, why))
    secret = sm_api.find_secret(clients.secretsmanager, sm_api.secret_name(cc.id))
    if secret is not None and not secret.scheduled_for_deletion:
        ours, why = _ours(secret.tags, cc.id)
        resource = Resource(KINDS[3], secret.name, secret.arn, ours, why)
        if ours:
            why, todo = _secret_in_use(clients, cfg, secret)
            if why:
                resource = Resource(KINDS[3], secret.name, secret.arn, False, why)
                plan.refused.append((resource, todo))
        plan.resources.append(resource)
    return plan


def _active_revisions(clients: Clients, family: str) -> list[str]:
    """The ARNs of the family's ACTIVE revisions (`familyPrefix` also matches longer names)."""
    with aws_errors(f"list the ACTIVE revisions of task definition family {family}"):
        pages = clients.ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE"
        )
        arns = [a for page in pages for a in page.get("taskDefinitionArns", [])]
    return [a for a in arns if short_arn(a).rsplit(":", 1)[0] == family]


def _names_secret(td: TaskDefinition, secret: sm_api.SecretView) -> bool:
    return any(
        secret.refers_to_me(str(s.get("valueFrom", "")))
        for c in td.raw.get("containerDefinitions", [])
        for s in c.get("secrets", [])
    )


def _secret_in_use(clients: Clients, cfg: Config, secret: sm_api.SecretView) -> tuple[str, str]:
    """Why the AUTH secret must be kept, and what to do first ('', '' when it can go): a task
    definition the service can still start tasks from names it in `secrets`."""
    keep = (
        f"`aws secretsmanager delete-secret --secret-id {secret.name} "
        "--force-delete-without-recovery`"
    )
    if not (cfg.ecs.cluster and cfg.ecs.service):
        return (
            "rexctl cannot tell whether a task definition still uses it (`ecs.cluster` / "
            "`ecs.service` are not set)",
            "Set `ecs.cluster` and `ecs.service` (`rexctl init --force`) and run `rexctl "
            f"teardown` again; or, if no task definition references it, delete it with {keep}.",
        )
    try:
        service, _ = service_network(clients, cfg)
        current = describe_task_definition(clients.ecs, service.task_definition)
        using: list[str] = []
        if _names_secret(current, secret):
            using.append(f"{current.family}:{current.revision}")
        for arn in _active_revisions(clients, current.family):
            name = short_arn(arn)
            if name in using or name == f"{current.family}:{current.revision}":
                continue
            if _names_secret(describe_task_definition(clients.ecs, arn), secret):
                using.append(name)
    except RexctlError as exc:
        return (
            f"rexctl could not check which task definitions use it: {exc.message.rstrip('.')}",
            "Fix that and run `rexctl teardown` again; or, if no task definition references "
            f"it, delete it with {keep}.",
        )
    if not using:
        return "", ""
    revisions = ", ".join(using)
    current_name = f"{current.family}:{current.revision}"
    steps = []
    if current_name in using:
        steps.append(
            f"put {cfg.ecs.service} on a revision that does not name it (without the "
            "REDIS_AUTH_TOKEN secret, and with REDIS_ENABLED=false once the cache is gone: "
            "`rexctl rollback --to <family:revision>` to such a revision, or register one and "
            "`aws ecs update-service`)"
        )
    deregister = " && ".join(
        f"aws ecs deregister-task-definition --task-definition {r}" for r in using
    )
    steps.append(f"deregister the revisions that name it (`{deregister}`)")
    return (
        f"still named in `secrets` by task definition revision(s) {revisions} of the service "
        f"{cfg.ecs.service} (the current one or ACTIVE ones); ECS reads it each time a task "
        "starts, so deleting it would make every new task (and any rollback to those "
        "revisions) fail",
        "Secret kept. First " + ", then ".join(steps) + ", then run `rexctl teardown` again.",
    )


def _redis_host_warning(
    clients: Clients, cfg: Config, cache: ec_api.CacheView, plan: TeardownPlan
) -> None:
    if not (cfg.ecs.cluster and cfg.ecs.service and cache.endpoint):
        return
    try:
        service, _ = service_network(clients, cfg)
        td = describe_task_definition(clients.ecs, service.task_definition)
        host = td.environment(cfg.ecs.container).get("REDIS_HOST", "")
    except RexctlError as exc:
        plan.warnings.append(f"Could not check the service's REDIS_HOST: {exc.message}")
        return
    if host == cache.endpoint:
        plan.warnings.append(
            f"Task definition {td.family}:{td.revision} still points REDIS_HOST at "
            f"{cache.endpoint}. After the teardown the service runs without its cache (it should "
            "degrade gracefully); deploy a revision with REDIS_ENABLED=false to stop the errors."
        )


def teardown(
    clients: Clients,
    cfg: Config,
    plan: TeardownPlan,
    *,
    reporter: Reporter,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> TeardownResult:
    """Delete what `plan` marks for deletion, replication group first."""
    result = TeardownResult(plan=plan)
    doomed = {r.kind: r for r in plan.doomed}
    group = doomed.pop(KINDS[0], None)
    if group is not None:
        try:
            current = ec_api.get_replication_group(clients.elasticache, group.id)
            if current is not None and current.status != "deleting":
                ec_api.delete_replication_group(clients.elasticache, group.id)
            reporter.info(f"Deleting {group.label()}; waiting until it is gone...")
            wait_for_cache(
                clients.elasticache,
                group.id,
                gone=True,
                timeout=timeout,
                reporter=reporter,
                clock=clock,
                sleep=sleep,
                rerun="rexctl teardown",
            )
        except RexctlError as exc:
            # Its nodes still hold the subnet group and security group: stop here.
            result.fail(group, exc)
            for rest in doomed.values():
                result.fail(rest, f"not attempted: {group.label()} is not gone yet")
            return result
        result.deleted.append(group)
        reporter.success(f"Deleted {group.label()}.")
    for kind in KINDS[1:]:
        resource = doomed.get(kind)
        if resource is None:
            continue
        try:
            if kind == KINDS[1]:
                ec_api.delete_subnet_group(clients.elasticache, resource.id)
            elif kind == KINDS[2]:
                ec2_api.delete_security_group(clients.ec2, resource.id)
            else:
                sm_api.delete_secret(clients.secretsmanager, resource.id)
        except RexctlError as exc:  # one failure must not stop the independent deletions
            result.fail(resource, exc)
            reporter.warn(f"Could not delete {resource.label()}: {exc.message}")
            continue
        result.deleted.append(resource)
        reporter.success(f"Deleted {resource.label()}.")
    return result
