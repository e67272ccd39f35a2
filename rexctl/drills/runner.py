"""The one drill course every fault follows (guide step 15), written once.

1. Steady state before: the API answers 2xx, the service runs as many tasks as it wants; the
   running tasks are the baseline.
2. The journal is written durably, before anything changes (`journal.save`).
3. The fault is injected.
4. Observation for `duration` at `interval`: each answer, the tasks and events, "Redis error" logs.
5. Restore, on every exit path: normal end, an exception, Ctrl-C, SIGTERM, SIGHUP. While
   restoring, these signals only set a flag, so a second Ctrl-C cannot abort the restore. A
   restore AWS rejects is retried with backoff; the journal is marked restored only once AWS
   confirms it; after the last attempt the journal stays unrestored and the manual undo commands
   are returned.
6. Steady state after: the API answers and the cache is used again within `settle` seconds.
7. The verdict (`verdict.judge`).

Everything that waits takes `clock` and `sleep`, everything that watches goes through `Sensors`,
and interruption is a `StopFlag`, so tests drive a whole drill with fakes and no real waiting.
"""

from __future__ import annotations

import contextlib
import copy
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rexctl.aws.session import Clients
from rexctl.deadline import DeadlineExceeded, within
from rexctl.drills import journal as journal_mod
from rexctl.drills.changes import ServiceRevisionChange, unreadable
from rexctl.drills.faults import DRILLS, Fault, Plan, make_fault
from rexctl.drills.journal import Journal
from rexctl.drills.observe import Answer, LogLine, Sensors, TaskSample
from rexctl.drills.verdict import Observations, Verdict, judge, timeline
from rexctl.errors import CheckFailed, ExitCode, RexctlError, StateError, UsageError

if TYPE_CHECKING:
    from rexctl.config import Config

MAX_DURATION = 3600.0
AWS_LOOK = 10.0  # seconds a look at the tasks or the logs may take, as a whole
Sink = Callable[[str, Any], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    duration: float = 60.0
    interval: float = 1.0
    settle: float = 120.0  # how long step 6 waits for a cache answer
    log_every: float = 5.0  # CloudWatch Logs is searched at most this often
    restore_attempts: int = 5
    restore_backoff: float = 2.0  # seconds before the 2nd attempt, doubling, at most 30 s


def check_options(opts: Options) -> None:
    """Refuse bad timing options before anything is read or changed."""
    if not 0 < opts.duration <= MAX_DURATION:
        raise UsageError(
            f"--duration must be more than 0 and at most {MAX_DURATION:.0f} seconds (one hour), "
            f"got {opts.duration:g}."
        )
    if not 0.05 <= opts.interval <= 60:
        raise UsageError(f"--interval must be between 0.05 and 60 seconds, got {opts.interval:g}.")
    if opts.interval > opts.duration:
        raise UsageError(
            f"--interval ({opts.interval:g}s) must not be longer than --duration "
            f"({opts.duration:g}s)."
        )
    if not 0 <= opts.settle <= MAX_DURATION:
        raise UsageError(f"--settle must be between 0 and 3600 seconds, got {opts.settle:g}.")


def refuse_if_unrestored(state_dir: Path) -> None:
    """A new drill waits until every journal is restored (or void), damaged ones included."""
    pending = journal_mod.unrestored(state_dir)
    if not pending:
        return
    damaged = [j for j in pending if j.damage]
    if damaged:
        raise UsageError(
            "A drill journal is in the way of a new drill. "
            + " ".join(journal_mod.damage_text(j) for j in damaged),
            hint="`rexctl chaos list` shows every journal and what is wrong with it.",
        )
    ids = ", ".join(f"{j.id} ({j.drill}, {j.status})" for j in pending)
    raise UsageError(
        f"A drill is not restored yet: {ids}. A new drill will not start until it is.",
        hint="Run `rexctl chaos restore` to undo it (its journal says how), then try again.",
    )


class StopFlag:
    """Set by SIGINT/SIGTERM/SIGHUP (or a test); the drill stops observing and restores.

    While `interruptible` (everything but the restore), the signal also raises `_Stop` in the
    main thread, so a drill blocked in a request, an AWS call or a wait starts its restore at
    once, whatever the network is doing. During the restore, signals are only noted.
    """

    def __init__(self) -> None:
        self.signals: list[str] = []
        self.interruptible = False

    def is_set(self) -> bool:
        return bool(self.signals)

    def request(self, why: str = "stop") -> None:
        self.signals.append(why)


class _Stop(Exception):
    """Raised by the interruptible sleep when a stop was requested."""


@contextmanager
def deferred_signals(
    stop: StopFlag, on_signal: Callable[[str], None] | None = None
) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP (the terminal or SSH session went away) set `stop` instead of
    killing, and raise `_Stop` only while `stop.interruptible` (main thread only; a signal
    that is ignored stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        stop.request(name)
        if on_signal is not None:
            with contextlib.suppress(Exception):  # e.g. stderr gone with the terminal (SIGHUP)
                on_signal(name)
        if stop.interruptible:
            stop.interruptible = False  # once: the restore that follows is not interruptible
            raise _Stop()

    # A signal the caller ignores stays ignored: `nohup rexctl chaos ... &` must survive a logout.
    watched = [
        s
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(s) is not signal.SIG_IGN
    ]
    old = {s: signal.signal(s, handler) for s in watched}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclass
class RestoreResult:
    ok: bool  # nothing the journal recorded is left in place
    attempts: int
    errors: list[str] = field(default_factory=list)
    manual_undo: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # differences to the "before" describe
    void: str = ""  # why the journal is void (its sandbox is gone) instead of restored

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_journaled(value: Any) -> Any:
    """`value` as a journal on disk holds it: redacted, through JSON (tuples become lists)."""
    return json.loads(json.dumps(journal_mod.redact(value), default=str))


def diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Where two normalized describes differ, as short paths (at most 20)."""
    out: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            out += diff(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
    elif before != after:
        out.append(f"{path}: {before!r} -> {after!r}"[:300])
    return out[:20]


def save_journal(fault: Fault, journal: Journal, state_dir: Path) -> None:
    """Write the journal with the manual undo of what it says now (`journal.save`: durably)."""
    journal.manual_undo = fault.manual_undo(journal.changes, journal.aws)
    journal_mod.save(journal, state_dir)


def void_if_sandbox_gone(journal: Journal, state_dir: Path) -> str:
    """Mark a journal void when the sandbox it ran against is gone (its resources went with
    it); returns why, or '' (always '' for a journal of AWS: only the user voids those)."""
    from rexctl.sandbox.state import gone

    reason = gone(journal.sandbox) if journal.sandbox and not journal.newer else ""
    if not reason:
        return ""
    journal.status = journal_mod.VOID
    journal.void_reason = f"{reason}: what the drill changed no longer exists"
    journal.damage, journal.partial = [], False  # nothing is left that the file could name
    journal.note(f"void: {journal.void_reason}")
    with contextlib.suppress(StateError):  # void either way; the next look finds it gone too
        journal_mod.save(journal, state_dir)
    return journal.void_reason


def restore_with_retry(
    fault: Fault,
    journal: Journal,
    state_dir: Path,
    *,
    attempts: int = 5,
    backoff: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> RestoreResult:
    """Undo the journal's changes until AWS confirms it, or give up and say how to do it by hand.

    Each attempt runs the (idempotent) restore and then re-describes: only an empty list of
    problems marks the journal restored. A change this rexctl cannot read (`UnreadableChange`)
    is never taken as undone, nor is a journal whose file was cut short in its changes
    (`partial`): the rest is restored, and the journal stays unrestored until it is discarded.
    A journal of a newer rexctl is not acted on at all. A journal whose sandbox is gone is void
    (checked before each attempt: the sandbox may die during the drill). A journal that cannot
    be written is said in `errors`; the restore goes on.
    """
    if journal.newer:
        reason = journal.damage[0] if journal.damage else "a newer journal format"
        return RestoreResult(False, 0, [f"not restored: {reason}; upgrade rexctl to restore it"])
    errors: list[str] = []
    cannot = unreadable(journal.changes)

    def save() -> None:  # what the restore learns from AWS (new association ids) is journaled
        try:
            save_journal(fault, journal, state_dir)
        except StateError as exc:
            if exc.message not in errors:
                errors.append(exc.message)

    for attempt in range(1, attempts + 1):
        void = void_if_sandbox_gone(journal, state_dir)
        if void:
            return RestoreResult(True, attempt - 1, errors, [], [], void)
        try:
            fault.restore(journal.changes, save)
            problems = fault.confirm_restored(journal.changes)
            if not problems and (cannot or journal.partial):  # retrying cannot read more
                what = "; ".join(c.label() for c in cannot) or (
                    "what the journal file lost when it was cut short "
                    f"({'; '.join(journal.damage) or 'damaged'})"
                )
                errors.append(f"attempt {attempt}: restored what could be read; cannot undo {what}")
                attempts = attempt
                break
            if not problems:
                after = fault.snapshot(journal.changes)
                drift = diff(as_journaled(journal.before), as_journaled(after))
                if journal.damage:
                    journal.note(f"read from a damaged file ({'; '.join(journal.damage)})")
                    journal.damage = []
                journal.status = journal_mod.RESTORED
                journal.restored_at = journal_mod.now_iso()
                journal.note(f"restored (attempt {attempt}), confirmed by AWS")
                save()
                return RestoreResult(True, attempt, errors, [], drift)
            errors.append(f"attempt {attempt}: not confirmed: {'; '.join(problems)}")
        except (Exception, KeyboardInterrupt) as exc:  # every failure is retried
            message = (
                exc.message if isinstance(exc, RexctlError) else f"{type(exc).__name__}: {exc}"
            )
            errors.append(f"attempt {attempt}: {message}")
        if attempt < attempts:
            sleep(min(backoff * 2 ** (attempt - 1), 30.0))
    journal.status = journal_mod.RESTORE_FAILED
    journal.manual_undo = fault.manual_undo(journal.changes, journal.aws)
    journal.note(f"restore failed after {attempts} attempts: {errors[-1] if errors else ''}")
    save()
    return RestoreResult(False, attempts, errors, journal.manual_undo)


@dataclass
class DrillRecord:
    """Everything a drill did and saw: what `--report` writes and `--json` prints."""

    drill: str
    id: str
    url: str
    options: Options
    plan: Plan
    outcome: str = ""  # passed | failed | not observed | interrupted | error | restore failed
    exit_code: int = 0
    journal: Journal | None = None
    observations: Observations = field(default_factory=Observations)
    verdict: Verdict | None = None
    restore: RestoreResult | None = None
    error: str = ""
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "drill": self.drill,
            "id": self.id,
            "url": self.url,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "options": asdict(self.options),
            "plan": {"summary": self.plan.summary, "warnings": self.plan.warnings},
            "journal": journal_mod.redact(self.journal.to_dict()) if self.journal else None,
            "observations": self.observations.to_dict(),
            "verdict": self.verdict.to_dict() if self.verdict else None,
            "timeline": timeline(self.observations.answers),
            "restore": self.restore.to_dict() if self.restore else None,
            "error": self.error or None,
            "hint": self.hint or None,
        }


@dataclass
class Course:
    """What one run needs besides the fault and its plan."""

    sensors: Sensors
    state_dir: Path
    aws_target: dict[str, str]  # region, profile, endpoint_url (journaled for a later restore)
    url: str
    options: Options = field(default_factory=Options)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    sink: Sink = lambda kind, data: None
    stop: StopFlag = field(default_factory=StopFlag)
    drill_id: str = ""
    sandbox: dict[str, str] = field(default_factory=dict)  # the sandbox it runs against, if any


def run(fault: Fault, plan: Plan, course: Course) -> DrillRecord:
    """Run the drill course for a planned fault; returns the record (it never leaves a fault
    in place: whatever happens after the journal is written, the restore runs)."""
    return DrillRun(fault, plan, course).run()


class DrillRun:
    """One run of the drill course, one method per phase (`run` strings them together):

    `steady_state_before` → `write_journal` → `inject` → `observe` → `restore` (always, once
    the journal is on disk) → `steady_state_after` → `judge`. The record is filled in as it goes.
    """

    def __init__(self, fault: Fault, plan: Plan, course: Course) -> None:
        self.fault = fault
        self.plan = plan
        self.c = course
        self.record = DrillRecord(
            drill=fault.name,
            id=course.drill_id or journal_mod.new_drill_id(fault.name),
            url=course.url,
            options=course.options,
            plan=plan,
        )
        self.obs = self.record.observations
        self.obs.settle_timeout = course.options.settle
        self.t0 = course.clock()
        self.obs.started_at = datetime.fromtimestamp(course.wall(), UTC).isoformat()
        self.journal: Journal | None = None
        self.start_ms = 0  # wall clock when the fault went in: the log search starts there
        self.interrupted = False
        self.failure: RexctlError | None = None  # what ended inject/observe early, if anything
        self.observe_until: float | None = None  # while observing: when it ends (clock)
        self._seen_logs: set[tuple[str, int, str]] = set()

    # --- the course ---------------------------------------------------------------------------

    def run(self) -> DrillRecord:
        c = self.c
        self.obs.logs_missing_reason = c.sensors.logs_missing_reason
        with deferred_signals(c.stop, lambda name: c.sink("signal", name)):
            c.stop.interruptible = True
            if not self.steady_state_before():
                return self.record  # nothing was changed
            c.stop.interruptible = False  # a journal is written whole or not at all
            try:
                self.write_journal()
            except StateError as exc:  # nothing was changed: one message, exit 2
                self.record.outcome, self.record.exit_code = "error", int(exc.exit_code)
                self.record.error, self.record.hint = exc.message, exc.hint or ""
                self.record.journal = None
                return self.record
            self.start_ms = int(c.wall() * 1000)
            try:
                c.stop.interruptible = True
                if c.stop.is_set():  # a signal while the journal was written
                    raise _Stop()
                self.inject()
                self.observe()
            except (KeyboardInterrupt, _Stop):
                self.interrupted = True
            except RexctlError as exc:
                self.failure = exc
            finally:
                c.stop.interruptible = False
                self.restore()  # whatever happened; signals only set the flag meanwhile
            c.stop.interruptible = not c.stop.is_set()
            self.steady_state_after()
            c.stop.interruptible = False
        self.judge()
        return self.record

    def steady_state_before(self) -> bool:
        """1. The API answers and the service runs what it wants; False (and the record says
        why) when not, or when interrupted: nothing has changed yet, so the run just ends."""
        c, record = self.c, self.record
        try:
            c.sink("phase", "steady state before")
            first = self.answer("before")
            if not first.ok:
                raise CheckFailed(
                    f"Steady state not met before the drill: {c.url} answered "
                    f"{first.error or first.status}. Nothing was changed.",
                    hint="Fix the API (or pass the right --url) before breaking anything.",
                )
            before = self.sample("before")
            if before.running != before.desired:
                raise CheckFailed(
                    f"Steady state not met before the drill: the service runs {before.running} "
                    f"of {before.desired} tasks. Nothing was changed.",
                    hint="Wait for the service to settle (`rexctl verify`), then try again.",
                )
            self.obs.baseline = list(before.tasks)
            # Checked again here: another drill may have started while this one was confirmed.
            refuse_if_unrestored(c.state_dir)
            if c.stop.is_set():
                raise _Stop()
        except (KeyboardInterrupt, _Stop):
            record.outcome, record.exit_code = "interrupted", int(ExitCode.INTERRUPTED)
            record.error = "Interrupted before anything was changed."
            return False
        except RexctlError as exc:
            record.outcome = "failed" if isinstance(exc, CheckFailed) else "error"
            record.exit_code = int(exc.exit_code)
            record.error, record.hint = exc.message, exc.hint or ""
            return False
        return True

    def write_journal(self) -> Journal:
        """2. The journal, durably, before the first change."""
        c = self.c
        journal = Journal(
            id=self.record.id,
            drill=self.fault.name,
            created_at=journal_mod.now_iso(),
            aws=dict(c.aws_target),
            changes=copy.deepcopy(self.plan.changes),  # the journal's own: inject fills them in
            summary=self.plan.summary,
            before=self.plan.before,
            manual_undo=self.fault.manual_undo(self.plan.changes, c.aws_target),
            sandbox=dict(c.sandbox),
        )
        journal.note("journal written before any change")
        self.journal = self.record.journal = journal
        self.save()
        return journal

    def save(self) -> None:
        save_journal(self.fault, self._journal(), self.c.state_dir)

    def inject(self) -> None:
        """3. The fault goes in (the fault journals what it creates through `save`)."""
        c, fault, journal = self.c, self.fault, self._journal()
        c.sink("phase", "inject")
        fault.sleep, fault.clock = self.nap, c.clock  # a rollout wait gives up on Ctrl-C
        self.mark("inject")
        fault.inject(journal, self.save)
        self.mark("injected")
        journal.manual_undo = fault.manual_undo(journal.changes, c.aws_target)
        journal.note("fault injected")
        self.save()
        if fault.expect_new_tasks:
            self.obs.watch_task_definition = next(
                (ch.bad for ch in journal.changes if isinstance(ch, ServiceRevisionChange)), ""
            )
            self.obs.baseline = list(self.sample("injected").tasks)

    def observe(self) -> None:
        """4. For `duration`, every `interval`: an answer and the tasks; the logs every
        `log_every` seconds. Nothing new starts once `duration` is over, and whatever is under
        way then has its own deadline (the request timeout at most: `margin`)."""
        c = self.c
        c.sink("phase", "observe")
        start = c.clock()
        deadline = self.observe_until = start + c.options.duration
        next_logs = start + c.options.log_every
        tick = 0
        while not c.stop.is_set() and c.clock() < deadline:
            if self.sandbox_gone():
                break  # what the drill changed went with it: nothing left to watch or undo
            self.answer("during")
            if c.clock() >= deadline:
                break
            self.sample_during()
            if c.clock() >= next_logs and c.clock() < deadline:
                self.poll_logs(self.start_ms, None)
                next_logs = c.clock() + c.options.log_every
            tick += 1
            self.nap(max(0.0, min(start + tick * c.options.interval, deadline) - c.clock()))
        self.observe_until = None
        if c.stop.is_set():
            self.interrupted = True

    def restore(self) -> RestoreResult:
        """5. Undo, retried until AWS confirms it (or the manual undo is all that is left)."""
        c = self.c
        self.fault.sleep = c.sleep
        _emit_quietly(c.sink, "phase", "restore")
        self.mark("restore")
        result = self.record.restore = restore_with_retry(
            self.fault,
            self._journal(),
            c.state_dir,
            attempts=c.options.restore_attempts,
            backoff=c.options.restore_backoff,
            sleep=c.sleep,
        )
        self.mark("restored")
        _emit_quietly(c.sink, "restored", result)
        return result

    def sandbox_gone(self) -> bool:
        """The sandbox the drill runs against died (cheap: files and /proc, no request)."""
        from rexctl.sandbox.state import gone

        reason = gone(self.c.sandbox) if self.c.sandbox else ""
        if reason:
            self.obs.notes.append(f"at t={self.since():.1f}s {reason}")
        return bool(reason)

    def steady_state_after(self) -> None:
        """6. The cache is used again (skipped when interrupted: the user wants out), and the
        last log search, up to the restore (neither when the sandbox is gone)."""
        c = self.c
        if self.record.restore is not None and self.record.restore.void:
            return
        restored_ms = int(c.wall() * 1000)
        self.interrupted = self.interrupted or c.stop.is_set()
        restore = self.record.restore
        if (
            restore is not None
            and restore.ok
            and not restore.void
            and not self.interrupted
            and self.failure is None
        ):
            try:
                c.sink("phase", "steady state after")
                self.settle()
            except (KeyboardInterrupt, _Stop):
                self.interrupted = True
        try:
            self.poll_logs(self.start_ms, restored_ms)
        except (KeyboardInterrupt, _Stop):
            self.interrupted = True

    def settle(self) -> None:
        c = self.c
        start = c.clock()
        deadline = start + c.options.settle
        while True:
            a = self.answer("after")
            if a.ok and a.source == "cache":
                self.obs.cache_again_after = round(c.clock() - start, 3)
                return
            if c.clock() + c.options.interval > deadline:
                return
            self.nap(c.options.interval)

    def judge(self) -> None:
        """7. The outcome: a failed restore first, then an interruption, an error, the verdict."""
        record, fault, failure = self.record, self.fault, self.failure
        restore = record.restore
        assert restore is not None
        if restore.void:
            record.outcome, record.exit_code = "sandbox gone", int(ExitCode.AWS_ERROR)
            record.error = (
                f"The {fault.name} drill ended without a verdict: {restore.void}. Journal "
                f"{self._journal().id} is void."
            )
            record.hint = "Start the sandbox again (`rexctl sandbox up`) and rerun the drill."
        elif not restore.ok:
            record.outcome, record.exit_code = "restore failed", int(ExitCode.AWS_ERROR)
            record.error = (
                f"The {fault.name} drill could not be undone: AWS kept rejecting the restore "
                f"({restore.errors[-1] if restore.errors else 'no detail'}). "
                f"Journal {self._journal().id} stays unrestored."
            )
            record.hint = "Undo it by hand:\n  " + "\n  ".join(restore.manual_undo)
        elif self.interrupted:
            record.outcome, record.exit_code = "interrupted", int(ExitCode.INTERRUPTED)
            record.error = f"Interrupted; the {fault.name} drill was undone (AWS confirmed)."
        elif failure is not None:
            record.outcome = "failed" if isinstance(failure, CheckFailed) else "error"
            record.exit_code = int(failure.exit_code)
            record.error, record.hint = failure.message, failure.hint or ""
        else:
            record.verdict = judge(
                fault.name, self.obs, not_observed_reason=fault.not_observed_reason, restored=True
            )
            record.outcome, record.exit_code = record.verdict.outcome, record.verdict.exit_code

    # --- the senses, and waiting ---------------------------------------------------------------

    def _journal(self) -> Journal:
        assert self.journal is not None, "the journal is written before anything else"
        return self.journal

    def since(self) -> float:
        return round(self.c.clock() - self.t0, 3)

    def mark(self, turn: str) -> None:
        """When the course took a turn (the report draws the fault window from these)."""
        self.obs.marks[turn] = self.since()

    def nap(self, seconds: float) -> None:
        """Sleep that gives up when a stop is requested (checked at least every 0.2 s)."""
        c = self.c
        end = c.clock() + seconds
        while True:
            if c.stop.is_set():
                raise _Stop()
            left = end - c.clock()
            if left <= 0:
                return
            c.sleep(min(left, 0.2))

    def bounded(self, limit: float, operation: Callable[[], T], what: str) -> T:
        """`operation()` with a deadline on the whole of it (`rexctl.deadline.within`): `limit`
        seconds, and while observing, never past the end of the observation plus `margin`."""
        if self.observe_until is not None:
            left = self.observe_until + self.margin - self.c.clock()
            limit = min(limit, max(0.1, left))
        return within(limit, operation, what)

    @property
    def margin(self) -> float:
        """How long observation may outlive `duration`: one request's timeout."""
        return self.c.sensors.timeout

    def answer(self, phase: str) -> Answer:
        t0 = time.monotonic()
        try:
            status, source, ms, error = self.bounded(
                self.c.sensors.timeout + 1.0, self.c.sensors.probe, "the request"
            )
        except DeadlineExceeded as exc:  # the probe bounds itself; this is the backstop
            status, source, ms, error = None, None, (time.monotonic() - t0) * 1000, exc.message
        a = Answer(self.since(), phase, status, source, ms, error)
        self.obs.answers.append(a)
        self.c.sink("answer", a)
        return a

    def sample(self, phase: str = "during") -> TaskSample:
        running, desired, tasks, stopped, events = self.bounded(
            AWS_LOOK, self.c.sensors.tasks, "a look at the service's tasks"
        )
        s = TaskSample(self.since(), running, desired, tasks, stopped, events, phase)
        self.obs.samples.append(s)
        self.c.sink("tasks", s)
        return s

    def sample_during(self) -> None:
        try:
            self.sample()
        except RexctlError as exc:  # one failed look at the tasks does not end the drill
            self.obs.notes.append(f"task sample failed at t={self.since():.1f}s: {exc.message}")

    def poll_logs(self, start_ms: int, end_ms: int | None) -> None:
        logs = self.c.sensors.logs
        if logs is None:
            return
        try:
            found = self.bounded(AWS_LOOK, lambda: logs(start_ms, end_ms), "the log search")
        except RexctlError as exc:  # LogSearchIncomplete too: it stopped at its page limit
            self.obs.notes.append(f"log search failed at t={self.since():.1f}s: {exc.message}")
            self.obs.logs_search_error = exc.message
            return
        # Each search reads from the start of the fault: the last one that finished decides.
        self.obs.logs_search_error = (
            ""
            if getattr(found, "complete", True)
            else "the log search stopped at its page limit before the end (what it found is kept)"
        )
        fresh: list[LogLine] = []
        for e in found:
            key = (e.stream, e.timestamp, e.message)
            if key not in self._seen_logs:
                self._seen_logs.add(key)
                fresh.append(e)
        self.obs.logs.extend(fresh)
        self.obs.logs.sort(key=lambda e: (e.timestamp, e.stream))
        self.c.sink("logs", fresh)


def _emit_quietly(sink: Sink, kind: str, data: Any) -> None:
    """Tell the sink, but let nothing it raises (not even KeyboardInterrupt) stop the restore."""
    with contextlib.suppress(Exception, KeyboardInterrupt):
        sink(kind, data)


def prepare(
    name: str,
    clients: Clients,
    cfg: Config,
    *,
    url: str,
    options: Options,
    yes: bool,
    interactive: bool,
    **fault_kwargs: Any,
) -> tuple[Fault, Plan, str]:
    """Every refusal that needs no change, then the read-only plan: (fault, plan, API URL)."""
    if name not in DRILLS:
        raise UsageError(f"Unknown drill {name!r}. Drills: {', '.join(DRILLS)}.")
    check_options(options)
    cfg.require("ecs.cluster", "ecs.service")
    url = url or cfg.app.url
    if not url:
        cfg.require("app.url")
    if not yes and not interactive:
        raise UsageError(
            f"`rexctl chaos {name}` changes AWS resources and there is no terminal to confirm "
            "it: pass --yes.",
        )
    refuse_if_unrestored(cfg.state_dir)
    fault = make_fault(name, clients, **fault_kwargs)
    return fault, fault.plan(cfg), url


# --- `rexctl chaos restore` -------------------------------------------------------------------


@dataclass
class RestoreOutcome:
    journal: Journal
    result: RestoreResult

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.journal.id,
            "drill": self.journal.drill,
            "status": self.journal.status,
            **self.result.to_dict(),
        }


def pending_journals(state_dir: Path, drill_id: str = "") -> list[Journal]:
    """The unrestored journals (just `drill_id` when given; refusing an unknown id)."""
    pending = journal_mod.unrestored(state_dir)
    if drill_id:
        chosen = [j for j in pending if j.id == drill_id]
        if not chosen:
            known = [j.id for j in journal_mod.list_journals(state_dir)]
            state = "is already restored" if drill_id in known else "has no journal"
            raise UsageError(
                f"Drill {drill_id} {state} in {journal_mod.drills_dir(state_dir)}.",
                hint="`rexctl chaos list` shows the journals.",
            )
        return chosen
    return pending


def restore_pending(
    journals: list[Journal],
    make_fault: Callable[[Journal], Fault],
    state_dir: Path,
    *,
    attempts: int = 5,
    backoff: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    on_signal: Callable[[str], None] | None = None,
) -> list[RestoreOutcome]:
    """Undo each journal with nothing but what it says. SIGINT/SIGTERM cannot stop it halfway:
    they only reach `on_signal` (to tell the user), and every journal is still restored. A
    journal whose sandbox is gone is made void without a call to anything."""
    outcomes = []
    with deferred_signals(StopFlag(), on_signal):
        for j in journals:
            void = void_if_sandbox_gone(j, state_dir)
            if void:
                outcomes.append(RestoreOutcome(j, RestoreResult(True, 0, void=void)))
                continue
            if j.drill not in DRILLS and not j.newer:
                why = f"it does not say which drill wrote it ({'; '.join(j.damage) or j.drill})"
                outcomes.append(RestoreOutcome(j, RestoreResult(False, 0, [f"cannot: {why}"])))
                continue
            fault = make_fault(j)
            result = restore_with_retry(
                fault, j, state_dir, attempts=attempts, backoff=backoff, sleep=sleep
            )
            outcomes.append(RestoreOutcome(j, result))
    return outcomes


def void_dead_sandboxes(state_dir: Path) -> list[Journal]:
    """Make void every unrestored journal whose sandbox is gone (what `rexctl rehearse` does
    before its drills: a sandbox that died is the sandbox's fault, not the user's)."""
    return [j for j in journal_mod.unrestored(state_dir) if void_if_sandbox_gone(j, state_dir)]


# --- `rexctl chaos discard` -------------------------------------------------------------------


def left_in_place(journal: Journal) -> list[str]:
    """What may stay in place when `journal` is discarded, in words (for the confirmation)."""
    if journal.status in journal_mod.SETTLED:
        return []
    lines = [f"What it planned: {line}" for line in journal.summary if not line.startswith("Undo")]
    lines += [f"By hand: {cmd}" for cmd in journal.manual_undo]
    if not lines:
        lines.append(
            "Nothing of what the drill changed could be read from the journal: look for what "
            f"carries the tag rexctl:drill={journal.id} in the account (an ACL copy, a "
            "task-definition revision) and the cache security group's inbound rule."
        )
    return lines


def discard(state_dir: Path, journal: Journal) -> Path:
    """Set the journal aside (`journal.discard`): it no longer blocks drills or warns."""
    return journal_mod.discard(journal, state_dir)
