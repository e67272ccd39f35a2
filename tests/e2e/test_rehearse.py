"""End to end: `rexctl rehearse --json` on a fresh directory, as the README's first command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.e2e
def test_rehearse_passes_every_step_and_explains_break_sg(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rexctl", "rehearse", "--json"],
        cwd=tmp_path,
        env={**os.environ, "REXCTL_DEBUG": ""},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr
    result = json.loads(proc.stdout)
    assert list(result) == ["steps"]
    steps = result["steps"]
    assert {tuple(s) for s in steps} == {("step", "name", "status", "detail")}
    assert [(s["step"], s["name"]) for s in steps] == EXPECTED, proc.stderr
    failed = [s for s in steps if s["status"] != "passed"]
    assert failed == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert steps[0]["detail"].startswith("started;")
    break_sg = next(s for s in steps if s["name"] == "chaos break-sg")
    assert "fault not observed" in break_sg["detail"]
    assert "connection tracking" in break_sg["detail"]
    break_nacl = next(s for s in steps if s["name"] == "chaos break-nacl")
    assert "logs show Redis error: passed" in break_nacl["detail"]
    # The rehearsal started the sandbox, so it stopped it: nothing of it is left.
    assert "The sandbox this rehearsal started was stopped" in proc.stderr
    assert not (sandbox_dir(tmp_path) / "state.json").exists()
    assert not (sandbox_dir(tmp_path) / "daemon.pid").exists()
    assert not (tmp_path / "rexctl.toml").exists(), "the user's rexctl.toml is never written"
    assert working_in(tmp_path) == []


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
