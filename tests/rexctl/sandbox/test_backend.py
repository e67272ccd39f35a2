"""The user's backend as the sandbox's tasks: how the command is read and refused, and what a
task of it gets (its directory, PORT, REDIS_* through the gate, no database), how it is stopped
(a launcher's child too), and what `up` says when it never becomes healthy."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rexctl.cli import app
from rexctl.errors import UsageError
from rexctl.sandbox import backend, control
from rexctl.sandbox.backend import Backend
from rexctl.sandbox.state import sandbox_dir
from tests.rexctl.sandbox.conftest import Sandbox, wait_for
from tests.rexctl.sandbox.test_tasks import environ

runner = CliRunner()


def resolve(command: str, directory: str = "", **kw: object) -> Backend:
    return backend.resolve(command, directory, cwd=kw.pop("cwd", Path.cwd()), **kw)  # type: ignore[arg-type]


def refused(command: str, directory: str = "", **kw: object) -> UsageError:
    with pytest.raises(UsageError) as info:
        resolve(command, directory, **kw)
    return info.value


def test_no_command_is_the_bundled_service() -> None:
    b = resolve("", path="/items", health_path="/ping")
    assert (b.bundled, b.command, b.dir) == (True, (), "")
    assert (b.path, b.health_path, b.describe()) == ("/items", "/ping", "the bundled service")


def test_the_command_is_split_like_a_shell_and_runs_in_its_directory(tmp_path: Path) -> None:
    (tmp_path / "my app").mkdir()
    b = resolve("python3 'server one.py' --port \"$PORT\"", "my app", cwd=tmp_path)
    assert b.command == ("python3", "server one.py", "--port", "$PORT")  # no shell expands it
    assert b.dir == str(tmp_path / "my app")
    assert b.describe() == f"python3 'server one.py' --port '$PORT' (in {tmp_path / 'my app'})"
    assert resolve("python3 x.py", cwd=tmp_path).dir == str(tmp_path)  # default: cwd
    assert resolve("python3 x.py", "~").dir == str(Path.home().resolve())
    assert Backend.from_dict(json.loads(json.dumps(b.to_dict()))) == b


def test_a_program_named_by_path_is_found_in_the_backend_directory(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    err = refused("./run.sh", cwd=tmp_path)
    assert err.message == f"--backend-command: ./run.sh is not an executable file in {tmp_path}."
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert resolve("./run.sh", cwd=tmp_path).command == ("./run.sh",)


@pytest.mark.parametrize(
    ("command", "directory", "message"),
    [
        ("   ", "", "--backend-command is empty: give the command that starts your backend."),
        ("''", "", "--backend-command is empty: give the command that starts your backend."),
        ("node 'x", "", "--backend-command: cannot split \"node 'x\" into words: No closing "
         "quotation."),
        ("no-such-program-rexctl x", "", "--backend-command: 'no-such-program-rexctl' is not "
         "found on the PATH."),
        ("", "somewhere", "--backend-dir is set but there is no backend command: the bundled "
         "service runs without it."),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_what_to_do(command: str, directory: str, message: str) -> None:
    assert refused(command, directory).message == message


def test_a_missing_directory_and_a_file_are_refused(tmp_path: Path) -> None:
    err = refused("python3 x.py", "nope", cwd=tmp_path)
    assert err.message == f"--backend-dir: {tmp_path / 'nope'} does not exist."
    (tmp_path / "file").write_text("")
    err = refused("python3 x.py", "file", cwd=tmp_path)
    assert err.message == f"--backend-dir: {tmp_path / 'file'} is not a directory."


def test_the_message_names_where_the_value_came_from(tmp_path: Path) -> None:
    err = refused("FOO=1 node x.js", sources={"sandbox.backend_command": "env"})
    assert err.message == "REXCTL_SANDBOX_BACKEND_COMMAND: 'FOO=1' is not found on the PATH."
    assert "env NAME=value program" in (err.hint or "")
    err = refused("python3 x", "nope", cwd=tmp_path, sources={"sandbox.backend_dir": "file"},
                  config_path=tmp_path / "rexctl.toml")  # fmt: skip
    assert err.message.startswith(f"`sandbox.backend_dir` in {tmp_path / 'rexctl.toml'}: ")
    assert resolve("python3 x", search_path=str(Path(sys.executable).parent)).command[0]
    assert refused("python3 x", search_path=str(tmp_path)).message.endswith(
        "not found on the PATH."
    )


def test_the_cli_refuses_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rexctl.toml").write_text("[sandbox]\nbackend_command = 'node server.js'\n")
    for args in (["sandbox", "up"], ["rehearse"]):
        result = runner.invoke(app, [*args, "--backend-dir", "missing"])
        assert result.exit_code == 2, result.output
        assert result.stderr == f"Error: --backend-dir: {tmp_path / 'missing'} does not exist.\n"
    result = runner.invoke(app, ["rehearse", "--drill", "break-everything"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: Unknown drill 'break-everything' for --drill.")
    env = {"REXCTL_SANDBOX_BACKEND_COMMAND": "   "}
    result = runner.invoke(app, ["sandbox", "up", "--backend-dir", "."], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: REXCTL_SANDBOX_BACKEND_COMMAND is empty")
    assert not (tmp_path / ".rexctl").exists(), "nothing was started or written"


SERVER = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"source": "db", "path": self.path, "cwd": os.getcwd()}).encode()
        self.send_response(200 if self.path in ("/ping", "/items") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

print("backend up on", os.environ["PORT"], flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def test_a_users_backend_runs_as_the_tasks_and_nothing_of_it_outlives_the_sandbox(
    tmp_path: Path,
) -> None:
    """A launcher (`sh -c '...; exit'` keeps sh as the parent) in the backend's directory, with a
    health path and products path of its own."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "server.py").write_text(SERVER)
    python = shlex.quote(sys.executable)
    chosen = resolve(f"sh -c '{python} server.py; exit 3'", str(code), path="/items",
                     health_path="/ping")  # fmt: skip
    cwd = tmp_path / "here"
    cwd.mkdir()
    try:
        up = control.up(cwd, backend=chosen)
        assert up.state.app_url.endswith("/items")
        answer = httpx.get(up.state.app_url, timeout=10).json()
        assert answer == {"source": "db", "path": "/items", "cwd": str(code)}
        view = control.status(cwd)
        assert view is not None and view.backend == chosen
        task = view.tasks[0]
        env = environ(task.pid)
        assert env["PORT"] == str(task.port)
        assert "DATABASE_PATH" not in env, "a user's backend brings its own data"
        assert env["REDIS_ENABLED"] == "false" and env["DB_DELAY_MS"] == "300"
        with pytest.raises(UsageError) as info:
            control.up(cwd)  # the bundled service was asked for: not what runs
        assert info.value.message == (
            f"The sandbox running here runs sh -c '{python} server.py; exit 3' (in {code}) "
            "(app.path /items, app.health_path /ping), not the bundled service."
        )
        launchers = [t.pid for t in view.tasks]
        # ecs:StopTask stops the launcher, and the server it started goes with it.
        child = next(p for p in _pids_in(code) if _ppid(p) == task.pid)
        Sandbox(cwd, up.state).client("ecs").stop_task(cluster="rexpress", task=task.arn)
        wait_for(lambda: _state(child) in ("", "Z"), what="the stopped task's server to end")
    finally:
        down = control.down(cwd)
    assert down.was_running
    assert _pids_in(code) == [], "the servers the launchers started are gone too"
    assert all(not Path(f"/proc/{pid}").exists() or _state(pid) == "Z" for pid in launchers)


def _pids_in(directory: Path) -> list[int]:
    """Live processes working in `directory`."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit() and _state(int(p)) not in ("", "Z"):
            try:
                if os.readlink(f"/proc/{p}/cwd") == str(directory):
                    found.append(int(p))
            except OSError:
                continue
    return found


def _ppid(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return int(raw[raw.rindex(")") + 2 :].split()[1])


def _state(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return raw[raw.rindex(")") + 2 :].split()[0]


def test_a_backend_that_never_becomes_healthy_is_refused_with_its_output(tmp_path: Path) -> None:
    """`up` does not wait its minute: after three tasks stopped before they were healthy it says
    so, with the end of their output, and leaves nothing running."""
    python = shlex.quote(sys.executable)
    chosen = resolve(f"{python} -c \"print('missing module: flask'); raise SystemExit(3)\"",
                     str(tmp_path))  # fmt: skip
    started = time.monotonic()
    with pytest.raises(UsageError) as info:
        control.up(tmp_path, backend=chosen)
    message = info.value.message
    assert message.startswith("The sandbox did not start: the service's tasks ("), message
    assert re.search(
        r"did not become healthy: [3-9] task\(s\) stopped before they were healthy\. A task must "
        r"listen on 127\.0\.0\.1:\$PORT and answer GET /health with 200\. The last output of "
        r"task [0-9a-f-]+:\n",
        message,
    ), message
    assert "    missing module: flask" in message
    assert time.monotonic() - started < 45, "not after the 60 s readiness deadline"
    assert not (sandbox_dir(tmp_path) / "state.json").exists()
    assert control.status(tmp_path) is None
