"""The sandbox daemon: `python -m rexctl.sandbox.daemon --dir DIR` (started by `sandbox up`).

One process holds the whole stand-in, so that it can read and fix up moto's state directly:

    rexctl / aws CLI ──HTTP──▶ moto server (in this process, ECS/EC2/ElastiCache/Logs/...)
                                   ▲ reads rules, writes tasks/deployments/events
    app URL ──▶ load balancer ──▶ task processes (`python -m service` or the user's backend,
                                   one per ECS task; `backend.json` says which)
                                   │ REDIS_HOST = the replication group's endpoint
                                   ▼
                      gate (one listener per task: SG + NACL rules) ──▶ redis-server

The cache node is one redis-server. In-transit encryption is the gate's: it does the TLS
handshake with the node's certificate (signed by the sandbox's own CA, `certs.py`, which the tasks
trust) by the group's mode; AUTH is the node's: its default user takes the group's tokens as ACL
passwords, set through an admin user of the sandbox's own whose password no task knows.

It writes `state.json` once the service's first deployment is steady, and removes it on the way
out. SIGTERM or SIGINT stop it: tasks first, then the proxies, redis-server and moto.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import signal
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from rexctl.sandbox import backend as backend_mod
from rexctl.sandbox import certs, guard, network
from rexctl.sandbox.consistency import Consistency
from rexctl.sandbox.logship import LogShipper
from rexctl.sandbox.moto_state import CacheTime, Moto, fix_secret_versions, keep_tasks_running
from rexctl.sandbox.proxy import Gate, Link, LoadBalancer, NodeAuth, Verdict, server_context
from rexctl.sandbox.seed import seed
from rexctl.sandbox.state import (
    CLUSTER,
    REGION,
    SERVICE,
    SandboxState,
    TaskInfo,
    write_json,
)
from rexctl.sandbox.tasks import DATABASE, ServiceRunner, free_port

READY_TIMEOUT = 60.0
FAILED_STARTS = 3  # tasks of the first deployment that failed before `up` gives up early
CACHE_TICK = 0.1  # how often ElastiCache's time advances (CacheTime)


class NotReady(Exception):
    """The service's tasks did not become healthy; the message says what they did."""


def not_ready(directory: Path, backend: backend_mod.Backend, runner: ServiceRunner) -> str:
    """Why the first deployment is not steady, with the end of the newest task's output."""
    failed = runner.deployments[0].failed if runner.deployments else 0
    logs = sorted((directory / "tasks").glob("*.log"), key=lambda p: p.stat().st_mtime)
    tail = ""
    if logs:
        lines = logs[-1].read_text(errors="replace").splitlines()[-8:]
        shown = "\n    ".join(lines or ["(none)"])
        tail = f" The last output of task {logs[-1].stem}:\n    {shown}"
    what = (
        f"{failed} task(s) stopped before they were healthy"
        if failed
        else f"no task answered GET {backend.health_path} with 200 within {READY_TIMEOUT:.0f} s"
    )
    return (
        f"the service's tasks ({backend.describe()}) did not become healthy: {what}. A task must "
        f"listen on 127.0.0.1:$PORT and answer GET {backend.health_path} with 200.{tail}"
    )


def decider(moto: Moto) -> Any:
    """What the VPC does to a packet from a task to the cache, right now."""

    def decide(link: Link, client_port: int, established: bool) -> Verdict:
        path = moto.path(link.group_id, link.subnet, link.security_groups)
        if not path.exists:  # the cache is gone
            return Verdict.ACL_DENY if established else Verdict.SG_DENY
        asked = dataclasses.replace(path, port=link.requested_port)
        if not network.acl_allows_path(asked, client_port):
            return Verdict.ACL_DENY
        if established:
            return Verdict.OPEN
        if not network.sg_allows(asked):
            return Verdict.SG_DENY
        if link.requested_port != path.port:
            return Verdict.REFUSED
        return Verdict.OPEN

    return decide


ADMIN_USER = "rexctl-sandbox"  # the node's ACL user the daemon sets AUTH through


class RedisProcess:
    """The cache node: a redis-server of the sandbox's own on a free loopback port. TLS is the
    gate's (it terminates it with the node's certificate); AUTH is the node's own (ACL)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.admin_password = secrets.token_hex(24)
        self.auth: NodeAuth | None = None  # what the node's default user accepts now

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        for _ in range(3):
            self.port = free_port()
            self.proc = await asyncio.create_subprocess_exec(
                *guard.command(
                    binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(self.directory), "--protected-mode", "no",
                    "--logfile", str(self.directory / "redis.log"),
                ),
                stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            if await self._answers():
                await asyncio.to_thread(self._admin_user)
                return
            await self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def _admin_user(self) -> None:
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5) as node:
            node.execute_command("ACL", "SETUSER", ADMIN_USER, "on", f">{self.admin_password}",
                                 "~*", "&*", "+@all")  # fmt: skip
        self.auth = NodeAuth()

    def apply_auth(self, auth: NodeAuth) -> None:
        """Give the node's default user the group's AUTH tokens as its passwords (`nopass` when
        there is none). Connections already authenticated stay, as they do on Redis."""
        import redis

        rights = ["~*", "&*", "+@all"]
        if auth.tokens:
            args = ["on", "resetpass", *(f">{t}" for t in auth.tokens), *rights]
        else:
            args = ["on", "nopass", *rights]
        with redis.Redis(host="127.0.0.1", port=self.port, username=ADMIN_USER,
                         password=self.admin_password, socket_timeout=5) as node:  # fmt: skip
            node.execute_command("ACL", "SETUSER", "default", *args)
        self.auth = auth

    async def _answers(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.returncode is not None:
                return False
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(b"PING\r\n")
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 1)
                writer.close()
                if line.startswith(b"+PONG"):
                    return True
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
        return False

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def _clients(endpoint: str) -> dict[str, Any]:
    import boto3

    session = boto3.Session(
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name=REGION
    )
    names = ("ec2", "ecs", "logs", "secretsmanager", "iam")
    return {n: session.client(n, endpoint_url=endpoint) for n in names}  # type: ignore[call-overload]


async def serve(directory: Path) -> None:
    from rexctl.sandbox.refusals import start_server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise
    server = start_server()  # moto behind AWS's documented request rules (refusals.py)
    consistency = Consistency.install(server, armed=False)  # EC2's eventual consistency
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    node_certs = certs.make(directory)  # a new CA at every start; tasks trust it, nothing else
    redis = RedisProcess(directory)
    backend = backend_mod.read(directory)
    shipper: LogShipper | None = None
    gate: Gate | None = None
    runner: ServiceRunner | None = None
    lb: LoadBalancer | None = None
    ticker: asyncio.Task[None] | None = None
    try:
        keep_tasks_running()
        moto = Moto(REGION)
        moto.provide_ecs_task_execution_policy()
        cache_time = CacheTime(REGION)
        cache_time.install()
        fix_secret_versions()  # GetSecretValue (and a task starting) reads AWSCURRENT, as on AWS
        clients = _clients(endpoint)
        await asyncio.to_thread(
            seed, clients["ec2"], clients["ecs"], clients["logs"], REGION, clients["iam"]
        )
        consistency.armed = True  # the seeded world exists long before step 1
        print(f"sandbox: moto at {endpoint}, seeded", flush=True)
        await redis.start()
        print(f"sandbox: redis-server on 127.0.0.1:{redis.port}", flush=True)
        ticker = asyncio.create_task(_advance(cache_time, stop, moto, redis))
        for leftover in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm"):  # a fresh database
            with contextlib.suppress(FileNotFoundError):
                (directory / leftover).unlink()
        shipper = LogShipper(clients["logs"])
        shipper.start()
        node_tls = server_context(str(node_certs.cert), str(node_certs.key))
        gate = Gate(
            redis.port, decider(moto), tls=node_tls, transit_mode=moto.transit_mode,
            node_auth=lambda: redis.auth or NodeAuth(),
        )  # fmt: skip

        async def read_secret(value_from: str) -> str:
            # ECS, starting a task: the secret's AWSCURRENT version unless the valueFrom names
            # another (ECS developer guide, "Pass Secrets Manager secrets through Amazon ECS
            # environment variables"; the sandbox does not apply a version in valueFrom).
            sm = clients["secretsmanager"]
            resp = await asyncio.to_thread(
                sm.get_secret_value, SecretId=value_from, VersionStage="AWSCURRENT"
            )
            return str(resp.get("SecretString", ""))

        def on_change(tasks: list[TaskInfo]) -> None:
            write_json(
                directory / "runtime.json", {"tasks": [dataclasses.asdict(t) for t in tasks]}
            )

        runner = ServiceRunner(
            moto, CLUSTER, SERVICE, workdir=directory, gate=gate, shipper=shipper,
            read_secret=read_secret, on_change=on_change, backend=backend,
            system_env={"SSL_CERT_FILE": str(node_certs.ca),  # OpenSSL: Python, curl, ...
                        "NODE_EXTRA_CA_CERTS": str(node_certs.ca)},  # Node.js
        )  # fmt: skip
        lb = LoadBalancer(runner.running_ports)
        await lb.start()
        scheduler = asyncio.create_task(runner.run(stop))
        deadline = time.monotonic() + READY_TIMEOUT
        while not runner.steady and not stop.is_set() and time.monotonic() < deadline:
            if runner.deployments and runner.deployments[0].failed >= FAILED_STARTS:
                break  # it will not come up by itself: say why now, not in a minute
            await asyncio.sleep(0.1)
        if not runner.steady:
            raise NotReady(not_ready(directory, backend, runner))
        assert redis.proc is not None
        state = SandboxState(
            dir=str(directory), pid=os.getpid(), endpoint_url=endpoint, region=REGION,
            app_url=f"http://127.0.0.1:{lb.port}{backend.path}", lb_port=lb.port,
            redis_port=redis.port, redis_pid=redis.proc.pid,
            log_path=str(directory / "daemon.log"), cluster=CLUSTER, service=SERVICE,
            started_at=time.time(), ca_file=str(node_certs.ca), instance=uuid.uuid4().hex,
        )  # fmt: skip
        write_json(directory / "state.json", state.to_dict())
        print(f"sandbox: ready, app at {state.app_url}, tasks run {backend.describe()}",
              flush=True)  # fmt: skip
        await stop.wait()
        await scheduler
    finally:
        print("sandbox: stopping", flush=True)
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        with contextlib.suppress(FileNotFoundError):
            (directory / "state.json").unlink()
        if runner is not None:
            await runner.shutdown()
        if lb is not None:
            await lb.close()
        if gate is not None:
            await gate.close_all()
        if shipper is not None:
            await shipper.close()
        await redis.stop()
        server.stop()
        with contextlib.suppress(FileNotFoundError):
            (directory / "runtime.json").unlink()
        print("sandbox: stopped", flush=True)


async def _advance(cache_time: CacheTime, stop: asyncio.Event, moto: Moto,
                   redis: RedisProcess) -> None:  # fmt: skip
    """ElastiCache's time: `creating` -> `available`, `modifying`, `deleting` -> gone; and the
    node's AUTH following the group's once a modify of it is done."""
    while not stop.is_set():
        try:
            cache_time.advance()
            auth = moto.node_auth()
            if auth != redis.auth:
                await asyncio.to_thread(redis.apply_auth, auth)
        except Exception as exc:  # keep the sandbox alive; the daemon log says what happened
            print(f"sandbox: ElastiCache clock error: {exc!r}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CACHE_TICK)


def detach(directory: Path) -> None:
    """Fork: the parent records the child's pid and exits at once, so whoever started it has
    nothing to wait for; the child leads a session and process group of its own."""
    child = os.fork()
    if child:
        write_json(directory / "daemon.pid", child)
        os._exit(0)
    os.setsid()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rexctl.sandbox.daemon")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--detach", action="store_true", help="Fork and let the parent exit.")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    if args.detach:
        detach(directory)
    try:
        asyncio.run(serve(directory))
    except NotReady as exc:
        print(f"{backend_mod.NOT_READY}{exc}", flush=True)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
