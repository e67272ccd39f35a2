"""Step 12: give the backend the cache's endpoint and roll the ECS service; and the way back.

Plan, then apply. `plan_deploy` (rexctl/deploying/plan.py) only reads: the cache, the service, its
task definition, the AUTH secret's ARN; it builds the next revision; `--dry-run` renders it.
`deploy` registers that revision only when a REDIS_* value really changes, updates the service and
waits with `wait_for_rollout` (rexctl/deploying/rollout.py).

What "deployed" means: the PRIMARY deployment runs the new task-definition ARN, its rolloutState
is COMPLETED and its running count equals its desired count. The `services_stable` waiter is not
used: it can succeed after the deployment circuit breaker rolled the service back, or while a
rollout is still IN_PROGRESS.

Where the way back is recorded: each revision rexctl registers carries the tag
`rexctl:previous-revision=<ARN of the revision the service ran before>`. `rollback` reads that
tag from the revision the service runs now, so it needs no local state and works from any machine;
`--to` names a revision explicitly. Rolling back twice walks further back along those tags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rexctl.aws.ecs import (
    TaskDefinition,
    describe_service,
    describe_task_definition,
    register_revision,
    short_arn,
    update_service,
)
from rexctl.deploy.revision import (
    AUTH_VAR,
    PREVIOUS_TAG,
    REDIS_VARS,
    DeployPlan,
    VarChange,
    auth_secret_name,
    plan_deploy,
    redacted_revision,
)
from rexctl.deploy.rollout import ProgressFn, RolloutResult, is_settled, wait_for_rollout
from rexctl.errors import Interrupted, UsageError

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rexctl.config import Config

__all__ = [
    "AUTH_VAR",
    "PREVIOUS_TAG",
    "REDIS_VARS",
    "DeployPlan",
    "Outcome",
    "ProgressFn",
    "RolloutResult",
    "VarChange",
    "WaitOptions",
    "auth_secret_name",
    "deploy",
    "plan_deploy",
    "redacted_revision",
    "rollback",
    "rollback_target",
    "wait_for_rollout",
]


@dataclass(frozen=True)
class Outcome:
    """What `deploy` or `rollback` did.

    status: unchanged | dry-run | started (--no-wait) | deployed | failed.
    """

    action: str  # deploy | rollback
    status: str
    cluster: str
    service: str
    from_arn: str
    to_arn: str  # '' when nothing was (or would be) registered
    rollout: RolloutResult | None = None
    plan: DeployPlan | None = None
    rolled_back: Outcome | None = None  # the rollback that --rollback-on-failure ran

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "status": self.status,
            "ok": self.ok,
            "cluster": self.cluster,
            "service": self.service,
            "from": self.from_arn,
            "to": self.to_arn or None,
            "rollout": self.rollout.to_dict() if self.rollout else None,
        }
        if self.plan is not None:
            out["plan"] = self.plan.to_dict()
        if self.rolled_back is not None:
            out["rolled_back"] = self.rolled_back.to_dict()
        return out


@dataclass(frozen=True)
class WaitOptions:
    wait: bool = True
    timeout: float = 900.0
    poll: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    on_progress: ProgressFn | None = None
    rollback_on_failure: bool = False  # deploy: roll back at once when the rollout fails


def _wait(
    ecs: ECSClient,
    cluster: str,
    service: str,
    arn: str,
    opts: WaitOptions,
    since: datetime | None = None,
    again: str = "rexctl deploy",
) -> RolloutResult:
    try:
        return wait_for_rollout(
            ecs,
            cluster=cluster,
            service=service,
            task_definition_arn=arn,
            timeout=opts.timeout,
            poll=opts.poll,
            sleep=opts.sleep,
            clock=opts.clock,
            on_progress=opts.on_progress,
            since=since,
        )
    except KeyboardInterrupt:
        # Only the waiting stops: ECS goes on with the rollout it was given.
        raise Interrupted(
            f"Stopped waiting; ECS keeps rolling service {service} to {short_arn(arn)}.",
            hint=f"`{again}` waits for it again (and changes nothing); `rexctl verify` checks "
            "the service.",
        ) from None


def _roll(
    ecs: ECSClient, cluster: str, service: str, arn: str, opts: WaitOptions, again: str
) -> tuple[str, RolloutResult | None]:
    # Events older than this are history; a little slack for the difference between clocks.
    since = datetime.now(UTC) - timedelta(seconds=2)
    update_service(ecs, cluster, service, arn)
    if not opts.wait:
        return "started", None
    result = _wait(ecs, cluster, service, arn, opts, since, again)
    return ("deployed" if result.ok else "failed"), result


def deploy(
    cfg: Config,
    *,
    ecs: ECSClient,
    elasticache: ElastiCacheClient,
    secretsmanager: SecretsManagerClient,
    dry_run: bool = False,
    wait: WaitOptions | None = None,
    on_plan: Callable[[DeployPlan], None] | None = None,
) -> Outcome:
    """Plan; then (unless dry-run or nothing changes) register, update the service and wait."""
    opts = wait or WaitOptions()
    plan = plan_deploy(cfg, ecs=ecs, elasticache=elasticache, secretsmanager=secretsmanager)
    if on_plan is not None:
        on_plan(plan)

    def outcome(status: str, to_arn: str = "", rollout: RolloutResult | None = None) -> Outcome:
        return Outcome(
            "deploy", status, plan.cluster, plan.service, plan.current.arn, to_arn, rollout, plan
        )

    if not plan.changed:
        # Nothing to register; but a rollout of this revision that is still going (or that a
        # previous `rexctl deploy` stopped waiting for) is waited for, so "unchanged" is true.
        if plan.rollout_pending and opts.wait and not dry_run:
            result = _wait(ecs, plan.cluster, plan.service, plan.current.arn, opts)
            return outcome("unchanged" if result.ok else "failed", "", result)
        return outcome("unchanged")
    if dry_run:
        return outcome("dry-run")
    registered = register_revision(ecs, plan.revision)
    status, rollout = _roll(ecs, plan.cluster, plan.service, registered.arn, opts, "rexctl deploy")
    done = outcome(status, registered.arn, rollout)
    if status == "failed" and opts.rollback_on_failure:
        done = replace(done, rolled_back=rollback(cfg, ecs=ecs, to=plan.current.arn, wait=opts))
    return done


def rollback_target(current: TaskDefinition) -> str:
    """The revision recorded on `current` by `rexctl deploy`; UsageError when there is none."""
    for tag in current.tags:
        if tag["key"] == PREVIOUS_TAG and tag["value"]:
            return tag["value"]
    raise UsageError(
        f"The service runs {current.family}:{current.revision}, which has no "
        f"`{PREVIOUS_TAG}` tag: `rexctl deploy` did not register it, so there is no recorded "
        "revision to go back to.",
        hint=f"Name one with `rexctl rollback --to {current.family}:REVISION` "
        f"(`aws ecs list-task-definitions --family-prefix {current.family}` lists them).",
    )


def rollback(
    cfg: Config,
    *,
    ecs: ECSClient,
    to: str = "",
    dry_run: bool = False,
    wait: WaitOptions | None = None,
) -> Outcome:
    """Put the service back on the revision it ran before the last `rexctl deploy` (or `to`)."""
    opts = wait or WaitOptions()
    cfg.require("ecs.cluster", "ecs.service")
    cluster, service = cfg.ecs.cluster, cfg.ecs.service
    view = describe_service(ecs, cluster, service)
    current = describe_task_definition(ecs, view.task_definition)
    target = describe_task_definition(ecs, to or rollback_target(current))
    if target.raw.get("status") == "INACTIVE":
        raise UsageError(
            f"Revision {target.family}:{target.revision} is deregistered (INACTIVE); ECS will "
            "not start tasks from it.",
            hint="Pick an ACTIVE revision with `--to FAMILY:REVISION`.",
        )

    def outcome(status: str, rollout: RolloutResult | None = None) -> Outcome:
        return Outcome("rollback", status, cluster, service, current.arn, target.arn, rollout)

    again = f"rexctl rollback --to {short_arn(target.arn)}"
    if target.arn == current.arn:
        # The service is already set to the target: nothing to update. As in `deploy`, a rollout
        # of it that is not finished yet is waited for before saying so.
        primary = view.primary
        settled = (
            primary is not None
            and primary.task_definition == target.arn
            and is_settled(view, primary)
        )
        if dry_run or settled:
            return outcome("unchanged")
        if not opts.wait:
            return outcome("started")
        result = _wait(ecs, cluster, service, target.arn, opts, again=again)
        return outcome("unchanged" if result.ok else "failed", result)
    if dry_run:
        return outcome("dry-run")
    status, rollout = _roll(ecs, cluster, service, target.arn, opts, again)
    return outcome(status, rollout)
