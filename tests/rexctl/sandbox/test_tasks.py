"""The service's tasks are real processes; moto shows them as ECS would, restarts included,
with ECS's deployment rules: maximum/minimum healthy percent, the execution role reading the
secrets, the deployment circuit breaker and its rollback. Every task shares one database."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx

from tests.rexctl.sandbox.conftest import Sandbox, steady, wait_for

DEFAULTS = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def register(sandbox: Sandbox, container: dict[str, Any]) -> str:
    """A revision of the service's task definition with this container (and its role)."""
    ecs = sandbox.client("ecs")
    td = ecs.describe_task_definition(taskDefinition=sandbox.service()["taskDefinition"])
    current = td["taskDefinition"]
    return str(
        ecs.register_task_definition(
            family=current["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512", executionRoleArn=current["executionRoleArn"],
            containerDefinitions=[container],
        )["taskDefinition"]["taskDefinitionArn"]
    )  # fmt: skip


def current_container(sandbox: Sandbox) -> dict[str, Any]:
    ecs = sandbox.client("ecs")
    td = ecs.describe_task_definition(taskDefinition=sandbox.service()["taskDefinition"])
    return dict(td["taskDefinition"]["containerDefinitions"][0])


def stopped_tasks(sandbox: Sandbox, task_definition: str) -> list[dict[str, Any]]:
    ecs = sandbox.client("ecs")
    arns = ecs.list_tasks(cluster="rexpress", desiredStatus="STOPPED")["taskArns"]
    tasks = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster="rexpress", tasks=arns[i : i + 100])["tasks"]
    return [t for t in tasks if t["taskDefinitionArn"] == task_definition]


def test_the_seeded_service_runs_its_tasks_behind_the_load_balancer(sandbox: Sandbox) -> None:
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    svc = sandbox.service()
    assert (svc["desiredCount"], svc["runningCount"], svc["pendingCount"]) == (2, 2, 0)
    assert svc["deployments"][0]["status"] == "PRIMARY"
    assert any("has reached a steady state" in e["message"] for e in svc["events"])
    assert svc["deploymentConfiguration"] == DEFAULTS, "ECS's defaults, as describe shows them"
    td = sandbox.client("ecs").describe_task_definition(taskDefinition=svc["taskDefinition"])
    role = td["taskDefinition"]["executionRoleArn"]
    assert role == "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
    assert sandbox.client("iam").get_role(RoleName="ecsTaskExecutionRole")["Role"]["Arn"] == role
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


def test_a_new_task_definition_rolls_within_ecs_limits(sandbox: Sandbox) -> None:
    """The new revision's environment and secrets (read with the execution role, which may read
    `rexctl/*`) reach the processes. ECS's defaults hold: at most 200 % of the desired count
    alive, never fewer than 100 % running. Its REDIS_HOST names no replication group, so it fails
    as an unknown host would (even though a Redis listens at that address) and the tasks' logs, in
    the streams the task definition names, show the Redis error."""
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    ecs = sandbox.client("ecs")
    secret = sandbox.client("secretsmanager").create_secret(
        Name="rexctl/mark", SecretString="s3cret!"
    )
    container = current_container(sandbox)
    container["secrets"] = [{"name": "SECRET_MARK", "valueFrom": secret["ARN"]}]
    container["environment"] = [
        *(e for e in container["environment"] if e["name"] != "REDIS_ENABLED"),
        {"name": "MARK", "value": "2"},
        {"name": "REDIS_ENABLED", "value": "true"},
        {"name": "REDIS_HOST", "value": "127.0.0.1"},
        {"name": "REDIS_PORT", "value": str(sandbox.state.redis_port)},
    ]
    new_td = register(sandbox, container)
    ecs.update_service(cluster="rexpress", service="backend", taskDefinition=new_td)
    seen: set[tuple[str, str]] = set()
    most_alive, least_running = 0, 2

    def done() -> bool:
        nonlocal most_alive, least_running
        tasks = sandbox.runtime()
        most_alive = max(most_alive, sum(t["status"] in ("PENDING", "RUNNING") for t in tasks))
        s = sandbox.service()
        least_running = min(least_running, s["runningCount"])
        seen.update((d["status"], d["rolloutState"]) for d in s["deployments"])
        return steady(sandbox, new_td)

    wait_for(done, timeout=90.0, what="the rollout to complete")  # slack for a loaded CI machine
    assert ("PRIMARY", "IN_PROGRESS") in seen, "the new deployment was never seen in progress"
    assert ("ACTIVE", "COMPLETED") in seen, "the old deployment was never seen ACTIVE"
    assert most_alive <= 4, "maximumPercent 200: at most twice the desired count"
    assert least_running == 2, "minimumHealthyPercent 100: old tasks stop after new ones run"
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


def test_every_task_uses_the_one_database(sandbox: Sandbox) -> None:
    """A product written through the load balancer is read by every task (one RDS, not a file
    per task)."""
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    created = httpx.post(sandbox.state.app_url, json={"name": "Shared"}, timeout=10)
    assert created.status_code == 201, created.text
    running = [t for t in sandbox.runtime() if t["status"] == "RUNNING"]
    assert len(running) == 2
    for t in running:
        listed = httpx.get(f"http://127.0.0.1:{t['port']}/api/products", timeout=10).json()
        assert "Shared" in [p["name"] for p in listed["data"]], t
        assert environ(t["pid"])["DATABASE_PATH"] == str(sandbox.dir / "products.sqlite3")


def denied_revision(sandbox: Sandbox) -> str:
    """A revision whose secret the execution role may not read (it may read `rexctl/*` only)."""
    sm = sandbox.client("secretsmanager")
    try:
        arn = sm.create_secret(Name="other/denied", SecretString="nope")["ARN"]
    except sm.exceptions.ResourceExistsException:
        arn = sm.describe_secret(SecretId="other/denied")["ARN"]
    container = current_container(sandbox)
    container["secrets"] = [{"name": "DENIED", "valueFrom": arn}]
    return register(sandbox, container)


def test_the_circuit_breaker_fails_a_rollout_and_rolls_back(sandbox: Sandbox) -> None:
    """The execution role may not read the new revision's secret: its tasks stop with
    ResourceInitializationError (TaskFailedToStart); after 3 (ECS's minimum threshold) the
    breaker marks the rollout FAILED and rolls the service back to the revision that ran."""
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    ecs = sandbox.client("ecs")
    good = sandbox.service()["taskDefinition"]
    bad = denied_revision(sandbox)
    ecs.update_service(
        cluster="rexpress", service="backend", taskDefinition=bad,
        deploymentConfiguration={**DEFAULTS,
                                 "deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )  # fmt: skip
    seen: list[dict[str, Any]] = []

    def back() -> bool:
        svc = sandbox.service()
        seen.extend(d for d in svc["deployments"] if d["taskDefinition"] == bad)
        return steady(sandbox) and svc["taskDefinition"] == good

    wait_for(back, timeout=60, what="the rollback to the revision that ran")
    failed = [d for d in seen if d["rolloutState"] == "FAILED"]
    assert failed, "the rollout was never seen FAILED"
    assert failed[-1]["rolloutStateReason"] == (
        "ECS deployment circuit breaker: tasks failed to start."
    )
    assert failed[-1]["failedTasks"] >= 3
    svc = sandbox.service()
    assert svc["deployments"][0]["taskDefinition"] == good
    messages = [e["message"] for e in svc["events"]]
    assert (
        f"(service backend) (deployment {failed[-1]['id']}) deployment failed: tasks failed "
        "to start." in messages
    )
    assert any(m.startswith("(service backend) rolling back to deployment ") for m in messages)
    task = stopped_tasks(sandbox, bad)[0]
    assert task["stopCode"] == "TaskFailedToStart"
    reason = task["stoppedReason"]
    assert reason.startswith(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm: "
    ), reason
    assert (
        "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/"
        "ecsTaskExecutionRole/" in reason
    )
    assert (
        "is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/denied-" in reason
    )


def test_without_the_circuit_breaker_a_failing_rollout_keeps_trying(sandbox: Sandbox) -> None:
    """Breaker off (ECS's default): more failed tasks than the threshold, and the rollout is still
    IN_PROGRESS, PRIMARY on the new revision, while the old tasks keep serving."""
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    ecs = sandbox.client("ecs")
    good = sandbox.service()["taskDefinition"]
    bad = denied_revision(sandbox)
    ecs.update_service(
        cluster="rexpress", service="backend", taskDefinition=bad, deploymentConfiguration=DEFAULTS
    )

    def retried() -> dict[str, Any] | None:
        primary = sandbox.service()["deployments"][0]
        return primary if primary["failedTasks"] >= 4 else None

    try:
        primary = wait_for(retried, timeout=30, what="four failed tasks")
        assert (primary["taskDefinition"], primary["rolloutState"]) == (bad, "IN_PROGRESS")
        svc = sandbox.service()
        assert svc["runningCount"] == 2, "the old tasks keep running"
        assert (
            "(service backend) is unable to consistently start tasks successfully. For more "
            "information, see the Troubleshooting section of the Amazon ECS Developer Guide."
            in [e["message"] for e in svc["events"]]
        )
        assert httpx.get(sandbox.state.app_url, timeout=10).status_code == 200
    finally:
        ecs.update_service(cluster="rexpress", service="backend", taskDefinition=good)
    wait_for(lambda: steady(sandbox, good), timeout=60, what="the good revision again")


def test_below_100_percent_minimum_healthy_old_tasks_stop_first(sandbox: Sandbox) -> None:
    """minimumHealthyPercent 50: an old task stops before any new one is healthy."""
    wait_for(lambda: steady(sandbox), what="the service to be steady")
    ecs = sandbox.client("ecs")
    before = {t["arn"] for t in sandbox.runtime() if t["status"] == "RUNNING"}
    ecs.update_service(
        cluster="rexpress", service="backend", forceNewDeployment=True,
        deploymentConfiguration={**DEFAULTS, "minimumHealthyPercent": 50},
    )  # fmt: skip
    early_stop = False

    def done() -> bool:
        nonlocal early_stop
        tasks = sandbox.runtime()
        old_running = [t for t in tasks if t["arn"] in before and t["status"] == "RUNNING"]
        new_running = [t for t in tasks if t["arn"] not in before and t["status"] == "RUNNING"]
        if len(old_running) < 2 and not new_running:
            early_stop = True
        svc = sandbox.service()
        return (
            len(svc["deployments"]) == 1
            and steady(sandbox)
            and not before & {t["arn"] for t in tasks}
        )

    try:
        wait_for(done, timeout=60, what="the rollout to complete")
        assert early_stop, "no old task stopped before a new one ran"
    finally:
        ecs.update_service(cluster="rexpress", service="backend", deploymentConfiguration=DEFAULTS)
