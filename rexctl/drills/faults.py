"""The three faults of the guide's step 15, behind one small protocol.

A fault is planned from the configuration with read-only calls (`plan`: what will change, a
normalized "before" describe, and the exact undo data that goes into the journal), then injected,
restored and confirmed. Restoring needs nothing but the journal's `changes` (and journals what it
learns through `save`), so `rexctl chaos restore` can undo a drill after the machine that ran it
died. Every `restore` is idempotent: it may run on a fault that was only half injected, or already
undone. Every plan checks the requests the drill will send, injecting and restoring, against
AWS's documented request rules (`rexctl.aws.rules`) and refuses before confirmation what AWS
would refuse.

- break-sg revokes, by rule id, the cache security group's inbound rule(s) whose source is the
  service's security group, checks AWS's answer and the group afterwards, and re-authorizes them
  identically (ports, protocol, source, description, tags). Open connections survive it
  (security-group connection tracking), so it may not be observed.
- break-nacl never edits an ACL (the cache subnets' ACL is usually the VPC's default one, shared
  by every subnet). As AWS FIS does, it copies that ACL into a new, tagged one, adds inbound DENY
  entries for the cache port from each of the service's subnet ranges (IPv4 or IPv6) to the copy,
  and moves only the cache's subnets to it; the restore moves them back and deletes the copy.
  ACLs are stateless: the inbound entry drops the packets of open connections too. Only the cache
  port is denied: denying the replies' ephemeral ports as well would also cut anything else in
  those subnets (often the database). Journals of earlier rexctl (DENY entries added in place)
  restore as they did.
- wrong-host rolls a revision whose REDIS_HOST is `<cache id>.invalid` (RFC 2606: never resolves)
  and rolls back to the previous revision, then deregisters the bad one.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import nacl
from rexctl.aws.elasticache import cache_subnet_ids
from rexctl.aws.errors import unless_missing
from rexctl.drills.changes import (
    AclCloneChange,
    Change,
    NaclEntryChange,
    ServiceRevisionChange,
    SgRuleChange,
    SubnetMove,
)
from rexctl.errors import CheckFailed, ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

    from rexctl.aws.ecs import TaskDefinition
    from rexctl.aws.session import Clients
    from rexctl.config import Config
    from rexctl.drills.journal import Journal

DRILLS = ("break-sg", "break-nacl", "wrong-host")


@dataclass
class Plan:
    """What a drill will change (in words and as undo data) and how things look before it."""

    drill: str
    summary: list[str]
    changes: list[Change]
    before: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    watch_task_definition: str = ""  # wrong-host: the revision whose tasks must stay up


class Fault(Protocol):
    name: str
    expect_new_tasks: bool
    not_observed_reason: str
    sleep: Callable[[float], None]
    clock: Callable[[], float]

    def plan(self, cfg: Config) -> Plan: ...
    def inject(self, journal: Journal, save: Callable[[], None]) -> None: ...
    def restore(self, changes: list[Change], save: Callable[[], None] = ...) -> None: ...
    def confirm_restored(self, changes: list[Change]) -> list[str]: ...
    def snapshot(self, changes: list[Change]) -> dict[str, Any]: ...
    def manual_undo(self, changes: list[Change], aws: Mapping[str, str]) -> list[str]: ...


class _Base:
    name: ClassVar[str] = ""
    expect_new_tasks: ClassVar[bool] = False
    not_observed_reason: ClassVar[str] = ""

    def __init__(
        self,
        clients: Clients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rollout_timeout: float = 900.0,
        rollout_poll: float = 2.0,
        wait_rollout: Callable[..., Any] | None = None,
        acl_entry_quota: int = nacl.DEFAULT_ENTRY_QUOTA,
    ) -> None:
        self.clients = clients
        self.sleep = sleep
        self.clock = clock
        self.rollout_timeout = rollout_timeout
        self.rollout_poll = rollout_poll
        self._wait_rollout = wait_rollout
        self.acl_entry_quota = acl_entry_quota


def _nothing() -> None:
    """`save` for a restore run without a journal on disk (tests, and faults that create none)."""


DRILL_TAG = "rexctl:drill"  # on what a drill creates: the bad revision, the ACL copy


def drill_mark(drill_id: str) -> str:
    """The tag key break-sg puts on the security group it changes: one per drill, so that two
    drills marking the group at once both see each other (tags are last-writer-wins)."""
    return f"{DRILL_TAG}:{drill_id}"


def drill_marks(tags: Mapping[str, str]) -> dict[str, str]:
    """The drill marks among `tags`: {tag key: drill id}."""
    prefix = f"{DRILL_TAG}:"
    return {k: k.removeprefix(prefix) for k in tags if k.startswith(prefix)}


MANAGED_BY = ("managed-by", "rexctl")
Request = tuple[str, str, Mapping[str, Any]]  # botocore service, operation, boto3 kwargs


def refuse_what_aws_refuses(drill: str, requests: Sequence[Request]) -> None:
    """Refuse, at plan time, a drill that would send a request AWS documents it refuses
    (`rexctl.aws.rules`): better than a fault that goes in and a restore AWS then rejects."""
    from rexctl.aws import rules

    violations = [v for service, op, params in requests for v in rules.check(service, op, params)]
    if not violations:
        return
    shown = " ".join(v.message() for v in violations[:3])
    more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
    raise ConfigError(
        f"AWS would refuse a request of this drill: {shown}{more} Nothing was changed.",
        hint=f"Fix what the message names (it comes from what the {drill} drill reads), or run "
        "another drill.",
    )


def cli_target(aws: Mapping[str, str]) -> str:
    """The aws CLI options that aim a manual undo where the drill ran (journal's `aws`)."""
    options = (("--region", "region"), ("--profile", "profile"), ("--endpoint-url", "endpoint_url"))
    return "".join(f" {flag} {shlex.quote(aws[key])}" for flag, key in options if aws.get(key))


def _ecs_network(clients: Clients, cfg: Config, key: str) -> list[str]:
    """The service's `security_groups` or `subnets`: from rexctl.toml, else from ECS."""
    configured: list[str] = getattr(cfg.ecs, key)
    if configured:
        return list(configured)
    from rexctl.aws.ecs import describe_service

    found: list[str] = getattr(describe_service(clients.ecs, cfg.ecs.cluster, cfg.ecs.service), key)
    if not found:
        what = key.replace("_", " ")
        raise ConfigError(
            f"Cannot tell the {what} of ECS service {cfg.ecs.service}: `ecs.{key}` is empty and "
            "the service has no awsvpc network configuration.",
            hint=f"Set `ecs.{key}` in rexctl.toml (`rexctl init` writes it).",
        )
    return found


# --- break-sg ---------------------------------------------------------------------------------


def _cache_group(ec2: EC2Client, name: str, vpc_id: str) -> ec2_api.SecurityGroup:
    """The cache's security group (in `vpc_id` when known); refuses 0 or several."""
    groups = ec2_api.find_security_groups(ec2, name, vpc_id)
    if not groups:
        where = f" in {vpc_id}" if vpc_id else ""
        raise ConfigError(
            f"There is no security group named {name!r}{where}.",
            hint="Run `rexctl provision`, or set `cache.security_group` in rexctl.toml to the "
            "name of the cache's security group.",
        )
    if len(groups) > 1:
        ids = ", ".join(g.id for g in groups)
        raise ConfigError(
            f"Several security groups are named {name!r} ({ids}).",
            hint="Set `ecs.vpc_id` in rexctl.toml so rexctl picks the one in the service's VPC.",
        )
    return groups[0]


def _other_inbound_paths(
    group: ec2_api.SecurityGroup, rules: Sequence[ec2_api.Rule], port: int
) -> list[str]:
    """Other inbound rules that also reach `port` (they would keep the path open)."""
    others: list[str] = []
    for r in group.ingress():
        if not r.covers(port) or any(r.same_permission(taken) for taken in rules):
            continue
        if r.source_group:
            others.append(f"from security group {r.source_group}")
        elif r.prefix_list:
            others.append(f"from prefix list {r.prefix_list}")
        else:
            others.append(f"from {r.cidr}")
    return others


class BreakSg(_Base):
    name = "break-sg"
    not_observed_reason = (
        "No Redis error was logged and answers kept coming from the cache: connections opened "
        "before the rule was revoked keep working (security groups track connections, and "
        "revoking a rule does not cut them). The drill proved nothing about a cache outage."
    )

    def plan(self, cfg: Config) -> Plan:
        ec2 = self.clients.ec2
        sources = _ecs_network(self.clients, cfg, "security_groups")
        vpc_id = cfg.ecs.vpc_id or ec2_api.vpc_of_security_group(ec2, sources[0])
        group = _cache_group(ec2, cfg.cache.security_group, vpc_id)
        port = cfg.cache.port
        marks = drill_marks(group.tags)
        if marks:
            raise ConfigError(
                f"Security group {group.id} ({cfg.cache.security_group}) is marked by drill "
                f"{', '.join(marks.values())} (tag {', '.join(marks)}): a break-sg drill, maybe "
                "from another machine or state directory, has revoked its rule and not put it "
                "back yet. Nothing was changed.",
                hint="Let it end, or run `rexctl chaos restore` where it ran. If no drill runs "
                "any more, put the rule back by hand and remove the tag: `aws ec2 delete-tags "
                f"--resources {group.id} --tags Key=<the tag>`.",
            )
        rules = group.inbound_from(sources, port)
        if not rules:
            raise ConfigError(
                f"Security group {group.id} ({cfg.cache.security_group}) has no inbound "
                f"rule for {port} from {', '.join(sources)}.",
                hint="Run `rexctl provision` or check the group id in rexctl.toml.",
            )
        warnings = []
        others = _other_inbound_paths(group, rules, port)
        if others:
            warnings.append(
                f"{group.id} also lets traffic reach {port} "
                f"{', '.join(others)}: new connections may still get through."
            )
        for r in rules:
            if r.tags.get(MANAGED_BY[0]) != MANAGED_BY[1]:
                warnings.append(
                    f"Rule {r.id} ({r.label()}) was not created by rexctl (no "
                    f"{MANAGED_BY[0]}={MANAGED_BY[1]} tag): putting it back after the drill gives "
                    "it a new rule id, so a tool that manages it by id (Terraform, "
                    "CloudFormation) may see it as deleted or try to create it again."
                )
        from rexctl.drills.journal import new_drill_id

        mark = ec2_api.tag_request(group.id, drill_mark(new_drill_id(self.name)), self.name)
        refuse_what_aws_refuses(
            self.name,
            [("ec2", "CreateTags", mark), ("ec2", "DeleteTags", mark)]
            + [
                request
                for r in rules
                for request in (
                    ("ec2", "RevokeSecurityGroupIngress", ec2_api.revoke_rule_request(r)),
                    ("ec2", "AuthorizeSecurityGroupIngress", ec2_api.authorize_rule_request(r)),
                )
            ],
        )
        changes: list[Change] = [SgRuleChange(r, revoking=False) for r in rules]
        return Plan(
            drill=self.name,
            summary=[
                f"Mark {group.id} with the tag {DRILL_TAG}:<drill id> (a second drill on this "
                "group, from any machine, refuses while it is there)"
            ]
            + [f"Revoke {r.label()} ({r.description or 'no description'})" for r in rules]
            + [
                "Undo: authorize the same rule again (same ports, source, description, tags), "
                "then remove the mark."
            ],
            changes=changes,
            before=self.snapshot(changes),
            warnings=warnings,
        )

    @staticmethod
    def _changes(changes: list[Change]) -> list[SgRuleChange]:
        return [c for c in changes if isinstance(c, SgRuleChange)]

    @classmethod
    def _rules(cls, changes: list[Change]) -> list[ec2_api.Rule]:
        return [c.rule for c in cls._changes(changes)]

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        ec2 = self.clients.ec2
        mine = self._changes(journal.changes)
        mark = drill_mark(journal.id)
        for change in mine:
            change.mark = mark
        save()  # the mark is journaled before it exists: a restore removes it either way
        for group in sorted({c.rule.group_id for c in mine}):
            ec2_api.tag_resource(ec2, group, mark, self.name)
            others = {
                k: v
                for k, v in drill_marks(ec2_api.security_group_tags(ec2, group)).items()
                if k != mark
            }
            if others:  # another drill marked it meanwhile (another machine): both back off
                raise CheckFailed(
                    f"Drill {', '.join(others.values())} marked {group} at the same time "
                    f"(tag {', '.join(others)}). This drill changed nothing but its own mark, "
                    "which it removes.",
                    hint="Run the drill again once the other one has ended.",
                )
            journal.note(f"marked {group} with {mark}")
        for change in mine:
            change.revoking = True
            save()  # from here on the revoke may have happened: the restore puts the rule back
            ec2_api.revoke_rule(ec2, change.rule)
            self._confirm_revoked(change.rule)
            journal.note(f"revoked {change.rule.label()} ({change.rule.id})")

    def _confirm_revoked(self, rule: ec2_api.Rule, attempts: int = 3) -> None:
        """The group no longer lets the rule's traffic in, as described again (EC2 is eventually
        consistent: asked up to `attempts` times, 1 s then 2 s apart)."""
        from rexctl.errors import AwsError

        for attempt in range(attempts):
            if not ec2_api.permission_present(self.clients.ec2, rule):
                return
            if attempt < attempts - 1:
                self.sleep(float(2**attempt))
        raise AwsError(
            f"{rule.label()} is still there after AWS answered its revoke: the fault is not in "
            "place."
        )

    def restore(self, changes: list[Change], save: Callable[[], None] = _nothing) -> None:
        ec2 = self.clients.ec2
        for change in self._changes(changes):
            if change.revoking:  # only a rule this drill revoked (or may have) is put back
                ec2_api.authorize_rule(ec2, change.rule)
        for group, mark in sorted({(c.rule.group_id, c.mark) for c in self._changes(changes)}):
            if mark:
                ec2_api.untag_resource(ec2, group, mark, self.name)

    def confirm_restored(self, changes: list[Change]) -> list[str]:
        ec2 = self.clients.ec2
        problems = [
            f"{c.rule.label()} is not back"
            for c in self._changes(changes)
            if c.revoking and not ec2_api.rule_present(ec2, c.rule)
        ]
        for group, mark in sorted({(c.rule.group_id, c.mark) for c in self._changes(changes)}):
            if mark and mark in ec2_api.security_group_tags(ec2, group):
                problems.append(f"{group} still carries the drill's mark {mark}")
        return problems

    def snapshot(self, changes: list[Change]) -> dict[str, Any]:
        groups = sorted({r.group_id for r in self._rules(changes)})
        ec2 = self.clients.ec2
        return {"security_groups": {g: ec2_api.security_group_snapshot(ec2, g) for g in groups}}

    def manual_undo(self, changes: list[Change], aws: Mapping[str, str]) -> list[str]:
        target = cli_target(aws)
        mine = self._changes(changes)
        commands = [c.rule.cli_authorize(target) for c in mine if c.revoking]
        for group, mark in sorted({(c.rule.group_id, c.mark) for c in mine}):
            if mark:
                tag = shlex.quote(f"Key={mark},Value={self.name}")
                commands.append(
                    f"aws ec2 delete-tags --resources {shlex.quote(group)} --tags {tag}{target}"
                )
        return commands


# --- break-nacl -------------------------------------------------------------------------------

COPY = "acl-(the copy)"  # the copy's id in the requests checked at plan time (not known yet)


def plan_deny_entries(
    acl_id: str, entries: Sequence[nacl.AclEntryView], cidrs: Sequence[str], port: int
) -> list[nacl.AclEntryView]:
    """Inbound DENY entries for TCP `port`, one per CIDR (IPv4 or IPv6), at the lowest inbound
    rule numbers that `entries` leave free.

    ACL entries are evaluated in ascending rule number and the first match wins, so a DENY only
    takes effect below every ALLOW that would match the same traffic. The lowest free numbers
    (1, 2, ...) come before almost everything people number by hand (100, 110, ...) and are
    checked against each ALLOW that could match first. Inbound only: the inbound entry is what
    cuts the requests to the cache (open connections included); an outbound entry for the cache
    port matches nothing the service sends back, and each entry counts against the ACL's quota.
    """
    inbound = [e for e in entries if not e.egress]
    used = {e.rule_number for e in inbound}
    planned: list[nacl.AclEntryView] = []
    number = 0
    for cidr in cidrs:
        number += 1
        while number in used:
            number += 1
        if number > nacl.MAX_RULE_NUMBER:
            raise ConfigError(f"Network ACL {acl_id} has no free rule number.")
        earlier_allow = [
            e
            for e in inbound
            if e.action == "allow" and e.rule_number < number and e.covers(cidr, port)
        ]
        if earlier_allow:
            raise ConfigError(
                f"Network ACL {acl_id} allows this traffic at rule "
                f"{earlier_allow[0].rule_number}, before any free rule number; a DENY entry "
                "could not take effect.",
                hint="Renumber that entry above a free number, or use `rexctl chaos break-sg`.",
            )
        used.add(number)
        v6 = nacl.family(cidr) == 6
        planned.append(
            nacl.AclEntryView(
                rule_number=number,
                egress=False,
                protocol=nacl.TCP,
                action="deny",
                cidr="" if v6 else cidr,
                ipv6_cidr=cidr if v6 else "",
                port_range=(port, port),
            )
        )
    return planned


def check_entry_quota(
    acl_id: str,
    copied: Sequence[nacl.AclEntryView],
    denied: Sequence[nacl.AclEntryView],
    quota: int,
) -> None:
    """Refuse a copy that would hold more entries than a network ACL may: `quota` one way,
    counted separately for IPv4 and IPv6, AWS's default deny-all `*` entry included (Amazon VPC
    quotas, "Inbound or outbound rules per network ACL", 20 by default)."""
    for egress in (False, True):
        for family in (4, 6):
            mine = [e for e in copied if e.egress == egress and e.family == family]
            ours = [e for e in denied if e.egress == egress and e.family == family]
            total = len(mine) + len(ours) + 1
            if (mine or ours) and total > quota:
                direction = "outbound" if egress else "inbound"
                raise ConfigError(
                    f"The copy of network ACL {acl_id} would hold {total} {direction} "
                    f"IPv{family} entries ({len(mine)} copied, {len(ours)} DENY, and AWS's "
                    f"default deny-all `*` entry): more than the {quota} a network ACL may "
                    'hold (Amazon VPC quotas, "Inbound or outbound rules per network ACL").',
                    hint=f"Remove entries {acl_id} does not need, or have the quota raised "
                    "(Service Quotas, Amazon VPC); or run `rexctl chaos break-sg`.",
                )


def _plural(items: Sequence[str], one: str, many: str) -> str:
    return one if len(items) == 1 else many


class BreakNacl(_Base):
    """Confine a network-ACL fault to the cache's subnets, as AWS Fault Injection Service does
    (`aws:network:disrupt-connectivity`): the ACL those subnets use is usually shared (the VPC's
    default ACL serves every subnet that was not given its own), so the drill never edits it.
    It copies it into a new ACL, adds the DENY entries to the copy, and moves only the cache's
    subnets to the copy; restoring moves them back and deletes the copy.

    Journals of earlier rexctl (`nacl-entry`: DENY entries added in place) restore as before.
    """

    name = "break-nacl"
    not_observed_reason = (
        "No Redis error was logged and answers kept coming from the cache although the network "
        "ACL of the cache's subnets denies the cache port: the service may not reach the cache "
        "through these subnets (check `cache.subnet_group` and `ecs.subnets`)."
    )

    def plan(self, cfg: Config) -> Plan:
        ec2 = self.clients.ec2
        cache_subnets = cache_subnet_ids(self.clients.elasticache, cfg.cache.subnet_group)
        cache_subnets = cache_subnets or list(cfg.cache.subnets)
        if not cache_subnets:
            raise ConfigError(
                f"Cannot tell which subnets the cache is in: cache subnet group "
                f"{cfg.cache.subnet_group!r} does not exist and `cache.subnets` is empty.",
                hint="Run `rexctl provision`, or set `cache.subnet_group` in rexctl.toml.",
            )
        ecs_subnets = _ecs_network(self.clients, cfg, "subnets")
        ranges = ec2_api.subnet_ranges(ec2, ecs_subnets)
        cidrs = sorted({c for cs in ranges.values() for c in cs}, key=lambda c: (nacl.family(c), c))
        if not cidrs:
            raise ConfigError(f"The service's subnets {', '.join(ecs_subnets)} have no CIDR block.")
        found = nacl.associations(ec2, cache_subnets)
        missing = [s for s in cache_subnets if s not in found]
        if missing:
            raise ConfigError(f"No network ACL is associated with {', '.join(missing)}.")
        by_acl: dict[str, list[str]] = {}
        for subnet in cache_subnets:
            by_acl.setdefault(found[subnet].acl_id, []).append(subnet)
        changes: list[Change] = []
        summary: list[str] = []
        for acl_id, moved in by_acl.items():
            acl = nacl.describe_acl(ec2, acl_id)
            if acl.tags.get(DRILL_TAG):
                raise ConfigError(
                    f"Network ACL {acl.id} of the cache's subnets is a copy made by drill "
                    f"{acl.tags[DRILL_TAG]} (tag {DRILL_TAG}): that drill is still in place.",
                    hint="Run `rexctl chaos restore` (its journal undoes it). Without the journal: "
                    "move the subnets back with `aws ec2 replace-network-acl-association`, then "
                    "`aws ec2 delete-network-acl` the copy.",
                )
            copied = acl.own_entries()
            denied = plan_deny_entries(acl.id, copied, cidrs, cfg.cache.port)
            check_entry_quota(acl.id, copied, denied, self.acl_entry_quota)
            change = AclCloneChange(
                vpc_id=acl.vpc_id,
                source_acl_id=acl.id,
                copied=copied,
                denied=denied,
                subnets=[
                    SubnetMove(s, acl.id, found[s].association_id, acl.id) for s in sorted(moved)
                ],
                untouched=sorted(set(acl.subnet_ids) - set(moved)),
            )
            changes.append(change)
            summary += self._summary(change)
        sources = [c.source_acl_id for c in self._clones(changes)]
        copies = _plural(sources, "the copy", "the copies")
        summary.append(
            f"Undo: move the cache's subnets back to {', '.join(sources)}, then delete {copies}."
        )
        warnings = []
        shared = sorted(set(cache_subnets) & set(ecs_subnets))
        if shared:
            warnings.append(
                f"{', '.join(shared)} hold both the service and the cache: traffic inside one "
                "subnet never crosses its network ACL, so tasks there keep reaching the cache."
            )
        refuse_what_aws_refuses(self.name, [r for c in self._clones(changes) for r in _requests(c)])
        return Plan(
            drill=self.name,
            summary=summary,
            changes=changes,
            before=self.snapshot(changes),
            warnings=warnings,
        )

    @staticmethod
    def _summary(change: AclCloneChange) -> list[str]:
        copied, source = change.copied, change.source_acl_id
        inbound = sum(1 for e in copied if not e.egress)
        moved = [s.subnet_id for s in change.subnets]
        lines = [
            f"Create a network ACL in {change.vpc_id} (tagged managed-by=rexctl, "
            f"{DRILL_TAG}=<drill id>): a copy of {source} with its {len(copied)} entries "
            f"({inbound} inbound, {len(copied) - inbound} outbound; AWS's default deny-all `*` "
            "entries are not copied, the new ACL has its own)",
            *(f"Add to the copy: {e.label()}" for e in change.denied),
            f"Move {', '.join(moved)} (the cache's subnets) from {source} to the copy",
        ]
        if change.untouched:
            keep = _plural(change.untouched, "keeps", "keep")
            they = _plural(change.untouched, "it shares", "they share")
            lines.append(
                f"Not affected: {', '.join(change.untouched)} {keep} {source} ({they} that ACL)"
            )
        else:
            lines.append(f"No other subnet uses {source}.")
        return lines

    @staticmethod
    def _clones(changes: Sequence[Change]) -> list[AclCloneChange]:
        return [c for c in changes if isinstance(c, AclCloneChange)]

    @staticmethod
    def _entries(changes: Sequence[Change]) -> list[nacl.AclEntry]:
        """The DENY entries of a journal written by earlier rexctl (added in place)."""
        return [c.entry for c in changes if isinstance(c, NaclEntryChange)]

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        ec2 = self.clients.ec2
        for change in self._clones(journal.changes):
            self._still_as_planned(change)
            change.drill_tag = journal.id
            save()  # from here on, a copy whose id was not journaled yet is found by its tag
            clone = nacl.create_acl(ec2, change.vpc_id, _copy_tags(journal.id, change))
            change.clone_acl_id = clone
            journal.note(f"created {clone}, a copy of {change.source_acl_id}")
            save()
            for entry in [*change.copied, *change.denied]:
                nacl.create_entry(ec2, clone, entry, sleep=self.sleep)
            journal.note(
                f"copied {len(change.copied)} entries into {clone}, added "
                f"{len(change.denied)} DENY entries"
            )
            self._check_copy(change)
            for move in change.subnets:
                move.association_id = nacl.replace_association(
                    ec2, move.association_id, clone, sleep=self.sleep
                )
                move.acl_id = clone
                journal.note(f"moved {move.subnet_id} to {clone} ({move.association_id})")
                save()  # the new association id, before the next call

    def _still_as_planned(self, change: AclCloneChange) -> None:
        """Nothing changes unless the ACL and the associations are still what was shown."""
        ec2, source = self.clients.ec2, change.source_acl_id
        now = sorted(e.key() for e in nacl.describe_acl(ec2, source).own_entries())
        if now != sorted(e.key() for e in change.copied):
            raise CheckFailed(
                f"Network ACL {source} changed since the drill was planned. Nothing was changed.",
                hint="Run the drill again: it plans from what is there now.",
            )
        found = nacl.associations(ec2, [m.subnet_id for m in change.subnets])
        for move in change.subnets:
            current = found.get(move.subnet_id)
            if current is None or current.acl_id != source:
                raise CheckFailed(
                    f"Subnet {move.subnet_id} no longer uses network ACL {source}. Nothing was "
                    "changed.",
                    hint="Run the drill again: it plans from what is there now.",
                )
            move.association_id = current.association_id

    def _check_copy(self, change: AclCloneChange) -> None:
        """The copy holds every entry rexctl created in it, before any subnet moves to it."""
        acl = nacl.describe_acl(self.clients.ec2, change.clone_acl_id)
        have = {e.key() for e in acl.own_entries()}
        lacking = [e for e in [*change.copied, *change.denied] if e.key() not in have]
        if lacking:
            from rexctl.errors import AwsError

            raise AwsError(
                f"The copy {acl.id} lacks {len(lacking)} of the entries rexctl created in it "
                f"(first: {lacking[0].label()}); no subnet was moved to it."
            )

    def _copy_ids(self, change: AclCloneChange) -> set[str]:
        """The drill's copy: journaled, or (the machine died before its id was) found by tag."""
        if change.clone_acl_id:
            return {change.clone_acl_id}
        if not change.drill_tag:
            return set()  # the copy is created only after the tag is journaled
        return set(nacl.tagged_acls(self.clients.ec2, change.vpc_id, DRILL_TAG, change.drill_tag))

    def restore(self, changes: list[Change], save: Callable[[], None] = _nothing) -> None:
        ec2 = self.clients.ec2
        for entry in self._entries(changes):
            nacl.delete_entry(ec2, entry)
        for change in self._clones(changes):
            copies = self._copy_ids(change)
            if not change.clone_acl_id and len(copies) == 1:
                change.clone_acl_id = next(iter(copies))
                save()
            self._track_strays(change, copies)
            found = nacl.associations(ec2, [m.subnet_id for m in change.subnets])
            for move in change.subnets:
                current = found.get(move.subnet_id)
                if current is None:
                    continue
                if (move.association_id, move.acl_id) != (current.association_id, current.acl_id):
                    move.association_id, move.acl_id = current.association_id, current.acl_id
                    save()  # what AWS says now (the journal may predate the last move)
                if current.acl_id in copies:
                    move.association_id = nacl.replace_association(
                        ec2, current.association_id, move.original_acl_id, sleep=self.sleep
                    )
                    move.acl_id = move.original_acl_id
                    save()  # the new association id, before the next call
            for copy in sorted(copies):
                nacl.delete_acl(ec2, copy)  # AWS refuses while a subnet still uses it

    def _track_strays(self, change: AclCloneChange, copies: set[str]) -> None:
        """Subnets on the drill's copy that the journal does not list (it was cut short before
        them): every subnet on a copy came from the copied ACL, so they go back there too."""
        listed = {m.subnet_id for m in change.subnets}
        for copy in sorted(copies):
            acl = nacl.find_acl(self.clients.ec2, copy)
            strays = {} if acl is None else acl.associations
            for subnet, association in sorted(strays.items()):
                if subnet not in listed:
                    change.subnets.append(
                        SubnetMove(subnet, change.source_acl_id, association, copy)
                    )
                    listed.add(subnet)

    def confirm_restored(self, changes: list[Change]) -> list[str]:
        ec2 = self.clients.ec2
        problems = []
        for entry in self._entries(changes):
            found = nacl.entry_at(ec2, entry.acl_id, entry.rule_number, entry.egress)
            if found is not None and entry.matches(found):
                problems.append(f"{entry.label()} is still there")
        for change in self._clones(changes):
            copies = self._copy_ids(change)
            now = nacl.associations(ec2, [m.subnet_id for m in change.subnets])
            for move in change.subnets:
                current = now.get(move.subnet_id)
                if current is not None and current.acl_id in copies:
                    problems.append(
                        f"{move.subnet_id} still uses {current.acl_id}, the drill's copy of "
                        f"{change.source_acl_id}"
                    )
            problems += [
                f"the drill's copy {copy} still exists"
                for copy in sorted(copies)
                if nacl.find_acl(ec2, copy) is not None
            ]
        return problems

    def snapshot(self, changes: list[Change]) -> dict[str, Any]:
        acls = {e.acl_id for e in self._entries(changes)}
        acls |= {c.source_acl_id for c in self._clones(changes)}
        return {"network_acls": {a: nacl.acl_snapshot(self.clients.ec2, a) for a in sorted(acls)}}

    def manual_undo(self, changes: list[Change], aws: Mapping[str, str]) -> list[str]:
        target = cli_target(aws)
        commands = [entry.cli_delete(target) for entry in self._entries(changes)]
        for change in self._clones(changes):
            for move in change.subnets:
                if move.acl_id != move.original_acl_id:
                    commands.append(
                        "aws ec2 replace-network-acl-association --association-id "
                        f"{shlex.quote(move.association_id)} --network-acl-id "
                        f"{shlex.quote(move.original_acl_id)}{target}"
                    )
            if change.clone_acl_id:
                commands.append(
                    "aws ec2 delete-network-acl --network-acl-id "
                    f"{shlex.quote(change.clone_acl_id)}{target}"
                )
            elif change.drill_tag:  # a copy may exist whose id was not journaled: find it
                commands.append(
                    "aws ec2 describe-network-acls --filters "
                    + shlex.quote(f"Name=tag:{DRILL_TAG},Values={change.drill_tag}")
                    + " --query 'NetworkAcls[].NetworkAclId' --output text"
                    + target
                )
        return commands


def _copy_tags(drill_id: str, change: AclCloneChange) -> dict[str, str]:
    return {
        MANAGED_BY[0]: MANAGED_BY[1],
        DRILL_TAG: drill_id,
        "Name": f"rexctl drill {drill_id}: copy of {change.source_acl_id}",
    }


def _requests(change: AclCloneChange) -> list[Request]:
    """Every request the drill sends for this copy, injecting and restoring (ids not known at
    plan time are placeholders)."""
    from rexctl.drills.journal import new_drill_id

    tags = _copy_tags(new_drill_id(BreakNacl.name), change)
    create = nacl.create_acl_request(change.vpc_id, tags)
    requests: list[Request] = [("ec2", "CreateNetworkAcl", create)]
    requests += [
        ("ec2", "CreateNetworkAclEntry", e.request(COPY)) for e in [*change.copied, *change.denied]
    ]
    for move in change.subnets:
        there = {"AssociationId": move.association_id, "NetworkAclId": COPY}
        back = {"AssociationId": "aclassoc-(new)", "NetworkAclId": move.original_acl_id}
        requests += [
            ("ec2", "ReplaceNetworkAclAssociation", there),
            ("ec2", "ReplaceNetworkAclAssociation", back),
        ]
    requests.append(("ec2", "DeleteNetworkAcl", {"NetworkAclId": COPY}))
    return requests


# --- wrong-host -------------------------------------------------------------------------------


MAX_REVISIONS_SEARCHED = 20  # registered after the previous revision, newest first


def _bad_revision(base: TaskDefinition, change: ServiceRevisionChange, drill_id: str) -> Any:
    """The RegisterTaskDefinition kwargs of the bad revision: `base` with REDIS_HOST broken,
    tagged with the drill, and rexctl:previous-revision = `base` itself. build_revision copies
    the base's tags, so without that the bad revision would name the base's predecessor and a
    `rexctl rollback` while the drill is stuck would go one revision too far."""
    from rexctl.aws.ecs import build_revision
    from rexctl.deploy.revision import PREVIOUS_TAG

    return build_revision(
        base,
        container=change.container,
        set_env={"REDIS_HOST": change.bad_host},
        extra_tags={DRILL_TAG: drill_id, PREVIOUS_TAG: base.arn},
    )


def _revision_status(ecs: Any, arn: str) -> str:
    """ACTIVE, INACTIVE, ... of a revision. ECS may answer DescribeTaskDefinition of a
    deregistered revision with ClientException ("Unable to describe task definition.") once it
    no longer keeps it, or after DeleteTaskDefinitions: that counts as INACTIVE (deregistered)."""
    from rexctl.aws.ecs import short_arn

    resp = unless_missing(
        "ClientException",
        f"describe task definition {short_arn(arn)}",
        lambda: ecs.describe_task_definition(taskDefinition=arn),
    )
    if resp is None:
        return "INACTIVE"
    return str(resp["taskDefinition"].get("status", ""))


class WrongHost(_Base):
    name = "wrong-host"
    expect_new_tasks = True
    not_observed_reason = "Answers kept coming from the cache although REDIS_HOST does not resolve."

    def plan(self, cfg: Config) -> Plan:
        from rexctl.aws.ecs import describe_service, describe_task_definition, short_arn

        service = describe_service(self.clients.ecs, cfg.ecs.cluster, cfg.ecs.service)
        td = describe_task_definition(self.clients.ecs, service.task_definition)
        env = td.environment(cfg.ecs.container)
        current = env.get("REDIS_HOST", "")
        if not current:
            raise ConfigError(
                f"Container {cfg.ecs.container!r} of {td.family}:{td.revision} has no REDIS_HOST.",
                hint="Run `rexctl deploy` first: this drill breaks the address it set.",
            )
        if current.endswith(".invalid"):
            raise ConfigError(
                f"{td.family}:{td.revision} already has REDIS_HOST={current}.",
                hint="A drill may still be in place: run `rexctl chaos restore`, or "
                "`rexctl deploy` to set the right address.",
            )
        bad_host = f"{cfg.cache.id}.invalid"
        change = ServiceRevisionChange(
            cluster=cfg.ecs.cluster,
            service=cfg.ecs.service,
            container=cfg.ecs.container,
            previous=td.arn,
            bad_host=bad_host,
        )
        from rexctl.drills.journal import new_drill_id

        bad = "arn:aws:ecs:region:account:task-definition/(the bad revision)"
        register = _bad_revision(td, change, new_drill_id(self.name))
        refuse_what_aws_refuses(
            self.name,
            [
                ("ecs", "RegisterTaskDefinition", register),
                ("ecs", "UpdateService", {"cluster": change.cluster, "service": change.service,
                                          "taskDefinition": bad}),
                ("ecs", "UpdateService", {"cluster": change.cluster, "service": change.service,
                                          "taskDefinition": td.arn}),
                ("ecs", "DeregisterTaskDefinition", {"taskDefinition": bad}),
            ],
        )  # fmt: skip
        return Plan(
            drill=self.name,
            summary=[
                f"Register a copy of {short_arn(td.arn)} with REDIS_HOST={bad_host} "
                f"(was {current}) in container {cfg.ecs.container}",
                f"Roll ECS service {cfg.ecs.service} to it and wait for the rollout",
                f"Undo: roll the service back to {short_arn(td.arn)}, wait, deregister the bad "
                "revision.",
            ],
            changes=[change],
            before=self.snapshot([change]),
        )

    @staticmethod
    def _revisions(changes: list[Change]) -> list[ServiceRevisionChange]:
        return [c for c in changes if isinstance(c, ServiceRevisionChange)]

    def _wait(self, change: ServiceRevisionChange, arn: str) -> Any:
        from rexctl.deploy import wait_for_rollout

        wait = self._wait_rollout or wait_for_rollout
        return wait(
            self.clients.ecs,
            cluster=change.cluster,
            service=change.service,
            task_definition_arn=arn,
            timeout=self.rollout_timeout,
            poll=self.rollout_poll,
            sleep=self.sleep,
            clock=self.clock,
        )

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        from rexctl.aws.ecs import (
            describe_task_definition,
            register_revision,
            short_arn,
            update_service,
        )

        (change,) = self._revisions(journal.changes)
        base = describe_task_definition(self.clients.ecs, change.previous)
        kwargs = _bad_revision(base, change, journal.id)
        change.drill_tag = journal.id
        save()  # a crash right after registering can still find the revision by this tag
        bad = register_revision(self.clients.ecs, kwargs)
        change.bad = bad.arn
        journal.note(f"registered {short_arn(bad.arn)}")
        save()  # before the service changes: a crash from here on still knows the bad ARN
        update_service(self.clients.ecs, change.cluster, change.service, bad.arn)
        journal.note(f"rolled {change.service} to {short_arn(bad.arn)}")
        result = self._wait(change, bad.arn)
        if not result.ok:
            raise CheckFailed(
                f"The tasks with REDIS_HOST={change.bad_host} did not come up and stay up: "
                f"{result.reason}",
                hint="A backend must start without its cache; see the service's events above.",
            )
        journal.note(f"rollout of {short_arn(bad.arn)} completed")

    def restore(self, changes: list[Change], save: Callable[[], None] = _nothing) -> None:
        from rexctl.aws.ecs import (
            deregister_task_definition,
            describe_service,
            update_service,
        )
        from rexctl.errors import AwsError

        for change in self._revisions(changes):
            if not change.bad:
                change.bad = self._unjournaled_revision(change)
            view = describe_service(self.clients.ecs, change.cluster, change.service)
            # Only this drill's own revision is rolled back: the service is moved to the bad
            # revision only after its ARN is journaled, and a service on any other revision
            # (a deploy meanwhile, another drill) is not this drill's to change.
            if change.bad and view.task_definition == change.bad:
                update_service(self.clients.ecs, change.cluster, change.service, change.previous)
            if view.task_definition in (change.bad, change.previous):
                result = self._wait(change, change.previous)
                if not result.ok:
                    raise AwsError(
                        f"The rollback to {change.previous} did not finish: {result.reason}"
                    )
            if change.bad and _revision_status(self.clients.ecs, change.bad) != "INACTIVE":
                deregister_task_definition(self.clients.ecs, change.bad)

    def _unjournaled_revision(self, change: ServiceRevisionChange) -> str:
        """The bad revision of a drill that died between registering it and journaling its ARN:
        the revision after `previous` that carries this drill's tag ('' when there is none)."""
        from rexctl.aws.ecs import describe_task_definition, short_arn

        if not change.drill_tag:
            return ""
        family, _, revision = short_arn(change.previous).rpartition(":")
        latest = describe_task_definition(self.clients.ecs, family).revision
        for number in range(latest, int(revision), -1)[:MAX_REVISIONS_SEARCHED]:
            name = f"{family}:{number}"
            resp = unless_missing(  # a deregistered revision may not be describable any more
                "ClientException",
                f"describe task definition {name}",
                lambda name=name: self.clients.ecs.describe_task_definition(  # type: ignore[misc]
                    taskDefinition=name, include=["TAGS"]
                ),
            )
            tags = [] if resp is None else resp.get("tags", [])
            if {"key": DRILL_TAG, "value": change.drill_tag} in tags:
                return str(resp["taskDefinition"]["taskDefinitionArn"]) if resp else ""
        return ""

    def confirm_restored(self, changes: list[Change]) -> list[str]:
        from rexctl.aws.ecs import describe_service, short_arn

        problems = []
        for change in self._revisions(changes):
            view = describe_service(self.clients.ecs, change.cluster, change.service)
            if change.bad and view.task_definition == change.bad:
                problems.append(
                    f"service {change.service} still runs {short_arn(change.bad)}, the drill's "
                    f"revision, not {short_arn(change.previous)}"
                )
            if change.bad:
                status = _revision_status(self.clients.ecs, change.bad)
                if status != "INACTIVE":
                    problems.append(f"{short_arn(change.bad)} is still {status}")
        return problems

    def snapshot(self, changes: list[Change]) -> dict[str, Any]:
        from rexctl.aws.ecs import describe_service, describe_task_definition

        out: dict[str, Any] = {}
        for change in self._revisions(changes):
            view = describe_service(self.clients.ecs, change.cluster, change.service)
            previous = describe_task_definition(self.clients.ecs, change.previous)
            out[change.service] = {
                "task_definition": view.task_definition,
                "desired": view.desired,
                "subnets": sorted(view.subnets),
                "security_groups": sorted(view.security_groups),
                "previous_status": previous.raw.get("status"),
            }
        return {"services": out}

    def manual_undo(self, changes: list[Change], aws: Mapping[str, str]) -> list[str]:
        suffix = cli_target(aws)
        commands = []
        for change in self._revisions(changes):
            commands.append(
                f"aws ecs update-service --cluster {change.cluster} --service "
                f"{change.service} --task-definition {change.previous}{suffix}"
            )
            if change.bad:
                commands.append(
                    f"aws ecs deregister-task-definition --task-definition {change.bad}{suffix}"
                )
        return commands


FAULTS: dict[str, type[_Base]] = {f.name: f for f in (BreakSg, BreakNacl, WrongHost)}


def make_fault(name: str, clients: Clients, **kwargs: Any) -> Fault:
    """The fault called `name`; an unknown name is bad input."""
    cls = FAULTS.get(name)
    if cls is None:
        raise ConfigError(f"Unknown drill {name!r}. Drills: {', '.join(DRILLS)}.")
    fault: Fault = cls(clients, **kwargs)  # type: ignore[assignment]
    return fault
