"""The three faults of the guide's step 15, behind one small protocol.

A fault is planned from the configuration with read-only calls (`plan`: what will change, a
normalized "before" describe, and the exact undo data that goes into the journal), then injected,
restored and confirmed. Restoring needs nothing but the journal's `changes`, so
`rexctl chaos restore` can undo a drill after the machine that ran it died. Every `restore` is
idempotent: it may run on a fault that was only half injected, or already undone.

- break-sg revokes the cache security group's inbound rule(s) whose source is the service's
  security group, and re-authorizes them identically (ports, protocol, source, description, tags).
  Open connections survive it (security-group connection tracking), so it may not be observed.
- break-nacl adds DENY entries for the cache port, in both directions, for each of the service's
  subnet CIDRs, to the network ACLs of the cache's subnets. ACLs are stateless: the inbound entry
  drops the packets of open connections too. Only the cache port is denied: denying the replies'
  ephemeral ports as well would also cut anything else in those subnets (often the database).
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
from rexctl.errors import CheckFailed, ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

    from rexctl.aws.session import Clients
    from rexctl.config import Config
    from rexctl.drills.journal import Journal

DRILLS = ("break-sg", "break-nacl", "wrong-host")


@dataclass
class Plan:
    """What a drill will change (in words and as undo data) and how things look before it."""

    drill: str
    summary: list[str]
    changes: list[dict[str, Any]]
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
    def restore(self, changes: list[dict[str, Any]]) -> None: ...
    def confirm_restored(self, changes: list[dict[str, Any]]) -> list[str]: ...
    def snapshot(self, changes: list[dict[str, Any]]) -> dict[str, Any]: ...
    def manual_undo(self, changes: list[dict[str, Any]], aws: Mapping[str, str]) -> list[str]: ...


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
    ) -> None:
        self.clients = clients
        self.sleep = sleep
        self.clock = clock
        self.rollout_timeout = rollout_timeout
        self.rollout_poll = rollout_poll
        self._wait_rollout = wait_rollout


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
        return Plan(
            drill=self.name,
            summary=[f"Revoke {r.label()} ({r.description or 'no description'})" for r in rules]
            + ["Undo: authorize the same rule again (same ports, source, description, tags)."],
            changes=[{"type": "sg-rule", "rule": r.to_dict()} for r in rules],
            before=self.snapshot([{"type": "sg-rule", "rule": r.to_dict()} for r in rules]),
            warnings=warnings,
        )

    @staticmethod
    def _rules(changes: list[dict[str, Any]]) -> list[ec2_api.Rule]:
        return [ec2_api.Rule.from_dict(c["rule"]) for c in changes if c["type"] == "sg-rule"]

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        for rule in self._rules(journal.changes):
            ec2_api.revoke_rule(self.clients.ec2, rule)
            journal.note(f"revoked {rule.label()}")

    def restore(self, changes: list[dict[str, Any]]) -> None:
        for rule in self._rules(changes):
            ec2_api.authorize_rule(self.clients.ec2, rule)

    def confirm_restored(self, changes: list[dict[str, Any]]) -> list[str]:
        return [
            f"{rule.label()} is not back"
            for rule in self._rules(changes)
            if not ec2_api.rule_present(self.clients.ec2, rule)
        ]

    def snapshot(self, changes: list[dict[str, Any]]) -> dict[str, Any]:
        groups = sorted({r.group_id for r in self._rules(changes)})
        ec2 = self.clients.ec2
        return {"security_groups": {g: ec2_api.security_group_snapshot(ec2, g) for g in groups}}

    def manual_undo(self, changes: list[dict[str, Any]], aws: Mapping[str, str]) -> list[str]:
        return [rule.cli_authorize(cli_target(aws)) for rule in self._rules(changes)]


# --- break-nacl -------------------------------------------------------------------------------


def plan_deny_entries(acl: nacl.NetworkAcl, cidrs: Sequence[str], port: int) -> list[nacl.AclEntry]:
    """DENY entries, both directions, for each CIDR on `port`, at the lowest free rule numbers.

    ACL entries are evaluated in ascending rule number and the first match wins, so a DENY only
    takes effect below every ALLOW that would match the same traffic. The lowest free numbers
    (1, 2, ...) come before almost everything people number by hand (100, 110, ...), leave those
    numbers alone, and are checked against each ALLOW that could match first.
    """
    planned: list[nacl.AclEntry] = []
    for egress in (False, True):
        same_way = [e for e in acl.entries if e.egress == egress]
        used = {e.rule_number for e in same_way}
        number = 0
        for cidr in cidrs:
            number += 1
            while number in used:
                number += 1
            if number > nacl.MAX_RULE_NUMBER:
                raise ConfigError(f"Network ACL {acl.id} has no free rule number.")
            earlier_allow = [
                e
                for e in same_way
                if e.action == "allow" and e.rule_number < number and e.covers(cidr, port)
            ]
            if earlier_allow:
                raise ConfigError(
                    f"Network ACL {acl.id} allows this traffic at rule "
                    f"{earlier_allow[0].rule_number}, before any free rule number; a DENY entry "
                    "could not take effect.",
                    hint="Renumber that entry above a free number, or use `rexctl chaos break-sg`.",
                )
            used.add(number)
            planned.append(
                nacl.AclEntry(
                    acl_id=acl.id, rule_number=number, egress=egress, cidr=cidr, port=port
                )
            )
    return planned


class BreakNacl(_Base):
    name = "break-nacl"
    not_observed_reason = (
        "No Redis error was logged and answers kept coming from the cache although the network "
        "ACLs deny the cache port: the service may not reach the cache through these subnets "
        "(check `cache.subnet_group` and `ecs.subnets`)."
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
        cidrs = sorted(set(ec2_api.subnet_cidrs(ec2, ecs_subnets).values()))
        acls = nacl.acls_for_subnets(ec2, cache_subnets)
        if not acls:
            raise ConfigError(f"No network ACL is associated with {', '.join(cache_subnets)}.")
        warnings = []
        shared = sorted(set(cache_subnets) & set(ecs_subnets))
        if shared:
            warnings.append(
                f"{', '.join(shared)} hold both the service and the cache: traffic inside one "
                "subnet never crosses its network ACL, so tasks there keep reaching the cache."
            )
        entries = [e for acl in acls for e in plan_deny_entries(acl, cidrs, cfg.cache.port)]
        changes = [{"type": "nacl-entry", "entry": e.to_dict()} for e in entries]
        return Plan(
            drill=self.name,
            summary=[f"Add {e.label()}" for e in entries]
            + ["Undo: delete exactly these entries (rule numbers that were free)."],
            changes=changes,
            before=self.snapshot(changes),
            warnings=warnings,
        )

    @staticmethod
    def _entries(changes: list[dict[str, Any]]) -> list[nacl.AclEntry]:
        return [nacl.AclEntry.from_dict(c["entry"]) for c in changes if c["type"] == "nacl-entry"]

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        for entry in self._entries(journal.changes):
            nacl.add_entry(self.clients.ec2, entry)
            journal.note(f"added {entry.label()}")

    def restore(self, changes: list[dict[str, Any]]) -> None:
        for entry in self._entries(changes):
            nacl.delete_entry(self.clients.ec2, entry)

    def confirm_restored(self, changes: list[dict[str, Any]]) -> list[str]:
        problems = []
        for entry in self._entries(changes):
            found = nacl.entry_at(self.clients.ec2, entry.acl_id, entry.rule_number, entry.egress)
            if found is not None and entry.matches(found):
                problems.append(f"{entry.label()} is still there")
        return problems

    def snapshot(self, changes: list[dict[str, Any]]) -> dict[str, Any]:
        acls = sorted({e.acl_id for e in self._entries(changes)})
        return {"network_acls": {a: nacl.acl_snapshot(self.clients.ec2, a) for a in acls}}

    def manual_undo(self, changes: list[dict[str, Any]], aws: Mapping[str, str]) -> list[str]:
        return [entry.cli_delete(cli_target(aws)) for entry in self._entries(changes)]


# --- wrong-host -------------------------------------------------------------------------------


DRILL_TAG = "rexctl:drill"
MAX_REVISIONS_SEARCHED = 20  # registered after the previous revision, newest first


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
        change = {
            "type": "service-revision",
            "cluster": cfg.ecs.cluster,
            "service": cfg.ecs.service,
            "container": cfg.ecs.container,
            "previous": td.arn,
            "bad": "",  # filled in (and journaled) right after the bad revision is registered
            "bad_host": bad_host,
            "drill_tag": "",  # the bad revision's rexctl:drill tag, journaled before registering
        }
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

    def _wait(self, change: dict[str, Any], arn: str) -> Any:
        from rexctl.deploy import wait_for_rollout

        wait = self._wait_rollout or wait_for_rollout
        return wait(
            self.clients.ecs,
            cluster=change["cluster"],
            service=change["service"],
            task_definition_arn=arn,
            timeout=self.rollout_timeout,
            poll=self.rollout_poll,
            sleep=self.sleep,
            clock=self.clock,
        )

    def inject(self, journal: Journal, save: Callable[[], None]) -> None:
        from rexctl.aws.ecs import (
            build_revision,
            describe_task_definition,
            register_revision,
            short_arn,
            update_service,
        )

        change = journal.changes[0]
        base = describe_task_definition(self.clients.ecs, change["previous"])
        kwargs = build_revision(
            base,
            container=change["container"],
            set_env={"REDIS_HOST": change["bad_host"]},
            extra_tags={DRILL_TAG: journal.id},
        )
        change["drill_tag"] = journal.id
        save()  # a crash right after registering can still find the revision by this tag
        bad = register_revision(self.clients.ecs, kwargs)
        change["bad"] = bad.arn
        journal.note(f"registered {short_arn(bad.arn)}")
        save()  # before the service changes: a crash from here on still knows the bad ARN
        update_service(self.clients.ecs, change["cluster"], change["service"], bad.arn)
        journal.note(f"rolled {change['service']} to {short_arn(bad.arn)}")
        result = self._wait(change, bad.arn)
        if not result.ok:
            raise CheckFailed(
                f"The tasks with REDIS_HOST={change['bad_host']} did not come up and stay up: "
                f"{result.reason}",
                hint="A backend must start without its cache; see the service's events above.",
            )
        journal.note(f"rollout of {short_arn(bad.arn)} completed")

    def restore(self, changes: list[dict[str, Any]]) -> None:
        from rexctl.aws.ecs import (
            deregister_task_definition,
            describe_service,
            describe_task_definition,
            update_service,
        )
        from rexctl.errors import AwsError

        for change in changes:
            if not change["bad"]:
                change["bad"] = self._unjournaled_revision(change)
            view = describe_service(self.clients.ecs, change["cluster"], change["service"])
            if view.task_definition != change["previous"]:
                update_service(
                    self.clients.ecs, change["cluster"], change["service"], change["previous"]
                )
            result = self._wait(change, change["previous"])
            if not result.ok:
                raise AwsError(
                    f"The rollback to {change['previous']} did not finish: {result.reason}"
                )
            if change["bad"]:
                td = describe_task_definition(self.clients.ecs, change["bad"])
                if td.raw.get("status") != "INACTIVE":
                    deregister_task_definition(self.clients.ecs, change["bad"])

    def _unjournaled_revision(self, change: dict[str, Any]) -> str:
        """The bad revision of a drill that died between registering it and journaling its ARN:
        the revision after `previous` that carries this drill's tag ('' when there is none)."""
        from rexctl.aws.ecs import describe_task_definition, short_arn

        if not change.get("drill_tag"):
            return ""
        family, _, revision = short_arn(change["previous"]).rpartition(":")
        latest = describe_task_definition(self.clients.ecs, family).revision
        for number in range(latest, int(revision), -1)[:MAX_REVISIONS_SEARCHED]:
            td = describe_task_definition(self.clients.ecs, f"{family}:{number}")
            if {"key": DRILL_TAG, "value": change["drill_tag"]} in td.tags:
                return td.arn
        return ""

    def confirm_restored(self, changes: list[dict[str, Any]]) -> list[str]:
        from rexctl.aws.ecs import describe_service, describe_task_definition, short_arn

        problems = []
        for change in changes:
            view = describe_service(self.clients.ecs, change["cluster"], change["service"])
            if view.task_definition != change["previous"]:
                problems.append(
                    f"service {change['service']} runs {short_arn(view.task_definition)}, "
                    f"not {short_arn(change['previous'])}"
                )
            if change["bad"]:
                status = describe_task_definition(self.clients.ecs, change["bad"]).raw.get("status")
                if status != "INACTIVE":
                    problems.append(f"{short_arn(change['bad'])} is still {status}")
        return problems

    def snapshot(self, changes: list[dict[str, Any]]) -> dict[str, Any]:
        from rexctl.aws.ecs import describe_service, describe_task_definition

        out: dict[str, Any] = {}
        for change in changes:
            view = describe_service(self.clients.ecs, change["cluster"], change["service"])
            previous = describe_task_definition(self.clients.ecs, change["previous"])
            out[change["service"]] = {
                "task_definition": view.task_definition,
                "desired": view.desired,
                "subnets": sorted(view.subnets),
                "security_groups": sorted(view.security_groups),
                "previous_status": previous.raw.get("status"),
            }
        return {"services": out}

    def manual_undo(self, changes: list[dict[str, Any]], aws: Mapping[str, str]) -> list[str]:
        suffix = cli_target(aws)
        commands = []
        for change in changes:
            commands.append(
                f"aws ecs update-service --cluster {change['cluster']} --service "
                f"{change['service']} --task-definition {change['previous']}{suffix}"
            )
            if change["bad"]:
                commands.append(
                    f"aws ecs deregister-task-definition --task-definition {change['bad']}{suffix}"
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
