"""Drill records as the drills make them, for the report's tests: the real drill course
(`runner.run`) with a fake fault and scripted sensors, on a fake clock, with no AWS.

A `Scenario` says how the backend answers under the fault, what it logs, what happens to the
service's tasks, and how the course ends (passed, failed, not observed, interrupted, an error
while injecting, a restore AWS keeps rejecting, a steady state that does not hold). `record`
runs it and returns `DrillRecord.to_dict()`: exactly what `--report` writes.

The changes are the journal forms of each drill kind (shaped like those of a sandbox run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rexctl.drills import runner
from rexctl.drills.changes import Change, change_from_dict
from rexctl.drills.faults import Plan
from rexctl.drills.journal import Journal
from rexctl.drills.observe import LogLine, Sensors, Task
from rexctl.errors import AwsError, CheckFailed

TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/rexpress-backend:{}"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/rexpress/{}"
WALL0 = 1_796_595_324.0  # the wall clock at t = 0 (2026-12-06T22:15:24Z)

CHANGES: dict[str, list[dict[str, Any]]] = {
    "break-sg": [
        {
            "type": "sg-rule",
            "rule": {
                "group_id": "sg-c73cc3324d659a1b9",
                "source_group_id": "sg-7b72db1803a03bc52",
                "protocol": "tcp",
                "from_port": 6379,
                "to_port": 6379,
                "description": "rexctl: from the ECS service tasks",
                "tags": [{"Key": "managed-by", "Value": "rexctl"}],
                "source_user_id": "",
                "rule_id": "sgr-d953ecf30eda16415",
            },
        }
    ],
    "break-nacl": [
        {
            "type": "nacl-clone",
            "vpc_id": "vpc-83d9f0658f9f7368a",
            "source_acl_id": "acl-62f0eca81cfec1ad7",
            "clone_acl_id": "acl-83841ba254745e7a4",
            "drill_tag": "drill",
            "copied": [
                {
                    "rule_number": 100,
                    "egress": False,
                    "protocol": "-1",
                    "action": "allow",
                    "cidr": "0.0.0.0/0",
                    "ipv6_cidr": "",
                    "port_range": None,
                    "icmp": None,
                },
            ],
            "denied": [
                {
                    "rule_number": 1,
                    "egress": False,
                    "protocol": "6",
                    "action": "deny",
                    "cidr": "10.0.101.0/24",
                    "ipv6_cidr": "",
                    "port_range": [6379, 6379],
                    "icmp": None,
                },
            ],
            "subnets": [
                {
                    "subnet_id": "subnet-5ffdfee1e4dcfbe1b",
                    "original_acl_id": "acl-62f0eca81cfec1ad7",
                    "association_id": "aclassoc-c78457311b0843f87",
                    "acl_id": "acl-62f0eca81cfec1ad7",
                },
            ],
            "untouched": ["subnet-0c94c49ba9639eb02"],
        }
    ],
    "wrong-host": [
        {
            "type": "service-revision",
            "cluster": "rexpress",
            "service": "backend",
            "container": "backend",
            "previous": TD.format(2),
            "bad": TD.format(4),
            "bad_host": "rexpress-redis.invalid",
            "drill_tag": "drill",
        }
    ],
    "nacl-entry": [
        {
            "type": "nacl-entry",
            "entry": {
                "acl_id": "acl-0a",
                "rule_number": 1,
                "egress": False,
                "cidr": "10.0.1.0/24",
                "port": 6379,
                "protocol": "6",
                "action": "deny",
            },
        }
    ],
}

Reply = tuple[int | None, str | None, float, str | None]  # status, source, ms, error


def db(i: int) -> Reply:
    return 200, "db", 300.0 + (i % 3), None


def cache(i: int) -> Reply:
    return 200, "cache", 2.0 + (i % 4) * 0.5, None


def timeouts_every(n: int) -> Callable[[int], Reply]:
    """A backend without a Redis timeout: every n-th answer under the fault times out."""

    def reply(i: int) -> Reply:
        if i % n == 1:
            return None, None, 5000.0, "timeout after 5 s"
        return db(i)

    return reply


@dataclass
class Scenario:
    drill: str = "break-nacl"
    during: Callable[[int], Reply] = db  # the i-th answer under the fault
    after: Callable[[int], Reply] = cache  # the i-th answer after the restore
    duration: float = 6.0
    interval: float = 0.5
    log_messages: list[str] = field(
        default_factory=lambda: ["⚠️ Redis error (ignored): GET: timed out after 200 ms"]
    )
    replace_task_at: float | None = None  # under the fault, from t: task b replaced by task c
    interrupt_at: float | None = None  # Ctrl-C at this t
    inject_error: str = ""  # injecting fails with this CheckFailed
    restore_fails: bool = False  # AWS rejects every restore attempt
    unhealthy_before: bool = False  # the steady state before does not hold
    changes: str = ""  # which CHANGES (default: the drill's own)
    url: str = "http://127.0.0.1:8080/api/products"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class _Fault:
    """Does nothing to anything; journals what a real fault of its kind would."""

    def __init__(self, name: str, sc: Scenario, clock: _Clock) -> None:
        self.name = name
        self.expect_new_tasks = name == "wrong-host"
        self.not_observed_reason = (
            "No Redis error was logged and answers kept coming from the cache: connections "
            "opened before the rule was revoked keep working."
            if name == "break-sg"
            else ""
        )
        self.sc = sc
        self.sleep: Callable[[float], None] = clock.sleep
        self.clock: Callable[[], float] = clock

    def plan(self, cfg: Any) -> Plan:
        changes = [change_from_dict(c) for c in CHANGES[self.sc.changes or self.name]]
        summary = [f"{self.name}: the change", "Undo: the way back."]
        return Plan(self.name, summary, changes, {"thing": "before"})

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        self.sleep(0.5 if self.name != "wrong-host" else 2.0)  # a rollout takes a while
        journal.note(f"{self.name}: changed the thing")
        save()
        if self.sc.inject_error:
            raise CheckFailed(self.sc.inject_error)

    def restore(self, changes: list[Change], save: Callable[[], None] = lambda: None) -> None:
        self.sleep(0.3 if self.name != "wrong-host" else 2.0)
        if self.sc.restore_fails:
            raise AwsError("AccessDenied: not authorized to perform ec2:DeleteNetworkAcl")

    def confirm_restored(self, changes: list[Change]) -> list[str]:
        return []

    def snapshot(self, changes: list[Change]) -> dict[str, Any]:
        return {"thing": "before"}

    def manual_undo(self, changes: list[Change], aws: Mapping[str, str]) -> list[str]:
        return [f"aws ec2 undo-{self.name} --region us-east-1"]


def _task(name: str, revision: int, reason: str = "") -> Task:
    return Task(
        arn=TASK.format(name),
        task_definition=TD.format(revision),
        last_status="STOPPED" if reason else "RUNNING",
        started_at="2026-12-06T22:15:04.004000+00:00",
        stopped_reason=reason,
        stop_code="ServiceSchedulerInitiated" if reason else "",
    )


def record(sc: Scenario, state_dir: Path) -> dict[str, Any]:
    """Run the drill course for `sc` and return its record, as `--report` writes it."""
    clock = _Clock()
    phase = {"now": "", "observe_from": 0.0}
    counts = {"during": 0, "after": 0}
    stop = runner.StopFlag()
    logs: list[LogLine] = []
    bad_revision = sc.drill == "wrong-host"

    def sink(kind: str, data: Any) -> None:
        if kind == "phase":
            phase["now"] = str(data)
            if data == "observe":
                phase["observe_from"] = clock.now
                for i, message in enumerate(sc.log_messages):
                    at = WALL0 + clock.now + 0.4 + i * 0.3
                    logs.append(LogLine("ecs/backend/ae85678d", int(at * 1000), message))
        if kind == "answer" and sc.interrupt_at is not None and data.t >= sc.interrupt_at:
            stop.request("SIGINT")

    def probe() -> Reply:
        if phase["now"] == "steady state before" and sc.unhealthy_before:
            reply: Reply = (503, None, 4.0, None)
        elif phase["now"] == "observe":
            reply = sc.during(counts["during"])
            counts["during"] += 1
        elif phase["now"] == "steady state after":
            reply = sc.after(counts["after"])
            counts["after"] += 1
        else:
            reply = cache(0)
        clock.now += reply[2] / 1000
        return reply

    def tasks() -> tuple[int, int, list[Task], list[Task], list[dict[str, str]]]:
        old = [_task("aaaa1111-old", 2), _task("bbbb2222-old", 2)]
        stopped = [_task("0000dead-before", 1, "Scaling activity initiated by (deployment 1)")]
        events = [{"id": "e0", "created_at": "2026-12-06T22:15:04+00:00",
                   "message": "(service backend) has reached a steady state."}]  # fmt: skip
        running = old
        if bad_revision and phase["now"] != "steady state before":
            running = [_task("cccc3333-new", 4), _task("dddd4444-new", 4)]
            stopped = stopped + [
                _task(t.arn.rsplit("/", 1)[-1], 2, "Scaling activity initiated by (deployment 2)")
                for t in old
            ]
            events = [
                {"id": "e1", "created_at": "2026-12-06T22:15:26+00:00",
                 "message": "(service backend) has started 2 tasks: (task cccc3333-new)."},
                *events,
            ]  # fmt: skip
        t = clock.now
        if sc.replace_task_at is not None and phase["now"] == "observe" and t >= sc.replace_task_at:
            gone = running[-1]
            reason = "Task failed ELB health checks in (target-group rexpress)"
            stopped = [*stopped, _task(gone.arn.rsplit("/", 1)[-1], 2, reason)]
            running = [*running[:-1], _task("eeee5555-replacement", 2)]
            events = [
                {"id": "e2", "created_at": "2026-12-06T22:15:29+00:00",
                 "message": "(service backend) has started 1 tasks: (task eeee5555)."},
                *events,
            ]  # fmt: skip
            return 1 if t < sc.replace_task_at + 1 else 2, 2, running, stopped, events
        return 2, 2, running, stopped, events

    def search(start_ms: int, end_ms: int | None) -> list[LogLine]:
        return [e for e in logs if e.timestamp <= int(clock.wall() * 1000)]

    fault = _Fault(sc.drill, sc, clock)
    course = runner.Course(
        sensors=Sensors(probe, tasks, search),
        state_dir=state_dir,
        aws_target={"region": "us-east-1", "profile": "", "endpoint_url": ""},
        url=sc.url,
        options=runner.Options(
            duration=sc.duration,
            interval=sc.interval,
            settle=5.0,
            log_every=1.0,
            restore_attempts=2,
            restore_backoff=0.5,
        ),
        clock=clock,
        wall=clock.wall,
        sleep=clock.sleep,
        sink=sink,
        stop=stop,
        drill_id=f"20261206T221524Z-{sc.drill}-9b7360",
    )
    return runner.run(fault, fault.plan(None), course).to_dict()  # type: ignore[arg-type]
