"""Which backend the sandbox runs as the ECS service's tasks: the bundled service, or the user's.

A user's backend is a command line (`sandbox.backend_command`, `--backend-command`) and the
directory it runs in (`sandbox.backend_dir`, `--backend-dir`, default the current directory), in
any language. The command line is split into words as a POSIX shell would (`shlex.split`: quotes
and backslashes work) but is **not** run by a shell: no `$VAR`, `|`, `&&`, `>` or `VAR=value`
prefix; write `sh -c '...'` for those. Each task runs it with the environment of the task
definition, plus `PORT`; see `rexctl.sandbox.tasks`.

Everything is checked before anything starts, with the place the value came from (option,
variable, rexctl.toml) in the message: an empty command, unbalanced quotes, a directory that
does not exist, a program that is not found (on the PATH, or relative to the directory when
it names a path), and a directory given without a command.

`write` keeps the choice in the sandbox directory (`backend.json`), where the daemon reads it and
where `sandbox down` finds the directory whose processes it may still have to stop.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rexctl.errors import UsageError

FILE = "backend.json"
NOT_READY = "sandbox: not ready: "  # the daemon's line when the tasks never came up (`up` shows it)
COMMAND_KEY = "sandbox.backend_command"
DIR_KEY = "sandbox.backend_dir"
_WHERE = {
    COMMAND_KEY: ("--backend-command", "REXCTL_SANDBOX_BACKEND_COMMAND"),
    DIR_KEY: ("--backend-dir", "REXCTL_SANDBOX_BACKEND_DIR"),
}


@dataclass(frozen=True)
class Backend:
    """The tasks' program. `command` empty: the bundled service."""

    command: tuple[str, ...] = ()
    dir: str = ""  # absolute; '' for the bundled service
    path: str = "/api/products"  # app.path: the products path, behind the load balancer
    health_path: str = "/health"  # app.health_path: the load balancer's health check

    @property
    def bundled(self) -> bool:
        return not self.command

    def describe(self) -> str:
        """For people: `the bundled service` or `node server.js (in /srv/app)`."""
        from rexctl.redact import redact_text

        if self.bundled:
            return "the bundled service"
        return f"{redact_text(shlex.join(self.command))} (in {self.dir})"

    def same_program(self, other: Backend) -> bool:
        return (self.command, self.dir) == (other.command, other.dir)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "command": list(self.command)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backend:
        return cls(
            command=tuple(str(a) for a in data.get("command") or ()),
            dir=str(data.get("dir") or ""),
            path=str(data.get("path") or cls.path),
            health_path=str(data.get("health_path") or cls.health_path),
        )


def _where(key: str, sources: dict[str, str], config_path: Path) -> str:
    option, env = _WHERE[key]
    origin = sources.get(key, "flag")
    if origin == "env":
        return env
    if origin == "file":
        return f"`{key}` in {config_path}"
    return option


def resolve(
    command: str,
    directory: str,
    *,
    cwd: Path,
    path: str = "/api/products",
    health_path: str = "/health",
    sources: dict[str, str] | None = None,
    config_path: Path = Path("rexctl.toml"),
    search_path: str | None = None,
) -> Backend:
    """The backend the settings ask for; refuses what could not start (UsageError, exit 2).

    `sources` says where each setting came from (config.Config.sources), for the messages;
    `search_path` is the PATH the tasks get (default: this process's)."""
    sources = sources or {}
    if not command:
        if directory:
            raise UsageError(
                f"{_where(DIR_KEY, sources, config_path)} is set but there is no backend command: "
                "the bundled service runs without it.",
                hint="Give the command too (--backend-command 'node server.js'), or drop the "
                "directory.",
            )
        return Backend(path=path, health_path=health_path)
    where = _where(COMMAND_KEY, sources, config_path)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(
            f"{where}: cannot split {command!r} into words: {exc}.",
            hint="Quote as in a POSIX shell, e.g. --backend-command \"node 'my server.js'\".",
        ) from None
    if not argv or not argv[0]:
        raise UsageError(f"{where} is empty: give the command that starts your backend.")
    root = (cwd / Path(directory).expanduser()).resolve() if directory else cwd.resolve()
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise UsageError(f"{_where(DIR_KEY, sources, config_path)}: {root} {what}.")
    program = argv[0]
    if "/" in program:
        found = root / program
        if not (found.is_file() and os.access(found, os.X_OK)):
            raise UsageError(
                f"{where}: {program} is not an executable file in {root}.",
                hint="Name a program on the PATH (node, python3, ...) or a path relative to the "
                "backend directory.",
            )
    elif shutil.which(program, path=os.environ.get("PATH", "") if search_path is None
                      else search_path) is None:  # fmt: skip
        hint = (
            "The command is split into words and run without a shell: to set a variable, "
            "write `env NAME=value program ...`, or `sh -c '...'` for shell syntax."
            if "=" in program
            else "Install it or give its full path."
        )
        raise UsageError(f"{where}: {program!r} is not found on the PATH.", hint=hint)
    return Backend(tuple(argv), str(root), path, health_path)


def write(directory: Path, backend: Backend) -> None:
    from rexctl.sandbox.state import write_json

    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / FILE, backend.to_dict())


def read(directory: Path) -> Backend:
    """What the sandbox of `directory` runs (the bundled service when nothing says otherwise)."""
    try:
        data = json.loads((directory / FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return Backend()
    return Backend.from_dict(data) if isinstance(data, dict) else Backend()
