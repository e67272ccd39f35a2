"""What AWS documents about the requests rexctl sends, checked before they are sent.

botocore validates a request against its model: types, required members, string and list lengths.
Everything else AWS states only in prose (character sets, parameter combinations, values that
depend on other values), and moto checks none of it: a request AWS refuses passes every test
that runs against moto. This module holds those rules, for exactly the write operations rexctl
calls, each with the place where AWS documents it and the error code AWS answers with.

Three users, one function:

- rexctl itself: `check(service, operation, params)` is pure (no I/O, no boto3 import), so a
  plan can be checked before anything is sent.
- the test suite: `install(client)` hooks `check` into a boto3 client's
  `before-parameter-build` event (it sees the caller's kwargs, before botocore's own validation
  and long before moto), and raises the `ClientError` AWS would answer with. rexctl's error
  translation then handles it as it handles AWS's refusal.
- the local sandbox (a moto server): `refusal(violations)` is the parsed error response to
  answer with.

The operations covered are those rexctl calls (`grep` of `rexctl/`): EC2 CreateSecurityGroup,
AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress, DeleteSecurityGroup, CreateNetworkAcl,
CreateNetworkAclEntry, DeleteNetworkAclEntry, ReplaceNetworkAclAssociation, DeleteNetworkAcl
(break-nacl's copy of an ACL), CreateTags and DeleteTags (break-sg's mark on the cache's security
group); ElastiCache CreateCacheSubnetGroup,
DeleteCacheSubnetGroup, CreateReplicationGroup, ModifyReplicationGroup, DeleteReplicationGroup,
AddTagsToResource (the record of the last AUTH token change);
ECS RegisterTaskDefinition, UpdateService, DeregisterTaskDefinition; Secrets Manager
CreateSecret, DeleteSecret, PutSecretValue and UpdateSecretVersionStage (`rexctl rotate-token`'s
new token, staged as AWSPENDING, then made AWSCURRENT). Any other operation: `check` returns [].

`params` are the kwargs of the boto3 method (PascalCase, camelCase for ECS). A value that is not
of the documented type (say a plan's placeholder for an id not known yet) is skipped, not
refused: botocore's own validation reports wrong types. The rule text of a violation names the
offending characters where that helps, never a secret's value (AuthToken).

Sources: "... API reference, Shape.Member" is the API reference entry (the same text is the
`documentation` of that member in botocore's service-2.json); user-guide sources name the page.
Error codes: EC2 answers a bad value with InvalidParameterValue, a missing one with
MissingParameter, a bad pair with InvalidParameterCombination (EC2 API reference, "Error codes");
ElastiCache with InvalidParameterValue / InvalidParameterCombination (the Errors section of each
action); ECS RegisterTaskDefinition with ClientException; Secrets Manager with
ValidationException / InvalidParameterException. Where the code comes from an observed AWS
answer rather than a page, that answer is quoted in a comment beside the rule.

Judgement calls, where AWS's own texts differ:

- Rule descriptions: IpRange and Ipv6Range allow `&`, UserIdGroupPair and PrefixListId do not
  (each shape's Description says so); each is checked against its own list.
- EC2 tag keys: the API reference (Tag.Key) says at most 127 characters, the user guide's "Tag
  restrictions" 128. The API reference is enforced: a 128-character key is refused here although
  AWS may accept it.
- Secrets Manager names: AWS's error message for a bad name also lists `!` as allowed, the API
  reference does not; the reference is enforced.
- ECS tags: the code (InvalidParameterException) is what ECS answers for an `aws:` key; no page
  states it for RegisterTaskDefinition.
- Engine is compared case-insensitively, and network ACL protocols by number or name (tcp, udp,
  icmp), so that only what is surely refused is refused.

Left out (considered, and why):

- Constraints botocore already enforces from the model: minimum string lengths and list sizes.
  botocore checks no maximum (its validator reads only `min`): the maxima rexctl's own values
  could reach are rules here (PutSecretValue's ClientRequestToken and VersionStages,
  UpdateSecretVersionStage's version ids); those it cannot reach (Secrets Manager Name 512, ECS
  tag key 128 / value 256) are not checked. Required members are checked here anyway, because
  `check` also runs on plans, where botocore does not.
- EC2 tag characters: EC2 allows any character in tags (EC2 user guide, "Tag restrictions";
  only other services restrict them). ElastiCache likewise ("Although ElastiCache allows for any
  character in its tags ...").
- ElastiCache tag keys starting with `aws:`: the user guide says the prefix "is reserved for AWS
  use" (such tags cannot be edited or deleted), not that a request using it is refused.
- AuthorizeSecurityGroupIngress "exactly one of the following sources": one IpPermission may
  list several IpRanges and groups (AWS accepts that), so only "at least one source" is checked.
- Network ACL entries per ACL (20 per direction by default, Amazon VPC quotas) and security
  group rules per group: quotas depend on what already exists and on the account, not on the
  request.
- DeleteNetworkAclEntry, DeleteSecurityGroup, DeleteCacheSubnetGroup, DeleteReplicationGroup,
  DeregisterTaskDefinition, UpdateService, DeleteSecret: nothing checkable from the request is
  documented for the parameters rexctl sends, beyond required members.
- MultiAZEnabled=true requiring AutomaticFailoverEnabled=true: other tools enforce it and AWS's
  CLI example sets both, but no AWS page read states it. What is documented (at least one
  replica) is checked.
- ModifyReplicationGroup MultiAZEnabled / AutomaticFailoverEnabled and DecreaseReplicaCount to 0
  while Multi-AZ is on: whether they are allowed depends on the group's current replicas, which
  the request does not carry.
- TransitEncryptionMode: "preferred first, then required", "TransitEncryptionEnabled=true on
  an existing cluster needs TransitEncryptionMode=preferred", the engine versions that allow it,
  and the AUTH token's conditions on an existing group (in-transit encryption on, engine 5.0.5 or
  later, SET only after ROTATE and with the token rotated last) depend on the group: they are
  checked by `check_group(state, ...)`, not by `check`. That the mode needs
  TransitEncryptionEnabled=true in a create is not stated (CreateReplicationGroup says only that
  both "can" be set in the same request).
- ModifyReplicationGroup AuthToken without AuthTokenUpdateStrategy: the API reference says each
  "must be specified with" the other, but also that ROTATE is the default when no strategy is
  given; only a SET or ROTATE strategy without a token is refused, and DELETE without the user
  group it moves to (DELETE is "allowed only when transitioning to RBAC").
- AUTH token characters: the ModifyReplicationGroup API reference forbids only / " @ %, while the
  user guide's AUTH overview (which states the constraints of every AUTH token) allows no
  non-alphanumeric character but ! & # $ ^ < > -. The guide's stricter rule is enforced for
  modify as for create.
- Whether TransitEncryptionEnabled=false (turning in-transit encryption off on a running group)
  is accepted: AWS documents only enabling it on an existing group, so nothing is said either way
  and nothing is checked; rexctl does not send it (docs/provision.md).
- ReplicationGroupId and CacheSubnetGroupName are stored in lower case: AWS accepts upper case
  and lower-cases it, so it is not a refusal (rexctl must compare names case-insensitively).
- Secrets Manager Name "do not end with a hyphen followed by six characters": advice (it
  confuses partial-ARN lookups), not a refusal. Secrets Manager tag rules: the API reference
  only points to the general tagging quotas; their lengths are in botocore's model.
- ECS `logConfiguration.secretOptions` without an execution role, Fargate cpu/memory
  combinations (the table in RegisterTaskDefinition.memory, which depends on platform versions
  and accepts "1 vCPU"/"1GB" strings), port ranges beyond "ports are given": not checked.
- DeleteTags without `Tags` deletes every user-defined tag of the resources (EC2 API reference,
  DeleteTags.Tags): AWS accepts it, so it is not a rule here; rexctl always names the key and
  the value of the one tag it deletes.
- PutSecretValue "Do not call PutSecretValue at a sustained rate of more than once every 10
  minutes" (Secrets Manager keeps 100 versions, and every version of the last 24 hours): a quota
  over time, not a refusal of one request. `rexctl rotate-token` puts one version per rotation.
- GetSecretValue VersionId and VersionStage "must refer to the same secret version": rexctl
  gives one or the other, never both (and reads are not checked here).
- Which staging label a version already carries (UpdateSecretVersionStage: a label attached to
  another version must be removed from it in the same request) depends on the secret: checked
  by `check_secret(state, ...)`, as the group's rules are by `check_group`.
- Operations rexctl does not call (AuthorizeSecurityGroupEgress,
  Increase/DecreaseReplicaCount, ECS TagResource, Secrets Manager TagResource).
- ReplaceNetworkAclAssociation and DeleteNetworkAcl: only their required members; that AWS
  refuses to delete an ACL a subnet still uses depends on the account, not the request.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COVERED",
    "REQUIRED_MEMBERS",
    "RULES",
    "GroupState",
    "Rule",
    "SecretState",
    "Violation",
    "check",
    "check_group",
    "check_secret",
    "install",
    "refusal",
]


@dataclass(frozen=True)
class Violation:
    """One thing in one request that AWS documents it refuses."""

    service: str  # botocore service name: "ec2", "elasticache", "ecs", "secretsmanager"
    operation: str  # botocore operation name: "AuthorizeSecurityGroupIngress"
    parameter: str  # path of the offending parameter: "IpPermissions[0].UserIdGroupPairs[0]..."
    rule: str  # what AWS requires, in one sentence
    source: str  # where AWS documents it
    code: str  # the error code AWS answers with

    def message(self) -> str:
        return f"{self.operation}: {self.parameter} {self.rule} ({self.source})."


@dataclass(frozen=True)
class Rule:
    """One documented constraint: what AWS requires, where it says so, how it answers."""

    requirement: str  # completes "<parameter> ...", e.g. "must be at most 255 characters long"
    source: str
    code: str


_ALL: list[Rule] = []


def _rule(requirement: str, source: str, code: str) -> Rule:
    rule = Rule(requirement, source, code)
    _ALL.append(rule)
    return rule


class _Found:
    """The violations of one request."""

    def __init__(self, service: str, operation: str) -> None:
        self.service = service
        self.operation = operation
        self.violations: list[Violation] = []

    def add(self, parameter: str, rule: Rule, detail: str = "") -> None:
        self.violations.append(
            Violation(
                service=self.service,
                operation=self.operation,
                parameter=parameter,
                rule=rule.requirement + detail,
                source=rule.source,
                code=rule.code,
            )
        )


# --- small helpers ----------------------------------------------------------------------------

_ALNUM = frozenset(string.ascii_letters + string.digits)


def _items(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, item) for each mapping in a list; nothing for anything else."""
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                yield i, item


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bad_chars(value: str, allowed: Callable[[str], bool]) -> str:
    """The distinct characters of `value` that are not allowed, quoted (at most five)."""
    bad: list[str] = []
    for c in value:
        if not allowed(c) and c not in bad:
            bad.append(c)
    shown = ", ".join(repr(c) for c in bad[:5])
    return shown + (", ..." if len(bad) > 5 else "")


def _chars(found: _Found, path: str, value: Any, allowed: frozenset[str], rule: Rule) -> None:
    if isinstance(value, str):
        bad = _bad_chars(value, allowed.__contains__)
        if bad:
            found.add(path, rule, f" (it contains {bad})")


def _max_len(found: _Found, path: str, value: Any, limit: int, rule: Rule) -> None:
    if isinstance(value, str) and len(value) > limit:
        found.add(path, rule, f" (it has {len(value)})")


def _one_of(found: _Found, path: str, value: Any, allowed: Sequence[str], rule: Rule) -> None:
    if isinstance(value, str) and value not in allowed:
        found.add(path, rule, f" (not {value!r})")


# --- required members (botocore checks them when sending; plans are checked before that) -------

REQUIRED_MEMBERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ec2", "CreateSecurityGroup"): ("GroupName", "Description"),
    ("ec2", "DeleteSecurityGroup"): (),
    ("ec2", "AuthorizeSecurityGroupIngress"): (),
    ("ec2", "RevokeSecurityGroupIngress"): (),
    ("ec2", "CreateNetworkAclEntry"): (
        "NetworkAclId",
        "RuleNumber",
        "Protocol",
        "RuleAction",
        "Egress",
    ),
    ("ec2", "DeleteNetworkAclEntry"): ("NetworkAclId", "RuleNumber", "Egress"),
    ("ec2", "CreateNetworkAcl"): ("VpcId",),
    ("ec2", "ReplaceNetworkAclAssociation"): ("AssociationId", "NetworkAclId"),
    ("ec2", "DeleteNetworkAcl"): ("NetworkAclId",),
    ("ec2", "CreateTags"): ("Resources", "Tags"),
    ("ec2", "DeleteTags"): ("Resources",),
    ("elasticache", "CreateCacheSubnetGroup"): (
        "CacheSubnetGroupName",
        "CacheSubnetGroupDescription",
        "SubnetIds",
    ),
    ("elasticache", "DeleteCacheSubnetGroup"): ("CacheSubnetGroupName",),
    ("elasticache", "CreateReplicationGroup"): (
        "ReplicationGroupId",
        "ReplicationGroupDescription",
    ),
    ("elasticache", "ModifyReplicationGroup"): ("ReplicationGroupId",),
    ("elasticache", "DeleteReplicationGroup"): ("ReplicationGroupId",),
    ("elasticache", "AddTagsToResource"): ("ResourceName", "Tags"),
    ("ecs", "RegisterTaskDefinition"): ("family", "containerDefinitions"),
    ("ecs", "UpdateService"): ("service",),
    ("ecs", "DeregisterTaskDefinition"): ("taskDefinition",),
    ("secretsmanager", "CreateSecret"): ("Name",),
    ("secretsmanager", "DeleteSecret"): ("SecretId",),
    ("secretsmanager", "PutSecretValue"): ("SecretId",),
    ("secretsmanager", "UpdateSecretVersionStage"): ("SecretId", "VersionStage"),
}
REQUIRED = _rule(
    "is required",
    "the operation's API reference: Required: Yes (botocore's model marks it required)",
    "MissingParameter",  # AWS common errors: "a required parameter ... is not supplied"
)


# --- EC2: security groups ---------------------------------------------------------------------

# a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$* ; UserIdGroupPair and PrefixListId leave out &.
_SG_CHARS = frozenset(_ALNUM | set(" ._-:/()#,@[]+=&;{}!$*"))
_SG_CHARS_NO_AMP = _SG_CHARS - {"&"}

SG_NAME_LENGTH = _rule(
    "must be at most 255 characters long",
    "EC2 API reference, CreateSecurityGroup.GroupName",
    "InvalidParameterValue",
)
SG_NAME_CHARS = _rule(
    "may contain only a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*",
    "EC2 API reference, CreateSecurityGroup.GroupName",
    "InvalidParameterValue",
)
SG_NAME_PREFIX = _rule(
    "can't start with sg-",
    "EC2 API reference, CreateSecurityGroup.GroupName",
    "InvalidParameterValue",
)
SG_DESCRIPTION_LENGTH = _rule(
    "must be at most 255 characters long",
    "EC2 API reference, CreateSecurityGroup.GroupDescription",
    "InvalidParameterValue",
)
SG_DESCRIPTION_CHARS = _rule(
    "may contain only a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*",
    "EC2 API reference, CreateSecurityGroup.GroupDescription",
    "InvalidParameterValue",
)

# (IpPermission member, its shape, characters allowed in its Description)
_SOURCES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("IpRanges", "IpRange", _SG_CHARS),
    ("Ipv6Ranges", "Ipv6Range", _SG_CHARS),
    ("PrefixListIds", "PrefixListId", _SG_CHARS_NO_AMP),
    ("UserIdGroupPairs", "UserIdGroupPair", _SG_CHARS_NO_AMP),
)
RULE_DESCRIPTION_LENGTH = {
    shape: _rule(
        "must be at most 255 characters long",
        f"EC2 API reference, {shape}.Description",
        "InvalidParameterValue",
    )
    for _, shape, _ in _SOURCES
}
RULE_DESCRIPTION_CHARS = {
    shape: _rule(
        "may contain only a-z, A-Z, 0-9, spaces and "
        + ("._-:/()#,@[]+=&;{}!$*" if "&" in chars else "._-:/()#,@[]+=;{}!$*"),
        f"EC2 API reference, {shape}.Description",
        "InvalidParameterValue",
    )
    for _, shape, chars in _SOURCES
}
PERMISSION_PROTOCOL = _rule(
    "is required: every rule needs a protocol",
    "EC2 API reference, AuthorizeSecurityGroupIngress (You must specify a protocol for each rule)",
    "MissingParameter",
)
PERMISSION_PORTS = _rule(
    "must be given with both FromPort and ToPort for tcp, udp and icmp",
    "EC2 API reference, IpPermission.IpProtocol (For tcp, udp, and icmp, you must specify a "
    "port range)",
    "InvalidParameterValue",  # AWS: "Must specify both from and to ports with TCP/UDP."
)
PERMISSION_ICMP_ALL = _rule(
    "must be -1 when FromPort is -1 (all ICMP types need all ICMP codes)",
    "EC2 API reference, IpPermission.ToPort",
    "InvalidParameterValue",
)
PERMISSION_SOURCE = _rule(
    "must name a source: an IPv4 or IPv6 range, a prefix list or a security group",
    "EC2 API reference, AuthorizeSecurityGroupIngress (You must specify exactly one of the "
    "following sources)",
    "MissingParameter",
)
REVOKE_GROUP_AND_CIDR = _rule(
    "can't name both a source security group and a CIDR range in one set of permissions",
    "EC2 API reference, RevokeSecurityGroupIngress.IpPermissions",
    "InvalidParameterCombination",
)
REVOKE_PORTS = _rule(
    "must be given with FromPort and ToPort for tcp, udp (the ports) and icmp (type and code)",
    "EC2 API reference, RevokeSecurityGroupIngress (For the TCP and UDP protocols, you must also "
    "specify the destination port or range of ports. For the ICMP protocol, you must also "
    "specify the ICMP type and code.)",
    "InvalidParameterValue",
)

_TCP_UDP_ICMP = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp"}


def _protocol(value: Any) -> str:
    """'tcp', 'udp', 'icmp' for those protocols by name or number; the value otherwise."""
    text = str(value).lower() if isinstance(value, str | int) else ""
    return _TCP_UDP_ICMP.get(text, text)


def _rule_descriptions(found: _Found, path: str, perm: Mapping[str, Any]) -> None:
    for member, shape, allowed in _SOURCES:
        for j, source in _items(perm.get(member)):
            where = f"{path}.{member}[{j}].Description"
            description = source.get("Description")
            _max_len(found, where, description, 255, RULE_DESCRIPTION_LENGTH[shape])
            _chars(found, where, description, allowed, RULE_DESCRIPTION_CHARS[shape])


def _has_source(perm: Mapping[str, Any]) -> bool:
    return any(
        isinstance(perm.get(member), list | tuple) and len(perm[member]) > 0
        for member, _, _ in _SOURCES
    )


# --- EC2: tags --------------------------------------------------------------------------------

EC2_TAG_KEY_LENGTH = _rule(
    "must be at most 127 characters long",
    "EC2 API reference, Tag.Key",
    "InvalidParameterValue",
)
EC2_TAG_KEY_PREFIX = _rule(
    "may not begin with aws:",
    "EC2 API reference, Tag.Key",
    "InvalidParameterValue",  # AWS: "Tag keys starting with 'aws:' are reserved for internal use"
)
EC2_TAG_VALUE_LENGTH = _rule(
    "must be at most 256 characters long",
    "EC2 API reference, Tag.Value",
    "InvalidParameterValue",
)
EC2_TAG_COUNT = _rule(
    "may hold at most 50 tags: each resource can have a maximum of 50 tags",
    "EC2 API reference, CreateTags",
    "TagLimitExceeded",
)
EC2_TAG_RESOURCES = _rule(
    "may name at most 1000 resources",
    "EC2 API reference, CreateTags.Resources and DeleteTags.Resources (Up to 1000 resource IDs)",
    "InvalidParameterValue",
)
EC2_TAG_UNIQUE = _rule(
    "must be unique per resource",
    "EC2 API reference, CreateTags (Tag keys must be unique per resource)",
    "InvalidParameterValue",
)


def _ec2_tag_specs(found: _Found, params: Mapping[str, Any]) -> None:
    for i, spec in _items(params.get("TagSpecifications")):
        _ec2_tags(found, f"TagSpecifications[{i}].Tags", spec.get("Tags"))


def _ec2_tags(found: _Found, path: str, tags: Any) -> None:
    if isinstance(tags, list | tuple) and len(tags) > 50:
        found.add(path, EC2_TAG_COUNT, f" (it has {len(tags)})")
    seen: set[str] = set()
    for j, tag in _items(tags):
        key, value = tag.get("Key"), tag.get("Value")
        _max_len(found, f"{path}[{j}].Key", key, 127, EC2_TAG_KEY_LENGTH)
        if isinstance(key, str) and key.startswith("aws:"):
            found.add(f"{path}[{j}].Key", EC2_TAG_KEY_PREFIX)
        if isinstance(key, str):
            if key in seen:
                found.add(f"{path}[{j}].Key", EC2_TAG_UNIQUE, f" ({key!r} repeats)")
            seen.add(key)
        _max_len(found, f"{path}[{j}].Value", value, 256, EC2_TAG_VALUE_LENGTH)


def _create_tags(params: Mapping[str, Any], found: _Found) -> None:
    _ec2_tags(found, "Tags", params.get("Tags"))
    resources = params.get("Resources")
    if isinstance(resources, list | tuple) and len(resources) > 1000:
        found.add("Resources", EC2_TAG_RESOURCES, f" (it has {len(resources)})")


def _delete_tags(params: Mapping[str, Any], found: _Found) -> None:
    resources = params.get("Resources")
    if isinstance(resources, list | tuple) and len(resources) > 1000:
        found.add("Resources", EC2_TAG_RESOURCES, f" (it has {len(resources)})")


def _create_security_group(params: Mapping[str, Any], found: _Found) -> None:
    name = params.get("GroupName")
    _max_len(found, "GroupName", name, 255, SG_NAME_LENGTH)
    _chars(found, "GroupName", name, _SG_CHARS, SG_NAME_CHARS)
    if isinstance(name, str) and name.startswith("sg-"):
        found.add("GroupName", SG_NAME_PREFIX)
    description = params.get("Description")  # GroupDescription in the API
    _max_len(found, "Description", description, 255, SG_DESCRIPTION_LENGTH)
    _chars(found, "Description", description, _SG_CHARS, SG_DESCRIPTION_CHARS)
    _ec2_tag_specs(found, params)


def _authorize_ingress(params: Mapping[str, Any], found: _Found) -> None:
    for i, perm in _items(params.get("IpPermissions")):
        path = f"IpPermissions[{i}]"
        protocol = _protocol(perm.get("IpProtocol"))
        if perm.get("IpProtocol") is None:
            found.add(f"{path}.IpProtocol", PERMISSION_PROTOCOL)
        elif protocol in ("tcp", "udp", "icmp"):
            if perm.get("FromPort") is None or perm.get("ToPort") is None:
                missing = "FromPort" if perm.get("FromPort") is None else "ToPort"
                found.add(f"{path}.{missing}", PERMISSION_PORTS, f" (IpProtocol {protocol})")
            elif (
                protocol == "icmp"
                and _int(perm.get("FromPort")) == -1
                and _int(perm.get("ToPort")) not in (-1, None)
            ):
                found.add(f"{path}.ToPort", PERMISSION_ICMP_ALL)
        if not _has_source(perm):
            found.add(path, PERMISSION_SOURCE)
        _rule_descriptions(found, path, perm)
    _ec2_tag_specs(found, params)


def _revoke_ingress(params: Mapping[str, Any], found: _Found) -> None:
    for i, perm in _items(params.get("IpPermissions")):
        path = f"IpPermissions[{i}]"
        protocol = _protocol(perm.get("IpProtocol"))
        if protocol in ("tcp", "udp", "icmp") and (
            perm.get("FromPort") is None or perm.get("ToPort") is None
        ):
            missing = "FromPort" if perm.get("FromPort") is None else "ToPort"
            found.add(f"{path}.{missing}", REVOKE_PORTS, f" (IpProtocol {protocol})")
        groups = perm.get("UserIdGroupPairs")
        cidrs = [perm.get("IpRanges"), perm.get("Ipv6Ranges")]
        if (
            isinstance(groups, list | tuple)
            and groups
            and any(isinstance(c, list | tuple) and c for c in cidrs)
        ):
            found.add(path, REVOKE_GROUP_AND_CIDR)
        _rule_descriptions(found, path, perm)


# --- EC2: network ACL entries -----------------------------------------------------------------

ACL_RULE_NUMBER = _rule(
    "must be from 1 to 32766 (32767 to 65535 are reserved for internal use)",
    "EC2 API reference, CreateNetworkAclEntry.RuleNumber",
    "InvalidParameterValue",
)
ACL_PORT_RANGE = _rule(
    "is required for protocol 6 (TCP) and 17 (UDP)",
    "EC2 API reference, CreateNetworkAclEntry.PortRange",
    "MissingParameter",
)
ACL_ICMP = _rule(
    "is required for protocol 1 (ICMP), and for 58 (ICMPv6) with an IPv6 CIDR block",
    "EC2 API reference, CreateNetworkAclEntry.IcmpTypeCode",
    "MissingParameter",  # AWS: "The request must contain the parameter icmpTypeCode.type"
)


def _create_network_acl_entry(params: Mapping[str, Any], found: _Found) -> None:
    number = _int(params.get("RuleNumber"))
    if number is not None and not 1 <= number <= 32766:
        found.add("RuleNumber", ACL_RULE_NUMBER, f" (not {number})")
    protocol = _protocol(params.get("Protocol"))
    if protocol in ("tcp", "udp") and not isinstance(params.get("PortRange"), Mapping):
        found.add("PortRange", ACL_PORT_RANGE, f" (Protocol {params.get('Protocol')!r})")
    icmpv6_on_ipv6 = protocol in ("58", "icmpv6") and params.get("Ipv6CidrBlock") is not None
    if (protocol == "icmp" or icmpv6_on_ipv6) and not isinstance(
        params.get("IcmpTypeCode"), Mapping
    ):
        found.add("IcmpTypeCode", ACL_ICMP, f" (Protocol {params.get('Protocol')!r})")


# --- ElastiCache ------------------------------------------------------------------------------

EC_GROUP_ID = _rule(
    "must be 1 to 40 letters, digits or hyphens, begin with a letter, and neither end with a "
    "hyphen nor contain two consecutive hyphens",
    "ElastiCache API reference, CreateReplicationGroup.ReplicationGroupId",
    "InvalidParameterValue",
)
EC_SUBNET_GROUP_NAME = _rule(
    "must be at most 255 letters, digits or hyphens",
    "ElastiCache API reference, CreateCacheSubnetGroup.CacheSubnetGroupName",
    "InvalidParameterValue",
)
EC_ENGINE = _rule(
    "must be valkey or redis",
    "ElastiCache API reference, CreateReplicationGroup.Engine",
    "InvalidParameterValue",
)
EC_NUM_CACHE_CLUSTERS = _rule(
    "must be from 1 to 6 (1 primary plus up to 5 replicas)",
    "ElastiCache API reference, CreateReplicationGroup.NumCacheClusters",
    "InvalidParameterValue",
)
EC_REPLICAS_PER_NODE_GROUP = _rule(
    "must be from 0 to 5",
    "ElastiCache API reference, CreateReplicationGroup.ReplicasPerNodeGroup",
    "InvalidParameterValue",
)
EC_FAILOVER_NEEDS_REPLICA = _rule(
    "must be at least 2 when AutomaticFailoverEnabled is true",
    "ElastiCache API reference, CreateReplicationGroup.NumCacheClusters",
    # AWS: "When using automatic failover, there must be at least 2 cache clusters in the
    # replication group."
    "InvalidParameterCombination",
)
EC_MULTI_AZ_NEEDS_REPLICA = _rule(
    "can be true only for a replication group with at least one read replica",
    "ElastiCache user guide, Minimizing downtime with Multi-AZ (You can enable Multi-AZ only on "
    "... clusters that have at least one available read replica)",
    "InvalidParameterCombination",
)
EC_CLUSTER_MODE_FAILOVER = _rule(
    "must be true for a cluster mode enabled replication group",
    "ElastiCache API reference, CreateReplicationGroup.AutomaticFailoverEnabled",
    "InvalidParameterCombination",
)
EC_CLUSTER_MODE_DISABLED_SHARDS = _rule(
    "must be omitted or 1 when cluster mode is disabled",
    "ElastiCache API reference, CreateReplicationGroup.NumNodeGroups",
    "InvalidParameterCombination",
)
EC_AUTH_TOKEN = _rule(
    "must be 16 to 128 printable ASCII characters whose only special characters are "
    "! & # $ ^ < > -",
    "ElastiCache API reference, CreateReplicationGroup.AuthToken",
    "InvalidParameterValue",
)
EC_AUTH_TOKEN_NEEDS_TLS = _rule(
    "can be given only when TransitEncryptionEnabled is true",
    "ElastiCache API reference, CreateReplicationGroup.AuthToken",
    "InvalidParameterCombination",
)
EC_TLS_NEEDS_SUBNET_GROUP = _rule(
    "must be given when TransitEncryptionEnabled is true",
    "ElastiCache API reference, CreateReplicationGroup.TransitEncryptionEnabled (If you enable "
    "in-transit encryption, you must also specify a value for CacheSubnetGroup)",
    "InvalidParameterCombination",
)
EC_MODIFY_DESCRIPTION = _rule(
    "must be at most 255 characters long",
    "ElastiCache API reference, ModifyReplicationGroup.ReplicationGroupDescription",
    "InvalidParameterValue",
)
EC_MODIFY_AUTH_TOKEN = _rule(
    "must be 16 to 128 printable characters whose only non-alphanumeric characters are "
    "! & # $ ^ < > -",
    "ElastiCache user guide, Authenticating with the Valkey and Redis OSS AUTH command: "
    "Overview (Tokens, or passwords, must be 16-128 printable characters. Nonalphanumeric "
    "characters are restricted to !, &, #, $, ^, <, >, -)",
    "InvalidParameterValue",
)
EC_DELETE_NEEDS_USER_GROUP = _rule(
    "DELETE is allowed only when moving to role-based access control: it must come with "
    "UserGroupIdsToAdd",
    "ElastiCache API reference, ModifyReplicationGroup.AuthTokenUpdateStrategy (DELETE - "
    "allowed only when transitioning to RBAC)",
    "InvalidParameterCombination",
)
EC_STRATEGY_NEEDS_TOKEN = _rule(
    "SET and ROTATE must be given with AuthToken",
    "ElastiCache API reference, ModifyReplicationGroup.AuthTokenUpdateStrategy (This parameter "
    "must be specified with the auth-token parameter)",
    "InvalidParameterCombination",
)
# Valid values (botocore does not check enums): (parameter, values, rule) per operation.
_Enum = tuple[str, tuple[str, ...], Rule]


def _enums(operation: str, *members: tuple[str, tuple[str, ...]]) -> tuple[_Enum, ...]:
    return tuple(
        (
            name,
            values,
            _rule(
                "must be one of " + ", ".join(values),
                f"ElastiCache API reference, {operation}.{name} (Valid Values)",
                "InvalidParameterValue",
            ),
        )
        for name, values in members
    )


_TRANSIT_MODES = ("TransitEncryptionMode", ("preferred", "required"))
_CLUSTER_MODES = ("ClusterMode", ("enabled", "disabled", "compatible"))
EC_CREATE_ENUMS = _enums("CreateReplicationGroup", _TRANSIT_MODES, _CLUSTER_MODES)
EC_MODIFY_ENUMS = _enums(
    "ModifyReplicationGroup",
    _TRANSIT_MODES,
    _CLUSTER_MODES,
    ("AuthTokenUpdateStrategy", ("SET", "ROTATE", "DELETE")),
)
EC_TAG_COUNT = _rule(
    "may hold at most 50 tags: the maximum number of tags permitted on a resource is 50",
    "ElastiCache API reference, TagQuotaPerResourceExceeded",
    "TagQuotaPerResourceExceeded",
)
EC_TAG_KEY = _rule(
    "is required: a tag key may not be null",
    "ElastiCache API reference, Tag.Key",
    "InvalidParameterValue",
)
EC_TAG_KEY_LENGTH = _rule(
    "must be at most 128 characters long",
    "ElastiCache user guide, Tagging your ElastiCache resources: Tag restrictions",
    "InvalidParameterValue",
)
EC_TAG_VALUE_LENGTH = _rule(
    "must be at most 256 characters long",
    "ElastiCache user guide, Tagging your ElastiCache resources: Tag restrictions",
    "InvalidParameterValue",
)
EC_TAG_UNIQUE = _rule(
    "must be unique: each tag key of a resource can have only one value",
    "ElastiCache user guide, Tagging your ElastiCache resources: Tag restrictions",
    "InvalidParameterValue",
)

_GROUP_ID_CHARS = frozenset(_ALNUM | {"-"})
_TOKEN_CHARS = frozenset(_ALNUM | set("!&#$^<>-"))


def _valid_group_id(value: str) -> bool:
    return (
        1 <= len(value) <= 40
        and value[0] in string.ascii_letters
        and all(c in _GROUP_ID_CHARS for c in value)
        and not value.endswith("-")
        and "--" not in value
    )


def _ec_tags(found: _Found, params: Mapping[str, Any]) -> None:
    tags = params.get("Tags")
    if isinstance(tags, list | tuple) and len(tags) > 50:
        found.add("Tags", EC_TAG_COUNT, f" (it has {len(tags)})")
    seen: set[str] = set()
    for j, tag in _items(tags):
        key = tag.get("Key")
        if key is None:
            found.add(f"Tags[{j}].Key", EC_TAG_KEY)
        _max_len(found, f"Tags[{j}].Key", key, 128, EC_TAG_KEY_LENGTH)
        if isinstance(key, str):
            if key in seen:
                found.add(f"Tags[{j}].Key", EC_TAG_UNIQUE, f" ({key!r} repeats)")
            seen.add(key)
        _max_len(found, f"Tags[{j}].Value", tag.get("Value"), 256, EC_TAG_VALUE_LENGTH)


def _ec_enums(found: _Found, params: Mapping[str, Any], enums: tuple[_Enum, ...]) -> None:
    for name, values, rule in enums:
        _one_of(found, name, params.get(name), values, rule)


def _replicas(params: Mapping[str, Any]) -> int | None:
    """Read replicas of a new (single-shard) group; None when the request does not tell."""
    if params.get("PrimaryClusterId") is not None or params.get("NodeGroupConfiguration"):
        return None
    clusters = params.get("NumCacheClusters")
    if clusters is not None:
        n = _int(clusters)
        return None if n is None else n - 1
    per_group = params.get("ReplicasPerNodeGroup")
    if per_group is not None:
        return _int(per_group)
    return 0  # NumCacheClusters defaults to 1


def _create_cache_subnet_group(params: Mapping[str, Any], found: _Found) -> None:
    name = params.get("CacheSubnetGroupName")
    if isinstance(name, str) and (len(name) > 255 or any(c not in _GROUP_ID_CHARS for c in name)):
        bad = _bad_chars(name, _GROUP_ID_CHARS.__contains__)
        found.add(
            "CacheSubnetGroupName",
            EC_SUBNET_GROUP_NAME,
            f" (it contains {bad})" if bad else f" (it has {len(name)})",
        )
    _ec_tags(found, params)


def _create_replication_group(params: Mapping[str, Any], found: _Found) -> None:
    group_id = params.get("ReplicationGroupId")
    if isinstance(group_id, str) and not _valid_group_id(group_id):
        found.add("ReplicationGroupId", EC_GROUP_ID, f" (not {group_id!r})")
    engine = params.get("Engine")
    if isinstance(engine, str) and engine.lower() not in ("valkey", "redis"):
        found.add("Engine", EC_ENGINE, f" (not {engine!r})")
    clusters = _int(params.get("NumCacheClusters"))
    if clusters is not None and not 1 <= clusters <= 6:
        found.add("NumCacheClusters", EC_NUM_CACHE_CLUSTERS, f" (not {clusters})")
    per_group = _int(params.get("ReplicasPerNodeGroup"))
    if per_group is not None and not 0 <= per_group <= 5:
        found.add("ReplicasPerNodeGroup", EC_REPLICAS_PER_NODE_GROUP, f" (not {per_group})")
    mode = params.get("ClusterMode")
    # Cluster mode disabled (one shard): the primary plus `replicas` read replicas.
    no_replica = (
        mode != "enabled"
        and _int(params.get("NumNodeGroups")) in (None, 1)
        and _replicas(params) == 0
    )
    if params.get("AutomaticFailoverEnabled") is True and no_replica:
        found.add("NumCacheClusters", EC_FAILOVER_NEEDS_REPLICA)
    if params.get("MultiAZEnabled") is True and no_replica:
        found.add("MultiAZEnabled", EC_MULTI_AZ_NEEDS_REPLICA)
    if mode == "enabled" and params.get("AutomaticFailoverEnabled") is False:
        found.add("AutomaticFailoverEnabled", EC_CLUSTER_MODE_FAILOVER)
    shards = _int(params.get("NumNodeGroups"))
    if mode == "disabled" and shards is not None and shards != 1:
        found.add("NumNodeGroups", EC_CLUSTER_MODE_DISABLED_SHARDS, f" (not {shards})")
    token = params.get("AuthToken")
    if isinstance(token, str):
        if not 16 <= len(token) <= 128 or any(c not in _TOKEN_CHARS for c in token):
            found.add("AuthToken", EC_AUTH_TOKEN)  # never the token or its characters
        if params.get("TransitEncryptionEnabled") is not True:
            found.add("AuthToken", EC_AUTH_TOKEN_NEEDS_TLS)
    if params.get("TransitEncryptionEnabled") is True and not params.get("CacheSubnetGroupName"):
        found.add("CacheSubnetGroupName", EC_TLS_NEEDS_SUBNET_GROUP)
    _ec_enums(found, params, EC_CREATE_ENUMS)
    _ec_tags(found, params)


def _modify_replication_group(params: Mapping[str, Any], found: _Found) -> None:
    _max_len(
        found,
        "ReplicationGroupDescription",
        params.get("ReplicationGroupDescription"),
        255,
        EC_MODIFY_DESCRIPTION,
    )
    token = params.get("AuthToken")
    if isinstance(token, str) and (
        not 16 <= len(token) <= 128 or any(c not in _TOKEN_CHARS for c in token)
    ):
        found.add("AuthToken", EC_MODIFY_AUTH_TOKEN)  # never the token or its characters
    strategy = params.get("AuthTokenUpdateStrategy")
    if strategy in ("SET", "ROTATE") and token is None:
        found.add("AuthTokenUpdateStrategy", EC_STRATEGY_NEEDS_TOKEN)
    if strategy == "DELETE" and not params.get("UserGroupIdsToAdd"):
        found.add("AuthTokenUpdateStrategy", EC_DELETE_NEEDS_USER_GROUP)
    _ec_enums(found, params, EC_MODIFY_ENUMS)


# --- ElastiCache: rules that depend on the replication group as it is now ---------------------
#
# ModifyReplicationGroup's TLS and AUTH parameters are allowed or not depending on the group: its
# in-transit encryption and mode, whether it has AUTH, its engine version, and (only ElastiCache
# knows it) which token was rotated last. `check_group` takes that state beside the request.

EC_TLS_EXISTING_NEEDS_PREFERRED = _rule(
    "must be preferred, in the same request, when TransitEncryptionEnabled turns in-transit "
    "encryption on for an existing replication group",
    "ElastiCache API reference, ModifyReplicationGroup.TransitEncryptionEnabled (If you are "
    "enabling in-transit encryption for an existing cluster, you must also set "
    "TransitEncryptionMode to preferred)",
    "InvalidParameterCombination",
)
EC_REQUIRED_AFTER_PREFERRED = _rule(
    "can be set to required only once the group's mode is preferred (preferred first, then "
    "required)",
    "ElastiCache API reference, ModifyReplicationGroup.TransitEncryptionMode (Setting "
    "TransitEncryptionMode to required is a two-step process that requires you to first set the "
    "TransitEncryptionMode to preferred)",
    "InvalidParameterCombination",
)
EC_TLS_ONLINE_ENGINE = _rule(
    "can turn in-transit encryption on for an existing group only on Valkey 7.2 or later and "
    "Redis OSS 7.0 or later",
    "ElastiCache user guide, Enabling in-transit encryption on a node-based Redis OSS cluster "
    "using Python (ElastiCache supports online TLS migration only for clusters with Valkey "
    "version 7.2 and above or Redis OSS version 7.0 or above)",
    "InvalidParameterCombination",
)
EC_TOKEN_NEEDS_TLS_GROUP = _rule(
    "can be set on an existing group only when its in-transit encryption is on",
    "ElastiCache user guide, Authenticating with the AUTH command: Modifying the AUTH token on "
    "an existing cluster (you can make this modification ... if ... encryption in transit "
    "enabled; enabling authentication is only supported ... with encryption in transit)",
    "InvalidParameterCombination",
)
EC_TOKEN_ENGINE = _rule(
    "can be modified only on Redis OSS 5.0.5 or later",
    "ElastiCache user guide, Authenticating with the AUTH command: Modifying the AUTH token on "
    "an existing cluster (You can make this modification if the engine version is 5.0.5 or "
    "higher)",
    "InvalidParameterCombination",
)
EC_SET_AFTER_ROTATE = _rule(
    "SET is allowed only after ROTATE",
    "ElastiCache API reference, ModifyReplicationGroup.AuthTokenUpdateStrategy (SET - allowed "
    "only after ROTATE)",
    "InvalidParameterCombination",
)
EC_SET_SAME_TOKEN = _rule(
    "must be the token of the last ROTATE when the strategy is SET",
    "ElastiCache user guide, Authenticating with the AUTH command: Setting the AUTH token (The "
    "auth-token parameter must be the same value as the last AUTH token rotated)",
    "InvalidParameterValue",
)


@dataclass(frozen=True)
class GroupState:
    """A replication group as a ModifyReplicationGroup request meets it. What is not known is
    left empty and its rules are skipped: rexctl reads what AWS shows (engine version from the
    primary node, TransitEncryptionMode, AuthTokenEnabled, the last AUTH change from its own
    tag); only ElastiCache (here: the sandbox) knows the last token rotated."""

    engine: str = "redis"
    engine_version: str = ""  # '' when not known
    transit_encryption: bool = False
    transit_mode: str = ""  # preferred | required ('' when off or not shown)
    auth_enabled: bool = False
    last_auth_change: str = ""  # ROTATE | SET ('' when not known)
    last_rotated: str | None = field(default=None, repr=False)  # the token; never shown


def version_at_least(version: str, minimum: tuple[int, ...]) -> bool | None:
    """Whether `version` ("7.1", "7.0.7", "6.x") is at least `minimum`; None when unknown."""
    parts: list[int] = []
    for piece in version.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    if not parts:
        return None
    # "7" or "6.x" tell only the major version: compare what they tell (refuse only what is sure).
    return tuple(parts) >= minimum[: len(parts)]


def _group_modify(state: GroupState, params: Mapping[str, Any], found: _Found) -> None:
    enabling = params.get("TransitEncryptionEnabled") is True and not state.transit_encryption
    mode = params.get("TransitEncryptionMode")
    if enabling:
        if mode != "preferred":
            found.add("TransitEncryptionMode", EC_TLS_EXISTING_NEEDS_PREFERRED,
                      f" (not {mode!r})" if mode is not None else " (none given)")  # fmt: skip
        minimum = (7, 2) if state.engine.lower() == "valkey" else (7, 0)
        if version_at_least(state.engine_version, minimum) is False:
            found.add("TransitEncryptionEnabled", EC_TLS_ONLINE_ENGINE,
                      f" (it runs {state.engine} {state.engine_version})")  # fmt: skip
    elif mode == "required" and not (
        state.transit_encryption and state.transit_mode in ("preferred", "required")
    ):
        shown = state.transit_mode or ("on" if state.transit_encryption else "off")
        found.add("TransitEncryptionMode", EC_REQUIRED_AFTER_PREFERRED, f" (it is {shown})")
    token = params.get("AuthToken")
    strategy = params.get("AuthTokenUpdateStrategy") or ("ROTATE" if token is not None else None)
    if token is not None:
        if not state.transit_encryption:
            found.add("AuthToken", EC_TOKEN_NEEDS_TLS_GROUP)
        if state.engine.lower() != "valkey" and (
            version_at_least(state.engine_version, (5, 0, 5)) is False
        ):
            found.add("AuthToken", EC_TOKEN_ENGINE, f" (it runs {state.engine_version})")
    if strategy == "SET":
        if not state.auth_enabled or state.last_auth_change == "SET":
            found.add("AuthTokenUpdateStrategy", EC_SET_AFTER_ROTATE)
        elif (
            state.last_rotated is not None
            and isinstance(token, str)
            and (token != state.last_rotated)
        ):
            found.add("AuthToken", EC_SET_SAME_TOKEN)  # never either token


def check_group(
    state: GroupState, service: str, operation: str, params: Mapping[str, Any]
) -> list[Violation]:
    """What AWS documents it would refuse in this request given the group's current `state`
    (ModifyReplicationGroup's in-transit encryption and AUTH token; [] for anything else)."""
    found = _Found(service, operation)
    if (service, operation) == ("elasticache", "ModifyReplicationGroup"):
        _group_modify(state, params, found)
    return found.violations


# --- ECS --------------------------------------------------------------------------------------

_ECS_NAME_CHARS = frozenset(_ALNUM | {"_", "-"})

ECS_FAMILY = _rule(
    "must be at most 255 letters (uppercase and lowercase), numbers, underscores and hyphens",
    "ECS API reference, RegisterTaskDefinition.family",
    "ClientException",
)
ECS_CONTAINER_NAME = _rule(
    "must be at most 255 letters (uppercase and lowercase), numbers, underscores and hyphens",
    "ECS API reference, ContainerDefinition.name",
    "ClientException",
)
ECS_SECRETS_NEED_ROLE = _rule(
    "is required when a container has secrets: the task execution role reads them",
    "ECS developer guide, Amazon ECS task execution IAM role (the task definition references "
    "sensitive data using Secrets Manager secrets or Parameter Store parameters)",
    # AWS: "When you are specifying container secrets, you must also specify a value for
    # 'executionRoleArn'."
    "ClientException",
)
ECS_FARGATE_AWSLOGS_NEEDS_ROLE = _rule(
    "is required for a Fargate task whose containers use the awslogs log driver",
    "ECS developer guide, Amazon ECS task execution IAM role (your task is hosted on Fargate "
    "and sends container logs to CloudWatch Logs using the awslogs log driver)",
    # AWS: "Fargate requires task definition to have execution role ARN to support log driver
    # awslogs."
    "ClientException",
)
ECS_FARGATE_AWSVPC = _rule(
    "must be awsvpc for Fargate",
    "ECS API reference, RegisterTaskDefinition.networkMode (For Amazon ECS tasks on Fargate, "
    "the awsvpc network mode is required)",
    "ClientException",
)
ECS_FARGATE_CPU = _rule(
    "is required at task level for Fargate",
    "ECS API reference, RegisterTaskDefinition.cpu (This field is required for Fargate)",
    "ClientException",
)
ECS_FARGATE_MEMORY = _rule(
    "is required at task level for Fargate",
    "ECS API reference, RegisterTaskDefinition.memory (If using the Fargate launch type, this "
    "field is required)",
    "ClientException",
)
ECS_TAG_CHARS = _rule(
    "may contain only letters, numbers, spaces and _ . : / = + - @",
    "ECS API reference, Tag (Pattern: ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*))",
    "InvalidParameterException",
)
ECS_TAG_PREFIX = _rule(
    "may not begin with aws: in any combination of upper and lower case (reserved for AWS use)",
    "ECS API reference, Tag",
    "InvalidParameterException",  # AWS answers "Tag key must not start with aws:"
)
ECS_TAG_UNIQUE = _rule(
    "must be unique: each tag key can have only one value",
    "ECS API reference, Tag",
    "InvalidParameterException",
)


def _ecs_tag_char(c: str) -> bool:
    return unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@"


def _ecs_name(found: _Found, path: str, value: Any, rule: Rule) -> None:
    if isinstance(value, str):
        bad = _bad_chars(value, _ECS_NAME_CHARS.__contains__)
        if bad:
            found.add(path, rule, f" (it contains {bad})")
        elif len(value) > 255:
            found.add(path, rule, f" (it has {len(value)})")


def _ecs_tags(found: _Found, params: Mapping[str, Any]) -> None:
    seen: set[str] = set()
    for j, tag in _items(params.get("tags")):
        for member in ("key", "value"):
            text = tag.get(member)
            if not isinstance(text, str):
                continue
            bad = _bad_chars(text, _ecs_tag_char)
            if bad:
                found.add(f"tags[{j}].{member}", ECS_TAG_CHARS, f" (it contains {bad})")
            if text.lower().startswith("aws:"):
                found.add(f"tags[{j}].{member}", ECS_TAG_PREFIX)
        key = tag.get("key")
        if isinstance(key, str):
            if key in seen:
                found.add(f"tags[{j}].key", ECS_TAG_UNIQUE, f" ({key!r} repeats)")
            seen.add(key)


def _register_task_definition(params: Mapping[str, Any], found: _Found) -> None:
    _ecs_name(found, "family", params.get("family"), ECS_FAMILY)
    containers = list(_items(params.get("containerDefinitions")))
    for i, c in containers:
        _ecs_name(found, f"containerDefinitions[{i}].name", c.get("name"), ECS_CONTAINER_NAME)
    has_role = bool(params.get("executionRoleArn"))
    with_secrets = [i for i, c in containers if c.get("secrets")]
    if with_secrets and not has_role:
        found.add(
            "executionRoleArn", ECS_SECRETS_NEED_ROLE, f" (containerDefinitions[{with_secrets[0]}])"
        )
    compat = params.get("requiresCompatibilities")
    fargate = isinstance(compat, list | tuple) and "FARGATE" in compat
    if fargate:
        awslogs = [
            i
            for i, c in containers
            if isinstance(c.get("logConfiguration"), Mapping)
            and c["logConfiguration"].get("logDriver") == "awslogs"
        ]
        if awslogs and not has_role:
            found.add(
                "executionRoleArn",
                ECS_FARGATE_AWSLOGS_NEEDS_ROLE,
                f" (containerDefinitions[{awslogs[0]}])",
            )
        mode = params.get("networkMode")
        if mode != "awsvpc":
            detail = " (none given: the default is bridge)" if mode is None else f" (not {mode!r})"
            found.add("networkMode", ECS_FARGATE_AWSVPC, detail)
        if params.get("cpu") is None:
            found.add("cpu", ECS_FARGATE_CPU)
        if params.get("memory") is None:
            found.add("memory", ECS_FARGATE_MEMORY)
    _ecs_tags(found, params)


# --- Secrets Manager --------------------------------------------------------------------------

SM_NAME_CHARS = _rule(
    "may contain only ASCII letters, numbers and /_+=.@-",
    "Secrets Manager API reference, CreateSecret.Name",
    "ValidationException",  # AWS answers "ValidationException: Invalid name. ..."
)
SM_STRING_OR_BINARY = _rule(
    "can't be given together with SecretBinary: a secret value is a string or binary, not both",
    "Secrets Manager API reference, CreateSecret.SecretString (Either SecretString or "
    "SecretBinary must have a value, but not both)",
    "InvalidParameterException",
)
_SM_NAME_CHARS = frozenset(_ALNUM | set("/_+=.@-"))


SM_PUT_STRING_OR_BINARY = _rule(
    "must be given, or SecretBinary, but not both",
    "Secrets Manager API reference, PutSecretValue.SecretString (You must include SecretBinary "
    "or SecretString, but not both)",
    "InvalidParameterException",
)
SM_CLIENT_REQUEST_TOKEN = _rule(
    "must be 32 to 64 characters long",
    "Secrets Manager API reference, PutSecretValue.ClientRequestToken (Length Constraints: "
    "Minimum length of 32. Maximum length of 64.)",
    "ValidationException",
)
SM_VERSION_STAGES = _rule(
    "must hold 1 to 20 staging labels",
    "Secrets Manager API reference, PutSecretValue.VersionStages (Minimum number of 1 item. "
    "Maximum number of 20 items.)",
    "ValidationException",
)
SM_VERSION_STAGE = _rule(
    "must be 1 to 256 characters long",
    "Secrets Manager API reference, SecretVersionStageType (Length Constraints: Minimum length "
    "of 1. Maximum length of 256.)",
    "ValidationException",
)
SM_VERSION_ID = _rule(
    "must be 32 to 64 characters long",
    "Secrets Manager API reference, UpdateSecretVersionStage.MoveToVersionId / "
    "RemoveFromVersionId (Length Constraints: Minimum length of 32. Maximum length of 64.)",
    "ValidationException",
)
SM_LABEL_ELSEWHERE = _rule(
    "must name the version the staging label is attached to now: a label is attached to one "
    "version at a time, and moving it from another version needs RemoveFromVersionId",
    "Secrets Manager API reference, UpdateSecretVersionStage.RemoveFromVersionId (If the "
    "staging label you are trying to attach to one version is already attached to a different "
    "version, then you must include this parameter ... If the label is attached and you either "
    "do not specify this parameter, or the version ID does not match, then the operation fails)",
    "InvalidParameterException",
)
SM_LABEL_NOT_THERE = _rule(
    "must name a version the staging label is attached to",
    "Secrets Manager API reference, UpdateSecretVersionStage.RemoveFromVersionId (The ID of the "
    "version that the staging label is to be removed from)",
    "InvalidParameterException",
)
SM_UNKNOWN_VERSION = _rule(
    "must name a version of the secret",
    "Secrets Manager API reference, UpdateSecretVersionStage.MoveToVersionId (The ID of the "
    "version to add the staging label to)",
    "InvalidParameterException",
)


def _create_secret(params: Mapping[str, Any], found: _Found) -> None:
    _chars(found, "Name", params.get("Name"), _SM_NAME_CHARS, SM_NAME_CHARS)
    if params.get("SecretString") is not None and params.get("SecretBinary") is not None:
        found.add("SecretString", SM_STRING_OR_BINARY)


def _length_between(found: _Found, path: str, value: Any, low: int, high: int, rule: Rule) -> None:
    if isinstance(value, str) and not low <= len(value) <= high:
        found.add(path, rule, f" (it has {len(value)})")


def _put_secret_value(params: Mapping[str, Any], found: _Found) -> None:
    if (params.get("SecretString") is None) == (params.get("SecretBinary") is None):
        found.add("SecretString", SM_PUT_STRING_OR_BINARY)  # never the value
    _length_between(found, "ClientRequestToken", params.get("ClientRequestToken"), 32, 64,
                    SM_CLIENT_REQUEST_TOKEN)  # fmt: skip
    stages = params.get("VersionStages")
    if isinstance(stages, list | tuple):
        if not 1 <= len(stages) <= 20:
            found.add("VersionStages", SM_VERSION_STAGES, f" (it has {len(stages)})")
        for i, stage in enumerate(stages):
            _length_between(found, f"VersionStages[{i}]", stage, 1, 256, SM_VERSION_STAGE)


def _update_secret_version_stage(params: Mapping[str, Any], found: _Found) -> None:
    _length_between(found, "VersionStage", params.get("VersionStage"), 1, 256, SM_VERSION_STAGE)
    for name in ("MoveToVersionId", "RemoveFromVersionId"):
        _length_between(found, name, params.get(name), 32, 64, SM_VERSION_ID)


# --- Secrets Manager: rules that depend on the secret's versions as they are now ---------------


@dataclass(frozen=True)
class SecretState:
    """A secret's versions and the staging labels each carries (DescribeSecret's
    VersionIdsToStages), as an UpdateSecretVersionStage request meets them."""

    versions: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def holder(self, label: str) -> str:
        """The version `label` is attached to ('' when none)."""
        return next((v for v, labels in self.versions.items() if label in labels), "")


def _secret_stage(state: SecretState, params: Mapping[str, Any], found: _Found) -> None:
    label = params.get("VersionStage")
    move_to, remove_from = params.get("MoveToVersionId"), params.get("RemoveFromVersionId")
    if not isinstance(label, str):
        return
    holder = state.holder(label)
    if isinstance(move_to, str) and move_to not in state.versions:
        found.add("MoveToVersionId", SM_UNKNOWN_VERSION)
    if isinstance(remove_from, str):
        if label not in state.versions.get(remove_from, ()):
            found.add("RemoveFromVersionId", SM_LABEL_NOT_THERE,
                      f" ({label} is not on that version)")  # fmt: skip
    elif holder and isinstance(move_to, str) and holder != move_to:
        found.add("RemoveFromVersionId", SM_LABEL_ELSEWHERE, f" ({label} is on another version)")


def check_secret(
    state: SecretState, service: str, operation: str, params: Mapping[str, Any]
) -> list[Violation]:
    """What AWS documents it would refuse in this request given the secret's versions and
    labels (UpdateSecretVersionStage; [] for anything else)."""
    found = _Found(service, operation)
    if (service, operation) == ("secretsmanager", "UpdateSecretVersionStage"):
        _secret_stage(state, params, found)
    return found.violations


# --- the API ----------------------------------------------------------------------------------

_CHECKS: dict[tuple[str, str], Callable[[Mapping[str, Any], _Found], None]] = {
    ("ec2", "CreateSecurityGroup"): _create_security_group,
    ("ec2", "AuthorizeSecurityGroupIngress"): _authorize_ingress,
    ("ec2", "RevokeSecurityGroupIngress"): _revoke_ingress,
    ("ec2", "CreateNetworkAclEntry"): _create_network_acl_entry,
    ("ec2", "CreateNetworkAcl"): lambda params, found: _ec2_tag_specs(found, params),
    ("ec2", "CreateTags"): _create_tags,
    ("ec2", "DeleteTags"): _delete_tags,
    ("elasticache", "CreateCacheSubnetGroup"): _create_cache_subnet_group,
    ("elasticache", "CreateReplicationGroup"): _create_replication_group,
    ("elasticache", "ModifyReplicationGroup"): _modify_replication_group,
    ("elasticache", "AddTagsToResource"): lambda params, found: _ec_tags(found, params),
    ("ecs", "RegisterTaskDefinition"): _register_task_definition,
    ("secretsmanager", "CreateSecret"): _create_secret,
    ("secretsmanager", "PutSecretValue"): _put_secret_value,
    ("secretsmanager", "UpdateSecretVersionStage"): _update_secret_version_stage,
}

COVERED = frozenset(REQUIRED_MEMBERS)  # the operations this module knows
RULES: tuple[Rule, ...] = tuple(_ALL)  # every rule above (the tests check each is exercised)


def check(service: str, operation: str, params: Mapping[str, Any]) -> list[Violation]:
    """What AWS documents it would refuse in this request ([] when nothing, or not covered).

    `service` is botocore's service name ("ec2", "elasticache", "ecs", "secretsmanager"),
    `operation` botocore's operation name, `params` the kwargs of the boto3 method. Pure.
    """
    key = (service, operation)
    found = _Found(service, operation)
    for name in REQUIRED_MEMBERS.get(key, ()):
        if params.get(name) is None:
            found.add(name, REQUIRED)
    run = _CHECKS.get(key)
    if run is not None:
        run(params, found)
    return found.violations


def refusal(violations: Sequence[Violation]) -> dict[str, Any]:
    """The parsed error response AWS would answer with (botocore's shape), HTTP 400.

    AWS answers with one error code: the first violation's. The message names every violation.
    """
    if not violations:
        raise ValueError("refusal() needs at least one violation")
    return {
        "Error": {
            "Code": violations[0].code,
            "Message": " ".join(v.message() for v in violations),
        },
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }


_HANDLER_ID = "rexctl.aws.rules.refuse"


def install(client: Any) -> None:
    """Refuse, in this boto3 client, every request that `check` finds fault with.

    The handler runs on `before-parameter-build` (it sees the caller's kwargs; nothing is sent)
    and raises what AWS would: the client's modeled exception for the code when there is one,
    else `botocore.exceptions.ClientError`, with `refusal(...)` as its response. Installing twice
    is harmless. Each client has its own event emitter, so other clients are not affected.
    """
    import botocore.exceptions

    def refuse(params: Mapping[str, Any], model: Any, **_: Any) -> None:
        violations = check(model.service_model.service_name, model.name, params)
        if not violations:
            return
        error: type[botocore.exceptions.ClientError] = botocore.exceptions.ClientError
        exceptions = getattr(client, "exceptions", None)
        if exceptions is not None and hasattr(exceptions, "from_code"):
            error = exceptions.from_code(violations[0].code)
        response: Any = refusal(violations)  # botocore-stubs want its TypedDict
        raise error(response, model.name)

    client.meta.events.register("before-parameter-build", refuse, unique_id=_HANDLER_ID)
