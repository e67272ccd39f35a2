"""The guide's 15 steps, each with its state read from AWS, and the actions that would complete it.

`build_plan` is pure: it takes a `Discovery` (read-only describes) and the configuration and
returns a `Plan`. `rexctl plan` shows all 15 steps; `rexctl provision --dry-run` shows steps 1-11
of the same plan; `rexctl provision` hands the plan's actions to an executor.
"""

from __future__ import annotations

import re
from typing import Any

from rexctl.aws.secrets import secret_name
from rexctl.config import Config
from rexctl.errors import ExitCode, RexctlError
from rexctl.provision.discover import Discovery
from rexctl.provision.model import (
    ORDER,
    STATE_STYLES,
    Action,
    Blocker,
    Plan,
    Ref,
    State,
    Step,
)
from rexctl.provision.network import step7, step8, where_set
from rexctl.provision.tags import is_managed, managed_tags

__all__ = [
    "ORDER",
    "STATE_STYLES",
    "Action",
    "Blocker",
    "Plan",
    "Ref",
    "State",
    "Step",
    "build_plan",
]


def build_plan(d: Discovery, cfg: Config) -> Plan:
    """All 15 steps for this account and configuration."""
    plan = Plan(cache_id=cfg.cache.id, steps=[])
    plan.warnings.extend(
        f"{w}; using the live service (re-run `rexctl init --force`)." for w in d.drift
    )
    _check_inputs(cfg, plan)
    exists = d.cache is not None
    owner = "created by rexctl" if is_managed(d.cache_tags) else "not created by rexctl"
    plan.steps.append(
        Step(
            1,
            "Open ElastiCache",
            State.INFO,
            f"rexctl uses the ElastiCache API in {d.region}; no console needed.",
        )
    )
    for number, title, what in (
        (2, "Deployment option: node-based", "a node-based cluster (never Serverless)"),
        (3, "Creation method: new cache", "a new cache"),
    ):
        if exists:
            plan.steps.append(
                Step(
                    number, title, State.DONE, f"replication group {cfg.cache.id} exists ({owner})."
                )
            )
        else:
            plan.steps.append(Step(number, title, State.INFO, f"rexctl creates {what}."))
    plan.steps.append(
        Step(
            4,
            "Cache name",
            State.DONE if exists else State.TODO,
            f"replication group {cfg.cache.id} exists ({owner})."
            if exists
            else f"will be named {cfg.cache.id} (`cache.id`).",
        )
    )
    plan.steps.append(_step5(d, cfg, plan))
    plan.steps.append(_step6(d, cfg, plan))
    plan.steps.append(step7(d, cfg, plan))
    plan.steps.append(step8(d, cfg, plan))
    plan.steps.append(_step9(d, cfg, plan))
    plan.steps.append(_step10(d, cfg, plan))
    plan.steps.append(_step11(d, cfg, plan))
    plan.steps.append(_step12(d, cfg))
    plan.steps.extend(
        [
            Step(
                13,
                "Verify in CloudWatch Logs",
                State.INFO,
                '`rexctl verify` reads the service\'s logs for "Redis ready" and Redis errors.',
            ),
            Step(
                14,
                "Production test",
                State.INFO,
                "`rexctl verify` calls app.url twice (db then cache); `rexctl probe` measures "
                "latency and hit rate.",
            ),
            Step(
                15,
                "Mandatory failure test",
                State.INFO,
                "`rexctl chaos` removes the inbound rule (and cuts existing connections), "
                "checks the API keeps working and tasks do not restart, then restores.",
            ),
        ]
    )
    _add_create(plan, d, cfg)
    return plan


def _check_inputs(cfg: Config, plan: Plan) -> None:
    """What ElastiCache and EC2 would refuse (moto accepts anything, so rexctl checks itself)."""
    cc = cfg.cache
    problems: list[tuple[str, str]] = []  # (setting, what is wrong with it)
    if not re.fullmatch(r"\d+(\.\d+){0,2}", cc.engine_version):
        problems.append(
            (
                "cache.engine_version",
                f"`cache.engine_version` {cc.engine_version!r} is not a Redis version such as 7.1",
            )
        )
    if not re.fullmatch(r"[A-Za-z0-9-]{1,255}", cc.subnet_group):
        problems.append(
            (
                "cache.subnet_group",
                f"`cache.subnet_group` {cc.subnet_group!r} may only use letters, digits "
                "and hyphens (at most 255)",
            )
        )
    if (
        len(cc.security_group) > 255
        or cc.security_group.lower().startswith("sg-")
        or not (re.fullmatch(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+", cc.security_group))
    ):
        problems.append(
            (
                "cache.security_group",
                f"`cache.security_group` {cc.security_group!r} is not a valid security "
                "group name (at most 255 characters, not starting with sg-)",
            )
        )
    if cc.replicas > 0 and cc.node_type.startswith("cache.t1."):
        problems.append(("cache.node_type", f"{cc.node_type} does not support replicas"))
    for subnet in cc.subnets:
        if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", subnet):
            problems.append(
                ("cache.subnets", f"`cache.subnets` entry {subnet!r} is not a subnet id")
            )
    for key, problem in problems:
        plan.blockers.append(
            Blocker(0, problem + ".", f"Fix it in {where_set(cfg, key)}.", ExitCode.BAD_INPUT)
        )


def _step5(d: Discovery, cfg: Config, plan: Plan) -> Step:
    title = "Engine and mode"
    c = d.cache
    if c is None:
        return Step(
            5, title, State.TODO, f"Redis {cfg.cache.engine_version}, cluster mode disabled."
        )
    problems = []
    if c.engine and c.engine != "redis":
        problems.append(f"its engine is {c.engine}, not redis")
    if c.cluster_mode != "disabled":
        problems.append("cluster mode is enabled")
    if problems:
        return plan.manual_step(
            5,
            title,
            f"{cfg.cache.id}: {' and '.join(problems)}. This cannot be "
            "changed in place and rexctl never deletes a cache: choose another "
            "`cache.id`, or delete the group yourself and run `rexctl provision`.",
        )
    return Step(5, title, State.DONE, "Redis, cluster mode disabled.")


def _step6(d: Discovery, cfg: Config, plan: Plan) -> Step:
    title = "Node configuration"
    cc = cfg.cache
    want = (
        f"{cc.node_type}, {cc.replicas} replica(s), multi-AZ "
        f"{'on' if cc.multi_az else 'off'}, automatic failover "
        f"{'on' if cc.replicas > 0 else 'off'}"
    )
    c = d.cache
    if c is None:
        return Step(6, title, State.TODO, want + ".")
    if c.replicas != cc.replicas:
        command = "increase-replica-count" if cc.replicas > c.replicas else "decrease-replica-count"
        return plan.manual_step(
            6,
            title,
            f"{c.id} has {c.replicas} replica(s), rexctl.toml asks "
            f"for {cc.replicas}. rexctl does not change the node count; run `aws "
            f"elasticache {command} --replication-group-id {c.id} "
            f"--new-replica-count {cc.replicas} --apply-immediately`, then "
            "`rexctl provision` again (multi-AZ and failover follow).",
        )
    params: dict[str, Any] = {}
    changes = []
    if c.node_type != cc.node_type:
        params["CacheNodeType"] = cc.node_type
        changes.append(f"node type {c.node_type} → {cc.node_type}")
    failover, turning = ("enabled", "enabling") if cc.replicas > 0 else ("disabled", "disabling")
    if c.automatic_failover not in (failover, turning):
        params["AutomaticFailoverEnabled"] = cc.replicas > 0
        changes.append(f"automatic failover {c.automatic_failover} → {failover}")
    multi_az = "enabled" if cc.multi_az else "disabled"
    if c.multi_az != multi_az:
        params["MultiAZEnabled"] = cc.multi_az
        changes.append(f"multi-AZ {c.multi_az} → {multi_az}")
    if not params:
        return Step(6, title, State.DONE, want + ".")
    action = Action(
        6,
        "modify_replication_group",
        "modify " + c.id + ": " + "; ".join(changes),
        {"ReplicationGroupId": c.id, **params, "ApplyImmediately": True},
    )
    return Step(
        6,
        title,
        State.CHANGE,
        "; ".join(changes) + " (in place, applied immediately; a node type change takes minutes).",
        [action],
    )


def _step9(d: Discovery, cfg: Config, plan: Plan) -> Step:
    title = "Encryption and AUTH"
    cc = cfg.cache
    if not cc.tls:
        plan.warnings.append(
            "In-transit encryption is off (guide step 9 default): traffic "
            "between the tasks and Redis is not encrypted inside the VPC. Set "
            "`cache.tls = true` to turn it on."
        )
    want = (
        f"at-rest encryption on, in-transit {'on' if cc.tls else 'off'}, AUTH "
        f"{'token in Secrets Manager (' + secret_name(cc.id) + ')' if cc.auth else 'off'}"
    )
    c = d.cache
    actions: list[Action] = []
    if c is None:
        if cc.auth and d.secret is not None and d.secret.scheduled_for_deletion:
            name = d.secret.name
            return plan.block(
                9,
                title,
                f"Secret {name} is scheduled for deletion, so it can neither be read nor "
                "created again.",
                "Restore it to reuse its token (`aws secretsmanager restore-secret --secret-id "
                f"{name}`), or delete it now (`aws secretsmanager delete-secret --secret-id "
                f"{name} --force-delete-without-recovery`), then run `rexctl provision` again.",
                ExitCode.AWS_ERROR,
            )
        if cc.auth:
            if d.secret is None:
                actions.append(
                    Action(
                        9,
                        "create_auth_secret",
                        f"generate an AUTH token and store it in secret {secret_name(cc.id)}",
                        {"Name": secret_name(cc.id), "Tags": managed_tags(cc.id)},
                    )
                )
            else:
                actions.append(
                    Action(
                        9,
                        "read_auth_secret",
                        f"use the AUTH token stored in {d.secret.name}",
                        {"SecretId": d.secret.arn},
                    )
                )
        return Step(9, title, State.TODO, want + ".", actions)
    problems = []
    if not c.at_rest_encryption:
        problems.append("at-rest encryption is off")
    if c.transit_encryption != cc.tls:
        problems.append(f"in-transit encryption is {'on' if c.transit_encryption else 'off'}")
    if c.auth_enabled != cc.auth:
        problems.append(f"AUTH is {'on' if c.auth_enabled else 'off'}")
    if problems:
        return plan.manual_step(
            9,
            title,
            f"{c.id}: {', '.join(problems)}; rexctl.toml asks for "
            f"{want}. rexctl does not change this on an existing cache (it would need "
            "a staged migration and new client settings): create a new cache under "
            "another `cache.id`, or change it in the console.",
        )
    if cc.auth and (d.secret is None or d.secret.scheduled_for_deletion):
        gone = "does not exist" if d.secret is None else "is scheduled for deletion"
        plan.warnings.append(
            f"{c.id} has AUTH on, but secret {secret_name(cc.id)} {gone}: rexctl cannot "
            "recover the token."
        )
    return Step(9, title, State.DONE, want + ".")


def _step10(d: Discovery, cfg: Config, plan: Plan) -> Step:
    title = "Create the cache and wait until available"
    c = d.cache
    if c is None:
        return Step(
            10,
            title,
            State.TODO,
            f"create {cfg.cache.id}, then wait up to {cfg.cache.wait_timeout} s for `available`.",
        )
    if c.status == "available":
        return Step(10, title, State.DONE, f"{c.id} is available.")
    if c.status in ("deleting", "create-failed"):
        return plan.block(
            10,
            title,
            f"Replication group {c.id} is {c.status}.",
            "Wait until it is gone (`rexctl status`), then run `rexctl provision` again, or "
            "choose another `cache.id`.",
            ExitCode.AWS_ERROR,
        )
    return Step(10, title, State.TODO, f"{c.id} is {c.status}; wait for `available`.")


def _step11(d: Discovery, cfg: Config, plan: Plan) -> Step:
    title = "Primary endpoint"
    c = d.cache
    if c is not None and c.port and c.port != cfg.cache.port:
        # A block, not a manual difference: step 8 would otherwise open the wrong port.
        return plan.block(
            11,
            title,
            f"{c.id} listens on port {c.port}, but `cache.port` is {cfg.cache.port}; the port "
            "of an existing cache cannot be changed.",
            f"Set `cache.port = {c.port}` in {where_set(cfg, 'cache.port')}.",
            ExitCode.BAD_INPUT,
        )
    if c is not None and c.endpoint:
        return Step(11, title, State.DONE, f"{c.endpoint}:{c.port}")
    return Step(11, title, State.TODO, "printed once the cache is available.")


def _step12(d: Discovery, cfg: Config) -> Step:
    title = "Task definition: REDIS_ENABLED, REDIS_HOST, REDIS_PORT"
    td = d.task_definition
    if td is None:
        why = d.task_definition_error or "the service's task definition was not read"
        return Step(12, title, State.INFO, f"{why}; `rexctl deploy` sets these.")
    try:
        env = td.environment(cfg.ecs.container)
    except RexctlError as exc:  # the container is missing: say so, do not fail the whole plan
        return Step(12, title, State.TODO, exc.message)
    c = d.cache
    want = {
        "REDIS_ENABLED": "true",
        "REDIS_HOST": c.endpoint if c else "",
        "REDIS_PORT": str(c.port if c and c.port else cfg.cache.port),
    }
    have = {k: env.get(k, "(unset)") for k in want}
    shown = ", ".join(f"{k}={v}" for k, v in have.items())
    where = f"{td.family}:{td.revision} container {cfg.ecs.container}"
    if c is None or not c.endpoint:
        return Step(
            12,
            title,
            State.TODO,
            f"{where} has {shown}; after step 11, `rexctl deploy` sets them to the endpoint.",
        )
    if have == want:
        return Step(12, title, State.DONE, f"{where}: {shown}.")
    return Step(
        12,
        title,
        State.TODO,
        f"{where} has {shown}; `rexctl deploy` sets "
        + ", ".join(f"{k}={v}" for k, v in want.items())
        + ".",
    )


def _add_create(plan: Plan, d: Discovery, cfg: Config) -> None:
    """The create action of step 10, wired to the ids the earlier steps produce."""
    if d.cache is not None:
        return
    cc = cfg.cache
    step8 = next(s for s in plan.steps if s.number == 8)
    sg_id: Any = d.cache_sg.id if d.cache_sg else Ref("cache_sg_id")
    if step8.state == State.BLOCKED:
        sg_id = Ref("cache_sg_id")
    params: dict[str, Any] = {
        "ReplicationGroupId": cc.id,
        "ReplicationGroupDescription": f"rexctl: Redis cache for ECS service {d.service.name}",
        "Engine": "redis",
        "EngineVersion": cc.engine_version,
        "ClusterMode": "disabled",
        "CacheNodeType": cc.node_type,
        "NumCacheClusters": 1 + cc.replicas,
        "AutomaticFailoverEnabled": cc.replicas > 0,
        "MultiAZEnabled": cc.multi_az,
        "CacheSubnetGroupName": cc.subnet_group,
        "SecurityGroupIds": [sg_id],
        "Port": cc.port,
        "AtRestEncryptionEnabled": True,
        "TransitEncryptionEnabled": cc.tls,
        "Tags": managed_tags(cc.id),
    }
    if cc.auth:
        params["AuthToken"] = Ref("auth_token")
    step10 = next(s for s in plan.steps if s.number == 10)
    step10.actions.append(
        Action(
            10,
            "create_replication_group",
            f"create replication group {cc.id} ({cc.node_type}, {1 + cc.replicas} node(s))",
            params,
        )
    )
