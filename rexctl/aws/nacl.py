"""EC2 adapter for network ACLs: the ACLs of some subnets, their entries, and the DENY entries a
drill adds and deletes again.

An ACL is read as a `NetworkAcl` of `AclEntryView`s (what `describe_network_acls` reports). The
break-nacl drill adds `AclEntry`s (its journal form) at rule numbers that were free and deletes
exactly those entries again; which entries to add is the drill's policy
(`rexctl.drills.faults.plan_deny_entries`). `acl_snapshot` returns a normalized describe (JSON)
so "before" and "after" compare.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors, unless_missing

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

TCP = "6"
MAX_RULE_NUMBER = 32766  # the highest rule number AWS accepts for an entry


@dataclass(frozen=True)
class AclEntryView:
    """One entry of a network ACL, as `describe_network_acls` reports it."""

    rule_number: int
    egress: bool
    protocol: str  # "6" (tcp), "17" (udp), "-1" (all) ...
    action: str  # "allow" | "deny"
    cidr: str = ""  # IPv4 CidrBlock ('' for an IPv6 entry)
    ipv6_cidr: str = ""
    port_range: tuple[int, int] | None = None  # (from, to); None: every port

    def covers(self, cidr: str, port: int) -> bool:
        """Could this entry match TCP traffic to `port` with the peer in `cidr` (IPv4)?"""
        if self.protocol not in ("-1", TCP):
            return False
        if self.protocol == TCP and self.port_range is not None:
            low, high = self.port_range
            if not low <= port <= high:
                return False
        if not self.cidr:
            return False
        return ipaddress.ip_network(self.cidr).overlaps(ipaddress.ip_network(cidr))


@dataclass(frozen=True)
class NetworkAcl:
    id: str
    vpc_id: str
    entries: list[AclEntryView] = field(default_factory=list)  # in the order AWS lists them
    subnet_ids: list[str] = field(default_factory=list)
    is_default: bool = False


@dataclass(frozen=True)
class AclEntry:
    """One DENY entry the drill adds (and later deletes) in a network ACL; `to_dict`/`from_dict`
    are its journal form (journals keep it as is)."""

    acl_id: str
    rule_number: int
    egress: bool
    cidr: str
    port: int
    protocol: str = TCP
    action: str = "deny"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AclEntry:
        return cls(**data)

    def label(self) -> str:
        direction = "outbound" if self.egress else "inbound"
        peer = "to" if self.egress else "from"
        return (
            f"{self.acl_id} rule {self.rule_number} {direction}: DENY tcp {self.port} "
            f"{peer} {self.cidr}"
        )

    def cli_delete(self, target: str = "") -> str:
        """The aws CLI command that deletes this entry by hand (`target`: --region etc.)."""
        flag = "--egress" if self.egress else "--ingress"
        return (
            f"aws ec2 delete-network-acl-entry --network-acl-id {self.acl_id} "
            f"--rule-number {self.rule_number} {flag}{target}"
        )

    def matches(self, entry: AclEntryView) -> bool:
        """Whether `entry` is exactly this one (not someone else's at the same number)."""
        return (
            entry.rule_number == self.rule_number
            and entry.egress == self.egress
            and entry.cidr == self.cidr
            and entry.protocol == self.protocol
            and entry.action == self.action
            and (entry.port_range or (-1, -1)) == (self.port, self.port)
        )


def _entry(raw: Any) -> AclEntryView:
    ports = raw.get("PortRange")
    return AclEntryView(
        rule_number=int(raw["RuleNumber"]),
        egress=bool(raw.get("Egress")),
        protocol=str(raw.get("Protocol")),
        action=str(raw.get("RuleAction", "")),
        cidr=raw.get("CidrBlock") or "",
        ipv6_cidr=raw.get("Ipv6CidrBlock") or "",
        port_range=(int(ports.get("From", 0)), int(ports.get("To", 0))) if ports else None,
    )


def _acl(raw: Any) -> NetworkAcl:
    return NetworkAcl(
        id=raw["NetworkAclId"],
        vpc_id=raw.get("VpcId", ""),
        entries=[_entry(e) for e in raw.get("Entries", [])],
        subnet_ids=[a["SubnetId"] for a in raw.get("Associations", [])],
        is_default=bool(raw.get("IsDefault", False)),
    )


def acls_for_subnets(ec2: EC2Client, subnet_ids: Sequence[str]) -> list[NetworkAcl]:
    """The network ACLs associated with these subnets (each subnet has exactly one)."""
    with aws_errors("describe the network ACLs of the cache's subnets"):
        acls = ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": list(subnet_ids)}]
        )["NetworkAcls"]
    return [_acl(a) for a in acls]


def _describe_acl(ec2: EC2Client, acl_id: str) -> dict[str, Any]:
    with aws_errors(f"describe network ACL {acl_id}"):
        return dict(ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0])


def describe_acl(ec2: EC2Client, acl_id: str) -> NetworkAcl:
    """The network ACL; an error when it does not exist."""
    return _acl(_describe_acl(ec2, acl_id))


def entry_at(ec2: EC2Client, acl_id: str, rule_number: int, egress: bool) -> AclEntryView | None:
    """The entry at this rule number and direction; None when the number is free."""
    for entry in describe_acl(ec2, acl_id).entries:
        if entry.rule_number == rule_number and entry.egress == egress:
            return entry
    return None


def add_entry(ec2: EC2Client, entry: AclEntry) -> None:
    with aws_errors(f"add {entry.label()}"):
        ec2.create_network_acl_entry(
            NetworkAclId=entry.acl_id,
            RuleNumber=entry.rule_number,
            Protocol=entry.protocol,
            RuleAction="deny",
            Egress=entry.egress,
            CidrBlock=entry.cidr,
            PortRange={"From": entry.port, "To": entry.port},
        )


def delete_entry(ec2: EC2Client, entry: AclEntry) -> None:
    """Delete exactly this entry. Gone already: fine. A different entry at its number: left."""
    current = entry_at(ec2, entry.acl_id, entry.rule_number, entry.egress)
    if current is None or not entry.matches(current):
        return
    unless_missing(
        "InvalidNetworkAclEntry.NotFound",
        f"delete {entry.label()}",
        lambda: ec2.delete_network_acl_entry(
            NetworkAclId=entry.acl_id, RuleNumber=entry.rule_number, Egress=entry.egress
        ),
    )


def acl_snapshot(ec2: EC2Client, acl_id: str) -> dict[str, Any]:
    """A normalized describe (JSON, kept in drill journals as the "before"): entries sorted by
    direction and number, associated subnets, tags. Journals already hold this shape: keep it."""
    acl = _describe_acl(ec2, acl_id)
    entries = sorted(
        (
            {
                "Egress": bool(e.get("Egress")),
                "RuleNumber": int(e["RuleNumber"]),
                "Protocol": str(e.get("Protocol")),
                "RuleAction": e.get("RuleAction"),
                "CidrBlock": e.get("CidrBlock") or e.get("Ipv6CidrBlock"),
                "PortRange": dict(e["PortRange"]) if e.get("PortRange") else None,
            }
            for e in acl.get("Entries", [])
        ),
        key=lambda e: (e["Egress"], e["RuleNumber"]),
    )
    return {
        "NetworkAclId": acl["NetworkAclId"],
        "VpcId": acl.get("VpcId"),
        "IsDefault": acl.get("IsDefault"),
        "Entries": entries,
        "Subnets": sorted(a["SubnetId"] for a in acl.get("Associations", [])),
        "Tags": sorted((t["Key"], t["Value"]) for t in acl.get("Tags", [])),
    }
