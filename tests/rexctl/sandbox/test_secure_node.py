"""The cache node speaks TLS and AUTH as ElastiCache does (issue 13).

The test stands in for a task: it connects to that task's gate listener, as the task's Redis client
does, with raw RESP over a plain socket or over Python's `ssl` (trusting the sandbox's CA, as a
task trusts Amazon's, or trusting nothing but the system's store), so that no client library
retries or hides an answer. The replication group goes through what `rexctl provision` does to a
running plain cache: `preferred`, ROTATE, SET, `required`; each step is a ModifyReplicationGroup
that AWS applies while the group is `modifying`.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.rexctl.sandbox.conftest import Sandbox, roll_onto_cache, service_network, wait_for

PONG = b"+PONG\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
T1 = "First-token-0123456789!&#$^<>-abcdef"
T2 = "Second-token-9876543210-<>^$#&!fedcba"
GROUP = "secure"


def resp(*args: str) -> bytes:
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        out += f"${len(a.encode())}\r\n{a}\r\n".encode()
    return out


def ask(sock: socket.socket, *args: str) -> bytes:
    sock.sendall(resp(*args))
    return sock.recv(256)


def plain(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=2)


def tls(port: int, cafile: str | None) -> ssl.SSLSocket:
    """A TLS connection that verifies the node's certificate and name, as redis-py does; with
    `cafile=None` it trusts only the system's store (which does not hold the sandbox's CA)."""
    context = ssl.create_default_context(cafile=cafile)
    if cafile is None:
        context = ssl.create_default_context()
        context.load_default_certs()
    return context.wrap_socket(plain(port), server_hostname="127.0.0.1")


@dataclass
class Node:
    sandbox: Sandbox
    gate_port: int
    ca: str
    first_endpoint: str

    def group(self) -> dict[str, Any]:
        ec = self.sandbox.client("elasticache")
        groups = ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"]
        return dict(groups[0])

    def modify(self, done: Callable[[dict[str, Any]], bool], **params: Any) -> dict[str, Any]:
        """ModifyReplicationGroup, then wait until the group is available and `done`."""
        ec = self.sandbox.client("elasticache")
        ec.modify_replication_group(ReplicationGroupId=GROUP, ApplyImmediately=True, **params)
        return dict(
            wait_for(
                lambda: (
                    (g := self.group())["Status"] == "available"
                    and not g.get("PendingModifiedValues")
                    and done(g)
                    and g
                ),
                timeout=15,
                what=f"the modify {sorted(params)}",
            )
        )


@pytest.fixture(scope="module")
def node(sandbox: Sandbox) -> Iterator[Node]:
    """A plain replication group like `rexctl provision` makes, and the service rolled onto it."""
    ec2, ec = sandbox.client("ec2"), sandbox.client("elasticache")
    service_sg, vpc, private = service_network(sandbox)
    sg = ec2.create_security_group(GroupName="secure-sg", Description="cache", VpcId=vpc)
    rule = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
            "UserIdGroupPairs": [{"GroupId": service_sg}]}  # fmt: skip
    wait_for(lambda: _authorize(ec2, sg["GroupId"], rule), timeout=10, what="the rule")
    ec.create_cache_subnet_group(
        CacheSubnetGroupName=GROUP, CacheSubnetGroupDescription="cache", SubnetIds=private
    )
    ec.create_replication_group(
        ReplicationGroupId=GROUP, ReplicationGroupDescription="cache", Engine="redis",
        EngineVersion="7.1", CacheNodeType="cache.t4g.micro", NumCacheClusters=1,
        CacheSubnetGroupName=GROUP, SecurityGroupIds=[sg["GroupId"]],
        AtRestEncryptionEnabled=True, TransitEncryptionEnabled=False,
    )  # fmt: skip

    endpoint, task = roll_onto_cache(sandbox, GROUP)
    yield Node(sandbox, task["gate_port"], sandbox.state.ca_file, endpoint)


def _authorize(ec2: Any, group_id: str, rule: dict[str, Any]) -> bool:
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule])
    except ClientError as exc:  # a new group may not be found at once (EC2's consistency)
        assert exc.response["Error"]["Code"] == "InvalidGroup.NotFound", exc
        return False
    return True


def test_a_group_without_tls_answers_plain_and_no_handshake(node: Node) -> None:
    assert node.first_endpoint.split(".")[2:4] == ["ng", "0001"], "a plain group's name"
    with plain(node.gate_port) as s:
        assert ask(s, "PING") == PONG
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls(node.gate_port, node.ca).close()


def test_preferred_takes_tls_and_plain_on_the_one_port_with_a_new_endpoint(node: Node) -> None:
    group = node.modify(
        lambda g: g.get("TransitEncryptionMode") == "preferred",
        TransitEncryptionEnabled=True,
        TransitEncryptionMode="preferred",
    )
    assert group["TransitEncryptionEnabled"] is True
    tls_name = group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    assert tls_name.startswith(f"master.{GROUP}.") and tls_name != node.first_endpoint
    with tls(node.gate_port, node.ca) as secure, plain(node.gate_port) as clear:
        assert ask(secure, "PING") == PONG
        assert secure.version() in ("TLSv1.2", "TLSv1.3")
        assert ask(clear, "PING") == PONG

        def counted() -> bool:
            tasks = [t for t in node.sandbox.runtime() if t["gate_port"] == node.gate_port]
            return bool(tasks) and tasks[0]["redis_tls"] >= 1 and tasks[0]["redis_plain"] >= 1

        wait_for(counted, timeout=5, what="the task's TLS and plain connections counted")


def test_a_client_that_trusts_only_the_system_store_refuses_the_node(node: Node) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        tls(node.gate_port, None).close()


def test_auth_rotate_then_set_then_rotate_again(node: Node) -> None:
    early = plain(node.gate_port)  # unauthenticated, in use before any token
    try:
        assert ask(early, "PING") == PONG
        node.modify(lambda g: g.get("AuthTokenEnabled") is True,
                    AuthToken=T1, AuthTokenUpdateStrategy="ROTATE")  # fmt: skip
        # A ROTATE on a group without a token: the token works, and so does no token at all.
        with tls(node.gate_port, node.ca) as s:
            assert wait_for(lambda: ask(s, "AUTH", T1) == b"+OK\r\n", timeout=5, what="T1")
            assert ask(s, "PING") == PONG
        with tls(node.gate_port, node.ca) as s:
            assert ask(s, "PING") == PONG
        ec = node.sandbox.client("elasticache")
        with pytest.raises(ClientError) as refused:
            ec.modify_replication_group(ReplicationGroupId=GROUP, ApplyImmediately=True,
                                        AuthToken=T2, AuthTokenUpdateStrategy="SET")  # fmt: skip
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert T2 not in str(refused.value) and T1 not in str(refused.value)
        before = node.group()["AuthTokenLastModifiedDate"]
        node.modify(lambda g: g["AuthTokenLastModifiedDate"] != before,
                    AuthToken=T1, AuthTokenUpdateStrategy="SET")  # fmt: skip

        def refuses_no_token() -> bool:
            with tls(node.gate_port, node.ca) as s:
                return ask(s, "PING") == NOAUTH

        wait_for(refuses_no_token, timeout=5, what="NOAUTH without a token after SET")
        with tls(node.gate_port, node.ca) as s:
            assert ask(s, "AUTH", T2) == WRONGPASS
            assert ask(s, "GET", "k") == NOAUTH
            assert ask(s, "AUTH", T1) == b"+OK\r\n"
        assert ask(early, "PING") == PONG, "an open connection stays, as on Redis"

        before = node.group()["AuthTokenLastModifiedDate"]
        node.modify(lambda g: g["AuthTokenLastModifiedDate"] != before,
                    AuthToken=T2, AuthTokenUpdateStrategy="ROTATE")  # fmt: skip

        def both_work() -> bool:
            results = []
            for token in (T1, T2):
                with tls(node.gate_port, node.ca) as s:
                    results.append(ask(s, "AUTH", token))
            return results == [b"+OK\r\n", b"+OK\r\n"]

        wait_for(both_work, timeout=5, what="ROTATE: the old and the new token both accepted")
        with tls(node.gate_port, node.ca) as s:
            assert ask(s, "PING") == NOAUTH, "a second ROTATE keeps requiring a token"
        before = node.group()["AuthTokenLastModifiedDate"]
        node.modify(lambda g: g["AuthTokenLastModifiedDate"] != before,
                    AuthToken=T2, AuthTokenUpdateStrategy="SET")  # fmt: skip

        def only_t2() -> bool:
            with tls(node.gate_port, node.ca) as s:
                return ask(s, "AUTH", T1) == WRONGPASS

        wait_for(only_t2, timeout=5, what="SET: only the new token")
    finally:
        early.close()


def test_required_drops_plain_connections_and_the_plain_names(node: Node) -> None:
    clear = plain(node.gate_port)
    assert ask(clear, "AUTH", T2) == b"+OK\r\n"
    node.modify(lambda g: g.get("TransitEncryptionMode") == "required",
                TransitEncryptionMode="required")  # fmt: skip
    clear.settimeout(3)
    deadline = time.monotonic() + 5
    dropped = False
    while time.monotonic() < deadline and not dropped:
        try:
            dropped = ask(clear, "PING") == b""
        except OSError:
            dropped = True
    clear.close()
    assert dropped, "ElastiCache drops plain connections once TLS is required"
    with plain(node.gate_port) as fresh:
        fresh.settimeout(2)
        try:
            answer = ask(fresh, "PING")
        except OSError:
            answer = b""
        assert answer == b"", "a new plain connection is closed"
    with tls(node.gate_port, node.ca) as s:
        assert ask(s, "AUTH", T2) == b"+OK\r\n" and ask(s, "PING") == PONG
    # The task that still names the plain endpoint would no longer resolve it.
    assert node.first_endpoint not in str(node.group())
