"""Secrets Manager adapter: the cache's AUTH token (guide step 9).

ElastiCache accepts an AUTH token of 16 to 128 printable characters whose only special characters
are `! & # $ ^ < > -`; anything else fails with "Invalid AuthToken". rexctl generates one with the
`secrets` module, checks it against those rules itself (moto checks nothing), keeps it only in
Secrets Manager, and never prints it.

Secrets Manager deletes asynchronously, even with ForceDeleteWithoutRecovery: for a while after
the delete call the name is still taken, and CreateSecret with it answers InvalidRequestException
"You can't create this secret because a secret with this name is already scheduled for deletion."
`send_create_secret` waits and retries (bounded) while that lasts.

A new token for a secret that exists (`rexctl rotate-token`) goes through its versions as Secrets
Manager's own rotation does: PutSecretValue with the staging label AWSPENDING (readers, among
them ECS when it starts a task, still get AWSCURRENT, the old token), then, once the cache
accepts it, UpdateSecretVersionStage moves AWSCURRENT to it (AWSPREVIOUS follows to the old one by
itself) and takes AWSPENDING off. `SecretView` shows which version carries which label.
"""

from __future__ import annotations

import re
import secrets as _random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import answered, aws_errors, eventually, unless_missing
from rexctl.errors import RexctlError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

TOKEN_SPECIALS = "!&#$^<>-"
_TOKEN_RE = re.compile(r"[A-Za-z0-9!&#$^<>\-]{16,128}")


def token_problem(token: str) -> str | None:
    """Why ElastiCache would refuse this AUTH token, or None when it is acceptable."""
    if not 16 <= len(token) <= 128:
        return f"an AUTH token must be 16 to 128 characters long (this one has {len(token)})"
    if not _TOKEN_RE.fullmatch(token):
        return f"an AUTH token may only use letters, digits and {TOKEN_SPECIALS}"
    return None


def generate_auth_token(length: int = 64) -> str:
    """A random token of letters and digits with a few of the allowed special characters."""
    alphabet = string.ascii_letters + string.digits
    chars = [_random.choice(alphabet) for _ in range(length - 4)]
    chars += [_random.choice(TOKEN_SPECIALS) for _ in range(4)]
    # Shuffle with a CSPRNG so the specials are not always at the end.
    for i in range(len(chars) - 1, 0, -1):
        j = _random.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    token = "".join(chars)
    problem = token_problem(token)
    if problem:  # pragma: no cover - the alphabet above cannot produce this
        raise AssertionError(problem)
    return token


def secret_name(cache_id: str) -> str:
    return f"rexctl/{cache_id}/auth-token"


@dataclass(frozen=True)
class SecretView:
    name: str
    arn: str
    tags: dict[str, str] = field(default_factory=dict)
    scheduled_for_deletion: bool = False
    # True when its deletion date has passed: it was deleted without a recovery window (or the
    # window is over) and Secrets Manager is removing it; the name is free again shortly.
    being_deleted: bool = False
    # VersionIdsToStages: each version and its staging labels (AWSCURRENT, AWSPENDING, ...).
    versions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def labelled(self, label: str) -> str:
        """The version carrying `label` ('' when none does)."""
        return next((v for v, labels in self.versions.items() if label in labels), "")

    @property
    def current_version(self) -> str:
        return self.labelled("AWSCURRENT")

    @property
    def pending_version(self) -> str:
        """A version staged as AWSPENDING that is not AWSCURRENT too ('' when none)."""
        pending = self.labelled("AWSPENDING")
        return pending if pending and pending != self.current_version else ""

    def refers_to_me(self, value_from: str) -> bool:
        """Whether an ECS container `secrets[].valueFrom` names this secret: its ARN, its partial
        ARN (without the 6 random characters) or its name, each optionally followed by
        `:json-key:version-stage:version-id` (ECS developer guide, "Pass Secrets Manager secrets
        through Amazon ECS environment variables")."""
        bases = [self.arn, self.name]
        head, sep, _ = self.arn.partition(":secret:")
        if sep:
            bases.append(f"{head}:secret:{self.name}")
        return any(b and (value_from == b or value_from.startswith(b + ":")) for b in bases)


def find_secret(client: SecretsManagerClient, name: str) -> SecretView | None:
    """The secret (scheduled for deletion or not), or None when it does not exist."""
    resp = unless_missing(
        "ResourceNotFoundException",
        f"describe secret {name}",
        lambda: client.describe_secret(SecretId=name),
    )
    if resp is None:
        return None
    deleted = resp.get("DeletedDate")
    return SecretView(
        name=resp.get("Name", name),
        arn=resp.get("ARN", ""),
        tags={t["Key"]: t.get("Value", "") for t in resp.get("Tags", [])},
        scheduled_for_deletion=deleted is not None,
        being_deleted=isinstance(deleted, datetime) and _aware(deleted) <= datetime.now(UTC),
        versions={
            str(v): tuple(str(label) for label in labels)
            for v, labels in (resp.get("VersionIdsToStages") or {}).items()
        },
    )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def secret_request(name: str, value: Any, description: str, tags: dict[str, str]) -> dict[str, Any]:
    """The CreateSecret request (`value` is the token, or a plan's placeholder for it)."""
    return {
        "Name": name,
        "Description": description,
        "SecretString": value,
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


# How long rexctl waits for Secrets Manager to finish deleting a secret of the same name.
DELETION_WAIT_SECONDS = 60.0


def _still_being_deleted(exc: BaseException) -> bool:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    message = str(getattr(cause, "response", {}).get("Error", {}).get("Message", ""))
    return answered(exc, "InvalidRequestException") and "scheduled for deletion" in message


def send_create_secret(
    client: SecretsManagerClient,
    request: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = DELETION_WAIT_SECONDS,
) -> str:
    """CreateSecret; while a secret of that name is still being deleted, wait and try again (at
    most `timeout` seconds of waiting, backing off from 1 s to 10 s)."""
    name = request["Name"]
    try:
        resp = eventually(
            "InvalidRequestException",
            f"create secret {name}",
            lambda: client.create_secret(**request),
            timeout=timeout,
            sleep=sleep,
            first=1.0,
            cap=10.0,
            retry_if=_still_being_deleted,
        )
    except RexctlError as exc:
        if not _still_being_deleted(exc):
            raise
        raise type(exc)(
            f"Secret {name} was still being deleted after {timeout:g} s, so it cannot be created "
            "again yet.",
            hint="Secrets Manager deletes asynchronously; wait a minute and run "
            "`rexctl provision` again.",
        ) from exc
    return str(resp["ARN"])


def create_secret(
    client: SecretsManagerClient,
    name: str,
    value: str,
    description: str,
    tags: dict[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    return send_create_secret(client, secret_request(name, value, description, tags), sleep=sleep)


def read_secret(client: SecretsManagerClient, arn: str, version: str = "") -> str:
    """The secret's value: its AWSCURRENT version (what GetSecretValue returns when given no
    version), or the version `version`."""
    with aws_errors(f"read secret {arn}"):
        if version:
            resp = client.get_secret_value(SecretId=arn, VersionId=version)
        else:
            resp = client.get_secret_value(SecretId=arn)
    return str(resp.get("SecretString", ""))


PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"


def pending_request(arn: str, value: Any, request_token: str) -> dict[str, Any]:
    """The PutSecretValue request that stages a new value as AWSPENDING (`value`: the token, or a
    plan's placeholder). `request_token` becomes the new version's id; sent again, the same
    request is ignored (PutSecretValue is idempotent on ClientRequestToken)."""
    return {
        "SecretId": arn,
        "SecretString": value,
        "ClientRequestToken": request_token,
        "VersionStages": [PENDING],
    }


def put_pending(client: SecretsManagerClient, request: dict[str, Any]) -> str:
    """PutSecretValue a `pending_request`; the new version's id."""
    with aws_errors(f"store a new version of secret {request['SecretId']}"):
        resp = client.put_secret_value(**request)
    return str(resp.get("VersionId", request["ClientRequestToken"]))


def promote_requests(arn: str, version: str, current: str) -> list[dict[str, Any]]:
    """The UpdateSecretVersionStage requests that make `version` AWSCURRENT (Secrets Manager moves
    AWSPREVIOUS to `current` by itself) and then take AWSPENDING off it."""
    return [
        {"SecretId": arn, "VersionStage": CURRENT, "MoveToVersionId": version,
         "RemoveFromVersionId": current},
        {"SecretId": arn, "VersionStage": PENDING, "RemoveFromVersionId": version},
    ]  # fmt: skip


def update_stage(client: SecretsManagerClient, request: dict[str, Any]) -> None:
    with aws_errors(f"move the {request['VersionStage']} label of secret {request['SecretId']}"):
        client.update_secret_version_stage(**request)


def delete_secret(client: SecretsManagerClient, arn: str) -> None:
    """Delete at once: the cache that used the token is gone, and a recovery window would block
    re-creating the same name on the next `rexctl provision`."""
    with aws_errors(f"delete secret {arn}"):
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
