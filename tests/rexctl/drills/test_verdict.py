"""The verdict's pure functions: each check, the outcome, the timeline."""

from __future__ import annotations

from rexctl import advice
from rexctl.drills.observe import Answer, LiveState, LogLine, Task, TaskSample
from rexctl.drills.verdict import Observations, judge, timeline

TD_OLD = "arn:aws:ecs:us-east-1:1:task-definition/backend:1"
TD_NEW = "arn:aws:ecs:us-east-1:1:task-definition/backend:2"


def task(arn: str, td: str = TD_OLD, **kw: str) -> Task:
    return Task(arn=arn, task_definition=td, last_status=kw.pop("last_status", "RUNNING"),
                started_at="", **kw)  # fmt: skip


def sample(t: float, tasks: list[Task], stopped: list[Task] | None = None, running: int = 2,
           phase: str = "during") -> TaskSample:  # fmt: skip
    return TaskSample(t, running, 2, tasks, stopped or [], [], phase)


def answers(sources: list[str], status: int = 200, phase: str = "during") -> list[Answer]:
    return [
        Answer(i * 1.0, phase, status, s, 10.0 + i, None if status < 300 else f"HTTP {status}")
        for i, s in enumerate(sources)
    ]


def healthy(**kw: object) -> Observations:
    base = [task("t/a"), task("t/b")]
    obs = Observations(
        answers=answers(["cache"], phase="before")
        + answers(["db"] * 4)
        + answers(["cache"], phase="after"),
        samples=[sample(0, base, phase="before"), sample(1, base), sample(2, base)],
        baseline=base,
        logs=[LogLine("ecs/backend/a", 1_700_000_000_000, "⚠️ Redis error (ignored): timeout")],
        cache_again_after=1.5,
        settle_timeout=120,
    )
    for k, v in kw.items():
        setattr(obs, k, v)
    return obs


def test_a_healthy_drill_passes() -> None:
    v = judge("break-nacl", healthy())
    assert (v.outcome, v.exit_code) == ("passed", 0)
    assert (
        v.checks[0].evidence[1].startswith("first at ")
        and "ecs/backend/a" in v.checks[0].evidence[1]
    )
    assert v.checks[1].evidence[:2] == ["5 of 5 answers were 2xx", "sources: cache 1, db 4"]
    assert v.checks[1].evidence[2].startswith("latency p50 ")


def test_a_new_task_or_a_short_count_fails_tasks_did_not_restart() -> None:
    base = [task("t/a"), task("t/b")]
    obs = healthy(samples=[sample(1, base), sample(2, [task("t/a"), task("t/c")], running=1)])
    v = judge("break-nacl", obs)
    check = v.checks[2]
    assert (check.name, check.status) == ("tasks did not restart", "failed")
    assert "b gone from the running tasks at t=2.0s" in check.evidence
    assert "new task c" in check.evidence
    assert "t=2.0s running 1 of 2" in check.evidence
    assert v.exit_code == 1 and v.reason == "failed: tasks did not restart"


def test_no_logs_and_cache_answers_is_not_observed_for_network_faults() -> None:
    obs = healthy(logs=[], answers=answers(["cache"] * 3))
    v = judge("break-sg", obs, not_observed_reason="because")
    assert (v.outcome, v.exit_code) == ("not observed", 4)
    assert v.checks[0].status == "not observed" and v.checks[0].evidence[0] == "because"
    # The same observations under wrong-host are failures, not "not observed".
    wrong = judge("wrong-host", healthy(logs=[], answers=answers(["cache"] * 3)))
    assert wrong.outcome == "failed"
    assert [c.name for c in wrong.checks if c.status == "failed"] == [
        "logs show Redis error", "API answers from the database",
    ]  # fmt: skip


def test_no_logs_but_db_answers_is_observed_and_fails_the_log_check() -> None:
    v = judge("break-sg", healthy(logs=[]))
    assert v.outcome == "failed" and v.checks[0].status == "failed"


def test_missing_awslogs_config_is_named() -> None:
    v = judge("break-nacl", healthy(logs=[], logs_missing_reason="no awslogs here"))
    assert v.checks[0].evidence == ["no awslogs here"]


def test_wrong_host_watches_only_the_new_revision() -> None:
    new = [task("t/x", TD_NEW), task("t/y", TD_NEW)]
    stopped_old = [task("t/a", TD_OLD, last_status="STOPPED", stopped_reason="rolling update")]
    obs = healthy(
        baseline=new,
        watch_task_definition=TD_NEW,
        samples=[sample(0, new, stopped_old), sample(1, new, stopped_old)],
    )
    assert judge("wrong-host", obs).outcome == "passed"
    crashed = task(
        "t/y", TD_NEW, last_status="STOPPED", stopped_reason="Essential container exited"
    )
    obs.samples.append(sample(2, [task("t/x", TD_NEW)], [crashed], running=1))
    check = next(c for c in judge("wrong-host", obs).checks if c.name == "new tasks stayed up")
    assert check.status == "failed"
    assert "y stopped (Essential container exited) seen at t=2.0s" in check.evidence


def test_cache_not_used_again_fails_and_says_the_backend_may_not_reconnect() -> None:
    obs = healthy(cache_again_after=None, settle_timeout=60)
    obs.answers += answers(["db", "db"], phase="after")
    v = judge("break-nacl", obs)
    check = v.checks[-1]
    assert (check.name, check.status, check.state) == ("cache used again", "failed", "never")
    assert check.summary == (
        "no answer from the cache within 60 s of the restore (the backend does not reconnect "
        "to Redis?)"
    )
    assert check.evidence == [
        "no answer came from the cache within 60s after the restore",
        "3 answer(s) after the restore: cache 1, db 2",
    ]
    assert v.outcome == "failed"
    assert v.advice == [advice.RECONNECT]
    assert v.to_dict()["advice"] == [advice.RECONNECT]


def timeouts(n: int, phase: str = "during", seconds: float = 8.0) -> list[Answer]:
    return [
        Answer(20.0 + i, phase, None, None, seconds * 1000, f"timeout after {seconds}s")
        for i in range(n)
    ]


def test_answers_that_time_out_under_the_acl_say_so_and_ask_for_a_timeout() -> None:
    """The issue's example: "12 of 30 answers timed out after 8 s while the ACL denied the cache
    port". A backend that hangs logs nothing: the timeouts are what shows the fault, so the
    verdict is failed, not "not observed", and "log every error" is not the advice."""
    obs = healthy(logs=[], answers=answers(["cache"] * 18) + timeouts(12))
    v = judge("break-nacl", obs, not_observed_reason="nothing seen")
    api = v.checks[1]
    assert (api.status, api.state) == ("failed", "timeouts")
    assert api.summary == "12 of 30 answers timed out after 8 s while the ACL denied the cache port"
    assert api.text.splitlines()[0] == api.summary
    assert (v.outcome, v.exit_code) == ("failed", 1)
    assert v.checks[0].state == "none"
    assert v.advice == [advice.TIMEOUT]


def test_failures_of_several_kinds_are_listed_and_those_after_the_restore_apart() -> None:
    bad = [Answer(3.0, "during", 500, None, 5.0, "HTTP 500"),
           Answer(4.0, "during", None, None, 1.0, "connection refused"),
           Answer(9.0, "after", 503, None, 1.0, "HTTP 503")]  # fmt: skip
    obs = healthy(answers=answers(["db"]) + bad[:2] + answers(["cache"], phase="after") + bad[2:])
    api = judge("wrong-host", obs).checks[1]
    assert api.summary == (
        "2 of 3 answers failed (HTTP 500 ×1, connection refused ×1) while REDIS_HOST did not "
        "resolve; 1 of 2 answers after the restore got HTTP 503"
    )
    assert api.state == "errors"
    assert judge("wrong-host", obs).advice == [advice.CATCH]


def test_tasks_replaced_after_failed_health_checks_are_named() -> None:
    base = [task("t/a"), task("t/b")]
    why = {"stop_code": "ServiceSchedulerInitiated",
           "stopped_reason": "Task failed ELB health checks"}  # fmt: skip
    failed = [task(f"t/{x}", last_status="STOPPED", **why) for x in "ab"]
    obs = healthy(samples=[sample(1, base), sample(7, [task("t/c")], failed, running=1)])
    v = judge("break-nacl", obs)
    check = v.checks[2]
    assert (check.status, check.state) == ("failed", "health-checks")
    assert check.summary == (
        "2 tasks replaced after failing their load-balancer health checks (the health check "
        "depends on Redis?)"
    )
    assert v.advice == [advice.HEALTH]


def test_tasks_that_exited_are_named_with_their_exit_code() -> None:
    base = [task("t/a"), task("t/b")]
    exited = Task("t/a", TD_OLD, "STOPPED", "", "Essential container in task exited",
                  "EssentialContainerExited", 1)  # fmt: skip
    obs = healthy(samples=[sample(1, base), sample(2, [task("t/b"), task("t/c")], [exited])])
    check = judge("break-nacl", obs).checks[2]
    assert (check.state, check.summary) == (
        "exited",
        "1 task exited (exit code 1) and was replaced (the backend exits on a Redis error?)",
    )
    assert "a stopped (Essential container in task exited) seen at t=2.0s" in check.evidence


def test_a_passed_check_has_no_summary_and_the_json_carries_both() -> None:
    v = judge("break-nacl", healthy())
    assert all(c.summary == "" for c in v.checks)
    assert [c.state for c in v.checks] == ["seen", "ok", "ok", "ok"]
    assert set(v.checks[1].to_dict()) == {"name", "status", "state", "summary", "evidence"}
    assert v.advice == []


def test_the_logs_check_names_the_configured_phrase() -> None:
    obs = healthy(logs=[], error_phrase="cache unavailable")
    obs.answers = answers(["db"] * 3)
    check = judge("break-nacl", obs).checks[0]
    assert check.evidence == ['no log event contained "cache unavailable" during the drill']
    assert check.summary == 'the backend logged no "cache unavailable" while the fault was in place'


def test_timeline_buckets() -> None:
    rows = timeline(answers(["cache"] * 3 + ["db"] * 4 + ["cache"] * 4))
    assert [(r["start"], r["requests"], r["sources"]) for r in rows] == [
        (0.0, 5, {"cache": 3, "db": 2}),
        (5.0, 5, {"db": 2, "cache": 3}),
        (10.0, 1, {"cache": 1}),
    ]
    assert rows[0]["p50_ms"] == 12.0 and rows[0]["max_ms"] == 14.0


def test_live_state_lines() -> None:
    live = LiveState(drill="break-nacl", duration=60)
    live.update("phase", "observe")
    for a in answers(["db", "cache"]):
        live.update("answer", a)
    live.update("tasks", sample(1, [task("t/a")], running=2))
    live.update("logs", [LogLine("s", 0, "Redis error")])
    assert live.lines()[:4] == [
        "break-nacl · observe · 1s of 60s",
        "responses by status: 200: 2",
        "responses by source: cache: 1, db: 1",
        "tasks running/desired: 2/2 · Redis errors seen: 1",
    ]


def test_no_cache_answer_because_every_answer_failed_is_not_a_reconnect_problem() -> None:
    obs = healthy(cache_again_after=None, settle_timeout=8)
    obs.answers = [a for a in obs.answers if a.phase != "after"]
    obs.answers += [Answer(30.0 + i, "after", 503, None, 1.0, "HTTP 503") for i in range(4)]
    check = judge("break-nacl", obs).checks[-1]
    assert (check.state, check.summary) == (
        "no-answer",
        "no answer from the cache within 8 s of the restore: 4 of 4 answers got HTTP 503",
    )
    assert advice.RECONNECT not in judge("break-nacl", obs).advice
