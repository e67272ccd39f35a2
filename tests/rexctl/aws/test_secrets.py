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


def test_create_waits_while_a_secret_of_that_name_is_still_being_deleted() -> None:
    """Secrets Manager deletes asynchronously, even with ForceDeleteWithoutRecovery: CreateSecret
    right after answers InvalidRequestException until the old secret is gone."""
    import pytest
    from botocore.stub import Stubber

    from rexctl.errors import AwsError

    sm = boto3.client("secretsmanager", region_name="us-east-1")
    stub = Stubber(sm)
    request = sm_api.secret_request(
        "rexctl/c/auth-token", "t" * 32, "desc", {"managed-by": "rexctl"}
    )
    scheduled = (
        "You can't create this secret because a secret with this name is already scheduled for "
        "deletion."
    )
    for _ in range(2):
        stub.add_client_error(
            "create_secret", "InvalidRequestException", scheduled, expected_params=request
        )
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/c/auth-token-AbCdEf"
    stub.add_response("create_secret", {"ARN": arn, "Name": "rexctl/c/auth-token"}, request)
    # Another InvalidRequestException is not retried.
    stub.add_client_error(
        "create_secret", "InvalidRequestException", "something else", expected_params=request
    )
    slept: list[float] = []
    with stub:
        assert sm_api.send_create_secret(sm, request, sleep=slept.append) == arn
        with pytest.raises(AwsError, match="something else"):
            sm_api.send_create_secret(sm, request, sleep=slept.append)
        stub.assert_no_pending_responses()
    assert slept == [1.0, 2.0]

    # Bounded: still being deleted after the wait is an error that says to try again later.
    stub = Stubber(sm)
    for _ in range(3):
        stub.add_client_error(
            "create_secret", "InvalidRequestException", scheduled, expected_params=request
        )
    slept = []
    with stub, pytest.raises(AwsError) as info:
        sm_api.send_create_secret(sm, request, sleep=slept.append, timeout=3.0)
    stub.assert_no_pending_responses()
    assert slept == [1.0, 2.0]
    assert info.value.message == (
        "Secret rexctl/c/auth-token was still being deleted after 3 s, so it cannot be created "
        "again yet."
    )


def test_a_secret_deleted_without_recovery_shows_as_being_deleted() -> None:
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arn = sm.create_secret(Name="a", SecretString="x" * 20)["ARN"]
        sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
        found = sm_api.find_secret(sm, "a")
        assert found is not None and found.scheduled_for_deletion and not found.being_deleted


def test_which_value_from_names_the_secret() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/c/auth-token-AbCdEf"
    secret = sm_api.SecretView("rexctl/c/auth-token", arn)
    partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/c/auth-token"
    for value in (arn, f"{arn}:token::", partial, f"{partial}:token::", "rexctl/c/auth-token"):
        assert secret.refers_to_me(value), value
    for value in (f"{arn}x", "rexctl/c/auth-token-2", "arn:aws:ssm:us-east-1:1:parameter/x"):
        assert not secret.refers_to_me(value), value


def test_a_new_version_is_staged_then_made_current() -> None:
    """rotate-token's Secrets Manager side: PutSecretValue as AWSPENDING (readers still get the
    current token), the same request again changes nothing (ClientRequestToken), then AWSCURRENT
    moves to it and AWSPENDING comes off."""
    from rexctl.sandbox.moto_state import fix_secret_versions

    with mock_aws():
        fix_secret_versions()  # GetSecretValue without a version reads AWSCURRENT, as on AWS
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        name = sm_api.secret_name("cache-1")
        arn = sm_api.create_secret(sm, name, "Old-token-0123456789", "d", {})
        old = sm_api.find_secret(sm, name)
        assert old is not None and old.pending_version == ""
        request = sm_api.pending_request(
            arn, "New-token-0123456789", "0" * 8 + "-1111-2222-3333-" + "4" * 12
        )
        version = sm_api.put_pending(sm, request)
        assert sm_api.put_pending(sm, request) == version, "sent again: the same version"
        staged = sm_api.find_secret(sm, name)
        assert staged is not None and staged.pending_version == version
        assert staged.current_version == old.current_version
        assert sm_api.read_secret(sm, arn) == "Old-token-0123456789"
        assert sm_api.read_secret(sm, arn, version) == "New-token-0123456789"
        for step in sm_api.promote_requests(arn, version, old.current_version):
            sm_api.update_stage(sm, step)
        done = sm_api.find_secret(sm, name)
        assert done is not None
        assert (done.current_version, done.pending_version) == (version, "")
        assert done.labelled("AWSPREVIOUS") == old.current_version
        assert sm_api.read_secret(sm, arn) == "New-token-0123456789"
