"""TLS and AUTH later (issue 13): the steps derived from what AWS shows, and their run, interrupted
at every step and resumed.

`World` stands in for AWS the way the sandbox does (rexctl/sandbox/moto_state.py): a modify is
refused by `rules.check_group` given the group, then applied once the wait sees it done; ROTATE
keeps the previous token (or no token), SET keeps one; `required` turns plain connections away.
After every call the world checks what the issue asks of each step: the service's tasks, old and
new, are still accepted by the cache (TLS where required, a token it takes where one is needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from rexctl.aws import rules
from rexctl.aws.elasticache import CacheView
from rexctl.aws.secrets import SecretView
from rexctl.errors import AwsError, CheckFailed, Interrupted
from rexctl.provision.model import RecordingReporter
from rexctl.provision.secure import (
    AUTH_TAG,
    NO_DOWNTIME,
    Hooks,
    Observed,
    auth_record,
    plan_secure,
    run,
)

ID = "rexpress-redis"
SECRET = f"rexctl/{ID}/auth-token"
TOKENS = iter(f"Generated-token-{i:04d}-abcdefghij" for i in range(10_000))
PLAIN_NAME = f"{ID}.abc123.ng.0001.use1.cache.amazonaws.com"
TLS_NAME = f"master.{ID}.abc123.use1.cache.amazonaws.com"


def view(**changes: Any) -> CacheView:
    base: dict[str, Any] = dict(
        id=ID, arn=f"arn:aws:elasticache:us-east-1:123456789012:replicationgroup:{ID}",
        status="available", endpoint=PLAIN_NAME, port=6379, node_type="cache.t4g.micro",
        member_clusters=[f"{ID}-001"], automatic_failover="disabled", multi_az="disabled",
        transit_encryption=False, at_rest_encryption=True, auth_enabled=False,
        cluster_mode="disabled", engine="redis",
    )  # fmt: skip
    base.update(changes)
    return CacheView(**base)


def secret() -> SecretView:
    return SecretView(SECRET, f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET}-a")


def observed(cache: CacheView, **changes: Any) -> Observed:
    base: dict[str, Any] = dict(cache=cache, engine_version="7.1", auth_record="", secret=None,
                                deployed=True)  # fmt: skip
    base.update(changes)
    return Observed(**base)


def kinds(obs: Observed, tls: bool = True, auth: bool = True) -> list[str]:
    return [s.kind for s in plan_secure(obs, tls=tls, auth=auth, secret_name=SECRET).steps]


EVERYTHING = ["tls-preferred", "auth-secret", "auth-rotate", "deploy", "verify", "tls-required",
              "auth-set"]  # fmt: skip


@pytest.mark.parametrize(
    ("obs", "tls", "auth", "expected"),
    [
        pytest.param(observed(view()), True, True, EVERYTHING, id="plain-to-both"),
        pytest.param(observed(view()), True, False,
                     ["tls-preferred", "deploy", "verify", "tls-required"], id="plain-to-tls"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="preferred"),
                              deployed=False), True, False,
                     ["deploy", "verify", "tls-required"], id="preferred-not-yet-deployed"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="preferred")), True,
                     False, ["verify", "tls-required"], id="preferred-deployed"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="required")), True,
                     True, ["auth-secret", "auth-rotate", "deploy", "verify", "auth-set"],
                     id="tls-cache-gets-auth"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="required",
                                   auth_enabled=True), auth_record="ROTATE", secret=secret()),
                     True, True, ["verify", "auth-set"], id="rotated-and-deployed"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="required",
                                   auth_enabled=True), auth_record="", secret=secret()),
                     True, True, ["auth-rotate", "deploy", "verify", "auth-set"],
                     id="last-change-unknown-rotates-again"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="required",
                                   auth_enabled=True), auth_record="SET", secret=secret()),
                     True, True, [], id="done"),
        pytest.param(observed(view()), False, False, [], id="plain-stays-plain"),
        pytest.param(observed(view(), deployed=False), False, False, [],
                     id="a-rollout-alone-is-rexctl-deploys-business"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="preferred",
                                   auth_enabled=True), auth_record="ROTATE", secret=secret()),
                     True, True, ["verify", "tls-required", "auth-set"],
                     id="both-halfway-verify-once-before-both"),
    ],
)  # fmt: skip
def test_the_steps_left_follow_from_what_aws_shows(
    obs: Observed, tls: bool, auth: bool, expected: list[str]
) -> None:
    plan = plan_secure(obs, tls=tls, auth=auth, secret_name=SECRET)
    assert [s.kind for s in plan.steps] == expected
    assert plan.refused == [] and plan.manual == []
    assert (plan.to_dict()["downtime"] == NO_DOWNTIME) is bool(expected)


def test_what_aws_does_not_offer_is_manual_and_never_planned() -> None:
    secure = view(transit_encryption=True, transit_mode="required", auth_enabled=True)
    plan = plan_secure(observed(secure, auth_record="SET", secret=secret()), tls=False,
                       auth=False, secret_name=SECRET)  # fmt: skip
    assert plan.steps == []
    assert "AWS documents turning it on for a running group, not off" in plan.manual[0]
    assert "DELETE with UserGroupIdsToAdd" in plan.manual[1]


def test_an_engine_that_cannot_have_tls_online_is_refused_naming_the_rule() -> None:
    plan = plan_secure(observed(view(), engine_version="6.2.6"), tls=True, auth=False,
                       secret_name=SECRET)  # fmt: skip
    (refused,) = plan.refused
    assert refused.parameter == "TransitEncryptionEnabled"
    assert "Redis OSS 7.0 or later" in refused.rule and "6.2.6" in refused.rule


def test_requests_carry_the_token_as_a_reference_only() -> None:
    plan = plan_secure(observed(view()), tls=True, auth=True, secret_name=SECRET)
    shown = str(plan.to_dict())
    assert "<auth_token>" in shown
    rotate = next(s for s in plan.steps if s.kind == "auth-rotate")
    assert rotate.request is not None and rotate.request["AuthTokenUpdateStrategy"] == "ROTATE"


@pytest.mark.parametrize(
    ("tags", "cache", "expected"),
    [
        ({}, view(auth_enabled=False), ""),
        ({}, view(auth_enabled=True, auth_modified="2025-01-01T00:00:00+00:00"), "SET"),
        ({AUTH_TAG: "ROTATE 2025-01-01T00:00:00+00:00"},
         view(auth_enabled=True, auth_modified="2025-01-01T00:00:00+00:00"), "ROTATE"),
        ({AUTH_TAG: "ROTATE 2025-01-01T00:00:00+00:00"},
         view(auth_enabled=True, auth_modified="2025-02-01T00:00:00+00:00"), ""),
        ({AUTH_TAG: "ROTATE pending -"},
         view(auth_enabled=True, auth_modified="2025-02-01T00:00:00+00:00"), "ROTATE"),
        ({AUTH_TAG: "SET pending 2025-02-01T00:00:00+00:00"},
         view(auth_enabled=True, auth_modified="2025-02-01T00:00:00+00:00"), "ROTATE"),
        ({AUTH_TAG: "SET pending 2025-02-01T00:00:00+00:00"},
         view(auth_enabled=True, auth_modified="2025-02-01T00:00:09+00:00"), "SET"),
        ({AUTH_TAG: "ROTATE pending 2025-02-01T00:00:00+00:00"},
         view(auth_enabled=True, auth_modified="2025-02-01T00:00:00+00:00"), ""),
        ({AUTH_TAG: "ROTATE needed"},
         view(auth_enabled=True, auth_modified="2025-02-01T00:00:00+00:00"), ""),
    ],
    ids=["no-auth", "created-with-a-token", "rotated", "changed-since",
         "interrupted-rotate-that-happened", "interrupted-set-that-did-not",
         "interrupted-set-that-happened", "interrupted-rotate-that-did-not", "token-stored-anew"],
)  # fmt: skip
def test_the_last_auth_change_as_rexctl_recorded_it(
    tags: dict[str, str], cache: CacheView, expected: str
) -> None:
    assert auth_record(tags, cache) == expected


# The run, against a world that behaves as AWS documents -------------------------------------


class Stop(KeyboardInterrupt):
    """Ctrl-C at a chosen call."""


@dataclass
class World:
    want_auth: bool = True
    tls: bool = False
    mode: str = ""
    tokens: list[str] = field(default_factory=list)
    open: bool = True  # connections without a token are accepted
    last: str = ""  # the group's real last AUTH change
    modified: int = 0  # AuthTokenLastModifiedDate, as a counter
    tags: dict[str, str] = field(default_factory=dict)
    secret: str | None = None
    status: str = "available"
    pending: dict[str, Any] | None = None
    service: tuple[bool, str, str | None] = (False, PLAIN_NAME, None)  # TLS, host, token
    calls: list[str] = field(default_factory=list)
    stop_at: int = -1  # Ctrl-C at this call
    stop_after: bool = False  # ...after doing what the call does
    broken: list[str] = field(default_factory=list)  # a moment the service lost its cache
    modifies: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return TLS_NAME if self.tls else PLAIN_NAME

    def names(self) -> set[str]:
        if self.tls and self.mode == "preferred":
            return {PLAIN_NAME, TLS_NAME}
        return {self.endpoint}

    def cache(self) -> CacheView:
        return view(
            status=self.status, endpoint=self.endpoint, transit_encryption=self.tls,
            transit_mode=self.mode, auth_enabled=bool(self.tokens),
            auth_modified=f"2025-01-01T00:00:{self.modified:02d}+00:00" if self.tokens else "",
        )  # fmt: skip

    def accepts(self, tls: bool, host: str, token: str | None) -> bool:
        if host not in self.names() or (self.tls and self.mode == "required" and not tls):
            return False
        if not self.tokens:
            return token is None or True  # AUTH with a token on a node without one: see sandbox
        return token in self.tokens or (token is None and self.open)

    def call(self, name: str, effect: Any) -> Any:
        """Every hook: maybe Ctrl-C before or after its effect; then check the service."""
        self.calls.append(name)
        n = len(self.calls) - 1
        if n == self.stop_at and not self.stop_after:
            raise Stop()
        result = effect()
        if not self.accepts(*self.service):
            self.broken.append(f"after {name}: {self.service[:2]} refused")
        if n == self.stop_at:
            raise Stop()
        return result

    def state(self) -> rules.GroupState:
        return rules.GroupState(
            engine="redis", engine_version="7.1", transit_encryption=self.tls,
            transit_mode=self.mode if self.tls else "", auth_enabled=bool(self.tokens),
            last_auth_change=self.last, last_rotated=self.tokens[-1] if self.last == "ROTATE"
            and self.tokens else None,
        )  # fmt: skip

    # the hooks
    def observe(self) -> Observed:
        def effect() -> Observed:
            host_ok = self.service[1] == self.endpoint
            wanted_token = self.secret if (self.tokens or self.want_auth) else None
            deployed = self.service == (self.tls, self.endpoint, wanted_token) and host_ok
            return Observed(
                cache=self.cache(), engine_version="7.1",
                auth_record=auth_record(self.tags, self.cache()),
                secret=secret() if self.secret else None, deployed=deployed,
            )  # fmt: skip

        return self.call("observe", effect)  # type: ignore[no-any-return]

    def modify(self, request: dict[str, Any]) -> None:
        def effect() -> None:
            assert self.status == "available", "ElastiCache refuses a modify while modifying"
            refused = rules.check_group(self.state(), "elasticache", "ModifyReplicationGroup",
                                        request)  # fmt: skip
            if refused:
                raise AwsError(refused[0].message())
            self.status, self.pending = "modifying", request
            self.modifies.append(str(request.get("AuthTokenUpdateStrategy")
                                     or request.get("TransitEncryptionMode")))  # fmt: skip

        self.call("modify", effect)

    def wait(self, request: dict[str, Any] | None) -> CacheView:
        def effect() -> CacheView:
            if self.pending is not None:
                self._apply(self.pending)
            self.status, self.pending = "available", None
            return self.cache()

        return self.call("wait", effect)  # type: ignore[no-any-return]

    def _apply(self, r: dict[str, Any]) -> None:
        if r.get("TransitEncryptionEnabled"):
            self.tls = True
        if r.get("TransitEncryptionMode"):
            self.mode = r["TransitEncryptionMode"]
        if "AuthToken" in r:
            if r["AuthTokenUpdateStrategy"] == "SET":
                self.tokens, self.open = [r["AuthToken"]], False
            else:
                self.open = not self.tokens
                self.tokens = [*self.tokens[-1:], r["AuthToken"]]
            self.last = r["AuthTokenUpdateStrategy"]
            self.modified += 1

    def read_token(self) -> str:
        return self.call("read_token", lambda: self.secret)  # type: ignore[no-any-return]

    def create_secret(self, token: str) -> None:
        self.call("create_secret", lambda: setattr(self, "secret", token))

    def tag(self, value: str) -> None:
        self.call("tag", lambda: self.tags.__setitem__(AUTH_TAG, value))

    def deploy(self) -> None:
        def effect() -> None:
            new = (self.tls, self.endpoint,
                   self.secret if (self.tokens or self.want_auth) else None)  # fmt: skip
            if not self.accepts(*new):
                self.broken.append(f"deploy: the new tasks {new[:2]} would be refused")
            self.service = new  # a rolling update: old and new were both accepted meanwhile

        self.call("deploy", effect)

    def verify(self, tls: bool, auth: bool) -> None:
        def effect() -> None:
            uses_tls, _, token = self.service
            if (tls and not uses_tls) or (auth and token is None):
                raise CheckFailed("not every task uses TLS/the token")

        self.call("verify", effect)

    def hooks(self) -> Hooks:
        return Hooks(self.observe, self.modify, self.wait, self.read_token, self.create_secret,
                     self.tag, self.deploy, self.verify)  # fmt: skip


def migrate(world: World, tls: bool = True, auth: bool = True) -> list[str]:
    return run(world.hooks(), tls=tls, auth=auth, secret_name=SECRET,
               reporter=RecordingReporter(), token_factory=lambda: next(TOKENS),
               redact=lambda token: None)  # fmt: skip


def finished(world: World) -> None:
    assert (world.tls, world.mode, world.open) == (True, "required", False)
    assert world.tokens == [world.secret] and world.last == "SET"
    assert world.service == (True, TLS_NAME, world.secret)
    assert world.broken == []


def test_plain_to_tls_and_auth_in_one_rollout_never_losing_the_cache() -> None:
    world = World()
    done = migrate(world)
    finished(world)
    assert world.calls.count("deploy") == 1
    assert world.modifies == ["preferred", "ROTATE", "required", "SET"]
    assert len(done) == 8  # the 7 steps, the verification again before SET
    assert migrate(world) == [], "run again: nothing to do"


def test_a_verification_is_followed_at_once_by_what_it_allows() -> None:
    world = World()
    migrate(world)
    calls = world.calls
    assert calls.count("verify") == 2
    for i, name in enumerate(calls):
        if name == "verify":
            acting = [c for c in calls[i + 1 :] if c in ("modify", "deploy", "verify")]
            assert acting[0] == "modify", calls


def _all_calls() -> int:
    world = World()
    migrate(world)
    return len(world.calls)


@pytest.mark.parametrize("after", [False, True], ids=["before-its-effect", "after-its-effect"])
@pytest.mark.parametrize("at", range(_all_calls()))
def test_interrupted_at_any_call_and_run_again_it_finishes(at: int, after: bool) -> None:
    world = World(stop_at=at, stop_after=after)
    with pytest.raises(Interrupted) as stopped:
        migrate(world)
    assert "`rexctl provision` again continues" in (stopped.value.hint or "")
    world.stop_at = -1
    migrate(world)
    finished(world)
    # Resuming repeats nothing but (at most) one harmless ROTATE of the same token.
    assert world.modifies.count("preferred") == 1 and world.modifies.count("required") == 1
    assert world.modifies.count("ROTATE") <= 2 and world.modifies.count("SET") == 1
    assert len(set(world.tokens)) == 1


def test_a_failed_verification_changes_nothing_and_says_what_was_done() -> None:
    world = World()
    real = world.verify

    def tasks_without_tls(tls: bool, auth: bool) -> None:
        world.calls.append("verify")
        raise CheckFailed("Not every running task uses TLS and the AUTH token after 60 s.")

    world.verify = tasks_without_tls  # type: ignore[method-assign]
    with pytest.raises(CheckFailed) as failed:
        migrate(world)
    assert (world.mode, world.open) == ("preferred", True), "plain and no token still accepted"
    assert "Done: turn in-transit encryption on" in (failed.value.hint or "")
    assert world.broken == []
    world.verify = real  # type: ignore[method-assign]
    migrate(world)
    finished(world)


def test_a_step_that_does_not_take_effect_stops_the_run() -> None:
    world = World()
    world.deploy = lambda: None  # type: ignore[method-assign]  # a rollout that did not happen
    with pytest.raises(AwsError) as stuck:
        migrate(world)
    assert stuck.value.message.startswith("Step 9 did not take effect: roll the service")
    assert world.mode == "preferred" and world.broken == []


def test_a_lost_secret_is_replaced_by_rotating_a_new_token_in() -> None:
    world = World(tls=True, mode="required", tokens=["Old-token-0123456789"], open=False,
                  last="SET", service=(True, TLS_NAME, "Old-token-0123456789"))  # fmt: skip
    migrate(world)
    assert world.secret is not None and world.tokens == [world.secret]
    assert world.modifies == ["ROTATE", "SET"] and world.broken == []


def test_tls_only_leaves_auth_alone() -> None:
    world = World(want_auth=False)
    migrate(world, tls=True, auth=False)
    assert (world.tls, world.mode, world.tokens) == (True, "required", [])
    assert world.service == (True, TLS_NAME, None) and world.broken == []


def test_without_the_ordering_the_world_would_catch_the_outage() -> None:
    """The check can fail: SET before the rollout leaves the tasks without an accepted token."""
    world = World(tls=True, mode="required", service=(True, TLS_NAME, None))
    world.modify({"ReplicationGroupId": ID, "AuthToken": "T" * 20,
                  "AuthTokenUpdateStrategy": "ROTATE"})  # fmt: skip
    world.wait(None)
    world.modify({"ReplicationGroupId": ID, "AuthToken": "T" * 20,
                  "AuthTokenUpdateStrategy": "SET"})  # fmt: skip
    world.wait(None)
    assert world.broken == ["after wait: (True, 'master.rexpress-redis.abc123.use1.cache."
                            "amazonaws.com') refused"]  # fmt: skip


def test_replace_keeps_the_plan_pure() -> None:
    obs = observed(view())
    before = replace(obs)
    kinds(obs)
    assert obs == before
