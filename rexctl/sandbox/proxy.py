"""The two TCP proxies of the data plane: the load balancer and the gate to Redis.

`LoadBalancer`: one local port that spreads connections round-robin over the tasks that are up
(the guide's ALB, at connection rather than request level).

`Gate`: one listener per task between the task and redis-server, so the gate knows which task a
connection comes from. It asks `decide(link, client_port)` what the VPC would do:
- a NEW connection opens only when the security groups and the network ACLs allow it; otherwise
  it is accepted and never forwarded (AWS drops the packets: the client sees a timeout, not a
  refusal), and opens later if the rules come to allow it while the client still waits;
- an ESTABLISHED connection ignores security groups (connection tracking) but not ACLs: while an
  ACL denies it, no byte moves either way (held, not lost, as TCP would retransmit them), and it
  flows again when the deny goes away. Rules are re-read every `recheck` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, held: Callable[[], bool]
) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            while held():
                await asyncio.sleep(0.05)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    held: Callable[[], bool] = lambda: False,
) -> None:
    await asyncio.gather(_pipe(a[0], b[1], held), _pipe(b[0], a[1], held))


class LoadBalancer:
    """Round-robin over `backends()` (ports of tasks that are up); skips one that refuses."""

    def __init__(self, backends: Callable[[], list[int]]) -> None:
        self.backends = backends
        self.port = 0
        self._server: asyncio.Server | None = None
        self._counter = itertools.count()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ports = self.backends()
        start = next(self._counter)
        for i in range(len(ports)):
            port = ports[(start + i) % len(ports)]
            try:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), timeout=2
                )
            except (OSError, TimeoutError):
                continue
            await _splice((reader, writer), upstream)
            return
        # No task is up: answer as an ALB does.
        with contextlib.suppress(Exception):
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 20\r\nConnection: close\r\n\r\nno healthy targets.\n"
            )
            await writer.drain()
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)


class Verdict(enum.Enum):
    OPEN = "open"  # rules allow it
    SG_DENY = "sg-deny"  # no security-group rule allows a new connection
    ACL_DENY = "acl-deny"  # a network ACL drops the packets
    REFUSED = "refused"  # nothing listens there (wrong port)


@dataclass
class Link:
    """A task's way to the cache: its subnet, security groups and the group it reaches."""

    task_id: str
    group_id: str
    subnet: str
    security_groups: list[str]
    requested_port: int
    port: int = 0
    server: asyncio.Server | None = None
    conns: set[asyncio.Task[None]] = field(default_factory=set)


# decide(link, client_port, established) -> Verdict
Decider = Callable[[Link, int, bool], Verdict]


class Gate:
    def __init__(self, upstream_port: int, decide: Decider, recheck: float = 0.2) -> None:
        self.upstream_port = upstream_port
        self.decide = decide
        self.recheck = recheck
        self.links: dict[str, Link] = {}

    async def open(self, link: Link) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            link.conns.add(task)
            try:
                await self._connection(link, reader, writer)
            finally:
                link.conns.discard(task)

        link.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        link.port = int(link.server.sockets[0].getsockname()[1])
        self.links[link.task_id] = link
        return link.port

    def _verdict(self, link: Link, client_port: int, established: bool) -> Verdict:
        try:
            return self.decide(link, client_port, established)
        except RuntimeError:  # moto changed a dict while we read it: read again next time
            return Verdict.OPEN if established else Verdict.SG_DENY

    async def _connection(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        client_port = int(writer.get_extra_info("peername")[1])
        try:
            while True:  # not yet established: packets dropped until the rules allow them
                verdict = self._verdict(link, client_port, False)
                if verdict is Verdict.OPEN:
                    break
                if verdict is Verdict.REFUSED:
                    return
                await asyncio.sleep(self.recheck)
            try:
                upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                return
            state = {"held": False}

            async def watch() -> None:
                while True:
                    await asyncio.sleep(self.recheck)
                    state["held"] = self._verdict(link, client_port, True) is not Verdict.OPEN

            watcher = asyncio.create_task(watch())
            try:
                await _splice((reader, writer), upstream, lambda: state["held"])
            finally:
                watcher.cancel()
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def close(self, task_id: str) -> None:
        link = self.links.pop(task_id, None)
        if link is None:
            return
        if link.server is not None:
            link.server.close()
        for conn in list(link.conns):
            conn.cancel()
        if link.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.server.wait_closed(), 1)

    async def close_all(self) -> None:
        for task_id in list(self.links):
            await self.close(task_id)
