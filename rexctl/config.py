"""rexctl's settings: one table lists every setting, its environment variable and its default.

Precedence, highest first:

1. a command-line flag (global `--region`, `--profile`, `--endpoint-url`, or a command's own);
2. the environment variable `REXCTL_<SECTION>_<KEY>` (e.g. `REXCTL_CACHE_ID`, `REXCTL_REGION`);
3. the file given by `--config` (default `./rexctl.toml`);
4. the default in `SETTINGS`.

Unknown keys and bad values are refused with the file (or variable), the key and the reason.
Credentials never live here: boto3's own chain supplies them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rexctl.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("rexctl.toml")


@dataclass(frozen=True)
class Setting:
    key: str  # dotted: "cache.id"
    kind: type  # str, int, bool or list
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None  # returns a reason when the value is bad

    @property
    def env(self) -> str:
        return "REXCTL_" + self.key.replace(".", "_").upper()


def _cache_id(value: str) -> str | None:
    # ElastiCache: 1-40 characters, letter first, letters/digits/hyphens, no "--" or trailing "-".
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,39}", value) or "--" in value or value[-1] == "-":
        return (
            "must be 1-40 letters, digits or hyphens, start with a letter, "
            "and not contain '--' or end with '-'"
        )
    return None


def _node_type(value: str) -> str | None:
    if not re.fullmatch(r"cache\.[a-z0-9]+\.[a-z0-9]+", value):
        return "must be an ElastiCache node type such as cache.t4g.micro"
    return None


ENGINES = ("redis", "valkey")


def _engine(value: str) -> str | None:
    # ElastiCache's node-based engines with Redis's protocol (CreateReplicationGroup.Engine).
    if value not in ENGINES:
        return "must be redis or valkey"
    return None


def _between(lo: int, hi: int) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if lo <= value <= hi else f"must be between {lo} and {hi}"

    return check


def _url(value: str) -> str | None:
    if value == "":
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return "must be an http:// or https:// URL"
    return None


def _path(value: str) -> str | None:
    # An HTTP path on the backend: absolute, and nothing a URL would read otherwise.
    if not value.startswith("/") or any(c.isspace() or c == "#" or ord(c) < 32 for c in value):
        return "must be a path starting with / (no spaces, no #)"
    return None


def _phrase(value: str) -> str | None:
    # Searched as one quoted phrase of a CloudWatch Logs filter pattern, which cannot hold `"`.
    if '"' in value or value != value.strip() or any(ord(c) < 32 for c in value):
        return "must be text without double quotes, line breaks or surrounding spaces"
    return None


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


def _header(value: str) -> str | None:
    if not _TOKEN.fullmatch(value):
        return "must be an HTTP header name such as X-Cache"
    return None


def _region(value: str) -> str | None:
    if value and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", value):
        return "must be an AWS region name such as us-east-1"
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "region", str, "", "AWS region; empty means boto3's own (AWS_REGION, profile).", _region
    ),
    Setting("profile", str, "", "AWS profile from ~/.aws/config; empty means the default chain."),
    Setting("endpoint_url", str, "", "AWS endpoint override (moto, the sandbox).", _url),
    Setting("state_dir", str, ".rexctl", "Where rexctl keeps drill journals and local state."),
    Setting("cache.id", str, "rexpress-redis", "Replication group id (guide step 4).", _cache_id),
    Setting("cache.node_type", str, "cache.t4g.micro", "Node type (step 6).", _node_type),
    Setting(
        "cache.replicas",
        int,
        0,
        "Read replicas; >0 turns on automatic failover (step 6).",
        _between(0, 5),
    ),
    Setting("cache.multi_az", bool, False, "Multi-AZ (step 6); needs replicas > 0."),
    Setting("cache.port", int, 6379, "Cache port (steps 8 and 12).", _between(1, 65535)),
    Setting("cache.tls", bool, False, "In-transit encryption (step 9)."),
    Setting(
        "cache.auth", bool, False, "Generate an AUTH token in Secrets Manager (step 9; needs tls)."
    ),
    Setting(
        "cache.engine",
        str,
        "redis",
        "Engine: redis (Redis OSS) or valkey; redis -> valkey is an in-place upgrade (step 5).",
        _engine,
    ),
    Setting(
        "cache.engine_version",
        str,
        "7.1",
        "Version of cache.engine; checked against what ElastiCache offers (step 5).",
    ),
    Setting(
        "cache.security_group",
        str,
        "",
        "Name of the cache's security group; empty: '<cache.id>-sg'.",
    ),
    Setting("cache.subnet_group", str, "", "Cache subnet group name; empty: '<cache.id>-subnets'."),
    Setting("cache.subnets", list, [], "Subnets for the cache; empty: the VPC's private subnets."),
    Setting(
        "cache.wait_timeout",
        int,
        1800,
        "Seconds to wait for the cache to become available.",
        _between(1, 7200),
    ),
    Setting("ecs.cluster", str, "", "ECS cluster of the backend service."),
    Setting("ecs.service", str, "", "ECS service of the backend."),
    Setting("ecs.container", str, "backend", "Container that gets REDIS_* (step 12)."),
    Setting("ecs.vpc_id", str, "", "The service's VPC (written by `rexctl init`)."),
    Setting("ecs.subnets", list, [], "The service's subnets (written by `rexctl init`)."),
    Setting(
        "ecs.security_groups", list, [], "The service's security groups (written by `rexctl init`)."
    ),
    Setting(
        "app.url",
        str,
        "",
        "The backend's products URL, e.g. https://<ALB-DNS>/api/products; a URL without a path "
        "gets app.path.",
        _url,
    ),
    Setting("app.path", str, "/api/products", "The products path on the backend.", _path),
    Setting(
        "app.source_field",
        str,
        "source",
        "JSON body field that says where an answer came from (db or cache); empty: none.",
    ),
    Setting(
        "app.source_header",
        str,
        "X-Cache",
        "Response header read when the body has no source field (HIT: cache, MISS: db); "
        "empty: none.",
        _header,
    ),
    Setting("app.health_path", str, "/health", "The backend's health-check path.", _path),
    Setting(
        "app.ready_phrase",
        str,
        "Redis ready",
        "Log phrase that means connected to Redis (step 13).",
        _phrase,
    ),
    Setting(
        "app.error_phrase",
        str,
        "Redis error",
        "Log phrase that means a Redis call failed (steps 13 and 15).",
        _phrase,
    ),
    Setting(
        "sandbox.backend_command",
        str,
        "",
        "Command line each sandbox task runs (split like a shell's words, not run by one); "
        "empty: the bundled service.",
    ),
    Setting(
        "sandbox.backend_dir",
        str,
        "",
        "Directory the backend command runs in; empty: the current directory.",
    ),
)

BY_KEY: Mapping[str, Setting] = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Variable:
    """An environment variable that is not a setting of rexctl.toml: a global option's, a
    command-only option's, or one rexctl itself reads (`option` empty)."""

    env: str
    option: str  # the option it stands for ("" when there is none)
    commands: str  # who reads it
    help: str


# Every REXCTL_* variable that is not `Setting.env` of a setting above. The options declare the
# same names (`envvar=`); tests/test_docs.py checks the two lists agree and docs list them all.
VARIABLES: tuple[Variable, ...] = (
    Variable("REXCTL_CONFIG", "--config", "every command", "The configuration file."),
    Variable(
        "REXCTL_SANDBOX", "--sandbox", "every command", "Point every AWS call at the sandbox."
    ),
    Variable("REXCTL_DEBUG", "", "every command", "1: a traceback for an expected failure."),
    Variable("REXCTL_SANDBOX_DIR", "", "--sandbox, rexctl sandbox", "Which sandbox to use."),
    Variable("REXCTL_DEPLOY_TIMEOUT", "--timeout", "deploy, rollback", "Rollout wait, s."),
    Variable(
        "REXCTL_DEPLOY_POLL",
        "--poll",
        "deploy, rollback, provision, rotate-token",
        "Between rollout checks, s.",
    ),
    Variable(
        "REXCTL_DEPLOY_ROLLBACK_ON_FAILURE",
        "--rollback-on-failure",
        "deploy",
        "Roll back when the rollout fails.",
    ),
    Variable("REXCTL_VERIFY_REQUESTS", "--requests", "verify", "Probe requests."),
    Variable("REXCTL_VERIFY_SINCE", "--since", "verify", "How far back to read the logs."),
    Variable("REXCTL_VERIFY_TIMEOUT", "--timeout", "verify", "Per request, s."),
    Variable("REXCTL_CHAOS_DURATION", "--duration", "the drills", "How long the fault stays, s."),
    Variable("REXCTL_CHAOS_INTERVAL", "--interval", "the drills", "Between probe requests, s."),
    Variable("REXCTL_CHAOS_SETTLE", "--settle", "the drills", "Wait for the cache again, s."),
)


@dataclass(frozen=True)
class CacheConfig:
    id: str
    node_type: str
    replicas: int
    multi_az: bool
    port: int
    tls: bool
    auth: bool
    engine_version: str
    security_group: str
    subnet_group: str
    subnets: list[str]
    wait_timeout: int
    engine: str = "redis"


@dataclass(frozen=True)
class EcsConfig:
    cluster: str
    service: str
    container: str
    vpc_id: str
    subnets: list[str]
    security_groups: list[str]


@dataclass(frozen=True)
class AppConfig:
    """What rexctl needs from the backend; the defaults are the guide's."""

    url: str
    path: str = "/api/products"
    source_field: str = "source"
    source_header: str = "X-Cache"
    health_path: str = "/health"
    ready_phrase: str = "Redis ready"
    error_phrase: str = "Redis error"

    def products_url(self, url: str = "") -> str:
        """The URL to call: `url` (an option) or `app.url`; one with no path gets `app.path`
        (`https://<ALB-DNS>` means `https://<ALB-DNS>/api/products`). '' when neither is set."""
        url = url or self.url
        if not url:
            return ""
        try:
            parsed = urlparse(url)
        except ValueError:  # not a URL: the caller's checks say why
            return url
        if parsed.scheme in ("http", "https") and parsed.path in ("", "/"):
            return parsed._replace(path=self.path).geturl()
        return url


@dataclass(frozen=True)
class SandboxConfig:
    backend_command: str = ""
    backend_dir: str = ""


@dataclass(frozen=True)
class Config:
    region: str
    profile: str
    endpoint_url: str
    state_dir: Path
    cache: CacheConfig
    ecs: EcsConfig
    app: AppConfig
    path: Path
    file_exists: bool
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    sources: dict[str, str] = field(
        default_factory=dict
    )  # key -> "flag" | "env" | "file" | "default"

    def require(self, *keys: str) -> None:
        """Refuse to go on when a setting a command needs is empty."""
        for key in keys:
            section, _, name = key.partition(".")
            obj: Any = getattr(self, section)
            if name:
                obj = getattr(obj, name)
            if obj in ("", [], None):
                setting = BY_KEY[key]
                where = (
                    f"{self.path} has no `{key}`"
                    if self.file_exists
                    else f"there is no {self.path}"
                )
                raise ConfigError(
                    f"`{key}` is not set ({where}).",
                    hint=(
                        f"Set it in {self.path}, export {setting.env}, or run "
                        "`rexctl init --cluster C --service S` to write the file."
                    ),
                )


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    """Turn a raw value (TOML value or env string) into the setting's type, or refuse it."""
    kind = setting.kind
    bad = f"{origin}: `{setting.key}`"
    if isinstance(value, str) and origin.startswith("environment"):
        if kind is bool:
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{bad} must be true or false, not {value!r}.")
            value = lowered in ("true", "1", "yes")
        elif kind is int:
            try:
                value = int(value.strip())
            except ValueError:
                raise ConfigError(f"{bad} must be a whole number, not {value!r}.") from None
        elif kind is list:
            value = [v.strip() for v in value.split(",") if v.strip()]
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{bad} must be true or false, not {value!r}.")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{bad} must be a whole number, not {value!r}.")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{bad} must be a string, not {value!r}.")
    if kind is list and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise ConfigError(f"{bad} must be a list of strings, not {value!r}.")
    if setting.check is not None and value not in ("", []):
        reason = setting.check(value)
        if reason:
            raise ConfigError(f"{bad} {reason} (got {value!r}).")
    return value


def _flatten(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                full = f"{key}.{sub}"
                if isinstance(subvalue, dict):
                    raise ConfigError(f"{path}: `{full}` is a table; rexctl.toml nests one level.")
                flat[full] = subvalue
        else:
            flat[key] = value
    for key in flat:
        if key not in BY_KEY:
            known = ", ".join(sorted(BY_KEY))
            raise ConfigError(f"{path}: unknown key `{key}`.", hint=f"Known keys: {known}.")
    return flat


def read_file(path: Path) -> dict[str, Any] | None:
    """The file's settings, flattened to dotted keys; None when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None
    return _flatten(data, path)


def load(
    path: Path | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the configuration: flags > REXCTL_* environment > rexctl.toml > defaults."""
    path = path or DEFAULT_CONFIG_PATH
    environ = os.environ if environ is None else environ
    file_values = read_file(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        flag = (flags or {}).get(setting.key)
        if flag not in (None, "", []):
            values[setting.key] = _coerce(setting, flag, "flag")
            sources[setting.key] = "flag"
        elif setting.env in environ:
            values[setting.key] = _coerce(
                setting, environ[setting.env], f"environment variable {setting.env}"
            )
            sources[setting.key] = "env"
        elif file_values is not None and setting.key in file_values:
            values[setting.key] = _coerce(setting, file_values[setting.key], str(path))
            sources[setting.key] = "file"
        else:
            values[setting.key] = setting.default
            sources[setting.key] = "default"
    cache_id = values["cache.id"]
    cache = CacheConfig(
        id=cache_id,
        node_type=values["cache.node_type"],
        replicas=values["cache.replicas"],
        multi_az=values["cache.multi_az"],
        port=values["cache.port"],
        tls=values["cache.tls"],
        auth=values["cache.auth"],
        engine_version=values["cache.engine_version"],
        security_group=values["cache.security_group"] or f"{cache_id}-sg",
        subnet_group=values["cache.subnet_group"] or f"{cache_id}-subnets",
        subnets=list(values["cache.subnets"]),
        wait_timeout=values["cache.wait_timeout"],
        engine=values["cache.engine"],
    )
    if cache.auth and not cache.tls:
        raise ConfigError(
            f"{path}: `cache.auth = true` needs `cache.tls = true`: "
            "ElastiCache only accepts an AUTH token with in-transit encryption."
        )
    if cache.multi_az and cache.replicas < 1:
        raise ConfigError(f"{path}: `cache.multi_az = true` needs `cache.replicas` of 1 or more.")
    for key in ("app.path", "app.health_path", "app.ready_phrase", "app.error_phrase"):
        if not values[key]:
            raise ConfigError(f"{_origin(key, sources, path)}: `{key}` must not be empty.")
    if not values["app.source_field"] and not values["app.source_header"]:
        raise ConfigError(
            f"{path}: `app.source_field` and `app.source_header` are both empty: nothing would "
            "say whether an answer came from the database or the cache.",
            hint="Set one of them (the guide's backend sends a `source` field).",
        )
    return Config(
        region=values["region"],
        profile=values["profile"],
        endpoint_url=values["endpoint_url"],
        state_dir=Path(values["state_dir"]),
        cache=cache,
        ecs=EcsConfig(
            cluster=values["ecs.cluster"],
            service=values["ecs.service"],
            container=values["ecs.container"],
            vpc_id=values["ecs.vpc_id"],
            subnets=list(values["ecs.subnets"]),
            security_groups=list(values["ecs.security_groups"]),
        ),
        app=AppConfig(
            url=values["app.url"],
            path=values["app.path"],
            source_field=values["app.source_field"],
            source_header=values["app.source_header"],
            health_path=values["app.health_path"],
            ready_phrase=values["app.ready_phrase"],
            error_phrase=values["app.error_phrase"],
        ),
        path=path,
        file_exists=file_values is not None,
        sources=sources,
        sandbox=SandboxConfig(
            backend_command=values["sandbox.backend_command"],
            backend_dir=values["sandbox.backend_dir"],
        ),
    )


def _origin(key: str, sources: Mapping[str, str], path: Path) -> str:
    """Where a setting's value came from, as an error message names it."""
    where = sources.get(key, "file")
    if where == "env":
        return f"environment variable {BY_KEY[key].env}"
    return "flag" if where == "flag" else str(path)


def render_toml(values: Mapping[str, Any]) -> str:
    """Write dotted settings as rexctl.toml text (used by `rexctl init`)."""

    def fmt(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, list):
            return "[" + ", ".join(fmt(v) for v in value) + "]"
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    top = [(k, v) for k, v in values.items() if "." not in k]
    sections: dict[str, list[tuple[str, Any]]] = {}
    for key, value in values.items():
        if "." in key:
            section, name = key.split(".", 1)
            sections.setdefault(section, []).append((name, value))
    lines = [f"{k} = {fmt(v)}" for k, v in top]
    for section, items in sections.items():
        lines.append("")
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {fmt(v)}" for k, v in items)
    return "\n".join(lines).lstrip("\n") + "\n"
