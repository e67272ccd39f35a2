"""End to end: `rexctl rehearse --json` on a fresh directory, as the README's first command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rexctl.sandbox.state import sandbox_dir
from tests.browser import open_page

EXPECTED = [
    ("setup", "sandbox up"),
    ("setup", "init"),
    ("1-11", "provision"),
    ("12", "deploy"),
    ("13-14", "verify"),
    ("15", "chaos break-sg"),
    ("15", "chaos break-nacl"),
    ("15", "chaos wrong-host"),
]


def rehearse(directory: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "rexctl", "rehearse", "--json", *options],
        cwd=directory,
        env={**os.environ, "REXCTL_DEBUG": ""},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr
    result = json.loads(proc.stdout)
    assert list(result) == ["steps"]
    steps: list[Any] = result["steps"]
    assert {tuple(s) for s in steps} == {("step", "name", "status", "detail")}
    assert [(s["step"], s["name"]) for s in steps] == EXPECTED, proc.stderr
    failed = [s for s in steps if s["status"] != "passed"]
    assert failed == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    return proc, steps


@pytest.mark.e2e
def test_rehearse_passes_every_step_and_explains_break_sg(tmp_path: Path) -> None:
    """Two rehearsals in one directory, and between them the sandbox dies mid-drill (issue 11:
    that wedged every later rehearsal). The first one's report is opened in a real browser."""
    page = tmp_path / "rehearsal.html"
    proc, steps = rehearse(tmp_path, "--keep", "--report-html", str(page))
    assert steps[0]["detail"].startswith("started;")
    break_sg = next(s for s in steps if s["name"] == "chaos break-sg")
    assert "fault not observed" in break_sg["detail"]
    assert "connection tracking" in break_sg["detail"]
    break_nacl = next(s for s in steps if s["name"] == "chaos break-nacl")
    assert "logs show Redis error: passed" in break_nacl["detail"]
    assert "The sandbox is still running (--keep)" in proc.stderr
    # The report, as a person sees it: opened from disk in a real browser.
    kept = sorted((sandbox_dir(tmp_path) / "state" / "records").glob("*.json"))
    assert_report_in_browser(page, [json.loads(p.read_text()) for p in kept], tmp_path)

    killed_mid_drill(tmp_path)

    proc, steps = rehearse(tmp_path)
    assert steps[0]["detail"].startswith("started;"), "a new sandbox, not the dead one"
    # The rehearsal started the sandbox, so it stopped it: nothing of it is left.
    assert "The sandbox this rehearsal started was stopped" in proc.stderr
    assert not (sandbox_dir(tmp_path) / "state.json").exists()
    assert not (sandbox_dir(tmp_path) / "daemon.pid").exists()
    assert not (tmp_path / "rexctl.toml").exists(), "the user's rexctl.toml is never written"
    assert working_in(tmp_path) == []


def assert_report_in_browser(page: Path, records: list[dict[str, Any]], tmp_path: Path) -> None:
    """The rehearsal's page in headless chromium: the DOM holds each drill's chart (a point per
    answer, the fault window, the restore) and verdict; the screenshot is not blank and shows
    the chart's colours; in dark mode the page is dark."""
    assert [r["drill"] for r in records] == ["break-sg", "break-nacl", "wrong-host"]
    light = open_page(page, tmp_path / "light.png", size=(1280, 4200))
    dom = light.dom
    assert dom.count('<svg class="timeline"') == 3
    sections = dom.split('<section class="drill" ')[1:]
    for rec, section in zip(records, sections, strict=True):
        chart = section[section.index('<svg class="timeline"') : section.index("</svg>")]
        assert chart.count('class="pt pt-') == len(rec["observations"]["answers"]), rec["drill"]
        assert '<g class="fault-window">' in chart and '<g class="mark-restored">' in chart
        for check in rec["verdict"]["checks"]:
            assert (
                f'<td class="check">{check["name"]}</td><td><span class="badge '
                f'{"warn" if check["status"] == "not observed" else "ok"}">{check["status"]}<'
            ) in section
    assert "@media print{" in dom and "@media (prefers-color-scheme:dark)" in dom
    shot = light.screenshot
    colours = shot.colours()
    assert shot.background() == (255, 255, 255)
    assert len(colours) > 200, "the screenshot is nearly blank"
    painted = sum(n for c, n in colours.items() if c != (255, 255, 255))
    assert painted > 0.05 * shot.width * shot.height, f"only {painted} pixels are not white"
    assert colours[(0x09, 0x69, 0xDA)] > 0, "no answer from the cache is drawn"
    assert colours[(0xC2, 0x41, 0x0C)] > 0, "no answer from the database is drawn"
    assert colours[(0xDA, 0xFB, 0xE1)] > 0, "no 'passed' badge"
    dark = open_page(page, tmp_path / "dark.png", size=(1280, 1600), dark=True).screenshot
    assert dark.background() == (0x0D, 0x11, 0x17)
    assert dark.colours()[(0x44, 0x93, 0xF8)] > 0, "no answer from the cache is drawn"


def killed_mid_drill(cwd: Path) -> None:
    """SIGKILL the sandbox daemon while break-nacl has the cache's subnets on its ACL copy: the
    drill sees its sandbox gone, ends well before its --duration, and its journal is void."""
    from rexctl.drills import journal as journal_mod

    directory = sandbox_dir(cwd)
    daemon = json.loads((directory / "state.json").read_text(encoding="utf-8"))["pid"]
    journals = directory / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REXCTL_"))}
    env.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox",
               AWS_CONFIG_FILE=str(directory / "none"), REXCTL_STATE_DIR=str(journals))  # fmt: skip
    drill = subprocess.Popen(
        [sys.executable, "-m", "rexctl", "--sandbox", "--config", str(directory / "rexctl.toml"),
         "chaos", "break-nacl", "--duration", "120", "--interval", "0.5", "--yes", "--json"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(
            j.status == journal_mod.PENDING and any("fault injected" in h for h in j.history)
            for j in journal_mod.list_journals(journals)
        ):
            assert drill.poll() is None and time.monotonic() < deadline, drill.stderr
            time.sleep(0.1)
        killed = time.monotonic()
        os.kill(daemon, signal.SIGKILL)
        out, err = drill.communicate(timeout=90)
        ended = time.monotonic() - killed
    finally:
        if drill.poll() is None:
            drill.kill()
    assert drill.returncode == 3, err
    record = json.loads(out)
    assert record["outcome"] == "sandbox gone", err
    assert ended < 30, f"the drill ran {ended:.0f} s after its sandbox died (--duration 120)"
    [journal] = [j for j in journal_mod.list_journals(journals) if j.id == record["id"]]
    assert journal.status == journal_mod.VOID
    assert "no longer running" in journal.void_reason


def working_in(directory: Path) -> list[str]:
    """Processes whose working directory is inside `directory` (every process of a sandbox:
    the daemon, redis-server and the tasks all run in the sandbox directory)."""
    directory = directory.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cwd == directory or directory in cwd.parents:
            found.append(f"{entry.name}: {cmdline}")
    return found
