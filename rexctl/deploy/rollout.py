"""Waiting for an ECS rollout, and deciding when it is done (never the `services_stable` waiter).

Done only when the PRIMARY deployment runs the task-definition ARN we asked for, its rolloutState
is COMPLETED and its running count equals its desired count. `services_stable` can succeed after
the deployment circuit breaker rolled the service back, or while a rollout is still IN_PROGRESS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rexctl.aws.ecs import (
    Deployment,
    ServiceEvent,
    ServiceView,
    TaskView,
    describe_service,
    list_tasks,
    short_arn,
)

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

_ROLLBACK_WORDS = ("rolling back", "circuit breaker", "deployment failed")
# Tasks of the new revision that stopped before they started (stopCode TaskFailedToStart: e.g.
# ResourceInitializationError when the execution role may not read a secret, or
# CannotPullContainerError). ECS retries them forever without a circuit breaker, so after this
# many the wait ends at once with their stoppedReason instead of running out its timeout.
START_FAILURE_LIMIT = 2

ProgressFn = Callable[[ServiceView, list[ServiceEvent]], None]


@dataclass(frozen=True)
class RolloutResult:
    ok: bool
    reason: str
    view: ServiceView  # the service as last seen
    events: list[ServiceEvent]  # service events that came during the wait, oldest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "deployments": [deployment_dict(d) for d in self.view.deployments],
            "events": [event_dict(e) for e in self.events],
        }


def deployment_dict(d: Deployment) -> dict[str, Any]:
    return {
        "status": d.status,
        "task_definition": d.task_definition,
        "rollout_state": d.rollout_state,
        "rollout_reason": d.rollout_reason,
        "running": d.running,
        "desired": d.desired,
        "pending": d.pending,
        "failed_tasks": d.failed_tasks,
    }


def event_dict(e: ServiceEvent) -> dict[str, Any]:
    return {"created_at": e.created_at, "message": e.message}


def is_settled(view: ServiceView, deployment: Deployment) -> bool:
    """The rollout of `deployment` is over: rolloutState COMPLETED (or, from a deployment
    controller that reports none, it is the only deployment) and running equals desired."""
    finished = deployment.rollout_state == "COMPLETED" or (
        deployment.rollout_state == "" and len(view.deployments) == 1
    )
    return finished and deployment.running == deployment.desired


def _event_key(e: ServiceEvent) -> str:
    return e.id or f"{e.created_at}|{e.message}"


def _is_rollback_event(e: ServiceEvent) -> bool:
    text = e.message.lower()
    return any(word in text for word in _ROLLBACK_WORDS)


class _EventTracker:
    """Tells which service events are new. Events that exist on the first look and are older
    than our deployment (when ECS says when it began) count as seen: they are history."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.first = True
        self.collected: list[ServiceEvent] = []

    def fresh(self, view: ServiceView, since: datetime | None) -> list[ServiceEvent]:
        out = []
        for e in reversed(view.events):  # ECS lists newest first
            key = _event_key(e)
            if key in self.seen:
                continue
            self.seen.add(key)
            if self.first:
                created = e.created_at
                if since is None or created is None or created < since - timedelta(seconds=1):
                    continue
            out.append(e)
        self.first = False
        self.collected.extend(out)
        return out


def _ours(view: ServiceView, arn: str, deployment_id: str) -> Deployment | None:
    """The deployment being waited for: the one with `deployment_id` when given (a forced
    deployment runs the same task definition as the one it replaces), else the one running
    `arn` (the PRIMARY first)."""
    if deployment_id:
        return next((d for d in view.deployments if d.id == deployment_id), None)
    return next(
        (d for d in sorted(view.deployments, key=lambda d: d.status != "PRIMARY")
         if d.task_definition == arn),
        None,
    )  # fmt: skip


def _judge(
    view: ServiceView,
    arn: str,
    events: list[ServiceEvent],
    saw_primary: bool,
    deployment_id: str = "",
) -> tuple[bool | None, str]:
    """(True, why) when done, (False, why) when failed, (None, what we wait for) otherwise."""
    ours = _ours(view, arn, deployment_id)
    primary = view.primary
    name = short_arn(arn) + (f" ({deployment_id})" if deployment_id else "")
    rollback_events = [e for e in events if _is_rollback_event(e)]
    if _is(primary, arn, deployment_id):
        assert primary is not None
        counts = f"running {primary.running}/{primary.desired}"
        if primary.rollout_state == "FAILED":
            return False, f"The rollout of {name} FAILED: {primary.rollout_reason or counts}."
        if is_settled(view, primary):
            return True, f"The PRIMARY deployment runs {name}: rollout COMPLETED, {counts}."
        if rollback_events:
            return False, f"ECS is rolling back the deployment of {name}."
        state = primary.rollout_state or "rollout state not reported"
        return None, f"PRIMARY deployment of {name}: {state}, {counts}"
    back_to = short_arn(primary.task_definition) if primary else "no deployment"
    if ours is not None and ours.rollout_state == "FAILED":
        return False, (
            f"The rollout of {name} FAILED ({ours.rollout_reason or 'no reason given'}); "
            f"the PRIMARY deployment is {back_to}."
        )
    if rollback_events:
        return False, (
            f"The deployment circuit breaker rolled the service back: the PRIMARY deployment "
            f"runs {back_to}, not {name}."
        )
    if saw_primary:
        return False, (
            f"The PRIMARY deployment switched from {name} to {back_to} (rolled back, or "
            "replaced by another deployment)."
        )
    return None, f"waiting for ECS to make {name} the PRIMARY deployment (now: {back_to})"


def _is(deployment: Deployment | None, arn: str, deployment_id: str) -> bool:
    if deployment is None or deployment.task_definition != arn:
        return False
    return not deployment_id or deployment.id == deployment_id


def wait_for_rollout(
    ecs: ECSClient,
    *,
    cluster: str,
    service: str,
    task_definition_arn: str,
    timeout: float,
    poll: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_progress: ProgressFn | None = None,
    since: datetime | None = None,
    deployment_id: str = "",
) -> RolloutResult:
    """Poll the service until the rollout of `task_definition_arn` is done, failed, or timed out.
    With `deployment_id` (a forced new deployment, of the same task definition), only that
    deployment counts.

    Done only when the PRIMARY deployment runs that ARN, its rolloutState is COMPLETED and its
    running count equals its desired count (a deployment that reports no rolloutState counts as
    settled when it is the only one). A FAILED rollout, events saying the service is rolling back
    or that the circuit breaker tripped, or a PRIMARY deployment that moved away from the ARN after
    having it, end the wait with ok=False and the events that explain it. `on_progress` receives
    the service and the events that are new since the last look. Events already listed on the
    first look count as history unless they are no older than our deployment's createdAt (ECS's
    clock) or, when ECS no longer lists our deployment, than `since` (the caller's clock, taken
    just before it updated the service).
    """
    deadline = clock() + timeout
    tracker = _EventTracker()
    saw_primary = False
    while True:
        view = describe_service(ecs, cluster, service)
        ours = _ours(view, task_definition_arn, deployment_id)
        fresh = tracker.fresh(view, ours.created_at if ours and ours.created_at else since)
        if on_progress is not None:
            on_progress(view, fresh)
        verdict, reason = _judge(
            view, task_definition_arn, tracker.collected, saw_primary, deployment_id
        )
        # ECS counts the deployment's tasks that failed to launch or reach RUNNING (failedTasks,
        # ECS API reference, Deployment); only then is it worth reading the stopped tasks.
        if verdict is None and ours is not None and ours.failed_tasks > 0:
            failed = start_failures(ecs, cluster, service, task_definition_arn)
            if len(failed) >= START_FAILURE_LIMIT and ours.running == 0:
                verdict, reason = False, _start_failure_reason(task_definition_arn, failed)
        saw_primary = saw_primary or _is(view.primary, task_definition_arn, deployment_id)
        if verdict is not None:
            return RolloutResult(ok=verdict, reason=reason, view=view, events=tracker.collected)
        remaining = deadline - clock()
        if remaining <= 0:
            return RolloutResult(
                ok=False,
                reason=f"Timed out after {timeout:g}s: {reason}.",
                view=view,
                events=tracker.collected,
            )
        sleep(min(poll, remaining))


def start_failures(ecs: ECSClient, cluster: str, service: str, arn: str) -> list[TaskView]:
    """The service's stopped tasks of revision `arn` that never started (stopCode
    TaskFailedToStart). ECS keeps stopped tasks listable for at least an hour."""
    stopped = list_tasks(ecs, cluster, service, desired_status="STOPPED")
    return [t for t in stopped if t.task_definition == arn and t.stop_code == "TaskFailedToStart"]


def _start_failure_reason(arn: str, failed: list[TaskView]) -> str:
    reasons: dict[str, int] = {}
    for t in failed:
        key = t.stopped_reason or "no reason given"
        reasons[key] = reasons.get(key, 0) + 1
    why = "; ".join(f"{r} ({n} task{'s' if n > 1 else ''})" for r, n in reasons.items())
    return (
        f"The tasks of {short_arn(arn)} cannot start: {len(failed)} stopped before starting "
        f"(stopCode TaskFailedToStart): {why}."
    )
