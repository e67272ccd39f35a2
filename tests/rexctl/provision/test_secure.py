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
    read_auth_record,
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
    assert plan.manual[0].startswith(
        "rexpress-redis has in-transit encryption and rexctl.toml asks for none. AWS documents "
        "in-transit encryption on a running group only as something to turn on "
        '(ModifyReplicationGroup.TransitEncryptionEnabled: "A flag that enables in-transit '
        'encryption when set to true"'
    )
    assert "`rexctl teardown` with the old `cache.id`" in plan.manual[0]
    assert '"allowed only when transitioning to RBAC"' in plan.manual[1]
    assert (
        "aws elasticache modify-replication-group --replication-group-id rexpress-redis "
        "--auth-token-update-strategy DELETE --user-group-ids-to-add GROUP --apply-immediately"
    ) in plan.manual[1]


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
    versions: dict[str, tuple[str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # id: token, labels
    status: str = "available"
    pending: dict[str, Any] | None = None
    service: tuple[bool, str, str | None] = (False, PLAIN_NAME, None)  # TLS, host, token
    calls: list[str] = field(default_factory=list)
    stop_at: int = -1  # Ctrl-C at this call
    stop_after: bool = False  # ...after doing what the call does
    broken: list[str] = field(default_factory=list)  # a moment the service lost its cache
    modifies: list[str] = field(default_factory=list)
    deployment: str = "ecs-svc/0"  # the service's PRIMARY deployment
    rolling: tuple[bool, str, str | None] | None = None  # a forced rollout ECS goes on with
    deployments: int = 0  # deployments started (rollouts)

    @property
    def secret(self) -> str | None:
        """The token of the secret's AWSCURRENT version (what ECS gives a task it starts)."""
        return next((t for t, labels in self.versions.values() if "AWSCURRENT" in labels), None)

    def label(self, name: str) -> str:
        return next((v for v, (_, labels) in self.versions.items() if name in labels), "")

    def relabel(self, name: str, to: str) -> None:
        self.versions = {
            v: (t, tuple(x for x in labels if x != name) + ((name,) if v == to else ()))
            for v, (t, labels) in self.versions.items()
        }

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

    def secret_view(self) -> SecretView | None:
        if not self.versions:
            return None
        return replace(secret(), versions={v: labels for v, (_, labels) in self.versions.items()})

    # the hooks
    def observe(self) -> Observed:
        def effect() -> Observed:
            if self.rolling is not None:  # ECS finished the rollout it was given meanwhile
                self.service, self.rolling = self.rolling, None
            host_ok = self.service[1] == self.endpoint
            wanted_token = self.secret if (self.tokens or self.want_auth) else None
            deployed = self.service == (self.tls, self.endpoint, wanted_token) and host_ok
            record = read_auth_record(self.tags, self.cache())
            return Observed(
                cache=self.cache(), engine_version="7.1", auth_record=record.change,
                secret=self.secret_view(), deployed=deployed, auth_version=record.version,
                auth_deployment=record.deployment, deployment=self.deployment,
                auth_confirmed=record.confirmed,
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

    def read_token(self, version: str) -> str:
        def effect() -> str | None:
            return self.versions[version][0] if version else self.secret

        return self.call("read_token", effect)  # type: ignore[no-any-return]

    def create_secret(self, token: str) -> None:
        def effect() -> None:
            self.versions = {f"v{len(self.versions) + 1:032d}": (token, ("AWSCURRENT",))}

        self.call("create_secret", effect)

    def stage_token(self, token: str) -> None:
        def effect() -> None:
            self.versions[f"v{len(self.versions) + 1:032d}"] = (token, ())
            self.relabel("AWSPENDING", list(self.versions)[-1])

        self.call("stage_token", effect)

    def promote(self, version: str, current: str) -> None:
        def effect() -> None:
            state = rules.SecretState({v: labels for v, (_, labels) in self.versions.items()})
            request = {"SecretId": SECRET, "VersionStage": "AWSCURRENT",
                       "MoveToVersionId": version, "RemoveFromVersionId": current}  # fmt: skip
            refused = rules.check_secret(state, "secretsmanager", "UpdateSecretVersionStage",
                                         request)  # fmt: skip
            if refused:
                raise AwsError(refused[0].message())
            if self.label("AWSCURRENT") != version:
                self.relabel("AWSPREVIOUS", current)
                self.relabel("AWSCURRENT", version)

        self.call("promote", effect)
        self.call("unstage", lambda: self.relabel("AWSPENDING", ""))

    def redeploy(self, started: Any) -> None:
        def effect() -> None:
            self.deployments += 1
            self.deployment = f"ecs-svc/{self.deployments}"
            self.rolling = (self.service[0], self.service[1], self.secret)  # read at task start
            if not self.accepts(*self.rolling):
                self.broken.append(f"redeploy: the new tasks {self.rolling[:2]} would be refused")
            started(self.deployment)
            self.service, self.rolling = self.rolling, None

        self.call("redeploy", effect)

    def tag(self, value: str) -> None:
        self.call("tag", lambda: self.tags.__setitem__(AUTH_TAG, value))

    def deploy(self) -> None:
        def effect() -> None:
            new = (self.tls, self.endpoint,
                   self.secret if (self.tokens or self.want_auth) else None)  # fmt: skip
            if not self.accepts(*new):
                self.broken.append(f"deploy: the new tasks {new[:2]} would be refused")
            self.service = new  # a rolling update: old and new were both accepted meanwhile
            self.deployments += 1
            self.deployment = f"ecs-svc/{self.deployments}"

        self.call("deploy", effect)

    def verify(self, tls: bool, auth: bool, deployment: str) -> None:
        def effect() -> None:
            uses_tls, _, token = self.service
            if (tls and not uses_tls) or (auth and token is None):
                raise CheckFailed("not every task uses TLS/the token")
            if deployment and (self.deployment != deployment or self.rolling is not None):
                raise CheckFailed(f"not every task comes from {deployment}")

        self.call("verify", effect)

    def hooks(self) -> Hooks:
        return Hooks(self.observe, self.modify, self.wait, self.read_token, self.create_secret,
                     self.tag, self.deploy, self.verify, self.stage_token, self.promote,
                     self.redeploy)  # fmt: skip


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

    def tasks_without_tls(tls: bool, auth: bool, deployment: str) -> None:
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


# A new token for a cache that has one (`rexctl rotate-token`) ------------------------------------

OLD = "Old-token-0123456789-abcdefghij"
V1, V2 = "v" + "1" * 32, "v" + "2" * 32
ROTATION = ["token-stage", "auth-rotate", "token-promote", "redeploy", "verify", "auth-set"]


def secure_view() -> CacheView:
    return view(transit_encryption=True, transit_mode="required", auth_enabled=True,
                auth_modified="2025-01-01T00:00:05+00:00")  # fmt: skip


def labelled(**versions: tuple[str, ...]) -> SecretView:
    return replace(secret(), versions={V1 if k == "v1" else V2: v for k, v in versions.items()})


@pytest.mark.parametrize(
    ("obs", "rotate", "expected"),
    [
        pytest.param(observed(secure_view(), auth_record="SET",
                              secret=labelled(v1=("AWSCURRENT",))), True, ROTATION,
                     id="a-new-rotation"),
        pytest.param(observed(secure_view(), auth_record="SET",
                              secret=labelled(v1=("AWSCURRENT",), v2=("AWSPENDING",))), True,
                     ROTATION[1:], id="a-token-already-staged-is-used"),
        pytest.param(observed(secure_view(), auth_record="SET",
                              secret=labelled(v1=("AWSCURRENT",), v2=("AWSPENDING",))), False,
                     [], id="provision-leaves-a-staged-token-alone"),
        pytest.param(observed(secure_view(), auth_record="ROTATE", auth_version=V2,
                              secret=labelled(v1=("AWSCURRENT",), v2=("AWSPENDING",))), False,
                     ROTATION[2:], id="rotated-in-provision-continues"),
        pytest.param(observed(secure_view(), auth_record="ROTATE", auth_version=V2,
                              secret=labelled(v1=("AWSPREVIOUS",), v2=("AWSCURRENT",))), True,
                     ROTATION[3:], id="made-current-not-rolled"),
        pytest.param(observed(secure_view(), auth_record="ROTATE", auth_version=V2,
                              auth_deployment="ecs-svc/7", deployment="ecs-svc/7",
                              secret=labelled(v1=("AWSPREVIOUS",), v2=("AWSCURRENT",))), True,
                     ROTATION[4:], id="rolled-verify-and-set"),
        pytest.param(observed(secure_view(), auth_record="ROTATE", auth_version=V2,
                              auth_deployment="ecs-svc/7", deployment="ecs-svc/8",
                              secret=labelled(v1=("AWSPREVIOUS",), v2=("AWSCURRENT",))), True,
                     ROTATION[3:], id="another-deployment-since-rolls-again"),
        pytest.param(observed(view(transit_encryption=True, transit_mode="preferred",
                                   auth_enabled=True), auth_record="ROTATE", secret=secret()),
                     True, ["verify", "tls-required", "auth-set"],
                     id="later-unfinished-is-finished-not-rotated"),
    ],
)  # fmt: skip
def test_a_rotation_s_steps_follow_from_what_aws_shows(
    obs: Observed, rotate: bool, expected: list[str]
) -> None:
    plan = plan_secure(obs, tls=True, auth=True, secret_name=SECRET, rotate=rotate)
    assert [s.kind for s in plan.steps] == expected
    assert plan.refused == [] and plan.manual == []
    if any(k in ("token-stage", "token-promote", "redeploy") for k in expected):
        assert "a task reads the new token only when it starts" in plan.downtime


def test_a_rotated_version_that_is_neither_current_nor_pending_stops_everything() -> None:
    obs = observed(secure_view(), auth_record="ROTATE", auth_version="v" + "9" * 32,
                   secret=labelled(v1=("AWSCURRENT",)))  # fmt: skip
    plan = plan_secure(obs, tls=True, auth=True, secret_name=SECRET, rotate=True)
    assert plan.steps == []
    assert "neither the secret's current nor its pending one" in plan.manual[0]
    assert f"--move-to-version-id {'v' + '9' * 32} --remove-from-version-id {V1}" in plan.manual[0]


def test_a_promotion_aws_would_refuse_is_refused_before_it_is_sent() -> None:
    """The secret says AWSCURRENT is on another version than the one rexctl would name."""
    obs = observed(secure_view(), auth_record="ROTATE", auth_version=V2,
                   secret=labelled(v2=("AWSPENDING",)))  # no version is AWSCURRENT  # fmt: skip
    plan = plan_secure(obs, tls=True, auth=True, secret_name=SECRET, rotate=True)
    assert {(v.operation, v.parameter) for v in plan.refused} == {
        ("UpdateSecretVersionStage", "RemoveFromVersionId")
    }
    world = secured()
    world.versions = {V2: ("Staged-token-0123456789-abcdefgh", ("AWSPENDING",))}
    world.tags[AUTH_TAG] = f"ROTATE {world.cache().auth_modified} {V2}"
    with pytest.raises(AwsError, match="AWS would refuse UpdateSecretVersionStage"):
        rotate(world)
    assert "promote" not in world.calls, "nothing was sent"


@pytest.mark.parametrize(
    ("tag", "modified", "expected"),
    [
        (f"ROTATE pending 2025-01-01T00:00:05+00:00 {V2}", "2025-01-01T00:00:06+00:00",
         ("ROTATE", V2, "")),
        (f"ROTATE pending 2025-01-01T00:00:05+00:00 {V2}", "2025-01-01T00:00:05+00:00",
         ("SET", "", "")),
        (f"ROTATE 2025-01-01T00:00:06+00:00 {V2} ecs-svc/7", "2025-01-01T00:00:06+00:00",
         ("ROTATE", V2, "ecs-svc/7")),
        (f"SET pending 2025-01-01T00:00:06+00:00 {V2} ecs-svc/7", "2025-01-01T00:00:06+00:00",
         ("ROTATE", V2, "ecs-svc/7")),
        (f"SET pending 2025-01-01T00:00:06+00:00 {V2} ecs-svc/7", "2025-01-01T00:00:07+00:00",
         ("SET", V2, "ecs-svc/7")),
        (f"SET 2025-01-01T00:00:07+00:00 {V2}", "2025-01-01T00:00:07+00:00", ("SET", V2, "")),
    ],
    ids=["rotate-happened", "rotate-did-not-so-the-set-before", "rolled", "set-did-not",
         "set-happened", "rotation-done"],
)  # fmt: skip
def test_a_rotation_s_record(tag: str, modified: str, expected: tuple[str, str, str]) -> None:
    record = read_auth_record({AUTH_TAG: tag}, view(auth_enabled=True, auth_modified=modified))
    assert (record.change, record.version, record.deployment) == expected


def secured() -> World:
    """TLS and AUTH done (as after `rexctl provision`): one token, the tasks use it."""
    world = World(tls=True, mode="required", tokens=[OLD], open=False, last="SET",
                  service=(True, TLS_NAME, OLD), versions={V1: (OLD, ("AWSCURRENT",))},
                  modified=5)  # fmt: skip
    world.tags = {AUTH_TAG: f"SET {world.cache().auth_modified}"}
    return world


def rotate(world: World, timeline: list[dict[str, Any]] | None = None) -> list[str]:
    return run(world.hooks(), tls=True, auth=True, secret_name=SECRET,
               reporter=RecordingReporter(), token_factory=lambda: next(TOKENS),
               redact=lambda token: None, rotate=True, timeline=timeline)  # fmt: skip


def rotated(world: World, previous: str = V1) -> None:
    new = world.secret
    assert new is not None and new != OLD
    assert world.tokens == [new] and world.last == "SET" and not world.open
    assert world.service == (True, TLS_NAME, new)
    assert world.label("AWSPREVIOUS") == previous and world.label("AWSPENDING") == ""
    assert world.broken == []


def test_rotate_the_token_never_losing_the_cache() -> None:
    world = secured()
    timeline: list[dict[str, Any]] = []
    done = rotate(world, timeline)
    rotated(world)
    assert world.modifies == ["ROTATE", "SET"] and world.deployments == 1
    assert [t["kind"] for t in timeline] == ROTATION
    assert all(t["started_at"] <= t["ended_at"] for t in timeline) and len(done) == 6
    assert rotate(world) != [], "asked again, it rotates again: a new token each time"
    assert world.modifies == ["ROTATE", "SET"] * 2 and world.broken == []


def test_the_tasks_read_the_new_token_only_once_it_is_current() -> None:
    """The world can fail: a rollout before the promotion leaves the tasks on the old token,
    and SET then turns them away."""
    world = secured()
    world.stage_token("Staged-token-0123456789-abcdefgh")
    pending = world.label("AWSPENDING")
    world.tags[AUTH_TAG] = f"ROTATE pending {world.cache().auth_modified} {pending}"
    world.modify({"ReplicationGroupId": ID, "AuthToken": "Staged-token-0123456789-abcdefgh",
                  "AuthTokenUpdateStrategy": "ROTATE"})  # fmt: skip
    world.wait(None)
    world.redeploy(lambda d: None)  # too early: AWSCURRENT is still the old token
    world.modify({"ReplicationGroupId": ID, "AuthToken": "Staged-token-0123456789-abcdefgh",
                  "AuthTokenUpdateStrategy": "SET"})  # fmt: skip
    world.wait(None)
    assert world.broken and world.broken[0].startswith("after wait:")


def _rotation_calls() -> int:
    world = secured()
    rotate(world)
    return len(world.calls)


@pytest.mark.parametrize("again", ["rotate-token", "provision-then-rotate-token"])
@pytest.mark.parametrize("after", [False, True], ids=["before-its-effect", "after-its-effect"])
@pytest.mark.parametrize("at", range(_rotation_calls()))
def test_a_rotation_interrupted_at_any_call_finishes_when_run_again(
    at: int, after: bool, again: str
) -> None:
    world = secured()
    world.stop_at, world.stop_after = at, after
    with pytest.raises(Interrupted) as stopped:
        rotate(world)
    assert "`rexctl rotate-token` again continues" in (stopped.value.hint or "")
    assert world.broken == []
    world.stop_at = -1
    if again == "provision-then-rotate-token":
        migrate(world)  # continues a rotation under way, leaves one not begun alone
        assert world.broken == []
        if world.last == "SET" and world.tokens != [OLD]:
            rotated(world)
            return
        assert world.tokens == [OLD], "a rotation not begun on the cache is left alone"
    record = read_auth_record(world.tags, world.cache())
    first = world.label("AWSCURRENT")
    rotate(world)
    if record.change == "SET" and record.version and record.confirmed:
        # Stopped once everything was done and recorded: asked again, it rotates again.
        rotated(world, previous=first)
        assert world.modifies == ["ROTATE", "SET"] * 2 and world.deployments == 2
        return
    rotated(world)
    # Never a second ROTATE (it would drop the old token while tasks still use it), one SET, one
    # forced deployment (two when stopped between ECS starting it and rexctl recording it).
    assert world.modifies == ["ROTATE", "SET"]
    assert world.deployments <= 2
    assert len({t for t, _ in world.versions.values()}) == 2


def test_a_rotation_s_failed_verification_turns_nothing_away() -> None:
    world = secured()
    world.verify = lambda tls, auth, deployment: (_ for _ in ()).throw(  # type: ignore[method-assign]
        CheckFailed("Not every running task uses the new AUTH token after 60 s.")
    )
    with pytest.raises(CheckFailed) as failed:
        rotate(world)
    assert len(world.tokens) == 2 and OLD in world.tokens, "both tokens still accepted"
    assert "`rexctl rotate-token` again continues" in (failed.value.hint or "")
    assert world.broken == []
