"""EC2 adapter for the failure drills: one security-group rule and a few network-ACL entries.

The drills change as little as possible and must put back exactly what they took, so this
module reads a rule in full (ports, protocol, source group, description, tags), revokes exactly
that rule and re-authorizes it identically; for network ACLs it adds DENY entries at rule numbers
that were free and deletes exactly those entries again. `sg_snapshot` and `acl_snapshot` return
normalized describes (sorted, without the ids AWS reassigns) so "before" and "after" compare.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors, error_code, translate
from rexctl.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elasticache import ElastiCacheClient

TCP = "6"
MAX_RULE_NUMBER = 32766


# --- security groups --------------------------------------------------------------------------


@dataclass(frozen=True)
class SgRule:
    """One inbound rule of `group_id` whose source is another security group."""

    group_id: str
    source_group_id: str
    protocol: str  # "tcp", "-1", ...
    from_port: int
    to_port: int
    description: str = ""
    tags: list[dict[str, str]] = field(default_factory=list)
    source_user_id: str = ""
    rule_id: str = ""  # informational: AWS gives a re-authorized rule a new id

    def permission(self) -> dict[str, Any]:
        pair: dict[str, Any] = {"GroupId": self.source_group_id}
        if self.description:
            pair["Description"] = self.description
        if self.source_user_id:
            pair["UserId"] = self.source_user_id
        perm: dict[str, Any] = {"IpProtocol": self.protocol, "UserIdGroupPairs": [pair]}
        if self.protocol != "-1":
            perm["FromPort"] = self.from_port
            perm["ToPort"] = self.to_port
        return perm

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SgRule:
        return cls(**data)

    def label(self) -> str:
        ports = (
            "all traffic"
            if self.protocol == "-1"
            else f"{self.protocol} {self.from_port}"
            + ("" if self.from_port == self.to_port else f"-{self.to_port}")
        )
        return f"{self.group_id} inbound {ports} from {self.source_group_id}"

    def cli_authorize(self, target: str = "") -> str:
        """The aws CLI command that puts this rule back by hand (`target`: --region etc.)."""
        import json
        import shlex

        def arg(value: Any) -> str:
            return shlex.quote(json.dumps(value, separators=(",", ":")))

        cmd = (
            f"aws ec2 authorize-security-group-ingress --group-id {shlex.quote(self.group_id)} "
            f"--ip-permissions {arg([self.permission()])}"
        )
        if self.tags:
            spec = [{"ResourceType": "security-group-rule", "Tags": self.tags}]
            cmd += f" --tag-specifications {arg(spec)}"
        return cmd + target


def find_security_group(ec2: EC2Client, *, name: str, vpc_id: str = "") -> dict[str, Any]:
    """The security group called `name` (in `vpc_id` when given); refuses 0 or several."""
    filters: list[Any] = [{"Name": "group-name", "Values": [name]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    with aws_errors(f"find security group {name}"):
        groups = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
    if not groups:
        where = f" in {vpc_id}" if vpc_id else ""
        raise ConfigError(
            f"There is no security group named {name!r}{where}.",
            hint="Run `rexctl provision`, or set `cache.security_group` in rexctl.toml to the "
            "name of the cache's security group.",
        )
    if len(groups) > 1:
        ids = ", ".join(g["GroupId"] for g in groups)
        raise ConfigError(
            f"Several security groups are named {name!r} ({ids}).",
            hint="Set `ecs.vpc_id` in rexctl.toml so rexctl picks the one in the service's VPC.",
        )
    return dict(groups[0])


def describe_group(ec2: EC2Client, group_id: str) -> dict[str, Any]:
    with aws_errors(f"describe security group {group_id}"):
        return dict(ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0])


def _rule_tags(ec2: EC2Client, group_id: str) -> list[dict[str, Any]]:
    with aws_errors(f"describe the rules of security group {group_id}"):
        pages = ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        )
        return [dict(r) for page in pages for r in page.get("SecurityGroupRules", [])]


def _covers(perm: dict[str, Any], port: int) -> bool:
    if perm.get("IpProtocol") == "-1":
        return True
    if perm.get("IpProtocol") not in ("tcp", TCP):
        return False
    return int(perm.get("FromPort", 0)) <= port <= int(perm.get("ToPort", 0))


def inbound_rules_from(
    ec2: EC2Client, group: dict[str, Any], source_group_ids: Iterable[str], port: int
) -> list[SgRule]:
    """The inbound rules of `group` that let `source_group_ids` reach `port`, read in full."""
    sources = set(source_group_ids)
    described = _rule_tags(ec2, group["GroupId"])
    found: list[SgRule] = []
    for perm in group.get("IpPermissions", []):
        if not _covers(perm, port):
            continue
        for pair in perm.get("UserIdGroupPairs", []):
            if pair.get("GroupId") not in sources:
                continue
            rule = SgRule(
                group_id=group["GroupId"],
                source_group_id=pair["GroupId"],
                protocol=str(perm["IpProtocol"]),
                from_port=int(perm.get("FromPort", -1)),
                to_port=int(perm.get("ToPort", -1)),
                description=pair.get("Description", ""),
                # Only a group of another account (a peered VPC) needs its account named.
                source_user_id=(
                    pair.get("UserId", "") if pair.get("UserId") != group.get("OwnerId") else ""
                ),
            )
            match = next((r for r in described if _same_rule(r, rule)), None)
            if match is not None:
                rule = SgRule(
                    **{
                        **rule.to_dict(),
                        "rule_id": match.get("SecurityGroupRuleId", ""),
                        "tags": [
                            {"Key": t["Key"], "Value": t["Value"]} for t in match.get("Tags", [])
                        ],
                    }
                )
            found.append(rule)
    return found


def other_inbound_paths(group: dict[str, Any], rules: Sequence[SgRule], port: int) -> list[str]:
    """Other inbound permissions that also reach `port` (they would keep the path open)."""
    taken = {(r.source_group_id, r.protocol, r.from_port, r.to_port) for r in rules}
    others: list[str] = []
    for perm in group.get("IpPermissions", []):
        if not _covers(perm, port):
            continue
        key = (perm.get("IpProtocol"), perm.get("FromPort", -1), perm.get("ToPort", -1))
        for pair in perm.get("UserIdGroupPairs", []):
            if (pair.get("GroupId"), *key) not in taken:
                others.append(f"from security group {pair.get('GroupId')}")
        others += [f"from {r['CidrIp']}" for r in perm.get("IpRanges", [])]
        others += [f"from {r['CidrIpv6']}" for r in perm.get("Ipv6Ranges", [])]
        others += [f"from prefix list {r['PrefixListId']}" for r in perm.get("PrefixListIds", [])]
    return others


def _same_rule(described: dict[str, Any], rule: SgRule) -> bool:
    ref = described.get("ReferencedGroupInfo") or {}
    return (
        not described.get("IsEgress", False)
        and ref.get("GroupId") == rule.source_group_id
        and str(described.get("IpProtocol")) == rule.protocol
        and int(described.get("FromPort", -1)) == rule.from_port
        and int(described.get("ToPort", -1)) == rule.to_port
    )


def revoke_rule(ec2: EC2Client, rule: SgRule) -> None:
    """Revoke exactly this rule; a rule that is already gone counts as revoked."""
    import botocore.exceptions

    try:
        ec2.revoke_security_group_ingress(GroupId=rule.group_id, IpPermissions=[rule.permission()])  # type: ignore[list-item]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "InvalidPermission.NotFound":
            return
        raise translate(exc, f"revoke {rule.label()}") from exc


def authorize_rule(ec2: EC2Client, rule: SgRule) -> None:
    """Put the rule back with its description and tags; a rule already present is fine."""
    import botocore.exceptions

    kwargs: dict[str, Any] = {"GroupId": rule.group_id, "IpPermissions": [rule.permission()]}
    if rule.tags:
        kwargs["TagSpecifications"] = [{"ResourceType": "security-group-rule", "Tags": rule.tags}]
    try:
        ec2.authorize_security_group_ingress(**kwargs)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "InvalidPermission.Duplicate":
            return
        raise translate(exc, f"re-authorize {rule.label()}") from exc


def rule_present(ec2: EC2Client, rule: SgRule) -> bool:
    """True when the group holds exactly this rule again (ports, source, description)."""
    group = describe_group(ec2, rule.group_id)
    for perm in group.get("IpPermissions", []):
        if str(perm.get("IpProtocol")) != rule.protocol:
            continue
        if rule.protocol != "-1" and (
            int(perm.get("FromPort", -1)),
            int(perm.get("ToPort", -1)),
        ) != (rule.from_port, rule.to_port):
            continue
        for pair in perm.get("UserIdGroupPairs", []):
            if pair.get("GroupId") == rule.source_group_id and pair.get("Description", "") == (
                rule.description
            ):
                return True
    return False


def sg_snapshot(ec2: EC2Client, group_id: str) -> dict[str, Any]:
    """A normalized describe of the group: what a rule change could alter, minus rule ids.

    Rule ids are left out on purpose: AWS (and moto) give a re-authorized rule a new id, and the
    id is not part of what the rule allows.
    """
    group = describe_group(ec2, group_id)

    def perms(items: Iterable[Any]) -> list[dict[str, Any]]:
        flat = []
        for p in items:
            base = {k: p.get(k) for k in ("IpProtocol", "FromPort", "ToPort")}
            for pair in p.get("UserIdGroupPairs", []):
                flat.append(
                    {**base, "group": pair.get("GroupId"), "description": pair.get("Description")}
                )
            for r in p.get("IpRanges", []):
                flat.append({**base, "cidr": r.get("CidrIp"), "description": r.get("Description")})
            for r in p.get("Ipv6Ranges", []):
                flat.append(
                    {**base, "cidr": r.get("CidrIpv6"), "description": r.get("Description")}
                )
            for r in p.get("PrefixListIds", []):
                flat.append(
                    {**base, "prefix": r.get("PrefixListId"), "description": r.get("Description")}
                )
        return sorted(flat, key=lambda d: sorted((k, str(v)) for k, v in d.items()))

    rule_tags = sorted(
        (
            f"{'egress' if r.get('IsEgress') else 'ingress'} {r.get('IpProtocol')} "
            f"{r.get('FromPort')}-{r.get('ToPort')} "
            f"{(r.get('ReferencedGroupInfo') or {}).get('GroupId') or r.get('CidrIpv4', '')}",
            sorted((t["Key"], t["Value"]) for t in r.get("Tags", [])),
        )
        for r in _rule_tags(ec2, group_id)
    )
    return {
        "GroupId": group["GroupId"],
        "GroupName": group.get("GroupName"),
        "VpcId": group.get("VpcId"),
        "Description": group.get("Description"),
        "Tags": sorted((t["Key"], t["Value"]) for t in group.get("Tags", [])),
        "Ingress": perms(group.get("IpPermissions", [])),
        "Egress": perms(group.get("IpPermissionsEgress", [])),
        "RuleTags": [[name, tags] for name, tags in rule_tags],
    }


# --- network ACLs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AclEntry:
    """One DENY entry the drill adds (and later deletes) in a network ACL."""

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

    def matches(self, raw: dict[str, Any]) -> bool:
        ports = raw.get("PortRange") or {}
        return (
            int(raw.get("RuleNumber", -1)) == self.rule_number
            and bool(raw.get("Egress")) == self.egress
            and raw.get("CidrBlock") == self.cidr
            and str(raw.get("Protocol")) == self.protocol
            and raw.get("RuleAction") == self.action
            and int(ports.get("From", -1)) == self.port
            and int(ports.get("To", -1)) == self.port
        )


def cache_subnet_ids(elasticache: ElastiCacheClient, subnet_group: str) -> list[str]:
    """The subnets of the cache subnet group ([] when the group does not exist)."""
    import botocore.exceptions

    try:
        resp = elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=subnet_group)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "CacheSubnetGroupNotFoundFault":
            return []
        raise translate(exc, f"describe cache subnet group {subnet_group}") from exc
    groups = resp.get("CacheSubnetGroups", [])
    if not groups:
        return []
    return [s["SubnetIdentifier"] for s in groups[0].get("Subnets", [])]


def subnet_cidrs(ec2: EC2Client, subnet_ids: Sequence[str]) -> dict[str, str]:
    with aws_errors("describe the service's subnets"):
        subnets = ec2.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
    return {s["SubnetId"]: s["CidrBlock"] for s in subnets}


def acls_for_subnets(ec2: EC2Client, subnet_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The network ACLs associated with these subnets, by id (each subnet has exactly one)."""
    with aws_errors("describe the network ACLs of the cache's subnets"):
        acls = ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": list(subnet_ids)}]
        )["NetworkAcls"]
    return {a["NetworkAclId"]: dict(a) for a in acls}


def describe_acl(ec2: EC2Client, acl_id: str) -> dict[str, Any]:
    with aws_errors(f"describe network ACL {acl_id}"):
        return dict(ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0])


def _entry_covers(raw: dict[str, Any], cidr: str, port: int) -> bool:
    """Could this entry match TCP traffic to `port` with the peer in `cidr`?"""
    proto = str(raw.get("Protocol"))
    if proto not in ("-1", TCP):
        return False
    ports = raw.get("PortRange")
    if proto == TCP and ports and not int(ports.get("From", 0)) <= port <= int(ports.get("To", 0)):
        return False
    block = raw.get("CidrBlock")
    if not block:
        return False
    return ipaddress.ip_network(block).overlaps(ipaddress.ip_network(cidr))


def plan_deny_entries(acl: dict[str, Any], cidrs: Sequence[str], port: int) -> list[AclEntry]:
    """DENY entries, both directions, for each CIDR on `port`, at the lowest free rule numbers.

    ACL entries are evaluated in ascending rule number and the first match wins, so a DENY only
    takes effect below every ALLOW that would match the same traffic. The lowest free numbers
    (1, 2, ...) come before almost everything people number by hand (100, 110, ...), leave those
    numbers alone, and are checked against each ALLOW that could match first.
    """
    entries = [dict(e) for e in acl.get("Entries", [])]
    planned: list[AclEntry] = []
    for egress in (False, True):
        used = {int(e["RuleNumber"]) for e in entries if bool(e.get("Egress")) == egress}
        number = 0
        for cidr in cidrs:
            number += 1
            while number in used:
                number += 1
            if number > MAX_RULE_NUMBER:
                raise ConfigError(f"Network ACL {acl['NetworkAclId']} has no free rule number.")
            earlier_allow = [
                e
                for e in entries
                if bool(e.get("Egress")) == egress
                and e.get("RuleAction") == "allow"
                and int(e["RuleNumber"]) < number
                and _entry_covers(e, cidr, port)
            ]
            if earlier_allow:
                first = earlier_allow[0]
                raise ConfigError(
                    f"Network ACL {acl['NetworkAclId']} allows this traffic at rule "
                    f"{first['RuleNumber']}, before any free rule number; a DENY entry could not "
                    "take effect.",
                    hint="Renumber that entry above a free number, or use `rexctl chaos break-sg`.",
                )
            used.add(number)
            planned.append(
                AclEntry(
                    acl_id=acl["NetworkAclId"],
                    rule_number=number,
                    egress=egress,
                    cidr=cidr,
                    port=port,
                )
            )
    return planned


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


def entry_at(ec2: EC2Client, acl_id: str, rule_number: int, egress: bool) -> dict[str, Any] | None:
    for raw in describe_acl(ec2, acl_id).get("Entries", []):
        if int(raw["RuleNumber"]) == rule_number and bool(raw.get("Egress")) == egress:
            return dict(raw)
    return None


def delete_entry(ec2: EC2Client, entry: AclEntry) -> None:
    """Delete exactly this entry. Gone already: fine. A different entry at its number: left."""
    import botocore.exceptions

    current = entry_at(ec2, entry.acl_id, entry.rule_number, entry.egress)
    if current is None or not entry.matches(current):
        return
    try:
        ec2.delete_network_acl_entry(
            NetworkAclId=entry.acl_id, RuleNumber=entry.rule_number, Egress=entry.egress
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "InvalidNetworkAclEntry.NotFound":
            return
        raise translate(exc, f"delete {entry.label()}") from exc


def acl_snapshot(ec2: EC2Client, acl_id: str) -> dict[str, Any]:
    """A normalized describe: entries sorted by direction and number, associated subnets, tags."""
    acl = describe_acl(ec2, acl_id)
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
