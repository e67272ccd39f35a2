"""Provisioning tests run on moto, which does not implement DescribeCacheEngineVersions: give it
AWS's answer (tests of what rexctl does without one, or with another, set their own)."""

from __future__ import annotations

import pytest

from tests.rexctl.aws.world import answer_engine_versions


@pytest.fixture(autouse=True)
def aws_engine_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    answer_engine_versions(monkeypatch)
