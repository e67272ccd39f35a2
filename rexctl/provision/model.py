"""The plan's vocabulary: steps with a state, the actions that complete them, blockers.

Secrets never enter a plan: the AUTH token is a `Ref` that only the executor resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from rexctl.errors import ExitCode


class State(StrEnum):
    DONE = "done"
    TODO = "to do"
    CHANGE = "will change"
    MANUAL = "manual"  # rexctl will not do it; the detail says what to do
    INFO = "info"  # informational, or done by another rexctl command
    BLOCKED = "blocked"  # provisioning refuses until this is fixed


STATE_STYLES = {
    "done": "green",
    "to do": "cyan",
    "will change": "yellow",
    "manual": "magenta",
    "info": "dim",
    "blocked": "bold red",
}


@dataclass(frozen=True)
class Ref:
    """A value only known while applying: the output of an earlier action (an id, the token)."""

    name: str

    def __str__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True)
class Action:
    step: int
    kind: str  # one of ORDER
    summary: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "summary": self.summary,
            "params": _jsonable(self.params),
        }


# Execution order: what a later action needs exists before it runs.
ORDER = (
    "create_subnet_group",
    "create_security_group",
    "authorize_ingress",
    "create_auth_secret",
    "read_auth_secret",
    "create_replication_group",
    "modify_replication_group",
)


@dataclass(frozen=True)
class Blocker:
    step: int
    message: str
    hint: str = ""
    exit_code: ExitCode = ExitCode.CHECK_FAILED


@dataclass
class Step:
    number: int
    title: str
    state: State
    detail: str
    actions: list[Action] = field(default_factory=list)
    # Step 9 on a running cache: TLS/AUTH later, a migration interleaved with rollouts
    # (rexctl.provision.secure.SecurePlan), run after the actions; None for every other step.
    secure: Any = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "step": self.number,
            "title": self.title,
            "state": str(self.state),
            "detail": self.detail,
            "actions": [a.to_dict() for a in self.actions],
        }
        if self.secure is not None:
            out["migration"] = self.secure.to_dict()
        return out


@dataclass
class Plan:
    cache_id: str
    steps: list[Step]
    warnings: list[str] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # differences rexctl will not change

    def actions(self) -> list[Action]:
        found = [a for s in self.steps for a in s.actions]
        return sorted(found, key=lambda a: ORDER.index(a.kind))

    @property
    def changes(self) -> bool:
        return any(a.kind != "read_auth_secret" for a in self.actions())

    def only(self, first: int, last: int) -> Plan:
        """Steps first..last (blockers about the inputs, step 0, always stay)."""
        return replace(
            self,
            steps=[s for s in self.steps if first <= s.number <= last],
            blockers=[b for b in self.blockers if b.step == 0 or first <= b.step <= last],
        )

    def block(
        self,
        step: int,
        title: str,
        message: str,
        hint: str = "",
        code: ExitCode = ExitCode.CHECK_FAILED,
    ) -> Step:
        """Record why provisioning must stop here; the step shows as blocked."""
        self.blockers.append(Blocker(step, message, hint, code))
        return Step(step, title, State.BLOCKED, message)

    def manual_step(self, step: int, title: str, why: str) -> Step:
        """A difference rexctl explains but will not change."""
        self.manual.append(f"Step {step}: {why}")
        return Step(step, title, State.MANUAL, why)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache_id": self.cache_id,
            "steps": [s.to_dict() for s in self.steps],
            "warnings": list(self.warnings),
            "blockers": [
                {"step": b.step, "message": b.message, "hint": b.hint} for b in self.blockers
            ],
            "manual": list(self.manual),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class Reporter(Protocol):
    """Where the core sends messages and progress; the CLI maps these to `rexctl.ui`."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def success(self, message: str) -> None: ...

    def progress(self, status: str, elapsed: float) -> None: ...


class RecordingReporter:
    """Keeps every message and progress report (tests, and callers that render later)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.progress_reports: list[tuple[str, float]] = []

    def info(self, message: str) -> None:
        self.events.append(("info", message))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))

    def success(self, message: str) -> None:
        self.events.append(("success", message))

    def progress(self, status: str, elapsed: float) -> None:
        self.progress_reports.append((status, elapsed))

    def text(self) -> str:
        return "\n".join(message for _, message in self.events)
