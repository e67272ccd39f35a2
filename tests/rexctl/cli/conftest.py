"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.rexctl.deploy.world import finish_moto_rollout


@pytest.fixture
def ecs_finishes_rollouts() -> Iterator[None]:
    """Plays ECS: moto never moves its deployment to the new revision, so a thread in the test
    process (where the ThreadedMotoServer's backend lives) does it while the command waits."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.02):
            finish_moto_rollout()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)
