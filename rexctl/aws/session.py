"""Builds the boto3 session and clients, in one place.

Profile, region and endpoint URL come from the resolved configuration (flag > env > file); boto3
itself also honours `AWS_ENDPOINT_URL`. Every client uses adaptive retries and a `rexctl/<version>`
user agent. boto3 is imported here lazily so that `rexctl --help` never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from rexctl import __version__
from rexctl.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient


class Clients(Protocol):
    """The AWS clients the core uses: the one bundle every stage takes (`AwsClients` is one)."""

    @property
    def ec2(self) -> EC2Client: ...

    @property
    def ecs(self) -> ECSClient: ...

    @property
    def elasticache(self) -> ElastiCacheClient: ...

    @property
    def logs(self) -> CloudWatchLogsClient: ...

    @property
    def secretsmanager(self) -> SecretsManagerClient: ...


@dataclass(frozen=True)
class Patience:
    """How long one AWS call may take: botocore's connect and read timeouts and its attempts
    (with its backoff between them, at most 20 s each). A call against an endpoint that never
    answers gives up after about max_attempts x (connect_timeout + read_timeout) + backoff."""

    connect_timeout: float
    read_timeout: float
    max_attempts: int


PATIENT = Patience(connect_timeout=10, read_timeout=60, max_attempts=8)  # provision, deploy, ...
# A drill's own calls (inject, restore): a dead endpoint must not hold a fault in place for
# minutes per call; the restore retries on its own (5 attempts, with backoff).
DRILL = Patience(connect_timeout=5, read_timeout=15, max_attempts=3)
# A drill's looks at the tasks and logs while the fault is in place (each also has a deadline).
LOOK = Patience(connect_timeout=3, read_timeout=8, max_attempts=2)


@dataclass(frozen=True)
class ClientSet:
    """Explicit clients, e.g. moto-backed ones with one of them wrapped in a botocore Stubber."""

    ec2: Any = None
    ecs: Any = None
    elasticache: Any = None
    secretsmanager: Any = None
    logs: Any = None


class AwsClients:
    """Lazily created, cached boto3 clients for one profile/region/endpoint."""

    def __init__(
        self,
        *,
        profile: str = "",
        region: str = "",
        endpoint_url: str = "",
        credentials: tuple[str, str] | None = None,
        patience: Patience | None = None,
    ) -> None:
        self.profile = profile or None
        self.region = region or None
        self.endpoint_url = endpoint_url or None
        self.patience = patience or PATIENT
        # Explicit keys (the sandbox's) replace boto3's chain, so real ones are never used.
        self.credentials = credentials
        self._clients: dict[str, Any] = {}

    @cached_property
    def session(self) -> Any:
        import boto3
        import botocore.exceptions

        try:
            if self.credentials is not None:
                import botocore.session

                # Neither AWS_PROFILE nor the environment's keys apply to explicit credentials.
                core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
                key, secret = self.credentials
                return boto3.Session(
                    aws_access_key_id=key,
                    aws_secret_access_key=secret,
                    region_name=self.region,
                    botocore_session=core,
                )
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except botocore.exceptions.ProfileNotFound:
            raise ConfigError(
                f"AWS profile {self.profile!r} is not in your AWS config.",
                hint="Check `--profile` / REXCTL_PROFILE, or list profiles with "
                "`aws configure list-profiles`.",
            ) from None

    def client(self, name: str) -> Any:
        if name not in self._clients:
            from botocore.config import Config

            if not self.session.region_name:
                raise ConfigError(
                    "No AWS region is set.",
                    hint="Pass `--region us-east-1`, set `region` in rexctl.toml, or export "
                    "AWS_REGION.",
                )
            config = Config(
                retries={"mode": "adaptive", "max_attempts": self.patience.max_attempts},
                user_agent_extra=f"rexctl/{__version__}",
                connect_timeout=self.patience.connect_timeout,
                read_timeout=self.patience.read_timeout,
            )
            kwargs: dict[str, Any] = {"config": config}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            self._clients[name] = self.session.client(name, **kwargs)
        return self._clients[name]

    @property
    def region_name(self) -> str:
        return str(self.session.region_name or "")

    @property
    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]

    @property
    def ecs(self) -> ECSClient:
        return self.client("ecs")  # type: ignore[no-any-return]

    @property
    def elasticache(self) -> ElastiCacheClient:
        return self.client("elasticache")  # type: ignore[no-any-return]

    @property
    def logs(self) -> CloudWatchLogsClient:
        return self.client("logs")  # type: ignore[no-any-return]

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return self.client("secretsmanager")  # type: ignore[no-any-return]
