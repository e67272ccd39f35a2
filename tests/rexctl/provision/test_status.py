"""`rexctl status`: one screen, secrets redacted, works before anything was provisioned."""

from __future__ import annotations

from pathlib import Path

from rexctl.aws.session import ClientSet
from rexctl.provision import provision
from rexctl.provision.model import RecordingReporter
from rexctl.provision.status import gather_status
from tests.rexctl.aws.world import build_world, roll_service_with_env, write_config

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/x-AbCdEf"


def test_status_before_provisioning_says_what_is_missing(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    report = gather_status(aws, cfg)
    assert report["cache"] is None
    assert report["security_group"] is None and report["subnet_group"] is None
    assert report["missing"] == [
        "replication group rexpress-redis (run `rexctl provision`)",
        "security group rexpress-redis-sg",
        "cache subnet group rexpress-redis-subnets",
    ]
    assert report["service"]["task_definition"] == "backend:1"
    assert report["service"]["redis"] == {}


def test_status_after_provisioning_redacts_secrets(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(
        aws,
        environment=[
            {"name": "REDIS_ENABLED", "value": "true"},
            {"name": "REDIS_PORT", "value": "6379"},
            {"name": "REDIS_AUTH_TOKEN", "value": "plain-text-token-in-env-123"},
            {"name": "OTHER", "value": "unrelated"},
        ],
        secrets=[{"name": "REDIS_PASSWORD", "valueFrom": SECRET_ARN}],
    )
    cfg = write_config(tmp_path / "rexctl.toml", world, tls=True, auth=True)
    result = provision(
        aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None
    )
    report = gather_status(aws, cfg)
    token = aws.secretsmanager.get_secret_value(SecretId="rexctl/rexpress-redis/auth-token")[
        "SecretString"
    ]
    assert token not in repr(report)
    assert "plain-text-token-in-env-123" not in repr(report)
    assert report["service"]["redis"] == {
        "REDIS_AUTH_TOKEN": "(redacted)",
        "REDIS_ENABLED": "true",
        "REDIS_PASSWORD": f"(secret: {SECRET_ARN})",
        "REDIS_PORT": "6379",
    }
    cache = report["cache"]
    assert cache["status"] == "available" and cache["endpoint"] == result.cache.endpoint
    assert (cache["at_rest_encryption"], cache["transit_encryption"], cache["auth"]) == (
        True,
        True,
        True,
    )
    assert cache["managed_by_rexctl"] is True
    rules = report["security_group"]["inbound"]
    assert [(r["ports"], r["source"]) for r in rules] == [("6379", world.ecs_sg)]
    assert {s["public"] for s in report["subnet_group"]["subnets"]} == {False}
    assert report["auth_secret"]["name"] == "rexctl/rexpress-redis/auth-token"
    assert report["missing"] == []
    assert report["service"]["points_at_cache"] is False


def test_status_without_ecs_settings(aws: ClientSet, tmp_path: Path) -> None:
    from rexctl.config import load

    cfg = load(tmp_path / "missing.toml", environ={})
    report = gather_status(aws, cfg)
    assert report["service"] is None
    assert "ecs.cluster / ecs.service are not set (run `rexctl init`)" in report["missing"]


def test_status_sees_the_service_pointing_at_the_cache(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    cfg = write_config(tmp_path / "rexctl.toml", world)
    result = provision(
        aws, cfg, reporter=RecordingReporter(), clock=lambda: 0.0, sleep=lambda s: None
    )
    roll_service_with_env(aws, world, {"REDIS_HOST": result.cache.endpoint})
    report = gather_status(aws, cfg)
    assert report["service"]["task_definition"] == "backend:2"
    assert report["service"]["points_at_cache"] is True
    assert report["service"]["redis"] == {"REDIS_HOST": result.cache.endpoint}
