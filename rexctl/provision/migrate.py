"""The AWS side of TLS and AUTH later (`rexctl.provision.secure`): what is observed, sent, waited
for, deployed and verified, through the adapters in `rexctl.aws` and the deploy core.

Kept apart from `secure.py`, which is the pure derivation of the steps and their order, so that
tests drive the steps with fakes and this module against moto or the sandbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from rexctl.aws import elasticache as ec_api
from rexctl.aws import secrets as sm_api
from rexctl.aws.ecs import (
    describe_service,
    describe_task_definition,
    force_new_deployment,
    list_tasks,
)
from rexctl.aws.logs import awslogs_config, search_events
from rexctl.aws.session import Clients
from rexctl.config import Config
from rexctl.errors import AwsError, CheckFailed, RexctlError, UsageError
from rexctl.provision.model import Reporter
from rexctl.provision.secure import (
    AUTH_CHANGED_AFTER,
    AUTH_TAG,
    READY,
    Hooks,
    Observed,
    TaskEvidence,
    ms,
    read_auth_record,
    wait_until_verified,
)
from rexctl.provision.tags import managed_tags
from rexctl.provision.wait import wait_for_cache

SECRET_DESCRIPTION = "rexctl: AUTH token of the ElastiCache replication group"


def observe(clients: Clients, cfg: Config) -> Observed:
    """What AWS shows now: the group, its primary node's engine version, rexctl's record of the
    last AUTH change, the secret, and whether the service runs what `rexctl deploy` would set."""
    cache = ec_api.get_replication_group(clients.elasticache, cfg.cache.id)
    if cache is None:
        raise AwsError(
            f"Replication group {cfg.cache.id} disappeared during the TLS/AUTH migration.",
            hint="Check the ElastiCache console, then run `rexctl provision` again.",
        )
    node = None
    if cache.member_clusters:
        node = ec_api.member_network(clients.elasticache, cache.member_clusters[0])
    tags = ec_api.list_tags(clients.elasticache, cache.arn) if cache.arn else {}
    secret = sm_api.find_secret(clients.secretsmanager, sm_api.secret_name(cfg.cache.id))
    record = read_auth_record(tags, cache)
    primary = None
    if record.version:  # a rotation: which deployment the service runs now
        primary = describe_service(clients.ecs, cfg.ecs.cluster, cfg.ecs.service).primary
    return Observed(
        cache=cache,
        engine_version=node.engine_version if node else "",
        auth_record=record.change,
        secret=secret,
        deployed=_deployed(clients, cfg, secret),
        auth_version=record.version,
        auth_deployment=record.deployment,
        deployment=primary.id if primary else "",
        auth_confirmed=record.confirmed,
    )


def _deployed(clients: Clients, cfg: Config, secret: sm_api.SecretView | None) -> bool:
    from rexctl.deploy import plan_deploy

    if cfg.cache.auth and (secret is None or secret.scheduled_for_deletion):
        return False
    try:
        plan = plan_deploy(
            cfg,
            ecs=clients.ecs,
            elasticache=clients.elasticache,
            secretsmanager=clients.secretsmanager,
        )
    except UsageError:
        return False
    return not plan.changed and not plan.rollout_pending


def aws_hooks(
    clients: Clients,
    cfg: Config,
    *,
    reporter: Reporter,
    timeout: float,
    poll: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Hooks:
    """The migration's hooks against AWS; every wait within `timeout` seconds (each)."""
    group = cfg.cache.id
    name = sm_api.secret_name(group)

    def wait(request: dict[str, Any] | None) -> ec_api.CacheView | None:
        until = None
        if request is not None:
            asked = {k: v for k, v in request.items() if k != AUTH_CHANGED_AFTER}
            before = request.get(AUTH_CHANGED_AFTER)

            def until(view: ec_api.CacheView) -> list[str]:
                missing = ec_api.not_yet_shown(view, asked)
                if before is not None and view.auth_modified == before:
                    missing.append("AuthTokenLastModifiedDate has not moved yet")
                return missing

        return wait_for_cache(
            clients.elasticache, group, timeout=timeout, reporter=reporter, clock=clock,
            sleep=sleep, until=until,
        )  # fmt: skip

    def read_token(version: str) -> str:
        secret = sm_api.find_secret(clients.secretsmanager, name)
        if secret is None:
            raise UsageError(f"The AUTH token's secret {name} does not exist.",
                             hint="Run `rexctl provision` again: it creates it.")  # fmt: skip
        token = sm_api.read_secret(clients.secretsmanager, secret.arn, version)
        problem = sm_api.token_problem(token)
        if problem and version:
            raise RexctlError(
                f"The AUTH token in version {version} of secret {name} is not usable: {problem}.",
                hint="Nothing was sent with it. Take the label off that version (`aws "
                f"secretsmanager update-secret-version-stage --secret-id {name} --version-stage "
                f"AWSPENDING --remove-from-version-id {version}`) and run `rexctl rotate-token` "
                "again: it stages a new one.",
            )
        if problem:
            raise RexctlError(
                f"The AUTH token stored in secret {name} is not usable: {problem}.",
                hint="Put a valid token in it (`aws secretsmanager put-secret-value`), or delete "
                "it so that rexctl generates one.",
            )
        return token

    def stage_token(token: str) -> None:
        secret = _secret()
        request = sm_api.pending_request(secret.arn, token, str(uuid.uuid4()))
        sm_api.put_pending(clients.secretsmanager, request)

    def promote(version: str, current: str) -> None:
        secret = _secret()
        move, unstage = sm_api.promote_requests(secret.arn, version, current)
        if secret.current_version != version:
            sm_api.update_stage(clients.secretsmanager, move)
        if secret.labelled(sm_api.PENDING) == version:
            sm_api.update_stage(clients.secretsmanager, unstage)

    def _secret() -> sm_api.SecretView:
        secret = sm_api.find_secret(clients.secretsmanager, name)
        if secret is None or secret.scheduled_for_deletion:
            raise UsageError(f"The AUTH token's secret {name} is gone.",
                             hint="Run `rexctl provision`: it stores a new token and rotates "
                             "it in.")  # fmt: skip
        return secret

    def redeploy(started: Callable[[str], None]) -> None:
        from rexctl.deploy import wait_for_rollout

        cluster, service = cfg.ecs.cluster, cfg.ecs.service
        arn = describe_service(clients.ecs, cluster, service).task_definition
        deployment = force_new_deployment(clients.ecs, cluster, service)
        started(deployment)
        result = wait_for_rollout(
            clients.ecs, cluster=cluster, service=service, task_definition_arn=arn,
            timeout=timeout, poll=poll, sleep=sleep, clock=clock, deployment_id=deployment,
        )  # fmt: skip
        if not result.ok:
            raise CheckFailed(
                f"The forced deployment {deployment} of service {service} failed: {result.reason}",
                hint="The cache still accepts the old token and the new one (ROTATE): the "
                "service keeps its cache. Fix what stops the tasks (`rexctl deploy --dry-run`, "
                "the service's events), then run `rexctl rotate-token` again.",
            )

    def create_secret(token: str) -> None:
        request = sm_api.secret_request(name, token, SECRET_DESCRIPTION, managed_tags(group))
        sm_api.send_create_secret(clients.secretsmanager, request, sleep=sleep)

    def tag(value: str) -> None:
        cache = ec_api.get_replication_group(clients.elasticache, group)
        if cache is not None and cache.arn:
            ec_api.tag_resource(clients.elasticache, cache.arn, {AUTH_TAG: value})

    def deploy() -> None:
        from rexctl.deploy import WaitOptions
        from rexctl.deploy import deploy as roll

        outcome = roll(
            cfg,
            ecs=clients.ecs,
            elasticache=clients.elasticache,
            secretsmanager=clients.secretsmanager,
            wait=WaitOptions(timeout=timeout, poll=poll, sleep=sleep, clock=clock),
        )
        if not outcome.ok:
            reason = outcome.rollout.reason if outcome.rollout else outcome.status
            raise CheckFailed(
                f"The rollout onto TLS/the AUTH token failed: {reason}",
                hint="The cache still accepts what the old tasks use (preferred, ROTATE): the "
                "service keeps its cache. `rexctl deploy` shows why; fix it and run `rexctl "
                "provision` again.",
            )

    def verify(tls: bool, auth: bool, deployment: str) -> None:
        what = " and ".join(w for w, on in (("TLS", tls), ("the AUTH token", auth)) if on)
        if deployment:
            what = f"the new AUTH token (deployment {deployment})"
        evidence = wait_until_verified(
            lambda: task_evidence(clients, cfg, tls=tls, auth=auth, deployment=deployment),
            what=what, timeout=timeout, sleep=sleep, clock=clock,
        )  # fmt: skip
        reporter.info(
            f"Every running task ({len(evidence)}) uses {what}: "
            + "; ".join(f"{e.task[:8]}: {e.line}" for e in evidence)
        )

    return Hooks(
        observe=lambda: observe(clients, cfg),
        modify=lambda request: _modify(clients, request),
        wait=wait,
        read_token=read_token,
        create_secret=create_secret,
        tag=tag,
        deploy=deploy,
        verify=verify,
        stage_token=stage_token,
        promote=promote,
        redeploy=redeploy,
    )


def _modify(clients: Clients, request: dict[str, Any]) -> None:
    ec_api.modify_replication_group(clients.elasticache, request)


def task_evidence(
    clients: Clients, cfg: Config, *, tls: bool, auth: bool, deployment: str = ""
) -> list[TaskEvidence]:
    """For each running task of the service's one (settled) deployment: its last `Redis ready`
    line since it started, and whether it says TLS / AUTH. What AWS can show: ElastiCache has no
    per-connection view of TLS or AUTH; ECS says which revision every task runs, and each task's
    log stream what it connected with.

    With `deployment` (a token rotation): that deployment must be the service's only one, and
    every running task must come from it (ECS gives a service's task the id of the deployment
    that started it as `startedBy`): forced once the new token was current, its tasks read that
    one. A task's log cannot tell which token it sent, only that one was accepted."""
    from rexctl.deploy import AUTH_VAR

    cluster, service, container = cfg.ecs.cluster, cfg.ecs.service, cfg.ecs.container
    view = describe_service(clients.ecs, cluster, service)
    primary = view.primary
    settled = (
        primary is not None
        and len(view.deployments) == 1
        and primary.rollout_state in ("COMPLETED", "")
        and primary.running >= primary.desired
    )
    if deployment and (primary is None or primary.id != deployment):
        now = primary.id if primary else "none"
        return [TaskEvidence("(service)", f"its deployment is {now}, not {deployment}", False)]
    if primary is None or not settled:
        return [TaskEvidence("(service)", "the rollout is not finished", False)]
    td = describe_task_definition(clients.ecs, primary.task_definition)
    env, secrets = td.environment(container), td.secrets(container)
    if tls and env.get("REDIS_TLS") != "true":
        return [
            TaskEvidence("(service)", f"{td.family}:{td.revision} has no REDIS_TLS=true", False)
        ]
    if auth and AUTH_VAR not in secrets:
        return [TaskEvidence("(service)", f"{td.family}:{td.revision} has no {AUTH_VAR}", False)]
    config = awslogs_config(td, container)
    if config is None:
        raise CheckFailed(
            f"Container {container} of {td.family}:{td.revision} does not log to CloudWatch Logs "
            "(awslogs), so rexctl cannot see which tasks use TLS and the token.",
            hint="Check each task's log for `Redis ready (TLS, AUTH)` yourself; rexctl will not "
            "turn plain connections or the old token away without that evidence.",
        )
    running = [t for t in list_tasks(clients.ecs, cluster, service) if t.last_status == "RUNNING"]
    tasks = [t for t in running if t.task_definition == primary.task_definition]
    found: list[TaskEvidence] = []
    if deployment:
        found += [
            TaskEvidence(t.id, f"started by {t.started_by or '(none)'}, not {deployment}", False)
            for t in running
            if t.started_by != deployment
        ]
        tasks = [t for t in tasks if t.started_by == deployment]
    for t in tasks:
        stream = f"{config.stream_prefix}/{container}/{t.id}" if config.stream_prefix else t.id
        events = search_events(
            clients.logs, group=config.group, stream_prefix=stream, phrase=READY,
            start_ms=ms(t.started_at) - 60_000,  # a clock apart; the stream is the task's own
        )  # fmt: skip
        line = events[-1].message if events else ""
        ok = bool(line) and (not tls or "TLS" in line) and (not auth or "AUTH" in line)
        found.append(TaskEvidence(t.id, line, ok))
    if len(found) < view.desired:
        found.append(TaskEvidence("(service)", f"{len(found)} of {view.desired} tasks run", False))
    return found
