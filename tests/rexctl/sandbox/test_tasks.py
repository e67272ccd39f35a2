"""The service's tasks are real processes; moto shows them as ECS would, restarts included."""

from __future__ import annotations

import os
import signal

import httpx

from tests.rexctl.sandbox.conftest import Sandbox, steady, wait_for


def test_the_seeded_service_runs_its_tasks_behind_the_load_balancer(sandbox: Sandbox) -> None:
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    svc = sandbox.service()
    assert (svc["desiredCount"], svc["runningCount"], svc["pendingCount"]) == (2, 2, 0)
    assert svc["deployments"][0]["status"] == "PRIMARY"
    assert any("has reached a steady state" in e["message"] for e in svc["events"])
    answer = httpx.get(sandbox.state.app_url, timeout=10).json()
    assert answer["source"] == "db"


def test_a_crashed_task_shows_as_a_restart_and_comes_back(sandbox: Sandbox) -> None:
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    before = [t for t in sandbox.runtime() if t["status"] == "RUNNING"]
    assert len(before) == 2
    victim = before[0]
    os.kill(victim["pid"], signal.SIGKILL)
    ecs = sandbox.client("ecs")

    def stopped() -> dict[str, object] | None:
        task = ecs.describe_tasks(cluster="rexpress", tasks=[victim["arn"]])["tasks"][0]
        return task if task["lastStatus"] == "STOPPED" else None

    task = wait_for(stopped, what="the killed task to show as STOPPED")
    assert task["desiredStatus"] == "STOPPED"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["containers"][0]["exitCode"] == 137
    assert task["group"] == "service:backend"

    def replaced() -> list[str] | None:
        running = ecs.list_tasks(cluster="rexpress", desiredStatus="RUNNING")["taskArns"]
        described = (
            ecs.describe_tasks(cluster="rexpress", tasks=running)["tasks"] if running else []
        )
        up = [t["taskArn"] for t in described if t["lastStatus"] == "RUNNING"]
        return up if len(up) == 2 and victim["arn"] not in up else None

    now_running = wait_for(replaced, what="a replacement task")
    new_arns = set(now_running) - {t["arn"] for t in before}
    assert len(new_arns) == 1, "a restart is a NEW task ARN"
    assert victim["arn"] in ecs.list_tasks(cluster="rexpress", desiredStatus="STOPPED")["taskArns"]
    messages = [e["message"] for e in sandbox.service()["events"]]
    new_id = next(iter(new_arns)).rsplit("/", 1)[-1]
    assert f"(service backend) has started 1 tasks: (task {new_id})." in messages
    assert httpx.get(sandbox.state.app_url, timeout=10).status_code == 200


def test_a_new_task_definition_rolls_one_task_at_a_time(sandbox: Sandbox) -> None:
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    ecs = sandbox.client("ecs")
    svc = sandbox.service()
    old_td = svc["taskDefinition"]
    td = ecs.describe_task_definition(taskDefinition=old_td)["taskDefinition"]
    container = dict(td["containerDefinitions"][0])
    container["environment"] = [*container["environment"], {"name": "MARK", "value": "2"}]
    new_td = ecs.register_task_definition(
        family=td["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    ecs.update_service(cluster="rexpress", service="backend", taskDefinition=new_td)
    seen: set[tuple[str, str]] = set()

    def done() -> bool:
        s = sandbox.service()
        seen.update((d["status"], d["rolloutState"]) for d in s["deployments"])
        return steady(sandbox, new_td)

    wait_for(done, what="the rollout to complete")
    assert ("PRIMARY", "IN_PROGRESS") in seen, "the new deployment was never seen in progress"
    assert ("ACTIVE", "COMPLETED") in seen, "the old deployment was never seen ACTIVE"
    running = [t for t in sandbox.runtime() if t["status"] == "RUNNING"]
    assert {t["task_definition"] for t in running} == {new_td}
    messages = [e["message"] for e in sandbox.service()["events"]]
    assert any("deployment completed" in m for m in messages)
