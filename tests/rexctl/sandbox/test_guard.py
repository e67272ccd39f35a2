"""A program run under the guard dies with the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rexctl.sandbox import guard
from rexctl.sandbox.state import alive

PARENT = """
import subprocess, sys, time
from rexctl.sandbox import guard
child = subprocess.Popen(guard.command("sleep", "60"))
print(child.pid, flush=True)
time.sleep(60)
"""


def argv0(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return b""


def test_the_program_dies_when_its_parent_is_killed() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        child = 0
        try:
            assert parent.stdout is not None
            child = int(parent.stdout.readline())
            deadline = time.monotonic() + 5
            while argv0(child) != b"sleep" and time.monotonic() < deadline:
                time.sleep(0.02)
            assert argv0(child) == b"sleep", "the guard execs: the pid is the program's own"
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
            deadline = time.monotonic() + 5
            while alive(child) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not alive(child), "the program outlived its parent"
        finally:
            parent.kill()
            if alive(child):  # only when the test failed: leave nothing behind
                os.kill(child, signal.SIGKILL)


def test_a_parent_that_is_already_gone_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = guard.command("touch", str(marker))
    argv[argv.index("--") - 1] = "1"  # claims a parent that is not ours
    assert subprocess.run(argv, check=False).returncode == 1
    assert not marker.exists()
