"""Issue 9: what `rexctl deploy --dry-run` (table and `--json`) and `rexctl status` print, and what
a drill journal holds, hides every secret by the one rule of `rexctl.redact`, and still shows the
ordinary variables. The backend here carries the secrets a real one does in its `environment`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rexctl.cli import app
from rexctl.drills import journal as journal_mod
from tests.rexctl.deploy.world import make_world

SECRETS = {
    "JWT_SIGNING_KEY": "jwt-signing-key-value-123",
    "ENCRYPTION_KEY": "encryption-key-value-456",
    "SESSION_KEY": "session-key-value-789",
    "HMAC_KEY": "hmac-key-value-abc",
    "DB_PASS": "db-pass-value-def",
    "DB_PWD": "db-pwd-value-ghi",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY12345",
    "API_TOKEN": "api-token-value-jkl",
    "REDIS_AUTH_TOKEN": "redis-auth-token-value-mno",
}
URL_SECRETS = {
    "SENTRY_DSN": ("https://sentrykey0123456789@o123.ingest.sentry.io/456", "sentrykey0123456789"),
    "SLACK_WEBHOOK_URL": (
        "https://hooks.slack.com/services/T000/B000/slackpathsecret",
        "slackpathsecret",
    ),
    "DATABASE_URL": ("postgres://app:dbpassword99@db:5432/app", "dbpassword99"),
}
ORDINARY = {
    "NODE_ENV": "production",
    "LOG_LEVEL": "info",
    "DB_HOST": "db.internal",
    "DB_USER": "app",
    "CACHE_KEY_PREFIX": "products:",
    "PRODUCTS_URL": "https://example.com/api/products",
}

runner = CliRunner()


def backend_env() -> list[dict[str, str]]:
    values = {**SECRETS, **{k: v for k, (v, _) in URL_SECRETS.items()}, **ORDINARY}
    return [{"name": k, "value": v} for k, v in values.items()] + [
        {"name": "REDIS_ENABLED", "value": "false"}
    ]


def hidden() -> list[str]:
    return [*SECRETS.values(), *(secret for _, secret in URL_SECRETS.values())]


def assert_redacted(text: str) -> None:
    leaked = [s for s in hidden() if s in text]
    assert leaked == [], text
    for name, value in ORDINARY.items():
        assert name in text and value in text, (name, text)


@pytest.fixture
def world(tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    monkeypatch.chdir(tmp_path)
    return make_world(tmp_path, endpoint_url=moto_server, backend_env=backend_env())


def invoke(moto_server: str, tmp_path: Path, *args: str) -> Any:
    return runner.invoke(
        app,
        ["--endpoint-url", moto_server, "--config", str(tmp_path / "rexctl.toml"), *args],
        catch_exceptions=False,
    )


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_deploy_dry_run_hides_every_secret(
    world: Any, moto_server: str, tmp_path: Path, as_json: bool
) -> None:
    args = ["deploy", "--dry-run", *(["--json"] if as_json else [])]
    result = invoke(moto_server, tmp_path, *args)
    assert result.exit_code == 0, result.output
    if as_json:
        data = json.loads(result.stdout)
        assert data["plan"]["revision"] is not None  # the whole revision, not only the diff
        assert_redacted(result.stdout)
    else:
        assert "REDIS_HOST" in result.output  # the diff is there
        assert not [s for s in hidden() if s in result.output], result.output


def test_a_journal_hides_every_secret_and_keeps_references(tmp_path: Path) -> None:
    secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/x/auth-token-AbCdEf"
    container = {
        "environment": backend_env(),
        "secrets": [{"name": "REDIS_AUTH_TOKEN", "valueFrom": secret_arn}],
    }
    journal = journal_mod.Journal(
        id="20261201T000000Z-wrong-host-aaaaaa", drill="wrong-host", created_at="now",
        aws={"region": "us-east-1", "profile": "", "endpoint_url": ""},
        changes=[], summary=[], manual_undo=[], before={"containers": [container]},
    )  # fmt: skip
    text = journal_mod.save(journal, tmp_path).read_text()
    assert_redacted(text)
    assert secret_arn in text  # a reference to a secret is not the secret
