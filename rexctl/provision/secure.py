"""TLS and AUTH later (guide step 9, "you can enable them later"): a running cache taken to
in-transit encryption and an AUTH token without the API losing it.

ElastiCache does both on a running replication group (Redis OSS 7.0+ / Valkey 7.2+ for TLS, 5.0.5+
for a token), each in two stages that let old and new clients work at once:

    TLS:  ModifyReplicationGroup TransitEncryptionEnabled + TransitEncryptionMode=preferred
          (TLS and plain on the one port; new TLS endpoint names, the plain ones kept)
          ... every client moves to TLS (a rollout of the service with REDIS_TLS=true) ...
          TransitEncryptionMode=required (plain connections dropped, the plain names deleted)
    AUTH: the token generated into Secrets Manager; AuthToken + AuthTokenUpdateStrategy=ROTATE
          (the token accepted, and what was accepted before: no token at all)
          ... every client moves to the token (a rollout with the secret) ...
          AuthToken + SET (only the token)

rexctl runs them in that order, with one rollout for both when both are asked: preferred,
secret, ROTATE, deploy, verify, required, SET. At no step does the API lose its cache for longer
than the rollout of one task: each modify accepts what every running task does, and the rollout is
ECS's rolling update (a task is replaced only once its successor answers).

Resumable by construction: the steps are derived from what AWS shows, read again before each
step (`observe`): TransitEncryptionEnabled / TransitEncryptionMode, AuthTokenEnabled, the secret,
whether the service runs what `rexctl deploy` would set (REDIS_TLS, REDIS_HOST, the secret), and
the last AUTH change. That last one AWS does not show (ROTATE and SET both leave AuthTokenEnabled
true), so rexctl records it on the group as the tag `rexctl:auth-token`: `<ROTATE|SET> pending
<date before>` right before the modify, `<ROTATE|SET> <AuthTokenLastModifiedDate>` once it shows;
interrupted in between, the date tells whether the change happened (`auth_record`). A ROTATE is
never repeated blindly: on a group that accepted "no token" (ROTATE on a group without one), a
second ROTATE would drop that, and the tasks still without the token with it.

Verification ("every task now connects with TLS"): ElastiCache shows no per-connection view of
TLS or AUTH. The evidence rexctl uses is what AWS can show: ECS (the service's one deployment is
the revision with REDIS_TLS=true and the secret, rollout COMPLETED, running = desired) and each
running task's own log stream (`✅ Redis ready (TLS, AUTH)` since that task started). A client of
the cache that is not this service is invisible to it: `required` and SET would cut it off.

A new token for a cache that has one (`rexctl rotate-token`, `rotate=True`) follows the same
pattern, with Secrets Manager's version labels as the extra state: the token is put as the
secret's pending version (AWSPENDING: ECS and every reader still get AWSCURRENT, the old token),
ROTATEd in (both accepted), made AWSCURRENT, the service is forced into a new deployment (ECS
resolves a container's `secrets` when a task starts, so only new tasks get it), every running task
is checked to come from that deployment and to use the token, then SET. The tag also records the
secret version rotated in and the forced deployment: `ROTATE <date> <version> <deployment>`. A
rotation in progress (the tag names a version) is continued by `rexctl provision` as well, so the
group is never left accepting two tokens by a run that does not know why.

Not offered, because AWS does not (docs/provision.md): turning in-transit encryption off on a
running group (AWS documents enabling only), and removing the AUTH token (AuthTokenUpdateStrategy
DELETE is "allowed only when transitioning to RBAC").
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rexctl.aws import rules
from rexctl.aws import secrets as sm_api
from rexctl.aws.elasticache import CacheView
from rexctl.errors import AwsError, CheckFailed, Interrupted, RexctlError
from rexctl.provision.model import Ref, Reporter

if TYPE_CHECKING:
    from rexctl.aws.secrets import SecretView

AUTH_TAG = "rexctl:auth-token"  # "<ROTATE|SET> <AuthTokenLastModifiedDate>" (see auth_record)
AUTH_CHANGED_AFTER = "_auth_modified_after"  # in a wait's request: the date it must move past
READY = "Redis ready"
NO_DOWNTIME = (
    "At no step does the API lose its cache for longer than the rollout of one task: each "
    "modify keeps accepting what every running task uses (preferred takes TLS and plain "
    "connections, ROTATE keeps the previous token or none), the service rolls one task at a "
    "time onto TLS and the token, and plain connections and the old token are turned away "
    "(required, SET) only once every running task logs that it uses TLS and the token."
)

ROTATION_NO_DOWNTIME = (
    "At no step does the API lose its cache for longer than the rollout of one task: ROTATE "
    "keeps the current token accepted beside the new one, a task reads the new token only when it "
    "starts (a forced deployment replaces the tasks one at a time), and the old token is turned "
    "away (SET) only once every running task comes from that deployment and logs that it uses "
    "the token."
)

# What each kind of step does, and why the API keeps its cache meanwhile.
KINDS: dict[str, str] = {
    "tls-preferred": "in-transit encryption on, mode preferred: TLS and plain clients both work",
    "auth-secret": "a new AUTH token in Secrets Manager (nothing uses it yet)",
    "auth-rotate": "ROTATE: the node accepts the token and what it accepted before",
    "deploy": "a rolling update of the service: each new task uses TLS/the token, each old one "
    "keeps its connection until its successor answers",
    "verify": "reads only: ECS and each running task's log stream",
    "tls-required": "mode required: plain connections are dropped; every task uses TLS",
    "auth-set": "SET: only the token is accepted; every task uses it",
    "auth-record": "a tag on the group (rexctl's record): nothing changes for the API",
    "token-stage": "a new AUTH token stored as the secret's pending version (AWSPENDING): "
    "nothing reads it yet, tasks keep the current one",
    "token-promote": "the new token becomes the secret's current version (AWSCURRENT): a task "
    "started from now on reads it; the cache accepts both",
    "redeploy": "a forced new deployment: each new task reads the new token when it starts, each "
    "old one keeps the old token (still accepted) until its successor answers",
}
ROTATION_KINDS = frozenset({"token-stage", "token-promote", "redeploy"})
NEW_VERSION = "<new version id>"  # in a plan, the secret version a step before it will make


@dataclass(frozen=True)
class Observed:
    """What AWS shows now, read again before every step."""

    cache: CacheView
    engine_version: str  # the primary node's ('' when it cannot be read)
    auth_record: str  # ROTATE | SET: rexctl's tag, when it matches AuthTokenLastModifiedDate
    secret: SecretView | None
    deployed: bool  # the service runs what `rexctl deploy` would set now, rollout settled
    auth_version: str = ""  # the tag's secret version rotated in (a rotation: rotate-token)
    auth_deployment: str = ""  # ...and the deployment forced once that version was current
    deployment: str = ""  # the service's PRIMARY deployment now ('' when not read)
    auth_confirmed: bool = True  # the tag records the last change as done (not only `pending`)

    @property
    def rotating(self) -> bool:
        """A rotation (`rexctl rotate-token`) is under way: its ROTATE is done, its SET not."""
        return self.auth_record == "ROTATE" and bool(self.auth_version)


@dataclass(frozen=True)
class SecureStep:
    kind: str  # one of KINDS
    summary: str
    request: dict[str, Any] | None = None  # the AWS request it sends (the token: a Ref)
    tls: bool = False  # verify: every task uses TLS
    auth: bool = False  # verify: every task uses the token
    version: str = ""  # a rotation: the secret version whose token it sends or makes current
    deployment: str = ""  # verify, in a rotation: every running task comes from this deployment

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "summary": self.summary, "why": KINDS[self.kind]}
        if self.request is not None:
            out["request"] = {k: str(v) if isinstance(v, Ref) else v
                              for k, v in self.request.items()}  # fmt: skip
        return out


@dataclass
class SecurePlan:
    """The steps still to do (in order), and what rexctl will not do (manual)."""

    steps: list[SecureStep] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    refused: list[rules.Violation] = field(default_factory=list)  # AWS would refuse a step

    def describe(self) -> str:
        return "; ".join(f"{i}. {s.summary}" for i, s in enumerate(self.steps, 1))

    @property
    def rotation(self) -> bool:
        return any(s.kind in ROTATION_KINDS or s.version for s in self.steps)

    @property
    def downtime(self) -> str:
        """What the plan promises about the API's cache ('' when it has no step)."""
        if not self.steps:
            return ""
        return ROTATION_NO_DOWNTIME if self.rotation else NO_DOWNTIME

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "manual": list(self.manual),
            "downtime": self.downtime,
        }


def state_of(obs: Observed) -> rules.GroupState:
    c = obs.cache
    mode = c.transit_mode or ("required" if c.transit_encryption else "")
    return rules.GroupState(
        engine=c.engine or "redis",
        engine_version=obs.engine_version,
        transit_encryption=c.transit_encryption,
        transit_mode=mode if c.transit_encryption else "",
        auth_enabled=c.auth_enabled,
        last_auth_change=obs.auth_record,
    )


def plan_secure(
    obs: Observed, *, tls: bool, auth: bool, secret_name: str, rotate: bool = False
) -> SecurePlan:
    """The steps from what `obs` shows to `tls`/`auth` (pure); with `rotate`, a new token for a
    cache whose TLS and AUTH are done. Each request is checked against AWS's rules, given the
    group (and the secret) as the steps before it leave them. A rotation under way is continued
    whether `rotate` is asked or not."""
    c = obs.cache
    plan = SecurePlan()
    state = state_of(obs)
    usable = obs.secret is not None and not obs.secret.scheduled_for_deletion
    if rotate and obs.auth_record == "SET" and obs.auth_version and not obs.auth_confirmed:
        # The last rotation's SET went through but its run stopped before recording it: that
        # rotation is what was under way, and it is finished. Record it, rotate no further.
        summary = (
            f"record that the rotation under way finished: {c.id} accepts only the token of "
            f"version {obs.auth_version}"
        )
        plan.steps.append(SecureStep("auth-record", summary, version=obs.auth_version))
        return plan
    if (
        auth
        and usable
        and state.auth_enabled
        and state.transit_encryption
        and (obs.rotating or (rotate and obs.auth_record == "SET" and rotation_ready(obs, tls=tls)))
    ):
        _rotation(plan, obs, state)
        return plan
    if c.transit_encryption and not tls:
        plan.manual.append(tls_off(c.id))
    if c.auth_enabled and not auth:
        plan.manual.append(auth_off(c.id))
    tls_on = state.transit_encryption or tls
    moved = False  # a modify will change what the service must use: a rollout is needed
    if tls and not state.transit_encryption:
        request = {"ReplicationGroupId": c.id, "TransitEncryptionEnabled": True,
                   "TransitEncryptionMode": "preferred", "ApplyImmediately": True}  # fmt: skip
        _add(plan, state, SecureStep("tls-preferred", f"turn in-transit encryption on for {c.id} "
             "in mode preferred (TLS and plain both accepted)", request))  # fmt: skip
        state = replace(state, transit_encryption=True, transit_mode="preferred")
        moved = True
    want_token = auth and tls_on
    if want_token and (obs.secret is None or obs.secret.scheduled_for_deletion):
        plan.steps.append(SecureStep("auth-secret", "generate an AUTH token and store it in "
                                     f"secret {secret_name}"))  # fmt: skip
    # No secret while the group has a token: a new one, ROTATEd in and SET once every task uses
    # it (the old token keeps working meanwhile), is how the token is recovered.
    lost = want_token and (obs.secret is None or obs.secret.scheduled_for_deletion)
    rotate = want_token and (
        lost or not state.auth_enabled or state.last_auth_change not in ("ROTATE", "SET")
    )
    if rotate:
        request = {"ReplicationGroupId": c.id, "AuthToken": Ref("auth_token"),
                   "AuthTokenUpdateStrategy": "ROTATE", "ApplyImmediately": True}  # fmt: skip
        if state.auth_enabled:
            summary = (f"ROTATE {c.id}'s AUTH token to the stored one (the group's last token "
                       "change is not one rexctl made and saw done)")  # fmt: skip
        else:
            summary = (f"ROTATE {c.id}'s AUTH token to the stored one: the token and no token "
                       "both accepted")  # fmt: skip
        _add(plan, state, SecureStep("auth-rotate", summary, request))
        state = replace(state, auth_enabled=True, last_auth_change="ROTATE")
        moved = True
    required = tls and state.transit_mode == "preferred"
    set_token = want_token and state.last_auth_change == "ROTATE"
    if not (moved or required or set_token):
        return plan  # nothing of TLS/AUTH to do: a rollout, if any, is `rexctl deploy`'s business
    if moved or not obs.deployed:
        plan.steps.append(SecureStep("deploy", "roll the service onto the cache's endpoint with "
                                     f"REDIS_TLS={'true' if tls_on else 'unset'}"
                                     + (" and the AUTH token's secret" if want_token else "")
                                     + " (`rexctl deploy`)"))  # fmt: skip
    if required or set_token:
        what = " and ".join(w for w, on in (("TLS", required), ("the AUTH token", set_token)) if on)
        plan.steps.append(SecureStep("verify", f"check that every running task uses {what}",
                                     tls=required, auth=set_token))  # fmt: skip
    if required:
        request = {"ReplicationGroupId": c.id, "TransitEncryptionMode": "required",
                   "ApplyImmediately": True}  # fmt: skip
        _add(plan, state, SecureStep("tls-required", f"set {c.id}'s transit encryption mode to "
             "required (plain connections dropped)", request))  # fmt: skip
        state = replace(state, transit_mode="required")
    if set_token:
        request = {"ReplicationGroupId": c.id, "AuthToken": Ref("auth_token"),
                   "AuthTokenUpdateStrategy": "SET", "ApplyImmediately": True}  # fmt: skip
        _add(plan, state, SecureStep("auth-set", f"SET {c.id}'s AUTH token: only the stored one "
             "accepted", request))  # fmt: skip
    return plan


def tls_off(cache_id: str) -> str:
    """Why rexctl does not turn in-transit encryption off, what AWS allows, what to do."""
    return (
        f"{cache_id} has in-transit encryption and rexctl.toml asks for none. AWS documents "
        "in-transit encryption on a running group only as something to turn on "
        '(ModifyReplicationGroup.TransitEncryptionEnabled: "A flag that enables in-transit '
        'encryption when set to true"; the ElastiCache guide\'s "Enabling in-transit '
        'encryption": preferred, then required), never as something to turn off, so rexctl '
        "does not send TransitEncryptionEnabled=false and leaves it on. Either keep it "
        "(`cache.tls = true`), or move to a new cache without it: another `cache.id` with "
        "`cache.tls = false` and `cache.auth = false`, `rexctl provision` and `rexctl deploy` "
        "onto it, then `rexctl teardown` with the old `cache.id`"
    )


def auth_off(cache_id: str) -> str:
    """Why rexctl does not remove the AUTH token, what AWS allows, what to do."""
    return (
        f"{cache_id} has an AUTH token and rexctl.toml asks for none. ElastiCache removes a "
        'token only with AuthTokenUpdateStrategy=DELETE, "allowed only when transitioning to '
        'RBAC" (ModifyReplicationGroup API reference): the same request attaches a user group '
        '(UserGroupIdsToAdd; ElastiCache guide, "Migrating from Redis AUTH to RBAC"), whose '
        "users the clients must then log in as. rexctl does not manage RBAC users, so it leaves "
        "the token on. Either keep it (`cache.auth = true`; `rexctl rotate-token` gives it a new "
        "value), or move to RBAC yourself (create the user group, change the clients, then "
        f"`aws elasticache modify-replication-group --replication-group-id {cache_id} "
        "--auth-token-update-strategy DELETE --user-group-ids-to-add GROUP --apply-immediately`), "
        "or move to a new cache without a token under another `cache.id`"
    )


def rotation_ready(obs: Observed, *, tls: bool) -> bool:
    """TLS and AUTH later is done (nothing but a rotation could be asked of the group)."""
    state = state_of(obs)
    return state.transit_encryption and (not tls or state.transit_mode == "required")


def _rotation(plan: SecurePlan, obs: Observed, state: rules.GroupState) -> None:
    """A new token in, or the rest of the one under way (see the module's docstring)."""
    c, secret = obs.cache, obs.secret
    assert secret is not None
    current, pending = secret.current_version, secret.pending_version
    version = obs.auth_version if obs.rotating else pending
    steps: list[SecureStep] = []
    if not obs.rotating:
        if not pending:
            request = sm_api.pending_request(secret.arn, Ref("auth_token"), NEW_VERSION)
            plan.refused.extend(rules.check("secretsmanager", "PutSecretValue", {
                **request, "SecretString": "0" * 64, "ClientRequestToken": str(uuid.uuid4())
            }))  # fmt: skip
            plan.steps.append(SecureStep(
                "token-stage", "generate a new AUTH token and store it as the pending version "
                f"(AWSPENDING) of secret {secret.name}; tasks keep reading the current one",
                request,
            ))  # fmt: skip
        request = {"ReplicationGroupId": c.id, "AuthToken": Ref("auth_token"),
                   "AuthTokenUpdateStrategy": "ROTATE", "ApplyImmediately": True}  # fmt: skip
        _add(plan, state, SecureStep(
            "auth-rotate", f"ROTATE {c.id}'s AUTH token to the new one: the current token and "
            "the new one both accepted", request, version=version or NEW_VERSION,
        ))  # fmt: skip
        state = replace(state, last_auth_change="ROTATE")
    elif version not in (current, pending) or not version:
        plan.manual.append(
            f"A token rotation of {c.id} is under way (its ROTATE sent the token of version "
            f"{version} of secret {secret.name}), but that version is neither the secret's "
            f"current nor its pending one any more (current: {current or 'none'}, pending: "
            f"{pending or 'none'}): rexctl cannot tell which token the tasks read, so it will "
            "not SET either. Make that version current again (`aws secretsmanager "
            f"update-secret-version-stage --secret-id {secret.name} --version-stage AWSCURRENT "
            f"--move-to-version-id {version} --remove-from-version-id {current}`) and run "
            "`rexctl rotate-token` again; the cache accepts both tokens meanwhile."
        )
        return
    # Made current, and its AWSPENDING label taken off (a run stopped between the two calls
    # leaves the label: the step is done again, and moves only what is left to move).
    promoted = obs.rotating and version == current and secret.labelled("AWSPENDING") != version
    if not promoted:
        sent = sm_api.promote_requests(secret.arn, version or str(uuid.uuid4()), current)[0]
        found = rules.check("secretsmanager", "UpdateSecretVersionStage", sent)
        if version:
            found += rules.check_secret(rules.SecretState(secret.versions), "secretsmanager",
                                        "UpdateSecretVersionStage", sent)  # fmt: skip
        plan.refused.extend(found)
        request = sm_api.promote_requests(secret.arn, version or NEW_VERSION, current)[0]
        steps.append(SecureStep(
            "token-promote", f"make the new token the current version (AWSCURRENT) of secret "
            f"{secret.name}: tasks started from now on read it", request, version=version,
        ))  # fmt: skip
    rolled = promoted and bool(obs.auth_deployment) and obs.deployment == obs.auth_deployment
    if not rolled:
        steps.append(SecureStep(
            "redeploy", "force a new deployment of the service: each new task reads the new "
            "token when it starts (`aws ecs update-service --force-new-deployment`)",
            version=version,
        ))  # fmt: skip
    deployment = obs.auth_deployment if rolled else ""
    steps.append(SecureStep(
        "verify", "check that every running task comes from "
        + (f"deployment {deployment}" if deployment else "that deployment")
        + " and uses the new token", tls=False, auth=True, version=version,
        deployment=deployment,
    ))  # fmt: skip
    request = {"ReplicationGroupId": c.id, "AuthToken": Ref("auth_token"),
               "AuthTokenUpdateStrategy": "SET", "ApplyImmediately": True}  # fmt: skip
    plan.steps.extend(steps)
    _add(plan, state, SecureStep(
        "auth-set", f"SET {c.id}'s AUTH token: only the new one accepted", request,
        version=version,
    ))  # fmt: skip


def _add(plan: SecurePlan, state: rules.GroupState, step: SecureStep) -> None:
    assert step.request is not None
    request = {k: ("0" * 64 if isinstance(v, Ref) else v) for k, v in step.request.items()}
    found = rules.check("elasticache", "ModifyReplicationGroup", request)
    found += rules.check_group(state, "elasticache", "ModifyReplicationGroup", request)
    plan.refused.extend(found)
    plan.steps.append(step)


# Applying -------------------------------------------------------------------------------------


def _not_wired(*_: Any) -> Any:
    raise AssertionError("this hook is not wired: a token rotation needs stage_token, promote "
                         "and redeploy")  # fmt: skip


@dataclass
class Hooks:
    """What the migration needs of the world; `rexctl provision` wires AWS, tests fakes."""

    observe: Callable[[], Observed]
    modify: Callable[[dict[str, Any]], None]  # ModifyReplicationGroup, as sent
    wait: Callable[[dict[str, Any] | None], CacheView | None]  # until available (and shown)
    read_token: Callable[[str], str]  # the secret's token: AWSCURRENT, or that version's ('')
    create_secret: Callable[[str], None]  # store a new token
    tag: Callable[[str], None]  # AUTH_TAG's value on the group
    deploy: Callable[[], None]  # roll the service (raises when the rollout fails)
    # every running task uses TLS / the token (and comes from that deployment, when one is
    # given); raises when not
    verify: Callable[[bool, bool, str], None]
    # A rotation's: put a new token as the secret's pending version; make a version current
    # (from the current one); force a new deployment, telling its id as soon as ECS gave it, and
    # wait for its rollout.
    stage_token: Callable[[str], None] = _not_wired
    promote: Callable[[str, str], None] = _not_wired
    redeploy: Callable[[Callable[[str], None]], None] = _not_wired


@dataclass(frozen=True)
class Wording:
    """How a run names itself in messages: TLS/AUTH later, or a token rotation."""

    what: str
    again: str


LATER = Wording("the TLS/AUTH migration", "rexctl provision")
ROTATION = Wording("the token rotation", "rexctl rotate-token")


def run(
    hooks: Hooks,
    *,
    tls: bool,
    auth: bool,
    secret_name: str,
    reporter: Reporter,
    token_factory: Callable[[], str],
    redact: Callable[[str], None],
    max_steps: int = 20,
    rotate: bool = False,
    timeline: list[dict[str, Any]] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[str]:
    """Do the steps one at a time, deriving the next one from AWS each time; returns what was
    done (and appends to `timeline` when each step started and ended, by `now`). An
    interruption or a failure says what was done and that re-running continues."""
    done: list[str] = []
    words = ROTATION if rotate else LATER
    asked = rotate  # one new token per run: once its SET is done, none is asked any more
    last: SecureStep | None = None  # the step done last: the same again means no progress
    try:
        for _ in range(max_steps):
            obs = hooks.observe()
            if obs.cache.status != "available":
                hooks.wait(None)  # an interrupted modify: let it finish first
                continue
            plan = plan_secure(obs, tls=tls, auth=auth, secret_name=secret_name, rotate=asked)
            if plan.rotation or obs.rotating:
                words = ROTATION
            if not plan.steps:
                return done
            if plan.refused:
                raise AwsError(
                    "AWS would refuse " + " ".join(v.message() for v in plan.refused),
                    hint="Nothing was sent.",
                )
            # A verification is good for the step that follows it at once (it changes nothing
            # AWS shows): the two are done together.
            steps = plan.steps[:2] if plan.steps[0].kind == "verify" else plan.steps[:1]
            if last is not None and steps[0] == last:
                raise AwsError(
                    f"Step 9 did not take effect: {last.summary}; AWS still shows the same.",
                    hint="Check the cache (`rexctl status`) and the service (`rexctl deploy "
                    "--dry-run`).",
                )
            for step in steps:
                label = "token rotation" if words is ROTATION else "TLS/AUTH later"
                reporter.info(f"Step 9 ({label}): {step.summary}...")
                started = now()
                _do(step, obs, hooks, token_factory, redact)
                if step.kind in ("auth-set", "auth-record") and step.version:
                    asked = False
                done.append(step.summary)
                if timeline is not None:
                    timeline.append({"step": step.summary, "kind": step.kind,
                                     "started_at": started.isoformat(),
                                     "ended_at": now().isoformat()})  # fmt: skip
                reporter.success(f"Step 9: {step.summary}.")
            last = steps[-1]
        raise AwsError(
            f"{words.what.capitalize()} did not settle after {max_steps} steps.",
            hint=f"Check the cache (`rexctl status`) and run `{words.again}` again.",
        )
    except KeyboardInterrupt:
        raise Interrupted(f"Interrupted during {words.what}.", hint=_resume(done, words)) from None
    except RexctlError as exc:
        hint = "\n".join(filter(None, [exc.hint, _resume(done, words)]))
        raise type(exc)(exc.message, hint=hint) from None


def _resume(done: list[str], words: Wording = LATER) -> str:
    before = ("Done: " + "; ".join(done) + ". ") if done else ""
    return (
        f"{before}Every step kept the API's cache; `{words.again}` again continues from what "
        "AWS shows."
    )


def _do(
    step: SecureStep,
    obs: Observed,
    hooks: Hooks,
    token_factory: Callable[[], str],
    redact: Callable[[str], None],
) -> None:
    if step.kind == "auth-secret":
        token = token_factory()
        redact(token)
        if obs.cache.auth_enabled:  # the group has a token rexctl lost: this one replaces it
            hooks.tag("ROTATE needed")
        hooks.create_secret(token)
    elif step.kind == "token-stage":
        token = token_factory()
        redact(token)
        hooks.stage_token(token)
    elif step.kind == "token-promote":
        assert obs.secret is not None
        hooks.promote(step.version, obs.secret.current_version)
    elif step.kind in ("tls-preferred", "tls-required"):
        assert step.request is not None
        hooks.modify(step.request)
        hooks.wait(step.request)
    elif step.kind in ("auth-rotate", "auth-set"):
        assert step.request is not None
        token = hooks.read_token(step.version)
        redact(token)
        before = obs.cache.auth_modified
        strategy = str(step.request["AuthTokenUpdateStrategy"])
        # What the rotation records beside the change: the version sent, the deployment forced.
        extra = "".join(f" {x}" for x in (step.version, obs.auth_deployment) if x and step.version)
        # Written before the modify, with the date before it: interrupted between the two, the
        # next run tells from the date whether the change happened (auth_record).
        hooks.tag(f"{strategy} pending {before or '-'}{extra}")
        request = {**step.request, "AuthToken": token}
        hooks.modify(request)
        view = hooks.wait({**request, AUTH_CHANGED_AFTER: before})
        after = f" {step.version}" if step.version else ""
        hooks.tag(f"{strategy} {view.auth_modified if view else 'pending'}{after}")
    elif step.kind == "auth-record":
        hooks.tag(f"SET {obs.cache.auth_modified} {step.version}")
    elif step.kind == "redeploy":
        date = obs.cache.auth_modified
        hooks.redeploy(lambda deployment: hooks.tag(f"ROTATE {date} {step.version} {deployment}"))
    elif step.kind == "deploy":
        hooks.deploy()
    elif step.kind == "verify":
        hooks.verify(step.tls, step.auth, step.deployment)


@dataclass(frozen=True)
class AuthRecord:
    """The group's last AUTH change as rexctl recorded it (the tag `rexctl:auth-token`)."""

    change: str = ""  # ROTATE | SET ('' when rexctl cannot tell)
    version: str = ""  # a rotation's: the secret version whose token was sent
    deployment: str = ""  # a rotation's: the deployment forced once that version was current
    confirmed: bool = True  # False: told by the date moving past a `pending` tag, not recorded


def read_auth_record(tags: dict[str, str], cache: CacheView) -> AuthRecord:
    """The group's last AUTH change as rexctl knows it.

    The tag says `<change> <AuthTokenLastModifiedDate>` once a change is seen done, and
    `<change> pending <the date before>` while it is being made: a date that moved since means
    it happened; one that did not, that it did not (an interrupted SET leaves the ROTATE before
    it). A rotation adds the secret version it sent and, once forced, the deployment:
    `ROTATE <date> <version> <deployment>`; its ROTATE that did not happen leaves the SET before
    it (a rotation starts only from one). A group with a token and no tag got it at creation: a
    single one, as after SET. Anything else (a change made elsewhere, a token stored anew) is
    unknown ('')."""
    if not cache.auth_enabled:
        return AuthRecord()
    value = tags.get(AUTH_TAG)
    if value is None:
        return AuthRecord("SET")
    parts = value.split(" ")
    change = parts[0]
    if change not in ("ROTATE", "SET") or len(parts) < 2:
        return AuthRecord()
    if parts[1] == "pending" and len(parts) >= 3:
        before = "" if parts[2] == "-" else parts[2]
        version, deployment = (*parts[3:5], "", "")[:2]
        if cache.auth_modified != before:
            return AuthRecord(change, version, deployment, confirmed=False)
        if change == "SET":
            return AuthRecord("ROTATE", version, deployment)
        return AuthRecord("SET") if version else AuthRecord()
    if parts[1] == cache.auth_modified:
        version, deployment = (*parts[2:4], "", "")[:2]
        return AuthRecord(change, version, deployment)
    return AuthRecord()


def auth_record(tags: dict[str, str], cache: CacheView) -> str:
    """The group's last AUTH change as rexctl knows it: ROTATE or SET, '' when it cannot tell
    (`read_auth_record`)."""
    return read_auth_record(tags, cache).change


# Verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskEvidence:
    task: str
    line: str  # the task's last `Redis ready` line since it started ('' when none)
    ok: bool


def wait_until_verified(
    check: Callable[[], list[TaskEvidence]],
    *,
    what: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[TaskEvidence]:
    """Poll `check` until every task's evidence is ok (logs arrive seconds after a line is
    written); a CheckFailed naming the tasks that did not say so otherwise."""
    deadline = clock() + timeout
    while True:
        evidence = check()
        if evidence and all(e.ok for e in evidence):
            return evidence
        if clock() >= deadline:
            lacking = [e for e in evidence if not e.ok] or evidence
            shown = "; ".join(
                f"task {e.task}: {e.line or 'no `Redis ready` line'}" for e in lacking
            )
            raise CheckFailed(
                f"Not every running task uses {what} after {timeout:g} s"
                + (f" ({shown})." if shown else ": the service runs no task."),
                hint="Nothing was turned away yet: plain connections and the old token still "
                "work. Look at those tasks' logs (a certificate or token problem shows as "
                "`Redis error`), fix it, deploy, and run `rexctl provision` again.",
            )
        sleep(min(1.0, max(deadline - clock(), 0.0)))


def ms(when: datetime | None) -> int:
    if when is None:
        return 0
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)
