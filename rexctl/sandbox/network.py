"""The VPC rules the gate applies between a task and the cache, as pure functions.

AWS semantics, reduced to what a task-to-Redis TCP connection meets:
- Security groups are stateful and only matter when a connection opens: the cache's groups must
  allow the cache port from one of the task's groups (or a CIDR covering the task's subnet), and
  the task's groups must allow the egress. Connections already open survive a revoked rule.
- Network ACLs are stateless and apply to every packet crossing a subnet boundary: entries are
  read in rule-number order and the first match decides. Traffic inside one subnet meets no ACL.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SgRule:
    protocol: str  # "tcp", "6", "-1" ...
    from_port: int | None
    to_port: int | None
    groups: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    ingress: tuple[SgRule, ...] = ()
    egress: tuple[SgRule, ...] = ()


@dataclass(frozen=True)
class AclEntry:
    rule_number: int
    protocol: str
    action: str  # allow | deny
    egress: bool
    cidr: str
    from_port: int | None
    to_port: int | None


@dataclass(frozen=True)
class Subnet:
    id: str
    cidr: str
    acl: tuple[AclEntry, ...] = ()


@dataclass(frozen=True)
class Path:
    """Everything on the way from one task to the cache at one moment."""

    task_subnet: Subnet
    task_groups: tuple[SecurityGroup, ...]
    cache_subnets: tuple[Subnet, ...]
    cache_groups: tuple[SecurityGroup, ...]
    port: int
    exists: bool = True  # False when the replication group is gone
    notes: list[str] = field(default_factory=list)


def _tcp(protocol: str) -> bool:
    return str(protocol).lower() in ("tcp", "6", "-1", "all")


def _covers(lo: int | None, hi: int | None, port: int, protocol: str) -> bool:
    if str(protocol) == "-1" or lo is None or hi is None or int(lo) == -1:
        return True
    return int(lo) <= port <= int(hi)


def _within(inner: str, outer: str) -> bool:
    try:
        a = ipaddress.ip_network(inner, strict=False)
        b = ipaddress.ip_network(outer, strict=False)
    except ValueError:
        return False
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def _rule_allows(rule: SgRule, port: int, peer_groups: set[str], peer_cidr: str) -> bool:
    if not _tcp(rule.protocol) or not _covers(rule.from_port, rule.to_port, port, rule.protocol):
        return False
    return bool(peer_groups & set(rule.groups)) or any(_within(peer_cidr, c) for c in rule.cidrs)


def sg_allows(path: Path) -> bool:
    """Would the security groups let a NEW connection from the task to the cache open?"""
    task_ids = {g.id for g in path.task_groups}
    cache_ids = {g.id for g in path.cache_groups}
    cache_cidr = path.cache_subnets[0].cidr if path.cache_subnets else "0.0.0.0/0"
    inbound = any(
        _rule_allows(r, path.port, task_ids, path.task_subnet.cidr)
        for g in path.cache_groups
        for r in g.ingress
    )
    outbound = any(
        _rule_allows(r, path.port, cache_ids, cache_cidr)
        for g in path.task_groups
        for r in g.egress
    )
    return inbound and outbound


def acl_allows(entries: tuple[AclEntry, ...], *, egress: bool, peer_cidr: str, port: int) -> bool:
    """First matching entry by rule number decides; no match means deny (the `*` rule)."""
    for entry in sorted((e for e in entries if e.egress == egress), key=lambda e: e.rule_number):
        if not _tcp(entry.protocol):
            continue
        if not _covers(entry.from_port, entry.to_port, port, entry.protocol):
            continue
        if not _within(peer_cidr, entry.cidr):
            continue
        return entry.action.lower() == "allow"
    return False


def acl_allows_path(path: Path, client_port: int) -> bool:
    """Do the ACLs let packets through both ways (request to the cache port, reply to the
    client's ephemeral port)? A deny on any of the cache's subnets applies (the sandbox does not
    pin the node to one of them)."""
    task = path.task_subnet
    for cache in path.cache_subnets:
        if cache.id == task.id:
            continue  # same subnet: no ACL on the way
        checks = (
            acl_allows(task.acl, egress=True, peer_cidr=cache.cidr, port=path.port),
            acl_allows(cache.acl, egress=False, peer_cidr=task.cidr, port=path.port),
            acl_allows(cache.acl, egress=True, peer_cidr=task.cidr, port=client_port),
            acl_allows(task.acl, egress=False, peer_cidr=cache.cidr, port=client_port),
        )
        if not all(checks):
            return False
    return True
