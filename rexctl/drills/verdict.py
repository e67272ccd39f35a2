"""The verdict of a drill: the guide's three checks (plus the drill's own), each with evidence.

Pure functions over what was observed; no AWS, no clock. A network fault (break-sg, break-nacl)
that leaves no trace, i.e. no "Redis error" in the logs and the last answer under the fault still
came from the cache, is "not observed": the drill proved nothing, which is neither a pass nor a
failed check, and it gets its own exit code.

The verdict is about the backend: a failed check says in one sentence (`Check.summary`) what the
backend did and under which fault ("2 of 2 answers timed out after 5 s while the ACL denied the
cache port", "2 tasks replaced after failing their load-balancer health checks (the health check
depends on Redis?)"), its `state` names the failure (timeouts, errors, health-checks, exited,
never, ...), and `Verdict.advice` turns the failed states into what to change in the backend
(`rexctl.advice`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rexctl.advice import advice_for
from rexctl.checks import FAILED, NOT_OBSERVED, PASSED, Check
from rexctl.drills.observe import REDIS_ERROR, Answer, LogLine, Task, TaskSample
from rexctl.errors import ExitCode
from rexctl.probe import percentile

# What each fault does, as the end of a sentence about the answers under it.
UNDER_FAULT = {
    "break-nacl": "while the ACL denied the cache port",
    "break-sg": "while the cache's security-group rule was revoked",
    "wrong-host": "while REDIS_HOST did not resolve",
}
_TIMEOUT = re.compile(r"\btimeout after ([0-9.]+)s\b")
_UNREACHABLE = ("connection refused", "connection reset", "connection closed by server")


@dataclass
class Observations:
    answers: list[Answer] = field(default_factory=list)
    samples: list[TaskSample] = field(default_factory=list)
    baseline: list[Task] = field(default_factory=list)  # running tasks the fault must not stop
    logs: list[LogLine] = field(default_factory=list)
    logs_missing_reason: str = ""  # set when the logs cannot be read at all
    logs_search_error: str = ""  # the last log search did not finish (page limit, AWS error)
    watch_task_definition: str = ""  # wrong-host: only tasks of this revision count
    cache_again_after: float | None = None  # seconds after the restore until a cache answer
    settle_timeout: float = 0.0
    notes: list[str] = field(default_factory=list)
    # When t = 0 was (UTC, ISO 8601), and the t of each turn of the course ("inject", "injected",
    # "restore", "restored"): what the HTML report places the fault window and the logs with.
    started_at: str = ""
    marks: dict[str, float] = field(default_factory=dict)
    error_phrase: str = REDIS_ERROR  # what the log search looked for (`app.error_phrase`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": [a.to_dict() for a in self.answers],
            "task_samples": [s.to_dict() for s in self.samples],
            "baseline_tasks": [asdict(t) for t in self.baseline],
            "log_events": [asdict(e) for e in self.logs],
            "logs_missing_reason": self.logs_missing_reason,
            "logs_search_error": self.logs_search_error,
            "watch_task_definition": self.watch_task_definition,
            "cache_again_after": self.cache_again_after,
            "notes": list(self.notes),
            "started_at": self.started_at,
            "marks": dict(self.marks),
            "error_phrase": self.error_phrase,
        }


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def latency_summary(answers: Sequence[Answer]) -> str:
    lat = [a.latency_ms for a in answers if a.ok]
    if not lat:
        return "no successful answer"
    return (
        f"latency p50 {_ms(percentile(lat, 50))} ms, p95 {_ms(percentile(lat, 95))} ms, "
        f"p99 {_ms(percentile(lat, 99))} ms, max {_ms(max(lat))} ms"
    )


def _counts(values: Sequence[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(Counter(values).items())) or "none"


def check_logs(obs: Observations) -> Check:
    name = "logs show Redis error"
    phrase = obs.error_phrase
    if obs.logs_missing_reason:
        return Check(name, FAILED, [obs.logs_missing_reason], "no-logs", obs.logs_missing_reason)
    if not obs.logs and obs.logs_search_error:  # not read to the end: not "none was logged"
        return Check(
            name,
            FAILED,
            [
                "the log search did not finish, so whether a Redis error was logged is not "
                f"known: {obs.logs_search_error}"
            ],
            "incomplete",
        )
    if not obs.logs:
        return Check(
            name,
            FAILED,
            [f'no log event contained "{phrase}" during the drill'],
            "none",
            f'the backend logged no "{phrase}" while the fault was in place',
        )
    first = obs.logs[0]
    when = datetime.fromtimestamp(first.timestamp / 1000, UTC).strftime("%H:%M:%S")
    return Check(
        name,
        PASSED,
        [
            f'{len(obs.logs)} log event(s) with "{phrase}" in '
            f"{len({e.stream for e in obs.logs})} stream(s)",
            f"first at {when} in {first.stream}: {first.message.strip()[:200]}",
        ],
        "seen",
    )


def _seconds(value: str) -> str:
    return f"{float(value):g} s"


def _failure(a: Answer) -> tuple[str, str]:
    """(kind, what the answers did) for one failed answer; kind: timeout | unreachable | error."""
    error = a.error or f"HTTP {a.status}"
    timeout = _TIMEOUT.search(error)
    if timeout:
        return "timeout", f"timed out after {_seconds(timeout.group(1))}"
    unreachable = error in _UNREACHABLE or error in ("HTTP 502", "HTTP 503", "HTTP 504")
    words = {
        "connection refused": "were refused",
        "connection reset": "were reset",
        "connection closed by server": "were cut off (connection closed by server)",
        "invalid JSON": "were not JSON",
    }.get(error) or (f"got {error}" if error.startswith("HTTP ") else f"failed ({error})")
    return ("unreachable" if unreachable else "error"), words


def _failed_answers(bad: Sequence[Answer], total: int, where: str = "") -> str:
    """ "3 of 5 answers timed out after 5 s" / "3 of 5 answers failed (HTTP 500 ×2, ...)"."""
    words = Counter(_failure(a)[1] for a in bad)
    if len(words) == 1:
        return f"{len(bad)} of {total} answers{where} {next(iter(words))}"
    reasons = Counter(a.error or f"HTTP {a.status}" for a in bad)
    listed = ", ".join(f"{r} ×{n}" for r, n in reasons.most_common(3))
    return f"{len(bad)} of {total} answers{where} failed ({listed})"


def check_api(obs: Observations, fault: str = "") -> Check:
    name = "API still works"
    answers = [a for a in obs.answers if a.phase in ("during", "after")]
    if not answers:
        return Check(name, FAILED, ["no request was made during the drill"], "none")
    bad = [a for a in answers if not a.ok]
    evidence = [
        f"{len(answers) - len(bad)} of {len(answers)} answers were 2xx",
        "sources: " + _counts([a.source or "-" for a in answers if a.ok]),
        latency_summary(answers),
    ]
    if bad:
        reasons = Counter(a.error or f"HTTP {a.status}" for a in bad)
        evidence.insert(
            1,
            "failed: "
            + ", ".join(f"{r} ×{n}" for r, n in reasons.most_common(3))
            + f" (first at t={bad[0].t:.1f}s)",
        )
        during = [a for a in answers if a.phase == "during"]
        after = [a for a in answers if a.phase == "after"]
        parts = []
        if bad_during := [a for a in during if not a.ok]:
            parts.append(f"{_failed_answers(bad_during, len(during))} {fault or 'under the fault'}")
        if bad_after := [a for a in after if not a.ok]:
            parts.append(_failed_answers(bad_after, len(after), " after the restore"))
        kinds = {_failure(a)[0] for a in bad}
        state = next(k for k in ("timeout", "error", "unreachable") if k in kinds)
        states = {"timeout": "timeouts", "error": "errors", "unreachable": "unreachable"}
        return Check(name, FAILED, evidence, states[state], "; ".join(parts))
    return Check(name, PASSED, evidence, "ok")


def _stop_kind(t: Task | None) -> str:
    """health-checks | exited | failed-to-start | stopped, from ECS's stop code and reason."""
    if t is None:
        return "stopped"
    reason = t.stopped_reason.lower()
    if "health check" in reason:
        return "health-checks"
    if t.stop_code == "EssentialContainerExited" or "exited" in reason:
        return "exited"
    if t.stop_code == "TaskFailedToStart":
        return "failed-to-start"
    return "stopped"


def _tasks(n: int) -> str:
    return f"{n} task{'s' if n != 1 else ''}"


def _stopped_summary(stopped: dict[str, Task | None]) -> tuple[str, str]:
    """(state, sentence) for the tasks that stopped, the worst kind first."""
    by_kind: dict[str, list[Task | None]] = {}
    for t in stopped.values():
        by_kind.setdefault(_stop_kind(t), []).append(t)
    parts = []
    if health := by_kind.get("health-checks"):
        parts.append(
            f"{_tasks(len(health))} replaced after failing their load-balancer health checks "
            "(the health check depends on Redis?)"
        )
    if exited := by_kind.get("exited"):
        codes = sorted({t.exit_code for t in exited if t is not None and t.exit_code is not None})
        code = f" (exit code {', '.join(map(str, codes))})" if codes else ""
        parts.append(
            f"{_tasks(len(exited))} exited{code} and {'were' if len(exited) > 1 else 'was'} "
            "replaced (the backend exits on a Redis error?)"
        )
    if failed := by_kind.get("failed-to-start"):
        parts.append(f"{_tasks(len(failed))} failed to start")
    if other := by_kind.get("stopped"):
        why = sorted({t.stopped_reason for t in other if t is not None and t.stopped_reason})
        parts.append(f"{_tasks(len(other))} stopped" + (f" ({'; '.join(why)})" if why else ""))
    state = next(
        k for k in ("health-checks", "exited", "failed-to-start", "stopped") if k in by_kind
    )
    return state, "; ".join(parts)


def check_tasks(obs: Observations) -> Check:
    watch = obs.watch_task_definition
    name = "new tasks stayed up" if watch else "tasks did not restart"
    samples = [s for s in obs.samples if s.phase == "during"]
    if not samples:
        return Check(
            name, FAILED, ["the service's tasks were never sampled under the fault"], "none"
        )
    baseline = {t.arn for t in obs.baseline if not watch or t.task_definition == watch}
    stopped: dict[str, str] = {}
    stopped_tasks: dict[str, Task | None] = {}
    new: set[str] = set()
    mismatch: list[str] = []
    for s in samples:
        running = {t.arn for t in s.tasks if not watch or t.task_definition == watch}
        for arn in baseline - running:
            stopped.setdefault(arn, f"gone from the running tasks at t={s.t:.1f}s")
            stopped_tasks.setdefault(arn, None)
        for t in s.stopped:
            if t.arn in baseline or (watch and t.task_definition == watch):
                why = t.stopped_reason or t.stop_code or t.last_status
                stopped[t.arn] = f"stopped ({why}) seen at t={s.t:.1f}s"
                stopped_tasks[t.arn] = t
        new |= running - baseline
        if s.running != s.desired:
            mismatch.append(f"t={s.t:.1f}s running {s.running} of {s.desired}")
    evidence = [
        f"{len(baseline)} task(s) watched over {len(samples)} samples"
        + (f" (revision {watch.rsplit('/', 1)[-1]})" if watch else "")
    ]
    evidence += [f"{arn.rsplit('/', 1)[-1]} {why}" for arn, why in sorted(stopped.items())]
    evidence += [f"new task {arn.rsplit('/', 1)[-1]}" for arn in sorted(new)]
    evidence += mismatch[:5]
    if not baseline:
        evidence.append("no running task to watch")
    ok = not stopped and not new and not mismatch and bool(baseline)
    if ok:
        evidence.append("no task stopped, no new task ARN, running = desired throughout")
        return Check(name, PASSED, evidence, "ok")
    if stopped:
        state, summary = _stopped_summary(stopped_tasks)
    elif new:
        state, summary = "new-tasks", f"{_tasks(len(new))} started under the fault"
    elif mismatch:
        state, summary = "count", f"the service ran fewer tasks than desired ({mismatch[0]})"
    else:
        state, summary = "none", "no running task to watch"
    return Check(name, FAILED, evidence, state, summary)


def check_from_db(obs: Observations) -> Check:
    name = "API answers from the database"
    during = [a for a in obs.answers if a.phase == "during" and a.ok]
    from_cache = [a for a in during if a.source == "cache"]
    evidence = ["sources under the fault: " + _counts([a.source or "-" for a in during])]
    if not during:
        return Check(name, FAILED, ["no successful answer under the fault"], "none")
    if from_cache:
        evidence.append(f"first cache answer at t={from_cache[0].t:.1f}s")
        return Check(
            name,
            FAILED,
            evidence,
            "from-cache",
            f"{len(from_cache)} of {len(during)} answers came from the cache while REDIS_HOST "
            "did not resolve (is REDIS_HOST read?)",
        )
    return Check(name, PASSED, evidence, "from-db")


def check_cache_again(obs: Observations) -> Check:
    name = "cache used again"
    if obs.cache_again_after is None:
        after = [a for a in obs.answers if a.phase == "after"]
        seen = _counts([a.source or "-" if a.ok else "failed" for a in after])
        evidence = [
            f"no answer came from the cache within {obs.settle_timeout:g}s after the restore",
            f"{len(after)} answer(s) after the restore: {seen}",
        ]
        summary = f"no answer from the cache within {obs.settle_timeout:g} s of the restore"
        if after and not any(a.ok for a in after):  # the API was down, not the cache unused
            return Check(
                name,
                FAILED,
                evidence,
                "no-answer",
                f"{summary}: {_failed_answers(after, len(after))}",
            )
        return Check(
            name, FAILED, evidence, "never", f"{summary} (the backend does not reconnect to Redis?)"
        )
    return Check(
        name, PASSED, [f"a cache answer {obs.cache_again_after:.1f}s after the restore"], "ok"
    )


def fault_seen(obs: Observations) -> bool:
    """A Redis error was logged, an answer under the fault failed (a backend without a timeout
    hangs and logs nothing: its timeouts are what shows the fault), or the answers under the
    fault stopped coming from the cache."""
    if obs.logs:
        return True
    during = [a for a in obs.answers if a.phase == "during"]
    ok = [a for a in during if a.ok]
    return len(ok) < len(during) or not ok or ok[-1].source != "cache"


@dataclass
class Verdict:
    outcome: str  # passed | failed | not observed
    exit_code: int
    checks: list[Check]
    reason: str = ""
    suggestion: str = ""
    advice: list[str] = field(default_factory=list)  # what to change in the backend

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "suggestion": self.suggestion,
            "advice": list(self.advice),
            "checks": [c.to_dict() for c in self.checks],
        }


def judge(
    drill: str,
    obs: Observations,
    *,
    not_observed_reason: str = "",
    restored: bool = True,
) -> Verdict:
    """Every check of this drill, and the outcome that decides the exit code."""
    network = drill in ("break-sg", "break-nacl")
    logs = check_logs(obs)
    checks = [logs, check_api(obs, UNDER_FAULT.get(drill, "")), check_tasks(obs)]
    if drill == "wrong-host":
        checks.append(check_from_db(obs))
    if restored:
        checks.append(check_cache_again(obs))
    if network and not fault_seen(obs):
        checks[0] = Check(logs.name, NOT_OBSERVED, [not_observed_reason, *logs.evidence])
        suggestion = (
            "Run `rexctl chaos break-nacl`: a network ACL cuts open connections too."
            if drill == "break-sg"
            else ""
        )
        return Verdict(
            NOT_OBSERVED,
            int(ExitCode.FAULT_NOT_OBSERVED),
            checks,
            reason=not_observed_reason,
            suggestion=suggestion,
        )
    failed = [c for c in checks if c.status == FAILED]
    if failed:
        return Verdict(
            FAILED,
            int(ExitCode.CHECK_FAILED),
            checks,
            reason="failed: " + ", ".join(c.name for c in failed),
            advice=advice_for(failed),
        )
    return Verdict(PASSED, int(ExitCode.OK), checks)


def timeline(answers: Sequence[Answer], bucket: float = 5.0) -> list[dict[str, Any]]:
    """Answers in buckets of `bucket` seconds: count, failures, sources, p50 and max latency."""
    rows: dict[int, list[Answer]] = {}
    for a in answers:
        rows.setdefault(int(a.t // bucket), []).append(a)
    out = []
    for index in sorted(rows):
        group = rows[index]
        ok = [a.latency_ms for a in group if a.ok]
        out.append(
            {
                "start": round(index * bucket, 3),
                "phase": "/".join(sorted({a.phase for a in group})),
                "requests": len(group),
                "failed": sum(1 for a in group if not a.ok),
                "sources": dict(Counter(a.source or "-" for a in group if a.ok)),
                "p50_ms": round(percentile(ok, 50), 3) if ok else None,
                "max_ms": round(max(ok), 3) if ok else None,
            }
        )
    return out
