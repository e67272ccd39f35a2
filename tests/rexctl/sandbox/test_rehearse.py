"""`rexctl rehearse`: how steps are judged, run and reported (no sandbox is started here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rexctl import advice
from rexctl.cli import app
from rexctl.config import AppConfig
from rexctl.sandbox.backend import Backend
from rexctl.sandbox.control import INSTALL_HINT, UpResult
from rexctl.sandbox.rehearse import (
    Outcome,
    check_drills,
    judge_break_nacl,
    judge_break_sg,
    rehearse,
    step_advice,
)
from rexctl.sandbox.state import SandboxState, sandbox_dir

runner = CliRunner()


def drill(code: int, **checks: str) -> Outcome:
    names = {"logs": "logs show Redis error", "api": "API still works",
             "tasks": "tasks did not restart"}  # fmt: skip
    data = {"verdict": {"checks": [{"name": names[k], "status": v} for k, v in checks.items()]}}
    return Outcome(code, data, "")


def test_break_sg_passes_only_as_fault_not_observed_with_api_up_and_no_restart() -> None:
    ok, why = judge_break_sg(drill(4, logs="not observed", api="passed", tasks="passed"))
    assert ok, why
    assert "connection tracking" in why
    ok, why = judge_break_sg(drill(4, logs="not observed", api="failed", tasks="passed"))
    assert (ok, why) == (
        False,
        "fault not observed, but API still works: failed, tasks did not restart: passed",
    )
    ok, why = judge_break_sg(drill(0, logs="passed", api="passed", tasks="passed"))
    assert not ok and "must not cut" in why


def test_break_nacl_must_show_the_redis_errors() -> None:
    ok, why = judge_break_nacl(drill(0, logs="passed", api="passed", tasks="passed"))
    assert ok, why
    assert why.startswith("logs show Redis error: passed")
    ok, why = judge_break_nacl(drill(0, api="passed", tasks="passed"))
    assert (ok, why) == (False, "exit 0 but the logs did not show the Redis errors")
    ok, why = judge_break_nacl(Outcome(4, None, "Error: the fault was not observed\n"))
    assert (ok, why) == (False, "exit 4: the fault was not observed")


def state(tmp_path: Path) -> SandboxState:
    return SandboxState(
        dir=str(tmp_path), pid=1, endpoint_url="http://127.0.0.1:1", region="us-east-1",
        app_url="http://127.0.0.1:2/api/products", lb_port=2, redis_port=3, redis_pid=4,
        log_path="", cluster="rexpress", service="backend", started_at=0.0,
    )  # fmt: skip


def test_a_failed_essential_step_blocks_the_rest_and_the_sandbox_is_stopped(
    tmp_path: Path,
) -> None:
    ran: list[list[str]] = []
    stopped: list[Path] = []

    def fake_runner(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Outcome:
        ran.append(args)
        if "provision" in args:
            return Outcome(3, None, "Error: moto said no\n")
        return Outcome(0, {"path": "x", "settings": {}}, "")

    result = rehearse(
        tmp_path, runner=fake_runner,
        start=lambda cwd: UpResult(state(tmp_path), started=True), stop=stopped.append,
    )  # fmt: skip
    assert [a[a.index("--config") + 2] for a in ran] == ["init", "provision"]
    assert all(a[0] == "--sandbox" for a in ran)
    statuses = [(s.name, s.status, s.detail) for s in result.steps]
    assert statuses[2] == ("provision", "failed", "exit 3: moto said no")
    assert [s[1:] for s in statuses[3:]] == [("failed", "not run: provision failed")] * 5
    assert not result.passed
    assert stopped == [tmp_path]


def test_rehearse_json_is_the_steps_and_exit_1_when_a_step_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without redis-server the sandbox cannot start: one failed step, exit 1, and stdout is
    exactly `{"steps": [{"step", "name", "status", "detail"}]}`."""
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = runner.invoke(app, ["rehearse", "--json"])
    assert result.exit_code == 1, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert data == {
        "steps": [
            {
                "step": "setup",
                "name": "sandbox up",
                "status": "failed",
                "detail": "redis-server is not installed: the sandbox runs a real Redis for the "
                f"cache node. {INSTALL_HINT}",
            }
        ]
    }
    assert "sudo apt-get install redis-server" in INSTALL_HINT


def test_a_drill_journal_of_a_dead_sandbox_is_void_and_the_rehearsal_goes_on(
    tmp_path: Path,
) -> None:
    """Issue 11: the sandbox daemon died mid-drill (SIGKILL, a reboot): every later rehearsal
    failed its three drills ("A drill is not restored yet"), and the undo it printed failed too.
    The journal names its sandbox; that sandbox is gone, so the journal is void. A journal of a
    drill against AWS (it names no sandbox) is never voided."""
    from rexctl.drills import journal as journal_mod
    from rexctl.sandbox.rehearse import drill_state_dir
    from rexctl.sandbox.state import sandbox_dir

    journals = drill_state_dir(sandbox_dir(tmp_path))
    dead = {"dir": str(sandbox_dir(tmp_path)), "instance": "a-sandbox-that-died"}
    for drill_id, sandbox in (("20260101T000000Z-break-nacl-dead00", dead),
                              ("20260101T000001Z-break-sg-a0a0a0", {})):  # fmt: skip
        journal_mod.save(
            journal_mod.Journal(
                id=drill_id, drill=drill_id.split("-", 1)[1].rsplit("-", 1)[0], created_at="x",
                aws={"region": "us-east-1"}, changes=[], summary=[], before={}, manual_undo=[],
                sandbox=sandbox,
            ),
            journals,
        )  # fmt: skip

    def fake_runner(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Outcome:
        return Outcome(3, None, "Error: stop here\n")

    result = rehearse(
        tmp_path, runner=fake_runner,
        start=lambda cwd: UpResult(state(tmp_path), started=True), stop=lambda cwd: None,
    )  # fmt: skip
    assert result.steps[0].detail.startswith(
        "started; 1 drill journal(s) of a sandbox that is gone marked void; app "
    )
    by_id = {j.id: j for j in journal_mod.list_journals(journals)}
    void = by_id["20260101T000000Z-break-nacl-dead00"]
    assert void.status == journal_mod.VOID
    assert void.void_reason == (
        f"the sandbox in {sandbox_dir(tmp_path)} that the drill ran against is no longer "
        "running: what the drill changed no longer exists"
    )
    assert by_id["20260101T000001Z-break-sg-a0a0a0"].status == journal_mod.PENDING


def test_a_users_backend_that_opens_new_connections_may_show_break_sg() -> None:
    """The bundled service keeps its connection, so exit 0 from break-sg is a sandbox fault; a
    user's backend may open new connections, and then the drill's checks judge it."""
    seen = drill(0, logs="passed", api="passed", tasks="passed")
    assert not judge_break_sg(seen)[0]
    ok, why = judge_break_sg(seen, bundled=False)
    assert ok and why.startswith("the backend opened new Redis connections, so the revoked rule")
    ok, _ = judge_break_sg(drill(1, logs="passed", api="failed", tasks="passed"), bundled=False)
    assert not ok


def failed_drill() -> Outcome:
    checks = [
        {"name": "logs show Redis error", "status": "failed", "state": "none",
         "summary": 'the backend logged no "Redis error" while the fault was in place'},
        {"name": "API still works", "status": "failed", "state": "timeouts",
         "summary": "2 of 2 answers timed out after 5 s while the ACL denied the cache port"},
        {"name": "tasks did not restart", "status": "passed", "state": "ok", "summary": ""},
    ]  # fmt: skip
    return Outcome(1, {"verdict": {"checks": checks}}, "Error: The break-nacl drill failed.\n")


def test_a_failed_drill_says_why_and_what_to_change() -> None:
    ok, why = judge_break_nacl(failed_drill())
    assert not ok
    assert why == (
        "exit 1: The break-nacl drill failed. (logs show Redis error: failed — the backend logged "
        'no "Redis error" while the fault was in place; API still works: failed — 2 of 2 answers '
        "timed out after 5 s while the ACL denied the cache port; tasks did not restart: passed)"
    )
    assert step_advice(failed_drill()) == [advice.TIMEOUT]
    stuck = Outcome(1, {"verdict": None, "error": "The tasks with REDIS_HOST=x.invalid did not "
                        "come up and stay up: ..."}, "")  # fmt: skip
    assert step_advice(stuck) == [advice.START_WITHOUT]


def test_only_the_drills_asked_for_run_and_the_advice_ends_the_rehearsal(tmp_path: Path) -> None:
    ran: list[list[str]] = []

    def fake_runner(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Outcome:
        ran.append(args)
        assert env["REXCTL_APP_SOURCE_HEADER"] == "X-Source"
        assert env["REXCTL_APP_SOURCE_FIELD"] == "source" and "REXCTL_APP_URL" not in env
        if "break-nacl" in args:
            return failed_drill()
        return Outcome(0, {"path": "x", "settings": {}, "endpoint": "cache:6379"}, "")

    users = Backend(("node", "server.js"), str(tmp_path))
    result = rehearse(
        tmp_path, runner=fake_runner, drills=check_drills(["break-nacl"]), backend=users,
        app=AppConfig(url="", source_header="X-Source"), settle=5,
        start=lambda cwd: UpResult(state(tmp_path), started=True), stop=lambda cwd: None,
    )  # fmt: skip
    assert [a[a.index("--config") + 2] for a in ran] == [
        "init", "provision", "deploy", "verify", "chaos",
    ]  # fmt: skip
    config = str(sandbox_dir(tmp_path) / "rexctl.toml")
    assert ran[-1][:5] == ["--sandbox", "--config", config, "chaos", "break-nacl"]
    assert ran[-1][ran[-1].index("--settle") + 1] == "5"
    assert "tasks run node server.js" in result.steps[0].detail
    assert result.advice == [advice.TIMEOUT]
    data = result.to_dict()
    assert list(data) == ["steps", "backend", "advice"]
    assert data["backend"] == {"command": ["node", "server.js"], "dir": str(tmp_path),
                               "path": "/api/products", "health_path": "/health"}  # fmt: skip
    assert check_drills([]) == ("break-sg", "break-nacl", "wrong-host")
    assert check_drills(["wrong-host", "break-sg"]) == ("break-sg", "wrong-host")


# --secure and --enable-later (issue 13) ---------------------------------------------------------


def answer(t: float, source: str | None = "cache", status: int | None = 200,
           phase: str = "during", error: str | None = None) -> Any:  # fmt: skip
    from rexctl.drills.observe import Answer

    return Answer(t, phase, status, source, 1.0, error)


def later(
    code: int = 0, done: tuple[str, ...] | None = None, answers: tuple[Any, ...] = ()
) -> Outcome:
    steps = done if done is not None else (
        "turn in-transit encryption on", "ROTATE", "roll the service",
        "check that every running task uses TLS", "set x's transit encryption mode to required",
        "SET x's AUTH token",
    )  # fmt: skip
    return Outcome(code, {"migration": {"done": list(steps)}}, "", answers)


STEADY = (*(answer(t / 4) for t in range(40)), answer(11.0, phase="after"))


def test_enable_later_passes_when_no_answer_failed_and_the_cache_kept_answering() -> None:
    from rexctl.sandbox.rehearse import judge_enable_later

    ok, why = judge_enable_later(later(answers=STEADY))
    assert ok, why
    assert "41 times meanwhile, 0 failed" in why and "{'cache': 41}" in why


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        (later(answers=(*STEADY, answer(5.0, status=502, source=None, error="HTTP 502"))),
         "1 failed"),
        (later(answers=(answer(0.0), *(answer(t, source="db") for t in range(1, 13)),
                        answer(13.0), answer(14.0, phase="after"))),
         "the cache did not keep answering"),
        (later(answers=tuple(answer(t / 4) for t in range(8))), "the cache did not keep answering"),
        (later(done=("turn in-transit encryption on",), answers=STEADY), "without turning TLS"),
        (Outcome(1, None, "Error: Not every running task uses TLS\n"), "exit 1: Not every"),
    ],
    ids=["a-failed-answer", "twelve-seconds-from-the-database", "no-cache-after", "half-done",
         "provision-failed"],
)  # fmt: skip
def test_enable_later_fails_otherwise(outcome: Outcome, said: str) -> None:
    from rexctl.sandbox.rehearse import judge_enable_later

    ok, why = judge_enable_later(outcome)
    assert not ok and said in why, why


def test_verify_with_tls_and_auth_needs_every_task_stream_to_say_so() -> None:
    from rexctl.sandbox.rehearse import judge_verify_secure

    def verified(*lines: str) -> Outcome:
        streams = [{"ready": {"last": {"message": m} if m else None}} for m in lines]
        checks = [{"name": "logs", "status": "passed"}]
        return Outcome(0, {"checks": checks, "logs": {"streams": streams}}, "")

    ok, why = judge_verify_secure(
        verified("✅ Redis ready (TLS, AUTH)", "✅ Redis ready (TLS, AUTH)")
    )
    assert ok and "every task stream (2)" in why
    ok, why = judge_verify_secure(verified("✅ Redis ready (TLS, AUTH)", "✅ Redis ready"))
    assert not ok and "not every task stream" in why
    ok, _ = judge_verify_secure(verified("✅ Redis ready (TLS, AUTH)", ""))
    assert ok, "a stream with no ready line (a task of the revision before) is not counted"


def test_secure_and_later_run_the_journey_with_their_settings(tmp_path: Path) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []

    def fake_runner(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Outcome:
        seen.append((args, env))
        return Outcome(9, None, "Error: stop here\n")  # init fails: the rest is not run

    up = lambda cwd: UpResult(state(tmp_path), started=False)  # noqa: E731
    secure = rehearse(tmp_path, runner=fake_runner, start=up, stop=lambda c: None, secure=True)
    assert seen[0][1]["REXCTL_CACHE_TLS"] == "true" and seen[0][1]["REXCTL_CACHE_AUTH"] == "true"
    assert [s.name for s in secure.steps][-1] == "chaos wrong-host"
    seen.clear()
    later_run = rehearse(tmp_path, runner=fake_runner, start=up, stop=lambda c: None,
                         enable_later=True)  # fmt: skip
    assert "REXCTL_CACHE_TLS" not in seen[0][1], "the journey itself runs plain"
    assert [(s.step, s.name) for s in later_run.steps][-3:] == [
        ("9 later", "provision (TLS and AUTH later)"), ("9 rotate", "rotate-token"),
        ("13-14", "verify (TLS, AUTH)")
    ]  # fmt: skip
    assert {tuple(s.to_dict()) for s in later_run.steps} == {("step", "name", "status", "detail")}


def test_secure_and_later_are_one_or_the_other() -> None:
    result = runner.invoke(app, ["rehearse", "--secure", "--enable-later"])
    assert result.exit_code == 2, result.output
    assert "--secure and --enable-later are two rehearsals" in result.output


def test_the_watch_keeps_answers_as_a_drill_does() -> None:
    from rexctl.sandbox.watch import summarize

    answers = [answer(0.0, phase="before"), answer(1.0), answer(2.0, source="db"),
               answer(3.5, source="db"), answer(4.0), answer(5.0, phase="after")]  # fmt: skip
    summary = summarize(answers)
    assert summary.to_dict() == {
        "answers": 6, "failed": 0, "sources": {"cache": 4, "db": 2},
        "longest_without_cache_s": 2.5, "cache_after": True,
    }  # fmt: skip
    assert set(answers[1].to_dict()) == {"t", "phase", "status", "source", "latency_ms",
                                         "error", "ok"}  # fmt: skip


def rotated(code: int = 0, done: tuple[str, ...] | None = None,
            answers: tuple[Any, ...] = STEADY) -> Outcome:  # fmt: skip
    steps = done if done is not None else (
        "generate a new AUTH token and store it as the pending version", "ROTATE x's AUTH token",
        "make the new token the current version", "force a new deployment of the service",
        "check that every running task comes from deployment d", "SET x's AUTH token",
    )  # fmt: skip
    return Outcome(code, {"rotation": {"done": list(steps)}}, "", answers)


@pytest.mark.parametrize(
    ("outcome", "ok", "said"),
    [
        (rotated(), True, "41 times meanwhile, 0 failed"),
        (rotated(answers=(*STEADY, answer(5.0, status=None, source=None, error="timeout"))),
         False, "1 failed"),
        (rotated(done=("ROTATE x's AUTH token",)), False, "without ROTATE, a new deployment"),
        (Outcome(2, None, "Error: rexpress-redis has no AUTH token\n"), False, "exit 2"),
    ],
    ids=["rotated", "a-failed-answer", "half-done", "refused"],
)  # fmt: skip
def test_a_rotation_passes_only_whole_and_with_no_failed_answer(
    outcome: Outcome, ok: bool, said: str
) -> None:
    from rexctl.sandbox.rehearse import judge_rotate

    passed, why = judge_rotate(outcome)
    assert passed is ok and said in why, why


def test_a_watched_step_s_steps_are_placed_on_its_time_axis() -> None:
    from rexctl.sandbox.watch import ApiWatch, step_marks

    watch = ApiWatch("http://127.0.0.1:9/")
    watch.started_at = "2026-01-01T00:00:00+00:00"
    timeline = [
        {"step": "ROTATE", "kind": "auth-rotate", "started_at": "2026-01-01T00:00:01.5+00:00",
         "ended_at": "2026-01-01T00:00:03+00:00"},
        {"step": "bad", "started_at": "not a time"}, "not a dict",
    ]  # fmt: skip
    assert step_marks(watch, timeline) == [
        {"t": 1.5, "t_end": 3.0, "step": "ROTATE", "kind": "auth-rotate"}
    ]
    assert step_marks(watch, None) == []


def test_the_watch_looks_at_the_tasks_once_a_second_while_it_asks() -> None:
    from rexctl.sandbox.watch import ApiWatch

    looks = iter(range(1000))

    def sample() -> dict[str, Any]:
        n = next(looks)
        if n == 1:
            raise OSError("the sandbox did not answer")  # a gap, not the end of the watch
        return {"running": 2, "desired": 2, "stopped": [{"arn": f"task/{n}"}]}

    with ApiWatch("http://127.0.0.1:9/api/products", sample=sample) as watch:
        pass
    assert len(watch.task_samples) >= 2 and watch.answers, "a sample a second over ~3 s"
    assert [s["stopped"][0]["arn"] for s in watch.task_samples][:2] == ["task/0", "task/2"]
    times = [s["t"] for s in watch.task_samples]
    assert times == sorted(times) and set(watch.task_samples[0]) == {"t", "running", "desired",
                                                                     "stopped"}  # fmt: skip
