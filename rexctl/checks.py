"""The one vocabulary of checks: what `rexctl verify`, the drills and `rexctl rehearse` report.

A check has a name, a status and its evidence (lines a person reads). Verify's checks also carry
a short machine-readable `state` (cold, warm, ready, no-events, ...). Every report that holds
checks writes them with `Check.to_dict`, so a reader (rehearse, a script reading `--json`) looks
at `status` whatever produced them.
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

    @property
    def text(self) -> str:
        """The evidence as one text, a line each."""
        return "\n".join(self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "state": self.state,
            "evidence": list(self.evidence),
        }
