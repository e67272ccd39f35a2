"""Where a sandbox lives on disk and how its running daemon is recognised.

A sandbox belongs to a directory: its files are in `<dir>/.rexctl/sandbox/`. The daemon writes
`state.json` (atomically) once it is ready and `runtime.json` (its tasks) as they change;
`daemon.pid` is written as soon as the daemon is spawned (by its launcher, see daemon.detach), so
`down` can stop a daemon that never became ready. The daemon leads its own process group: every
process it starts (redis-server, the service's tasks) is in that group, which is how `down` makes
sure nothing is left behind (and each of them dies with the daemon, see guard.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
CLUSTER = "rexpress"
SERVICE = "backend"
DAEMON_MODULE = "rexctl.sandbox.daemon"
_PROC = Path("/proc")


def sandbox_dir(cwd: Path) -> Path:
    """The sandbox directory of a working directory."""
    return cwd.resolve() / ".rexctl" / "sandbox"


@dataclass(frozen=True)
class SandboxState:
    """What a ready daemon tells the world (state.json)."""

    dir: str
    pid: int
    endpoint_url: str
    region: str
    app_url: str
    lb_port: int
    redis_port: int
    redis_pid: int
    log_path: str
    cluster: str
    service: str
    started_at: float
    ca_file: str = ""  # the sandbox CA's certificate, the tasks' system trust store
    instance: str = ""  # a new random id each time a daemon starts: what a drill journal names

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxState:
        fields = cls.__dataclass_fields__
        return cls(**{k: data[k] for k in fields if k in data or not _has_default(fields[k])})

    def record(self) -> dict[str, str]:
        """What a drill journal keeps of the sandbox it ran against (see `gone`)."""
        return {
            "dir": self.dir,
            "instance": self.instance,
            "pid": str(self.pid),
            "started_at": repr(self.started_at),
            "endpoint_url": self.endpoint_url,
        }


@dataclass(frozen=True)
class TaskInfo:
    """One task as the daemon runs it (runtime.json), for `sandbox status`."""

    id: str
    arn: str
    status: str  # PENDING | RUNNING | STOPPING | STOPPED
    task_definition: str
    port: int
    pid: int
    gate_port: int  # 0 when the task does not reach the cache
    redis_host: str  # REDIS_HOST as the task definition says it
    subnet: str
    redis_tls: int = 0  # the task's connections to the cache open now that speak TLS
    redis_plain: int = 0  # ...and that speak plain RESP


@dataclass(frozen=True)
class Runtime:
    tasks: list[TaskInfo] = field(default_factory=list)


def _has_default(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is not MISSING or f.default_factory is not MISSING


def gone(record: dict[str, str]) -> str:
    """Why the sandbox a drill journal names no longer exists ('' while it runs).

    The sandbox's AWS lives in its daemon's memory: once that daemon is gone (stopped, killed,
    the machine rebooted), so is every resource a drill changed in it, and a sandbox started
    since in the same directory is another one (another `instance`).
    """
    directory = Path(record.get("dir", ""))
    if not record.get("dir"):
        return ""
    state = read_state(directory)
    if state is None or not is_daemon(state.pid, directory):
        return f"the sandbox in {directory} that the drill ran against is no longer running"
    same = (
        state.instance == record.get("instance")
        if record.get("instance")
        else repr(state.started_at) == record.get("started_at")
    )
    if not same:
        return (
            f"the sandbox in {directory} that the drill ran against was stopped; the one "
            "running there now was started since and never had the drill's changes"
        )
    return ""


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def read_state(directory: Path) -> SandboxState | None:
    data = _read_json(directory / "state.json")
    if not isinstance(data, dict):
        return None
    try:
        return SandboxState.from_dict(data)
    except (KeyError, TypeError):
        return None


def read_runtime(directory: Path) -> Runtime:
    data = _read_json(directory / "runtime.json")
    if not isinstance(data, dict):
        return Runtime()
    return Runtime(tasks=[TaskInfo(**t) for t in data.get("tasks", [])])


def read_pid(directory: Path) -> int:
    try:
        return int((directory / "daemon.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) from /proc, or None when the process is gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    if pid <= 0:
        return False
    if _PROC.is_dir():
        st = _stat(pid)
        return st is not None and st[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_daemon(pid: int, directory: Path) -> bool:
    """True when `pid` is the sandbox daemon of `directory` (not a recycled pid)."""
    if not alive(pid):
        return False
    try:
        cmdline = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return not _PROC.is_dir()  # no /proc (macOS): trust the pid file
    args = [a.decode(errors="replace") for a in cmdline]
    return DAEMON_MODULE in args and str(directory) in args


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (Linux: /proc; elsewhere: whether the group exists)."""
    if pgid <= 0:
        return []
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def reap(pid: int) -> None:
    """Collect a child's exit status if it is our child (tests run `up` in-process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One `up`/`down` at a time per sandbox."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
