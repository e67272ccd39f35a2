"""`rexctl init` core: which container gets REDIS_*, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from rexctl.aws.session import ClientSet
from rexctl.config import load
from rexctl.errors import ConfigError, UsageError
from rexctl.provision import init_config
from tests.helpers import EXECUTION_ROLE_ARN
from tests.rexctl.aws.world import World, build_world


def two_containers(aws: ClientSet, world: World, names: tuple[str, str]) -> None:
    td = aws.ecs.register_task_definition(
        executionRoleArn=EXECUTION_ROLE_ARN,
        family="backend",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": n, "image": "x", "memory": 256} for n in names],
    )["taskDefinition"]["taskDefinitionArn"]
    aws.ecs.update_service(cluster=world.cluster, service=world.service, taskDefinition=td)


def test_several_containers_need_a_choice(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    two_containers(aws, world, ("web", "sidecar"))
    cfg = load(tmp_path / "rexctl.toml", environ={})
    with pytest.raises(ConfigError) as info:
        init_config(aws, cfg, cluster="rexpress", service="backend")
    assert info.value.message == (
        "Task definition backend:2 has several containers (web, sidecar) and none is called "
        "'backend'."
    )
    assert not (tmp_path / "rexctl.toml").exists()
    result = init_config(aws, cfg, cluster="rexpress", service="backend", container="web")
    assert result.values["ecs.container"] == "web"


def test_the_backend_container_is_picked_among_several(aws: ClientSet, tmp_path: Path) -> None:
    world = build_world(aws)
    two_containers(aws, world, ("envoy", "backend"))
    cfg = load(tmp_path / "rexctl.toml", environ={})
    result = init_config(aws, cfg, cluster="rexpress", service="backend")
    assert result.values["ecs.container"] == "backend"


def test_an_unknown_container_or_a_bad_url_is_refused(aws: ClientSet, tmp_path: Path) -> None:
    build_world(aws)
    cfg = load(tmp_path / "rexctl.toml", environ={})
    with pytest.raises(ConfigError, match="has no container named 'nope'"):
        init_config(aws, cfg, cluster="rexpress", service="backend", container="nope")
    with pytest.raises(UsageError) as info:
        init_config(aws, cfg, cluster="rexpress", service="backend", url="ftp://x")
    assert info.value.message == "--url must be an http:// or https:// URL (got 'ftp://x')."
    assert not (tmp_path / "rexctl.toml").exists()


def test_force_keeps_the_cache_settings_of_the_existing_file(
    aws: ClientSet, tmp_path: Path
) -> None:
    build_world(aws)
    path = tmp_path / "rexctl.toml"
    path.write_text('[cache]\nid = "orders-cache"\ntls = true\n', encoding="utf-8")
    result = init_config(
        aws, load(path, environ={}), cluster="rexpress", service="backend", force=True
    )
    text = path.read_text()
    assert 'id = "orders-cache"' in text and "tls = true" in text
    assert 'security_group = "orders-cache-sg"' in text
    assert result.values["ecs.service"] == "backend"
