"""Start, stop and describe a directory's sandbox (the command line's side of the daemon).

`up` writes which backend the tasks run (`backend.json`), spawns the daemon in a session of its
own (it leads a new process group), records its pid, and waits for `state.json`; a second `up`
finds the running daemon and reuses it, if it runs the backend asked for. `down` asks the daemon
to stop (SIGTERM: it stops its tasks, proxies, redis-server and moto), then SIGKILLs whatever is
still in its process group and still works in the sandbox directory (or in the user's backend
directory), so nothing is left behind even after a crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rexctl.errors import UsageError
from rexctl.sandbox import backend as backend_mod
from rexctl.sandbox.backend import Backend
from rexctl.sandbox.state import (
    DAEMON_MODULE,
    SandboxState,
    TaskInfo,
    alive,
    group_members,
    is_daemon,
    locked,
    read_pid,
    read_runtime,
    read_state,
    reap,
    sandbox_dir,
)

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
INSTALL_HINT = (
    "Install it with `sudo apt-get install redis-server` (Debian/Ubuntu; `./scripts/bootstrap` "
    "does it) or `brew install redis` (macOS), then run `rexctl sandbox up` again."
)


@dataclass(frozen=True)
class UpResult:
    state: SandboxState
    started: bool  # False when a running sandbox was reused


@dataclass(frozen=True)
class DownResult:
    was_running: bool
    stopped: list[int] = field(default_factory=list)  # pids that were still there


@dataclass(frozen=True)
class Status:
    state: SandboxState
    tasks: list[TaskInfo]
    redis_up: bool
    backend: Backend = field(default_factory=Backend)


def require_redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise UsageError(
            "redis-server is not installed: the sandbox runs a real Redis for the cache node.",
            hint=INSTALL_HINT,
        )
    return binary


def running_state(directory: Path) -> SandboxState | None:
    state = read_state(directory)
    if state is not None and is_daemon(state.pid, directory):
        return state
    return None


def up(cwd: Path, *, timeout: float = START_TIMEOUT, backend: Backend | None = None) -> UpResult:
    """Start the sandbox of `cwd` running `backend` (default: the bundled service), or return
    the one already running it; one running another backend is refused."""
    require_redis_server()
    backend = backend or Backend()
    directory = sandbox_dir(cwd)
    with locked(directory):
        state = running_state(directory)
        if state is not None:
            running = backend_mod.read(directory)
            if running != backend:
                raise UsageError(
                    f"The sandbox running here runs {_backend_line(running)}, not "
                    f"{_backend_line(backend)}.",
                    hint="Stop it with `rexctl sandbox down`, then start it again.",
                )
            return UpResult(state, started=False)
        _stop(directory)  # whatever a dead daemon left behind
        backend_mod.write(directory, backend)
        log = directory / "daemon.log"
        log_start = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as fh:
            # The daemon forks and its parent exits at once (see daemon.detach): nothing of it
            # stays our child, and its pid arrives in daemon.pid.
            launcher = subprocess.run(
                [sys.executable, "-m", DAEMON_MODULE, "--dir", str(directory), "--detach"],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=directory,
                start_new_session=True,
                check=False,
                timeout=timeout,
            )
        pid = read_pid(directory)
        deadline = time.monotonic() + timeout
        while True:
            state = read_state(directory)
            if state is not None and state.pid == pid:
                return UpResult(state, started=True)
            if launcher.returncode or not alive(pid) or time.monotonic() > deadline:
                _stop(directory)
                what = (
                    f"did not become ready within {timeout:.0f} s"
                    if alive(pid)
                    else "stopped while starting"
                )
                reason = _not_ready(log, log_start)
                if reason:
                    raise UsageError(f"The sandbox did not start: {reason}", hint=f"Log: {log}.")
                raise UsageError(f"The sandbox {what}.", hint=f"Its log is {log}:\n{_tail(log)}")
            time.sleep(0.1)


def _backend_line(backend: Backend) -> str:
    extra = [
        f"{name} {value}"
        for name, value, default in (
            ("app.path", backend.path, Backend.path),
            ("app.health_path", backend.health_path, Backend.health_path),
        )
        if value != default
    ]
    return backend.describe() + (f" ({', '.join(extra)})" if extra else "")


def _not_ready(log: Path, start: int) -> str:
    """The daemon's own account of why the tasks did not come up (daemon.NOT_READY), if any."""
    try:
        with open(log, "rb") as fh:
            fh.seek(start)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    at = text.rfind(backend_mod.NOT_READY)
    if at < 0:
        return ""
    lines = text[at + len(backend_mod.NOT_READY) :].splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if ln.startswith("    ")]
    return "\n".join(kept)


def down(cwd: Path) -> DownResult:
    """Stop the sandbox of `cwd` and everything it started."""
    directory = sandbox_dir(cwd)
    if not directory.is_dir():
        return DownResult(False)
    with locked(directory):
        return _stop(directory)


def _stop(directory: Path) -> DownResult:
    state = read_state(directory)
    pid = read_pid(directory) or (state.pid if state else 0)
    was_running = is_daemon(pid, directory)
    backend_dir = backend_mod.read(directory).dir
    if was_running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(pid) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.05)
    places = [directory] + ([Path(backend_dir)] if backend_dir else [])
    stopped = _kill_leftovers(pid, places, was_running)
    reap(pid)
    for name in ("state.json", "runtime.json", "daemon.pid"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    return DownResult(was_running, stopped)


def _kill_leftovers(pgid: int, places: list[Path], was_running: bool) -> list[int]:
    """SIGKILL the daemon's group members that still work in the sandbox directory.

    A recycled pid is never trusted blindly: a member is killed only when its working directory
    is inside one of `places`: the sandbox directory (where the daemon, redis-server and the
    bundled service's tasks run) or the user's backend directory (where its tasks run).
    """
    killed: list[int] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        members = [
            p
            for p in group_members(pgid)
            if any(_works_in(p, place, was_running) for place in places)
        ]
        if not members:
            break
        for p in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
            if p not in killed:
                killed.append(p)
            reap(p)
        time.sleep(0.05)
    return killed


def _works_in(pid: int, directory: Path, was_running: bool) -> bool:
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return was_running and not Path("/proc").is_dir()
    return cwd == directory or directory in cwd.parents


def status(cwd: Path) -> Status | None:
    directory = sandbox_dir(cwd)
    state = running_state(directory)
    if state is None:
        return None
    return Status(
        state,
        read_runtime(directory).tasks,
        _redis_answers(state.redis_port),
        backend_mod.read(directory),
    )


def _redis_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # with AUTH on, it answers so
    except OSError:
        return False


def env_exports(state: SandboxState) -> dict[str, str]:
    """Environment that points rexctl and the AWS CLI at the sandbox (from any directory)."""
    return {
        "AWS_ENDPOINT_URL": state.endpoint_url,
        "AWS_REGION": state.region,
        "AWS_DEFAULT_REGION": state.region,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "REXCTL_SANDBOX": "1",
        "REXCTL_SANDBOX_DIR": state.dir,
        "REXCTL_APP_URL": state.app_url,
    }


# Variables `env` unsets: a real profile or session token must never be sent to the sandbox.
ENV_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
