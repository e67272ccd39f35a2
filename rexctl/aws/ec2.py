"""EC2 adapter: the VPC's subnets (public or private by their route table) and security groups.

A subnet is public when the route table it uses (its own association, or else the VPC's main
table) sends 0.0.0.0/0 to an internet gateway (`igw-...`). A NAT gateway route or no default
route at all keeps it private. This is the rule of guide step 7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors, error_code, translate

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


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


@dataclass(frozen=True)
class Rule:
    """One security-group rule, as `describe_security_group_rules` reports it."""

    id: str
    group_id: str
    egress: bool
    protocol: str  # "tcp", "udp", "-1" (all) ...
    from_port: int
    to_port: int
    cidr: str = ""  # IPv4 or IPv6 CIDR source
    source_group: str = ""
    prefix_list: str = ""
    description: str = ""

    def covers(self, port: int) -> bool:
        """Whether this rule lets TCP traffic to `port` in."""
        if self.protocol == "-1":
            return True
        if self.protocol not in ("tcp", "6"):
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


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    vpc_id: str
    description: str
    tags: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    def ingress(self) -> list[Rule]:
        return [r for r in self.rules if not r.egress]


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


def _rule(raw: Any) -> Rule:
    ref = raw.get("ReferencedGroupInfo") or {}
    return Rule(
        id=raw.get("SecurityGroupRuleId", ""),
        group_id=raw.get("GroupId", ""),
        egress=bool(raw.get("IsEgress", False)),
        protocol=str(raw.get("IpProtocol", "")),
        from_port=int(raw.get("FromPort", -1)),
        to_port=int(raw.get("ToPort", -1)),
        cidr=raw.get("CidrIpv4") or raw.get("CidrIpv6") or "",
        source_group=ref.get("GroupId", ""),
        prefix_list=raw.get("PrefixListId", ""),
        description=raw.get("Description", ""),
    )


def _rules(ec2: EC2Client, group_id: str) -> list[Rule]:
    with aws_errors(f"list the rules of security group {group_id}"):
        rules: list[Rule] = []
        for page in ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        ):
            rules.extend(_rule(r) for r in page.get("SecurityGroupRules", []))
    return rules


def _group(ec2: EC2Client, raw: Any) -> SecurityGroup:
    return SecurityGroup(
        id=raw["GroupId"],
        name=raw.get("GroupName", ""),
        vpc_id=raw.get("VpcId", ""),
        description=raw.get("Description", ""),
        tags=_tags(raw.get("Tags")),
        rules=_rules(ec2, raw["GroupId"]),
    )


def find_security_group(ec2: EC2Client, name: str, vpc_id: str) -> SecurityGroup | None:
    """The security group called `name` in the VPC, with its rules; None when there is none."""
    with aws_errors(f"look for security group {name} in {vpc_id}"):
        resp = ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [vpc_id]},
            ]
        )
    groups = resp.get("SecurityGroups", [])
    return _group(ec2, groups[0]) if groups else None


def find_security_groups_named(ec2: EC2Client, name: str) -> list[SecurityGroup]:
    with aws_errors(f"look for security group {name}"):
        resp = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    return [_group(ec2, g) for g in resp.get("SecurityGroups", [])]


def get_security_groups(
    ec2: EC2Client, group_ids: list[str]
) -> tuple[list[SecurityGroup], list[str]]:
    """The groups that exist (with rules) and the ids that do not."""
    import botocore.exceptions

    found: list[SecurityGroup] = []
    missing: list[str] = []
    for group_id in group_ids:
        try:
            resp = ec2.describe_security_groups(GroupIds=[group_id])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"):
                missing.append(group_id)
                continue
            raise translate(exc, f"describe security group {group_id}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise translate(exc, f"describe security group {group_id}") from exc
        found.extend(_group(ec2, g) for g in resp.get("SecurityGroups", []))
    return found, missing


def create_security_group(
    ec2: EC2Client, name: str, vpc_id: str, description: str, tags: dict[str, str]
) -> str:
    with aws_errors(f"create security group {name} in {vpc_id}"):
        resp = ec2.create_security_group(
            GroupName=name,
            Description=description,
            VpcId=vpc_id,
            TagSpecifications=tag_specs("security-group", tags),
        )
    return str(resp["GroupId"])


def authorize_from_group(
    ec2: EC2Client,
    group_id: str,
    port: int,
    source_group: str,
    description: str,
    tags: dict[str, str],
) -> str:
    """Allow TCP `port` into `group_id` from members of `source_group`; returns the rule id."""
    with aws_errors(f"allow port {port} into {group_id} from {source_group}"):
        resp = ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "UserIdGroupPairs": [{"GroupId": source_group, "Description": description}],
                }
            ],
            TagSpecifications=tag_specs("security-group-rule", tags),
        )
    rules = resp.get("SecurityGroupRules", [])
    return str(rules[0]["SecurityGroupRuleId"]) if rules else ""


def delete_security_group(ec2: EC2Client, group_id: str) -> None:
    with aws_errors(f"delete security group {group_id}"):
        ec2.delete_security_group(GroupId=group_id)


def revoke_command(rule: Rule) -> str:
    """The exact AWS CLI command that removes one ingress rule."""
    return (
        f"aws ec2 revoke-security-group-ingress --group-id {rule.group_id} "
        f"--security-group-rule-ids {rule.id}"
    )
