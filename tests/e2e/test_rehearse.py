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
    that wedged every later rehearsal)."""
    proc, steps = rehearse(tmp_path, "--keep")
    assert steps[0]["detail"].startswith("started;")
    break_sg = next(s for s in steps if s["name"] == "chaos break-sg")
    assert "fault not observed" in break_sg["detail"]
    assert "connection tracking" in break_sg["detail"]
    break_nacl = next(s for s in steps if s["name"] == "chaos break-nacl")
    assert "logs show Redis error: passed" in break_nacl["detail"]
    assert "The sandbox is still running (--keep)" in proc.stderr

    killed_mid_drill(tmp_path)

    proc, steps = rehearse(tmp_path)
    assert steps[0]["detail"].startswith("started;"), "a new sandbox, not the dead one"
    # The rehearsal started the sandbox, so it stopped it: nothing of it is left.
    assert "The sandbox this rehearsal started was stopped" in proc.stderr
    assert not (sandbox_dir(tmp_path) / "state.json").exists()
    assert not (sandbox_dir(tmp_path) / "daemon.pid").exists()
    assert not (tmp_path / "rexctl.toml").exists(), "the user's rexctl.toml is never written"
    assert working_in(tmp_path) == []


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
