"""Secrets Manager adapter: the cache's AUTH token (guide step 9).

ElastiCache accepts an AUTH token of 16 to 128 printable characters whose only special characters
are `! & # $ ^ < > -`; anything else fails with "Invalid AuthToken". rexctl generates one with the
`secrets` module, checks it against those rules itself (moto checks nothing), keeps it only in
Secrets Manager, and never prints it.
"""

from __future__ import annotations

import re
import secrets as _random
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rexctl.aws.errors import aws_errors, unless_missing

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


def find_secret(client: SecretsManagerClient, name: str) -> SecretView | None:
    """The secret (scheduled for deletion or not), or None when it does not exist."""
    resp = unless_missing(
        "ResourceNotFoundException",
        f"describe secret {name}",
        lambda: client.describe_secret(SecretId=name),
    )
    if resp is None:
        return None
    return SecretView(
        name=resp.get("Name", name),
        arn=resp.get("ARN", ""),
        tags={t["Key"]: t.get("Value", "") for t in resp.get("Tags", [])},
        scheduled_for_deletion="DeletedDate" in resp,
    )


def create_secret(
    client: SecretsManagerClient, name: str, value: str, description: str, tags: dict[str, str]
) -> str:
    with aws_errors(f"create secret {name}"):
        resp = client.create_secret(
            Name=name,
            Description=description,
            SecretString=value,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
    return str(resp["ARN"])


def read_secret(client: SecretsManagerClient, arn: str) -> str:
    with aws_errors(f"read secret {arn}"):
        resp = client.get_secret_value(SecretId=arn)
    return str(resp.get("SecretString", ""))


def delete_secret(client: SecretsManagerClient, arn: str) -> None:
    """Delete at once: the cache that used the token is gone, and a recovery window would block
    re-creating the same name on the next `rexctl provision`."""
    with aws_errors(f"delete secret {arn}"):
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
