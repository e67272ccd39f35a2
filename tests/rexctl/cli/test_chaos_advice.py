"""A failed drill ends with what to change in the backend (rexctl chaos's rendering)."""

from __future__ import annotations

import re

import pytest

from rexctl import advice, ui
from rexctl.cli.chaos import _finish
from rexctl.drills.faults import Plan
from rexctl.drills.observe import Answer
from rexctl.drills.runner import DrillRecord, Options
from rexctl.drills.verdict import Observations, judge
from rexctl.errors import CheckFailed


def test_a_failed_verdict_prints_its_summary_first_and_the_advice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # keep table cells on one line
    ui.reset()
    obs = Observations(
        answers=[Answer(1.0, "during", None, None, 5000.0, "timeout after 5.0s")] * 2
        + [Answer(9.0, "after", 200, "cache", 2.0, None)],
        cache_again_after=0.5,
        settle_timeout=30,
    )
    record = DrillRecord("break-nacl", "id-1", "http://x/api/products", Options(),
                         Plan("break-nacl", [], [], {}))  # fmt: skip
    record.verdict = judge("break-nacl", obs)
    record.outcome, record.exit_code = record.verdict.outcome, record.verdict.exit_code
    try:
        with pytest.raises(CheckFailed, match=r"The break-nacl drill failed\."):
            _finish(record, None, as_json=False)
    finally:
        ui.reset()  # the next test's consoles follow its own streams and width
    out, err = capsys.readouterr()
    assert "2 of 2 answers timed out after 5 s while the ACL denied the cache port" in out
    assert re.search(r"API still works +│ failed +│ 2 of 2 answers timed out after 5 s", out)
    assert err.startswith(f"What to change in the backend:\n  - {advice.TIMEOUT}\n"), err
