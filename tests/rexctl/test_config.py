"""The configuration loader: precedence, types, validation, and messages that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rexctl import config
from rexctl.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rexctl.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_no_file(tmp_path: Path) -> None:
    cfg = config.load(tmp_path / "missing.toml", environ={})
    assert cfg.file_exists is False
    assert cfg.cache.id == "rexpress-redis"
    assert cfg.cache.node_type == "cache.t4g.micro"
    assert cfg.cache.port == 6379
    assert cfg.cache.security_group == "rexpress-redis-sg"
    assert cfg.cache.subnet_group == "rexpress-redis-subnets"
    assert cfg.ecs.container == "backend"
    assert all(source == "default" for source in cfg.sources.values())


def test_issue_example_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
region = "us-east-1"
[cache]
id = "rexpress-redis"
node_type = "cache.t4g.micro"
replicas = 0
multi_az = false
port = 6379
tls = false
auth = false
[ecs]
cluster = "rexpress"
service = "backend"
container = "backend"
[app]
url = "https://alb.example.com/api/products"
""",
    )
    cfg = config.load(path, environ={})
    assert cfg.region == "us-east-1"
    assert cfg.ecs.cluster == "rexpress"
    assert cfg.app.url == "https://alb.example.com/api/products"
    assert cfg.sources["ecs.cluster"] == "file"


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    path = write(tmp_path, 'region = "eu-west-1"\n[cache]\nport = 6380\nid = "from-file"\n')
    environ = {"REXCTL_REGION": "us-west-2", "REXCTL_CACHE_PORT": "6381"}
    cfg = config.load(path, flags={"region": "ap-south-1"}, environ=environ)
    assert (cfg.region, cfg.sources["region"]) == ("ap-south-1", "flag")
    assert (cfg.cache.port, cfg.sources["cache.port"]) == (6381, "env")
    assert (cfg.cache.id, cfg.sources["cache.id"]) == ("from-file", "file")
    assert (cfg.cache.node_type, cfg.sources["cache.node_type"]) == ("cache.t4g.micro", "default")


def test_env_lists_and_bools_are_parsed() -> None:
    environ = {"REXCTL_ECS_SUBNETS": "subnet-a, subnet-b", "REXCTL_CACHE_TLS": "yes"}
    cfg = config.load(Path("/nonexistent/rexctl.toml"), environ=environ)
    assert cfg.ecs.subnets == ["subnet-a", "subnet-b"]
    assert cfg.cache.tls is True


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[cache]\nnode = 'x'\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert info.value.message == f"{path}: unknown key `cache.node`."
    assert "cache.node_type" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cache]\nport = 'x'\n", "`cache.port` must be a whole number, not 'x'."),
        ("[cache]\nport = 70000\n", "`cache.port` must be between 1 and 65535 (got 70000)."),
        ("[cache]\ntls = 'no'\n", "`cache.tls` must be true or false, not 'no'."),
        ("[cache]\nid = '1abc'\n", "`cache.id` must be 1-40 letters, digits or hyphens"),
        ("[cache]\nnode_type = 't4g.micro'\n", "`cache.node_type` must be an ElastiCache node"),
        ("[app]\nurl = 'alb.example.com'\n", "`app.url` must be an http:// or https:// URL"),
        ("[ecs]\nsubnets = 'subnet-a'\n", "`ecs.subnets` must be a list of strings"),
        ("[app]\npath = 'api/products'\n", "`app.path` must be a path starting with /"),
        ("[app]\nhealth_path = '/he alth'\n", "`app.health_path` must be a path starting"),
        ("[app]\nsource_header = 'X Cache'\n", "`app.source_header` must be an HTTP header"),
        ("[app]\nerror_phrase = 'say \"no\"'\n", "`app.error_phrase` must be text without"),
        ("[app]\nready_phrase = ''\n", "`app.ready_phrase` must not be empty."),
        ("[app]\nsource_field = ''\nsource_header = ''\n", "`app.source_field` and"),
    ],
)
def test_bad_values_name_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert info.value.message.startswith(f"{path}: {message}")


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path / "none.toml", environ={"REXCTL_CACHE_REPLICAS": "two"})
    assert info.value.message == (
        "environment variable REXCTL_CACHE_REPLICAS: `cache.replicas` must be a whole number, "
        "not 'two'."
    )


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[cache\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        config.load(path, environ={})


def test_auth_requires_tls(tmp_path: Path) -> None:
    path = write(tmp_path, "[cache]\nauth = true\n")
    with pytest.raises(ConfigError, match=r"`cache.auth = true` needs `cache.tls = true`"):
        config.load(path, environ={})


def test_multi_az_requires_replicas(tmp_path: Path) -> None:
    path = write(tmp_path, "[cache]\nmulti_az = true\n")
    with pytest.raises(ConfigError, match=r"needs `cache.replicas` of 1 or more"):
        config.load(path, environ={})


def test_require_explains_how_to_set_a_missing_key(tmp_path: Path) -> None:
    cfg = config.load(tmp_path / "rexctl.toml", environ={})
    with pytest.raises(ConfigError) as info:
        cfg.require("ecs.cluster")
    assert (
        info.value.message == f"`ecs.cluster` is not set (there is no {tmp_path / 'rexctl.toml'})."
    )
    assert "REXCTL_ECS_CLUSTER" in (info.value.hint or "")


def test_render_toml_round_trips(tmp_path: Path) -> None:
    values = {
        "region": "us-east-1",
        "cache.id": "rexpress-redis",
        "cache.replicas": 1,
        "cache.multi_az": True,
        "ecs.subnets": ["subnet-1", "subnet-2"],
        "app.url": 'http://x/"q"',
    }
    path = write(tmp_path, config.render_toml(values))
    assert config.read_file(path) == values


def test_every_setting_has_help_and_env() -> None:
    for setting in config.SETTINGS:
        assert setting.help
        assert setting.env.startswith("REXCTL_")


def test_the_app_settings_have_the_guides_defaults_and_their_variables(tmp_path: Path) -> None:
    app = config.load(tmp_path / "none.toml", environ={}).app
    assert (app.path, app.source_field, app.source_header, app.health_path) == (
        "/api/products", "source", "X-Cache", "/health",
    )  # fmt: skip
    assert (app.ready_phrase, app.error_phrase) == ("Redis ready", "Redis error")
    path = write(tmp_path, "[app]\nsource_field = ''\nhealth_path = '/healthz'\n")
    environ = {"REXCTL_APP_ERROR_PHRASE": "cache down", "REXCTL_APP_SOURCE_HEADER": "X-Src"}
    cfg = config.load(path, environ=environ)
    assert (cfg.app.source_field, cfg.app.health_path) == ("", "/healthz")
    assert (cfg.app.error_phrase, cfg.app.source_header) == ("cache down", "X-Src")
    assert cfg.sources["app.error_phrase"] == "env"


def test_an_empty_phrase_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path / "none.toml", environ={"REXCTL_APP_READY_PHRASE": ""})
    assert info.value.message == (
        "environment variable REXCTL_APP_READY_PHRASE: `app.ready_phrase` must not be empty."
    )


@pytest.mark.parametrize(
    ("url", "option", "expected"),
    [
        ("https://alb.example.com", "", "https://alb.example.com/items"),
        ("https://alb.example.com/", "", "https://alb.example.com/items"),
        ("https://alb.example.com/api/products", "", "https://alb.example.com/api/products"),
        ("https://alb.example.com", "http://127.0.0.1:3000", "http://127.0.0.1:3000/items"),
        ("", "http://127.0.0.1:3000/v2/things?x=1", "http://127.0.0.1:3000/v2/things?x=1"),
        ("", "", ""),
    ],
)
def test_a_url_without_a_path_gets_app_path(url: str, option: str, expected: str) -> None:
    app = config.AppConfig(url=url, path="/items")
    assert app.products_url(option) == expected


def test_the_sandbox_settings_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, "[sandbox]\nbackend_command = 'node server.js'\nbackend_dir = 'app'\n")
    cfg = config.load(path, environ={"REXCTL_SANDBOX_BACKEND_DIR": "elsewhere"})
    assert (cfg.sandbox.backend_command, cfg.sandbox.backend_dir) == ("node server.js", "elsewhere")
    assert cfg.sources["sandbox.backend_command"] == "file"
