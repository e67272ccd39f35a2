"""wait_for_rollout against rollouts moto cannot show, played back with botocore's Stubber:
two deployments IN_PROGRESS then COMPLETED, a FAILED rollout, a circuit-breaker rollback, a
PRIMARY that switches away, and a timeout. A fake clock and sleep: nothing really waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rexctl.aws.ecs import ServiceEvent, ServiceView
from rexctl.deploy import RolloutResult, wait_for_rollout
from tests.helpers import FakeTime

OLD = "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:1"
NEW = "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:2"
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PARAMS = {"cluster": "c", "services": ["svc"]}
STOPPED_PARAMS = {"cluster": "c", "serviceName": "svc", "desiredStatus": "STOPPED"}


def dep(
    status: str, td: str, state: str, running: int, desired: int = 2, **kw: Any
) -> dict[str, Any]:
    return {
        "id": f"ecs-svc/{td[-1]}{status}",
        "status": status,
        "taskDefinition": td,
        "rolloutState": state,
        "rolloutStateReason": kw.pop("reason", ""),
        "runningCount": running,
        "desiredCount": desired,
        "pendingCount": desired - running,
        "failedTasks": kw.pop("failed", 0),
        "createdAt": kw.pop("created", T0),
    }


def event(n: int, message: str, minutes: int) -> dict[str, Any]:
    return {"id": f"e{n}", "createdAt": T0 + timedelta(minutes=minutes), "message": message}


def service(deployments: list[dict[str, Any]], events: list[dict[str, Any]],
            td: str = NEW) -> dict[str, Any]:  # fmt: skip
    return {
        "services": [
            {
                "serviceName": "svc",
                "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/c/svc",
                "status": "ACTIVE",
                "taskDefinition": td,
                "desiredCount": 2,
                "runningCount": sum(d["runningCount"] for d in deployments),
                "pendingCount": 0,
                "deployments": deployments,
                "events": list(reversed(events)),  # ECS lists the newest first
            }
        ],
        "failures": [],
    }


@pytest.fixture
def ecs() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ecs", region_name="us-east-1")
    stubber = Stubber(client)
    with stubber:
        yield client, stubber


def run(client: Any, fake: FakeTime, timeout: float = 60.0) -> tuple[RolloutResult, list[Any]]:
    seen: list[tuple[ServiceView, list[ServiceEvent]]] = []
    result = wait_for_rollout(
        client,
        cluster="c",
        service="svc",
        task_definition_arn=NEW,
        timeout=timeout,
        poll=5.0,
        sleep=fake.sleep,
        clock=fake.clock,
        on_progress=lambda view, fresh: seen.append((view, fresh)),
    )
    return result, seen


OLD_EVENT = event(0, "(service svc) has reached a steady state.", -60)


def test_in_progress_then_completed(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    started = event(1, "(service svc) has started 2 tasks: (task a) (task b).", 1)
    steady = event(2, "(service svc) has reached a steady state.", 3)
    created = T0 + timedelta(seconds=30)
    for response in (
        service([dep("PRIMARY", NEW, "IN_PROGRESS", 0, created=created),
                 dep("ACTIVE", OLD, "COMPLETED", 2)], [OLD_EVENT]),
        service([dep("PRIMARY", NEW, "IN_PROGRESS", 1, created=created),
                 dep("ACTIVE", OLD, "COMPLETED", 1)], [OLD_EVENT, started]),
        # COMPLETED but not all running yet: still not done
        service([dep("PRIMARY", NEW, "COMPLETED", 1, created=created)], [OLD_EVENT, started]),
        service([dep("PRIMARY", NEW, "COMPLETED", 2, created=created)],
                [OLD_EVENT, started, steady]),
    ):  # fmt: skip
        stubber.add_response("describe_services", response, PARAMS)
    fake = FakeTime()
    result, seen = run(client, fake)
    stubber.assert_no_pending_responses()
    assert result.ok, result.reason
    assert result.reason == (
        "The PRIMARY deployment runs backend:2: rollout COMPLETED, running 2/2."
    )
    assert fake.sleeps == [5.0, 5.0, 5.0]
    # the event from before the deployment is history, not progress
    assert [[e.message for e in fresh] for _, fresh in seen] == [
        [],
        [started["message"]],
        [],
        [steady["message"]],
    ]
    assert [e.message for e in result.events] == [started["message"], steady["message"]]
    assert [d.status for d in seen[0][0].deployments] == ["PRIMARY", "ACTIVE"]


def test_circuit_breaker_rollback_is_a_failure(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    failed = event(1, "(service svc) deployment ecs-svc/2PRIMARY deployment failed: tasks failed "
                   "to start.", 2)  # fmt: skip
    rolling = event(2, "(service svc) rolling back to deployment ecs-svc/1ACTIVE.", 2)
    stubber.add_response(
        "describe_services",
        service([dep("PRIMARY", NEW, "IN_PROGRESS", 0, failed=3),
                 dep("ACTIVE", OLD, "COMPLETED", 2)], [OLD_EVENT]),
        PARAMS,
    )  # fmt: skip
    # failedTasks > 0: rexctl reads the stopped tasks (none of them failed to start here: the
    # tasks were stopped for failing health checks, say), and goes on waiting.
    stubber.add_response("list_tasks", {"taskArns": []}, STOPPED_PARAMS)
    stubber.add_response(
        "describe_services",
        service([dep("PRIMARY", OLD, "IN_PROGRESS", 2),
                 dep("ACTIVE", NEW, "FAILED", 0, reason="ECS deployment circuit breaker: tasks "
                     "failed to start.")], [OLD_EVENT, failed, rolling], td=OLD),
        PARAMS,
    )  # fmt: skip
    fake = FakeTime()
    result, _ = run(client, fake)
    stubber.assert_no_pending_responses()
    assert not result.ok
    assert result.reason == (
        "The rollout of backend:2 FAILED (ECS deployment circuit breaker: tasks failed to "
        "start.); the PRIMARY deployment is backend:1."
    )
    assert [e.message for e in result.events] == [failed["message"], rolling["message"]]


def test_rolling_back_events_alone_fail_it(ecs: tuple[Any, Stubber]) -> None:
    """Our deployment already gone from the list: the events explain what happened."""
    client, stubber = ecs
    rolling = event(1, "(service svc) rolling back to deployment ecs-svc/1.", 2)
    stubber.add_response("describe_services", service(
        [dep("PRIMARY", OLD, "IN_PROGRESS", 2)], [OLD_EVENT]), PARAMS)  # fmt: skip
    stubber.add_response("describe_services", service(
        [dep("PRIMARY", OLD, "COMPLETED", 2)], [OLD_EVENT, rolling], td=OLD), PARAMS)  # fmt: skip
    result, _ = run(client, FakeTime())
    stubber.assert_no_pending_responses()
    assert not result.ok
    assert result.reason.startswith("The deployment circuit breaker rolled the service back")
    assert [e.message for e in result.events] == [rolling["message"]]


def test_failed_rollout_on_the_primary(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    stubber.add_response(
        "describe_services",
        service([dep("PRIMARY", NEW, "FAILED", 0, reason="tasks failed to start")], []),
        PARAMS,
    )
    result, _ = run(client, FakeTime())
    assert not result.ok
    assert result.reason == "The rollout of backend:2 FAILED: tasks failed to start."


def test_primary_switching_away_without_events_fails(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    stubber.add_response("describe_services", service(
        [dep("PRIMARY", NEW, "IN_PROGRESS", 1)], []), PARAMS)  # fmt: skip
    stubber.add_response("describe_services", service(
        [dep("PRIMARY", OLD, "IN_PROGRESS", 1)], [], td=OLD), PARAMS)  # fmt: skip
    result, _ = run(client, FakeTime())
    stubber.assert_no_pending_responses()
    assert not result.ok
    assert "switched from backend:2 to backend:1" in result.reason


def test_timeout(ecs: tuple[Any, Stubber]) -> None:
    """services_stable would say yes here (one deployment, running == desired); we do not."""
    client, stubber = ecs
    for _ in range(4):  # at 0, 5, 10 and 12 s
        stubber.add_response("describe_services", service(
            [dep("PRIMARY", NEW, "IN_PROGRESS", 2)], []), PARAMS)  # fmt: skip
    fake = FakeTime()
    result, _ = run(client, fake, timeout=12)
    stubber.assert_no_pending_responses()
    assert not result.ok
    assert result.reason == (
        "Timed out after 12s: PRIMARY deployment of backend:2: IN_PROGRESS, running 2/2."
    )
    assert fake.sleeps == [5.0, 5.0, 2.0]


def test_waiting_for_ecs_to_pick_up_the_update(ecs: tuple[Any, Stubber]) -> None:
    """Right after update_service the old deployment can still be the only one: keep waiting."""
    client, stubber = ecs
    stubber.add_response("describe_services", service(
        [dep("PRIMARY", OLD, "COMPLETED", 2)], [OLD_EVENT], td=OLD), PARAMS)  # fmt: skip
    stubber.add_response("describe_services", service(
        [dep("PRIMARY", NEW, "COMPLETED", 2)], [OLD_EVENT]), PARAMS)  # fmt: skip
    result, seen = run(client, FakeTime())
    stubber.assert_no_pending_responses()
    assert result.ok and len(seen) == 2
    assert result.events == []


def test_a_rollback_before_the_first_look_is_caught_by_since(ecs: tuple[Any, Stubber]) -> None:
    """ECS rolled back before we looked and no longer lists our deployment: the events newer
    than `since` (taken before update_service) still explain it."""
    client, stubber = ecs
    rolling = event(1, "(service svc) rolling back to deployment ecs-svc/1.", 2)
    stubber.add_response("describe_services", service(
        [dep("PRIMARY", OLD, "IN_PROGRESS", 2)], [OLD_EVENT, rolling], td=OLD), PARAMS)  # fmt: skip
    result = wait_for_rollout(client, cluster="c", service="svc", task_definition_arn=NEW,
                              timeout=60, sleep=FakeTime().sleep, clock=FakeTime().clock,
                              since=T0 + timedelta(minutes=1))  # fmt: skip
    stubber.assert_no_pending_responses()
    assert not result.ok
    assert [e.message for e in result.events] == [rolling["message"]]


def stopped_task(n: int, td: str, reason: str, code: str = "TaskFailedToStart") -> dict[str, Any]:
    return {
        "taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/c/t{n}",
        "taskDefinitionArn": td,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stoppedReason": reason,
        "stopCode": code,
        "group": "service:svc",
        "startedBy": "ecs-svc/2PRIMARY",
    }


def test_tasks_that_cannot_start_end_the_wait_with_their_stopped_reason(
    ecs: tuple[Any, Stubber],
) -> None:
    """AWS: ECS resolves a container's `secrets` when each task starts; when the execution role
    may not read the secret the task stops with ResourceInitializationError (stopCode
    TaskFailedToStart) and, without a circuit breaker, the rollout stays IN_PROGRESS forever.
    The deployment's failedTasks counts them. rexctl ends the wait at once with the reason,
    instead of running out its 15-minute timeout."""
    client, stubber = ecs
    reason = (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm: AccessDeniedException"
    )
    stubber.add_response(
        "describe_services",
        service([dep("PRIMARY", NEW, "IN_PROGRESS", 0, failed=1),
                 dep("ACTIVE", OLD, "COMPLETED", 2)], [OLD_EVENT]),
        PARAMS,
    )  # fmt: skip
    arns = [stopped_task(1, NEW, reason)["taskArn"]]
    stubber.add_response("list_tasks", {"taskArns": arns}, STOPPED_PARAMS)
    stubber.add_response(
        "describe_tasks", {"tasks": [stopped_task(1, NEW, reason)]}, {"cluster": "c", "tasks": arns}
    )
    stubber.add_response(
        "describe_services",
        service([dep("PRIMARY", NEW, "IN_PROGRESS", 0, failed=2),
                 dep("ACTIVE", OLD, "COMPLETED", 2)], [OLD_EVENT]),
        PARAMS,
    )  # fmt: skip
    scaled = stopped_task(3, OLD, "Scaling activity initiated", "ServiceSchedulerInitiated")
    tasks = [stopped_task(1, NEW, reason), stopped_task(2, NEW, reason), scaled]
    arns = [t["taskArn"] for t in tasks]
    stubber.add_response("list_tasks", {"taskArns": arns}, STOPPED_PARAMS)
    stubber.add_response("describe_tasks", {"tasks": tasks}, {"cluster": "c", "tasks": arns})
    fake = FakeTime()
    result, _ = run(client, fake)
    stubber.assert_no_pending_responses()
    assert not result.ok
    assert result.reason == (
        "The tasks of backend:2 cannot start: 2 stopped before starting (stopCode "
        f"TaskFailedToStart): {reason} (2 tasks)."
    )
    assert len(fake.sleeps) == 1  # the second look ended it, long before the timeout


def test_a_forced_deployment_is_done_only_when_that_deployment_is(ecs: tuple[Any, Stubber]) -> None:
    """Issue 13 (rotate-token): a forced new deployment runs the same task definition as the one
    it replaces. Right after UpdateService the old deployment may still be the one ECS lists as
    settled: only the deployment with the id ECS gave counts."""
    client, stubber = ecs
    old = {**dep("PRIMARY", NEW, "COMPLETED", 2), "id": "ecs-svc/old"}
    forced = {**dep("PRIMARY", NEW, "IN_PROGRESS", 0), "id": "ecs-svc/forced"}
    for response in (
        service([old], [OLD_EVENT]),  # ECS has not shown the new deployment yet
        service([forced, {**old, "status": "ACTIVE"}], [OLD_EVENT]),
        service([{**forced, "rolloutState": "COMPLETED", "runningCount": 2}], [OLD_EVENT]),
    ):
        stubber.add_response("describe_services", response, PARAMS)
    fake = FakeTime()
    result = wait_for_rollout(
        client, cluster="c", service="svc", task_definition_arn=NEW, timeout=60.0, poll=5.0,
        sleep=fake.sleep, clock=fake.clock, deployment_id="ecs-svc/forced",
    )  # fmt: skip
    stubber.assert_no_pending_responses()
    assert result.ok, result.reason
    assert result.reason == (
        "The PRIMARY deployment runs backend:2 (ecs-svc/forced): rollout COMPLETED, running 2/2."
    )
    assert fake.sleeps == [5.0, 5.0]
