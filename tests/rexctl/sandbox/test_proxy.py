"""The load balancer spreads connections over the tasks that are up and skips one that refuses."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from rexctl.sandbox.proxy import LoadBalancer
from rexctl.sandbox.tasks import free_port


async def _backend(name: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def _ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def test_round_robin_over_the_tasks_that_are_up() -> None:
    async def scenario() -> tuple[list[bytes], bytes]:
        one, two = await _backend(b"one"), await _backend(b"two")
        backends = [_port(one), free_port(), _port(two)]  # the middle one refuses
        lb = LoadBalancer(lambda: backends)
        await lb.start()
        try:
            answers = [await _ask(lb.port) for _ in range(6)]
            backends.clear()
            nobody = await _ask(lb.port)
        finally:
            await lb.close()
            for server in (one, two):
                server.close()
                with contextlib.suppress(Exception):
                    await server.wait_closed()
        return answers, nobody

    answers, nobody = asyncio.run(scenario())
    assert sorted(set(answers)) == [b"one", b"two"]
    assert answers.count(b"one") >= 2 and answers.count(b"two") >= 2
    assert nobody.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")


@pytest.mark.parametrize(
    ("data", "name", "authenticates"),
    [
        (b"*2\r\n$4\r\nAUTH\r\n$5\r\ntoken\r\n", "AUTH", True),
        (b"*1\r\n$4\r\nping\r\n", "PING", False),
        (b"*4\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n", "HELLO", True),
        (b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n", "HELLO", False),
        (b"auth token\r\n", "AUTH", True),
        (b"PING\r\n", "PING", False),
        (b"*2\r\n$4\r\nAU", None, False),  # not whole yet
    ],
)
def test_the_gate_reads_the_first_command(
    data: bytes, name: str | None, authenticates: bool
) -> None:
    """What the gate looks at to send the token for a connection that sends none (the state
    ElastiCache keeps after a ROTATE on a group without a token)."""
    from rexctl.sandbox.proxy import authenticates as sends_auth
    from rexctl.sandbox.proxy import first_command

    assert first_command(data) == name
    assert sends_auth(data) is authenticates
