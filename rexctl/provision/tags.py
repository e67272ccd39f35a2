"""Provisioning the cache (guide steps 1-11): discover, plan, apply, wait, tear down.

Read-only describes build a `Discovery`; `rexctl.provision.plan.build_plan` turns it into the
guide's steps with the actions each needs; an executor applies those actions (or, for
`--dry-run`, only shows them). What exists and matches is "done", not created again, so a second
run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

MANAGED_BY = ("managed-by", "rexctl")
CACHE_ID_TAG = "rexctl:cache-id"


def managed_tags(cache_id: str) -> dict[str, str]:
    """The tags on everything rexctl creates; teardown deletes only what carries them."""
    return {MANAGED_BY[0]: MANAGED_BY[1], CACHE_ID_TAG: cache_id}


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY[0]) == MANAGED_BY[1]


class Clients(Protocol):
    """The AWS clients provisioning uses (`rexctl.aws.session.AwsClients` is one)."""

    @property
    def ec2(self) -> EC2Client: ...

    @property
    def ecs(self) -> ECSClient: ...

    @property
    def elasticache(self) -> ElastiCacheClient: ...

    @property
    def secretsmanager(self) -> SecretsManagerClient: ...


@dataclass(frozen=True)
class ClientSet:
    """Explicit clients, e.g. moto-backed ones with one of them wrapped in a botocore Stubber."""

    ec2: Any
    ecs: Any
    elasticache: Any
    secretsmanager: Any


class Reporter(Protocol):
    """Where the core sends messages and progress; the CLI maps these to `rexctl.ui`."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def success(self, message: str) -> None: ...

    def progress(self, status: str, elapsed: float) -> None: ...


class RecordingReporter:
    """Keeps every message and progress report (tests, and callers that render later)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.progress_reports: list[tuple[str, float]] = []

    def info(self, message: str) -> None:
        self.events.append(("info", message))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))

    def success(self, message: str) -> None:
        self.events.append(("success", message))

    def progress(self, status: str, elapsed: float) -> None:
        self.progress_reports.append((status, elapsed))

    def text(self) -> str:
        return "\n".join(message for _, message in self.events)
