"""break-nacl confined to the cache's subnets, as AWS Fault Injection Service does it
(`aws:network:disrupt-connectivity`): a copy of their network ACL with the DENY entries, the
cache's subnets moved to it, and back. moto in-process; it behaves as AWS here where it matters:
ReplaceNetworkAclAssociation answers a NEW association id each time, DeleteNetworkAcl refuses
while a subnet is associated. Where moto differs (a new ACL has no default `*` entries in moto,
AWS gives it the deny-all ones), the tests do not depend on it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rexctl.aws import nacl
from rexctl.drills import journal as journal_mod
from rexctl.drills import runner
from rexctl.drills.changes import AclCloneChange
from rexctl.drills.faults import make_fault
from rexctl.drills.journal import Journal
from rexctl.errors import ConfigError
from tests.rexctl.drills import world as w
from tests.rexctl.drills.conftest import Aws
from tests.rexctl.drills.world import journal_for

MUTATING = (
    "create_network_acl",
    "create_network_acl_entry",
    "replace_network_acl_association",
    "delete_network_acl",
)


def acl_view(aws: Aws, acl_id: str) -> dict[str, Any]:
    """The ACL's describe, minus the association ids (AWS gives a subnet a new one each time it
    moves), with entries and associations in a stable order."""
    raw = aws.clients.ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    raw["Entries"] = sorted(raw["Entries"], key=lambda e: (e["Egress"], e["RuleNumber"]))
    raw["Associations"] = sorted(a["SubnetId"] for a in raw["Associations"])
    return dict(raw)


def acl_of(aws: Aws, subnet: str) -> str:
    acls = aws.clients.ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["NetworkAcls"]
    return str(acls[0]["NetworkAclId"])


def drill_copies(aws: Aws) -> list[str]:
    """Every network ACL a drill made (tagged rexctl:drill) that still exists."""
    acls = aws.clients.ec2.describe_network_acls(
        Filters=[{"Name": "tag-key", "Values": ["rexctl:drill"]}]
    )["NetworkAcls"]
    return [a["NetworkAclId"] for a in acls]


def bystander(aws: Aws, cidr: str = "10.0.5.0/24") -> str:
    """Another subnet that shares the cache subnets' ACL (as every subnet shares a VPC's default
    ACL): the drill must leave it alone."""
    ec2 = aws.clients.ec2
    subnet = ec2.create_subnet(VpcId=aws.world.vpc_id, CidrBlock=cidr)["Subnet"]["SubnetId"]
    assoc = nacl.associations(ec2, [subnet])[subnet]
    ec2.replace_network_acl_association(
        AssociationId=assoc.association_id, NetworkAclId=aws.world.acl_id
    )
    return str(subnet)


def on_disk(aws: Aws, journal: Journal) -> Journal:
    return journal_mod.load(journal_mod.journal_path(aws.state_dir, journal.id))


def test_break_nacl_moves_only_the_cache_subnets_to_a_tagged_copy(aws: Aws) -> None:
    ec2, world = aws.clients.ec2, aws.world
    other = bystander(aws)
    before = acl_view(aws, world.acl_id)
    fault = make_fault("break-nacl", aws.clients)
    plan = fault.plan(aws.config())
    (change,) = plan.changes
    assert isinstance(change, AclCloneChange)
    cache = ", ".join(sorted(world.cache_subnets))
    # Shown before confirmation: what moves, and what shares the ACL but stays.
    assert f"Move {cache} (the cache's subnets) from {world.acl_id} to the copy" in plan.summary
    assert f"Not affected: {other} keeps {world.acl_id} (it shares that ACL)" in plan.summary
    assert plan.summary[-1] == (
        f"Undo: move the cache's subnets back to {world.acl_id}, then delete the copy."
    )
    journal = journal_for(plan)
    journal.id = "20260101T000000Z-break-nacl-c0ffee"

    def save() -> None:
        journal_mod.save(journal, aws.state_dir)

    save()
    fault.inject(journal, save)
    clone = change.clone_acl_id
    assert clone and clone != world.acl_id
    tags = {t["Key"]: t["Value"] for t in acl_view(aws, clone)["Tags"]}
    assert tags["managed-by"] == "rexctl" and tags["rexctl:drill"] == journal.id
    assert [acl_of(aws, s) for s in world.cache_subnets] == [clone, clone]
    assert acl_of(aws, other) == world.acl_id, "a subnet sharing the ACL keeps it"
    assert [acl_of(aws, s) for s in world.ecs_subnets] != [clone, clone]
    assert acl_view(aws, world.acl_id)["Entries"] == before["Entries"], "the original is untouched"
    # The copy: the original's entries, and DENY entries inbound only, at the lowest free numbers.
    copied = acl_view(aws, clone)["Entries"]
    added = [e for e in copied if e not in before["Entries"]]
    assert [e for e in copied if e in before["Entries"]] == before["Entries"]
    assert added == [
        {"CidrBlock": w.ECS_CIDR, "Egress": False, "PortRange": {"From": 6379, "To": 6379},
         "Protocol": "6", "RuleAction": "deny", "RuleNumber": 1},
        {"CidrBlock": w.ECS_CIDR_2, "Egress": False, "PortRange": {"From": 6379, "To": 6379},
         "Protocol": "6", "RuleAction": "deny", "RuleNumber": 3},
    ]  # fmt: skip
    assert len(fault.confirm_restored(journal.changes)) == 3  # two subnets, and the copy
    # Every association id AWS answered is in the journal on disk.
    (saved,) = on_disk(aws, journal).changes
    assert isinstance(saved, AclCloneChange)
    now = nacl.associations(ec2, world.cache_subnets)
    assert {s.subnet_id: s.association_id for s in saved.subnets} == {
        s: now[s].association_id for s in world.cache_subnets
    }

    fault.restore(journal.changes, save)
    assert fault.confirm_restored(journal.changes) == []
    assert nacl.find_acl(ec2, clone) is None, "the copy is deleted"
    assert acl_view(aws, world.acl_id) == before
    assert json.loads(json.dumps(fault.snapshot(journal.changes))) == json.loads(
        json.dumps(plan.before)
    )
    (saved,) = on_disk(aws, journal).changes
    now = nacl.associations(ec2, world.cache_subnets)
    assert {s.subnet_id: (s.acl_id, s.association_id) for s in saved.subnets} == {
        s: (world.acl_id, now[s].association_id) for s in world.cache_subnets
    }, "the ids of the way back are journaled too"
    fault.restore(journal.changes, save)  # idempotent
    assert fault.confirm_restored(journal.changes) == []


class Crash(BaseException):
    """The machine running the drill dies."""


class CrashingEc2:
    """The moto EC2 client, except that the machine dies right after the `after`-th change AWS
    made (AWS did it; nothing after it ran, not even journaling its answer)."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.after, self.calls = inner, after, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in MUTATING:
            return attr

        def call(**kwargs: Any) -> Any:
            result = attr(**kwargs)
            self.calls += 1
            if self.calls == self.after:
                raise Crash(name)
            return result

        return call


class Clients:
    def __init__(self, aws: Aws, ec2: Any) -> None:
        self.ec2, self.ecs = ec2, aws.clients.ecs
        self.elasticache, self.logs = aws.clients.elasticache, aws.clients.logs


# Changes AWS makes while injecting, in order: 1 CreateNetworkAcl, 2-5 the copied entries, 6-7
# the DENY entries, 8-9 the two subnets moved. 0: the machine dies before the first one.
@pytest.mark.parametrize("after", range(10))
def test_a_journal_written_at_any_point_restores(aws: Aws, after: int) -> None:
    world = aws.world
    before = acl_view(aws, world.acl_id)
    ec2 = CrashingEc2(aws.clients.ec2, after)
    fault = make_fault("break-nacl", Clients(aws, ec2))
    journal = journal_for(fault.plan(aws.config()))
    journal.id = f"20260101T000000Z-break-nacl-{after:06d}"
    saves = {"n": 0}

    def save() -> None:
        if after == 0 and saves["n"] == 1:
            raise Crash("before any change")
        journal_mod.save(journal, aws.state_dir)
        saves["n"] += 1

    save()
    with pytest.raises(Crash):
        fault.inject(journal, save)
    assert ec2.calls == after
    if after >= 1:
        assert len(drill_copies(aws)) == 1
    (outcome,) = runner.restore_pending(
        runner.pending_journals(aws.state_dir),
        lambda j: make_fault(j.drill, aws.clients),
        aws.state_dir,
        sleep=lambda s: None,
    )
    assert outcome.result.ok, outcome.result.errors
    assert outcome.result.drift == []
    assert drill_copies(aws) == [], "no copy is left behind"
    assert [acl_of(aws, s) for s in world.cache_subnets] == [world.acl_id] * 2
    assert acl_view(aws, world.acl_id) == before


def test_each_new_association_id_is_journaled_before_the_next_call(aws: Aws) -> None:
    """ReplaceNetworkAclAssociation answers a new association id, and the old one is gone: the
    journal on disk must hold every id AWS answered before rexctl sends anything else."""
    inner = aws.clients.ec2
    answered: list[str] = []
    journal: list[Journal] = []

    def journaled_ids() -> set[str]:
        (change,) = on_disk(aws, journal[0]).changes
        assert isinstance(change, AclCloneChange)
        return {s.association_id for s in change.subnets}

    class Ec2:
        def __getattr__(self, name: str) -> Any:
            attr = getattr(inner, name)
            if name not in MUTATING:
                return attr

            def call(**kwargs: Any) -> Any:
                if answered:
                    assert answered[-1] in journaled_ids(), f"{name} before journaling"
                if name != "create_network_acl":
                    (change,) = on_disk(aws, journal[0]).changes
                    assert isinstance(change, AclCloneChange) and change.clone_acl_id
                result = attr(**kwargs)
                if name == "replace_network_acl_association":
                    answered.append(result["NewAssociationId"])
                return result

            return call

    fault = make_fault("break-nacl", Clients(aws, Ec2()))
    journal.append(journal_for(fault.plan(aws.config())))

    def save() -> None:
        journal_mod.save(journal[0], aws.state_dir)

    save()
    fault.inject(journal[0], save)
    fault.restore(journal[0].changes, save)
    assert len(answered) == 4 and len(set(answered)) == 4, "a new id each time"
    assert answered[-1] in journaled_ids()
    assert fault.confirm_restored(journal[0].changes) == []


def test_break_nacl_refuses_a_copy_over_the_entry_quota(aws: Aws) -> None:
    """Amazon VPC quotas: 20 inbound entries per network ACL by default (IPv4; AWS's deny-all `*`
    entry counts). The copy gets the original's entries plus one DENY entry per service CIDR."""
    ec2 = aws.clients.ec2

    def add_inbound(n: int, start: int) -> None:
        for number in range(start, start + n):
            ec2.create_network_acl_entry(
                NetworkAclId=aws.world.acl_id, RuleNumber=number, Protocol="6",
                RuleAction="allow", Egress=False, CidrBlock="10.8.0.0/16",
                PortRange={"From": 443, "To": 443},
            )  # fmt: skip

    add_inbound(15, 200)  # 2 + 15 = 17 inbound, + 2 DENY + `*` = 20: just fits
    make_fault("break-nacl", aws.clients).plan(aws.config())
    add_inbound(1, 300)  # 21
    with pytest.raises(ConfigError) as err:
        make_fault("break-nacl", aws.clients).plan(aws.config())
    assert err.value.message == (
        f"The copy of network ACL {aws.world.acl_id} would hold 21 inbound IPv4 entries (18 "
        "copied, 2 DENY, and AWS's default deny-all `*` entry): more than the 20 a network ACL "
        'may hold (Amazon VPC quotas, "Inbound or outbound rules per network ACL").'
    )
    assert err.value.hint is not None and "Service Quotas" in err.value.hint


@pytest.mark.moto_only  # the world gets an entry AWS would never have created
def test_break_nacl_refuses_a_copy_aws_would_refuse(aws: Aws) -> None:
    """The copy's requests are checked against AWS's documented rules before confirmation: a TCP
    entry without a port range (moto accepts it) cannot be created in the copy on AWS."""
    aws.clients.ec2.create_network_acl_entry(
        NetworkAclId=aws.world.acl_id, RuleNumber=50, Protocol="6", RuleAction="allow",
        Egress=True, CidrBlock="10.0.0.0/16",
    )  # fmt: skip
    before = acl_view(aws, aws.world.acl_id)
    with pytest.raises(ConfigError) as err:
        make_fault("break-nacl", aws.clients).plan(aws.config())
    assert err.value.message.startswith(
        "AWS would refuse a request of this drill: CreateNetworkAclEntry: PortRange is required "
        "for protocol 6 (TCP) and 17 (UDP) (Protocol '6') (EC2 API reference, "
        "CreateNetworkAclEntry.PortRange)."
    )
    assert "Nothing was changed." in err.value.message
    assert acl_view(aws, aws.world.acl_id) == before and drill_copies(aws) == []


def test_break_nacl_denies_an_ipv6_only_service_subnet(aws: Aws) -> None:
    """An IPv6-only subnet has no CidrBlock, only Ipv6CidrBlockAssociationSet: the DENY entry is
    an Ipv6CidrBlock entry for its IPv6 range."""
    ec2, world = aws.clients.ec2, aws.world
    block = ec2.associate_vpc_cidr_block(VpcId=world.vpc_id, AmazonProvidedIpv6CidrBlock=True)
    v6 = block["Ipv6CidrBlockAssociation"]["Ipv6CidrBlock"].replace("00::/56", "07::/64")
    subnet = ec2.create_subnet(VpcId=world.vpc_id, Ipv6CidrBlock=v6, Ipv6Native=True)["Subnet"]
    assert "CidrBlock" not in subnet
    fault = make_fault("break-nacl", aws.clients)
    plan = fault.plan(aws.config(REXCTL_ECS_SUBNETS=subnet["SubnetId"]))
    (change,) = plan.changes
    assert isinstance(change, AclCloneChange)
    assert [(e.rule_number, e.egress, e.ipv6_cidr, e.cidr) for e in change.denied] == [
        (1, False, v6, "")
    ]
    assert f"Add to the copy: rule 1 inbound: DENY tcp 6379 from {v6}" in plan.summary
    journal = journal_for(plan)
    fault.inject(journal, lambda: None)
    entries = acl_view(aws, change.clone_acl_id)["Entries"]
    assert {"Egress": False, "Ipv6CidrBlock": v6, "PortRange": {"From": 6379, "To": 6379},
            "Protocol": "6", "RuleAction": "deny", "RuleNumber": 1} in entries  # fmt: skip
    fault.restore(journal.changes)
    assert fault.confirm_restored(journal.changes) == [] and drill_copies(aws) == []


def test_a_subnet_left_on_a_drill_copy_is_refused(aws: Aws) -> None:
    """A copy a drill made (its journal lost) still holds the cache's subnets: copying the copy
    would bury the fault; rexctl says what it is instead."""
    fault = make_fault("break-nacl", aws.clients)
    journal = journal_for(fault.plan(aws.config()))
    fault.inject(journal, lambda: None)
    (change,) = journal.changes
    assert isinstance(change, AclCloneChange)
    with pytest.raises(ConfigError) as err:
        make_fault("break-nacl", aws.clients).plan(aws.config())
    assert err.value.message == (
        f"Network ACL {change.clone_acl_id} of the cache's subnets is a copy made by drill "
        f"{journal.id} (tag rexctl:drill): that drill is still in place."
    )


def test_the_address_ranges_of_an_ipv6_only_subnet() -> None:
    """DescribeSubnets as AWS answers it for an IPv6-only subnet: no CidrBlock at all, the range
    in Ipv6CidrBlockAssociationSet (a block being removed does not count)."""
    import boto3
    from botocore.stub import Stubber

    from rexctl.aws import ec2 as ec2_api

    ec2 = boto3.client("ec2", region_name="us-east-1")
    v6_only = {
        "SubnetId": "subnet-v6", "VpcId": "vpc-1", "Ipv6Native": True,
        "Ipv6CidrBlockAssociationSet": [
            {"AssociationId": "a1", "Ipv6CidrBlock": "2600:1f18:abcd:e00::/64",
             "Ipv6CidrBlockState": {"State": "associated"}},
            {"AssociationId": "a2", "Ipv6CidrBlock": "2600:1f18:abcd:e01::/64",
             "Ipv6CidrBlockState": {"State": "disassociated"}},
        ],
    }  # fmt: skip
    dual = {"SubnetId": "subnet-dual", "VpcId": "vpc-1", "CidrBlock": "10.0.1.0/24",
            "Ipv6CidrBlockAssociationSet": [
                {"AssociationId": "a3", "Ipv6CidrBlock": "2600:1f18:abcd:e02::/64",
                 "Ipv6CidrBlockState": {"State": "associated"}}]}  # fmt: skip
    with Stubber(ec2) as stub:
        for _ in range(2):
            stub.add_response(
                "describe_subnets",
                {"Subnets": [v6_only, dual]},
                {"SubnetIds": ["subnet-v6", "subnet-dual"]},
            )
        assert ec2_api.subnet_ranges(ec2, ["subnet-v6", "subnet-dual"]) == {
            "subnet-v6": ["2600:1f18:abcd:e00::/64"],
            "subnet-dual": ["10.0.1.0/24", "2600:1f18:abcd:e02::/64"],
        }
        assert ec2_api.subnet_cidrs(ec2, ["subnet-v6", "subnet-dual"]) == {
            "subnet-dual": "10.0.1.0/24"
        }, "no KeyError: the IPv6-only subnet has no IPv4 CIDR"


def test_a_journal_this_rexctl_leaves_mid_drill_keeps_restoring(aws: Aws) -> None:
    """journals/break-nacl-clone.json is what break-nacl journals once the cache's subnets are
    on the copy (the machine died mid-drill), with the world's ids as `{placeholders}`. Later
    rexctl must read it as it is and restore it: the same fault is put in place here, the
    journal gets this world's ids, and `chaos restore`'s core undoes it."""
    import re
    from pathlib import Path

    world = aws.world
    before = acl_view(aws, world.acl_id)
    text = (Path(__file__).parent / "journals" / "break-nacl-clone.json").read_text()
    drill_id = json.loads(text)["id"]
    fault = make_fault("break-nacl", aws.clients)
    live = journal_for(fault.plan(aws.config()))
    live.id = drill_id
    fault.inject(live, lambda: None)
    (change,) = live.changes
    assert isinstance(change, AclCloneChange)
    fill = {"acl_id": world.acl_id, "vpc_id": world.vpc_id, "clone_acl_id": change.clone_acl_id}
    for i, subnet in enumerate(world.cache_subnets):
        fill[f"cache_subnets_{i}"] = subnet
        fill[f"association_{i}"] = next(
            m.association_id for m in change.subnets if m.subnet_id == subnet
        )
    text = re.sub(r"\{([a-z_0-9]+)\}", lambda m: fill[m[1]], text)
    data = json.loads(text)
    again = Journal.from_dict(data).to_dict()
    assert {k: again[k] for k in data} == data, "read and written back as it is"
    path = journal_mod.journal_path(aws.state_dir, drill_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (outcome,) = runner.restore_pending(
        runner.pending_journals(aws.state_dir),
        lambda j: make_fault(j.drill, aws.clients),
        aws.state_dir,
        sleep=lambda s: None,
    )
    assert outcome.result.ok, outcome.result.errors
    assert acl_view(aws, world.acl_id) == before and drill_copies(aws) == []
