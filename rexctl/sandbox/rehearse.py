"""`rexctl rehearse`: the guide's whole journey against the local sandbox, step by step.

Each step runs the installed rexctl as a subprocess, exactly as a user would type it, with
`--sandbox`, `--json` and a configuration file of the rehearsal's own
(`.rexctl/sandbox/rexctl.toml`, so a user's rexctl.toml is never touched), then judges its exit
code and JSON against the outcome the guide expects. Drill journals go to the sandbox directory
too. A sandbox the rehearsal started is stopped at the end (unless `--keep`); one that was
already running is left running.

The sandbox's tasks run the bundled service or the user's backend (`rexctl.sandbox.backend`).
The steps read the backend as the user's `[app]` settings say (they get them as `REXCTL_APP_*`
variables), and a drill's verdict is about that backend. A rehearsal of the user's backend ends
with what to change in it (`Rehearsal.advice`, from `rexctl.advice`), derived from the checks
that failed and how.

`secure=True` (`--secure`) runs the same journey with `cache.tls` and `cache.auth` on from the
start; `enable_later=True` (`--enable-later`) runs it plain, then turns both on with `rexctl
provision` while `ApiWatch` keeps asking the API, and checks that no answer failed and the cache
kept answering (its answers go into that step's JSON, as a drill's `observations.answers`); then
it rotates the token once (`rexctl rotate-token`), watched and judged the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rexctl.advice import DID_NOT_COME_UP, advice_for
from rexctl.checks import FAILED, PASSED
from rexctl.config import SETTINGS, AppConfig
from rexctl.errors import ExitCode, RexctlError, UsageError
from rexctl.sandbox import control
from rexctl.sandbox.backend import Backend
from rexctl.sandbox.state import CLUSTER, SERVICE, sandbox_dir

STEP_TIMEOUT = 240.0
DRILLS = ("break-sg", "break-nacl", "wrong-host")


@dataclass
class StepResult:
    step: str  # the guide's step numbers
    name: str
    status: str  # passed | failed
    detail: str
    exit_code: int | None = None
    seconds: float = 0.0
    observations: dict[str, Any] | None = None  # a watched step: the API's answers meanwhile
    data: Any = None  # what the step printed with --json (a drill's: its record)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
        }
        if self.observations is not None:
            out["observations"] = self.observations
        return out


@dataclass
class Rehearsal:
    steps: list[StepResult] = field(default_factory=list)
    sandbox_note: str = ""
    seconds: float = 0.0
    interrupted: bool = False
    backend: Backend = field(default_factory=Backend)
    advice: list[str] = field(default_factory=list)  # what to change in the backend

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.status == PASSED for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """The shape issue 6 fixes: `{"steps": [{"step", "name", "status", "detail"}, ...]}`;
        with the user's backend also `backend` (command, dir, path, health_path) and `advice`."""
        data: dict[str, Any] = {"steps": [s.to_dict() for s in self.steps]}
        if not self.backend.bundled:
            from rexctl.redact import redact_text

            backend = self.backend.to_dict()
            backend["command"] = [redact_text(a) for a in self.backend.command]
            data.update(backend=backend, advice=list(self.advice))
        return data


@dataclass(frozen=True)
class Outcome:
    """What one command did: its exit code, parsed JSON (or None) and the end of its stderr."""

    code: int
    data: Any
    stderr: str
    answers: tuple[Any, ...] = ()  # a watched step: the API's answers while it ran (Answer)

    def last_error(self) -> str:
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("Error:") or "No such command" in ln]
        picked = errors[-1] if errors else (lines[-1] if lines else "")
        return picked.removeprefix("Error:").strip() or "(no message)"


Judge = Callable[[Outcome], tuple[bool, str]]
Runner = Callable[[list[str], Path, dict[str, str], float], Outcome]
Progress = Callable[[StepResult | None, str], None]


@dataclass(frozen=True)
class Step:
    step: str
    name: str
    args: list[str]
    judge: Judge
    essential: bool  # later steps cannot run when this one fails
    env: dict[str, str] = field(default_factory=dict)  # on top of the rehearsal's environment
    watch: bool = False  # ask the API while it runs (ApiWatch); the judge sees the answers


def run_rexctl(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Outcome:
    """Run `python -m rexctl ARGS` (the installed rexctl); Ctrl-C reaches it too, so a drill
    restores before it exits."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rexctl", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # let a drill restore
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        err += f"\nError: timed out after {timeout:.0f} s"
    except KeyboardInterrupt:
        proc.communicate(timeout=60)  # it got the same Ctrl-C; wait for its restore
        raise
    try:
        data = json.loads(out) if out.strip() else None
    except ValueError:
        data = None
    return Outcome(proc.returncode, data, err)


def drill_state_dir(directory: Path) -> Path:
    """Where the rehearsal's drills keep their journals (apart from the user's own drills)."""
    return directory / "state"


def unrestored_hint(cwd: Path) -> str:
    """A warning, with the exact undo command, when a rehearsal died mid-drill; '' otherwise."""
    from rexctl.drills.journal import unrestored
    from rexctl.sandbox.state import sandbox_dir

    directory = sandbox_dir(cwd)
    state = drill_state_dir(directory)
    if not state.is_dir() or not (pending := unrestored(state)):
        return ""
    ids = ", ".join(f"{j.id} ({j.drill})" for j in pending)
    return (
        f"A rehearsal's drill may still be in place in the sandbox: {ids}. Undo it with "
        f"`REXCTL_STATE_DIR={state} rexctl --sandbox --config {directory / 'rexctl.toml'} "
        "chaos restore --yes` (a drill of a sandbox that is gone is marked void, as the next "
        "`rexctl rehearse` does)."
    )


def app_variables(app: AppConfig) -> dict[str, str]:
    """The user's `[app]` settings as the `REXCTL_APP_*` variables the steps read (how to read
    their backend); not `app.url`: the steps call the sandbox's load balancer."""
    return {
        s.env: str(getattr(app, s.key.removeprefix("app.")))
        for s in SETTINGS
        if s.key.startswith("app.") and s.key != "app.url"
    }


def _env(directory: Path, app: AppConfig | None = None) -> dict[str, str]:
    """The user's environment without anything that would point the steps elsewhere, and the
    user's `[app]` settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REXCTL_", "AWS_")) and k not in ("CI",)
    }
    env.update(app_variables(app or AppConfig(url="")))
    env.update(
        AWS_ACCESS_KEY_ID="sandbox",
        AWS_SECRET_ACCESS_KEY="sandbox",
        AWS_CONFIG_FILE=str(directory / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(directory / "no-aws-credentials"),
        REXCTL_STATE_DIR=str(drill_state_dir(directory)),
        PYTHONUNBUFFERED="1",
    )
    return env


# Judging each step -------------------------------------------------------------------------------


def _failed(outcome: Outcome, what: str) -> tuple[bool, str]:
    if outcome.code == 2 and "No such command" in outcome.stderr:
        return False, f"`rexctl {what}` is not available in this rexctl (No such command)."
    return False, f"exit {outcome.code}: {outcome.last_error()}"


def judge_init(o: Outcome) -> tuple[bool, str]:
    if o.code != 0 or not isinstance(o.data, dict):
        return _failed(o, "init")
    settings = o.data.get("settings", {})
    subnets = settings.get("ecs.subnets", [])
    return True, (
        f"wrote {o.data.get('path')}: service {settings.get('ecs.cluster')}/"
        f"{settings.get('ecs.service')} in {settings.get('ecs.vpc_id')} "
        f"({len(subnets)} subnet(s))"
    )


def judge_provision(o: Outcome) -> tuple[bool, str]:
    if o.code != 0 or not isinstance(o.data, dict):
        return _failed(o, "provision")
    if not o.data.get("endpoint"):
        return False, "provision ended without a primary endpoint"
    done = "created" if o.data.get("changed") else "already in place"
    return True, (
        f"cache {o.data.get('cache_id')} {o.data.get('status')} ({done}); primary endpoint "
        f"{o.data.get('endpoint')}:{o.data.get('port')}"
    )


def judge_deploy(o: Outcome) -> tuple[bool, str]:
    if o.code != 0:
        return _failed(o, "deploy")
    data = o.data if isinstance(o.data, dict) else {}
    rollout = data.get("rollout") if isinstance(data.get("rollout"), dict) else {}
    before, after = _short(data.get("from")), _short(data.get("to"))
    moved = f"{before} -> {after}" if after and after != before else f"stays on {before}"
    reason = str(rollout.get("reason") or "") if rollout else ""
    return True, f"{data.get('status', 'done')}: {moved}" + (f"; {reason}" if reason else "")


def _short(arn: Any) -> str:
    return str(arn or "").rsplit("/", 1)[-1]


def _checks(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        return []
    verdict = data.get("verdict") if isinstance(data.get("verdict"), dict) else data
    checks = verdict.get("checks", []) if isinstance(verdict, dict) else []
    return [c for c in checks if isinstance(c, dict)]


def _check_line(checks: list[dict[str, Any]]) -> str:
    """`name: status` per check; a failed one with its summary: `API still works: failed — ...`."""
    return "; ".join(
        f"{c.get('name')}: {c.get('status')}"
        + (f" — {c['summary']}" if c.get("status") == FAILED and c.get("summary") else "")
        for c in checks
    )


def judge_verify(o: Outcome) -> tuple[bool, str]:
    checks = _checks(o.data)
    if o.code != 0:
        ok, why = _failed(o, "verify")
        return ok, f"{why} ({_check_line(checks)})" if checks else why
    return True, _check_line(checks) or "logs show Redis ready; first answer db, then cache"


def _status_of(checks: list[dict[str, Any]], name: str) -> str:
    return next((str(c.get("status")) for c in checks if c.get("name") == name), "missing")


def judge_break_sg(o: Outcome, *, bundled: bool = True) -> tuple[bool, str]:
    """The bundled service keeps its Redis connection open, so the revoked rule must go unseen
    (a check of the sandbox's connection tracking). A user's backend may open new connections
    (one per request, or a reconnect after an idle timeout): then the fault shows, and the drill's
    checks judge the backend as for any other fault."""
    checks = _checks(o.data)
    if not bundled and o.code == 0:
        return True, (
            "the backend opened new Redis connections, so the revoked rule showed: "
            + _check_line(checks)
        )
    api, tasks = _status_of(checks, "API still works"), _status_of(checks, "tasks did not restart")
    if o.code == int(ExitCode.FAULT_NOT_OBSERVED):
        if api == PASSED and tasks == PASSED:
            return True, (
                "fault not observed, as expected: revoking the rule only stops NEW connections "
                "(security-group connection tracking keeps open ones), and the backend keeps its "
                "Redis connection open; API still works, tasks did not restart. break-nacl "
                "below cuts open connections."
            )
        return (
            False,
            f"fault not observed, but API still works: {api}, tasks did not restart: {tasks}",
        )
    if o.code == 0:
        return False, (
            "the fault was observed although the backend holds open Redis connections, which a "
            "revoked security-group rule must not cut (connection tracking)"
        )
    ok, why = _failed(o, "chaos break-sg")
    return ok, f"{why} ({_check_line(checks)})" if checks else why


def judge_drill(name: str) -> Judge:
    def judge(o: Outcome) -> tuple[bool, str]:
        checks = _checks(o.data)
        if o.code == 0:
            return True, _check_line(checks) or "every check passed"
        ok, why = _failed(o, f"chaos {name}")
        return ok, f"{why} ({_check_line(checks)})" if checks else why

    return judge


def judge_break_nacl(o: Outcome) -> tuple[bool, str]:
    """Passes only when the logs showed the Redis errors: the ACL cut the open connections."""
    ok, why = judge_drill("break-nacl")(o)
    if ok and _status_of(_checks(o.data), "logs show Redis error") != PASSED:
        return False, "exit 0 but the logs did not show the Redis errors"
    return ok, why


SECURE_ENV = {"REXCTL_CACHE_TLS": "true", "REXCTL_CACHE_AUTH": "true"}


def judge_verify_secure(o: Outcome) -> tuple[bool, str]:
    """verify, and every task stream's last `Redis ready` says TLS and AUTH."""
    ok, detail = judge_verify(o)
    if not ok:
        return ok, detail
    findings = o.data.get("logs") if isinstance(o.data, dict) else None
    streams = findings.get("streams", []) if isinstance(findings, dict) else []
    lines = [
        line
        for s in streams
        if isinstance(s, dict)
        and (line := str(((s.get("ready") or {}).get("last") or {}).get("message", "")))
    ]
    secure = [line for line in lines if "(TLS, AUTH)" in line]
    if not lines or len(secure) < len(lines):
        return False, f"{detail}; but not every task stream says `Redis ready (TLS, AUTH)`"
    return True, f"{detail}; every task stream ({len(lines)}) says `Redis ready (TLS, AUTH)`"


def judge_enable_later(o: Outcome) -> tuple[bool, str]:
    """provision turned TLS and AUTH on (required, SET) while no answer of the API failed and the
    cache kept answering."""
    if o.code != 0 or not isinstance(o.data, dict):
        return _failed(o, "provision")
    migration = o.data.get("migration") if isinstance(o.data.get("migration"), dict) else {}
    done = [str(d) for d in (migration or {}).get("done", [])]
    if not any("required" in d for d in done) or not any(d.startswith("SET") for d in done):
        return False, "provision ended without turning TLS to required and SETting the token: " + (
            "; ".join(done) or "nothing was done"
        )
    return _judge_answers(o, done)


def judge_rotate(o: Outcome) -> tuple[bool, str]:
    """rotate-token put a new token in (ROTATE, a forced deployment, SET) while no answer of the
    API failed and the cache kept answering."""
    if o.code != 0 or not isinstance(o.data, dict):
        return _failed(o, "rotate-token")
    rotation = o.data.get("rotation") if isinstance(o.data.get("rotation"), dict) else {}
    done = [str(d) for d in (rotation or {}).get("done", [])]
    wanted = ("ROTATE", "force a new deployment", "SET")
    if not all(any(d.startswith(w) for d in done) for w in wanted):
        return False, "rotate-token ended without ROTATE, a new deployment and SET: " + (
            "; ".join(done) or "nothing was done"
        )
    return _judge_answers(o, done)


def _judge_answers(o: Outcome, done: list[str]) -> tuple[bool, str]:
    from rexctl.sandbox.watch import summarize

    seen = summarize(list(o.answers))
    detail = (
        f"{len(done)} steps ({'; '.join(done)}); the API answered {seen.answers} times "
        f"meanwhile, {seen.failed} failed, sources {seen.sources}, longest stretch without a "
        f"cache answer {seen.longest_without_cache:.1f} s"
    )
    if seen.failed:
        return False, detail
    if not seen.cache_after or seen.longest_without_cache > LATER_MAX_WITHOUT_CACHE:
        return False, f"{detail}: the cache did not keep answering"
    return True, detail


LATER_MAX_WITHOUT_CACHE = 10.0  # s: more than a task's rollout here, far less than an outage


def steps(
    config: Path,
    app_url: str,
    duration: float,
    interval: float,
    *,
    settle: float = 30.0,
    drills: tuple[str, ...] = DRILLS,
    bundled: bool = True,
) -> list[Step]:
    base = ["--sandbox", "--config", str(config)]
    drill = ["--duration", f"{duration:g}", "--interval", f"{interval:g}", "--settle",
             f"{settle:g}", "--yes", "--json"]  # fmt: skip

    def break_sg(o: Outcome) -> tuple[bool, str]:
        return judge_break_sg(o, bundled=bundled)

    return [
        Step(
            "setup",
            "init",
            [
                *base,
                "init",
                "--cluster",
                CLUSTER,
                "--service",
                SERVICE,
                "--url",
                app_url,
                "--force",
                "--json",
            ],
            judge_init,
            True,
        ),
        Step(
            "1-11",
            "provision",
            [*base, "provision", "--timeout", "120", "--json"],
            judge_provision,
            True,
        ),
        Step(
            "12",
            "deploy",
            [*base, "deploy", "--timeout", "120", "--poll", "0.5", "--json"],
            judge_deploy,
            True,
        ),
        Step("13-14", "verify", [*base, "verify", "--json"], judge_verify, False),
    ] + [
        Step("15", f"chaos {name}", [*base, "chaos", name, *drill], judge, False)
        for name, judge in (
            ("break-sg", break_sg),
            ("break-nacl", judge_break_nacl),
            ("wrong-host", judge_drill("wrong-host")),
        )
        if name in drills
    ]


def secure_steps(journey: list[Step]) -> list[Step]:
    """`--secure`: the journey with `cache.tls` and `cache.auth` on from the start."""
    out = []
    for spec in journey:
        judge = judge_verify_secure if spec.name == "verify" else spec.judge
        out.append(replace(spec, env={**spec.env, **SECURE_ENV}, judge=judge))
    return out


def later_steps(journey: list[Step], config: Path) -> list[Step]:
    """`--enable-later`: the plain journey, then TLS and AUTH turned on under a watched API."""
    base = ["--sandbox", "--config", str(config)]
    return [
        *journey,
        Step(
            "9 later",
            "provision (TLS and AUTH later)",
            [*base, "provision", "--timeout", "120", "--poll", "0.5", "--json"],
            judge_enable_later,
            True,
            env=dict(SECURE_ENV),
            watch=True,
        ),
        Step(
            "9 rotate",
            "rotate-token",
            [*base, "rotate-token", "--timeout", "120", "--poll", "0.5", "--json"],
            judge_rotate,
            False,
            env=dict(SECURE_ENV),
            watch=True,
        ),
        Step(
            "13-14",
            "verify (TLS, AUTH)",
            [*base, "verify", "--json"],
            judge_verify_secure,
            False,
            env=dict(SECURE_ENV),
        ),
    ]


def _task_sampler(state: Any) -> Callable[[], dict[str, Any]]:
    """A look at the sandbox service's tasks, as ECS shows them: running and desired counts, and
    its stopped tasks (a rollout stops the old ones)."""
    import boto3

    ecs = boto3.client(
        "ecs", endpoint_url=state.endpoint_url, region_name=state.region,
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
    )  # fmt: skip

    def sample() -> dict[str, Any]:
        service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
        arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")
        stopped = []
        if arns["taskArns"]:
            found = ecs.describe_tasks(cluster=CLUSTER, tasks=arns["taskArns"][:100])["tasks"]
            stopped = [
                {"arn": t["taskArn"], "stopped_reason": t.get("stoppedReason", ""),
                 "stop_code": str(t.get("stopCode", ""))}
                for t in found if t.get("group") == f"service:{SERVICE}"
            ]  # fmt: skip
        return {
            "running": int(service.get("runningCount", 0)),
            "desired": int(service.get("desiredCount", 0)),
            "stopped": stopped,
        }

    return sample


def _timeline(data: Any) -> Any:
    """When each step of a watched command ran, from its --json (provision's `migration`,
    rotate-token's `rotation`)."""
    if not isinstance(data, dict):
        return []
    for key in ("migration", "rotation"):
        part = data.get(key)
        if isinstance(part, dict) and isinstance(part.get("timeline"), list):
            return part["timeline"]
    return []


def _gate_counts(cwd: Path) -> str:
    """What the sandbox's gate saw: the tasks' open TLS and plain connections to the cache."""
    view = control.status(cwd)
    if view is None:
        return ""
    tls = sum(t.redis_tls for t in view.tasks)
    plain = sum(t.redis_plain for t in view.tasks)
    return f"; the gate sees {tls} TLS and {plain} plain connection(s) to the cache"


def step_advice(o: Outcome) -> list[str]:
    """What a step's outcome says to change in the backend: its failed checks, or a drill that
    ended before its verdict because the new tasks never came up."""
    found = advice_for(_checks(o.data))
    data = o.data if isinstance(o.data, dict) else {}
    if data.get("verdict") is None and "did not come up" in str(data.get("error") or ""):
        found.append(DID_NOT_COME_UP)
    return found


def check_drills(drills: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The drills to run, in the guide's order; refuses an unknown name (exit 2)."""
    unknown = [d for d in drills if d not in DRILLS]
    if unknown:
        raise UsageError(
            f"Unknown drill {unknown[0]!r} for --drill.", hint=f"Drills: {', '.join(DRILLS)}."
        )
    return tuple(d for d in DRILLS if d in drills) if drills else DRILLS


def rehearse(
    cwd: Path,
    *,
    keep: bool = False,
    duration: float = 8.0,
    interval: float = 0.5,
    settle: float = 30.0,
    drills: tuple[str, ...] = DRILLS,
    backend: Backend | None = None,
    app: AppConfig | None = None,
    secure: bool = False,
    enable_later: bool = False,
    on_step: Progress = lambda step, label: None,
    runner: Runner = run_rexctl,
    clock: Callable[[], float] = time.monotonic,
    start: Callable[[Path], control.UpResult] | None = None,
    stop: Callable[[Path], object] = control.down,
) -> Rehearsal:
    """Bring the sandbox up (or reuse it) with `backend` (default: the bundled service), run
    every step, judge each; never raises for a step. `app` is how the steps read the backend
    (the user's `[app]` settings; default: the guide's)."""
    backend = backend or Backend()
    if start is None:

        def start(cwd: Path) -> control.UpResult:
            return control.up(cwd, backend=backend)

    began = clock()
    result = Rehearsal(backend=backend)
    directory = sandbox_dir(cwd)
    on_step(None, "sandbox up")
    t0 = clock()
    try:
        up = start(cwd)
    except RexctlError as exc:
        detail = f"{exc.message} {exc.hint or ''}".strip()
        result.steps.append(StepResult("setup", "sandbox up", FAILED, detail, None,
                                       clock() - t0))  # fmt: skip
        on_step(result.steps[-1], "[setup] sandbox up")
        result.seconds = clock() - began
        result.sandbox_note = "The sandbox did not start: nothing else ran."
        return result
    state = up.state
    how = "started" if up.started else "reused the running sandbox"
    # A drill of a sandbox that died (killed, rebooted) left a journal that names it: what it
    # changed went with that sandbox, so the journal is void and the drills below can run.
    from rexctl.drills.runner import void_dead_sandboxes

    voided = void_dead_sandboxes(drill_state_dir(directory))
    if voided:
        how += f"; {len(voided)} drill journal(s) of a sandbox that is gone marked void"
    runs = "" if backend.bundled else f"; tasks run {backend.describe()}"
    result.steps.append(StepResult("setup", "sandbox up", PASSED,
                                   f"{how}; app {state.app_url}, AWS {state.endpoint_url}{runs}",
                                   0, clock() - t0))  # fmt: skip
    on_step(result.steps[-1], "[setup] sandbox up")
    env = _env(directory, app)
    blocked = ""
    try:
        journey = steps(
            directory / "rexctl.toml", state.app_url, duration, interval, settle=settle,
            drills=drills, bundled=backend.bundled,
        )  # fmt: skip
        if secure:
            journey = secure_steps(journey)
        elif enable_later:
            journey = later_steps(journey, directory / "rexctl.toml")
        for spec in journey:
            label = f"[{spec.step}] {spec.name}"
            if blocked:
                result.steps.append(StepResult(spec.step, spec.name, FAILED,
                                               f"not run: {blocked} failed"))  # fmt: skip
                on_step(result.steps[-1], label)
                continue
            on_step(None, label)
            t0 = clock()
            observations = None
            if spec.watch:
                from rexctl.sandbox.watch import ApiWatch, step_marks

                with ApiWatch(state.app_url, sample=_task_sampler(state)) as watch:
                    outcome = runner(spec.args, cwd, {**env, **spec.env}, STEP_TIMEOUT)
                outcome = replace(outcome, answers=tuple(watch.answers))
                observations = {
                    "started_at": watch.started_at,
                    "answers": [a.to_dict() for a in watch.answers],
                    "summary": watch.summary().to_dict(),
                    "steps": step_marks(watch, _timeline(outcome.data)),
                    "task_samples": list(watch.task_samples),
                }
            else:
                outcome = runner(spec.args, cwd, {**env, **spec.env}, STEP_TIMEOUT)
            ok, detail = spec.judge(outcome)
            if spec.watch and ok:
                detail += _gate_counts(cwd)
            step = StepResult(spec.step, spec.name, PASSED if ok else FAILED, detail,
                              outcome.code, clock() - t0, observations)  # fmt: skip
            step.data = outcome.data
            result.steps.append(step)
            on_step(step, label)
            result.advice += [a for a in step_advice(outcome) if a not in result.advice]
            if not ok and spec.essential:
                blocked = spec.name
    except KeyboardInterrupt:
        result.interrupted = True
        result.steps.append(StepResult("-", "interrupted", FAILED, "Ctrl-C: the rest did not run"))
    finally:
        if up.started and not keep:
            stop(cwd)
            result.sandbox_note = (
                "The sandbox this rehearsal started was stopped (keep it: --keep)."
            )
        else:
            why = "--keep" if keep else "it was running before"
            result.sandbox_note = (
                f"The sandbox is still running ({why}): `rexctl --sandbox status`, "
                "`rexctl sandbox down` to stop it."
            )
        result.seconds = clock() - began
    return result
