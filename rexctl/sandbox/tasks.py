"""Run an ECS service's tasks as local processes and keep moto's picture of them honest.

Each tick (a quarter second) the runner compares what moto's service asks for (task definition,
desired count, deploymentConfiguration) with the processes it runs, the way ECS's scheduler does:
- a changed task definition (or a forced new deployment) makes a new PRIMARY deployment; the
  previous one turns ACTIVE. New tasks start while the service has fewer than `maximumPercent`
  of the desired count (default 200 %: a whole new set at once); an old task stops once the
  tasks RUNNING without it still reach `minimumHealthyPercent` (default 100 %: only after a new
  one answers `/health`; below 100 % old tasks stop before new ones are healthy). The rollout is
  COMPLETED when the new deployment runs the desired count and no old task is left;
- ECS resolves a container's `secrets` with the execution role when it starts a task: a role
  whose policies do not allow `secretsmanager:GetSecretValue` on the secret (or `kms:Decrypt`
  on its customer managed key) stops the task with ResourceInitializationError, stop code
  TaskFailedToStart;
- tasks that fail to start count against the deployment circuit breaker (threshold: 0.5 x the
  desired count rounded up, at least 3, at most 200, as ECS computes it). With the breaker on,
  reaching it marks the rollout FAILED and stops launching; with rollback too, the service goes
  back to the last COMPLETED deployment's task definition in a new deployment. With the breaker
  off the rollout stays IN_PROGRESS and keeps retrying (with backoff), as ECS does;
- a task whose process exits, or that fails three load-balancer health checks in a row, is stopped
  with ECS's reason and replaced by a new task (a restart, as the drills must see it); a task
  stopped through `ecs:StopTask` is stopped here too;
- running/pending counts, deployments and service events are written back into moto.

Each task runs the sandbox's backend (`rexctl.sandbox.backend`): the bundled service by default,
or the user's command line in the user's directory. Either way a task gets the container's
environment from its task definition (secrets resolved), with `REDIS_HOST`/`REDIS_PORT` pointed
at the task's gate, and `PORT` (a free port it must listen on, on 127.0.0.1). The bundled service
also gets `DATABASE_PATH`: every task of it uses the one products database of the sandbox
(`products.sqlite3` in the sandbox directory), as the guide's tasks share one RDS, so a write
through any task is read by all. A user's backend brings its own data and gets no database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rexctl.sandbox import guard
from rexctl.sandbox.backend import Backend
from rexctl.sandbox.logship import LogShipper
from rexctl.sandbox.moto_state import ContainerSpec, DeploymentConfig, Moto, secret_arn
from rexctl.sandbox.proxy import Gate, Link
from rexctl.sandbox.state import TaskInfo

TICK = 0.25
HEALTH_EVERY = 8  # ticks between load-balancer health checks of running tasks
UNHEALTHY_AFTER = 3  # failed checks in a row before ECS replaces a task
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
# ECS's deployment circuit breaker: 0.5 x desired count, rounded up, within these bounds.
BREAKER_MIN = 3
BREAKER_MAX = 200
THROTTLED_AFTER = 3  # failed starts before ECS says it cannot consistently start tasks
DATABASE = "products.sqlite3"  # in the sandbox directory, shared by every task
_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


def service_module() -> str:
    """The bundled backend's module: `rexctl.service` where rexctl is installed from its wheel,
    `service` in a checkout (an editable install), where it is the repository's `service/`."""
    import importlib.util

    return "rexctl.service" if importlib.util.find_spec("rexctl.service") else "service"


def _now() -> datetime:
    return datetime.now(UTC)


def breaker_threshold(desired: int) -> int:
    """How many failed tasks trip ECS's deployment circuit breaker."""
    return min(BREAKER_MAX, max(BREAKER_MIN, math.ceil(0.5 * desired)))


class SecretsUnavailable(Exception):
    """ECS could not fetch a container's secret with the execution role."""


def _asm_failure(value_from: str, problem: str) -> str:
    arn = secret_arn(value_from) or value_from
    return (
        "execution resource retrieval failed: unable to retrieve secret from asm: service call "
        f"has been retried 1 time(s): failed to fetch secret {arn} from secrets manager: {problem}"
    )


def _aws_error(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    if error.get("Code"):
        return f"{error['Code']}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def _secret_value(value_from: str, text: str) -> str:
    """The value ECS hands the container: the whole secret, or one key of its JSON
    (`arn:...:secret:name-AbCdEf:json-key::`; version stage and id are not applied)."""
    parts = value_from.split(":")
    key = parts[7] if len(parts) > 7 else ""
    if not key:
        return text
    try:
        value = json.loads(text)[key]
    except (ValueError, KeyError, TypeError):
        problem = f"retrieved secret from Secrets Manager did not contain json key {key}"
        raise SecretsUnavailable(_asm_failure(value_from, problem)) from None
    return value if isinstance(value, str) else json.dumps(value)


def descendants(pid: int) -> list[int]:
    """The live descendants of `pid`, from /proc (Linux; elsewhere none are known)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    parents: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X"):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unresolvable(host: str) -> str:
    """A name that fails like an unknown host and can never reach a Redis on this machine."""
    host = host.rstrip(".").lower()
    if host.endswith(".invalid"):
        return host
    name = f"{host}.invalid"
    return name if len(name) <= 253 and host != "localhost" else "unknown-host.invalid"


async def healthy(port: int, timeout: float = 1.0, path: str = "/health") -> bool:
    """The load balancer's health check: GET `path` (app.health_path) answers 200."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        try:
            writer.write(request.encode("ascii", errors="replace"))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
        finally:
            writer.close()
        return line.split()[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False


@dataclass
class Deployment:
    id: str
    task_definition: str
    status: str = "PRIMARY"
    rollout: str = "IN_PROGRESS"
    reason: str = ""
    failed: int = 0  # failedTasks
    breaker_failures: int = 0  # what the circuit breaker counts (reset by a healthy task)
    throttled: bool = False  # "unable to consistently start tasks" said
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)


@dataclass
class LocalTask:
    id: str
    moto: Any
    spec: ContainerSpec
    deployment: Deployment
    subnet: str
    port: int
    status: str = "PENDING"  # PENDING | RUNNING | STOPPING | STOPPED
    proc: asyncio.subprocess.Process | None = None
    started: float = field(default_factory=time.monotonic)
    gate_port: int = 0
    redis_host: str = ""
    failed_checks: int = 0
    output: asyncio.Task[None] | None = None
    link: Link | None = None  # its way to the cache through the gate

    @property
    def arn(self) -> str:
        return str(self.moto.task_arn)

    @property
    def alive(self) -> bool:
        return self.status in ("PENDING", "RUNNING")

    def info(self) -> TaskInfo:
        return TaskInfo(
            id=self.id,
            arn=self.arn,
            status=self.status,
            task_definition=self.spec.arn,
            port=self.port,
            pid=self.proc.pid if self.proc else 0,
            gate_port=self.gate_port,
            redis_host=self.redis_host,
            subnet=self.subnet,
            redis_tls=self.link.tls if self.link else 0,
            redis_plain=self.link.plain if self.link else 0,
        )


SecretReader = Callable[[str], Awaitable[str]]


class ServiceRunner:
    def __init__(
        self,
        moto: Moto,
        cluster: str,
        service: str,
        *,
        workdir: Path,
        gate: Gate,
        shipper: LogShipper,
        read_secret: SecretReader,
        on_change: Callable[[list[TaskInfo]], None] = lambda tasks: None,
        backend: Backend | None = None,
        system_env: dict[str, str] | None = None,
    ) -> None:
        self.backend = backend or Backend()
        self.moto = moto
        self.cluster = cluster
        self.name = service
        self.workdir = workdir
        self.gate = gate
        self.shipper = shipper
        self.read_secret = read_secret
        self.on_change = on_change
        # What every task's machine gives it before its task definition's environment (the
        # sandbox: SSL_CERT_FILE, its system trust store holding the sandbox CA).
        self.system_env = dict(system_env or {})
        self.tasks: list[LocalTask] = []
        self.deployments: list[Deployment] = []
        self._ticks = 0
        self._started = 0
        self._failures = 0
        self._last_failure = 0.0
        self._last_completed: Deployment | None = None  # what a rollback goes back to
        self.database = workdir / DATABASE
        self._background: set[asyncio.Task[None]] = set()
        self._last_snapshot: list[TaskInfo] = []
        (workdir / "tasks").mkdir(parents=True, exist_ok=True)

    # What the other parts ask -------------------------------------------------------------------

    def running_ports(self) -> list[int]:
        return [t.port for t in self.tasks if t.status == "RUNNING"]

    @property
    def steady(self) -> bool:
        return bool(self.deployments) and self.deployments[0].rollout == "COMPLETED"

    # The loop -----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # keep the sandbox alive; the daemon log says what happened
                print(f"sandbox: scheduler error: {exc!r}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK)

    async def tick(self) -> None:
        self._ticks += 1
        svc = self.moto.service(self.cluster, self.name)
        if svc is None:
            for t in self._alive():
                self._stop(t, "Service was deleted", "ServiceSchedulerInitiated")
            self._snapshot()
            return
        cfg = self.moto.deployment_configuration(svc)
        self._track_deployment(svc)
        self._reap(svc)
        await self._health(svc, cfg)
        await self._schedule(svc, cfg)
        self._settle(svc, cfg)
        self._snapshot()

    def _alive(self) -> list[LocalTask]:
        return [t for t in self.tasks if t.alive]

    def _track_deployment(self, svc: Any) -> None:
        spec = self.moto.container_spec(str(svc.task_definition))
        if spec is None:
            return
        moto_id = self.moto.moto_deployment_id(svc)
        primary = self.deployments[0] if self.deployments else None
        if primary is None:
            self.deployments = [_new_deployment(moto_id or _deployment_id(), spec.arn)]
        elif spec.arn != primary.task_definition or (moto_id and moto_id != primary.id):
            primary.status = "ACTIVE"
            primary.updated = _now()
            new_id = moto_id if moto_id and moto_id != primary.id else _deployment_id()
            self.deployments.insert(0, _new_deployment(new_id, spec.arn))

    def _reap(self, svc: Any) -> None:
        for t in self._alive():
            code = t.proc.returncode if t.proc else None
            if code is not None:
                if t.status == "PENDING":
                    self._failed_task(t.deployment)
                self._failures += 1
                self._last_failure = time.monotonic()
                self._finished(t, "Essential container in task exited", "EssentialContainerExited")
                self.moto.add_event(svc, f"(service {self.name}) has stopped 1 running tasks: "
                                    f"(task {t.id}).")  # fmt: skip
            elif self.moto.stop_requested(t.moto):
                self._stop(t, "Task stopped by user", "UserInitiated")

    def _failed_task(self, deployment: Deployment) -> None:
        """A task of `deployment` failed to start (or failed its health checks)."""
        deployment.failed += 1
        if deployment.rollout == "IN_PROGRESS":
            deployment.breaker_failures += 1

    async def _health(self, svc: Any, cfg: DeploymentConfig) -> None:
        pending = [t for t in self._alive() if t.status == "PENDING"]
        checked = pending + (
            [t for t in self._alive() if t.status == "RUNNING"]
            if self._ticks % HEALTH_EVERY == 0
            else []
        )
        path = self.backend.health_path
        results = await asyncio.gather(*(healthy(t.port, path=path) for t in checked))
        for t, ok in zip(checked, results, strict=True):
            if not t.alive:
                continue
            if t.status == "PENDING" and ok:
                t.status = "RUNNING"
                self.moto.task_running(t.moto)
                self._failures = 0
                if cfg.reset_on_healthy_task:
                    t.deployment.breaker_failures = 0
            elif t.status == "PENDING" and time.monotonic() - t.started > START_TIMEOUT:
                self._failed_task(t.deployment)
                self._stop(t, "Task failed to start: health check timed out", "TaskFailedToStart")
            elif t.status == "RUNNING":
                t.failed_checks = 0 if ok else t.failed_checks + 1
                if t.failed_checks >= UNHEALTHY_AFTER:
                    self._failed_task(t.deployment)
                    self._stop(t, "Task failed ELB health checks", "ServiceSchedulerInitiated")
                    self.moto.add_event(svc, f"(service {self.name}) (task {t.id}) failed "
                                        "load balancer health checks.")  # fmt: skip

    async def _schedule(self, svc: Any, cfg: DeploymentConfig) -> None:
        if not self.deployments:
            return
        primary = self.deployments[0]
        desired = int(svc.desired_count or 0)
        most = desired * cfg.maximum_percent // 100  # ECS rounds maximumPercent down
        least = math.ceil(desired * cfg.minimum_healthy_percent / 100)  # and this one up
        why = f"Scaling activity initiated by (deployment {primary.id})"
        for t in self._alive():
            if t.deployment is not primary and t.status == "PENDING":
                self._stop(t, why, "ServiceSchedulerInitiated")  # superseded, never came up
        new = [t for t in self._alive() if t.deployment is primary]
        # Fewer desired than the primary runs (scale in): pending first, then the newest.
        surplus = sorted(new, key=lambda t: (t.status == "RUNNING", -t.started))
        for t in surplus[: max(len(new) - desired, 0)]:
            self._stop_running(svc, t, why)
        new = [t for t in new if t.alive]
        # The circuit breaker stops a FAILED deployment's launches; failures back off.
        backoff = min(0.5 * 2 ** max(self._failures - 1, 0), 10.0) if self._failures else 0.0
        may_start = primary.rollout != "FAILED" and time.monotonic() - self._last_failure >= backoff

        def room() -> int:  # new tasks to start now
            if not may_start:
                return 0
            return max(min(desired - len(new), most - len(self._alive())), 0)

        # Old tasks go, oldest first, while the tasks running without them stay at the minimum
        # healthy count, when the service has (or is about to have) more than desired, or the
        # primary needs the room: below 100 % they stop before the new tasks are even started.
        old = sorted(
            (t for t in self._alive() if t.deployment is not primary), key=lambda t: t.started
        )
        running = sum(t.status == "RUNNING" for t in self._alive())
        for t in old:
            alive = len(self._alive())
            if not (alive + room() > desired or (len(new) < desired and alive >= most)):
                break
            if running - 1 < least:
                break
            self._stop_running(svc, t, why)
            running -= 1
        for _ in range(room()):
            await self._start(svc, primary)

    def _stop_running(self, svc: Any, t: LocalTask, why: str) -> None:
        was_running = t.status == "RUNNING"
        self._stop(t, why, "ServiceSchedulerInitiated")
        if was_running:
            self.moto.add_event(svc, f"(service {self.name}) has stopped 1 running tasks: "
                                f"(task {t.id}).")  # fmt: skip

    def _settle(self, svc: Any, cfg: DeploymentConfig) -> None:
        desired = int(svc.desired_count or 0)
        busy = [t for t in self.tasks if t.status in ("PENDING", "RUNNING", "STOPPING")]
        primary = self.deployments[0] if self.deployments else None
        if primary is not None and primary.rollout == "IN_PROGRESS":
            mine = [t for t in busy if t.deployment is primary]
            others = [t for t in busy if t.deployment is not primary]
            if (
                sum(t.status == "RUNNING" for t in mine) >= desired
                and not others
                and all(t.status == "RUNNING" for t in mine)
            ):
                primary.rollout = "COMPLETED"
                primary.reason = f"ECS deployment {primary.id} completed."
                primary.updated = _now()
                self._last_completed = primary
                self.moto.add_event(svc, f"(service {self.name}) (deployment {primary.id}) "
                                    "deployment completed.")  # fmt: skip
                self.moto.add_event(svc, f"(service {self.name}) has reached a steady state.")
            elif cfg.circuit_breaker and primary.breaker_failures >= breaker_threshold(desired):
                self._trip(svc, primary, cfg)
            elif not primary.throttled and primary.failed >= THROTTLED_AFTER:
                primary.throttled = True
                self.moto.add_event(svc, f"(service {self.name}) is unable to consistently start "
                                    "tasks successfully. For more information, see the "
                                    "Troubleshooting section of the Amazon ECS Developer "
                                    "Guide.")  # fmt: skip
        if self.deployments:
            # A deployment stays listed while it has tasks; a FAILED one also until the rollback
            # that replaced it is over.
            rolling_back = self.deployments[0].rollout == "IN_PROGRESS"
            self.deployments = [self.deployments[0]] + [
                d
                for d in self.deployments[1:]
                if any(t.deployment is d for t in busy) or (d.rollout == "FAILED" and rolling_back)
            ]
        deployments = [self._deployment_dict(svc, d, busy, desired) for d in self.deployments]
        self.moto.write_service(
            svc,
            running=sum(t.status == "RUNNING" for t in busy),
            pending=sum(t.status == "PENDING" for t in busy),
            deployments=deployments,
        )

    def _trip(self, svc: Any, failed: Deployment, cfg: DeploymentConfig) -> None:
        """The circuit breaker: the rollout FAILED; with rollback, back to the last deployment
        that COMPLETED, in a new deployment."""
        failed.rollout = "FAILED"
        failed.reason = "ECS deployment circuit breaker: tasks failed to start."
        failed.updated = _now()
        self.moto.add_event(svc, f"(service {self.name}) (deployment {failed.id}) deployment "
                            "failed: tasks failed to start.")  # fmt: skip
        back = self._last_completed
        if not cfg.rollback or back is None or back is failed:
            return
        failed.status = "ACTIVE"
        self.moto.set_task_definition(svc, back.task_definition)
        rollback = _new_deployment(_deployment_id(), back.task_definition)
        rollback.reason = f"ECS deployment circuit breaker: rolling back to deploymentId {back.id}."
        self.deployments.insert(0, rollback)
        self._failures = 0
        self.moto.add_event(svc, f"(service {self.name}) rolling back to deployment {back.id}.")

    def _deployment_dict(
        self, svc: Any, d: Deployment, busy: list[LocalTask], desired: int
    ) -> dict[str, Any]:
        mine = [t for t in busy if t.deployment is d]
        return {
            "id": d.id,
            "status": d.status,
            "taskDefinition": d.task_definition,
            "desiredCount": desired if d.status == "PRIMARY" else len(mine),
            "pendingCount": sum(t.status == "PENDING" for t in mine),
            "runningCount": sum(t.status == "RUNNING" for t in mine),
            "failedTasks": d.failed,
            "createdAt": d.created,
            "updatedAt": d.updated,
            "launchType": "FARGATE",
            "platformVersion": "1.4.0",
            "platformFamily": "Linux",
            "networkConfiguration": svc.network_configuration,
            "rolloutState": d.rollout,
            "rolloutStateReason": d.reason,
        }

    # Starting and stopping tasks ----------------------------------------------------------------

    async def _start(self, svc: Any, deployment: Deployment) -> None:
        spec = self.moto.container_spec(deployment.task_definition)
        if spec is None:
            return
        subnets = list(
            ((svc.network_configuration or {}).get("awsvpcConfiguration") or {}).get("subnets")
            or [""]
        )
        subnet = subnets[self._started % len(subnets)]
        self._started += 1
        moto_task = self.moto.new_task(svc, spec.arn, subnet, deployment.id)
        task = LocalTask(
            id=str(moto_task.id),
            moto=moto_task,
            spec=spec,
            deployment=deployment,
            subnet=subnet,
            port=free_port(),
        )
        self.tasks.append(task)
        self.moto.add_event(svc, f"(service {self.name}) has started 1 tasks: (task {task.id}).")
        try:
            env = await self._environment(svc, task)
        except SecretsUnavailable as exc:
            self._failed_task(deployment)
            self._failures += 1
            self._last_failure = time.monotonic()
            self._finished(task, "ResourceInitializationError: unable to pull secrets or registry "
                           f"auth: {exc}", "TaskFailedToStart")  # fmt: skip
            return
        log = open(self.workdir / "tasks" / f"{task.id}.log", "ab")  # noqa: SIM115 - closed by _output
        backend = self.backend
        argv = backend.command or (sys.executable, "-m", service_module())
        try:
            task.proc = await asyncio.create_subprocess_exec(
                *guard.command(*argv),
                env=env,
                cwd=backend.dir or str(self.workdir / "tasks"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                limit=2**20,
            )
        except OSError as exc:  # the directory went away since `up` checked it
            log.close()
            self._failed_task(deployment)
            self._failures += 1
            self._last_failure = time.monotonic()
            self._finished(task, f"CannotStartContainerError: {exc}", "TaskFailedToStart")
            return
        task.output = asyncio.create_task(self._output(task, log))

    async def _environment(self, svc: Any, task: LocalTask) -> dict[str, str]:
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        env.update(self.system_env)
        env.update(task.spec.environment)
        for name, value_from in task.spec.secrets.items():
            problem = self.moto.secret_problem(task.spec.execution_role, value_from, task.id)
            if problem:
                raise SecretsUnavailable(_asm_failure(value_from, problem))
            try:
                text = await self.read_secret(secret_arn(value_from))
            except Exception as exc:
                raise SecretsUnavailable(_asm_failure(value_from, _aws_error(exc))) from None
            env[name] = _secret_value(value_from, text)
        host = env.get("REDIS_HOST", "")
        task.redis_host = host
        if host:
            endpoint = self.moto.cache_endpoints().get(host)
            if endpoint is None:
                env["REDIS_HOST"] = unresolvable(host)
            else:
                net = (svc.network_configuration or {}).get("awsvpcConfiguration") or {}
                requested = env.get("REDIS_PORT", "6379")
                link = Link(
                    task_id=task.id,
                    group_id=endpoint.group_id,
                    subnet=task.subnet,
                    security_groups=list(net.get("securityGroups") or []),
                    requested_port=int(requested) if requested.isdigit() else 0,
                )
                task.gate_port = await self.gate.open(link)
                task.link = link
                env["REDIS_HOST"] = "127.0.0.1"
                env["REDIS_PORT"] = str(task.gate_port)
        env["PORT"] = str(task.port)
        if self.backend.bundled:  # a user's backend brings its own data
            env["DATABASE_PATH"] = str(self.database)
        env["PYTHONUNBUFFERED"] = "1"  # output reaches the logs line by line (Python backends)
        return env

    async def _output(self, task: LocalTask, log: Any) -> None:
        assert task.proc is not None and task.proc.stdout is not None
        stream = f"{task.spec.log_prefix}/{task.spec.container}/{task.id}".lstrip("/")
        try:
            while True:
                try:
                    line = await task.proc.stdout.readline()
                except ValueError:  # a line over the limit: skip it
                    continue
                if not line:
                    break
                log.write(line)
                log.flush()
                text = line.decode("utf-8", errors="replace").rstrip("\n")
                if task.spec.log_group:
                    self.shipper.add(task.spec.log_group, stream, text)
            await task.proc.wait()
        finally:
            log.close()

    def _stop(self, task: LocalTask, reason: str, code: str) -> None:
        if not task.alive:
            return
        task.status = "STOPPING"
        task.moto.desired_status = "STOPPED"
        task.moto.last_status = "DEACTIVATING"
        job = asyncio.create_task(self._terminate(task, reason, code))
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _terminate(self, task: LocalTask, reason: str, code: str) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT, as ECS stops a container. A user's command
        may be a launcher (`npm start`, `sh -c ...`) whose program is its child: whatever it
        started is killed once it is gone, so no server outlives its task."""
        proc = task.proc
        children = descendants(proc.pid) if proc is not None else []
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for pid in children + (descendants(proc.pid) if proc is not None else []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == os.getpgrp():  # still ours, not a recycled pid
                    os.kill(pid, signal.SIGKILL)
        self._finished(task, reason, code)

    def _finished(self, task: LocalTask, reason: str, code: str) -> None:
        task.status = "STOPPED"
        exit_code = task.proc.returncode if task.proc else None
        if exit_code is not None and exit_code < 0:  # killed by a signal: ECS says 128 + signal
            exit_code = 128 - exit_code
        self.moto.task_stopped(task.moto, reason, code, exit_code)
        job = asyncio.create_task(self.gate.close(task.id))
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    def _snapshot(self) -> None:
        tasks = [t.info() for t in self.tasks if t.status != "STOPPED"]
        if tasks != self._last_snapshot:
            self._last_snapshot = tasks
            self.on_change(tasks)
        self.tasks = [t for t in self.tasks if t.status != "STOPPED"]

    async def shutdown(self) -> None:
        """Stop every task (the sandbox is going down)."""
        for t in self._alive():
            self._stop(t, "Sandbox stopped", "ServiceSchedulerInitiated")
        jobs = list(self._background)
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        for t in self.tasks:
            if t.output is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(t.output, 1)


def _deployment_id() -> str:
    return f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"


def _new_deployment(deployment_id: str, task_definition: str) -> Deployment:
    return Deployment(
        deployment_id, task_definition, reason=f"ECS deployment {deployment_id} in progress."
    )
