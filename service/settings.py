"""Every environment variable the service reads, validated in one place.

`Settings.from_env(environ)` reads the variables through starlette's `Config` (the token through
`Secret`, so its repr never shows it) and raises `SettingsError` naming the first bad variable.
`python -m service` turns that error into one line on stderr and exit code 2.

The names follow the seed (`REDIS_ENABLED`, `REDIS_HOST`, `REDIS_PORT`); `REDIS_ENABLED` enables
Redis only when it is exactly `true`, as in the seed (`process.env.REDIS_ENABLED !== "true"`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from starlette.config import Config
from starlette.datastructures import Secret

T = TypeVar("T")

LOG_FORMATS = ("text", "json")
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}


class SettingsError(ValueError):
    """A bad environment value: the message names the variable and the problem."""


@dataclass(frozen=True)
class Settings:
    redis_enabled: bool = False
    redis_host: str = "localhost"
    redis_port: int = 6379
    redis_tls: bool = False
    redis_tls_ca_file: str = ""  # '' = the system's trust store, as a task on AWS trusts Amazon's
    redis_auth_token: Secret | None = None
    redis_timeout_ms: int = 200
    cache_ttl_seconds: int = 60
    db_delay_ms: int = 1500
    db_write_timeout_ms: int = 3000
    database_path: str = "products.sqlite3"
    host: str = "127.0.0.1"
    port: int = 3000
    log_format: str = "text"
    near_cache_ttl_ms: int = 1000
    breaker_probe_ms: int = 500
    cache_key: str = "products:all"
    # Set when REDIS_ENABLED holds a value that looks like "yes" but is not exactly "true".
    redis_enabled_note: str = ""

    @property
    def redis_timeout(self) -> float:
        return self.redis_timeout_ms / 1000

    @property
    def db_delay(self) -> float:
        return self.db_delay_ms / 1000

    @property
    def db_write_timeout(self) -> float:
        return self.db_write_timeout_ms / 1000

    @property
    def near_cache_ttl(self) -> float:
        return self.near_cache_ttl_ms / 1000

    @property
    def breaker_probe(self) -> float:
        return self.breaker_probe_ms / 1000

    @property
    def generation_key(self) -> str:
        """Bumped by every write, so a fill that read the database before it is not stored."""
        return f"{self.cache_key}:gen"

    @property
    def invalidation_channel(self) -> str:
        return f"{self.cache_key}:invalidate"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        config = Config(environ=dict(os.environ if environ is None else environ))
        enabled_raw = config("REDIS_ENABLED", default="")
        note = ""
        if enabled_raw != "true" and enabled_raw.strip().lower() in ("true", "1", "yes", "on"):
            note = f'REDIS_ENABLED is {enabled_raw!r}, not exactly "true"'
        token = Secret(config("REDIS_AUTH_TOKEN", default=""))
        return cls(
            redis_enabled=enabled_raw == "true",
            redis_enabled_note=note,
            redis_host=_read(config, "REDIS_HOST", "localhost", _hostname),
            redis_port=_read(config, "REDIS_PORT", "6379", _int_between(1, 65535)),
            redis_tls=_read(config, "REDIS_TLS", "false", _boolean),
            redis_tls_ca_file=_read(config, "REDIS_TLS_CA_FILE", "", _ca_file),
            redis_auth_token=token if str(token) else None,
            redis_timeout_ms=_read(config, "REDIS_TIMEOUT_MS", "200", _int_between(1, 60_000)),
            cache_ttl_seconds=_read(
                config, "CACHE_TTL_SECONDS", "60", _int_between(1, 30 * 24 * 3600)
            ),
            db_delay_ms=_read(config, "DB_DELAY_MS", "1500", _int_between(0, 600_000)),
            db_write_timeout_ms=_read(
                config, "DB_WRITE_TIMEOUT_MS", "3000", _int_between(0, 60_000)
            ),
            database_path=_read(config, "DATABASE_PATH", "products.sqlite3", _database_path),
            host=_read(config, "HOST", "127.0.0.1", _hostname),
            port=_read(config, "PORT", "3000", _int_between(1, 65535)),
            log_format=_read(config, "LOG_FORMAT", "text", _one_of(LOG_FORMATS)),
            near_cache_ttl_ms=_read(config, "NEAR_CACHE_TTL_MS", "1000", _int_between(0, 60_000)),
            breaker_probe_ms=_read(config, "BREAKER_PROBE_MS", "500", _int_between(10, 60_000)),
        )

    def describe(self) -> dict[str, object]:
        """The settings as shown on /health and in the start-up line: the token is redacted."""
        return {
            "redis_enabled": self.redis_enabled,
            "redis_host": self.redis_host,
            "redis_port": self.redis_port,
            "redis_tls": self.redis_tls,
            "redis_tls_ca_file": self.redis_tls_ca_file or None,
            "redis_auth_token": "***" if self.redis_auth_token else None,
            "redis_timeout_ms": self.redis_timeout_ms,
            "cache_ttl_seconds": self.cache_ttl_seconds,
            "db_delay_ms": self.db_delay_ms,
            "db_write_timeout_ms": self.db_write_timeout_ms,
            "near_cache_ttl_ms": self.near_cache_ttl_ms,
            "breaker_probe_ms": self.breaker_probe_ms,
        }


def _read(config: Config, name: str, default: str, parse: Callable[[str], T]) -> T:
    raw = config(name, default=default)
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = raw.strip()
        if not text.lstrip("-").isdigit():
            raise ValueError(f"expected a whole number from {low} to {high}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _boolean(raw: str) -> bool:
    try:
        return _BOOLS[raw.strip().lower()]
    except KeyError:
        raise ValueError("expected true or false") from None


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return value

    return parse


def _hostname(raw: str) -> str:
    value = raw.strip()
    if not value or any(ch.isspace() for ch in value) or "/" in value:
        raise ValueError("expected a host name or IP address")
    return value


def _ca_file(raw: str) -> str:
    """'' (the system's store), or a readable file of PEM certificates."""
    if not raw.strip():
        return ""
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError("expected a file of PEM CA certificates (no such file)")
    if not os.access(path, os.R_OK):
        raise ValueError("the file is not readable")
    return str(path)


def _database_path(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected the path of an SQLite file")
    if Path(raw).expanduser().is_dir():
        raise ValueError("it is a directory, expected the path of an SQLite file")
    parent = Path(raw).expanduser().resolve().parent
    if not parent.is_dir():
        raise ValueError(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"directory {parent} is not writable")
    return raw
