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

In-transit encryption and AUTH, as ElastiCache has them on its one port. The gate waits for the
client's first byte (peeked, not read: 0x16 opens a TLS handshake, a ClientHello; RESP starts with
`*` or a letter) and, by the group's mode (`transit_mode(group_id)`):
- off: passes the bytes as they are to the node (a TLS client's handshake fails there, as on a
  plain node);
- preferred: does the TLS handshake itself, with the node's certificate (signed by the sandbox's
  CA), for a TLS client; takes a plain one as it is;
- required: the same for TLS; a plain connection is closed, and so is every plain connection
  still open when the group turns `required` (ElastiCache drops them).
The node (redis-server) then sees plain RESP and does the AUTH itself: its default user has the
group's tokens as passwords (`NOAUTH`, `WRONGPASS` are Redis's own answers). One state Redis has
no word for: after a ROTATE on a group without a token, ElastiCache accepts the token AND
connections that send none; the node then requires the token, and the gate sends it on behalf of
a connection whose first command is not AUTH (or HELLO with AUTH), and swallows the `+OK`.
Each link counts its open TLS and plain connections (`sandbox status` shows them per task).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import socket
import ssl
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
    listener: socket.socket | None = None
    accepting: asyncio.Task[None] | None = None
    conns: set[asyncio.Task[None]] = field(default_factory=set)
    tls: int = 0  # connections open now that speak TLS
    plain: int = 0  # ...and that do not

    def count(self, tls: bool, change: int) -> None:
        if tls:
            self.tls += change
        else:
            self.plain += change


@dataclass(frozen=True)
class NodeAuth:
    """What the node's AUTH accepts now: these tokens, and (`open`) connections that send none."""

    tokens: tuple[str, ...] = field(default=(), repr=False)
    open: bool = True


# decide(link, client_port, established) -> Verdict
Decider = Callable[[Link, int, bool], Verdict]
TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a handshake (the ClientHello)
HANDSHAKE_TIMEOUT = 5.0
_OK = b"+OK\r\n"


def first_command(data: bytes) -> str | None:
    """The name of the first command in `data` (RESP array or inline), upper case; None while
    `data` does not hold it whole yet."""
    if data.startswith(b"*"):
        lines = data.split(b"\r\n", 3)  # *N, $len, the name, the rest
        if len(lines) < 4:
            return None
        return lines[2].decode("latin-1").upper() if lines[1].startswith(b"$") else ""
    line, sep, _ = data.partition(b"\n")
    if not sep:
        return None
    words = line.strip().split()
    return words[0].decode("latin-1").upper() if words else ""


def authenticates(data: bytes) -> bool:
    """Whether the connection's first command authenticates (AUTH, or HELLO ... AUTH ...)."""
    name = first_command(data)
    if name == "AUTH":
        return True
    return name == "HELLO" and b"AUTH" in data.upper()


class Gate:
    def __init__(
        self,
        upstream_port: int,
        decide: Decider,
        recheck: float = 0.2,
        *,
        tls: ssl.SSLContext | None = None,
        transit_mode: Callable[[str], str] = lambda group_id: "off",
        node_auth: Callable[[], NodeAuth] = NodeAuth,
    ) -> None:
        self.upstream_port = upstream_port
        self.decide = decide
        self.recheck = recheck
        self.tls = tls  # the node's certificate and key (None: TLS clients are closed)
        self.transit_mode = transit_mode
        self.node_auth = node_auth
        self.links: dict[str, Link] = {}

    async def open(self, link: Link) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.setblocking(False)
        link.listener = listener
        link.port = int(listener.getsockname()[1])
        link.accepting = asyncio.create_task(self._accept(link, listener))
        self.links[link.task_id] = link
        return link.port

    async def _accept(self, link: Link, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError:
                return
            task = asyncio.create_task(self._serve(link, sock))
            link.conns.add(task)
            task.add_done_callback(link.conns.discard)

    def _verdict(self, link: Link, client_port: int, established: bool) -> Verdict:
        try:
            return self.decide(link, client_port, established)
        except RuntimeError:  # moto changed a dict while we read it: read again next time
            return Verdict.OPEN if established else Verdict.SG_DENY

    def _mode(self, link: Link) -> str:
        try:
            return self.transit_mode(link.group_id)
        except RuntimeError:  # moto changed a dict while we read it
            return "off"

    async def _serve(self, link: Link, sock: socket.socket) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            client_port = int(sock.getpeername()[1])
            while True:  # not yet established: packets dropped until the rules allow them
                verdict = self._verdict(link, client_port, False)
                if verdict is Verdict.OPEN:
                    break
                if verdict is Verdict.REFUSED:
                    return
                await asyncio.sleep(self.recheck)
            head = await _peek(sock)  # the client speaks first, in RESP as in TLS
            if not head:
                return
            tls = head[0] == TLS_HANDSHAKE
            mode = self._mode(link)
            if mode == "required" and not tls:
                return  # a plain connection to a group that requires TLS: dropped
            context = self.tls if tls and mode != "off" else None
            if tls and mode != "off" and context is None:
                return
            try:
                reader, writer = await _streams(sock, context)
            except (OSError, ssl.SSLError, TimeoutError):
                return  # the client did not finish the handshake (it may not trust the node)
            await self._connection(link, client_port, reader, writer, tls)
        finally:
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
            else:
                sock.close()

    async def _connection(
        self,
        link: Link,
        client_port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: bool,
    ) -> None:
        data = await reader.read(65536)
        while data and first_command(data) is None and len(data) < 65536:
            more = await reader.read(65536)
            if not more:
                break
            data += more
        if not data:
            return
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            return
        try:
            auth = self.node_auth()
            if auth.open and auth.tokens and not authenticates(data):
                # A ROTATE on a group that had no token: ElastiCache still takes connections
                # without one. Redis cannot say so: authenticate for this one.
                upstream[1].write(b"AUTH " + auth.tokens[-1].encode() + b"\r\n")
                await upstream[1].drain()
                if await upstream[0].readexactly(len(_OK)) != _OK:
                    return
            upstream[1].write(data)
        except (OSError, asyncio.IncompleteReadError):
            with contextlib.suppress(Exception):
                upstream[1].close()
            return
        state = {"held": False}
        splice = asyncio.ensure_future(_splice((reader, writer), upstream, lambda: state["held"]))

        async def watch() -> None:
            while True:
                await asyncio.sleep(self.recheck)
                state["held"] = self._verdict(link, client_port, True) is not Verdict.OPEN
                if not tls and self._mode(link) == "required":
                    splice.cancel()  # the group turned `required`: plain ones are dropped
                    return

        link.count(tls, +1)
        watcher = asyncio.create_task(watch())
        try:
            await splice
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the gate is closing this link; only a dropped plain one ends here
        finally:
            watcher.cancel()
            link.count(tls, -1)
            with contextlib.suppress(Exception):
                upstream[1].close()

    async def close(self, task_id: str) -> None:
        link = self.links.pop(task_id, None)
        if link is None:
            return
        if link.accepting is not None:
            link.accepting.cancel()
        if link.listener is not None:
            link.listener.close()
        for conn in list(link.conns):
            conn.cancel()
        if link.conns:
            await asyncio.wait(list(link.conns), timeout=1)

    async def close_all(self) -> None:
        for task_id in list(self.links):
            await self.close(task_id)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _peek(sock: socket.socket) -> bytes:
    """The first bytes the client sent, left in the socket for whoever reads it next."""
    loop = asyncio.get_running_loop()
    while True:
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(sock.fileno(), _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(sock.fileno())
        try:
            return sock.recv(16, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        except OSError:
            return b""


async def _streams(
    sock: socket.socket, context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over an accepted socket; with `context`, after the server side of a TLS
    handshake."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**16)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.connect_accepted_socket(
        lambda: protocol,
        sock,
        ssl=context,
        ssl_handshake_timeout=HANDSHAKE_TIMEOUT if context is not None else None,
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """The node's side of TLS: its certificate and key; TLS 1.2 or later, as ElastiCache."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
