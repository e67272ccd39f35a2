"""The one vocabulary of checks: what `rexctl verify`, the drills and `rexctl rehearse` report.

A check has a name, a status and its evidence (lines a person reads). Checks also carry a short
machine-readable `state` (cold, warm, ready, no-events, timeouts, health-checks, ...), and a
failed drill check a `summary`: the one sentence that says why ("2 of 2 answers timed out after
5 s while the ACL denied the cache port"), shown first. Every report that holds checks writes
them with `Check.to_dict`, so a reader (rehearse, a script reading `--json`) looks at `status`
whatever produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PASSED = "passed"
FAILED = "failed"
WARNING = "warning"  # verify: worth a look, does not fail the verdict
NOT_OBSERVED = "not observed"  # a drill: the fault was in place, nothing showed it


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASSED | FAILED | WARNING | NOT_OBSERVED
    evidence: Sequence[str]
    state: str = ""
    summary: str = ""  # why it failed, in one sentence ('' when the evidence says it all)

    @property
    def text(self) -> str:
        """The summary and the evidence as one text, a line each."""
        return "\n".join([self.summary, *self.evidence] if self.summary else self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "state": self.state,
            "summary": self.summary,
            "evidence": list(self.evidence),
        }
