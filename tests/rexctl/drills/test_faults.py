"""Each fault injects what it says and restores exactly what it took (moto in-process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import nacl
from rexctl.drills.changes import (
    AclCloneChange,
    NaclEntryChange,
    ServiceRevisionChange,
    SgRuleChange,
    change_from_dict,
)
from rexctl.drills.faults import Plan, make_fault
from rexctl.errors import ConfigError
from tests.rexctl.drills import world as w
from tests.rexctl.drills.conftest import Aws
from tests.rexctl.drills.world import (
    full_acl,
    full_sg,
    journal_for,
    normalized_service,
    old_nacl_entries,
)


def test_break_sg_revokes_exactly_the_rule_and_restores_it_identically(aws: Aws) -> None:
    before = full_sg(aws)
    fault = make_fault("break-sg", aws.clients)
    plan = fault.plan(aws.config())
    assert [c.rule.description for c in plan.changes] == ["Redis from ECS"]
    journal = journal_for(plan)

    fault.inject(journal, lambda: None)
    during = full_sg(aws)
    sources = [
        pair["GroupId"]
        for perm in during["group"]["IpPermissions"]
        for pair in perm.get("UserIdGroupPairs", [])
    ]
    assert aws.world.ecs_sg not in sources
    assert [p["FromPort"] for p in during["group"]["IpPermissions"]] == [22], "other rules stay"
    # The group carries the drill's mark while the rule is revoked (a second drill checks it).
    assert {"Key": "rexctl:drill:t-1", "Value": "break-sg"} in during["group"]["Tags"]
    assert fault.confirm_restored(plan.changes) == [
        f"{aws.world.cache_sg} inbound tcp 6379 from {aws.world.ecs_sg} is not back",
        f"{aws.world.cache_sg} still carries the drill's mark rexctl:drill:t-1",
    ]

    fault.restore(plan.changes)
    assert fault.confirm_restored(plan.changes) == []
    assert full_sg(aws) == before
    assert fault.snapshot(plan.changes) == plan.before
    # The tag of the rule came back too (not only the permission).
    tagged = [r for r in full_sg(aws)["rules"] if r.get("ReferencedGroupInfo")]
    assert tagged[0]["Tags"] == [{"Key": "owner", "Value": "rexctl"}]


def test_break_sg_restore_is_idempotent(aws: Aws) -> None:
    before = full_sg(aws)
    fault = make_fault("break-sg", aws.clients)
    plan = fault.plan(aws.config())
    fault.restore(plan.changes)  # nothing was injected: the rule is there, "duplicate" is fine
    fault.inject(journal_for(plan), lambda: None)
    fault.inject(journal_for(plan), lambda: None)  # revoking twice is fine too
    fault.restore(plan.changes)
    fault.restore(plan.changes)
    assert full_sg(aws) == before


def test_break_sg_refuses_without_the_rule(aws: Aws) -> None:
    fault = make_fault("break-sg", aws.clients)
    (change,) = fault.plan(aws.config()).changes
    assert isinstance(change, SgRuleChange)
    ec2_api.revoke_rule(aws.clients.ec2, change.rule)  # gone, and no drill marked the group
    with pytest.raises(ConfigError) as err:
        fault.plan(aws.config())
    assert err.value.message == (
        f"Security group {aws.world.cache_sg} (rexpress-redis-sg) has no inbound rule for 6379 "
        f"from {aws.world.ecs_sg}."
    )
    assert err.value.hint == "Run `rexctl provision` or check the group id in rexctl.toml."


def test_break_sg_refuses_a_missing_group(aws: Aws) -> None:
    with pytest.raises(ConfigError) as err:
        make_fault("break-sg", aws.clients).plan(aws.config(REXCTL_CACHE_SECURITY_GROUP="nope-sg"))
    assert err.value.message == f"There is no security group named 'nope-sg' in {aws.world.vpc_id}."


def test_an_old_break_nacl_journal_deletes_exactly_its_entries(aws: Aws) -> None:
    """break-nacl of earlier rexctl added DENY entries in place: their journals still restore
    by deleting exactly those entries (tests/rexctl/drills/test_nacl_clone.py: today's)."""
    before = full_acl(aws)
    changes = old_nacl_entries(aws)
    snapshot_before = make_fault("break-nacl", aws.clients).snapshot(changes)
    for change in changes:
        assert isinstance(change, NaclEntryChange)
        nacl.add_entry(aws.clients.ec2, change.entry)
    during = full_acl(aws)
    denies = [e for e in during["Entries"] if e["RuleAction"] == "deny" and e["RuleNumber"] < 100]
    assert len(denies) == 4
    fault = make_fault("break-nacl", aws.clients)
    assert len(fault.confirm_restored(changes)) == 4

    fault.restore(changes)
    assert fault.confirm_restored(changes) == []
    assert full_acl(aws) == before
    assert fault.snapshot(changes) == snapshot_before


def test_an_old_break_nacl_restore_leaves_a_foreign_entry_at_its_number(aws: Aws) -> None:
    fault = make_fault("break-nacl", aws.clients)
    # Someone else's entry sits at a number the journal names: restore must not delete it.
    aws.clients.ec2.create_network_acl_entry(
        NetworkAclId=aws.world.acl_id, RuleNumber=1, Protocol="6", RuleAction="allow",
        Egress=False, CidrBlock="10.7.0.0/16", PortRange={"From": 443, "To": 443},
    )  # fmt: skip
    fault.restore(old_nacl_entries(aws))
    kept = nacl.entry_at(aws.clients.ec2, aws.world.acl_id, 1, False)
    assert kept is not None and kept.cidr == "10.7.0.0/16"


def test_break_nacl_refuses_when_an_allow_comes_first(aws: Aws) -> None:
    aws.clients.ec2.create_network_acl_entry(
        NetworkAclId=aws.world.acl_id, RuleNumber=1, Protocol="-1", RuleAction="allow",
        Egress=False, CidrBlock="10.0.0.0/8",
    )  # fmt: skip
    with pytest.raises(ConfigError) as err:
        make_fault("break-nacl", aws.clients).plan(aws.config())
    assert err.value.message == (
        f"Network ACL {aws.world.acl_id} allows this traffic at rule 1, before any free rule "
        "number; a DENY entry could not take effect."
    )


def test_break_nacl_refuses_without_cache_subnets(aws: Aws) -> None:
    with pytest.raises(ConfigError) as err:
        make_fault("break-nacl", aws.clients).plan(aws.config(REXCTL_CACHE_SUBNET_GROUP="gone"))
    assert err.value.message == (
        "Cannot tell which subnets the cache is in: cache subnet group 'gone' does not exist "
        "and `cache.subnets` is empty."
    )


def test_wrong_host_rolls_a_bad_revision_and_rolls_back(aws: Aws) -> None:
    before = normalized_service(aws)
    old_tasks = w.running_tasks(aws.clients.ecs)
    saved: list[tuple[str, str]] = []
    fault = make_fault(
        "wrong-host", aws.clients, rollout_poll=0.01, rollout_timeout=10, sleep=lambda s: None
    )
    plan = fault.plan(aws.config())
    journal = journal_for(plan)
    with w.EcsScheduler(aws.clients.ecs, aws.world) as ecs:
        fault.sleep = __import__("time").sleep
        change = journal.changes[0]
        fault.inject(journal, lambda: saved.append((change.drill_tag, change.bad)))
        bad = change.bad
        # The tag is journaled before registering, the ARN before the service changes.
        assert saved == [("t-1", ""), ("t-1", bad)]
        td = aws.clients.ecs.describe_task_definition(taskDefinition=bad, include=["TAGS"])
        container = td["taskDefinition"]["containerDefinitions"][0]
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["REDIS_HOST"] == "rexpress-redis.invalid"
        assert {"key": "rexctl:drill", "value": "t-1"} in td["tags"]
        assert normalized_service(aws)["taskDefinition"] == bad
        assert set(w.running_tasks(aws.clients.ecs)).isdisjoint(old_tasks)

        fault.restore(journal.changes)
        assert ecs.rollouts == 2
    assert fault.confirm_restored(journal.changes) == []
    assert normalized_service(aws) == before
    status = aws.clients.ecs.describe_task_definition(taskDefinition=bad)["taskDefinition"]
    assert status["status"] == "INACTIVE"
    assert fault.snapshot(journal.changes) == plan.before


def test_wrong_host_refuses_without_redis_host(aws: Aws) -> None:
    with pytest.raises(ConfigError) as err:
        make_fault("wrong-host", aws.clients).plan(aws.config(REXCTL_ECS_CONTAINER="sidecar"))
    assert "has no container named 'sidecar'" in err.value.message


US_EAST_1 = {"region": "us-east-1", "profile": "", "endpoint_url": ""}


def test_manual_undo_commands(aws: Aws) -> None:
    sg = make_fault("break-sg", aws.clients)
    changes = sg.plan(aws.config()).changes
    assert sg.manual_undo(changes, US_EAST_1) == [], "nothing is revoked yet"
    for c in changes:
        assert isinstance(c, SgRuleChange)
        c.revoking = True  # as journaled right before the revoke is sent
    cmds = sg.manual_undo(changes, US_EAST_1)
    assert cmds == [
        f"aws ec2 authorize-security-group-ingress --group-id {aws.world.cache_sg} "
        '--ip-permissions \'[{"IpProtocol":"tcp","UserIdGroupPairs":[{"GroupId":"'
        + aws.world.ecs_sg
        + '","Description":"Redis from ECS"}],"FromPort":6379,"ToPort":6379}]\' '
        '--tag-specifications \'[{"ResourceType":"security-group-rule","Tags":'
        '[{"Key":"owner","Value":"rexctl"}]}]\' --region us-east-1'
    ]
    acl = make_fault("break-nacl", aws.clients)
    cmds = acl.manual_undo(old_nacl_entries(aws), US_EAST_1)
    assert cmds[0] == (
        f"aws ec2 delete-network-acl-entry --network-acl-id {aws.world.acl_id} --rule-number 1 "
        "--ingress --region us-east-1"
    )
    assert len(cmds) == 4
    journal = journal_for(acl.plan(aws.config()))
    assert acl.manual_undo(journal.changes, US_EAST_1) == [], "nothing to undo yet"
    (change,) = journal.changes
    assert isinstance(change, AclCloneChange)
    change.drill_tag = "t-1"  # journaled before the copy is created: found by it until its id is
    assert acl.manual_undo(journal.changes, US_EAST_1) == [
        "aws ec2 describe-network-acls --filters Name=tag:rexctl:drill,Values=t-1 "
        "--query 'NetworkAcls[].NetworkAclId' --output text --region us-east-1"
    ]
    acl.inject(journal, lambda: None)
    moves = {m.subnet_id: m.association_id for m in change.subnets}
    assert acl.manual_undo(journal.changes, US_EAST_1) == [
        *(
            f"aws ec2 replace-network-acl-association --association-id {moves[s]} "
            f"--network-acl-id {aws.world.acl_id} --region us-east-1"
            for s in sorted(aws.world.cache_subnets)
        ),
        f"aws ec2 delete-network-acl --network-acl-id {change.clone_acl_id} --region us-east-1",
    ]
    acl.restore(journal.changes)


def test_manual_undo_is_one_shell_command_aimed_where_the_drill_ran(aws: Aws) -> None:
    """A quote in a rule's description, and the profile and endpoint the drill used (the sandbox):
    the printed command must put back exactly this rule, in exactly that place."""
    import json
    import shlex

    ec2 = aws.clients.ec2
    perm = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379}
    ec2.revoke_security_group_ingress(
        GroupId=aws.world.cache_sg,
        IpPermissions=[{**perm, "UserIdGroupPairs": [
            {"GroupId": aws.world.ecs_sg, "Description": "Redis from ECS"}]}],
    )  # fmt: skip
    ec2.authorize_security_group_ingress(
        GroupId=aws.world.cache_sg,
        IpPermissions=[{**perm, "UserIdGroupPairs": [
            {"GroupId": aws.world.ecs_sg, "Description": "the ECS tasks; $HOME (all) *"}]}],
    )  # fmt: skip
    target = {"region": "us-east-1", "profile": "ops team", "endpoint_url": "http://127.0.0.1:5"}
    sg = make_fault("break-sg", aws.clients)
    changes = sg.plan(aws.config()).changes
    for c in changes:
        assert isinstance(c, SgRuleChange)
        c.revoking, c.mark = True, "rexctl:drill:t-1"
    cmd, untag = sg.manual_undo(changes, target)
    assert shlex.split(untag) == [
        "aws", "ec2", "delete-tags", "--resources", aws.world.cache_sg,
        "--tags", "Key=rexctl:drill:t-1,Value=break-sg",
        "--region", "us-east-1", "--profile", "ops team", "--endpoint-url", "http://127.0.0.1:5",
    ]  # fmt: skip
    args = shlex.split(cmd)
    assert args[:3] == ["aws", "ec2", "authorize-security-group-ingress"]
    permissions = json.loads(args[args.index("--ip-permissions") + 1])
    assert permissions[0]["UserIdGroupPairs"][0]["Description"] == "the ECS tasks; $HOME (all) *"
    assert args[-6:] == [
        "--region", "us-east-1", "--profile", "ops team", "--endpoint-url", "http://127.0.0.1:5",
    ]  # fmt: skip
    for name in ("break-nacl", "wrong-host"):
        fault = make_fault(name, aws.clients)
        changes = fault.plan(aws.config()).changes
        if name == "break-nacl":  # nothing to undo before the copy exists
            fault.inject(journal_for(fault.plan(aws.config())), lambda: None)
            changes = old_nacl_entries(aws)
        args = shlex.split(fault.manual_undo(changes, target)[0])
        assert args[-6:] == [
            "--region", "us-east-1", "--profile", "ops team", "--endpoint-url",
            "http://127.0.0.1:5",
        ], name  # fmt: skip


def test_unknown_drill() -> None:
    with pytest.raises(ConfigError) as err:
        make_fault("break-everything", object())  # type: ignore[arg-type]
    assert err.value.message == (
        "Unknown drill 'break-everything'. Drills: break-sg, break-nacl, wrong-host."
    )


def test_rule_tags_are_read_from_every_page() -> None:
    """A group with many rules: the rule's tags on the second page still come back on restore."""
    import boto3
    from botocore.stub import Stubber

    ec2 = boto3.client("ec2", region_name="us-east-1")
    group = {
        "GroupId": "sg-cache",
        "OwnerId": w.ACCOUNT,
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
             "UserIdGroupPairs": [{"GroupId": "sg-ecs", "UserId": w.ACCOUNT}]},
        ],
    }  # fmt: skip
    flt = [{"Name": "group-id", "Values": ["sg-cache"]}]
    other = {"SecurityGroupRuleId": "sgr-1", "IsEgress": True, "IpProtocol": "-1"}
    ours = {
        "SecurityGroupRuleId": "sgr-2", "IsEgress": False, "IpProtocol": "tcp",
        "FromPort": 6379, "ToPort": 6379, "ReferencedGroupInfo": {"GroupId": "sg-ecs"},
        "Tags": [{"Key": "owner", "Value": "rexctl"}],
    }  # fmt: skip
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_security_groups", {"SecurityGroups": [group]}, {"GroupIds": ["sg-cache"]}
        )
        stub.add_response(
            "describe_security_group_rules",
            {"SecurityGroupRules": [other], "NextToken": "page-2"},
            {"Filters": flt},
        )
        stub.add_response(
            "describe_security_group_rules",
            {"SecurityGroupRules": [ours]},
            {"Filters": flt, "NextToken": "page-2"},
        )
        [rule] = ec2_api.describe_security_group(ec2, "sg-cache").inbound_from(["sg-ecs"], 6379)
        stub.assert_no_pending_responses()
    journaled = rule.to_dict()
    assert (journaled["rule_id"], journaled["tags"]) == (
        "sgr-2",
        [{"Key": "owner", "Value": "rexctl"}],
    )
    assert rule.source_user_id == ""


JOURNALS = Path(__file__).parent / "journals"


def journal_fixture(aws: Aws, drill: str) -> dict[str, Any]:
    """A journal as today's rexctl wrote it (tests/rexctl/drills/journals), aimed at this world."""
    world = aws.world
    text = (JOURNALS / f"{drill}.json").read_text(encoding="utf-8")
    names = {
        "cache_sg": world.cache_sg, "ecs_sg": world.ecs_sg, "vpc_id": world.vpc_id,
        "acl_id": world.acl_id, "td_arn": world.td_arn,
        **{f"cache_subnets_{i}": s for i, s in enumerate(world.cache_subnets)},
        **{f"ecs_subnets_{i}": s for i, s in enumerate(world.ecs_subnets)},
    }  # fmt: skip
    for name, value in names.items():
        text = text.replace("{" + name + "}", value)
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.mark.parametrize("drill", ["break-sg"])
def test_journals_of_today_still_read_plan_and_restore(aws: Aws, drill: str) -> None:
    """The undo data and the "before" of a journal written by today's rexctl: read back as the
    same dicts, planned again identically, and restored."""
    saved = journal_fixture(aws, drill)
    model = {"break-sg": (ec2_api.Rule, "rule"), "break-nacl": (nacl.AclEntry, "entry")}
    cls, key = model[drill]
    for change in saved["changes"]:
        assert cls.from_dict(change[key]).to_dict() == change[key]
        again = change_from_dict(change).to_dict()
        assert {k: again[k] for k in change} == change, "the journal form, unchanged"
        # Fields added since default to what that rexctl did: its restore puts the rule back.
        assert {k: v for k, v in again.items() if k not in change} == {
            "mark": "",
            "revoking": True,
        }
    changes = [change_from_dict(c) for c in saved["changes"]]
    fault = make_fault(drill, aws.clients)
    plan = fault.plan(aws.config())

    def without_rule_ids(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # moto gives the rule a random id; everything else is the world's
        return [{**c, key: {**c[key], "rule_id": ""}} if key == "rule" else c for c in changes]

    planned = [
        {k: v for k, v in c.to_dict().items() if k in saved_change}
        for c, saved_change in zip(plan.changes, saved["changes"], strict=True)
    ]
    assert without_rule_ids(planned) == without_rule_ids(saved["changes"])
    # The same rule is revoked; today's plan also marks the group first (issue 11).
    assert plan.summary[1:-1] == saved["summary"][:-1]
    assert fault.manual_undo(changes, saved["aws"]) == saved["manual_undo"]
    before = saved["before"]
    if drill == "break-nacl":  # sorted by the real subnet ids, which moto picks at random
        for acl in before["network_acls"].values():
            acl["Subnets"] = sorted(acl["Subnets"])
    assert json.loads(json.dumps(plan.before)) == before

    for c in plan.changes:  # in place as that rexctl put it (it marked nothing)
        assert isinstance(c, SgRuleChange)
        ec2_api.revoke_rule(aws.clients.ec2, c.rule)
    assert fault.confirm_restored(changes) != []
    fault.restore(changes)
    assert fault.confirm_restored(changes) == []
    assert json.loads(json.dumps(fault.snapshot(changes))) == before


# --- break-sg against what AWS answers (issue 10) ---------------------------------------------


def sg_rule(aws: Aws) -> ec2_api.Rule:
    (rule,) = ec2_api.describe_security_group(aws.clients.ec2, aws.world.cache_sg).inbound_from(
        [aws.world.ecs_sg], 6379
    )
    return rule


def test_break_sg_revokes_by_rule_id_and_refuses_an_answer_that_revoked_nothing() -> None:
    """AWS can answer RevokeSecurityGroupIngress with `Return: true` and list in
    `UnknownIpPermissions` what it did not revoke (EC2 API reference): the fault is not in place,
    and the drill must say so instead of observing a fault that is not there."""
    import boto3
    from botocore.stub import Stubber

    from rexctl.aws.session import ClientSet
    from rexctl.errors import AwsError

    rule = ec2_api.Rule("sgr-0abc", "sg-cache", False, "tcp", 6379, 6379, source_group="sg-ecs")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    unknown = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
               "UserIdGroupPairs": [{"GroupId": "sg-ecs"}]}  # fmt: skip
    mark = [{"Key": "rexctl:drill:t-1", "Value": "break-sg"}]
    with Stubber(ec2) as stub:
        stub.add_response("create_tags", {}, {"Resources": ["sg-cache"], "Tags": mark})
        stub.add_response(
            "describe_security_groups",
            {"SecurityGroups": [{"GroupId": "sg-cache", "Tags": mark}]},
            {"GroupIds": ["sg-cache"]},
        )
        stub.add_response(
            "revoke_security_group_ingress",
            {"Return": True, "UnknownIpPermissions": [unknown]},
            {"GroupId": "sg-cache", "SecurityGroupRuleIds": ["sgr-0abc"]},
        )
        fault = make_fault("break-sg", ClientSet(ec2=ec2))
        journal = journal_for(
            Plan("break-sg", [], [SgRuleChange(rule)], {})  # what the plan found
        )
        with pytest.raises(AwsError) as err:
            fault.inject(journal, lambda: None)
        stub.assert_no_pending_responses()
    assert err.value.message == (
        "AWS answered the revoke of sg-cache inbound tcp 6379 from sg-ecs (rule sgr-0abc) but did "
        "not revoke it: it lists the rule in UnknownIpPermissions."
    )


def test_break_sg_checks_the_rule_is_gone_before_claiming_the_fault(aws: Aws) -> None:
    """An answer that says success is not enough: the group is described again, and a rule still
    there is an error (here an endpoint that answers `Return: true` and revokes nothing)."""
    from rexctl.aws.session import ClientSet
    from rexctl.errors import AwsError

    inner = aws.clients.ec2

    class Ec2:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def revoke_security_group_ingress(self, **kwargs: Any) -> Any:
            return {"Return": True}

    sleeps: list[float] = []
    clients = ClientSet(ec2=Ec2(), ecs=aws.clients.ecs, elasticache=aws.clients.elasticache)
    fault = make_fault("break-sg", clients, sleep=sleeps.append)
    journal = journal_for(fault.plan(aws.config()))
    with pytest.raises(AwsError) as err:
        fault.inject(journal, lambda: None)
    assert err.value.message == (
        f"{aws.world.cache_sg} inbound tcp 6379 from {aws.world.ecs_sg} is still there after AWS "
        "answered its revoke: the fault is not in place."
    )
    assert sleeps == [1.0, 2.0], "EC2 is eventually consistent: it is asked again first"


def test_break_sg_warns_before_confirmation_about_a_rule_rexctl_did_not_create(aws: Aws) -> None:
    """Putting a rule back gives it a new rule id (AWS, and moto): a tool that manages the rule
    by its id (a Terraform aws_vpc_security_group_ingress_rule, CloudFormation) then sees it
    gone. rexctl tags what it creates managed-by=rexctl; any other rule gets a warning."""
    rule = sg_rule(aws)
    plan = make_fault("break-sg", aws.clients).plan(aws.config())
    assert plan.warnings == [
        f"Rule {rule.id} ({rule.label()}) was not created by rexctl (no managed-by=rexctl tag): "
        "putting it back after the drill gives it a new rule id, so a tool that manages it by id "
        "(Terraform, CloudFormation) may see it as deleted or try to create it again."
    ]
    managed = [{"Key": "managed-by", "Value": "rexctl"}]
    aws.clients.ec2.create_tags(Resources=[rule.id], Tags=managed)
    assert make_fault("break-sg", aws.clients).plan(aws.config()).warnings == []


@pytest.mark.moto_only  # the world gets a rule description AWS refuses (moto accepts it)
def test_break_sg_refuses_a_rule_aws_would_not_let_it_put_back(aws: Aws) -> None:
    """The re-authorize of the restore is checked before anything changes: a description with an
    apostrophe cannot be sent to AWS, so revoking that rule would leave it revoked."""
    ec2, world = aws.clients.ec2, aws.world
    perm = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379}
    ec2.revoke_security_group_ingress(
        GroupId=world.cache_sg,
        IpPermissions=[{**perm, "UserIdGroupPairs": [
            {"GroupId": world.ecs_sg, "Description": "Redis from ECS"}]}],
    )  # fmt: skip
    ec2.authorize_security_group_ingress(
        GroupId=world.cache_sg,
        IpPermissions=[{**perm, "UserIdGroupPairs": [
            {"GroupId": world.ecs_sg, "Description": "the backend's tasks"}]}],
    )  # fmt: skip
    before = full_sg(aws)
    with pytest.raises(ConfigError) as err:
        make_fault("break-sg", aws.clients).plan(aws.config())
    assert err.value.message.startswith(
        "AWS would refuse a request of this drill: AuthorizeSecurityGroupIngress: "
        "IpPermissions[0].UserIdGroupPairs[0].Description may contain only "
    )
    assert full_sg(aws) == before


# --- wrong-host against what ECS answers (issue 10) -------------------------------------------


def rolled_out(*args: Any, **kwargs: Any) -> Any:
    """A rollout wait that says the rollout completed (ECS's scheduler is not what is tested)."""
    from types import SimpleNamespace

    return SimpleNamespace(ok=True, reason="")


def test_wrong_host_bad_revision_sends_rexctl_rollback_back_to_its_base(aws: Aws) -> None:
    """`rexctl deploy` tags each revision rexctl:previous-revision=<the one before>, and
    build_revision copies tags: the bad revision would name its base's predecessor, and a
    `rexctl rollback` while the drill is stuck would go one revision too far."""
    from rexctl.aws.ecs import (
        build_revision,
        describe_task_definition,
        register_revision,
        update_service,
    )
    from rexctl.deploy import PREVIOUS_TAG, rollback_target

    ecs = aws.clients.ecs
    first = describe_task_definition(ecs, aws.world.td_arn)
    deployed = register_revision(  # what `rexctl deploy` registered after `first`
        ecs,
        build_revision(first, container=w.CONTAINER, set_env={"REDIS_PORT": "6379"},
                       extra_tags={PREVIOUS_TAG: first.arn}),
    )  # fmt: skip
    update_service(ecs, w.CLUSTER, w.SERVICE, deployed.arn)
    fault = make_fault("wrong-host", aws.clients, wait_rollout=rolled_out)
    journal = journal_for(fault.plan(aws.config()))
    fault.inject(journal, lambda: None)
    (change,) = journal.changes
    assert isinstance(change, ServiceRevisionChange) and change.previous == deployed.arn
    bad = describe_task_definition(ecs, change.bad)
    assert rollback_target(bad) == deployed.arn, "rollback goes back to the revision it replaced"
    assert {"key": "rexctl:drill", "value": journal.id} in bad.tags
    fault.restore(journal.changes)
    assert fault.confirm_restored(journal.changes) == []


def test_wrong_host_counts_an_undescribable_deregistered_revision_as_deregistered() -> None:
    """ECS: DescribeTaskDefinition of a deregistered (INACTIVE) revision can fail with
    ClientException "Unable to describe task definition." (once ECS no longer keeps it, or it
    was deleted). The bad revision is then gone: restored, not a failed restore."""
    import boto3
    from botocore.stub import Stubber

    from rexctl.aws.session import ClientSet

    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:"
    change = ServiceRevisionChange(
        cluster="rex", service="backend", container="backend", previous=arn + "1",
        bad_host="rexpress-redis.invalid", bad=arn + "2", drill_tag="t-1",
    )  # fmt: skip
    service = {"serviceName": "backend", "status": "ACTIVE", "taskDefinition": arn + "1",
               "desiredCount": 2, "runningCount": 2}  # fmt: skip
    ecs = boto3.client("ecs", region_name="us-east-1")
    with Stubber(ecs) as stub:
        for _ in range(2):  # restore, then confirm: the service is back, the revision is gone
            stub.add_response(
                "describe_services",
                {"services": [service], "failures": []},
                {"cluster": "rex", "services": ["backend"]},
            )
            stub.add_client_error(
                "describe_task_definition",
                service_error_code="ClientException",
                service_message="Unable to describe task definition.",
            )
        fault = make_fault("wrong-host", ClientSet(ecs=ecs), wait_rollout=rolled_out)
        fault.restore([change])
        assert fault.confirm_restored([change]) == []
        stub.assert_no_pending_responses()


@pytest.mark.moto_only  # moto registers a revision ECS refuses
def test_wrong_host_refuses_a_bad_revision_ecs_would_refuse(aws: Aws) -> None:
    """The bad revision is a copy of the running one: when ECS would refuse to register it (here
    a Fargate revision that uses awslogs without an execution role, which moto accepts), the
    drill refuses before confirmation instead of failing halfway."""
    from rexctl.aws.ecs import build_revision, describe_task_definition, register_revision

    ecs = aws.clients.ecs
    kwargs = build_revision(
        describe_task_definition(ecs, aws.world.td_arn), container=w.CONTAINER, set_env={}
    )
    kwargs.pop("executionRoleArn")
    roleless = register_revision(ecs, kwargs)
    ecs.update_service(cluster=w.CLUSTER, service=w.SERVICE, taskDefinition=roleless.arn)
    with pytest.raises(ConfigError) as err:
        make_fault("wrong-host", aws.clients).plan(aws.config())
    assert err.value.message.startswith(
        "AWS would refuse a request of this drill: RegisterTaskDefinition: executionRoleArn is "
        "required for a Fargate task whose containers use the awslogs log driver"
    )
