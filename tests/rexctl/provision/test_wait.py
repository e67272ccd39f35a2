"""Waiting for the cache (step 10) and the executor's way out: states moto never reaches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rexctl.aws.session import ClientSet
from rexctl.errors import AwsError, Interrupted, RexctlError
from rexctl.provision import provision
from rexctl.provision.model import RecordingReporter
from rexctl.provision.wait import wait_for_cache
from tests.rexctl.aws.world import REGION, build_world, write_config

NAME = {"ReplicationGroupId": "rexpress-redis"}


def described(status: str) -> dict[str, Any]:
    return {"ReplicationGroups": [{"ReplicationGroupId": "rexpress-redis", "Status": status}]}


def wait(ec: Any, **kwargs: Any) -> Any:
    return wait_for_cache(
        ec,
        "rexpress-redis",
        timeout=60,
        reporter=RecordingReporter(),
        clock=lambda: 0.0,
        sleep=lambda s: None,
        **kwargs,
    )


def test_a_failed_creation_stops_the_wait_at_once() -> None:
    ec = boto3.client("elasticache", region_name=REGION)
    stub = Stubber(ec)
    stub.add_response("describe_replication_groups", described("creating"), NAME)
    stub.add_response("describe_replication_groups", described("create-failed"), NAME)
    with stub, pytest.raises(AwsError) as info:
        wait(ec)
    stub.assert_no_pending_responses()
    assert info.value.message == "Replication group rexpress-redis is create-failed."
    # A group that failed to create does not go away by itself: the hint says to delete it.
    assert info.value.hint == (
        "A group that failed to create stays so; it will not recover or go away by itself. Its "
        "events: `aws elasticache describe-events --source-type replication-group "
        "--source-identifier rexpress-redis --duration 1440` (or its events in the ElastiCache "
        "console) say why. Delete it (`aws elasticache delete-replication-group "
        "--replication-group-id rexpress-redis`, or `rexctl teardown` when rexctl created it), "
        "wait until it is gone, then run `rexctl provision` again."
    )


def test_a_group_that_disappears_while_waiting_is_an_error() -> None:
    ec = boto3.client("elasticache", region_name=REGION)
    stub = Stubber(ec)
    stub.add_response("describe_replication_groups", described("creating"), NAME)
    stub.add_client_error(
        "describe_replication_groups", "ReplicationGroupNotFoundFault", expected_params=NAME
    )
    with stub, pytest.raises(AwsError) as info:
        wait(ec)
    assert info.value.message == (
        "Replication group rexpress-redis disappeared while rexctl waited for it."
    )
    assert info.value.hint == "Check the ElastiCache console, then run `rexctl provision` again."


def test_waiting_for_deletion_ends_when_the_group_is_gone() -> None:
    ec = boto3.client("elasticache", region_name=REGION)
    stub = Stubber(ec)
    stub.add_response("describe_replication_groups", described("deleting"), NAME)
    stub.add_client_error(
        "describe_replication_groups", "ReplicationGroupNotFoundFault", expected_params=NAME
    )
    with stub:
        assert wait(ec, gone=True) is None
        stub.assert_no_pending_responses()


def test_ctrl_c_half_way_says_what_exists(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)

    def interrupted() -> str:
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        provision(
            aws,
            cfg,
            reporter=RecordingReporter(),
            clock=lambda: 0.0,
            sleep=lambda s: None,
            token_factory=interrupted,
        )
    assert info.value.hint == (
        "Done before this failed: create cache subnet group rexpress-redis-subnets; create "
        f"security group rexpress-redis-sg in {world.vpc_id}; allow TCP 6379 from "
        f"{world.ecs_sg}. Everything rexctl created is tagged managed-by=rexctl. Run `rexctl "
        "provision` again: it continues from there."
    )
    assert aws.elasticache.describe_replication_groups()["ReplicationGroups"] == []


def test_a_secret_scheduled_for_deletion_blocks_with_the_way_out(
    aws: ClientSet, tmp_path: Path
) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    name = "rexctl/rexpress-redis/auth-token"
    aws.secretsmanager.create_secret(Name=name, SecretString="A" * 32)
    aws.secretsmanager.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    result = provision(
        aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None
    )
    error = result.error()
    assert isinstance(error, AwsError)
    assert (
        f"Step 9: Secret {name} is scheduled for deletion, so it can neither be read nor "
        "created again." in error.message
    )
    assert error.hint == (
        f"Restore it to reuse its token (`aws secretsmanager restore-secret --secret-id {name}`), "
        f"or delete it now (`aws secretsmanager delete-secret --secret-id {name} "
        "--force-delete-without-recovery`), then run `rexctl provision` again."
    )
    assert result.applied == []


def test_an_unusable_stored_token_names_its_secret(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    value = "a token with spaces in it"
    arn = aws.secretsmanager.create_secret(
        Name="rexctl/rexpress-redis/auth-token", SecretString=value
    )["ARN"]
    with pytest.raises(RexctlError) as info:
        provision(aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None)
    assert info.value.message == (
        f"The AUTH token stored in secret {arn} is not usable: an AUTH token may only use "
        "letters, digits and !&#$^<>-."
    )
    assert (info.value.hint or "").startswith(
        "Put a valid token in it (`aws secretsmanager put-secret-value`), or delete it so that "
        "rexctl generates one.\nDone before this failed: create cache subnet group"
    )
    assert value not in str(info.value) + (info.value.hint or "")
    assert aws.elasticache.describe_replication_groups()["ReplicationGroups"] == []


def test_a_one_letter_stored_token_does_not_garble_the_message(
    aws: ClientSet, tmp_path: Path
) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    aws.secretsmanager.create_secret(Name="rexctl/rexpress-redis/auth-token", SecretString="e")
    with pytest.raises(RexctlError) as info:
        provision(aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None)
    assert "must be 16 to 128 characters long (this one has 1)" in info.value.message
    assert "(redacted)" not in info.value.message + (info.value.hint or "")
