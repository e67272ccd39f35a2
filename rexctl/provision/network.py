"""Steps 7 and 8: the cache's subnets (private only) and its security group (one inbound rule,
from the ECS service's group, never from a CIDR), and the way out of the service's security
groups: an outbound rule that lets the tasks reach the cache's port."""

from __future__ import annotations

import ipaddress

from rexctl.aws.ec2 import Rule, SecurityGroup, Subnet, authorize_egress_command, revoke_command
from rexctl.aws.elasticache import same_name
from rexctl.config import BY_KEY, Config
from rexctl.errors import ExitCode
from rexctl.provision.discover import Discovery
from rexctl.provision.model import Action, Plan, Ref, State, Step
from rexctl.provision.tags import managed_tags

STEP7 = "Networking: VPC, private subnets, no public access"
STEP8 = "Security group"
# EC2's character set for a rule description (UserIdGroupPair.Description): no apostrophe.
INGRESS_DESCRIPTION = "rexctl: from the ECS service tasks"
NO_PUBLIC = "ElastiCache nodes only get private addresses: no public access."


def where_set(cfg: Config, key: str) -> str:
    """Where the user changes a setting: the environment variable it came from, else the file."""
    if cfg.sources.get(key) == "env":
        return f"the environment variable {BY_KEY[key].env}"
    return str(cfg.path)


def _modify_subnets(name: str, ids: list[str]) -> str:
    return (
        f"aws elasticache modify-cache-subnet-group --cache-subnet-group-name {name} "
        f"--subnet-ids {' '.join(ids)}"
    )


def cache_subnets(d: Discovery, cfg: Config) -> tuple[list[Subnet], str]:
    """The subnets for the cache, or none and the reason (guide step 7: private ones only)."""
    if cfg.cache.subnets:
        chosen = []
        for subnet_id in cfg.cache.subnets:
            subnet = d.subnet(subnet_id)
            if subnet is None:
                return [], (
                    f"Subnet {subnet_id} (cache.subnets) is not in the ECS service's VPC "
                    f"{d.vpc_id}; the cache must be in the same VPC as the service."
                )
            if subnet.public:
                return [], (
                    f"Subnet {subnet_id} (cache.subnets) is public: {subnet.why}. "
                    "Guide step 7 allows private subnets only."
                )
            chosen.append(subnet)
        return chosen, ""
    private = [s for s in d.subnets if not s.public]
    if not private:
        return [], (
            f"VPC {d.vpc_id} has no private subnet: every subnet's route table sends "
            "0.0.0.0/0 to an internet gateway."
        )
    return private, ""


def step7(d: Discovery, cfg: Config, plan: Plan) -> Step:
    chosen, problem = cache_subnets(d, cfg)
    if problem:
        if cfg.cache.subnets:
            hint = (
                f"Fix `cache.subnets` in {where_set(cfg, 'cache.subnets')}, or leave it empty "
                "to use the VPC's private subnets."
            )
            return plan.block(7, STEP7, problem, hint, ExitCode.BAD_INPUT)
        hint = (
            "Create private subnets (no internet-gateway route; a NAT route is fine) and run "
            "`rexctl provision` again."
        )
        return plan.block(7, STEP7, problem, hint)
    azs = sorted({s.az for s in chosen})
    ids = sorted(s.id for s in chosen)
    if len(azs) == 1:
        plan.warnings.append(
            f"The cache's subnets are all in {azs[0]}: an outage of that zone takes the cache "
            "down. Private subnets in a second zone avoid it."
        )
    name = cfg.cache.subnet_group
    existing = d.subnet_group
    in_use = d.node.subnet_group if d.cache is not None and d.node else ""
    if in_use and not same_name(in_use, name):  # ElastiCache answers in lower case
        return plan.manual_step(
            7,
            STEP7,
            f"{cfg.cache.id} uses subnet group {in_use}, not {name}; the subnet group of an "
            "existing cache cannot be changed in place.",
        )
    if existing is None:
        action = Action(
            7,
            "create_subnet_group",
            f"create cache subnet group {name}",
            {
                "CacheSubnetGroupName": name,
                "CacheSubnetGroupDescription": f"rexctl: private subnets for {cfg.cache.id}",
                "SubnetIds": ids,
                "Tags": managed_tags(cfg.cache.id),
            },
        )
        detail = f"VPC {d.vpc_id}, private subnets {', '.join(ids)} ({', '.join(azs)}). {NO_PUBLIC}"
        return Step(7, STEP7, State.TODO, detail, [action])
    if existing.vpc_id and existing.vpc_id != d.vpc_id:
        return plan.block(
            7,
            STEP7,
            f"Cache subnet group {name} is in {existing.vpc_id}, but the ECS service is in "
            f"{d.vpc_id}.",
            f"Set `cache.subnet_group` to another name in {where_set(cfg, 'cache.subnet_group')}.",
            ExitCode.BAD_INPUT,
        )
    public = [s for s in map(d.subnet, existing.subnet_ids) if s is not None and s.public]
    if public:
        return plan.block(
            7,
            STEP7,
            f"Cache subnet group {name} contains public subnet {public[0].id} ({public[0].why}); "
            "guide step 7 forbids public subnets.",
            f"Remove it: `{_modify_subnets(name, ids)}`.",
        )
    if cfg.cache.subnets and sorted(existing.subnet_ids) != ids:
        return plan.manual_step(
            7,
            STEP7,
            f"Subnet group {name} has {', '.join(existing.subnet_ids)}; rexctl.toml asks for "
            f"{', '.join(ids)}. Run `{_modify_subnets(name, ids)}`.",
        )
    detail = (
        f"subnet group {name} in {d.vpc_id}: private subnets "
        f"{', '.join(existing.subnet_ids)}. {NO_PUBLIC}"
    )
    return Step(7, STEP7, State.DONE, detail)


def cidr_rules(rules: list[Rule], port: int) -> list[Rule]:
    """Inbound rules that let `port` in from an address range (0.0.0.0/0 or narrower)."""
    return [r for r in rules if not r.egress and r.cidr and r.covers(port)]


def step8(d: Discovery, cfg: Config, plan: Plan) -> Step:
    port = cfg.cache.port
    name = cfg.cache.security_group
    tags = managed_tags(cfg.cache.id)
    if not d.service.security_groups:
        return plan.block(
            8,
            STEP8,
            f"The ECS service {d.service.name} lists no security group, so its tasks use the "
            "VPC's default group; guide step 8 needs a group of the service's own as the source "
            "of the cache's inbound rule.",
            "Give the service its own security group (the service's networking settings in the "
            "ECS console, or `aws ecs update-service --network-configuration ...`), then run "
            "`rexctl init --force` and `rexctl provision`.",
        )
    if d.missing_ecs_groups or not d.ecs_groups:
        missing = ", ".join(d.missing_ecs_groups) or "(none)"
        return plan.block(
            8,
            STEP8,
            f"The ECS service {d.service.name}'s security group {missing} does not exist, so "
            "there is no source for the cache's inbound rule.",
            "Fix the service's network configuration (or recreate its security group), then "
            "run `rexctl init --force` and `rexctl provision`.",
            ExitCode.AWS_ERROR,
        )
    source = d.ecs_groups[0].id
    service_groups = {g.id for g in d.ecs_groups}
    want = f"{name}: one inbound rule, TCP {port} from {source} (the ECS service's group)"
    authorize = {
        "Port": port,
        "SourceGroup": source,
        "Description": INGRESS_DESCRIPTION,
        "Tags": tags,
    }
    sg = d.cache_sg
    actions: list[Action] = []
    sg_id: str | Ref
    if sg is None:
        sg_id, group = Ref("cache_sg_id"), f"the new group {name}"
        actions.append(
            Action(
                8,
                "create_security_group",
                f"create security group {name} in {d.vpc_id}",
                {
                    "GroupName": name,
                    "VpcId": d.vpc_id,
                    "Description": (
                        f"rexctl: Redis {cfg.cache.id}, port {port} from the ECS service"
                    ),
                    "Tags": tags,
                },
            )
        )
        actions.append(
            Action(
                8,
                "authorize_ingress",
                f"allow TCP {port} from {source}",
                {"GroupId": sg_id, **authorize},
            )
        )
        state, detail = State.TODO, want + "."
    else:
        sg_id, group = sg.id, sg.id
        cidr = cidr_rules(sg.ingress(), port)
        if cidr:
            listed = "; ".join(f"rule {r.id} from {r.cidr}" for r in cidr)
            commands = " and ".join(f"`{revoke_command(r)}`" for r in cidr)
            return plan.block(
                8,
                STEP8,
                f"Security group {sg.id} ({name}) allows port {port} from an address range "
                f"({listed}); guide step 8 allows only the ECS service's security group.",
                f"Remove it: {commands}, then run `rexctl provision` again.",
            )
        on_port = [r for r in sg.ingress() if r.covers(port)]
        for r in on_port:
            if r.source_group not in service_groups:
                plan.warnings.append(
                    f"Security group {sg.id} also allows port {port} from {r.source} (rule "
                    f"{r.id}); step 8 wants only the ECS service's group. Remove it with "
                    f"`{revoke_command(r)}`."
                )
        state, detail = State.DONE, f"{want} ({sg.id})."
        if not any(r.source_group in service_groups for r in on_port):
            actions.append(
                Action(
                    8,
                    "authorize_ingress",
                    f"allow TCP {port} into {sg.id} from {source}",
                    {"GroupId": sg.id, **authorize},
                )
            )
            state = State.TODO
            detail = f"{sg.id} exists; add its inbound rule: TCP {port} from {source}."
    node_groups = d.node.security_groups if d.cache is not None and d.node else []
    if d.cache is not None and node_groups and sg_id not in node_groups:
        actions.append(
            Action(
                8,
                "modify_replication_group",
                f"put {d.cache.id} in security group {group}",
                {
                    "ReplicationGroupId": d.cache.id,
                    "SecurityGroupIds": [sg_id],
                    "ApplyImmediately": True,
                },
            )
        )
        state = State.CHANGE
        detail = f"{d.cache.id} uses {', '.join(node_groups)}; will use {group} ({want})."
    gap, unsure = egress_gap(d, cfg, sg)
    if unsure:
        plan.warnings.append(unsure)
    if gap:
        plan.manual.append(f"Step 8: {gap}")
        return Step(8, STEP8, State.MANUAL, f"{gap} Otherwise: {detail}", actions)
    return Step(8, STEP8, state, detail, actions)


def _cache_subnet_cidrs(d: Discovery, cfg: Config) -> list[str]:
    """The IPv4 ranges the cache's nodes get their addresses from (its subnet group's subnets,
    else the subnets step 7 chooses)."""
    if d.subnet_group is not None:
        ids = list(d.subnet_group.subnet_ids)
    else:
        ids = [s.id for s in cache_subnets(d, cfg)[0]]
    subnets = [d.subnet(i) for i in ids]
    return sorted({s.cidr for s in subnets if s is not None and s.cidr})


def _opens(rule: Rule, port: int) -> bool:
    return rule.egress and rule.covers(port)


def _holds(rule: Rule, cidr: str) -> bool:
    """Whether an outbound IPv4 rule's range holds all of `cidr` (the nodes have IPv4
    addresses)."""
    if not rule.cidr or ":" in rule.cidr:
        return False
    inner = ipaddress.IPv4Network(cidr, strict=False)
    return inner.subnet_of(ipaddress.IPv4Network(rule.cidr, strict=False))


def _reaches(outbound: list[Rule], port: int, cache_sg: str, cidrs: list[str]) -> bool:
    """Whether the outbound rules let TCP `port` reach the cache: to its group, or to every one
    of its subnets' ranges (each held by some rule)."""
    rules = [r for r in outbound if _opens(r, port)]
    if cache_sg and any(r.source_group == cache_sg for r in rules):
        return True
    return bool(cidrs) and all(any(_holds(r, c) for r in rules) for c in cidrs)


def egress_gap(d: Discovery, cfg: Config, cache_sg: SecurityGroup | None) -> tuple[str, str]:
    """Why the service's tasks could not open a connection to the cache's port, with the command
    that fixes it ('' when an outbound rule of one of its groups allows it), and a warning when
    rexctl cannot tell. Security groups also filter outbound traffic: a group whose egress was
    locked down blocks the cache although the cache's inbound rule is right."""
    port = cfg.cache.port
    cidrs = _cache_subnet_cidrs(d, cfg)
    if not d.ecs_groups or not cidrs:
        return "", ""
    sg_id = cache_sg.id if cache_sg else ""
    outbound = [r for g in d.ecs_groups for r in g.rules if r.egress]
    if _reaches(outbound, port, sg_id, cidrs):
        return "", ""
    groups = ", ".join(g.id for g in d.ecs_groups)
    if any(r.prefix_list and r.covers(port) for r in outbound):
        return "", (
            f"The ECS service's security group(s) {groups} allow TCP {port} out only to a "
            "prefix list; rexctl cannot tell whether it holds the cache's subnets "
            f"({', '.join(cidrs)})."
        )
    target = d.ecs_groups[0].id
    if sg_id:
        command = authorize_egress_command(target, port, to_group=sg_id)
        to = f"{cfg.cache.security_group} ({sg_id})"
    else:
        command = authorize_egress_command(target, port, cidrs=cidrs)
        to = f"the cache's subnets ({', '.join(cidrs)})"
    return (
        f"The ECS service's security group(s) {groups} allow no outbound TCP {port} to the cache "
        f"(to {cfg.cache.security_group}, to its subnets {', '.join(cidrs)}, or to 0.0.0.0/0): "
        f"its tasks could not connect. Allow it to {to}: `{command}`, then run `rexctl "
        "provision` again."
    ), ""
