"""Drill journals: durable writes, redaction, the cheap unrestored check the root CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rexctl.aws.ec2 import Rule
from rexctl.drills import journal as j
from rexctl.drills.changes import (
    AclCloneChange,
    NaclEntryChange,
    ServiceRevisionChange,
    SgRuleChange,
    UnreadableChange,
    change_from_dict,
)
from rexctl.errors import StateError

JOURNALS = Path(__file__).parent / "journals"


def sample(
    drill_id: str = "20260101T000000Z-break-sg-aaaaaa", status: str = j.PENDING
) -> j.Journal:
    return j.Journal(
        id=drill_id,
        drill="break-sg",
        created_at="2026-01-01T00:00:00Z",
        aws={"region": "us-east-1", "profile": "", "endpoint_url": ""},
        changes=[
            SgRuleChange(Rule("sgr-1", "sg-1", False, "tcp", 6379, 6379, source_group="sg-2"))
        ],
        summary=["Revoke ..."],
        before={"env": [{"name": "REDIS_AUTH_TOKEN", "value": "s3cret"}], "AuthToken": "abc"},
        manual_undo=["aws ec2 ..."],
        status=status,
    )


def test_save_writes_the_whole_journal_atomically_and_redacted(tmp_path: Path) -> None:
    path = j.save(sample(), tmp_path)
    assert path == tmp_path / "drills" / "20260101T000000Z-break-sg-aaaaaa.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file is left"
    data = json.loads(path.read_text())
    assert data["before"] == {
        "env": [{"name": "REDIS_AUTH_TOKEN", "value": "(redacted)"}],
        "AuthToken": "(redacted)",
    }
    assert "s3cret" not in path.read_text()
    loaded = j.load(path)
    assert loaded.changes == sample().changes and loaded.status == j.PENDING and loaded.updated_at


def test_a_failed_write_keeps_the_previous_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sample()
    path = j.save(first, tmp_path)
    second = sample()
    second.status = j.RESTORED

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StateError) as err:
        j.save(second, tmp_path)
    assert err.value.message == (
        f"Cannot write rexctl's drill state in {tmp_path / 'drills'} "
        f"({tmp_path / 'drills'}: No space left on device)."
    )
    monkeypatch.undo()
    assert j.load(path).status == j.PENDING, "the old journal is intact"
    assert [p.name for p in path.parent.iterdir()] == [path.name], "the temporary file is gone"


def test_unrestored_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REXCTL_STATE_DIR", str(tmp_path))
    assert j.unrestored_summary() == ""
    j.save(sample("20260101T000000Z-break-sg-aaaaaa", j.RESTORED), tmp_path)
    assert j.unrestored_summary() == ""
    j.save(sample("20260102T000000Z-break-sg-bbbbbb"), tmp_path)
    assert j.unrestored_summary() == (
        "1 failure drill(s) may still be in place: 20260102T000000Z-break-sg-bbbbbb (break-sg). "
        "Run `rexctl chaos restore` to undo them."
    )
    # Every file in drills/ is a journal: one that cannot be read is reported, not skipped.
    (tmp_path / "drills" / "notes.json").write_text("not a journal")
    assert j.unrestored_summary().splitlines()[1] == (
        f"Drill journal {tmp_path / 'drills' / 'notes.json'} cannot be read as a journal: it is "
        "not JSON (Expecting value: line 1 column 1 (char 0)), and nothing of it could be read. "
        "It blocks new drills until `rexctl chaos discard notes` sets it aside."
    )


def test_unrestored_summary_defaults_to_dot_rexctl_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REXCTL_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    j.save(sample(), Path(".rexctl"))
    assert "20260101T000000Z-break-sg-aaaaaa" in j.unrestored_summary()


def test_the_root_cli_check_imports_no_boto3(tmp_path: Path) -> None:
    code = (
        "import sys; from rexctl.drills.journal import unrestored_summary; unrestored_summary(); "
        "print('boto3' in sys.modules)"
    )
    env = {**os.environ, "REXCTL_STATE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr


def test_new_ids_sort_by_time_and_name_the_drill() -> None:
    drill_id = j.new_drill_id("break-nacl")
    stamp, rest = drill_id.split("-", 1)
    assert len(stamp) == 16 and stamp.endswith("Z") and rest.startswith("break-nacl-")


def test_default_state_dir_follows_the_config_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REXCTL_STATE_DIR", raising=False)
    config = tmp_path / "rexctl.toml"
    assert j.default_state_dir(config) == Path(".rexctl"), "no file: the default"
    config.write_text(f'region = "us-east-1"\nstate_dir = "{tmp_path / "s"}"\n')
    assert j.default_state_dir(config) == tmp_path / "s"
    j.save(sample(), tmp_path / "s")
    assert "20260101T000000Z-break-sg-aaaaaa" in j.unrestored_summary(j.default_state_dir(config))
    monkeypatch.setenv("REXCTL_STATE_DIR", str(tmp_path / "env"))
    assert j.default_state_dir(config) == tmp_path / "env", "the environment wins"
    monkeypatch.delenv("REXCTL_STATE_DIR")
    config.write_text("state_dir = [broken")
    assert j.default_state_dir(config) == Path(".rexctl"), "an unreadable file sets nothing"


@pytest.mark.parametrize("fixture", sorted(p.name for p in JOURNALS.glob("*.json")))
def test_a_journal_reads_and_writes_back_the_same_json(fixture: str, tmp_path: Path) -> None:
    """Journals in tests/rexctl/drills/journals (of earlier rexctl, and of this one) read into
    typed changes and write back as the same JSON: a journal left by a crash means the same to a
    later rexctl."""
    data = json.loads((JOURNALS / fixture).read_text(encoding="utf-8"))
    journal = j.Journal.from_dict(data)
    kinds = {
        "sg-rule": SgRuleChange,
        "nacl-entry": NaclEntryChange,
        "service-revision": ServiceRevisionChange,
        "nacl-clone": AclCloneChange,
    }
    assert [type(c) for c in journal.changes] == [kinds[c["type"]] for c in data["changes"]]
    assert journal.format == data.get("format", 1)
    saved = json.loads(j.save(journal, tmp_path).read_text(encoding="utf-8"))
    assert saved["format"] == j.FORMAT, "written in this rexctl's format"
    # Everything the journal said is said again; a field added since only adds (its default
    # means what the rexctl that wrote the journal did).
    for key, value in data.items():
        if key == "changes":
            for old, new in zip(value, saved["changes"], strict=True):
                assert {k: new[k] for k in old} == old
        elif key not in ("updated_at", "format"):
            assert saved[key] == value, key


def test_a_change_this_rexctl_cannot_read_is_kept_as_it_was(tmp_path: Path) -> None:
    """A change of an unknown type (a newer rexctl) or a damaged one: the journal still lists as
    unrestored and writes the change back unchanged."""
    odd = [{"type": "from-the-future", "x": 1}, {"type": "sg-rule"}, "junk"]
    changes = [change_from_dict(c) for c in odd]
    assert all(isinstance(c, UnreadableChange) for c in changes)
    assert [c.to_dict() for c in changes[:2]] == odd[:2]
    journal = sample()
    journal.changes = changes[:2]
    j.save(journal, tmp_path)
    (listed,) = j.unrestored(tmp_path)
    assert [c.to_dict() for c in listed.changes] == odd[:2]
