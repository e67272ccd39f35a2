"""Drill records on disk: kept by drill id, found by id or file, written whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rexctl.drills import records
from rexctl.drills.journal import drills_dir, list_journals
from rexctl.errors import UsageError
from tests.rexctl.drills.scenarios import Scenario, record


@pytest.fixture
def rec(tmp_path: Path) -> dict[str, Any]:
    return record(Scenario(), tmp_path / "run")


def test_a_record_is_kept_by_its_drill_id_and_found_again(
    tmp_path: Path, rec: dict[str, Any]
) -> None:
    state = tmp_path / "state"
    path = records.save(rec, state)
    assert path == state / "records" / f"{rec['id']}.json"
    assert json.loads(path.read_text()) == json.loads(records.to_json(rec))
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    other = tmp_path / "elsewhere"
    assert records.load(rec["id"], [other, state]) == (path, json.loads(records.to_json(rec)))
    assert records.load(str(path), [])[1]["id"] == rec["id"]  # and by its file


def test_records_never_go_where_the_journals_are(tmp_path: Path, rec: dict[str, Any]) -> None:
    """Every *.json in <state_dir>/drills/ is taken for a journal."""
    state = tmp_path / "run"  # the scenario's drill wrote its journal here
    records.save(rec, state)
    assert sorted(p.name for p in drills_dir(state).iterdir()) == [f"{rec['id']}.json"]
    assert [j.id for j in list_journals(state)] == [rec["id"]]


def test_a_journal_file_leads_to_its_record(tmp_path: Path, rec: dict[str, Any]) -> None:
    state = tmp_path / "run"
    journal = drills_dir(state) / f"{rec['id']}.json"
    with pytest.raises(UsageError) as no_record:
        records.load(str(journal), [state])
    assert no_record.value.message == (
        f"{journal} is the journal of drill {rec['id']}: it says what the drill changed, not "
        f"what it saw, and no record of that drill was kept (no "
        f"{state / 'records' / (rec['id'] + '.json')})."
    )
    saved = records.save(rec, state)
    assert records.load(str(journal), [state])[0] == saved


def test_a_record_id_is_never_a_path(tmp_path: Path, rec: dict[str, Any]) -> None:
    for bad in ("../../etc/passwd", "", "20261206T221524Z-break-nacl-9b7360/../x"):
        with pytest.raises(ValueError, match="not a drill id"):
            records.save({**rec, "id": bad}, tmp_path)
    assert not (tmp_path / "records").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "There is no file {path}."),
        ("{not json", "{path} is not a drill record: it is not valid JSON (Expecting property "
                      "name enclosed in double quotes: line 1 column 2 (char 1))."),
        ('{"steps": []}', '{path} is not a drill record (the JSON `--report` writes: it has no '
                          '"drill" and "observations").'),
        ("[1, 2]", '{path} is not a drill record (the JSON `--report` writes: it has no "drill" '
                   'and "observations").'),
    ],
    ids=["missing", "not-json", "other-json", "a-list"],
)  # fmt: skip
def test_a_bad_file_is_refused_with_what_is_wrong(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as err:
        records.load(str(path), [tmp_path])
    assert err.value.message == message.format(path=path)


def test_an_unknown_id_names_where_it_looked(tmp_path: Path) -> None:
    drill_id = "20261206T221524Z-break-sg-0a0a0a"
    with pytest.raises(UsageError) as err:
        records.load(drill_id, [tmp_path / "a", tmp_path / "b"])
    assert err.value.message == (
        f"No record of drill {drill_id}: no {tmp_path / 'a' / 'records' / (drill_id + '.json')} "
        f"nor {tmp_path / 'b' / 'records' / (drill_id + '.json')}."
    )
    assert "`rexctl chaos list`" in (err.value.hint or "")


def test_a_directory_is_not_a_record(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory, not a drill record"):
        records.load(str(tmp_path), [])


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_text("the old page")

    def no_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="No space left"):
        records.write_atomic(target, "<html>the new page</html>")
    assert target.read_text() == "the old page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_an_output_path_is_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as missing:
        records.check_output("--html", tmp_path / "no" / "r.html")
    assert missing.value.message == (
        f"--html {tmp_path / 'no' / 'r.html'}: the directory {tmp_path / 'no'} does not exist."
    )
    with pytest.raises(UsageError) as directory:
        records.check_output("--report-html", tmp_path)
    assert directory.value.message == (
        f"--report-html {tmp_path}: that is a directory; give a file name."
    )
    records.check_output("--html", tmp_path / "fine.html")
