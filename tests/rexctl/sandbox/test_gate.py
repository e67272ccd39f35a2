"""The gate between tasks and Redis applies the cache's security group and network ACLs.

The test stands in for a task: it connects to that task's gate listener, as the task's Redis
client does, and speaks raw RESP so that no client library retries behind its back.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.rexctl.sandbox.conftest import Sandbox, roll_onto_cache, service_network, wait_for

PONG = b"+PONG\r\n"


@dataclass
class Cache:
    sg: str
    rule: dict[str, Any]
    acl: str
    task_cidr: str
    gate_port: int


def connect(port: int, timeout: float = 1.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def ping(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\r\n")
    return sock.recv(64)


def pings(port: int) -> bool:
    try:
        with connect(port, timeout=0.5) as s:
            return ping(s) == PONG
    except OSError:
        return False


@pytest.fixture(scope="module")
def cache(sandbox: Sandbox) -> Iterator[Cache]:
    """A replication group like `rexctl provision` makes, and the service rolled onto it."""
    ec2, ec = sandbox.client("ec2"), sandbox.client("elasticache")
    service_sg, vpc, private = service_network(sandbox)
    assert len(private) == 2
    created = time.monotonic()
    sg = ec2.create_security_group(GroupName="gate-sg", Description="cache", VpcId=vpc)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
            "UserIdGroupPairs": [{"GroupId": service_sg}]}  # fmt: skip
    refused = []
    while True:  # EC2 is eventually consistent: a new group may not be found at once; retry
        try:
            ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[rule])
            break
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidGroup.NotFound", exc
            refused.append(time.monotonic() - created)
            time.sleep(0.1)
    assert refused or time.monotonic() - created > 0.4, "a new group was found at once"
    ec.create_cache_subnet_group(
        CacheSubnetGroupName="gate", CacheSubnetGroupDescription="cache", SubnetIds=private
    )
    group = ec.create_replication_group(
        ReplicationGroupId="gate", ReplicationGroupDescription="cache", Engine="redis",
        CacheNodeType="cache.t4g.micro", NumCacheClusters=1, CacheSubnetGroupName="gate",
        SecurityGroupIds=[sg],
    )["ReplicationGroup"]  # fmt: skip
    assert group["Status"] == "creating"
    assert "PrimaryEndpoint" not in group["NodeGroups"][0], "no endpoint before `available`"

    endpoint, task = roll_onto_cache(sandbox, "gate")
    assert task["redis_host"] == endpoint
    task_cidr = ec2.describe_subnets(SubnetIds=[task["subnet"]])["Subnets"][0]["CidrBlock"]
    acl = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [private[0]]}]
    )["NetworkAcls"][0]["NetworkAclId"]
    yield Cache(sg, rule, acl, task_cidr, task["gate_port"])


def test_the_task_reaches_redis_through_its_gate(cache: Cache) -> None:
    with connect(cache.gate_port) as s:
        assert ping(s) == PONG


def test_a_revoked_rule_keeps_open_connections_and_blackholes_new_ones(
    sandbox: Sandbox, cache: Cache
) -> None:
    ec2 = sandbox.client("ec2")
    established = connect(cache.gate_port)
    try:
        assert ping(established) == PONG
        ec2.revoke_security_group_ingress(GroupId=cache.sg, IpPermissions=[cache.rule])
        time.sleep(0.5)  # more than the gate's re-check interval
        assert ping(established) == PONG, "connection tracking keeps an open connection"
        # Accepted, then silence: the packets are dropped, nothing refuses them.
        with connect(cache.gate_port, timeout=0.8) as fresh, pytest.raises(TimeoutError):
            ping(fresh)
    finally:
        established.close()
        ec2.authorize_security_group_ingress(GroupId=cache.sg, IpPermissions=[cache.rule])
    wait_for(lambda: pings(cache.gate_port), timeout=5, what="new connections after re-authorize")


def test_an_acl_deny_cuts_open_connections_and_holds_their_bytes(
    sandbox: Sandbox, cache: Cache
) -> None:
    ec2 = sandbox.client("ec2")
    established = connect(cache.gate_port)
    try:
        assert ping(established) == PONG
        ec2.create_network_acl_entry(
            NetworkAclId=cache.acl, RuleNumber=1, Protocol="6", RuleAction="deny", Egress=False,
            CidrBlock=cache.task_cidr, PortRange={"From": 6379, "To": 6379},
        )  # fmt: skip
        try:
            time.sleep(0.5)
            established.settimeout(0.8)
            with pytest.raises(TimeoutError):
                ping(established)
            with connect(cache.gate_port, timeout=0.8) as fresh, pytest.raises(TimeoutError):
                ping(fresh)
        finally:
            ec2.delete_network_acl_entry(NetworkAclId=cache.acl, RuleNumber=1, Egress=False)
        # Dropped packets are retransmitted: the held PING is answered once traffic flows.
        established.settimeout(5)
        assert established.recv(64) == PONG
        assert ping(established) == PONG
    finally:
        established.close()
    assert pings(cache.gate_port)


def test_an_allow_before_the_deny_wins(sandbox: Sandbox, cache: Cache) -> None:
    """ACL entries are read in rule-number order: a DENY after a matching ALLOW does nothing."""
    ec2 = sandbox.client("ec2")
    ec2.create_network_acl_entry(
        NetworkAclId=cache.acl, RuleNumber=200, Protocol="6", RuleAction="deny", Egress=False,
        CidrBlock=cache.task_cidr, PortRange={"From": 6379, "To": 6379},
    )  # fmt: skip
    try:
        time.sleep(0.5)
        assert pings(cache.gate_port), "the default ACL's rule 100 allows it first"
    finally:
        ec2.delete_network_acl_entry(NetworkAclId=cache.acl, RuleNumber=200, Egress=False)
