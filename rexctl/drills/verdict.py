"""The verdict of a drill: the guide's three checks (plus the drill's own), each with evidence.

Pure functions over what was observed; no AWS, no clock. A network fault (break-sg, break-nacl)
that leaves no trace, i.e. no "Redis error" in the logs and the last answer under the fault still
came from the cache, is "not observed": the drill proved nothing, which is neither a pass nor a
failed check, and it gets its own exit code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rexctl.checks import FAILED, NOT_OBSERVED, PASSED, Check
from rexctl.drills.observe import Answer, LogLine, Task, TaskSample
from rexctl.errors import ExitCode
from rexctl.probe import percentile


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
    if obs.logs_missing_reason:
        return Check(name, FAILED, [obs.logs_missing_reason])
    if not obs.logs and obs.logs_search_error:  # not read to the end: not "none was logged"
        return Check(
            name,
            FAILED,
            [
                "the log search did not finish, so whether a Redis error was logged is not "
                f"known: {obs.logs_search_error}"
            ],
        )
    if not obs.logs:
        return Check(name, FAILED, ['no log event contained "Redis error" during the drill'])
    first = obs.logs[0]
    when = datetime.fromtimestamp(first.timestamp / 1000, UTC).strftime("%H:%M:%S")
    return Check(
        name,
        PASSED,
        [
            f'{len(obs.logs)} log event(s) with "Redis error" in '
            f"{len({e.stream for e in obs.logs})} stream(s)",
            f"first at {when} in {first.stream}: {first.message.strip()[:200]}",
        ],
    )


def check_api(obs: Observations) -> Check:
    name = "API still works"
    answers = [a for a in obs.answers if a.phase in ("during", "after")]
    if not answers:
        return Check(name, FAILED, ["no request was made during the drill"])
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
        return Check(name, FAILED, evidence)
    return Check(name, PASSED, evidence)


def check_tasks(obs: Observations) -> Check:
    watch = obs.watch_task_definition
    name = "new tasks stayed up" if watch else "tasks did not restart"
    samples = [s for s in obs.samples if s.phase == "during"]
    if not samples:
        return Check(name, FAILED, ["the service's tasks were never sampled under the fault"])
    baseline = {t.arn for t in obs.baseline if not watch or t.task_definition == watch}
    stopped: dict[str, str] = {}
    new: set[str] = set()
    mismatch: list[str] = []
    for s in samples:
        running = {t.arn for t in s.tasks if not watch or t.task_definition == watch}
        for arn in baseline - running:
            stopped.setdefault(arn, f"gone from the running tasks at t={s.t:.1f}s")
        for t in s.stopped:
            if t.arn in baseline or (watch and t.task_definition == watch):
                why = t.stopped_reason or t.stop_code or t.last_status
                stopped[t.arn] = f"stopped ({why}) seen at t={s.t:.1f}s"
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
    return Check(name, PASSED if ok else FAILED, evidence)


def check_from_db(obs: Observations) -> Check:
    name = "API answers from the database"
    during = [a for a in obs.answers if a.phase == "during" and a.ok]
    from_cache = [a for a in during if a.source == "cache"]
    evidence = ["sources under the fault: " + _counts([a.source or "-" for a in during])]
    if not during:
        return Check(name, FAILED, ["no successful answer under the fault"])
    if from_cache:
        evidence.append(f"first cache answer at t={from_cache[0].t:.1f}s")
        return Check(name, FAILED, evidence)
    return Check(name, PASSED, evidence)


def check_cache_again(obs: Observations) -> Check:
    name = "cache used again"
    if obs.cache_again_after is None:
        return Check(
            name,
            FAILED,
            [f"no answer came from the cache within {obs.settle_timeout:g}s after the restore"],
        )
    return Check(name, PASSED, [f"a cache answer {obs.cache_again_after:.1f}s after the restore"])


def fault_seen(obs: Observations) -> bool:
    """A Redis error was logged, or the answers under the fault stopped coming from the cache."""
    if obs.logs:
        return True
    during = [a for a in obs.answers if a.phase == "during" and a.ok]
    return not during or during[-1].source != "cache"


@dataclass
class Verdict:
    outcome: str  # passed | failed | not observed
    exit_code: int
    checks: list[Check]
    reason: str = ""
    suggestion: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "suggestion": self.suggestion,
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
    checks = [logs, check_api(obs), check_tasks(obs)]
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
