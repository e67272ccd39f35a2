"""rexctl.redact: the one rule for what a secret is, and how it is hidden."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from rexctl.redact import (
    REDACTED,
    is_secret_name,
    redact_data,
    redact_env,
    redact_text,
    redact_value,
)

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/rexpress-redis-AbCdEf"
VALUE = "s3cr3t-value-that-must-not-print"

# what `rexctl deploy --dry-run` printed in clear before this module
LEAKED = [
    "JWT_SIGNING_KEY",
    "ENCRYPTION_KEY",
    "SESSION_KEY",
    "HMAC_KEY",
    "DB_PASS",
    "DB_PWD",
    "AWS_ACCESS_KEY_ID",
    "SENTRY_DSN",
    "SLACK_WEBHOOK_URL",
]
SECRET_NAMES = [
    *LEAKED,
    "REDIS_AUTH_TOKEN",
    "AUTH_TOKEN",
    "REDIS_AUTH",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "SSH_PRIVATE",
    "DB_PASSWORD",
    "DB_PASSWD",
    "PASS",
    "PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "CLIENT_SECRET",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DOCKER_CREDENTIAL",
    "DATABASE_DSN",
    "GITHUB_WEBHOOK",
    "REQUEST_SIGNATURE",
    "SIGNING_SECRET",
    "COOKIE_SECRET",
    "SESSION_COOKIE",
    "PASSWORD_SALT",
    "AUTHORIZATION",
    "STRIPE_KEYS",
    # word parts split on - . and camelCase, not only _
    "x-api-key",
    "db.password",
    "authToken",
    "AuthToken",
    "apiKey",
    "AWSAccessKeyId",
    "SecretAccessKey",
    "X-Amz-Security-Token",
    "sig",
    "access_token",
    "api_key",
]
VISIBLE_NAMES = [
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_ENABLED",
    "REDIS_TLS",
    "PORT",
    "LOG_LEVEL",
    "NODE_ENV",
    "DB_HOST",
    "DB_NAME",
    "DB_USER",
    "DATABASE_PATH",
    "NEAR_CACHE_TTL_MS",
    "CACHE_TTL_SECONDS",
    "AWS_REGION",
    # secret words only as substrings, never as word parts
    "PASSENGER",
    "PASSENGER_COUNT",
    "BYPASS_CACHE",
    "COMPASS_URL",
    "AUTHOR",
    "AUTHOR_EMAIL",
    "TOKENIZER",
    "MONKEY_PATCH",
    "KEYBOARD_LAYOUT",
    "SECRETARY",
    # known-harmless KEY / PRIVATE / PWD uses
    "KEY_PREFIX",
    "REDIS_KEY_PREFIX",
    "CACHE_KEY_PREFIX",
    "cacheKeyPrefix",
    "KEYSPACE",
    "KEY_SPACE",
    "PRIMARY_KEY",
    "PARTITION_KEY",
    "PUBLIC_KEY",
    "PRIVATE_SUBNETS",
    "private_subnets",
    "PRIVATE_IP",
    "PWD",
    # references and switches, not the secret
    "SECRET_ARN",
    "SECRET_NAME",
    "secretArn",
    "REDIS_AUTH_ENABLED",
    "AuthTokenEnabled",
    "",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_secret(name: str) -> None:
    assert is_secret_name(name)
    assert redact_value(name, VALUE) == REDACTED


@pytest.mark.parametrize("name", VISIBLE_NAMES)
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)
    assert redact_value(name, "plain-value-42") == "plain-value-42"


@pytest.mark.parametrize("name", LEAKED)
def test_what_dry_run_leaked_is_hidden_in_env_lists_and_data(name: str) -> None:
    env = [{"name": name, "value": VALUE}, {"name": "REDIS_HOST", "value": "cache.local"}]
    assert redact_env(env) == [
        {"name": name, "value": REDACTED},
        {"name": "REDIS_HOST", "value": "cache.local"},
    ]
    data = {"containerDefinitions": [{"name": "backend", "environment": env}], name: VALUE}
    shown = redact_data(data)
    assert VALUE not in json.dumps(shown)
    assert shown[name] == REDACTED
    assert shown["containerDefinitions"][0]["environment"][0] == {"name": name, "value": REDACTED}
    assert shown["containerDefinitions"][0]["name"] == "backend"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw-123@host:6379", f"redis://:{REDACTED}@host:6379"),
        ("rediss://default:pw-123@host:6379/0", f"rediss://default:{REDACTED}@host:6379/0"),
        ("postgres://user:pw-123@db/x", f"postgres://user:{REDACTED}@db/x"),
        ("postgres://user:p@ss:w/rd#1@db:5432/x", f"postgres://user:{REDACTED}@db:5432/x"),
        (
            "https://0123456789abcdef0123456789abcdef@o123.ingest.sentry.io/456",
            f"https://{REDACTED}@o123.ingest.sentry.io/456",
        ),
        (
            "https://hooks.slack.com/services/T000/B000/XXXX",
            f"https://hooks.slack.com/{REDACTED}",
        ),
        (
            "https://discord.com/api/webhooks/123/abcDEF",
            f"https://discord.com/{REDACTED}",
        ),
        (
            "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456",
            f"https://contoso.webhook.office.com/{REDACTED}",
        ),
        (
            "https://bucket.s3.amazonaws.com/report.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
            "&X-Amz-Security-Token=IQoJb3JpZ2luX2Vj&X-Amz-Signature=deadbeef00",
            "https://bucket.s3.amazonaws.com/report.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={REDACTED}"
            "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
            f"&X-Amz-Security-Token={REDACTED}&X-Amz-Signature={REDACTED}",
        ),
        (
            "https://api.example.com/v1?page=2&token=abc&sig=def&signature=ghi&key=jkl"
            "&password=mno&access_token=pqr&api_key=stu",
            "https://api.example.com/v1?page=2"
            + "".join(
                f"&{k}={REDACTED}"
                for k in ("token", "sig", "signature", "key", "password", "access_token", "api_key")
            ),
        ),
        (
            "https://app.example.com/cb#access_token=abc&state=x",
            f"https://app.example.com/cb#access_token={REDACTED}&state=x",
        ),
    ],
)
def test_credentials_in_urls_are_hidden_under_any_name(url: str, shown: str) -> None:
    assert redact_value("SOME_URL", url) == shown
    assert redact_data({"url": url, "list": [url]}) == {"url": shown, "list": [shown]}
    assert redact_text(f"could not reach {url}.") == f"could not reach {shown}."
    assert redact_value("SOME_URL", shown) == shown, "redacting twice changes nothing"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/api/products",
        "redis://cache.local:6379/0",
        "rediss://master.rexpress.abc123.use1.cache.amazonaws.com:6379",
        "https://example.com/search?q=redis&page=2&key_prefix=products",
        "https://medium.com/@someone/post",
        "https://example.com?email=a@b.com",
        "http://[::1]:8080/health",
        "https://hooks.slack.com/",
        "https://discord.com/channels/1/2",
    ],
)
def test_ordinary_urls_are_shown_unchanged(url: str) -> None:
    assert redact_value("BACKEND_URL", url) == url
    assert redact_text(f"GET {url} failed") == f"GET {url} failed"
    assert redact_data([url]) == [url]


def test_several_urls_in_one_value_are_each_redacted() -> None:
    value = "redis://:first-pw@h1:6379,redis://:second-pw@h2:6379"
    assert redact_value("REDIS_NODES", value) == (
        f"redis://:{REDACTED}@h1:6379,redis://:{REDACTED}@h2:6379"
    )
    text = "redirect to https://x.example/?next=https://bob:bobs-pw@y.example/ now"
    assert redact_text(text) == (
        f"redirect to https://x.example/?next=https://bob:{REDACTED}@y.example/ now"
    )


def test_empty_values_stay_empty_so_unset_stays_visible() -> None:
    assert redact_value("REDIS_AUTH_TOKEN", "") == ""
    assert redact_env([{"name": "DB_PASSWORD", "value": ""}]) == [
        {"name": "DB_PASSWORD", "value": ""}
    ]


def test_references_to_secrets_are_kept() -> None:
    assert redact_value("REDIS_AUTH_TOKEN", SECRET_ARN) == SECRET_ARN, "an ARN is a reference"
    secrets = [{"name": "REDIS_AUTH_TOKEN", "valueFrom": SECRET_ARN}]
    assert redact_env(secrets) == secrets
    config = {
        "cache": {"auth": True, "auth_token_secret": "rexctl/rexpress-redis"},
        "secret_arn": SECRET_ARN,
        "secretArn": SECRET_ARN,
        "secret_name": "rexctl/rexpress-redis",
        "SecretId": "rexctl/rexpress-redis",
        "secrets": secrets,
        "AuthTokenEnabled": True,
        "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    }
    assert redact_data(config) == config


def test_a_deploy_revision_shows_everything_but_the_secrets() -> None:
    revision = {
        "family": "backend",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "containerDefinitions": [
            {
                "name": "backend",
                "image": "backend:1",
                "environment": [
                    {"name": "REDIS_HOST", "value": "cache.local"},
                    {"name": "REDIS_PORT", "value": "6379"},
                    {"name": "JWT_SIGNING_KEY", "value": "jwt-signing-key-value"},
                    {"name": "DB_PWD", "value": "db-pwd-value"},
                    {
                        "name": "SENTRY_DSN",
                        "value": "https://sentry-key-value@o1.ingest.sentry.io/2",
                    },
                    {
                        "name": "ERRORS_URL",
                        "value": "https://sentry-key-value@o1.ingest.sentry.io/2",
                    },
                    {"name": "DATABASE_URL", "value": "postgres://app:db-url-pw@db:5432/app"},
                ],
                "secrets": [{"name": "REDIS_AUTH_TOKEN", "valueFrom": SECRET_ARN}],
            }
        ],
        "tags": [{"key": "rexctl:previous-revision", "value": "arn:aws:ecs:x:1:task/backend:1"}],
    }
    shown = redact_data(revision)
    text = json.dumps(shown)
    for secret in ("jwt-signing-key-value", "db-pwd-value", "sentry-key-value", "db-url-pw"):
        assert secret not in text
    container = shown["containerDefinitions"][0]
    assert {e["name"]: e["value"] for e in container["environment"]} == {
        "REDIS_HOST": "cache.local",
        "REDIS_PORT": "6379",
        "JWT_SIGNING_KEY": REDACTED,
        "DB_PWD": REDACTED,
        "SENTRY_DSN": REDACTED,
        "ERRORS_URL": f"https://{REDACTED}@o1.ingest.sentry.io/2",
        "DATABASE_URL": f"postgres://app:{REDACTED}@db:5432/app",
    }
    assert container["secrets"] == revision["containerDefinitions"][0]["secrets"]
    assert shown["tags"] == revision["tags"], "a tag whose label is `key` is not a secret"
    assert shown["executionRoleArn"] == revision["executionRoleArn"]
    env = revision["containerDefinitions"][0]["environment"]
    assert redact_env(env) == container["environment"]


def test_drill_journal_data_keeps_working() -> None:
    before = {
        "env": [{"name": "REDIS_AUTH_TOKEN", "value": "s3cret"}],
        "AuthToken": "abc",
        "Port": 6379,
        "tags": [{"Key": "API_TOKEN", "Value": "tag-token"}, {"Key": "Name", "Value": "x"}],
        "credentials": {"user": "app", "password": "pw", "expires_in": 3600},
        "tokens": ["token-one", ("token-two", None)],
        "password_version": 7,
    }
    assert redact_data(before) == {
        "env": [{"name": "REDIS_AUTH_TOKEN", "value": REDACTED}],
        "AuthToken": REDACTED,
        "Port": 6379,
        "tags": [{"Key": "API_TOKEN", "Value": REDACTED}, {"Key": "Name", "Value": "x"}],
        "credentials": {"user": "app", "password": REDACTED, "expires_in": 3600},
        "tokens": [REDACTED, (REDACTED, None)],
        "password_version": REDACTED,
    }


def test_redact_data_returns_new_objects_and_leaves_its_input_untouched() -> None:
    data: dict[str, Any] = {
        "env": [{"name": "DB_PASS", "value": "db-pass-value"}],
        "nested": {"api_key": "k-123", "url": "redis://:pw@h:6379", "list": [1, "a"]},
        "pair": ("x", {"token": "t-1"}),
    }
    original = copy.deepcopy(data)
    shown = redact_data(data)
    assert data == original
    assert shown["env"][0]["value"] == REDACTED and shown["nested"]["api_key"] == REDACTED
    assert shown["pair"] == ("x", {"token": REDACTED}) and isinstance(shown["pair"], tuple)
    assert shown is not data and shown["env"] is not data["env"]
    assert (
        shown["env"][0] is not data["env"][0]
        and shown["nested"]["list"] is not data["nested"]["list"]
    )
    env = [{"name": "DB_PASS", "value": "db-pass-value"}]
    redact_env(env)
    assert env == [{"name": "DB_PASS", "value": "db-pass-value"}]


def test_redact_text_hides_given_secrets_of_8_chars_or_more() -> None:
    token = "Tok3n-of-32-characters-long-xyz!"
    message = f"AUTH failed for token {token} (encoded: Tok3n-of-32-characters-long-xyz%21)."
    assert redact_text(message, [token]) == (
        f"AUTH failed for token {REDACTED} (encoded: {REDACTED})."
    )
    assert redact_text("length 8: abcdefgh!", ["abcdefgh"]) == f"length 8: {REDACTED}!"


def test_redact_text_leaves_short_secrets_alone_so_messages_stay_readable() -> None:
    message = "The secret abc is not usable: it is too short (abc), see the docs."
    assert redact_text(message, ["abc", ""]) == message


def test_redact_text_replaces_the_longer_of_overlapping_secrets_whole() -> None:
    assert redact_text("x longsecret-and-more y", ["longsecret", "longsecret-and-more"]) == (
        f"x {REDACTED} y"
    )


@pytest.mark.parametrize(
    "credential",
    [
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a" * 36,
        "xoxb-1234567890-abcdefghij",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_well_known_credential_formats_are_hidden_anywhere(credential: str) -> None:
    assert redact_text(f"got {credential} back") == f"got {REDACTED} back"
    assert redact_value("APP_CONFIG", f"x={credential}") == f"x={REDACTED}"


def test_importing_it_pulls_in_no_third_party_module() -> None:
    code = (
        "import sys, rexctl.redact; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 'rich', 'click', 'urllib', 'json'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
