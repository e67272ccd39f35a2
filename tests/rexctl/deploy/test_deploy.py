"""Deploy and rollback cores against moto: the plan, the merge, no-change, secrets, dry-run,
the previous-revision tag and rollback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from rexctl.config import load
from rexctl.deploy import PREVIOUS_TAG, WaitOptions, deploy, plan_deploy, rollback
from rexctl.errors import ConfigError, Interrupted, UsageError
from tests.rexctl.deploy.world import (
    SECRET_NAME,
    TOKEN,
    World,
    finish_moto_rollout,
    make_world,
)


@pytest.fixture(autouse=True)
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    with mock_aws():
        yield


def clients(w: World) -> dict[str, Any]:
    return {"ecs": w.ecs, "elasticache": w.elasticache, "secretsmanager": w.secretsmanager}


def no_wait() -> WaitOptions:
    return WaitOptions(wait=False)


def fake_wait(timeout: float = 30.0) -> WaitOptions:
    """Waits on a fake clock; each 'sleep' finishes moto's rollout the way ECS would."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        finish_moto_rollout()

    return WaitOptions(timeout=timeout, poll=1.0, sleep=sleep, clock=lambda: now[0])


def test_plan_sets_redis_and_keeps_the_rest(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    plan = plan_deploy(w.cfg, **clients(w))
    assert plan.changed
    assert [(c.name, c.shown("old"), c.shown("new")) for c in plan.changes] == [
        ("REDIS_ENABLED", "false", "true"),
        ("REDIS_HOST", "(not set)", w.endpoint),
        ("REDIS_PORT", "(not set)", "6379"),
    ]
    backend, sidecar = plan.revision["containerDefinitions"]
    assert backend["environment"] == [
        {"name": "NODE_ENV", "value": "production"},
        {"name": "REDIS_ENABLED", "value": "true"},
        {"name": "REDIS_HOST", "value": w.endpoint},
        {"name": "REDIS_PORT", "value": "6379"},
    ]
    assert backend["logConfiguration"]["options"]["awslogs-group"] == "/ecs/backend"
    assert sidecar["environment"] == [{"name": "SIDECAR", "value": "1"}]
    assert plan.revision["executionRoleArn"].endswith("role/ecsTaskExecutionRole")
    assert {"key": "team", "value": "web"} in plan.revision["tags"]
    assert {"key": PREVIOUS_TAG, "value": w.family_arns[0]} in plan.revision["tags"]


def test_deploy_registers_updates_and_waits_then_a_second_deploy_changes_nothing(
    tmp_path: Path,
) -> None:
    w = make_world(tmp_path)
    outcome = deploy(w.cfg, **clients(w), wait=fake_wait())
    assert outcome.status == "deployed", outcome.rollout
    assert outcome.rollout is not None and outcome.rollout.ok
    assert outcome.to_arn.endswith("task-definition/backend:2")
    assert w.service()["taskDefinition"] == outcome.to_arn
    assert w.container_env(outcome.to_arn)["REDIS_HOST"] == w.endpoint
    tags = w.ecs.describe_task_definition(taskDefinition=outcome.to_arn, include=["TAGS"])["tags"]
    assert {"key": PREVIOUS_TAG, "value": outcome.from_arn} in tags

    again = deploy(w.cfg, **clients(w), wait=fake_wait())
    assert again.status == "unchanged" and again.to_arn == ""
    assert len(w.family_arns) == 2, "a no-change deploy registered a revision"


def test_deploy_without_rollout_times_out_as_a_failure(tmp_path: Path) -> None:
    """moto never moves the PRIMARY deployment: without the fix-up the deploy is not 'done'."""
    w = make_world(tmp_path)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    outcome = deploy(
        w.cfg, **clients(w), wait=WaitOptions(timeout=3, poll=1, sleep=sleep, clock=lambda: now[0])
    )
    assert outcome.status == "failed" and not outcome.ok
    assert outcome.rollout is not None
    assert outcome.rollout.reason.startswith(
        "Timed out after 3s: waiting for ECS to make backend:2"
    )


def test_tls_and_auth_token_go_through_secrets_only(tmp_path: Path) -> None:
    db_url = "postgres://app:hunter2-db-pass@db:5432/app"
    old_env = [
        {"name": "REDIS_AUTH_TOKEN", "value": TOKEN},
        {"name": "KEEP", "value": "1"},
        {"name": "DATABASE_URL", "value": db_url},
    ]
    w = make_world(tmp_path, tls=True, auth=True, backend_env=old_env)
    secret_arn = w.secretsmanager.describe_secret(SecretId=SECRET_NAME)["ARN"]
    plan = plan_deploy(w.cfg, **clients(w))
    changes = {c.name: (c.shown("old"), c.shown("new")) for c in plan.changes}
    assert changes["REDIS_TLS"] == ("(not set)", "true")
    assert changes["REDIS_AUTH_TOKEN"] == ("(redacted)", f"secret {secret_arn}")
    assert any("moves it to `secrets`" in warning for warning in plan.warnings)
    shown = json.dumps(plan.to_dict(), default=str)
    assert TOKEN not in shown and "hunter2" not in shown
    assert "postgres://app:(redacted)@db:5432/app" in shown

    outcome = deploy(w.cfg, **clients(w), wait=no_wait())
    assert outcome.status == "started"
    assert TOKEN not in json.dumps(outcome.to_dict(), default=str)
    td = w.ecs.describe_task_definition(taskDefinition=outcome.to_arn)["taskDefinition"]
    backend = td["containerDefinitions"][0]
    assert "REDIS_AUTH_TOKEN" not in {e["name"] for e in backend["environment"]}
    assert TOKEN not in json.dumps(td)
    assert backend["secrets"] == [{"name": "REDIS_AUTH_TOKEN", "valueFrom": secret_arn}]
    assert w.container_env(outcome.to_arn)["REDIS_TLS"] == "true"
    assert w.container_env(outcome.to_arn)["DATABASE_URL"] == db_url  # only the output hides it


def test_auth_without_its_secret_is_refused(tmp_path: Path) -> None:
    w = make_world(tmp_path, tls=True, auth=True, secret=False)
    with pytest.raises(UsageError, match=r"secret 'rexctl/rexpress-redis/auth-token'.*does not ex"):
        plan_deploy(w.cfg, **clients(w))
    assert len(w.family_arns) == 1


def test_no_cache_names_provision(tmp_path: Path) -> None:
    w = make_world(tmp_path, cache=False)
    with pytest.raises(UsageError) as info:
        deploy(w.cfg, **clients(w), wait=no_wait())
    assert info.value.message == (
        "The cache 'rexpress-redis' does not exist, so there is no endpoint to deploy."
    )
    assert info.value.hint is not None and "`rexctl provision`" in info.value.hint


def record_calls(*aws_clients: Any) -> list[str]:
    """The names of the AWS operations the clients are about to call, in order (botocore's
    before-call event, which fires for every request)."""
    calls: list[str] = []
    for client in aws_clients:
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    return calls


def only_reads(calls: list[str]) -> bool:
    return all(name.startswith(("Describe", "List", "Get")) for name in calls)


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    w = make_world(tmp_path, tls=True, auth=True)
    before = (w.family_arns, w.service())
    calls = record_calls(w.ecs, w.elasticache, w.secretsmanager)
    outcome = deploy(w.cfg, **clients(w), dry_run=True, wait=fake_wait())
    assert outcome.status == "dry-run" and outcome.plan is not None
    assert outcome.plan.to_dict()["revision"]["family"] == "backend"
    assert calls and only_reads(calls), calls
    assert (w.family_arns, w.service()) == before


def test_rollback_returns_to_the_recorded_revision(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    first = deploy(w.cfg, **clients(w), wait=fake_wait())
    assert first.status == "deployed"
    back = rollback(w.cfg, ecs=w.ecs, wait=fake_wait())
    assert (back.status, back.from_arn, back.to_arn) == ("deployed", first.to_arn, first.from_arn)
    assert w.service()["taskDefinition"] == first.from_arn
    assert back.rollout is not None and back.rollout.ok
    # backend:1 was not registered by rexctl deploy: nothing is recorded further back
    with pytest.raises(UsageError, match="backend:1, which has no `rexctl:previous-revision` tag"):
        rollback(w.cfg, ecs=w.ecs, wait=fake_wait())


def test_rollback_to_a_named_revision_and_to_where_it_already_is(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    deploy(w.cfg, **clients(w), wait=fake_wait())
    back = rollback(w.cfg, ecs=w.ecs, to="backend:1", wait=fake_wait())
    assert back.status == "deployed" and back.to_arn.endswith("backend:1")
    same = rollback(w.cfg, ecs=w.ecs, to="backend:1", wait=fake_wait())
    assert same.status == "unchanged"


def test_rollback_dry_run_and_inactive_target(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    first = deploy(w.cfg, **clients(w), wait=fake_wait())
    calls = record_calls(w.ecs)
    dry = rollback(w.cfg, ecs=w.ecs, dry_run=True)
    assert dry.status == "dry-run" and w.service()["taskDefinition"] == first.to_arn
    assert calls and only_reads(calls), calls
    w.ecs.deregister_task_definition(taskDefinition=first.from_arn)
    with pytest.raises(UsageError, match="backend:1 is deregistered"):
        rollback(w.cfg, ecs=w.ecs)


def test_missing_service_settings(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    path = tmp_path / "other.toml"
    path.write_text('[cache]\nid = "rexpress-redis"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"`ecs\.cluster` is not set"):
        plan_deploy(load(path, environ={}), **clients(w))


def test_unchanged_but_unfinished_rollout_is_waited_for_not_reregistered(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    started = deploy(w.cfg, **clients(w), wait=no_wait())
    assert started.status == "started"
    pending = deploy(w.cfg, **clients(w), wait=no_wait())
    assert pending.status == "unchanged" and pending.plan is not None
    assert pending.plan.rollout_pending == (
        "the PRIMARY deployment does not run backend:2 yet (it runs backend:1)"
    )
    waited = deploy(w.cfg, **clients(w), wait=fake_wait())
    assert waited.status == "unchanged" and waited.rollout is not None and waited.rollout.ok
    assert len(w.family_arns) == 2


def test_rollback_to_the_revision_still_rolling_out_waits_for_it_without_an_update(
    tmp_path: Path,
) -> None:
    w = make_world(tmp_path)
    started = deploy(w.cfg, **clients(w), wait=no_wait())  # moto's deployment stays on :1
    assert started.status == "started"
    assert rollback(w.cfg, ecs=w.ecs, to="backend:2", wait=no_wait()).status == "started"
    calls = record_calls(w.ecs)
    back = rollback(w.cfg, ecs=w.ecs, to="backend:2", wait=fake_wait())
    assert back.status == "unchanged" and back.rollout is not None and back.rollout.ok
    assert "UpdateService" not in calls and "DescribeServices" in calls
    assert rollback(w.cfg, ecs=w.ecs, to="backend:2", wait=no_wait()).status == "unchanged"


def interrupted_wait() -> WaitOptions:
    def sleep(_seconds: float) -> None:
        raise KeyboardInterrupt

    return WaitOptions(timeout=30, poll=1, sleep=sleep, clock=lambda: 0.0)


def test_ctrl_c_while_waiting_says_the_rollout_goes_on(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    with pytest.raises(Interrupted) as info:
        deploy(w.cfg, **clients(w), wait=interrupted_wait())
    assert info.value.message == "Stopped waiting; ECS keeps rolling service svc to backend:2."
    assert info.value.hint is not None
    assert info.value.hint.startswith("`rexctl deploy` waits for it again (and changes nothing)")
    assert w.service()["taskDefinition"].endswith("backend:2")
    finish_moto_rollout()
    with pytest.raises(Interrupted) as info:
        rollback(w.cfg, ecs=w.ecs, wait=interrupted_wait())
    assert info.value.hint is not None
    assert info.value.hint.startswith("`rexctl rollback --to backend:1` waits for it again")


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_other_deployment_controllers_are_refused_before_anything_is_registered(
    tmp_path: Path, controller: str
) -> None:
    """AWS (UpdateService): with the CODE_DEPLOY or EXTERNAL deployment controller the task
    definition cannot be changed through UpdateService (a CodeDeploy deployment or a new task
    set does it). moto accepts it; rexctl refuses before registering a revision."""
    from tests.rexctl.deploy.world import ecs_service_object

    w = make_world(tmp_path)
    ecs_service_object().deployment_controller = {"type": controller}
    with pytest.raises(UsageError) as info:
        deploy(w.cfg, **clients(w), wait=no_wait())
    assert f"uses the {controller} deployment controller" in info.value.message
    assert "Nothing was registered or changed." in info.value.message
    assert w.family_arns == w.family_arns[:1]  # still only the first revision


def test_secrets_without_an_execution_role_are_refused_at_plan_time(tmp_path: Path) -> None:
    """AWS (RegisterTaskDefinition, ECS developer guide "task execution IAM role"): a container
    with `secrets` needs an execution role; moto registers it anyway and rexctl used to warn."""
    w = make_world(tmp_path, tls=True, auth=True)
    current = w.ecs.describe_task_definition(taskDefinition="backend:1")["taskDefinition"]
    keep = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities")
    w.ecs.register_task_definition(**{k: current[k] for k in keep if k in current})
    w.ecs.update_service(cluster="c", service="svc", taskDefinition="backend:2")
    finish_moto_rollout()
    with pytest.raises(UsageError) as info:
        plan_deploy(w.cfg, **clients(w))
    assert info.value.message.startswith("ECS would refuse the new revision of backend:")
    assert "executionRoleArn is required when a container has secrets" in info.value.message
    assert "Give task definition backend an execution role" in (info.value.hint or "")
    assert len(w.family_arns) == 2  # nothing registered


def test_rollout_warnings_name_a_missing_circuit_breaker_and_a_low_minimum() -> None:
    from rexctl.aws.ecs import ServiceView
    from rexctl.deploy.revision import rollout_warnings

    base: dict[str, Any] = {
        "cluster": "c", "name": "svc", "arn": "", "status": "ACTIVE", "task_definition": "",
        "desired": 2, "running": 2, "pending": 0, "launch_type": "", "awsvpc": True,
    }  # fmt: skip
    safe = ServiceView(**base, circuit_breaker=True, minimum_healthy_percent=100)
    assert rollout_warnings(safe) == []
    risky = ServiceView(**base, circuit_breaker=False, minimum_healthy_percent=50)
    first, second = rollout_warnings(risky)
    assert first.startswith("Service svc has no deployment circuit breaker")
    assert second.startswith("Service svc has minimumHealthyPercent 50")


def test_rollback_on_failure_puts_the_service_back(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    opts = WaitOptions(timeout=3, poll=1, sleep=sleep, clock=lambda: now[0],
                       rollback_on_failure=True)  # fmt: skip
    outcome = deploy(w.cfg, **clients(w), wait=opts)
    assert outcome.status == "failed"
    assert outcome.rolled_back is not None and outcome.rolled_back.to_arn == w.family_arns[0]
    assert w.service()["taskDefinition"] == w.family_arns[0]
    assert outcome.to_dict()["rolled_back"]["action"] == "rollback"
