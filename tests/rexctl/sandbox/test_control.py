"""`rexctl sandbox up | status | env | down`, `--sandbox` discovery, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rexctl.cli import app
from rexctl.errors import UsageError
from rexctl.sandbox import control, discover
from rexctl.sandbox.state import alive, group_members, sandbox_dir

runner = CliRunner()


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def test_up_twice_reuses_and_down_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        first = runner.invoke(app, ["sandbox", "up", "--json"])
        assert first.exit_code == 0, first.output
        state = json.loads(first.stdout)
        assert state["started"] is True and state["running"] is True
        again = runner.invoke(app, ["sandbox", "up", "--json"])
        assert again.exit_code == 0, again.output
        reused = json.loads(again.stdout)
        assert reused["started"] is False and reused["pid"] == state["pid"]

        status = runner.invoke(app, ["sandbox", "status", "--json"])
        assert status.exit_code == 0, status.output
        view = json.loads(status.stdout)
        assert view["redis_up"] is True
        assert [t["status"] for t in view["tasks"]] == ["RUNNING", "RUNNING"]

        settings = discover.sandbox_settings(tmp_path)
        assert settings == {"endpoint_url": state["endpoint_url"], "region": "us-east-1"}
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.setenv("REXCTL_SANDBOX_DIR", state["dir"])  # what `sandbox env` exports
        assert discover.sandbox_settings(elsewhere) == settings
        monkeypatch.delenv("REXCTL_SANDBOX_DIR")
        seen = runner.invoke(app, ["--sandbox", "sandbox", "env"])
        assert seen.exit_code == 0, seen.output
        assert f"export AWS_ENDPOINT_URL={state['endpoint_url']}" in seen.stdout
        assert "export AWS_REGION=us-east-1" in seen.stdout
        assert "export AWS_DEFAULT_REGION=us-east-1" in seen.stdout
        assert "export AWS_ACCESS_KEY_ID=sandbox" in seen.stdout
        assert "export REXCTL_SANDBOX=1" in seen.stdout
        assert f"export REXCTL_APP_URL={state['app_url']}" in seen.stdout
        assert seen.stdout.startswith("unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN\n")

        pids = [state["pid"], state["redis_pid"], *(t["pid"] for t in view["tasks"])]
        ports = [
            state["lb_port"],
            state["redis_port"],
            int(state["endpoint_url"].rsplit(":", 1)[1]),
        ]
        ports += [t["port"] for t in view["tasks"]]
        assert all(alive(p) for p in pids)
    finally:
        down = runner.invoke(app, ["sandbox", "down", "--json"])
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout) == {"was_running": True, "killed": []}
    assert [p for p in pids if alive(p)] == []
    assert [p for p in ports if not refused(p)] == []
    assert not (sandbox_dir(tmp_path) / "state.json").exists()
    with pytest.raises(UsageError) as info:
        discover.sandbox_settings(tmp_path)
    assert info.value.message == "No sandbox is running here."


def test_sandbox_flag_without_a_sandbox_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--sandbox", "status"])
    assert result.exit_code == 2, result.output
    assert "Error: No sandbox is running here." in result.output
    assert "Start one with `rexctl sandbox up`." in result.output
    status = runner.invoke(app, ["sandbox", "status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout) == {"running": False}
    env = runner.invoke(app, ["sandbox", "env"])
    assert env.exit_code == 2, env.output


def test_a_stale_state_file_is_not_a_running_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale state file (its daemon is gone) is not a running sandbox, wherever it is named."""
    directory = sandbox_dir(tmp_path / "elsewhere")
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(json.dumps({
        "dir": str(directory), "pid": os.getpid(), "endpoint_url": "http://127.0.0.1:1",
        "region": "us-east-1", "app_url": "http://127.0.0.1:2/api/products", "lb_port": 2,
        "redis_port": 3, "redis_pid": 0, "log_path": "", "cluster": "rexpress",
        "service": "backend", "started_at": 0,
    }))  # fmt: skip
    monkeypatch.setenv("REXCTL_SANDBOX_DIR", str(directory))
    with pytest.raises(UsageError) as info:
        discover.sandbox_settings(tmp_path)
    assert info.value.message == "No sandbox is running here."


def test_up_without_redis_server_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = runner.invoke(app, ["sandbox", "up"])
    assert result.exit_code == 2, result.output
    assert (
        "Error: redis-server is not installed: the sandbox runs a real Redis for the cache node."
        in result.output
    )
    assert "sudo apt-get install redis-server" in result.output
    assert not (sandbox_dir(tmp_path) / "daemon.pid").exists()


def test_two_sandboxes_side_by_side_and_a_killed_daemon_takes_its_children_along(
    tmp_path: Path,
) -> None:
    """Two directories, two sandboxes started at once: nothing shared. SIGKILL one daemon: its
    redis-server and tasks die with it (nothing is orphaned), the other sandbox runs on, and
    `down` cleans up what the killed one left on disk."""
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(control.up, [first, second]))
    try:
        a, b = (r.state for r in started)
        assert all(r.started for r in started)
        ports_a = {a.lb_port, a.redis_port, a.endpoint_url}
        ports_b = {b.lb_port, b.redis_port, b.endpoint_url}
        assert ports_a.isdisjoint(ports_b)
        view = control.status(first)
        assert view is not None
        children = [a.redis_pid, *(t.pid for t in view.tasks)]
        assert len(children) == 3 and all(alive(p) for p in children)

        os.kill(a.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while [p for p in children if alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in children if alive(p)] == [], "the daemon's children outlived it"
        assert control.status(first) is None
        still = control.status(second)
        assert still is not None and still.redis_up
        assert httpx.get(b.app_url, timeout=10).status_code == 200

        assert control.down(first) == control.DownResult(was_running=False, stopped=[])
        assert not (sandbox_dir(first) / "state.json").exists()
    finally:
        control.down(first)
        control.down(second)
    assert group_members(b.pid) == [] and not alive(b.pid)
