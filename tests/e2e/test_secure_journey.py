"""End to end, with in-transit encryption and an AUTH token on (issue 10): steps 1-12 on the
sandbox, whose AWS refuses what AWS refuses (an AUTH token without TLS, TLS without a subnet group,
`secrets` without an execution role) and whose ECS starts a task only when the execution role may
read its secret. The sandbox does not speak TLS or AUTH on the node yet (docs/sandbox.md), so the
journey stops at the deployed revision: its tasks started with the secret, as ECS would start
them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rexctl.sandbox.state import CLUSTER, SERVICE


def rexctl(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "rexctl", *args],
        cwd=cwd, env={**os.environ, "REXCTL_DEBUG": "", **(env or {})},
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"rexctl {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout) if "--json" in args else proc


@pytest.mark.e2e
def test_tls_and_auth_provision_and_deploy_on_the_sandbox(tmp_path: Path) -> None:
    rexctl(tmp_path, "sandbox", "up")
    try:
        secure = {"REXCTL_CACHE_TLS": "true", "REXCTL_CACHE_AUTH": "true"}
        config = str(tmp_path / "rexctl.toml")
        base = ["--sandbox", "--config", config]
        rexctl(tmp_path, *base, "init", "--cluster", CLUSTER, "--service", SERVICE, "--force")
        provisioned = rexctl(tmp_path, *base, "provision", "--timeout", "120", "--json", env=secure)
        assert provisioned["status"] == "available" and provisioned["endpoint"]
        deployed = rexctl(tmp_path, *base, "deploy", "--timeout", "120", "--poll", "0.5",
                          "--json", env=secure)  # fmt: skip
        assert deployed["status"] == "deployed", deployed
        revision = deployed["plan"]["revision"]
        (container,) = [c for c in revision["containerDefinitions"] if c["name"] == "backend"]
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["REDIS_TLS"] == "true" and "REDIS_AUTH_TOKEN" not in env
        assert [s["name"] for s in container["secrets"]] == ["REDIS_AUTH_TOKEN"]
        assert revision["executionRoleArn"].endswith(":role/ecsTaskExecutionRole")
    finally:
        rexctl(tmp_path, "sandbox", "down")
