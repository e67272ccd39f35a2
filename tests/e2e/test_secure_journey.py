"""End to end, with in-transit encryption and an AUTH token (issues 10 and 13).

`rexctl rehearse --secure`: the whole journey, drills included, with TLS and AUTH on from the
start: the sandbox's node answers TLS with its CA's certificate and requires the token.
`rexctl rehearse --enable-later`: the journey plain, then both turned on by `rexctl provision`
while the API is asked, then the token rotated (`rexctl rotate-token`), watched the same way; no
answer fails and the cache keeps answering, and the report page draws both.

Each keeps its sandbox to look for the token afterwards: in what every command printed, in every
file of the sandbox (task logs, the daemon's log, drill journals, rexctl.toml) and in CloudWatch
Logs. It is in Secrets Manager, the node, and nowhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from rexctl.sandbox.state import read_state, sandbox_dir
from tests.browser import open_page

SECRET = "rexctl/rexpress-redis/auth-token"


def rehearse(cwd: Path, *args: str) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rexctl", "rehearse", "--keep", "--json", *args],
        cwd=cwd, env={**os.environ, "REXCTL_DEBUG": ""},
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr
    result = json.loads(proc.stdout)
    failed = [s for s in result["steps"] if s["status"] != "passed"]
    assert failed == [] and proc.returncode == 0, proc.stderr
    return result, proc.stdout + proc.stderr


def token_is_nowhere_but_where_it_belongs(cwd: Path, printed: str, *extra: Path) -> None:
    state = read_state(sandbox_dir(cwd))
    assert state is not None
    session = boto3.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
                            region_name=state.region)  # fmt: skip
    sm = session.client("secretsmanager", endpoint_url=state.endpoint_url)
    tokens = [sm.get_secret_value(SecretId=SECRET)["SecretString"]]
    stages = sm.describe_secret(SecretId=SECRET)["VersionIdsToStages"]
    if any("AWSPREVIOUS" in labels for labels in stages.values()):  # a token rotated out
        tokens.append(
            sm.get_secret_value(SecretId=SECRET, VersionStage="AWSPREVIOUS")["SecretString"]
        )
    assert all(len(token) == 64 for token in tokens)
    for token in tokens:
        assert token not in printed
    for path in [*sandbox_dir(cwd).rglob("*"), *extra]:
        if path.is_file() and path.name != "dump.rdb":
            body = path.read_bytes()
            assert not [t for t in tokens if t.encode() in body], path
    logs = session.client("logs", endpoint_url=state.endpoint_url)
    events = [
        e["message"]
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName="/ecs/rexpress-backend"
        )
        for e in page["events"]
    ]
    assert any("✅ Redis ready (TLS, AUTH)" in m for m in events)
    assert not [m for m in events if any(token in m for token in tokens)]


def down(cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "rexctl", "sandbox", "down"], cwd=cwd,
                   capture_output=True, timeout=60, check=False)  # fmt: skip


@pytest.mark.e2e
def test_rehearse_secure_runs_the_journey_with_tls_and_auth(tmp_path: Path) -> None:
    try:
        result, printed = rehearse(tmp_path, "--secure")
        names = [s["name"] for s in result["steps"]]
        assert names[-3:] == ["chaos break-sg", "chaos break-nacl", "chaos wrong-host"]
        verify = next(s for s in result["steps"] if s["name"] == "verify")
        assert "says `Redis ready (TLS, AUTH)`" in verify["detail"]
        assert result["steps"][2]["detail"].split("primary endpoint ")[1].startswith("master.")
        token_is_nowhere_but_where_it_belongs(tmp_path, printed)
    finally:
        down(tmp_path)


@pytest.mark.e2e
def test_rehearse_enable_later_turns_tls_and_auth_on_while_the_api_answers(
    tmp_path: Path,
) -> None:
    report = tmp_path / "rehearsal.html"
    try:
        result, printed = rehearse(tmp_path, "--enable-later", "--report-html", str(report))
        steps = result["steps"]
        later = next(s for s in steps if s["step"] == "9 later")
        assert set(later) == {"step", "name", "status", "detail", "observations"}
        answers = later["observations"]["answers"]
        assert answers and all(a["ok"] for a in answers)
        assert {a["phase"] for a in answers} == {"before", "during", "after"}
        assert set(answers[0]) == {"t", "phase", "status", "source", "latency_ms", "error", "ok"}
        summary = later["observations"]["summary"]
        assert summary["failed"] == 0 and summary["cache_after"]
        assert "0 plain connection(s)" in later["detail"]
        marks = later["observations"]["steps"]
        assert (marks[0]["kind"], marks[-1]["kind"]) == ("tls-preferred", "auth-set")
        assert all(0 < m["t"] <= m["t_end"] for m in marks)
        samples = later["observations"]["task_samples"]
        stopped = [{t["arn"] for t in s["stopped"]} for s in (samples[0], samples[-1])]
        assert len(stopped[1] - stopped[0]) >= samples[0]["desired"], "the rollout's old tasks"
        # The token rotated once, watched the same way: ROTATE, a forced deployment, SET.
        rotation = next(s for s in steps if s["step"] == "9 rotate")
        assert rotation["status"] == "passed", rotation["detail"]
        assert all(a["ok"] for a in rotation["observations"]["answers"])
        assert [m["kind"] for m in rotation["observations"]["steps"]] == [
            "token-stage", "auth-rotate", "token-promote", "redeploy", "verify", "auth-set"
        ]  # fmt: skip
        assert [s["name"] for s in steps][-1] == "verify (TLS, AUTH)"
        page = report.read_text(encoding="utf-8")
        assert page.count('<section class="watch"') == 2
        assert page.count('class="step-mark"') == len(marks) + 6
        assert "No answer failed, and the cache kept answering" in page
        # ...and as a browser builds it (the DOM only: the drills' page is checked by pixels in
        # tests/e2e/test_rehearse.py).
        dom = open_page(report, tmp_path / "later.png", size=(1280, 800)).dom
        assert dom.count('<section class="watch"') == 2 and dom.count('class="step-mark"') == (
            len(marks) + 6
        )
        assert '<a href="#watch-2">rotate-token</a>' in dom
        token_is_nowhere_but_where_it_belongs(tmp_path, printed, report)
    finally:
        down(tmp_path)


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rexctl", *args], cwd=cwd,
        env={**os.environ, "REXCTL_DEBUG": "", **(env or {})},
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"rexctl {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.e2e
def test_provision_interrupted_during_the_rollout_continues_where_it_stopped(
    tmp_path: Path,
) -> None:
    """Ctrl-C while TLS and AUTH later rolls the service, then `rexctl provision` again."""
    import signal
    import time

    secure = {"REXCTL_CACHE_TLS": "true", "REXCTL_CACHE_AUTH": "true"}
    base = ["--sandbox", "--config", str(tmp_path / "rexctl.toml")]
    run(tmp_path, "sandbox", "up")
    try:
        run(tmp_path, *base, "init", "--cluster", "rexpress", "--service", "backend", "--force")
        run(tmp_path, *base, "provision", "--timeout", "120")
        run(tmp_path, *base, "deploy", "--timeout", "120", "--poll", "0.5")
        proc = subprocess.Popen(
            [sys.executable, "-m", "rexctl", *base, "provision", "--timeout", "120", "--poll",
             "0.5"], cwd=tmp_path, env={**os.environ, "REXCTL_DEBUG": "", **secure},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            if "Step 9 (TLS/AUTH later): roll the service" in line:
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate(timeout=60)
        printed = "".join(seen) + err
        assert proc.returncode == 130, printed
        assert "At no step does the API lose its cache" in printed
        assert "Done: turn in-transit encryption on" in printed
        again = run(tmp_path, *base, "provision", "--timeout", "120", "--poll", "0.5", "--json",
                    env=secure)  # fmt: skip
        done = json.loads(again.stdout)["migration"]["done"]
        assert not any(d.startswith("turn in-transit encryption on") for d in done), done
        assert not any(d.startswith("ROTATE") for d in done), "the ROTATE is not repeated"
        assert any("required" in d for d in done) and any(d.startswith("SET") for d in done)
        token_is_nowhere_but_where_it_belongs(tmp_path, printed + again.stdout + again.stderr)
    finally:
        down(tmp_path)
