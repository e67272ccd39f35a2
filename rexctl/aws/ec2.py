"""EC2 adapter: the VPC's subnets (public or private by their route table) and security groups.

A subnet is public when the route table it uses (its own association, or else the VPC's main
table) sends 0.0.0.0/0 to an internet gateway (`igw-...`). A NAT gateway route or no default
route at all keeps it private. This is the rule of guide step 7.

A security group comes with its rules (`Rule`, read from every page of
`describe_security_group_rules`), for provisioning to check and for the break-sg drill to revoke
and re-authorize identically (ports, protocol, source, description, tags). Network ACLs live in
`rexctl.aws.nacl`.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import answered, aws_errors, eventually, unless_missing
from rexctl.errors import RexctlError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

TCP = "6"


@dataclass(frozen=True)
class Subnet:
    id: str
    vpc_id: str
    az: str
    cidr: str
    route_table: str  # the table that decides (own association or the main table)
    internet_gateway: str  # the igw-... its 0.0.0.0/0 route goes to ('' when private)
    name: str = ""

    @property
    def public(self) -> bool:
        return bool(self.internet_gateway)

    @property
    def why(self) -> str:
        if self.public:
            return f"its route table {self.route_table} sends 0.0.0.0/0 to {self.internet_gateway}"
        return f"its route table {self.route_table or '(none)'} has no route to an internet gateway"


RuleKey = tuple[bool, str, int, int, str]  # direction, protocol, ports, source: one rule in AWS


@dataclass(frozen=True)
class Rule:
    """One security-group rule: what `describe_security_group_rules` reports, with the
    description and account of its source as `describe_security_groups` lists them.

    Provisioning reads rules to check them; the drills revoke one and put it back identically,
    so `to_dict`/`from_dict` are its journal form (an inbound rule from a security group).
    """

    id: str  # sgr-...; AWS gives a re-authorized rule a new one
    group_id: str
    egress: bool
    protocol: str  # "tcp", "udp", "-1" (all) ...
    from_port: int
    to_port: int
    cidr: str = ""  # IPv4 or IPv6 CIDR source
    source_group: str = ""
    prefix_list: str = ""
    description: str = ""
    source_user_id: str = ""  # the source group's account, only when it is another account
    tags: dict[str, str] = field(default_factory=dict)

    def covers(self, port: int) -> bool:
        """Whether this rule lets TCP traffic to `port` through."""
        if self.protocol == "-1":
            return True
        if self.protocol not in ("tcp", TCP):
            return False
        return self.from_port <= port <= self.to_port

    @property
    def source(self) -> str:
        return self.cidr or self.source_group or self.prefix_list or "?"

    @property
    def ports(self) -> str:
        if self.protocol == "-1":
            return "all"
        if self.from_port == self.to_port:
            return str(self.from_port)
        return f"{self.from_port}-{self.to_port}"

    def key(self) -> RuleKey:
        source = self.cidr or self.source_group or self.prefix_list
        return (self.egress, self.protocol, self.from_port, self.to_port, source)

    def same_permission(self, other: Rule) -> bool:
        """Same direction, protocol, ports (unless all traffic) and source."""
        mine, theirs = self.key(), other.key()
        if self.protocol == "-1":  # all traffic: the ports mean nothing
            return (mine[:2], mine[4]) == (theirs[:2], theirs[4])
        return mine == theirs

    def label(self) -> str:
        ports = (
            "all traffic"
            if self.protocol == "-1"
            else f"{self.protocol} {self.from_port}"
            + ("" if self.from_port == self.to_port else f"-{self.to_port}")
        )
        direction, peer = ("outbound", "to") if self.egress else ("inbound", "from")
        return f"{self.group_id} {direction} {ports} {peer} {self.source}"

    def _tag_list(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.tags.items()]

    def permission(self) -> dict[str, Any]:
        """The `IpPermissions` item of this rule (a rule whose source is a security group)."""
        if not self.source_group:
            raise ValueError(f"{self.label()}: only a rule from a security group has this form")
        pair: dict[str, Any] = {"GroupId": self.source_group}
        if self.description:
            pair["Description"] = self.description
        if self.source_user_id:
            pair["UserId"] = self.source_user_id
        perm: dict[str, Any] = {"IpProtocol": self.protocol, "UserIdGroupPairs": [pair]}
        if self.protocol != "-1":
            perm["FromPort"] = self.from_port
            perm["ToPort"] = self.to_port
        return perm

    def cli_authorize(self, target: str = "") -> str:
        """The aws CLI command that puts this rule back by hand (`target`: --region etc.)."""

        def arg(value: Any) -> str:
            return shlex.quote(json.dumps(value, separators=(",", ":")))

        cmd = (
            f"aws ec2 authorize-security-group-ingress --group-id {shlex.quote(self.group_id)} "
            f"--ip-permissions {arg([self.permission()])}"
        )
        if self.tags:
            spec = [{"ResourceType": "security-group-rule", "Tags": self._tag_list()}]
            cmd += f" --tag-specifications {arg(spec)}"
        return cmd + target

    def to_dict(self) -> dict[str, Any]:
        """The journal form of an inbound rule from a security group (journals keep it as is)."""
        return {
            "group_id": self.group_id,
            "source_group_id": self.source_group,
            "protocol": self.protocol,
            "from_port": self.from_port,
            "to_port": self.to_port,
            "description": self.description,
            "tags": self._tag_list(),
            "source_user_id": self.source_user_id,
            "rule_id": self.id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        return cls(
            id=data.get("rule_id", ""),
            group_id=data["group_id"],
            egress=False,
            protocol=data["protocol"],
            from_port=int(data["from_port"]),
            to_port=int(data["to_port"]),
            source_group=data["source_group_id"],
            description=data.get("description", ""),
            source_user_id=data.get("source_user_id", ""),
            tags={t["Key"]: t.get("Value", "") for t in data.get("tags", [])},
        )


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    vpc_id: str
    description: str
    tags: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    owner_id: str = ""

    def ingress(self) -> list[Rule]:
        return [r for r in self.rules if not r.egress]

    def inbound_from(self, source_groups: Iterable[str], port: int) -> list[Rule]:
        """The inbound rules that let members of `source_groups` reach TCP `port`."""
        sources = set(source_groups)
        return [r for r in self.ingress() if r.source_group in sources and r.covers(port)]


def _tags(raw: list[Any] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in raw or []}


def tag_specs(resource_type: str, tags: dict[str, str]) -> list[Any]:
    """TagSpecifications so that a resource is tagged in the same call that creates it."""
    return [
        {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    ]


def vpc_of_subnet(ec2: EC2Client, subnet_id: str) -> str:
    with aws_errors(f"describe subnet {subnet_id}"):
        resp = ec2.describe_subnets(SubnetIds=[subnet_id])
    return str(resp["Subnets"][0]["VpcId"])


def subnet_cidrs(ec2: EC2Client, subnet_ids: Sequence[str]) -> dict[str, str]:
    """The IPv4 CIDR of each subnet, by id (an IPv6-only subnet has none and is left out)."""
    with aws_errors("describe the service's subnets"):
        subnets = ec2.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
    return {s["SubnetId"]: s["CidrBlock"] for s in subnets if s.get("CidrBlock")}


_GONE_CIDR_STATES = {"disassociating", "disassociated", "failing", "failed"}


def subnet_ranges(ec2: EC2Client, subnet_ids: Sequence[str]) -> dict[str, list[str]]:
    """Every address range of each subnet, by id: its IPv4 CidrBlock (an IPv6-only subnet has
    none) and the IPv6 blocks of its Ipv6CidrBlockAssociationSet that are not being removed."""
    with aws_errors("describe the service's subnets"):
        subnets = ec2.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
    ranges: dict[str, list[str]] = {}
    for s in subnets:
        found = [str(s["CidrBlock"])] if s.get("CidrBlock") else []
        for block in s.get("Ipv6CidrBlockAssociationSet", []):
            state = (block.get("Ipv6CidrBlockState") or {}).get("State", "")
            if block.get("Ipv6CidrBlock") and state not in _GONE_CIDR_STATES:
                found.append(str(block["Ipv6CidrBlock"]))
        ranges[str(s["SubnetId"])] = found
    return ranges


def vpc_subnets(ec2: EC2Client, vpc_id: str) -> list[Subnet]:
    """Every subnet of the VPC, each marked public or private by its route table."""
    with aws_errors(f"list the subnets of {vpc_id}"):
        raw_subnets: list[Any] = []
        for page in ec2.get_paginator("describe_subnets").paginate(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
        ):
            raw_subnets.extend(page.get("Subnets", []))
        tables: list[Any] = []
        for tables_page in ec2.get_paginator("describe_route_tables").paginate(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
        ):
            tables.extend(tables_page.get("RouteTables", []))
    main_table: dict[str, Any] | None = None
    by_subnet: dict[str, dict[str, Any]] = {}
    for table in tables:
        for assoc in table.get("Associations", []):
            if assoc.get("Main"):
                main_table = dict(table)
            elif assoc.get("SubnetId"):
                by_subnet[assoc["SubnetId"]] = dict(table)
    subnets = []
    for raw in raw_subnets:
        table = by_subnet.get(raw["SubnetId"], main_table) or {}
        igw = ""
        for route in table.get("Routes", []):
            gateway = str(route.get("GatewayId", ""))
            if route.get("DestinationCidrBlock") == "0.0.0.0/0" and gateway.startswith("igw-"):
                igw = gateway
        subnets.append(
            Subnet(
                id=raw["SubnetId"],
                vpc_id=raw["VpcId"],
                az=raw.get("AvailabilityZone", ""),
                cidr=raw.get("CidrBlock", ""),
                route_table=table.get("RouteTableId", ""),
                internet_gateway=igw,
                name=_tags(raw.get("Tags")).get("Name", ""),
            )
        )
    return sorted(subnets, key=lambda s: (s.az, s.id))


def _permissions(raw_group: Any) -> dict[RuleKey, tuple[str, str]]:
    """Description and account of each rule's source, as `describe_security_groups` lists them
    (moto leaves the description of a group-sourced rule out of `describe_security_group_rules`).
    """
    found: dict[RuleKey, tuple[str, str]] = {}
    for egress, perms in (
        (False, raw_group.get("IpPermissions", [])),
        (True, raw_group.get("IpPermissionsEgress", [])),
    ):
        for p in perms:
            base = (egress, str(p.get("IpProtocol", "")), int(p.get("FromPort", -1)))
            to_port = int(p.get("ToPort", -1))
            for pair in p.get("UserIdGroupPairs", []):
                found[(*base, to_port, pair.get("GroupId", ""))] = (
                    pair.get("Description", ""),
                    pair.get("UserId", ""),
                )
            for kind, key in (
                ("IpRanges", "CidrIp"),
                ("Ipv6Ranges", "CidrIpv6"),
                ("PrefixListIds", "PrefixListId"),
            ):
                for r in p.get(kind, []):
                    found[(*base, to_port, r.get(key, ""))] = (r.get("Description", ""), "")
    return found


def _rule(raw: Any, permissions: dict[RuleKey, tuple[str, str]], owner_id: str) -> Rule:
    ref = raw.get("ReferencedGroupInfo") or {}
    rule = Rule(
        id=raw.get("SecurityGroupRuleId", ""),
        group_id=raw.get("GroupId", ""),
        egress=bool(raw.get("IsEgress", False)),
        protocol=str(raw.get("IpProtocol", "")),
        from_port=int(raw.get("FromPort", -1)),
        to_port=int(raw.get("ToPort", -1)),
        cidr=raw.get("CidrIpv4") or raw.get("CidrIpv6") or "",
        source_group=ref.get("GroupId", ""),
        prefix_list=raw.get("PrefixListId", ""),
        tags=_tags(raw.get("Tags")),
    )
    description, user_id = permissions.get(
        rule.key(), (raw.get("Description", ""), ref.get("UserId", ""))
    )
    # Only a group of another account (a peered VPC) needs its account named.
    owner = owner_id or raw.get("GroupOwnerId", "")
    return replace(
        rule,
        description=description or raw.get("Description", ""),
        source_user_id=user_id if user_id and user_id != owner else "",
    )


def _raw_rules(ec2: EC2Client, group_id: str) -> list[dict[str, Any]]:
    """Every rule of the group, as described (all pages)."""
    with aws_errors(f"list the rules of security group {group_id}"):
        pages = ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        )
        return [dict(r) for page in pages for r in page.get("SecurityGroupRules", [])]


def _group(ec2: EC2Client, raw: Any) -> SecurityGroup:
    permissions = _permissions(raw)
    owner_id = raw.get("OwnerId", "")
    return SecurityGroup(
        id=raw["GroupId"],
        name=raw.get("GroupName", ""),
        vpc_id=raw.get("VpcId", ""),
        description=raw.get("Description", ""),
        tags=_tags(raw.get("Tags")),
        rules=[_rule(r, permissions, owner_id) for r in _raw_rules(ec2, raw["GroupId"])],
        owner_id=owner_id,
    )


def find_security_groups(ec2: EC2Client, name: str, vpc_id: str = "") -> list[SecurityGroup]:
    """The security groups called `name` (in `vpc_id` when given), with their rules."""
    filters: list[Any] = [{"Name": "group-name", "Values": [name]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    where = f" in {vpc_id}" if vpc_id else ""
    with aws_errors(f"look for security group {name}{where}"):
        resp = ec2.describe_security_groups(Filters=filters)
    return [_group(ec2, g) for g in resp.get("SecurityGroups", [])]


def find_security_group(ec2: EC2Client, name: str, vpc_id: str) -> SecurityGroup | None:
    """The security group called `name` in the VPC, with its rules; None when there is none."""
    groups = find_security_groups(ec2, name, vpc_id)
    return groups[0] if groups else None


def _describe_group(ec2: EC2Client, group_id: str) -> dict[str, Any]:
    """The group as described; an error when it does not exist."""
    with aws_errors(f"describe security group {group_id}"):
        return dict(ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0])


def describe_security_group(ec2: EC2Client, group_id: str) -> SecurityGroup:
    """The group with its rules; an error when it does not exist."""
    return _group(ec2, _describe_group(ec2, group_id))


def vpc_of_security_group(ec2: EC2Client, group_id: str) -> str:
    return str(_describe_group(ec2, group_id).get("VpcId", ""))


def _groups_with_id(ec2: EC2Client, group_id: str) -> list[Any] | None:
    resp = unless_missing(
        ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"),
        f"describe security group {group_id}",
        lambda: ec2.describe_security_groups(GroupIds=[group_id]),
    )
    return None if resp is None else list(resp.get("SecurityGroups", []))


def get_security_groups(
    ec2: EC2Client, group_ids: list[str]
) -> tuple[list[SecurityGroup], list[str]]:
    """The groups that exist (with rules) and the ids that do not."""
    found: list[SecurityGroup] = []
    missing: list[str] = []
    for group_id in group_ids:
        groups = _groups_with_id(ec2, group_id)
        if groups is None:
            missing.append(group_id)
        else:
            found.extend(_group(ec2, g) for g in groups)
    return found, missing


def create_security_group(
    ec2: EC2Client, name: str, vpc_id: str, description: str, tags: dict[str, str]
) -> str:
    """Create a tagged security group; returns its id (the request of `security_group_request`)."""
    return send_create_security_group(ec2, security_group_request(name, vpc_id, description, tags))


def authorize_from_group(
    ec2: EC2Client,
    group_id: str,
    port: int,
    source_group: str,
    description: str,
    tags: dict[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Allow TCP `port` into `group_id` from members of `source_group`; returns the rule id
    (the request of `ingress_from_group_request`, retried while EC2 does not see a new group)."""
    request = ingress_from_group_request(group_id, port, source_group, description, tags)
    return send_authorize_ingress(ec2, request, sleep=sleep)


def revoke_rule_request(rule: Rule) -> dict[str, Any]:
    """The RevokeSecurityGroupIngress parameters for exactly this inbound rule: by its rule id
    (`SecurityGroupRuleIds`) when it has one, else by its permission."""
    if rule.id:
        return {"GroupId": rule.group_id, "SecurityGroupRuleIds": [rule.id]}
    return {"GroupId": rule.group_id, "IpPermissions": [rule.permission()]}


def revoke_rule(ec2: EC2Client, rule: Rule) -> None:
    """Revoke exactly this inbound rule (by id); a rule that is already gone counts as revoked.

    AWS can answer success without revoking: `Return` false, or the rule listed in
    `UnknownIpPermissions` (EC2 API reference, RevokeSecurityGroupIngress), or, revoking by id,
    a `RevokedSecurityGroupRules` that does not name it. Each of those raises an AwsError.
    """
    from rexctl.errors import AwsError

    resp = unless_missing(
        ("InvalidSecurityGroupRuleId.NotFound", "InvalidPermission.NotFound"),
        f"revoke {rule.label()}",
        lambda: ec2.revoke_security_group_ingress(**revoke_rule_request(rule)),
    )
    if resp is None:
        return
    why = ""
    revoked = resp.get("RevokedSecurityGroupRules")
    if resp.get("Return") is False:
        why = "it answered Return=false"
    elif resp.get("UnknownIpPermissions"):
        why = "it lists the rule in UnknownIpPermissions"
    elif revoked is not None and rule.id not in {r.get("SecurityGroupRuleId") for r in revoked}:
        why = "RevokedSecurityGroupRules does not name it"
    if why:
        raise AwsError(
            f"AWS answered the revoke of {rule.label()} (rule {rule.id or 'without id'}) but did "
            f"not revoke it: {why}.",
            hint=f"Describe the group (`aws ec2 describe-security-group-rules --filters "
            f"Name=group-id,Values={rule.group_id}`) and revoke it by hand if it is still there.",
        )


def permission_present(ec2: EC2Client, rule: Rule) -> bool:
    """Whether the group still (or again) lets this rule's traffic in: same protocol, ports and
    source, whatever its id or description (one describe_security_group_rules)."""
    return any(_rule(raw, {}, "").same_permission(rule) for raw in _raw_rules(ec2, rule.group_id))


def authorize_rule_request(rule: Rule) -> dict[str, Any]:
    """The AuthorizeSecurityGroupIngress parameters that put this inbound rule back as it was:
    its permission (description included) and its tags."""
    kwargs: dict[str, Any] = {"GroupId": rule.group_id, "IpPermissions": [rule.permission()]}
    if rule.tags:
        kwargs["TagSpecifications"] = tag_specs("security-group-rule", rule.tags)
    return kwargs


def authorize_rule(ec2: EC2Client, rule: Rule) -> None:
    """Put the inbound rule back with its description and tags; a rule already there is fine."""
    try:
        with aws_errors(f"re-authorize {rule.label()}"):
            ec2.authorize_security_group_ingress(**authorize_rule_request(rule))
    except RexctlError as exc:
        if not answered(exc, "InvalidPermission.Duplicate"):
            raise


def rule_present(ec2: EC2Client, rule: Rule) -> bool:
    """True when the group holds exactly this rule again (ports, source, description)."""
    return any(
        r.same_permission(rule) and r.description == rule.description
        for r in describe_security_group(ec2, rule.group_id).rules
    )


def tag_request(resource_id: str, key: str, value: str) -> dict[str, Any]:
    """CreateTags/DeleteTags parameters for one tag of one resource. DeleteTags always names
    the key and the value: without `Tags` it would delete every tag of the resource, and with
    the value it deletes the tag only while it still has that value (EC2 API reference)."""
    return {"Resources": [resource_id], "Tags": [{"Key": key, "Value": value}]}


def tag_resource(ec2: EC2Client, resource_id: str, key: str, value: str) -> None:
    with aws_errors(f"tag {resource_id} with {key}"):
        ec2.create_tags(**tag_request(resource_id, key, value))


def untag_resource(ec2: EC2Client, resource_id: str, key: str, value: str) -> None:
    """Delete one tag (only while it has `value`); a tag or resource already gone is fine."""
    unless_missing(
        ("InvalidGroup.NotFound", "InvalidID"),
        f"remove tag {key} from {resource_id}",
        lambda: ec2.delete_tags(**tag_request(resource_id, key, value)),
    )


def security_group_tags(ec2: EC2Client, group_id: str) -> dict[str, str]:
    """The group's tags as described now ({} when the group is gone)."""
    groups = _groups_with_id(ec2, group_id)
    return _tags(groups[0].get("Tags")) if groups else {}


def delete_security_group(ec2: EC2Client, group_id: str) -> None:
    with aws_errors(f"delete security group {group_id}"):
        ec2.delete_security_group(GroupId=group_id)


def revoke_command(rule: Rule) -> str:
    """The exact AWS CLI command that removes one ingress rule."""
    return (
        f"aws ec2 revoke-security-group-ingress --group-id {rule.group_id} "
        f"--security-group-rule-ids {rule.id}"
    )


def security_group_snapshot(ec2: EC2Client, group_id: str) -> dict[str, Any]:
    """A normalized describe of the group (JSON, kept in drill journals as the "before"): what a
    rule change could alter, minus rule ids.

    Rule ids are left out on purpose: AWS (and moto) give a re-authorized rule a new id, and the
    id is not part of what the rule allows. Journals already hold this shape: keep it.
    """
    group = _describe_group(ec2, group_id)

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
        for r in _raw_rules(ec2, group_id)
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


# Provisioning's requests (step 8): built once, checked against AWS's rules at plan time
# (`rexctl.aws.rules`), and sent as built.


def security_group_request(
    name: str, vpc_id: str, description: str, tags: dict[str, str]
) -> dict[str, Any]:
    """The CreateSecurityGroup request, tagged in the creating call."""
    return {
        "GroupName": name,
        "Description": description,
        "VpcId": vpc_id,
        "TagSpecifications": tag_specs("security-group", tags),
    }


def send_create_security_group(ec2: EC2Client, request: dict[str, Any]) -> str:
    """CreateSecurityGroup as built by `security_group_request`; returns the new group's id."""
    with aws_errors(f"create security group {request['GroupName']} in {request['VpcId']}"):
        resp = ec2.create_security_group(**request)
    return str(resp["GroupId"])


def ingress_from_group_request(
    group_id: Any, port: int, source_group: str, description: str, tags: dict[str, str]
) -> dict[str, Any]:
    """The AuthorizeSecurityGroupIngress request that lets TCP `port` into `group_id` from the
    members of `source_group` (`group_id` may be a plan's placeholder for a group to create)."""
    return {
        "GroupId": group_id,
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "UserIdGroupPairs": [{"GroupId": source_group, "Description": description}],
            }
        ],
        "TagSpecifications": tag_specs("security-group-rule", tags),
    }


def send_authorize_ingress(
    ec2: EC2Client,
    request: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 30.0,
) -> str:
    """AuthorizeSecurityGroupIngress as built by `ingress_from_group_request`; returns the rule
    id. A group created a moment ago may not be found yet (EC2 answers InvalidGroup.NotFound, its
    eventual consistency): retried with exponential backoff for at most `timeout` seconds."""
    perm = request["IpPermissions"][0]
    source = perm["UserIdGroupPairs"][0]["GroupId"]
    resp = eventually(
        "InvalidGroup.NotFound",
        f"allow port {perm['FromPort']} into {request['GroupId']} from {source}",
        lambda: ec2.authorize_security_group_ingress(**request),
        sleep=sleep,
        timeout=timeout,
    )
    rules = resp.get("SecurityGroupRules", [])
    return str(rules[0]["SecurityGroupRuleId"]) if rules else ""


def authorize_egress_command(
    group_id: str, port: int, *, to_group: str = "", cidrs: Sequence[str] = ()
) -> str:
    """The AWS CLI command that lets `group_id` send TCP `port` to `to_group` (or to `cidrs`)."""
    perm: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if to_group:
        perm["UserIdGroupPairs"] = [{"GroupId": to_group}]
    else:
        perm["IpRanges"] = [{"CidrIp": c} for c in cidrs]
    text = shlex.quote(json.dumps([perm], separators=(",", ":")))
    return f"aws ec2 authorize-security-group-egress --group-id {group_id} --ip-permissions {text}"
