"""`rexctl rotate-token`: a new AUTH token for a cache that already has one, with no failed answer.

The same pattern as TLS and AUTH later (`rexctl.provision.secure`, `rotate=True`): the new token
is put as the secret's pending version, ROTATEd in, made the secret's current version, the service
is forced into a new deployment (a task reads its `secrets` when it starts), every running task is
checked to come from that deployment and to use the token, then SET. Each step is derived from
what AWS shows, so running it again after an interruption continues; the plan and its promise are
shown before the first step.

It refuses what it cannot do safely, before changing anything: a cache without a token (nothing
to rotate: `rexctl provision` turns AUTH on), a lost or deleted secret (`rexctl provision`
replaces it), TLS and AUTH later not finished, or a service that does not run what `rexctl
deploy` sets (a forced deployment would not give it the token).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rexctl.aws.secrets import generate_auth_token, secret_name
from rexctl.aws.session import Clients
from rexctl.config import Config
from rexctl.errors import AwsError, CheckFailed, ConfigError, RexctlError, UsageError
from rexctl.provision.migrate import aws_hooks
from rexctl.provision.model import Reporter
from rexctl.provision.secure import ROTATION_NO_DOWNTIME, Hooks, SecurePlan, plan_secure, run
from rexctl.redact import redact_text


@dataclass
class RotationResult:
    cache_id: str
    dry_run: bool
    plan: SecurePlan  # the steps as planned before the first one ran
    done: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # when each step ran

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache_id": self.cache_id,
            "dry_run": self.dry_run,
            "changed": bool(self.done),
            "rotation": {
                **self.plan.to_dict(),
                "done": list(self.done),
                "timeline": list(self.timeline),
            },
        }


def rotate_token(
    clients: Clients,
    cfg: Config,
    *,
    reporter: Reporter,
    dry_run: bool = False,
    timeout: float | None = None,
    poll: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    token_factory: Callable[[], str] = generate_auth_token,
    hooks: Callable[..., Hooks] | None = None,
) -> RotationResult:
    """Plan the rotation from what AWS shows, show it, and (unless `dry_run`) do it."""
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds (got {timeout}).")
    cfg.require("ecs.cluster", "ecs.service")
    limit = float(timeout if timeout is not None else cfg.cache.wait_timeout)
    make = hooks or aws_hooks
    wired = make(clients, cfg, reporter=reporter, timeout=limit, poll=poll, clock=clock,
                 sleep=sleep)  # fmt: skip
    cache_id, name = cfg.cache.id, secret_name(cfg.cache.id)
    obs = wired.observe()
    c = obs.cache
    if not c.auth_enabled:
        raise UsageError(
            f"{cache_id} has no AUTH token, so there is no token to rotate.",
            hint="Set `cache.auth = true` (with `cache.tls = true`) and run `rexctl provision`: "
            "it turns AUTH on for the running cache.",
        )
    if not cfg.cache.auth:
        raise UsageError(
            f"rexctl.toml says `cache.auth = false`, but {cache_id} has an AUTH token.",
            hint="Set `cache.auth = true` to rotate its token (AWS removes a token only when "
            "moving to role-based access control; see docs/provision.md).",
        )
    if obs.secret is None or obs.secret.scheduled_for_deletion:
        gone = "does not exist" if obs.secret is None else "is scheduled for deletion"
        raise UsageError(
            f"Secret {name} {gone}: rexctl does not have {cache_id}'s token to rotate from.",
            hint="Run `rexctl provision`: it stores a new token and rotates it in (the tasks "
            "keep the old one until then).",
        )
    if not obs.rotating:
        later = plan_secure(obs, tls=cfg.cache.tls, auth=True, secret_name=name)
        if later.steps:
            raise UsageError(
                f"TLS and AUTH later is not finished on {cache_id} ({later.describe()}).",
                hint="Run `rexctl provision` first: it finishes it, with a token of its own.",
            )
        if not obs.deployed:
            raise UsageError(
                f"The service does not run what `rexctl deploy` would set for {cache_id} (its "
                "endpoint, REDIS_TLS, the token's secret), so a new deployment would not give "
                "its tasks the new token.",
                hint="Run `rexctl deploy` first, then `rexctl rotate-token`.",
            )
    plan = plan_secure(obs, tls=cfg.cache.tls, auth=True, secret_name=name, rotate=True)
    if plan.manual:
        raise CheckFailed("\n".join(plan.manual), hint="Nothing was changed.")
    if plan.refused:
        raise ConfigError(
            "AWS would refuse " + " ".join(v.message() for v in plan.refused),
            hint="Nothing was sent.",
        )
    result = RotationResult(cache_id=cache_id, dry_run=dry_run, plan=plan)
    if not plan.steps:  # cannot happen: a cache with a token always has a rotation to do
        raise AwsError(f"Nothing to rotate on {cache_id}.", hint="Check `rexctl status`.")
    under_way = " (continuing the one under way)" if obs.rotating else ""
    reporter.info(
        f"Token rotation of {cache_id}{under_way}, {len(plan.steps)} steps: {plan.describe()}."
    )
    reporter.info(ROTATION_NO_DOWNTIME)
    if dry_run:
        for step in plan.steps:
            reporter.info(f"Would {step.summary}.")
        return result
    secrets: list[str] = []
    try:
        result.done = run(
            wired, tls=cfg.cache.tls, auth=True, secret_name=name, reporter=reporter,
            token_factory=token_factory, redact=secrets.append, rotate=True,
            timeline=result.timeline,
        )  # fmt: skip
    except RexctlError as exc:
        hint = redact_text(exc.hint, secrets) if exc.hint else None
        raise type(exc)(redact_text(exc.message, secrets), hint=hint) from None
    reporter.success(
        f"{cache_id} accepts only the new token, and every running task uses it "
        f"({len(result.done)} steps)."
    )
    return result
