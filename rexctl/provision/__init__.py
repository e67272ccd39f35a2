"""The core of `rexctl plan` and `rexctl provision` (guide steps 1-11).

provision = discover (read-only) -> build the plan -> refuse what the guide forbids -> apply the
actions (or only show them for `--dry-run`) -> wait for `available` -> the primary endpoint.
`rexctl init` and `rexctl teardown` live in `rexctl.provision.init` / `.teardown` and are
re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rexctl.aws.elasticache import (
    CacheView,
    get_replication_group,
    member_network,
    not_yet_shown,
)
from rexctl.aws.secrets import generate_auth_token, secret_name
from rexctl.aws.session import Clients
from rexctl.config import Config
from rexctl.errors import AwsError, CheckFailed, ConfigError, ExitCode, RexctlError, UsageError
from rexctl.provision.apply import DisplayOnlyExecutor, Executor
from rexctl.provision.discover import discover
from rexctl.provision.init import InitResult, init_config
from rexctl.provision.migrate import aws_hooks
from rexctl.provision.model import Reporter
from rexctl.provision.plan import Plan, build_plan
from rexctl.provision.secure import Hooks, SecurePlan, plan_secure
from rexctl.provision.secure import run as run_secure
from rexctl.provision.teardown import (
    TeardownPlan,
    TeardownResult,
    plan_teardown,
    teardown,
)
from rexctl.provision.wait import wait_for_cache

__all__ = [
    "InitResult",
    "ProvisionResult",
    "TeardownPlan",
    "TeardownResult",
    "init_config",
    "plan_account",
    "plan_teardown",
    "provision",
    "teardown",
]


def plan_account(clients: Clients, cfg: Config) -> Plan:
    """`rexctl plan`: all 15 steps with their state. Read-only."""
    return build_plan(discover(clients, cfg, task_definition=True), cfg)


@dataclass
class ProvisionResult:
    plan: Plan  # steps 1-11
    dry_run: bool
    applied: list[str] = field(default_factory=list)
    cache: CacheView | None = None
    refusal: RexctlError | None = None  # set when the plan is blocked (nothing was changed)
    secure: SecurePlan | None = None  # TLS/AUTH later: the steps as planned before they ran
    secured: list[str] = field(default_factory=list)  # ...and those done
    timeline: list[dict[str, Any]] = field(default_factory=list)  # ...and when each ran

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.secured) and not self.dry_run

    def error(self) -> RexctlError | None:
        """What the command should exit with after showing the result (None: success)."""
        if self.refusal is not None:
            return self.refusal
        if self.plan.manual:
            return CheckFailed(
                "The cache differs from rexctl.toml in ways rexctl will not change in place:\n"
                + "\n".join(f"- {m}" for m in self.plan.manual),
                hint="Nothing was deleted. Do what each line says, or change rexctl.toml to "
                "match, then run `rexctl provision` again.",
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        c = self.cache
        return {
            "cache_id": self.plan.cache_id,
            "dry_run": self.dry_run,
            "changed": self.changed,
            "applied": list(self.applied),
            "status": c.status if c else None,
            "endpoint": c.endpoint if c and c.endpoint else None,
            "port": c.port if c and c.endpoint else None,
            "warnings": list(self.plan.warnings),
            "manual": list(self.plan.manual),
            "refused": self.refusal.message if self.refusal else None,
            "migration": {
                **(self.secure.to_dict() if self.secure else SecurePlan().to_dict()),
                "done": list(self.secured),
                "timeline": list(self.timeline),
            },
            "plan": self.plan.to_dict(),
        }


_ERRORS: dict[ExitCode, type[RexctlError]] = {
    ExitCode.BAD_INPUT: ConfigError,
    ExitCode.AWS_ERROR: AwsError,
    ExitCode.CHECK_FAILED: CheckFailed,
}


def refusal(plan: Plan) -> RexctlError | None:
    """One error naming every blocker, with the exit code of the most fundamental one."""
    if not plan.blockers:
        return None
    lines = [f"Step {b.step}: {b.message}" if b.step else b.message for b in plan.blockers]
    hints = [b.hint for b in plan.blockers if b.hint]
    message = "rexctl provision refuses to continue; nothing was changed.\n" + "\n".join(
        f"- {line}" for line in lines
    )
    hint = "\n".join(hints) or None
    kind = _ERRORS.get(plan.blockers[0].exit_code, CheckFailed)  # the earliest step decides
    return kind(message, hint=hint)


def provision(
    clients: Clients,
    cfg: Config,
    *,
    reporter: Reporter,
    dry_run: bool = False,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    token_factory: Callable[[], str] = generate_auth_token,
    poll: float = 5.0,
    hooks: Callable[..., Hooks] | None = None,
) -> ProvisionResult:
    """Steps 1-11: create or reuse what the guide asks for, then wait for the endpoint; on a
    running cache, TLS and AUTH later (`rexctl.provision.secure`), step by step. `poll`: seconds
    between checks of a rollout; `hooks`: how the migration reaches AWS (tests)."""
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds (got {timeout}).")
    found = discover(clients, cfg)
    plan = build_plan(found, cfg).only(1, 11)
    result = ProvisionResult(plan=plan, dry_run=dry_run)
    for warning in plan.warnings:
        reporter.warn(warning)
    result.refusal = refusal(plan)
    if result.refusal is not None:
        return result
    actions = plan.actions()
    later = next((s.secure for s in plan.steps if s.secure is not None), None)
    if dry_run:
        display = DisplayOnlyExecutor(reporter)
        display.apply(actions)
        result.applied = display.done
        result.cache = found.cache
        if later is not None and later.steps:
            result.secure = later
            for step in later.steps:
                reporter.info(f"Would {step.summary} (step 9, TLS/AUTH later).")
            reporter.info(later.downtime)
        if not plan.changes and not (later and later.steps):
            reporter.success("Nothing to do: steps 1-11 already match rexctl.toml.")
        return result
    limit = float(timeout if timeout is not None else cfg.cache.wait_timeout)
    deadline: list[float] = []  # one budget for every wait of this run, from the first one

    def wait(params: dict[str, Any] | None) -> CacheView | None:
        if not deadline:
            deadline.append(clock() + limit)
        return wait_for_cache(
            clients.elasticache,
            cfg.cache.id,
            timeout=max(deadline[0] - clock(), 0.0),
            reporter=reporter,
            clock=clock,
            sleep=sleep,
            until=None if params is None else _shows(clients, params),
        )

    executor = Executor(clients, reporter, token_factory=token_factory, sleep=sleep, settle=wait)
    try:
        executor.apply(actions)
        result.applied = executor.done
        if not plan.changes and not (later and later.steps):
            reporter.success("Nothing to do: steps 1-11 already match rexctl.toml.")
        result.cache = wait(executor.unconfirmed)
        if later is not None and later.steps:
            result.secure, result.secured = _secure_later(
                clients,
                cfg,
                reporter,
                executor,
                limit,
                poll,
                clock,
                sleep,
                token_factory,
                hooks,
                result.timeline,
            )
            result.cache = get_replication_group(clients.elasticache, cfg.cache.id)
    except RexctlError as exc:
        if (
            executor.done
            and "Already done:" not in (exc.hint or "")
            and ("Done before this failed:" not in (exc.hint or ""))
        ):
            done = "; ".join(executor.done)
            raise type(exc)(exc.message, hint=f"{exc.hint}\nAlready done: {done}.") from None
        raise
    if result.cache is not None and result.cache.endpoint:
        reporter.success(
            f"Step 11: primary endpoint {result.cache.endpoint}:{result.cache.port} "
            "(REDIS_HOST / REDIS_PORT for step 12: `rexctl deploy`)."
        )
    return result


def _secure_later(
    clients: Clients,
    cfg: Config,
    reporter: Reporter,
    executor: Executor,
    limit: float,
    poll: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    token_factory: Callable[[], str],
    hooks: Callable[..., Hooks] | None,
    timeline: list[dict[str, Any]],
) -> tuple[SecurePlan, list[str]]:
    """Step 9 on a running cache: show every step of TLS/AUTH later (read live), then do them."""
    make = hooks or aws_hooks
    wired = make(clients, cfg, reporter=reporter, timeout=limit, poll=poll, clock=clock,
                 sleep=sleep)  # fmt: skip
    live = plan_secure(wired.observe(), tls=cfg.cache.tls, auth=cfg.cache.auth,
                       secret_name=secret_name(cfg.cache.id))  # fmt: skip
    if live.steps:
        reporter.info(
            f"Step 9: TLS/AUTH later on {cfg.cache.id}, {len(live.steps)} steps: {live.describe()}."
        )
        reporter.info(live.downtime)
    done = run_secure(
        wired,
        tls=cfg.cache.tls,
        auth=cfg.cache.auth,
        secret_name=secret_name(cfg.cache.id),
        reporter=reporter,
        token_factory=token_factory,
        redact=executor.keep_secret,
        timeline=timeline,
    )
    return live, done


def _shows(clients: Clients, params: dict[str, Any]) -> Callable[[CacheView], list[str]]:
    """What of a modify the group does not show yet (the primary node tells the security groups
    and the engine version; moto shows no node, and then only the group's own values count)."""

    def missing(view: CacheView) -> list[str]:
        node = None
        if view.member_clusters and ("SecurityGroupIds" in params or "EngineVersion" in params):
            node = member_network(clients.elasticache, view.member_clusters[0])
        return not_yet_shown(view, params, node)

    return missing
