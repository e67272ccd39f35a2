"""Secrets Manager adapter and the AUTH token rules."""

from __future__ import annotations

import re

import boto3
from moto import mock_aws

from rexctl.aws import secrets as sm_api


def test_generated_tokens_meet_elasticache_rules() -> None:
    tokens = {sm_api.generate_auth_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) == 64
        assert re.fullmatch(r"[A-Za-z0-9!&#$^<>\-]+", token)
        assert sum(ch in sm_api.TOKEN_SPECIALS for ch in token) == 4
        assert sm_api.token_problem(token) is None


def test_token_rules() -> None:
    assert sm_api.token_problem("a" * 15) == (
        "an AUTH token must be 16 to 128 characters long (this one has 15)"
    )
    assert sm_api.token_problem("a" * 129) is not None
    assert sm_api.token_problem("a" * 16) is None
    assert sm_api.token_problem("a" * 20 + "@") == (
        "an AUTH token may only use letters, digits and !&#$^<>-"
    )
    assert sm_api.token_problem("a" * 20 + " ") is not None
    assert sm_api.token_problem("a" * 20 + "!&#$^<>-") is None


def test_secret_lifecycle() -> None:
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        name = sm_api.secret_name("cache-1")
        assert name == "rexctl/cache-1/auth-token"
        assert sm_api.find_secret(sm, name) is None
        arn = sm_api.create_secret(sm, name, "t" * 32, "desc", {"managed-by": "rexctl"})
        found = sm_api.find_secret(sm, name)
        assert found is not None and found.arn == arn and found.tags == {"managed-by": "rexctl"}
        assert sm_api.read_secret(sm, arn) == "t" * 32
        sm_api.delete_secret(sm, arn)
        assert sm_api.find_secret(sm, name) is None
