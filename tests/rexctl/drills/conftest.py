"""Fixtures for the drill tests: a moto world in-process, its config, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from rexctl import config as config_mod
from rexctl.aws.session import AwsClients
from tests.helpers import FakeTime
from tests.rexctl.drills import world as world_mod


@dataclass
class Aws:
    clients: AwsClients
    world: world_mod.World
    state_dir: Path

    def config(self, url: str = "http://127.0.0.1:9/api/products", **env: str) -> Any:
        environ = {
            "REXCTL_REGION": "us-east-1",
            "REXCTL_STATE_DIR": str(self.state_dir),
            "REXCTL_CACHE_ID": world_mod.CACHE_ID,
            "REXCTL_ECS_CLUSTER": world_mod.CLUSTER,
            "REXCTL_ECS_SERVICE": world_mod.SERVICE,
            "REXCTL_ECS_CONTAINER": world_mod.CONTAINER,
            "REXCTL_ECS_VPC_ID": self.world.vpc_id,
            "REXCTL_APP_URL": url,
            **env,
        }
        return config_mod.load(self.state_dir / "missing.toml", environ=environ)


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Aws]:
    with mock_aws():
        world_mod.keep_tasks_running()
        try:
            clients = AwsClients(region="us-east-1")
            yield Aws(clients, world_mod.build(clients), tmp_path / "state")
        finally:
            world_mod.default_task_transitions()


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime(1000.0)
