"""The sandbox's IAM policy matcher: wildcards, NotAction/NotResource, explicit Deny wins."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from rexctl.sandbox.iam import Decision, evaluate, matches, resource_matches, trusts

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/cache/auth-token-AbCdEf"
GET = "secretsmanager:GetSecretValue"


def policy(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_wildcards_match_as_iam_does() -> None:
    assert matches("secretsmanager:Get*", "secretsmanager:GetSecretValue", fold=True)
    assert matches("SecretsManager:getsecretvalue", GET, fold=True), "actions ignore case"
    assert not resource_matches("arn:aws:secretsmanager:*:*:secret:REXCTL/*", SECRET), "case"
    assert resource_matches("arn:aws:secretsmanager:*:*:secret:rexctl/*", SECRET)
    assert resource_matches(SECRET[:-6] + "??????", SECRET)
    assert not resource_matches(SECRET[:-6] + "?????", SECRET)
    assert not resource_matches("rexctl/*", SECRET), "a pattern matches the whole ARN"
    assert not resource_matches("arn:aws:*:secret:rexctl/*", SECRET), "part by part"
    assert resource_matches("*", SECRET)
    assert not matches("a.b", "axb"), "regex characters are literal"


def test_allow_deny_and_implicit_deny() -> None:
    allow = policy({"Effect": "Allow", "Action": [GET], "Resource": "arn:aws:*:secret:rexctl/*"})
    assert evaluate([allow], GET, SECRET) is Decision.IMPLICIT_DENY, "region/account parts"
    allow = policy({"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"})
    assert evaluate([allow], GET, SECRET) is Decision.ALLOWED
    assert evaluate([], GET, SECRET) is Decision.IMPLICIT_DENY
    deny = policy({"Effect": "Deny", "Action": GET, "Resource": SECRET})
    assert evaluate([allow, deny], GET, SECRET) is Decision.EXPLICIT_DENY
    assert evaluate([deny, allow], GET, SECRET) is Decision.EXPLICIT_DENY, "order does not matter"


def test_not_action_not_resource_and_single_statements() -> None:
    not_action = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert evaluate([{"Statement": not_action}], GET, SECRET) is Decision.ALLOWED
    not_resource = {"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:s3:::*"}
    assert evaluate([policy(not_action, not_resource)], GET, SECRET) is Decision.EXPLICIT_DENY


def test_conditions_are_not_evaluated() -> None:
    """A documented limit: a statement with a Condition applies as if the condition held."""
    conditional = policy({"Effect": "Allow", "Action": GET, "Resource": "*",
                          "Condition": {"StringEquals": {"aws:SourceAccount": "999"}}})  # fmt: skip
    assert evaluate([conditional], GET, SECRET) is Decision.ALLOWED


def test_url_encoded_and_broken_documents() -> None:
    allow = policy({"Effect": "Allow", "Action": GET, "Resource": "*"})
    assert evaluate([quote(allow)], GET, SECRET) is Decision.ALLOWED
    assert evaluate(["not json", "{}"], GET, SECRET) is Decision.IMPLICIT_DENY


def test_trust_policy_for_ecs_tasks() -> None:
    trust = {"Effect": "Allow", "Principal": {"Service": ["ecs-tasks.amazonaws.com"]},
             "Action": "sts:AssumeRole"}  # fmt: skip
    assert trusts(policy(trust))
    assert not trusts(policy({**trust, "Principal": {"Service": "ec2.amazonaws.com"}}))
    assert not trusts(policy({**trust, "Effect": "Deny"}))
    assert trusts({"Statement": {**trust, "Principal": "*"}})
