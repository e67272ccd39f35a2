"""The one `aws` fixture of the provisioning and adapter tests: moto in-process and the client
bundle the provisioning world is built with (tests/rexctl/aws/world.py). The drills' tests build
their own world on top of moto (tests/rexctl/drills/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from rexctl.aws.session import ClientSet
from tests.rexctl.aws.world import clients


@pytest.fixture
def aws() -> Iterator[ClientSet]:
    with mock_aws():
        yield clients()
