"""IAM policy evaluation, reduced to what the sandbox asks: may this role do `action` on `resource`?

ECS resolves a container's `secrets` with the task definition's execution role when it starts a
task. The sandbox asks the same question of the role's policies in moto (its inline policies and
the default version of each attached managed policy) with this matcher:

- a statement applies when its `Action` (or `NotAction`) and `Resource` (or `NotResource`) match;
  `*` matches any run of characters and `?` one character, actions case-insensitively (as IAM
  does), resources case-sensitively and part by part (the colon-separated parts of an ARN);
- an explicit `Deny` that applies wins over any `Allow`; without an applicable `Allow` the answer
  is an implicit deny, as on AWS.

Limits (what IAM does and this does not): `Condition` blocks are not evaluated (a statement with a
condition counts as if the condition held); policy variables (`${aws:username}`) are not
substituted; permission boundaries, session policies, SCPs, resource-based policies (a secret's
resource policy) and KMS key policies are not read (a key is taken to delegate to IAM, as the
default key policy does).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

ECS_TASKS = "ecs-tasks.amazonaws.com"


class Decision(enum.Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicit-deny"  # a Deny statement applies
    IMPLICIT_DENY = "implicit-deny"  # no Allow statement applies


@lru_cache(maxsize=512)
def _pattern(glob: str, fold: bool) -> re.Pattern[str]:
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def matches(glob: str, value: str, *, fold: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` exactly one."""
    return _pattern(glob, fold).fullmatch(value) is not None


def resource_matches(pattern: str, arn: str) -> bool:
    """An ARN pattern against an ARN, as IAM compares them: each of the six colon-separated
    parts on its own (a wildcard does not reach across a colon of the first five), the last part
    (the resource, which may hold colons) as a whole."""
    if pattern == "*":
        return True
    if not (pattern.startswith("arn:") and arn.startswith("arn:")):
        return matches(pattern, arn)
    want, have = pattern.split(":", 5), arn.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return False
    return all(matches(w, h) for w, h in zip(want, have, strict=True))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _document(raw: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    text = raw.strip()
    if not text.startswith("{"):  # IAM hands documents out URL-encoded
        text = unquote(text)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def statements(raw: str | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = _document(raw).get("Statement", [])
    items = [found] if isinstance(found, Mapping) else found if isinstance(found, list) else []
    return [s for s in items if isinstance(s, Mapping)]


def _applies(stmt: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Action" in stmt:
        ok = any(matches(a, action, fold=True) for a in _strings(stmt["Action"]))
    elif "NotAction" in stmt:
        ok = not any(matches(a, action, fold=True) for a in _strings(stmt["NotAction"]))
    else:
        ok = False
    if not ok:
        return False
    if "Resource" in stmt:
        return any(resource_matches(r, resource) for r in _strings(stmt["Resource"]))
    if "NotResource" in stmt:
        return not any(resource_matches(r, resource) for r in _strings(stmt["NotResource"]))
    return False


def evaluate(documents: Iterable[str | Mapping[str, Any]], action: str, resource: str) -> Decision:
    """What the identity policies `documents` (JSON text or parsed) say about `action` on
    `resource`: an applicable Deny wins, else an applicable Allow, else an implicit deny."""
    allowed = False
    for doc in documents:
        for stmt in statements(doc):
            if not _applies(stmt, action, resource):
                continue
            effect = str(stmt.get("Effect", ""))
            if effect == "Deny":
                return Decision.EXPLICIT_DENY
            if effect == "Allow":
                allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


def trusts(trust_policy: str | Mapping[str, Any], service: str = ECS_TASKS) -> bool:
    """Whether a role's trust policy lets `service` assume it (sts:AssumeRole, Allow)."""
    for stmt in statements(trust_policy):
        if stmt.get("Effect") != "Allow":
            continue
        if not any(matches(a, "sts:AssumeRole", fold=True) for a in _strings(stmt.get("Action"))):
            continue
        principal = stmt.get("Principal")
        if principal == "*":
            return True
        if isinstance(principal, Mapping) and service in _strings(principal.get("Service")):
            return True
    return False
