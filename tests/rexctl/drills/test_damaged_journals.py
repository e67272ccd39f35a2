"""Issue 11: a journal file that cannot be read as a journal is never dropped silently.

Each case is a real fault put in place in moto (break-nacl: the cache's subnets on a copy of
their ACL), whose journal file is then damaged the way files get damaged: cut short, replaced by
something that is not an object, fields of the wrong type, a field missing (another rexctl
version), a newer format. Every time: the journal is listed with what is wrong, it blocks a new
drill, a restore undoes what can be read of it (and never calls a journal it could only partly
read restored), and `discard` sets it aside.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rexctl.drills import journal as journal_mod
from rexctl.drills import runner
from rexctl.drills.changes import AclCloneChange
from rexctl.drills.faults import make_fault
from rexctl.drills.journal import Journal
from rexctl.errors import StateError, UsageError
from tests.rexctl.drills.conftest import Aws
from tests.rexctl.drills.world import full_acl

DRILL_ID = "20260101T000000Z-break-nacl-abc123"


def nacl_in_place(aws: Aws) -> tuple[Journal, Path]:
    """break-nacl injected, its journal saved after every step (as a drill does)."""
    fault = make_fault("break-nacl", aws.clients)
    plan = fault.plan(aws.config())
    journal = Journal(
        id=DRILL_ID,
        drill="break-nacl",
        created_at=journal_mod.now_iso(),
        aws={"region": "us-east-1", "profile": "", "endpoint_url": ""},
        changes=plan.changes,
        summary=plan.summary,
        before=plan.before,
        manual_undo=[],
    )
    path = journal_mod.save(journal, aws.state_dir)
    fault.inject(journal, lambda: runner.save_journal(fault, journal, aws.state_dir))
    return journal, path


def restore_all(aws: Aws) -> runner.RestoreOutcome:
    (outcome,) = runner.restore_pending(
        runner.pending_journals(aws.state_dir),
        lambda j: make_fault(j.drill, aws.clients),
        aws.state_dir,
        sleep=lambda s: None,
    )
    return outcome


def cut(path: Path, text: str, after: str) -> None:
    """Write `text` cut right after the first occurrence of `after` (a crash mid-copy, a full
    disk under an editor, a truncated backup)."""
    path.write_text(text[: text.index(after) + len(after)], encoding="utf-8")


def test_a_journal_cut_after_its_changes_is_reported_blocks_and_restores_fully(aws: Aws) -> None:
    before = full_acl(aws)
    _, path = nacl_in_place(aws)
    text = path.read_text(encoding="utf-8")
    cut(path, text, '"created_at": ')  # keys are sorted: aws, before, changes, created_at, ...

    [listed] = journal_mod.list_journals(aws.state_dir)
    assert listed.id == DRILL_ID and listed.drill == "break-nacl", "the id names the drill"
    assert listed.damage[0].startswith("it is not valid JSON (Expecting value: line ")
    assert listed.damage[0].endswith("only its beginning could be read")
    assert not listed.partial, "the changes were whole: only what came after them was lost"
    assert isinstance(listed.changes[0], AclCloneChange) and listed.changes[0].clone_acl_id
    summary = journal_mod.unrestored_summary(aws.state_dir)
    assert summary.startswith(f"Drill journal {path} cannot be read as a journal: it is not valid")
    assert f"`rexctl chaos restore --drill {DRILL_ID}` undoes what it recorded" in summary
    with pytest.raises(UsageError) as refused:
        runner.refuse_if_unrestored(aws.state_dir)
    assert refused.value.message.startswith("A drill journal is in the way of a new drill.")

    outcome = restore_all(aws)
    assert outcome.result.ok, outcome.result.errors
    assert full_acl(aws) == before, "the subnets are back on their ACL and the copy is gone"
    again = journal_mod.load(path)  # written whole again: no damage left
    assert again.status == journal_mod.RESTORED and again.damage == []
    assert any("read from a damaged file" in h for h in again.history)
    assert (
        path.with_name(path.name + ".damaged").read_text(encoding="utf-8")
        == text[: text.index('"created_at": ') + len('"created_at": ')]
    ), "the damaged bytes are kept beside it"
    assert runner.pending_journals(aws.state_dir) == []


def test_a_journal_cut_inside_its_changes_is_never_called_restored(aws: Aws) -> None:
    """The copy's id was read, the subnet list was cut: rexctl puts back what it can (here all
    of it: it asks AWS which subnets use the copy), but the journal may have recorded more, so
    it stays restore-failed until the user discards it."""
    before = full_acl(aws)
    _, path = nacl_in_place(aws)
    text = path.read_text(encoding="utf-8")
    cut(path, text, '"subnets": [')

    [listed] = journal_mod.list_journals(aws.state_dir)
    assert listed.partial
    (change,) = listed.changes
    assert isinstance(change, AclCloneChange) and change.subnets == []

    outcome = restore_all(aws)
    assert not outcome.result.ok
    assert outcome.result.errors[-1].startswith(
        "attempt 1: restored what could be read; cannot undo what the journal file lost when it "
        "was cut short (it is not valid JSON"
    )
    assert full_acl(aws) == before, "every subnet on the copy went back, the copy is deleted"
    [still] = journal_mod.list_journals(aws.state_dir)
    assert still.status == journal_mod.RESTORE_FAILED and still.partial and still.damage
    assert runner.pending_journals(aws.state_dir) == [still], "it still blocks new drills"

    moved = runner.discard(aws.state_dir, still)
    assert moved == aws.state_dir / "drills" / "discarded" / f"{DRILL_ID}.json"
    assert moved.with_name(moved.name + ".damaged").is_file(), "the damaged bytes go with it"
    assert journal_mod.list_journals(aws.state_dir) == []
    runner.refuse_if_unrestored(aws.state_dir)  # a new drill may start


@pytest.mark.parametrize(
    ("content", "damage"),
    [
        ("[]", "it is a list, not a JSON object"),
        ("null", "it is null, not a JSON object"),
        (
            "",
            "it is not JSON (Expecting value: line 1 column 1 (char 0)), and nothing of it "
            "could be read",
        ),
    ],
)
def test_a_journal_that_is_not_an_object_is_reported_not_crashed_on(
    aws: Aws, content: str, damage: str
) -> None:
    """`[]` or `null` made every command crash with an AttributeError."""
    path = journal_mod.journal_path(aws.state_dir, DRILL_ID)
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    [listed] = journal_mod.list_journals(aws.state_dir)
    assert listed.damage == [damage] and listed.partial and listed.changes == []
    assert listed.drill == "break-nacl"
    assert DRILL_ID in journal_mod.unrestored_summary(aws.state_dir)
    outcome = restore_all(aws)
    assert not outcome.result.ok, "nothing could be read: nothing is called restored"
    assert path.with_name(path.name + ".damaged").read_text(encoding="utf-8") == content
    [after] = journal_mod.list_journals(aws.state_dir)  # written again, saying what was wrong
    assert (after.status, after.damage, after.partial) == (
        journal_mod.RESTORE_FAILED,
        [damage],
        True,
    )


def test_fields_of_the_wrong_type_are_reported_and_what_is_right_is_used(aws: Aws) -> None:
    """Wrong field types gave a traceback from `chaos restore`."""
    before = full_acl(aws)
    _, path = nacl_in_place(aws)
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(status=5, history="oops", summary=[1, 2], aws={"region": "us-east-1", "n": 3})
    path.write_text(json.dumps(data), encoding="utf-8")
    [listed] = journal_mod.list_journals(aws.state_dir)
    assert listed.damage == [
        "`status` is a number, not a string",
        "`history` is a string, not a list",
        "`summary` holds something other than text",
        "`aws` holds something other than text",
    ]
    assert listed.status == journal_mod.PENDING and not listed.partial
    assert restore_all(aws).result.ok
    assert full_acl(aws) == before


def test_a_journal_missing_a_field_another_version_did_not_write_still_restores(
    aws: Aws,
) -> None:
    """A journal from another rexctl version with a field missing was skipped as unreadable."""
    before = full_acl(aws)
    _, path = nacl_in_place(aws)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["summary"], data["format"]
    path.write_text(json.dumps(data), encoding="utf-8")
    [listed] = journal_mod.list_journals(aws.state_dir)
    assert listed.damage == ["`summary` is missing"] and listed.format == 1
    assert restore_all(aws).result.ok
    assert full_acl(aws) == before
    assert journal_mod.load(path).format == journal_mod.FORMAT


def test_a_journal_of_a_newer_rexctl_is_refused_and_never_rewritten(aws: Aws) -> None:
    _, path = nacl_in_place(aws)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["format"] = journal_mod.FORMAT + 1
    data["changes"][0]["type"] = "nacl-clone-v3"
    original = json.dumps(data)
    path.write_text(original, encoding="utf-8")
    [listed] = journal_mod.list_journals(aws.state_dir)
    assert listed.newer
    assert listed.damage == [
        f"it was written by a newer rexctl (journal format {journal_mod.FORMAT + 1}; this rexctl "
        f"reads formats 1 to {journal_mod.FORMAT})"
    ]
    assert "`rexctl chaos restore --drill" not in journal_mod.damage_text(listed)
    outcome = restore_all(aws)
    assert not outcome.result.ok and outcome.result.attempts == 0
    assert outcome.result.errors == [
        f"not restored: {listed.damage[0]}; upgrade rexctl to restore it"
    ]
    assert path.read_text(encoding="utf-8") == original, "not a byte changed"
    with pytest.raises(StateError, match="newer rexctl"):
        journal_mod.save(listed, aws.state_dir)
    with pytest.raises(UsageError):
        runner.refuse_if_unrestored(aws.state_dir)


def test_salvage_reads_the_longest_beginning_and_says_where_it_was_cut() -> None:
    text = '{"a": [1, {"b": "x,]}"}, 3], "changes": [{"t": 1}, {"t": 2, "u": [4, 5'
    value, where = journal_mod.salvage(text) or (None, ())
    assert value == {"a": [1, {"b": "x,]}"}, 3], "changes": [{"t": 1}, {"t": 2, "u": [4]}]}
    assert where == ("changes", 1, "u", 0), "cut after the first element of u, in changes[1]"
    assert journal_mod.salvage("not json") is None
    assert journal_mod.salvage('{"a": "cut in a str') == ({}, (None,))
