"""`rexctl rotate-token`'s core: what it refuses before changing anything, the plan it shows before
the first step, and the rotation itself, against the world of test_secure.py (which stands in for
AWS as the sandbox does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rexctl.config import Config, load, render_toml
from rexctl.errors import CheckFailed, ConfigError, Interrupted, UsageError
from rexctl.provision.model import RecordingReporter
from rexctl.provision.rotate import rotate_token
from rexctl.provision.secure import AUTH_TAG, ROTATION_NO_DOWNTIME
from tests.rexctl.provision.test_secure import (
    OLD,
    PLAIN_NAME,
    TOKENS,
    V1,
    World,
    rotated,
    secured,
)


def config(tmp_path: Path, **cache: object) -> Config:
    values: dict[str, Any] = {"ecs.cluster": "rexpress", "ecs.service": "backend",
                              "cache.id": "rexpress-redis", "cache.tls": True,
                              "cache.auth": True}  # fmt: skip
    values.update({f"cache.{k}": v for k, v in cache.items()})
    path = tmp_path / "rexctl.toml"
    path.write_text(render_toml(values), encoding="utf-8")
    return load(path, environ={})


def rotate(world: World, cfg: Config, **options: Any) -> tuple[Any, RecordingReporter]:
    reporter = RecordingReporter()
    result = rotate_token(
        None,  # type: ignore[arg-type]  # the world's hooks never touch clients
        cfg, reporter=reporter, token_factory=lambda: next(TOKENS),
        hooks=lambda *args, **kwargs: world.hooks(), **options,
    )  # fmt: skip
    return result, reporter


def test_the_plan_and_its_promise_come_before_the_first_step(tmp_path: Path) -> None:
    world = secured()
    result, reporter = rotate(world, config(tmp_path))
    rotated(world)
    messages = [m for _, m in reporter.events]
    assert messages[0].startswith("Token rotation of rexpress-redis, 6 steps: 1. generate a new")
    assert messages[1] == ROTATION_NO_DOWNTIME
    assert messages[2].startswith("Step 9 (token rotation): generate a new AUTH token")
    data = result.to_dict()
    assert data["changed"] and len(data["rotation"]["done"]) == 6
    assert [t["kind"] for t in data["rotation"]["timeline"]][-1] == "auth-set"
    assert world.secret not in str(data) + reporter.text() and OLD not in reporter.text()


def test_dry_run_shows_the_steps_and_sends_nothing(tmp_path: Path) -> None:
    world = secured()
    result, reporter = rotate(world, config(tmp_path), dry_run=True)
    assert set(world.calls) == {"observe"} and world.versions == {V1: (OLD, ("AWSCURRENT",))}
    assert "Would force a new deployment of the service" in reporter.text()
    assert result.to_dict()["changed"] is False
    assert "<auth_token>" in str(result.to_dict()["rotation"]["steps"])


def test_a_rotation_under_way_is_said_to_be_continued(tmp_path: Path) -> None:
    world = secured()
    world.stop_at = 9  # stopped before AWSCURRENT moved
    with pytest.raises(Interrupted):
        rotate(world, config(tmp_path))
    world.stop_at = -1
    _, reporter = rotate(world, config(tmp_path))
    assert "(continuing the one under way), 4 steps" in reporter.text()
    rotated(world)


@pytest.mark.parametrize(
    ("world", "cache", "error", "message"),
    [
        (World(tls=True, mode="required", service=(True, PLAIN_NAME, None)), {},
         UsageError, "rexpress-redis has no AUTH token, so there is no token to rotate."),
        (secured(), {"auth": False}, UsageError,
         "rexctl.toml says `cache.auth = false`, but rexpress-redis has an AUTH token."),
        (World(tls=True, mode="required", tokens=[OLD], open=False, last="SET",
               service=(True, PLAIN_NAME, OLD)), {}, UsageError,
         "Secret rexctl/rexpress-redis/auth-token does not exist: rexctl does not have "
         "rexpress-redis's token to rotate from."),
        (World(tls=True, mode="preferred", tokens=[OLD], open=True, last="ROTATE",
               versions={V1: (OLD, ("AWSCURRENT",))}, tags={AUTH_TAG: "ROTATE "},
               service=(True, PLAIN_NAME, OLD)), {}, UsageError,
         "TLS and AUTH later is not finished on rexpress-redis"),
    ],
    ids=["no-token", "auth-false", "secret-lost", "later-unfinished"],
)  # fmt: skip
def test_what_cannot_be_rotated_safely_is_refused_before_anything_changes(
    tmp_path: Path, world: World, cache: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as refused:
        rotate(world, config(tmp_path, **cache))
    assert str(refused.value.args[0]).startswith(message)  # type: ignore[union-attr]
    assert set(world.calls) == {"observe"}


def test_a_service_not_on_what_deploy_sets_is_refused(tmp_path: Path) -> None:
    world = secured()
    world.service = (True, PLAIN_NAME, OLD)  # REDIS_HOST is not the cache's endpoint
    with pytest.raises(UsageError) as refused:
        rotate(world, config(tmp_path))
    assert "a new deployment would not give its tasks the new token" in refused.value.message
    assert refused.value.hint == "Run `rexctl deploy` first, then `rexctl rotate-token`."


def test_a_version_rexctl_cannot_place_is_a_check_that_failed(tmp_path: Path) -> None:
    world = secured()
    world.tags[AUTH_TAG] = f"ROTATE {world.cache().auth_modified} v{'9' * 32}"
    with pytest.raises(CheckFailed, match="neither the secret's current nor its pending one"):
        rotate(world, config(tmp_path))
    assert set(world.calls) == {"observe"}


def test_bad_timeout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--timeout must be more than 0"):
        rotate(secured(), config(tmp_path), timeout=0)


def test_a_failure_s_message_never_carries_the_token(tmp_path: Path) -> None:
    world = secured()

    def refuse(request: dict[str, Any]) -> None:
        raise ConfigError(f"AWS refused {request}")  # a message that would show the request

    world.modify = refuse  # type: ignore[method-assign]
    with pytest.raises(ConfigError) as failed:
        rotate(world, config(tmp_path))
    staged = world.versions[world.label("AWSPENDING")][0]
    assert staged not in failed.value.message and "(redacted)" in failed.value.message
