"""The drill course end to end in-process: moto for AWS, scripted or real HTTP for the API,
a fake clock so a "2 second" drill takes no real time."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rexctl.drills import journal as journal_mod
from rexctl.drills import runner
from rexctl.drills.faults import make_fault
from rexctl.drills.observe import Sensors, build_sensors
from rexctl.errors import ConfigError, ExitCode, UsageError
from tests.helpers import FakeTime
from tests.rexctl.drills import world as w
from tests.rexctl.drills.conftest import Aws
from tests.rexctl.drills.world import full_acl, full_sg, journal_for, normalized_service


class Api:
    """A scripted API: what it answers depends on the drill's phase (followed via the sink)."""

    def __init__(self, during: tuple[int, str] = (200, "db")) -> None:
        self.phase = ""
        self.during = during
        self.calls = 0

    def __call__(self) -> tuple[int | None, str | None, float, str | None]:
        self.calls += 1
        if self.phase == "observe":
            status, source = self.during
            return status, source, 40.0, None if status < 300 else f"HTTP {status}"
        return 200, "cache", 2.0, None

    def sink(self, kind: str, data: Any) -> None:
        if kind == "phase":
            self.phase = data


def put_redis_error(aws: Aws, message: str = "Redis error (ignored): timeout") -> None:
    logs = aws.clients.logs
    stream = "ecs/backend/task1"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=w.LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=w.LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": int(time.time() * 1000), "message": message}],
    )


def course(
    aws: Aws,
    clock: FakeTime,
    *,
    probe: Callable[[], Any] | None = None,
    sinks: tuple[Callable[[str, Any], None], ...] = (),
    url: str = "http://127.0.0.1:9/api/products",
    **opts: Any,
) -> runner.Course:
    sensors = build_sensors(
        aws.clients, cluster=w.CLUSTER, service=w.SERVICE, container=w.CONTAINER, url=url
    )
    if probe is not None:
        sensors = Sensors(probe, sensors.tasks, sensors.logs, sensors.logs_missing_reason)

    def sink(kind: str, data: Any) -> None:
        for s in sinks:
            s(kind, data)

    options = {"duration": 2.0, "interval": 0.2, "settle": 2.0, "log_every": 0.5, **opts}
    return runner.Course(
        sensors=sensors,
        state_dir=aws.state_dir,
        aws_target={"region": "us-east-1", "profile": "", "endpoint_url": ""},
        url=url,
        options=runner.Options(**options),
        clock=clock,
        wall=clock.wall,
        sleep=clock.sleep,
        sink=sink,
    )


def drill(aws: Aws, name: str, c: runner.Course, **fault_kwargs: Any) -> runner.DrillRecord:
    fault = make_fault(name, aws.clients, **fault_kwargs)
    return runner.run(fault, fault.plan(aws.config()), c)


def test_break_nacl_passes_when_the_backend_degrades(aws: Aws, clock: FakeTime) -> None:
    before = full_acl(aws)
    api = Api(during=(200, "db"))

    def logs_on_first_db(kind: str, data: Any) -> None:
        if kind == "answer" and data.phase == "during" and data.t < 0.5:
            put_redis_error(aws)

    record = drill(
        aws, "break-nacl", course(aws, clock, probe=api, sinks=(api.sink, logs_on_first_db))
    )
    assert record.exit_code == 0, record.to_dict()["verdict"]
    assert record.outcome == "passed"
    assert [c.status for c in record.verdict.checks] == ["passed"] * 4  # type: ignore[union-attr]
    assert [c.name for c in record.verdict.checks] == [  # type: ignore[union-attr]
        "logs show Redis error", "API still works", "tasks did not restart", "cache used again",
    ]  # fmt: skip
    assert full_acl(aws) == before
    saved = journal_mod.load(journal_mod.journal_path(aws.state_dir, record.id))
    assert saved.status == journal_mod.RESTORED and saved.restored_at
    # The observation ran for the duration at the interval, on the fake clock.
    during = [a for a in record.observations.answers if a.phase == "during"]
    assert len(during) == 10
    assert [round(a.t, 1) for a in during][:3] == [0.0, 0.2, 0.4]


def test_break_sg_with_cache_answers_is_not_observed(aws: Aws, clock: FakeTime) -> None:
    before = full_sg(aws)
    api = Api(during=(200, "cache"))
    record = drill(aws, "break-sg", course(aws, clock, probe=api, sinks=(api.sink,)))
    assert record.exit_code == int(ExitCode.FAULT_NOT_OBSERVED) == 4
    assert record.outcome == "not observed"
    verdict = record.verdict
    assert verdict is not None
    assert verdict.checks[0].status == "not observed"
    assert "connections opened before the rule was revoked keep working" in verdict.reason
    assert verdict.suggestion == (
        "Run `rexctl chaos break-nacl`: a network ACL cuts open connections too."
    )
    assert full_sg(aws) == before


def test_a_task_stopped_mid_drill_fails_tasks_did_not_restart(aws: Aws, clock: FakeTime) -> None:
    api = Api()
    stopped: list[str] = []

    def stop_one(kind: str, data: Any) -> None:
        if kind == "tasks" and api.phase == "observe" and not stopped:
            arn = w.running_tasks(aws.clients.ecs)[0]
            aws.clients.ecs.stop_task(
                cluster=w.CLUSTER, task=arn, reason="Essential container exited"
            )
            stopped.append(arn)
        if kind == "answer" and data.phase == "during":
            put_redis_error(aws)

    record = drill(aws, "break-nacl", course(aws, clock, probe=api, sinks=(api.sink, stop_one)))
    assert record.exit_code == 1
    check = next(c for c in record.verdict.checks if c.name == "tasks did not restart")  # type: ignore[union-attr]
    assert check.status == "failed"
    task_id = stopped[0].rsplit("/", 1)[-1]
    assert any(task_id in e and "Essential container exited" in e for e in check.evidence), check


def test_an_api_answering_500_fails_api_still_works(aws: Aws, clock: FakeTime) -> None:
    served = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served["n"] += 1
            status = 200 if served["n"] == 1 else 500
            body = json.dumps({"source": "cache"} if status == 200 else {"error": "boom"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/products"
        record = drill(aws, "break-nacl", course(aws, clock, url=url, settle=0.0))
    finally:
        server.shutdown()
        server.server_close()
    assert record.exit_code == 1
    check = next(c for c in record.verdict.checks if c.name == "API still works")  # type: ignore[union-attr]
    assert check.status == "failed"
    assert check.evidence[0] == "0 of 11 answers were 2xx"
    assert check.evidence[1].startswith("failed: HTTP 500 ×11")


def test_steady_state_before_must_hold(aws: Aws, clock: FakeTime) -> None:
    def down() -> tuple[int | None, str | None, float, str | None]:
        return None, None, 1.0, "connection refused"

    record = drill(aws, "break-sg", course(aws, clock, probe=down))
    assert record.exit_code == 1 and record.journal is None
    assert record.error == (
        "Steady state not met before the drill: http://127.0.0.1:9/api/products answered "
        "connection refused. Nothing was changed."
    )
    assert journal_mod.list_journals(aws.state_dir) == []


def snapshot_all(aws: Aws) -> tuple[Any, Any, Any]:
    return full_sg(aws), full_acl(aws), normalized_service(aws)


def saved_journal(aws: Aws, plan: Any, drill_id: str) -> journal_mod.Journal:
    """The journal a drill writes before its first change, on disk."""
    j = journal_for(plan)
    j.id = drill_id
    journal_mod.save(j, aws.state_dir)
    return j


# A phase is one fixed moment; "answer" and "signal" pick a random answer, so they run twice.
INTERRUPT_POINTS = [
    *[(phase, 0) for phase in ("steady state before", "inject", "observe", "restore")],
    *[(random_point, seed) for random_point in ("answer", "signal") for seed in (0, 1)],
]


@pytest.mark.parametrize(("where", "seed"), INTERRUPT_POINTS)
@pytest.mark.parametrize("name", ["break-sg", "break-nacl"])
def test_ctrl_c_anywhere_still_restores(
    aws: Aws, clock: FakeTime, name: str, where: str, seed: int
) -> None:
    """Ctrl-C (a KeyboardInterrupt, or a real SIGINT/SIGTERM) at a random moment: restored."""
    before = snapshot_all(aws)
    rng = random.Random(f"{name}{where}{seed}")
    at_answer = rng.randrange(1, 10)
    api = Api(during=(200, "db"))
    state = {"answers": 0, "fired": 0}

    def interrupt(kind: str, data: Any) -> None:
        if kind == "answer" and data.phase == "during":
            state["answers"] += 1
        fire = (kind == "phase" and data == where) or (
            where == "answer" and kind == "answer" and state["answers"] == at_answer
        )
        if where == "signal" and kind == "answer" and state["answers"] == at_answer != 0:
            # the four (name, seed) runs send SIGINT, SIGTERM, SIGHUP, SIGINT
            signals = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
            state["fired"] += 1  # the signal ends the observation at once (it raises)
            os.kill(os.getpid(), signals[(2 * seed + (name == "break-nacl")) % 3])
            return
        if fire and not state["fired"]:
            state["fired"] += 1
            raise KeyboardInterrupt

    record = drill(aws, name, course(aws, clock, probe=api, sinks=(api.sink, interrupt)))
    assert state["fired"] == 1
    assert snapshot_all(aws) == before
    if where == "restore":  # a Ctrl-C while restoring is ignored: the drill ends normally
        assert record.restore is not None and record.restore.ok
        assert record.outcome in ("passed", "failed"), record.error
        return
    assert record.exit_code == int(ExitCode.INTERRUPTED), record.error
    journals = journal_mod.list_journals(aws.state_dir)
    if where == "steady state before":
        assert journals == [] and record.error == "Interrupted before anything was changed."
    else:
        assert [j.status for j in journals] == [journal_mod.RESTORED]
        assert record.error == f"Interrupted; the {name} drill was undone (AWS confirmed)."


def test_a_real_sigint_during_restore_does_not_abort_it(aws: Aws, clock: FakeTime) -> None:
    before = full_acl(aws)
    fault = make_fault("break-nacl", aws.clients)
    plan = fault.plan(aws.config())
    real_restore = fault.restore
    signals_sent: list[int] = []

    def restore_under_fire(changes: list[Any], save: Callable[[], None]) -> None:
        for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):  # impatient user
            os.kill(os.getpid(), sig)
            signals_sent.append(sig)
        real_restore(changes, save)

    fault.restore = restore_under_fire  # type: ignore[method-assign]
    api = Api()
    sigint_before = signal.getsignal(signal.SIGINT)
    record = runner.run(fault, plan, course(aws, clock, probe=api, sinks=(api.sink,)))
    assert len(signals_sent) == 3
    assert record.restore is not None and record.restore.ok and record.restore.attempts == 1
    assert record.exit_code == 130
    assert full_acl(aws) == before
    assert signal.getsignal(signal.SIGINT) is sigint_before, "handlers are put back"


class FlakyEc2:
    """The real (moto) EC2 client, except that the first `fail` re-authorizations are refused."""

    def __init__(self, inner: Any, fail: int) -> None:
        self.inner, self.fail = inner, fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def authorize_security_group_ingress(self, **kwargs: Any) -> Any:
        if self.fail > 0:
            self.fail -= 1
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "InternalError", "Message": "try again"}},
                "AuthorizeSecurityGroupIngress",
            )
        return self.inner.authorize_security_group_ingress(**kwargs)


class Clients:
    def __init__(self, aws: Aws, ec2: Any) -> None:
        self.ec2, self.ecs = ec2, aws.clients.ecs
        self.elasticache, self.logs = aws.clients.elasticache, aws.clients.logs


def test_a_rejected_restore_is_retried_with_backoff(aws: Aws, clock: FakeTime) -> None:
    before = full_sg(aws)
    fault = make_fault("break-sg", Clients(aws, FlakyEc2(aws.clients.ec2, fail=2)))
    api = Api(during=(200, "db"))
    record = runner.run(
        fault, fault.plan(aws.config()), course(aws, clock, probe=api, sinks=(api.sink,))
    )
    assert record.restore is not None and record.restore.ok
    assert record.restore.attempts == 3
    assert record.restore.errors[0].startswith(
        "attempt 1: AWS AuthorizeSecurityGroupIngress failed"
    )
    assert [s for s in clock.sleeps if s >= 1] == [2.0, 4.0]
    assert full_sg(aws) == before


def test_a_restore_aws_keeps_rejecting_prints_the_manual_undo(aws: Aws, clock: FakeTime) -> None:
    """Stubber: exactly the expected revoke and re-authorize calls, AWS refusing every attempt."""
    import boto3
    from botocore.stub import ANY, Stubber

    fault = make_fault("break-sg", aws.clients)
    plan = fault.plan(aws.config())
    rule = plan.changes[0].to_dict()["rule"]
    permission = {
        "IpProtocol": "tcp",
        "FromPort": 6379,
        "ToPort": 6379,
        "UserIdGroupPairs": [{"GroupId": rule["source_group_id"], "Description": "Redis from ECS"}],
    }
    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    stub.add_response(  # the drill's mark on the group (its key names the drill id)
        "create_tags",
        {},
        {"Resources": [rule["group_id"]], "Tags": [{"Key": ANY, "Value": "break-sg"}]},
    )
    stub.add_response(  # no other drill's mark there
        "describe_security_groups",
        {"SecurityGroups": [{"GroupId": rule["group_id"], "Tags": []}]},
        {"GroupIds": [rule["group_id"]]},
    )
    stub.add_response(  # by rule id, as AWS answers a revoke that revoked it
        "revoke_security_group_ingress",
        {"Return": True, "RevokedSecurityGroupRules": [{"SecurityGroupRuleId": rule["rule_id"]}]},
        {"GroupId": rule["group_id"], "SecurityGroupRuleIds": [rule["rule_id"]]},
    )
    stub.add_response(  # described again: the rule is gone
        "describe_security_group_rules",
        {"SecurityGroupRules": []},
        {"Filters": [{"Name": "group-id", "Values": [rule["group_id"]]}]},
    )
    for _ in range(3):
        stub.add_client_error(
            "authorize_security_group_ingress",
            service_error_code="UnauthorizedOperation",
            service_message="You are not authorized to perform this operation.",
            expected_params={
                "GroupId": rule["group_id"],
                "IpPermissions": [permission],
                "TagSpecifications": [
                    {
                        "ResourceType": "security-group-rule",
                        "Tags": [{"Key": "owner", "Value": "rexctl"}],
                    }
                ],
            },
        )
    stubbed = make_fault("break-sg", Clients(aws, ec2))
    api = Api(during=(200, "db"))
    with stub:
        record = runner.run(
            stubbed, plan, course(aws, clock, probe=api, sinks=(api.sink,), restore_attempts=3)
        )
        stub.assert_no_pending_responses()
    assert record.exit_code == int(ExitCode.AWS_ERROR)
    assert record.outcome == "restore failed"
    assert record.restore is not None and not record.restore.ok
    assert record.journal is not None
    undo = fault.manual_undo(record.journal.changes, {"region": "us-east-1"})
    assert record.restore.manual_undo == undo
    assert [u.split()[:3] for u in undo] == [
        ["aws", "ec2", "authorize-security-group-ingress"],
        ["aws", "ec2", "delete-tags"],
    ]
    assert record.hint == "Undo it by hand:\n  " + "\n  ".join(undo)
    assert record.error.startswith("The break-sg drill could not be undone: AWS kept rejecting")
    saved = journal_mod.load(journal_mod.journal_path(aws.state_dir, record.id))
    assert saved.status == journal_mod.RESTORE_FAILED
    assert saved.manual_undo == record.restore.manual_undo
    assert "Run `rexctl chaos restore`" in journal_mod.unrestored_summary(aws.state_dir)


def test_wrong_host_watches_the_new_deployment(aws: Aws, clock: FakeTime) -> None:
    before = normalized_service(aws)
    api = Api(during=(200, "db"))

    def logs(kind: str, data: Any) -> None:
        if kind == "answer" and data.phase == "during":
            put_redis_error(
                aws, "Redis error (ignored): getaddrinfo ENOTFOUND rexpress-redis.invalid"
            )

    clock.real = 0.01  # the scheduler thread rolls the tasks out in real time
    with w.EcsScheduler(aws.clients.ecs, aws.world):
        record = drill(
            aws,
            "wrong-host",
            course(aws, clock, probe=api, sinks=(api.sink, logs)),
            rollout_poll=0.05,
            rollout_timeout=30,
        )
    assert record.exit_code == 0, (record.error, record.verdict)
    names = [c.name for c in record.verdict.checks]  # type: ignore[union-attr]
    assert names == [
        "logs show Redis error", "API still works", "new tasks stayed up",
        "API answers from the database", "cache used again",
    ]  # fmt: skip
    bad = record.journal.changes[0].bad  # type: ignore[union-attr]
    assert record.observations.watch_task_definition == bad
    assert {t.task_definition for t in record.observations.baseline} == {bad}
    assert normalized_service(aws) == before


def test_wrong_host_whose_rollout_never_completes_fails_and_rolls_back(
    aws: Aws, clock: FakeTime
) -> None:
    """No scheduler: moto never completes the rollout, as ECS would not for crashing tasks."""
    before = normalized_service(aws)
    api = Api(during=(200, "db"))
    record = drill(
        aws,
        "wrong-host",
        course(aws, clock, probe=api, sinks=(api.sink,)),
        rollout_poll=0.5,
        rollout_timeout=3,
    )
    assert (record.outcome, record.exit_code) == ("failed", 1)
    assert record.error.startswith(
        "The tasks with REDIS_HOST=rexpress-redis.invalid did not come up and stay up: "
        "Timed out after 3s"
    )
    assert record.restore is not None and record.restore.ok
    assert normalized_service(aws) == before
    bad = record.journal.changes[0].bad  # type: ignore[union-attr]
    td = aws.clients.ecs.describe_task_definition(taskDefinition=bad)["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert not [a for a in record.observations.answers if a.phase == "during"], "no observation"


def test_prepare_refuses_bad_input_before_anything(aws: Aws, tmp_path: Path) -> None:
    cfg = aws.config()

    def prepare(name: str = "break-sg", **kw: Any) -> Any:
        opts = kw.pop("options", runner.Options(duration=2, interval=0.2))
        return runner.prepare(
            name, aws.clients, kw.pop("cfg", cfg), url="", options=opts,
            yes=kw.pop("yes", True), interactive=False,
        )  # fmt: skip

    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: prepare("break-all"),
         "Unknown drill 'break-all'. Drills: break-sg, break-nacl, wrong-host."),
        (lambda: prepare(options=runner.Options(duration=3601)),
         "--duration must be more than 0 and at most 3600 seconds (one hour), got 3601."),
        (lambda: prepare(options=runner.Options(duration=2, interval=0)),
         "--interval must be between 0.05 and 60 seconds, got 0."),
        (lambda: prepare(yes=False),
         "`rexctl chaos break-sg` changes AWS resources and there is no terminal to confirm it: "
         "pass --yes."),
        (lambda: prepare(cfg=aws.config(REXCTL_ECS_CLUSTER="")),
         "`ecs.cluster` is not set (there is no " + str(aws.state_dir / "missing.toml") + ")."),
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(UsageError if "cluster" not in message else ConfigError) as err:
            call()
        assert err.value.message == message  # type: ignore[attr-defined]
    assert not aws.state_dir.exists(), "nothing was written"
    sg_before = full_sg(aws)
    _fault, plan, url = prepare()
    assert url == "http://127.0.0.1:9/api/products" and plan.changes
    assert full_sg(aws) == sg_before, "planning changes nothing"


def test_a_new_drill_refuses_while_a_journal_is_unrestored(aws: Aws) -> None:
    fault = make_fault("break-nacl", aws.clients)
    plan = fault.plan(aws.config())
    saved_journal(aws, plan, "20260101T000000Z-break-nacl-abcdef")
    with pytest.raises(UsageError) as err:
        runner.prepare(
            "break-sg", aws.clients, aws.config(), url="",
            options=runner.Options(duration=2, interval=0.2), yes=True, interactive=False,
        )  # fmt: skip
    assert err.value.message == (
        "A drill is not restored yet: 20260101T000000Z-break-nacl-abcdef (break-nacl, pending). "
        "A new drill will not start until it is."
    )
    assert err.value.hint is not None and "`rexctl chaos restore`" in err.value.hint


def test_restore_pending_undoes_a_journal_left_by_a_crash(aws: Aws) -> None:
    before = full_acl(aws)
    fault = make_fault("break-nacl", aws.clients)
    plan = fault.plan(aws.config())
    j = saved_journal(aws, plan, "crashed")
    fault.inject(j, lambda: journal_mod.save(j, aws.state_dir))  # ... and then the machine died
    assert full_acl(aws) != before
    pending = runner.pending_journals(aws.state_dir)
    outcomes = runner.restore_pending(
        pending, lambda jj: make_fault(jj.drill, aws.clients), aws.state_dir
    )
    assert [o.result.ok for o in outcomes] == [True]
    assert outcomes[0].result.drift == []
    assert full_acl(aws) == before
    assert journal_mod.unrestored(aws.state_dir) == []
    with pytest.raises(UsageError) as err:
        runner.pending_journals(aws.state_dir, "crashed")
    assert err.value.message == (
        f"Drill crashed is already restored in {journal_mod.drills_dir(aws.state_dir)}."
    )


@pytest.fixture(autouse=True)
def _signal_handlers_are_put_back() -> Iterator[None]:
    """Each test starts with the handlers of a foreground process (a background job would start
    with SIGINT ignored, and a real Ctrl-C would not interrupt) and must leave them as it found
    them."""
    usual = {
        signal.SIGINT: signal.default_int_handler,
        signal.SIGTERM: signal.SIG_DFL,
        signal.SIGHUP: signal.SIG_DFL,
    }
    outer = {s: signal.signal(s, h) for s, h in usual.items()}
    try:
        yield
        assert {s: signal.getsignal(s) for s in usual} == usual
    finally:
        for s, h in outer.items():
            signal.signal(s, h)


def test_an_ignored_signal_stays_ignored(aws: Aws, clock: FakeTime) -> None:
    """`nohup rexctl chaos ... &`: the terminal closing (SIGHUP) must not stop the drill."""
    api = Api()
    hups: list[int] = []

    def hang_up(kind: str, data: Any) -> None:
        if kind == "answer" and data.phase == "during" and not hups:
            os.kill(os.getpid(), signal.SIGHUP)
            hups.append(1)

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        record = drill(aws, "break-nacl", course(aws, clock, probe=api, sinks=(api.sink, hang_up)))
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert hups == [1]
    assert record.outcome != "interrupted", record.error
    assert len([a for a in record.observations.answers if a.phase == "during"]) == 10


def test_a_restore_from_the_journal_on_disk_reports_no_drift(aws: Aws) -> None:
    """The journal's "before" went through JSON; an unchanged world must not read as drift."""
    before = full_sg(aws)
    fault = make_fault("break-sg", aws.clients)
    plan = fault.plan(aws.config())
    j = saved_journal(aws, plan, "crashed-sg")
    fault.inject(j, lambda: journal_mod.save(j, aws.state_dir))
    outcomes = runner.restore_pending(
        runner.pending_journals(aws.state_dir),
        lambda jj: make_fault(jj.drill, aws.clients),
        aws.state_dir,
    )
    assert [(o.result.ok, o.result.drift) for o in outcomes] == [(True, [])]
    assert full_sg(aws) == before


class Crash(BaseException):
    """The machine running the drill dies (nothing after this point runs)."""


def test_wrong_host_crash_before_the_bad_arn_is_journaled_is_still_undone(aws: Aws) -> None:
    """The revision is registered, then the machine dies before the journal names its ARN:
    `chaos restore` finds the revision by the drill's tag and deregisters it."""
    before = normalized_service(aws)
    inner = aws.clients.ecs
    registered: list[str] = []

    class Ecs:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def register_task_definition(self, **kwargs: Any) -> Any:
            resp = inner.register_task_definition(**kwargs)
            registered.append(resp["taskDefinition"]["taskDefinitionArn"])
            return resp

    clients = Clients(aws, aws.clients.ec2)
    clients.ecs = Ecs()
    fault = make_fault("wrong-host", clients)
    plan = fault.plan(aws.config())
    j = saved_journal(aws, plan, "20260101T000000Z-wrong-host-c0ffee")

    def save() -> None:
        if registered:
            raise Crash()
        journal_mod.save(j, aws.state_dir)

    with pytest.raises(Crash):
        fault.inject(j, save)
    assert len(registered) == 1
    outcomes = runner.restore_pending(
        runner.pending_journals(aws.state_dir),
        lambda jj: make_fault(jj.drill, aws.clients, rollout_poll=0.01, rollout_timeout=5),
        aws.state_dir,
    )
    assert [o.result.ok for o in outcomes] == [True], outcomes[0].result.errors
    td = aws.clients.ecs.describe_task_definition(taskDefinition=registered[0])["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert normalized_service(aws) == before
    assert outcomes[0].journal.changes[0].bad == registered[0]  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["break-sg", "break-nacl"])
def test_the_journal_is_on_disk_before_the_first_change(
    aws: Aws, clock: FakeTime, name: str
) -> None:
    fault = make_fault(name, aws.clients)
    plan = fault.plan(aws.config())
    before = snapshot_all(aws)
    on_disk: list[journal_mod.Journal] = []
    real_inject = fault.inject

    def inject(journal: journal_mod.Journal, save: Callable[[], None]) -> None:
        assert snapshot_all(aws) == before, "nothing changed yet"
        on_disk.extend(journal_mod.list_journals(aws.state_dir))
        real_inject(journal, save)

    fault.inject = inject  # type: ignore[method-assign]
    api = Api()
    record = runner.run(fault, plan, course(aws, clock, probe=api, sinks=(api.sink,)))
    assert [(j.id, j.status, j.changes) for j in on_disk] == [
        (record.id, journal_mod.PENDING, plan.changes)
    ]
    assert on_disk[0].manual_undo == fault.manual_undo(plan.changes, {"region": "us-east-1"})


def test_ctrl_c_during_chaos_restore_is_reported_and_does_not_stop_it(aws: Aws) -> None:
    before = snapshot_all(aws)
    for name in ("break-nacl", "break-sg"):
        fault = make_fault(name, aws.clients)
        plan = fault.plan(aws.config())
        j = saved_journal(aws, plan, f"20260101T000000Z-{name}")
        fault.inject(j, lambda j=j: journal_mod.save(j, aws.state_dir))  # type: ignore[misc]
    heard: list[str] = []

    def impatient(j: journal_mod.Journal) -> Any:
        fault = make_fault(j.drill, aws.clients)
        if j.drill == "break-nacl":  # the first one: Ctrl-C while it is being undone
            real = fault.restore

            def restore(changes: list[Any], save: Callable[[], None]) -> None:
                os.kill(os.getpid(), signal.SIGINT)
                real(changes, save)

            fault.restore = restore  # type: ignore[method-assign]
        return fault

    outcomes = runner.restore_pending(
        runner.pending_journals(aws.state_dir), impatient, aws.state_dir, on_signal=heard.append
    )
    assert heard == ["SIGINT"]
    assert [(o.journal.drill, o.result.ok) for o in outcomes] == [
        ("break-nacl", True), ("break-sg", True),
    ]  # fmt: skip
    assert snapshot_all(aws) == before


def test_a_drill_started_meanwhile_elsewhere_stops_this_one_before_any_change(
    aws: Aws, clock: FakeTime
) -> None:
    """Two terminals: both planned (and confirmed) before either wrote its journal. The one that
    comes second refuses right before its own journal, with nothing changed."""
    fault = make_fault("break-nacl", aws.clients)
    plan = fault.plan(aws.config())
    before = snapshot_all(aws)
    other = journal_mod.Journal(
        id="20260101T000000Z-break-sg-0b0b0b", drill="break-sg", created_at="x",
        aws={"region": "us-east-1"}, changes=[], summary=[], before={}, manual_undo=[],
    )  # fmt: skip
    journal_mod.save(other, aws.state_dir)  # the other drill got there first
    api = Api()
    record = runner.run(fault, plan, course(aws, clock, probe=api, sinks=(api.sink,)))
    assert (record.outcome, record.exit_code) == ("error", 2)
    assert record.error.startswith("A drill is not restored yet: 20260101T000000Z-break-sg-0b0b0b")
    assert record.journal is None
    assert [j.id for j in journal_mod.list_journals(aws.state_dir)] == [other.id]
    assert snapshot_all(aws) == before


def test_an_unexpected_error_mid_drill_still_restores(aws: Aws, clock: FakeTime) -> None:
    before = snapshot_all(aws)
    api = Api()

    def probe() -> tuple[int | None, str | None, float, str | None]:
        if api.phase == "observe":
            raise RuntimeError("a bug in a sensor")
        return api()

    with pytest.raises(RuntimeError, match="a bug in a sensor"):
        drill(aws, "break-nacl", course(aws, clock, probe=probe, sinks=(api.sink,)))
    assert snapshot_all(aws) == before
    assert [j.status for j in journal_mod.list_journals(aws.state_dir)] == [journal_mod.RESTORED]


def test_a_change_this_rexctl_cannot_read_keeps_the_journal_unrestored(aws: Aws) -> None:
    """A journal with a change of a kind this rexctl does not know (a newer rexctl wrote it):
    what it can read is undone, the journal is never marked restored, and it says why."""
    from rexctl.drills.changes import change_from_dict

    before = full_sg(aws)
    fault = make_fault("break-sg", aws.clients)
    plan = fault.plan(aws.config())
    j = saved_journal(aws, plan, "20260101T000000Z-break-sg-f00f00")
    fault.inject(j, lambda: journal_mod.save(j, aws.state_dir))
    j.changes.append(change_from_dict({"type": "from-the-future", "acl": "acl-1"}))
    journal_mod.save(j, aws.state_dir)
    (outcome,) = runner.restore_pending(
        runner.pending_journals(aws.state_dir),
        lambda jj: make_fault(jj.drill, aws.clients),
        aws.state_dir,
        sleep=lambda s: None,
    )
    assert not outcome.result.ok and outcome.result.attempts == 1
    assert outcome.result.errors == [
        "attempt 1: restored what could be read; cannot undo a change of type 'from-the-future' "
        "that this rexctl cannot read (unknown type)"
    ]
    assert full_sg(aws) == before, "the rule it could read is back"
    assert [x.status for x in journal_mod.list_journals(aws.state_dir)] == [
        journal_mod.RESTORE_FAILED
    ]


def test_a_log_search_that_did_not_finish_is_never_read_as_no_redis_error(
    aws: Aws, clock: FakeTime
) -> None:
    """The log search stopped at its page limit (rexctl.aws.logs.MAX_PAGES) every time: the
    verdict says the search is incomplete; it does not claim no Redis error was logged."""
    from rexctl.aws.logs import LogSearchIncomplete

    def incomplete(start_ms: int, end_ms: int | None) -> list[Any]:
        raise LogSearchIncomplete("The search of log group /ecs/backend ... after 200 pages")

    api = Api(during=(200, "db"))
    c = course(aws, clock, probe=api, sinks=(api.sink,))
    c.sensors = Sensors(c.sensors.probe, c.sensors.tasks, incomplete)
    record = drill(aws, "break-nacl", c)
    check = record.verdict.checks[0]  # type: ignore[union-attr]
    assert (check.name, check.status) == ("logs show Redis error", "failed")
    assert check.evidence == [
        "the log search did not finish, so whether a Redis error was logged is not known: "
        "The search of log group /ecs/backend ... after 200 pages"
    ]
    assert not any("no log event contained" in e for e in check.evidence)


def test_the_logs_are_searched_in_the_region_awslogs_names(aws: Aws) -> None:
    """`awslogs-region` names where the container's log group is (it need not be the service's
    region); the drill's log search goes there, through the client factory, as verify does."""
    from rexctl.aws.ecs import build_revision, describe_task_definition, register_revision
    from rexctl.aws.session import AwsClients

    ecs = aws.clients.ecs
    base = describe_task_definition(ecs, aws.world.td_arn)
    kwargs = build_revision(base, container=w.CONTAINER, set_env={})
    kwargs["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-region"] = "eu-west-1"
    td = register_revision(ecs, kwargs)
    ecs.update_service(cluster=w.CLUSTER, service=w.SERVICE, taskDefinition=td.arn)
    eu = AwsClients(region="eu-west-1")
    eu.logs.create_log_group(logGroupName=w.LOG_GROUP)
    eu.logs.create_log_stream(logGroupName=w.LOG_GROUP, logStreamName="ecs/backend/t1")
    now = int(time.time() * 1000)
    eu.logs.put_log_events(
        logGroupName=w.LOG_GROUP, logStreamName="ecs/backend/t1",
        logEvents=[{"timestamp": now, "message": "Redis error (ignored): timeout"}],
    )  # fmt: skip
    asked: list[str] = []

    def logs_client(region: str) -> Any:
        asked.append(region)
        return AwsClients(region=region).logs

    sensors = build_sensors(
        aws.clients, cluster=w.CLUSTER, service=w.SERVICE, container=w.CONTAINER,
        url="http://127.0.0.1:9/api/products", logs_client=logs_client,
    )  # fmt: skip
    assert sensors.logs is not None
    found = sensors.logs(now - 1000, None)
    assert [e.message for e in found] == ["Redis error (ignored): timeout"]
    assert asked == ["eu-west-1"]
