"""The service's tasks are real processes; moto shows them as ECS would, restarts included."""

from __future__ import annotations

import os
import signal
from pathlib import Path

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


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_a_new_task_definition_rolls_one_task_at_a_time(sandbox: Sandbox) -> None:
    """The new revision's environment and secrets reach the processes, one new task at a time; its
    REDIS_HOST names no replication group, so it fails as an unknown host would (even though a
    Redis listens at that address) and the tasks' logs, in the streams the task definition names,
    show the Redis error."""
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    ecs = sandbox.client("ecs")
    svc = sandbox.service()
    old_td = svc["taskDefinition"]
    td = ecs.describe_task_definition(taskDefinition=old_td)["taskDefinition"]
    secret = sandbox.client("secretsmanager").create_secret(Name="mark", SecretString="s3cret!")
    container = dict(td["containerDefinitions"][0])
    container["secrets"] = [{"name": "SECRET_MARK", "valueFrom": secret["ARN"]}]
    container["environment"] = [
        *(e for e in container["environment"] if e["name"] != "REDIS_ENABLED"),
        {"name": "MARK", "value": "2"},
        {"name": "REDIS_ENABLED", "value": "true"},
        {"name": "REDIS_HOST", "value": "127.0.0.1"},
        {"name": "REDIS_PORT", "value": str(sandbox.state.redis_port)},
    ]
    new_td = ecs.register_task_definition(
        family=td["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    ecs.update_service(cluster="rexpress", service="backend", taskDefinition=new_td)
    seen: set[tuple[str, str]] = set()
    most_alive, most_starting = 0, 0

    def done() -> bool:
        nonlocal most_alive, most_starting
        tasks = sandbox.runtime()
        most_alive = max(most_alive, sum(t["status"] in ("PENDING", "RUNNING") for t in tasks))
        most_starting = max(most_starting, sum(t["status"] == "PENDING" for t in tasks))
        s = sandbox.service()
        seen.update((d["status"], d["rolloutState"]) for d in s["deployments"])
        return steady(sandbox, new_td)

    wait_for(done, timeout=90.0, what="the rollout to complete")  # slack for a loaded CI machine
    assert ("PRIMARY", "IN_PROGRESS") in seen, "the new deployment was never seen in progress"
    assert ("ACTIVE", "COMPLETED") in seen, "the old deployment was never seen ACTIVE"
    # A task that starts within one poll is never seen PENDING: "at most one" is what holds.
    assert most_starting <= 1 and most_alive <= 3, "one new task at a time, then an old one stops"
    running = [t for t in sandbox.runtime() if t["status"] == "RUNNING"]
    assert {t["task_definition"] for t in running} == {new_td}
    for t in running:
        env = environ(t["pid"])
        assert (env["MARK"], env["SECRET_MARK"]) == ("2", "s3cret!")
        assert (env["REDIS_HOST"], t["gate_port"]) == ("127.0.0.1.invalid", 0)
    messages = [e["message"] for e in sandbox.service()["events"]]
    assert any("deployment completed" in m for m in messages)

    logs = sandbox.client("logs")
    streams = [f"ecs/backend/{t['id']}" for t in running]

    def redis_errors() -> bool:
        events = logs.filter_log_events(
            logGroupName="/ecs/rexpress-backend", logStreamNames=streams,
            filterPattern='"Redis error"',
        )["events"]  # fmt: skip
        return {e["logStreamName"] for e in events} == set(streams)

    wait_for(redis_errors, what="Redis errors in both new tasks' log streams")
