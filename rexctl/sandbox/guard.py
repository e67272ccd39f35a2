"""Run a program so that it dies with the sandbox daemon that started it.

The daemon's children (redis-server, the service's tasks) must not outlive it: a daemon killed
with SIGKILL cannot stop them, and nothing else would until the next `sandbox down` or `up`. On
Linux the kernel can: `prctl(PR_SET_PDEATHSIG, SIGKILL)` asks it to kill this process when its
parent dies, and the setting survives `exec`. So the daemon starts each child as

    python -I -S .../guard.py <daemon pid> -- <program> <args...>

which sets the signal, checks that the daemon is still its parent (it may have died in between),
and execs the program: the child's pid and signals are the program's own. Run as a file, not as
a module, so that it imports nothing of rexctl and starts in a few milliseconds. Elsewhere
(macOS) it just execs, and `down`/`up` remain the cleanup.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def command(program: str, *args: str) -> list[str]:
    """The argv that runs `program args...` under this guard, for the calling process."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), "--",
            program, *args]  # fmt: skip


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def main(argv: list[str]) -> None:
    parent, separator, *program = argv
    if separator != "--" or not program:
        sys.exit("usage: guard.py PARENT_PID -- PROGRAM [ARGS...]")
    _die_with_parent()
    if os.getppid() != int(parent):  # the parent died before the signal was set
        sys.exit(1)
    os.execvp(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
