"""EC2 adapter for network ACLs: the ACL of each subnet (its association), the entries, and the
calls the break-nacl drill makes: create a network ACL, copy entries into it, move a subnet's
association to it and back, delete it.

An ACL is read as a `NetworkAcl` of `AclEntryView`s (what `describe_network_acls` reports); an
`AclEntryView` is also the journal form of an entry the drill creates (`to_dict`/`from_dict`) and
knows the CreateNetworkAclEntry request that creates it (`request`). AWS's own default deny-all
entries (rule `*`: number 32767 for IPv4, 32768 for IPv6) are marked `is_default`: every ACL has
them, nobody can create or delete them. `AclEntry` is the journal form of the DENY entries that
break-nacl of earlier rexctl added to an ACL in place (journals keep it; such a journal restores by
deleting exactly them). `acl_snapshot` returns a normalized describe (JSON) so "before" and
"after" compare.

moto differs from AWS in two ways that matter here (docs: moto-caveats): a new custom ACL has no
default entries (AWS gives it the `*` deny-all entries), and describing an ACL id that does not
exist answers `InvalidRouteTableID.NotFound`; both codes count as "not there".
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors, eventually, unless_missing

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

TCP = "6"
MAX_RULE_NUMBER = 32766  # the highest rule number AWS accepts for an entry
# Amazon VPC quotas, "Inbound or outbound rules per network ACL": 20 by default, one way, counted
# separately for IPv4 and IPv6 entries, the default deny-all entry (`*`) included.
DEFAULT_ENTRY_QUOTA = 20
_NOT_FOUND = ("InvalidNetworkAclID.NotFound", "InvalidRouteTableID.NotFound")  # AWS, moto


def family(cidr: str) -> int:
    """4 or 6: the IP version of a CIDR block."""
    return ipaddress.ip_network(cidr, strict=False).version


@dataclass(frozen=True)
class AclEntryView:
    """One entry of a network ACL, as `describe_network_acls` reports it (and as the drill
    journals an entry it creates: `to_dict`/`from_dict`)."""

    rule_number: int
    egress: bool
    protocol: str  # "6" (tcp), "17" (udp), "-1" (all) ...
    action: str  # "allow" | "deny"
    cidr: str = ""  # IPv4 CidrBlock ('' for an IPv6 entry)
    ipv6_cidr: str = ""
    port_range: tuple[int, int] | None = None  # (from, to); None: every port
    icmp: tuple[int, int] | None = None  # IcmpTypeCode (type, code) of an ICMP entry

    @property
    def peer(self) -> str:
        """The entry's CIDR block, IPv4 or IPv6."""
        return self.cidr or self.ipv6_cidr

    @property
    def family(self) -> int:
        return 6 if self.ipv6_cidr and not self.cidr else 4

    @property
    def is_default(self) -> bool:
        """AWS's default deny-all entry (`*`): in every ACL, never created or deleted by hand."""
        return self.rule_number > MAX_RULE_NUMBER

    def covers(self, cidr: str, port: int) -> bool:
        """Could this entry match TCP traffic to `port` with the peer in `cidr` (same IP
        version)?"""
        if self.protocol not in ("-1", TCP):
            return False
        if self.protocol == TCP and self.port_range is not None:
            low, high = self.port_range
            if not low <= port <= high:
                return False
        if not self.peer:
            return False
        mine, theirs = ipaddress.ip_network(self.peer), ipaddress.ip_network(cidr)
        return mine.version == theirs.version and mine.overlaps(theirs)

    def key(self) -> tuple[Any, ...]:
        """What the entry is, whatever the spelling of its CIDR (AWS stores canonical forms)."""
        peer = str(ipaddress.ip_network(self.peer, strict=False)) if self.peer else ""
        return (
            self.egress,
            self.rule_number,
            self.protocol,
            self.action,
            peer,
            self.port_range,
            self.icmp,
        )

    def label(self, acl_id: str = "") -> str:
        direction, peer = ("outbound", "to") if self.egress else ("inbound", "from")
        what = {"-1": "all traffic", TCP: "tcp", "17": "udp", "1": "icmp"}.get(
            self.protocol, f"protocol {self.protocol}"
        )
        if self.port_range is not None and self.protocol in (TCP, "17"):
            low, high = self.port_range
            what += f" {low}" if low == high else f" {low}-{high}"
        where = f"{acl_id} " if acl_id else ""
        return (
            f"{where}rule {self.rule_number} {direction}: {self.action.upper()} {what} "
            f"{peer} {self.peer}"
        )

    def request(self, acl_id: str) -> dict[str, Any]:
        """The CreateNetworkAclEntry parameters that create this entry in `acl_id`."""
        params: dict[str, Any] = {
            "NetworkAclId": acl_id,
            "RuleNumber": self.rule_number,
            "Protocol": self.protocol,
            "RuleAction": self.action,
            "Egress": self.egress,
        }
        if self.cidr:
            params["CidrBlock"] = self.cidr
        if self.ipv6_cidr:
            params["Ipv6CidrBlock"] = self.ipv6_cidr
        if self.port_range is not None:
            params["PortRange"] = {"From": self.port_range[0], "To": self.port_range[1]}
        if self.icmp is not None:
            params["IcmpTypeCode"] = {"Type": self.icmp[0], "Code": self.icmp[1]}
        return params

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("port_range", "icmp"):
            data[key] = list(data[key]) if data[key] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AclEntryView:
        def pair(value: Any) -> tuple[int, int] | None:
            return None if value is None else (int(value[0]), int(value[1]))

        return cls(
            rule_number=int(data["rule_number"]),
            egress=bool(data["egress"]),
            protocol=str(data["protocol"]),
            action=str(data["action"]),
            cidr=data.get("cidr") or "",
            ipv6_cidr=data.get("ipv6_cidr") or "",
            port_range=pair(data.get("port_range")),
            icmp=pair(data.get("icmp")),
        )


@dataclass(frozen=True)
class NetworkAcl:
    id: str
    vpc_id: str
    entries: list[AclEntryView] = field(default_factory=list)  # in the order AWS lists them
    subnet_ids: list[str] = field(default_factory=list)
    is_default: bool = False
    associations: dict[str, str] = field(default_factory=dict)  # subnet id -> association id
    tags: dict[str, str] = field(default_factory=dict)

    def own_entries(self) -> list[AclEntryView]:
        """The entries that someone created (all but AWS's default deny-all entries)."""
        return [e for e in self.entries if not e.is_default]


@dataclass(frozen=True)
class Association:
    """Which network ACL a subnet uses: AWS gives every subnet exactly one association, and
    a new association id each time it moves to another ACL."""

    subnet_id: str
    acl_id: str
    association_id: str


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
            and entry.peer == self.cidr
            and entry.protocol == self.protocol
            and entry.action == self.action
            and (entry.port_range or (-1, -1)) == (self.port, self.port)
        )


def _entry(raw: Any) -> AclEntryView:
    ports = raw.get("PortRange")
    icmp = raw.get("IcmpTypeCode")
    return AclEntryView(
        rule_number=int(raw["RuleNumber"]),
        egress=bool(raw.get("Egress")),
        protocol=str(raw.get("Protocol")),
        action=str(raw.get("RuleAction", "")),
        cidr=raw.get("CidrBlock") or "",
        ipv6_cidr=raw.get("Ipv6CidrBlock") or "",
        port_range=(int(ports.get("From", 0)), int(ports.get("To", 0))) if ports else None,
        icmp=(int(icmp.get("Type", -1)), int(icmp.get("Code", -1))) if icmp else None,
    )


def _acl(raw: Any) -> NetworkAcl:
    associations = [a for a in raw.get("Associations", []) if a.get("SubnetId")]
    return NetworkAcl(
        id=raw["NetworkAclId"],
        vpc_id=raw.get("VpcId", ""),
        entries=[_entry(e) for e in raw.get("Entries", [])],
        subnet_ids=[a["SubnetId"] for a in associations],
        is_default=bool(raw.get("IsDefault", False)),
        associations={a["SubnetId"]: a.get("NetworkAclAssociationId", "") for a in associations},
        tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags", [])},
    )


def acls_for_subnets(ec2: EC2Client, subnet_ids: Sequence[str]) -> list[NetworkAcl]:
    """The network ACLs associated with these subnets (each subnet has exactly one)."""
    with aws_errors("describe the network ACLs of the cache's subnets"):
        acls = ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": list(subnet_ids)}]
        )["NetworkAcls"]
    return [_acl(a) for a in acls]


def associations(ec2: EC2Client, subnet_ids: Sequence[str]) -> dict[str, Association]:
    """The network ACL each subnet uses now, with the association's id (subnets that have none,
    which AWS does not allow, are left out)."""
    wanted = set(subnet_ids)
    found: dict[str, Association] = {}
    for acl in acls_for_subnets(ec2, list(subnet_ids)):
        for subnet, association in acl.associations.items():
            if subnet in wanted:
                found[subnet] = Association(subnet, acl.id, association)
    return found


def _describe_acl(ec2: EC2Client, acl_id: str) -> dict[str, Any]:
    with aws_errors(f"describe network ACL {acl_id}"):
        return dict(ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0])


def describe_acl(ec2: EC2Client, acl_id: str) -> NetworkAcl:
    """The network ACL; an error when it does not exist."""
    return _acl(_describe_acl(ec2, acl_id))


def find_acl(ec2: EC2Client, acl_id: str) -> NetworkAcl | None:
    """The network ACL; None when it does not exist (any more)."""
    resp = unless_missing(
        _NOT_FOUND,
        f"describe network ACL {acl_id}",
        lambda: ec2.describe_network_acls(NetworkAclIds=[acl_id]),
    )
    acls = [] if resp is None else list(resp.get("NetworkAcls", []))
    return _acl(acls[0]) if acls else None


def tagged_acls(ec2: EC2Client, vpc_id: str, key: str, value: str) -> list[str]:
    """The ids of the VPC's network ACLs tagged `key`=`value` (any VPC's when `vpc_id` is '')."""
    filters: list[Any] = [{"Name": f"tag:{key}", "Values": [value]}]
    if vpc_id:
        filters.insert(0, {"Name": "vpc-id", "Values": [vpc_id]})
    with aws_errors(f"look for the network ACLs tagged {key}={value} in {vpc_id or 'any VPC'}"):
        acls = ec2.describe_network_acls(Filters=filters)["NetworkAcls"]
    return sorted(str(a["NetworkAclId"]) for a in acls)


def create_acl_request(vpc_id: str, tags: dict[str, str]) -> dict[str, Any]:
    """The CreateNetworkAcl parameters: a network ACL in `vpc_id`, tagged as it is created."""
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    return {
        "VpcId": vpc_id,
        "TagSpecifications": [{"ResourceType": "network-acl", "Tags": tag_list}],
    }


def create_acl(ec2: EC2Client, vpc_id: str, tags: dict[str, str]) -> str:
    """Create a network ACL in the VPC, tagged in the same call; returns its id. (AWS gives it
    the default deny-all entries only; moto gives it none.)"""
    with aws_errors(f"create a network ACL in {vpc_id}"):
        resp = ec2.create_network_acl(**create_acl_request(vpc_id, tags))
    return str(resp["NetworkAcl"]["NetworkAclId"])


def create_entry(
    ec2: EC2Client,
    acl_id: str,
    entry: AclEntryView,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create the entry in `acl_id` (retried while EC2 does not see an ACL just created yet)."""
    eventually(
        "InvalidNetworkAclID.NotFound",
        f"add {entry.label(acl_id)}",
        lambda: ec2.create_network_acl_entry(**entry.request(acl_id)),
        sleep=sleep,
    )


def replace_association(
    ec2: EC2Client,
    association_id: str,
    acl_id: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Move the subnet of `association_id` to the network ACL `acl_id`; returns the NEW
    association id AWS gives it (the old one no longer exists). Retried while EC2 does not see
    an ACL or an association just created yet (EC2's eventual consistency)."""
    resp = eventually(
        ("InvalidNetworkAclID.NotFound", "InvalidAssociationID.NotFound"),
        f"associate network ACL {acl_id} instead (association {association_id})",
        lambda: ec2.replace_network_acl_association(
            AssociationId=association_id, NetworkAclId=acl_id
        ),
        sleep=sleep,
    )
    return str(resp["NewAssociationId"])


def delete_acl(ec2: EC2Client, acl_id: str) -> None:
    """Delete the network ACL; one that is already gone is fine. AWS refuses while any subnet is
    still associated with it (DependencyViolation), and that is an error."""
    unless_missing(
        _NOT_FOUND,
        f"delete network ACL {acl_id}",
        lambda: ec2.delete_network_acl(NetworkAclId=acl_id),
    )


def entry_at(ec2: EC2Client, acl_id: str, rule_number: int, egress: bool) -> AclEntryView | None:
    """The entry at this rule number and direction; None when the number is free."""
    for entry in describe_acl(ec2, acl_id).entries:
        if entry.rule_number == rule_number and entry.egress == egress:
            return entry
    return None


def add_entry(ec2: EC2Client, entry: AclEntry) -> None:
    """Add one DENY entry in place (what break-nacl of earlier rexctl did; tests re-create the
    fault of an old journal with it)."""
    peer = {"Ipv6CidrBlock" if family(entry.cidr) == 6 else "CidrBlock": entry.cidr}
    with aws_errors(f"add {entry.label()}"):
        ec2.create_network_acl_entry(
            NetworkAclId=entry.acl_id,
            RuleNumber=entry.rule_number,
            Protocol=entry.protocol,
            RuleAction="deny",
            Egress=entry.egress,
            PortRange={"From": entry.port, "To": entry.port},
            **peer,  # type: ignore[arg-type]
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
