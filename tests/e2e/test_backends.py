"""End to end: `rexctl rehearse` judges a backend of the user's, in any language.

Each backend in tests/backends breaks the guide's promise in one way, or keeps it. The four that
break it are rehearsed with the one drill that tells their failure apart (break-nacl: the ACL
holds the packets of open connections, as a network partition does), the survivor with every
drill. The five rehearsals run side by side, each with a sandbox of its own (their ports are
chosen free), so the module costs about as long as its slowest rehearsal.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rexctl import advice
from tests.e2e.test_rehearse import working_in

BACKENDS = Path(__file__).resolve().parents[1] / "backends"
PYTHON = shlex.quote(sys.executable)
ONE_DRILL = ["--drill", "break-nacl", "--duration", "10", "--settle", "8"]
REHEARSALS = {
    "survivor": ("node survivor.js", ["--settle", "10"]),
    "hangs": ("node hangs.js", ONE_DRILL),
    "health_needs_redis": ("node health_needs_redis.js", ONE_DRILL),
    "no_reconnect": (f"{PYTHON} no_reconnect.py", ONE_DRILL),
    "exits_on_error": (f"{PYTHON} exits_on_error.py", ONE_DRILL),
}
JOURNEY = ["sandbox up", "init", "provision", "deploy", "verify"]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every backend's rehearsal: {name: (exit code, JSON, stderr)}."""
    procs = {}
    for name, (command, extra) in REHEARSALS.items():
        cwd = tmp_path_factory.mktemp(name)
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "rexctl", "rehearse", "--json", "--backend-command", command,
             "--backend-dir", str(BACKENDS), *extra],
            cwd=cwd, env={**os.environ, "REXCTL_DEBUG": ""}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=280)
        results[name] = (proc.returncode, json.loads(out) if out.strip() else {}, err)
    yield results
    assert working_in(BACKENDS) == [], "every sandbox stopped its backend's processes"


def steps(result: tuple[int, dict[str, Any], str]) -> dict[str, dict[str, Any]]:
    _, data, err = result
    assert data, err
    return {s["name"]: s for s in data["steps"]}


def journey_passed(result: tuple[int, dict[str, Any], str]) -> dict[str, dict[str, Any]]:
    """Steps 1-14 pass for every backend: it is read as the guide's backend is."""
    by_name = steps(result)
    assert [by_name[n]["status"] for n in JOURNEY] == ["passed"] * len(JOURNEY), result[2]
    assert by_name["verify"]["detail"] == (
        "deployment: passed; logs: passed; api: passed; cache: passed"
    )
    return by_name


def test_the_survivor_passes_every_step_and_gets_no_advice(rehearsed: dict[str, Any]) -> None:
    code, data, err = rehearsed["survivor"]
    by_name = journey_passed(rehearsed["survivor"])
    assert [s["status"] for s in data["steps"]] == ["passed"] * 8, err
    assert code == 0, err
    assert "tasks run node survivor.js" in by_name["sandbox up"]["detail"]
    assert data["backend"]["command"] == ["node", "survivor.js"]
    assert data["backend"]["dir"] == str(BACKENDS)
    assert data["advice"] == []
    assert by_name["chaos break-nacl"]["detail"] == (
        "logs show Redis error: passed; API still works: passed; tasks did not restart: passed; "
        "cache used again: passed"
    )


def drill_failed(result: tuple[int, dict[str, Any], str]) -> str:
    code, _, err = result
    by_name = journey_passed(result)
    assert list(by_name) == [*JOURNEY, "chaos break-nacl"], "only the drill asked for"
    drill = by_name["chaos break-nacl"]
    assert drill["status"] == "failed", err
    assert code == 1, err
    assert "The rehearsal failed at: 15 chaos break-nacl." in err
    return str(drill["detail"])


def test_a_backend_without_timeouts_fails_api_still_works_with_its_timeouts(
    rehearsed: dict[str, Any],
) -> None:
    detail = drill_failed(rehearsed["hangs"])
    assert "API still works: failed — " in detail
    assert "answers timed out after 5 s while the ACL denied the cache port" in detail
    assert "tasks did not restart: passed" in detail
    # It hung and logged nothing: the timeout comes first, "log every error" is left out.
    assert rehearsed["hangs"][1]["advice"] == [advice.TIMEOUT]


def test_a_health_check_that_asks_redis_gets_the_tasks_replaced(
    rehearsed: dict[str, Any],
) -> None:
    detail = drill_failed(rehearsed["health_needs_redis"])
    assert re.search(
        r"tasks did not restart: failed — [12] tasks? replaced after failing their "
        r"load-balancer health checks \(the health check depends on Redis\?\)",
        detail,
    ), detail
    assert advice.HEALTH in rehearsed["health_needs_redis"][1]["advice"]


def test_a_backend_that_never_reconnects_fails_cache_used_again(
    rehearsed: dict[str, Any],
) -> None:
    detail = drill_failed(rehearsed["no_reconnect"])
    assert detail.endswith(
        "(logs show Redis error: passed; API still works: passed; tasks did not restart: passed; "
        "cache used again: failed — no answer from the cache within 8 s of the restore (the "
        "backend does not reconnect to Redis?))"
    )
    assert rehearsed["no_reconnect"][1]["advice"] == [advice.RECONNECT]


def test_a_backend_that_exits_on_a_redis_error_gets_its_tasks_replaced(
    rehearsed: dict[str, Any],
) -> None:
    detail = drill_failed(rehearsed["exits_on_error"])
    assert "tasks did not restart: failed — " in detail
    assert "exited (exit code 1)" in detail and "(the backend exits on a Redis error?)" in detail
    assert advice.NO_EXIT in rehearsed["exits_on_error"][1]["advice"]
