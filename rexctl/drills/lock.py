"""One drill command at a time per state directory.

A drill holds `<state_dir>/drills/.lock` from before it checks for unrestored journals until its
restore is done, and `rexctl chaos restore` and `discard` hold it while they work, so two drills
started at the same moment cannot both run, and a restore never undoes a drill that is still
running. The lock is the kernel's (`flock`): it goes away with the process that holds it, even
after SIGKILL or a crash, so it can never be left held. The file says who holds it, for the
message the next command prints.

It guards one machine's state directory. The journal lives there too, so a second machine (or a
second state directory) does not see it: what protects AWS from two drills on one target is
what each drill checks there before it changes anything (docs/chaos.md, "One drill at a time").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from rexctl.drills.journal import drills_dir, now_iso, state_error
from rexctl.errors import StateError

LOCK = ".lock"
NOTE = 400  # bytes: who holds the lock, padded with spaces


@contextlib.contextmanager
def drill_lock(state_dir: Path, what: str) -> Iterator[None]:
    """Hold the state directory's drill lock for `what` (e.g. "chaos break-nacl"), or raise
    StateError (exit 2) naming the holder. A directory that cannot be written is a StateError
    too: nothing has changed yet."""
    directory = drills_dir(state_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
    except OSError as exc:
        raise state_error(directory, exc) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another rexctl process"
            raise StateError(
                f"Another drill command is running with state directory {state_dir}: "
                f"{holder}. One drill at a time.",
                hint="Wait for it to end (a drill restores what it changed before it exits), "
                "or stop it with Ctrl-C.",
            ) from None
        note = f"{what} (pid {os.getpid()} on {socket.gethostname()}, since {now_iso()})"
        try:  # one write of a fixed size, never a truncate: a reader sees one note, whole
            os.pwrite(handle.fileno(), note.encode()[:NOTE].ljust(NOTE), 0)
        except OSError as exc:
            raise state_error(directory, exc) from None
        yield
    finally:
        handle.close()  # releases the lock
