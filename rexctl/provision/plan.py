"""The guide's 15 steps, each with its state read from AWS, and the actions that would complete it.

`build_plan` is pure: it takes a `Discovery` (read-only describes) and the configuration and
returns a `Plan`. `rexctl plan` shows all 15 steps; `rexctl provision --dry-run` shows steps 1-11
of the same plan; `rexctl provision` hands the plan's actions to an executor.
"""

from __future__ import annotations

import re
from typing import Any

from rexctl.aws.elasticache import aws_name
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
from rexctl.provision.requests import requests, setting_of, violations
from rexctl.provision.secure import Observed, plan_secure, read_auth_record
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
                "`rexctl chaos` checks the API keeps working and tasks do not restart, then "
                "restores: `break-sg` revokes the inbound rule (new connections only: tracked "
                'connections keep flowing, so it may be "fault not observed"), `break-nacl` '
                "denies the port in the cache subnets' network ACLs (cuts existing connections), "
                "`wrong-host` deploys an unreachable REDIS_HOST.",
            ),
        ]
    )
    _add_create(plan, d, cfg)
    _check_requests(plan, cfg)
    return plan


def _check_requests(plan: Plan, cfg: Config) -> None:
    """Build the exact AWS requests of every planned action and block the steps whose requests
    AWS documents it refuses (`rexctl.aws.rules`), naming the parameter and the rule: provision
    then stops before its first change, where AWS would have refused half way."""
    for s in plan.steps:
        if s.state == State.BLOCKED:
            continue
        messages: list[str] = []
        for action in s.actions:
            for request in requests(action):
                for v in violations(request):
                    key = setting_of(v)
                    message = f"AWS would refuse {v.message()}"
                    if key:
                        value = _value(cfg, key)
                        message += f" The value comes from `{key}` ({value!r})."
                        hint = f"Fix `{key}` in {where_set(cfg, key)}."
                    else:
                        hint = "Change the setting that produces this value in rexctl.toml."
                    messages.append(message)
                    plan.blockers.append(Blocker(s.number, message, hint, ExitCode.BAD_INPUT))
        if messages:
            s.state = State.BLOCKED
            s.detail = " ".join(messages)
    plan.blockers.sort(key=lambda b: b.step)  # the earliest step decides the exit code


def _value(cfg: Config, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(cfg, section), name)


def _check_inputs(cfg: Config, plan: Plan) -> None:
    """What AWS would take differently from what rexctl.toml says, and what no request rule
    covers. The requests themselves are checked against AWS's rules in `_check_requests`."""
    cc = cfg.cache
    problems: list[tuple[str, str]] = []  # (setting, what is wrong with it)
    # ElastiCache stores these names in lower case: refuse capitals rather than have rexctl.toml,
    # the console, the commands rexctl prints and the secret's name disagree about the name.
    names = (
        ("cache.id", cc.id, "replication group ids"),
        ("cache.subnet_group", cc.subnet_group, "cache subnet group names"),
    )
    for key, value, what in names:
        derived = key == "cache.subnet_group" and cfg.sources.get(key) == "default"
        if value != aws_name(value) and not derived:  # a derived name follows cache.id
            problems.append(
                (
                    key,
                    f"`{key}` {value!r} has capital letters, but ElastiCache stores {what} in "
                    f"lower case ({aws_name(value)!r}): write it as `{key} = "
                    f'"{aws_name(value)}"`',
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


ENGINE_NAMES = {"redis": "Redis OSS", "valkey": "Valkey"}
SECRET_DESCRIPTION = "rexctl: AUTH token of the ElastiCache replication group"


def _version_blocker(d: Discovery, cfg: Config, plan: Plan, title: str) -> Step | None:
    """Step 5 blocked when ElastiCache does not offer cache.engine_version (checked against
    DescribeCacheEngineVersions, only when a request will carry the version)."""
    v = d.engine_versions
    cc = cfg.cache
    if v is None:
        return None
    if not v.answered:
        plan.warnings.append(
            f"This endpoint does not answer DescribeCacheEngineVersions (moto and the local "
            f"sandbox do not implement it): `cache.engine_version` {cc.engine_version!r} was not "
            f"checked against the {cc.engine} versions ElastiCache offers."
        )
        return None
    if v.offered:
        return None
    offered = ", ".join(v.versions) or "none"
    return plan.block(
        5,
        title,
        f"`cache.engine_version` {cc.engine_version!r} is not a {cc.engine} version ElastiCache "
        f"offers in {d.region} (DescribeCacheEngineVersions lists: {offered}).",
        f"Set `cache.engine_version` to one of them in {where_set(cfg, 'cache.engine_version')}.",
        ExitCode.BAD_INPUT,
    )


def _step5(d: Discovery, cfg: Config, plan: Plan) -> Step:
    title = "Engine and mode"
    cc = cfg.cache
    c = d.cache
    want = f"{ENGINE_NAMES[cc.engine]} {cc.engine_version}, cluster mode disabled."
    if c is None:
        return _version_blocker(d, cfg, plan, title) or Step(5, title, State.TODO, want)
    engine = (c.engine or "redis").lower()
    problems = []
    if engine not in ENGINE_NAMES:
        problems.append(f"its engine is {c.engine}, not {cc.engine}")
    if c.cluster_mode != "disabled":
        problems.append("cluster mode is enabled")
    if problems:
        return plan.manual_step(
            5,
            title,
            f"{c.id}: {' and '.join(problems)}. This cannot be "
            "changed in place and rexctl never deletes a cache: choose another "
            "`cache.id`, or delete the group yourself and run `rexctl provision`.",
        )
    if engine == cc.engine:
        return Step(5, title, State.DONE, f"{ENGINE_NAMES[engine]}, cluster mode disabled.")
    if engine == "valkey":  # cc.engine == "redis"
        return plan.manual_step(
            5,
            title,
            f"{c.id} runs Valkey and rexctl.toml asks for Redis OSS; ElastiCache upgrades Redis "
            'OSS to Valkey in place but offers no way back. Set `cache.engine = "valkey"` '
            f"in {where_set(cfg, 'cache.engine')}, or create a new cache under another "
            "`cache.id`.",
        )
    # Redis OSS -> Valkey: an in-place upgrade (ModifyReplicationGroup Engine + EngineVersion).
    blocked = _version_blocker(d, cfg, plan, title)
    if blocked is not None:
        return blocked
    action = Action(
        5,
        "modify_replication_group",
        f"upgrade {c.id} in place from Redis OSS to Valkey {cc.engine_version}",
        {
            "ReplicationGroupId": c.id,
            "Engine": "valkey",
            "EngineVersion": cc.engine_version,
            "ApplyImmediately": True,
        },
    )
    return Step(
        5,
        title,
        State.CHANGE,
        f"Redis OSS → Valkey {cc.engine_version}, in place (applied immediately; the nodes are "
        "replaced one by one, which takes minutes). Cluster mode disabled.",
        [action],
    )


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
        run = (
            f"`aws elasticache {command} --replication-group-id {c.id} "
            f"--new-replica-count {cc.replicas} --apply-immediately`"
        )
        failover_on = c.automatic_failover in ("enabled", "enabling")
        if cc.replicas == 0 and (failover_on or c.multi_az == "enabled"):
            # AWS refuses to remove the last replica while Multi-AZ or automatic failover is on:
            # turn them off first (in place), then the replica count can go to 0.
            off: dict[str, Any] = {"ReplicationGroupId": c.id}
            changes = []
            if c.multi_az == "enabled":
                off["MultiAZEnabled"] = False
                changes.append("multi-AZ enabled → disabled")
            if failover_on:
                off["AutomaticFailoverEnabled"] = False
                changes.append(f"automatic failover {c.automatic_failover} → disabled")
            off["ApplyImmediately"] = True
            why = (
                f"{c.id} has {c.replicas} replica(s), rexctl.toml asks for 0. AWS refuses to "
                "remove the last replica while multi-AZ or automatic failover is on, so rexctl "
                f"turns them off first ({'; '.join(changes)}, in place). Once that is done, "
                f"run {run}, then `rexctl provision` again."
            )
            action = Action(
                6, "modify_replication_group", f"modify {c.id}: " + "; ".join(changes), off
            )
            plan.manual.append(f"Step 6: {why}")
            return Step(6, title, State.MANUAL, why, [action])
        return plan.manual_step(
            6,
            title,
            f"{c.id} has {c.replicas} replica(s), rexctl.toml asks "
            f"for {cc.replicas}. rexctl does not change the node count; run {run}, then "
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
    secret = d.secret
    if secret is not None and secret.being_deleted:
        # Deleted without a recovery window: Secrets Manager is removing it (asynchronously);
        # the name is free again shortly, and creating it again waits for that.
        secret = None
    if c is None:
        if cc.auth and secret is not None and secret.scheduled_for_deletion:
            name = secret.name
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
            if secret is None:
                actions.append(
                    Action(
                        9,
                        "create_auth_secret",
                        f"generate an AUTH token and store it in secret {secret_name(cc.id)}",
                        {
                            "Name": secret_name(cc.id),
                            "Description": SECRET_DESCRIPTION,
                            "Tags": managed_tags(cc.id),
                        },
                    )
                )
            else:
                actions.append(
                    Action(
                        9,
                        "read_auth_secret",
                        f"use the AUTH token stored in {secret.name}",
                        {"SecretId": secret.arn},
                    )
                )
        return Step(9, title, State.TODO, want + ".", actions)
    manual = []
    if not c.at_rest_encryption:
        manual.append(
            f"{c.id} has no at-rest encryption, which ElastiCache sets only at creation: create a "
            "new cache under another `cache.id` to have it"
        )
    record = read_auth_record(d.cache_tags, c)
    later = plan_secure(
        Observed(
            cache=c,
            engine_version=d.node.engine_version if d.node else "",
            auth_record=record.change,
            secret=secret,
            deployed=True,  # `rexctl provision` reads the service before it starts
            auth_version=record.version,
            auth_deployment=record.deployment,
        ),
        tls=cc.tls,
        auth=cc.auth,
        secret_name=secret_name(cc.id),
    )
    manual += later.manual
    if later.refused:
        message = " ".join(f"AWS would refuse {v.message()}" for v in later.refused)
        return plan.block(
            9,
            title,
            f"{c.id}: {message}",
            "Nothing was changed. Upgrade the engine first (`cache.engine_version`; ElastiCache "
            "upgrades in place), or create a new cache with in-transit encryption under another "
            "`cache.id`.",
            ExitCode.BAD_INPUT,
        )
    if later.steps:
        plan.manual.extend(f"Step 9: {m}" for m in manual)
        return Step(
            9,
            title,
            State.CHANGE,
            f"{want}. {c.id} gets them on the running cache, in {len(later.steps)} steps: "
            f"{later.describe()}. {later.downtime}",
            secure=later,
        )
    if manual:
        return plan.manual_step(9, title, "; ".join(manual) + ".")
    if cc.auth and (secret is None or secret.scheduled_for_deletion):
        gone = "does not exist" if secret is None else "is scheduled for deletion"
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
    if c.status == "deleting":
        return plan.block(
            10,
            title,
            f"Replication group {c.id} is deleting.",
            "Wait until it is gone (`rexctl status`), then run `rexctl provision` again, or "
            "choose another `cache.id`.",
            ExitCode.AWS_ERROR,
        )
    if c.status == "create-failed":
        return plan.block(
            10,
            title,
            f"Replication group {c.id} is create-failed: it failed to create, and it will "
            "neither recover nor go away by itself.",
            "Read why in its events (`aws elasticache describe-events --source-type "
            f"replication-group --source-identifier {c.id} --duration 1440`), delete it "
            f"(`aws elasticache delete-replication-group --replication-group-id {c.id}`, or "
            "`rexctl teardown` when rexctl created it), wait until it is gone, then run "
            "`rexctl provision` again.",
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
        "ReplicationGroupDescription": (
            f"rexctl: {'Valkey' if cc.engine == 'valkey' else 'Redis'} cache for ECS service "
            f"{d.service.name}"
        ),
        "Engine": cc.engine,
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
