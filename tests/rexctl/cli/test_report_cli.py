"""The drill report from the command line: `rexctl chaos report`, `--report-html` of the drills
and of `rexctl rehearse` (no AWS, no sandbox: records come from the real drill course run on
fakes, `tests.rexctl.drills.scenarios`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rexctl.cli import app
from rexctl.drills import records
from rexctl.sandbox import rehearse as rehearse_mod
from rexctl.sandbox.control import UpResult
from rexctl.sandbox.rehearse import Outcome
from tests.rexctl.drills.scenarios import Scenario, record
from tests.rexctl.sandbox.test_rehearse import state

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of the user's own, with no rexctl.toml and the state directory in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REXCTL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_chaos_report_draws_a_report_file(home: Path) -> None:
    (home / "rexctl.toml").write_text("[ecs\nbroken = ")  # not needed to draw a file
    rec = record(Scenario(), home / "run")
    report = home / "nacl.json"
    report.write_text(records.to_json(rec))
    result = invoke("chaos", "report", str(report), "--html", str(home / "nacl.html"))
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"✓ Wrote {home / 'nacl.html'} (1 drill)."
    html = (home / "nacl.html").read_text()
    assert "<h1>break-nacl drill: passed</h1>" in html and '<svg class="timeline"' in html


def test_chaos_report_by_drill_id_several_on_one_page(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nacl = record(Scenario(), home / "run1")
    sg = record(Scenario(drill="break-sg", log_messages=[]), home / "run2")
    (home / "rexctl.toml").write_text(f'state_dir = "{home / "mine"}"\n')
    monkeypatch.delenv("REXCTL_STATE_DIR")
    records.save(nacl, home / "mine")  # the user's own drill, where rexctl.toml says
    rehearsed = rehearse_mod.drill_state_dir(home / ".rexctl" / "sandbox")
    records.save(sg, rehearsed)  # a drill of `rexctl rehearse` in this directory
    result = invoke("chaos", "report", nacl["id"], sg["id"], "--html", str(home / "both.html"))
    assert result.exit_code == 0, result.output
    html = (home / "both.html").read_text()
    assert "<h1>2 drills</h1>" in html
    assert html.index("<h2>break-nacl ") < html.index("<h2>break-sg ")


def test_chaos_report_without_html_shows_the_verdict(home: Path) -> None:
    rec = record(Scenario(), home / "run")
    path = records.save(rec, home / "state")
    result = invoke("chaos", "report", rec["id"])
    assert result.exit_code == 0, result.output
    assert f"break-nacl ({rec['id']}): passed" in result.stdout
    assert "logs show Redis error" in result.stdout and "cache used again" in result.stdout
    assert f"Record: {path}" in result.stderr
    assert "Draw it as a page: `rexctl chaos report ... --html FILE`." in result.stderr


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("missing", "Error: There is no file {home}/missing.json."),
        ("notjson", "Error: {home}/notjson.json is not a drill record: it is not valid JSON "
                    "(Expecting value: line 1 column 1 (char 0))."),
        ("id", "Error: No record of drill 20261206T221524Z-break-sg-0a0a0a: no "
               "{home}/state/records/20261206T221524Z-break-sg-0a0a0a.json nor "
               "{home}/.rexctl/sandbox/state/records/20261206T221524Z-break-sg-0a0a0a.json."),
        ("nodir", "Error: --html {home}/no/page.html: the directory {home}/no does not exist."),
        ("isdir", "Error: --html {home}: that is a directory; give a file name."),
    ],
)  # fmt: skip
def test_chaos_report_refuses_bad_input_and_writes_nothing(
    home: Path, what: str, message: str
) -> None:
    good = home / "good.json"
    good.write_text(records.to_json(record(Scenario(), home / "run")))
    (home / "notjson.json").write_text("nope")
    before = files_in(home)
    args = {
        "missing": [str(home / "missing.json"), "--html", str(home / "page.html")],
        "notjson": [str(good), str(home / "notjson.json"), "--html", str(home / "page.html")],
        "id": ["20261206T221524Z-break-sg-0a0a0a", "--html", str(home / "page.html")],
        "nodir": [str(good), "--html", str(home / "no" / "page.html")],
        "isdir": [str(good), "--html", str(home)],
    }[what]
    result = invoke("chaos", "report", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message.format(home=home)), result.stderr
    assert "Traceback" not in result.output
    assert files_in(home) == before  # no page, no temporary file


def test_chaos_report_of_a_journal_without_its_record_says_so(home: Path) -> None:
    rec = record(Scenario(), home / "state")  # the drill ran here but kept no record
    journal = home / "state" / "drills" / f"{rec['id']}.json"
    result = invoke("chaos", "report", str(journal), "--html", str(home / "page.html"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {journal} is the journal of drill {rec['id']}:")
    records.save(rec, home / "state")
    result = invoke("chaos", "report", str(journal), "--html", str(home / "page.html"))
    assert result.exit_code == 0, result.output


def test_a_drill_refuses_a_report_html_it_could_not_write_before_anything_runs(
    home: Path,
) -> None:
    for drill in ("break-sg", "break-nacl", "wrong-host"):
        result = invoke("chaos", drill, "--yes", "--report-html", str(home / "no" / "r.html"))
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(
            f"Error: --report-html {home / 'no' / 'r.html'}: the directory {home / 'no'} does "
            "not exist."
        )
    assert files_in(home) == []  # not even a state directory


def test_rehearse_refuses_a_report_html_it_could_not_write_before_starting(home: Path) -> None:
    result = invoke("rehearse", "--report-html", str(home))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: --report-html {home}: that is a directory;")
    assert files_in(home) == []  # no sandbox was started


def test_rehearse_report_html_draws_the_steps_and_every_drill(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each drill step runs `rexctl chaos ... --json`; its record is what the page draws."""
    made = {
        name: record(sc, home / name)
        for name, sc in {
            "break-sg": Scenario(drill="break-sg", during=lambda i: (200, "cache", 2.0, None),
                                 log_messages=[]),
            "break-nacl": Scenario(),
            "wrong-host": Scenario(drill="wrong-host"),
        }.items()
    }  # fmt: skip

    def fake_runner(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Outcome:
        if "chaos" in args:
            rec = made[args[args.index("chaos") + 1]]
            return Outcome(rec["exit_code"], rec, "")
        if "provision" in args:
            return Outcome(0, {"endpoint": "master.x", "port": 6379, "cache_id": "c"}, "")
        return Outcome(0, {"path": "x", "settings": {}, "verdict": {"checks": []}}, "")

    real = rehearse_mod.rehearse

    def fake_rehearse(cwd: Path, **kw: Any) -> rehearse_mod.Rehearsal:
        start = lambda c: UpResult(state(home), started=False)  # noqa: E731
        return real(cwd, **kw, runner=fake_runner, start=start, stop=lambda c: None)

    monkeypatch.setattr(rehearse_mod, "rehearse", fake_rehearse)
    page = home / "rehearsal.html"
    result = invoke("rehearse", "--json", "--report-html", str(page))
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)) == ["steps"]  # --json is unchanged
    assert f"The rehearsal's report: {page} (open it in a browser)." in result.stderr
    html = page.read_text()
    assert "8 of 8 steps had the outcome the guide expects." in html
    for i, name in enumerate(made, start=1):
        assert f'<a href="#drill-{i}">chaos {name}</a>' in html
        assert f'<section class="drill" id="drill-{i}"><h2>{name} ' in html
    assert html.count('<svg class="timeline"') == 3


def test_rehearse_report_html_when_the_sandbox_cannot_start(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = home / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no redis-server
    result = invoke("rehearse", "--report-html", str(home / "r.html"))
    assert result.exit_code == 1, result.output
    html = (home / "r.html").read_text()
    assert "0 of 1 steps had the outcome the guide expects." in html
    assert "redis-server is not installed" in html
    assert "No drill record to show" in html
