"""Settings.from_env: defaults, the seed's REDIS_ENABLED rule, one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError


def test_defaults_match_the_seed_and_the_issue() -> None:
    s = Settings.from_env({})
    assert (s.redis_enabled, s.redis_host, s.redis_port) == (False, "localhost", 6379)
    assert (s.cache_ttl_seconds, s.db_delay_ms, s.port, s.host) == (60, 1500, 3000, "127.0.0.1")
    assert (s.redis_timeout_ms, s.near_cache_ttl_ms, s.breaker_probe_ms) == (200, 1000, 500)
    assert (s.log_format, s.redis_tls, s.redis_auth_token) == ("text", False, None)
    assert s.database_path == "products.sqlite3"
    assert (s.db_write_timeout_ms, s.db_write_timeout) == (3000, 3.0)
    assert Settings.from_env({"DB_WRITE_TIMEOUT_MS": "0"}).db_write_timeout == 0.0


@pytest.mark.parametrize("value", ["True", "1", "yes", "TRUE", " true"])
def test_only_the_exact_string_true_enables_redis(value: str) -> None:
    s = Settings.from_env({"REDIS_ENABLED": value})
    assert s.redis_enabled is False
    assert s.redis_enabled_note == f'REDIS_ENABLED is {value!r}, not exactly "true"'
    assert Settings.from_env({"REDIS_ENABLED": "true"}).redis_enabled is True
    assert Settings.from_env({"REDIS_ENABLED": "false"}).redis_enabled_note == ""


def test_values_are_parsed(tmp_path: Path) -> None:
    s = Settings.from_env(
        {"REDIS_ENABLED": "true", "REDIS_HOST": "cache.example", "REDIS_PORT": "6380",
         "REDIS_TLS": "true", "REDIS_AUTH_TOKEN": "s3cret-token", "REDIS_TIMEOUT_MS": "50",
         "CACHE_TTL_SECONDS": "5", "DB_DELAY_MS": "0", "DATABASE_PATH": str(tmp_path / "p.db"),
         "HOST": "0.0.0.0", "PORT": "8080", "LOG_FORMAT": "JSON", "NEAR_CACHE_TTL_MS": "0",
         "BREAKER_PROBE_MS": "250"}
    )  # fmt: skip
    assert s.redis_port == 6380 and s.redis_tls and s.redis_timeout == 0.05
    assert s.log_format == "json" and s.near_cache_ttl_ms == 0 and s.port == 8080
    assert str(s.redis_auth_token) == "s3cret-token"
    assert "s3cret-token" not in repr(s)
    assert s.describe()["redis_auth_token"] == "***"


WHOLE = "expected a whole number from"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("REDIS_PORT", "abc", f"{WHOLE} 1 to 65535"),
        ("REDIS_PORT", "70000", f"{WHOLE} 1 to 65535"),
        ("PORT", "0", f"{WHOLE} 1 to 65535"),
        ("REDIS_TIMEOUT_MS", "-5", f"{WHOLE} 1 to 60000"),
        ("CACHE_TTL_SECONDS", "0", f"{WHOLE} 1 to 2592000"),
        ("DB_DELAY_MS", "1.5", f"{WHOLE} 0 to 600000"),
        ("DB_WRITE_TIMEOUT_MS", "61000", f"{WHOLE} 0 to 60000"),
        ("REDIS_TLS", "maybe", "expected true or false"),
        ("LOG_FORMAT", "xml", "expected one of: text, json"),
        ("REDIS_HOST", "", "expected a host name or IP address"),
        ("HOST", "a b", "expected a host name or IP address"),
        ("NEAR_CACHE_TTL_MS", "fast", f"{WHOLE} 0 to 60000"),
        ("BREAKER_PROBE_MS", "5", f"{WHOLE} 10 to 60000"),
        ("DATABASE_PATH", "/no/such/dir/p.db", "directory /no/such/dir does not exist"),
        ("DATABASE_PATH", " ", "expected the path of an SQLite file"),
        ("DATABASE_PATH", "/", "it is a directory, expected the path of an SQLite file"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    assert str(info.value) == f"{name}={value!r} is invalid: {problem}"
