"""EC2 adapter: subnet privacy by route table, security-group rules."""

from __future__ import annotations

import pytest

from rexctl.aws import ec2 as ec2_api
from rexctl.aws.session import ClientSet
from tests.rexctl.aws.world import build_world


def test_subnets_are_public_only_with_an_igw_default_route(aws: ClientSet) -> None:
    world = build_world(aws)
    subnets = {s.id: s for s in ec2_api.vpc_subnets(aws.ec2, world.vpc_id)}
    assert {s.name: s.public for s in subnets.values()} == {
        "public-a": True,
        "public-b": True,
        "private-a": False,
        "private-b": False,
    }
    public = subnets[world.public_subnets[0]]
    assert public.internet_gateway == world.igw
    assert public.why == f"its route table {public.route_table} sends 0.0.0.0/0 to {world.igw}"
    nat_routed = subnets[world.private_subnets[0]]
    assert nat_routed.route_table and not nat_routed.internet_gateway
    assert subnets[world.private_subnets[1]].az == "us-east-1b"


def test_main_table_with_igw_route_makes_unassociated_subnets_public(aws: ClientSet) -> None:
    world = build_world(aws)
    main = aws.ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [world.vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    aws.ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=world.igw)
    subnets = {s.id: s for s in ec2_api.vpc_subnets(aws.ec2, world.vpc_id)}
    assert subnets[world.private_subnets[1]].public  # uses the main table
    assert not subnets[world.private_subnets[0]].public  # its own table routes to the NAT


def test_security_group_create_rule_and_find(aws: ClientSet) -> None:
    world = build_world(aws)
    tags = {"managed-by": "rexctl"}
    sg = ec2_api.create_security_group(aws.ec2, "cache-sg", world.vpc_id, "desc", tags)
    rule_id = ec2_api.authorize_from_group(aws.ec2, sg, 6379, world.ecs_sg, "from ecs", tags)
    found = ec2_api.find_security_group(aws.ec2, "cache-sg", world.vpc_id)
    assert found is not None and found.id == sg and found.tags == tags
    [rule] = found.ingress()
    assert (rule.id, rule.source_group, rule.ports, rule.covers(6379), rule.covers(6380)) == (
        rule_id,
        world.ecs_sg,
        "6379",
        True,
        False,
    )
    assert ec2_api.find_security_group(aws.ec2, "cache-sg", "vpc-0123456789abcdef0") is None
    groups, missing = ec2_api.get_security_groups(aws.ec2, [sg, "sg-0123456789abcdef0"])
    assert [g.id for g in groups] == [sg] and missing == ["sg-0123456789abcdef0"]


def test_rule_coverage_and_revoke_command() -> None:
    any_traffic = ec2_api.Rule("sgr-1", "sg-1", False, "-1", -1, -1, cidr="0.0.0.0/0")
    udp = ec2_api.Rule("sgr-2", "sg-1", False, "udp", 0, 65535, cidr="10.0.0.0/8")
    assert any_traffic.covers(6379) and any_traffic.ports == "all"
    assert not udp.covers(6379)
    assert ec2_api.revoke_command(any_traffic) == (
        "aws ec2 revoke-security-group-ingress --group-id sg-1 --security-group-rule-ids sgr-1"
    )


def test_rule_journal_form_is_what_journals_hold() -> None:
    data = {
        "description": "Redis from ECS", "from_port": 6379, "group_id": "sg-cache",
        "protocol": "tcp", "rule_id": "sgr-1", "source_group_id": "sg-ecs", "source_user_id": "",
        "tags": [{"Key": "owner", "Value": "rexctl"}], "to_port": 6379,
    }  # fmt: skip
    rule = ec2_api.Rule.from_dict(data)
    assert (rule.id, rule.source_group, rule.egress, rule.tags) == (
        "sgr-1",
        "sg-ecs",
        False,
        {"owner": "rexctl"},
    )
    assert rule.to_dict() == data
    assert rule.label() == "sg-cache inbound tcp 6379 from sg-ecs"
    assert rule.permission() == {
        "IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
        "UserIdGroupPairs": [{"GroupId": "sg-ecs", "Description": "Redis from ECS"}],
    }  # fmt: skip
    again = ec2_api.Rule("sgr-2", "sg-cache", False, "tcp", 6379, 6379, source_group="sg-ecs")
    assert again.same_permission(rule)
    assert not again.same_permission(ec2_api.Rule("sgr-3", "sg-cache", False, "tcp", 6379, 6380))


def test_authorize_retries_a_group_ec2_does_not_see_yet() -> None:
    """AWS (EC2 API reference, "Eventual consistency"): right after CreateSecurityGroup, a call
    naming the new group can answer InvalidGroup.NotFound; retry with backoff. moto never does."""
    import boto3
    from botocore.stub import Stubber

    from rexctl.aws.ec2 import authorize_from_group

    ec2 = boto3.client("ec2", region_name="us-east-1")
    params = {
        "GroupId": "sg-new",
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                           "UserIdGroupPairs": [{"GroupId": "sg-ecs", "Description": "d"}]}],
        "TagSpecifications": [{"ResourceType": "security-group-rule",
                               "Tags": [{"Key": "managed-by", "Value": "rexctl"}]}],
    }  # fmt: skip
    slept: list[float] = []
    with Stubber(ec2) as stubber:
        for _ in range(2):
            stubber.add_client_error(
                "authorize_security_group_ingress",
                "InvalidGroup.NotFound",
                "The security group 'sg-new' does not exist",
                expected_params=params,
            )
        stubber.add_response(
            "authorize_security_group_ingress",
            {"Return": True, "SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1"}]},
            params,
        )
        rule = authorize_from_group(
            ec2, "sg-new", 6379, "sg-ecs", "d", {"managed-by": "rexctl"}, sleep=slept.append
        )
        stubber.assert_no_pending_responses()
    assert rule == "sgr-1"
    assert slept == [0.2, 0.4]


def test_a_new_group_not_found_yet_is_retried_with_backoff() -> None:
    """EC2 is eventually consistent: right after CreateSecurityGroup, a call naming the new group
    may answer InvalidGroup.NotFound; AWS says to retry with exponential backoff."""
    import boto3
    from botocore.stub import Stubber

    from rexctl.provision.tags import managed_tags

    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    tags = managed_tags("rexpress-redis")
    create = ec2_api.security_group_request("rexpress-redis-sg", "vpc-1", "rexctl", tags)
    authorize = ec2_api.ingress_from_group_request(
        "sg-0new", 6379, "sg-0ecs", "rexctl: from the ECS service tasks", tags
    )
    stub.add_response("create_security_group", {"GroupId": "sg-0new"}, create)
    for _ in range(2):
        stub.add_client_error(
            "authorize_security_group_ingress",
            "InvalidGroup.NotFound",
            "The security group 'sg-0new' does not exist",
            expected_params=authorize,
        )
    stub.add_response(
        "authorize_security_group_ingress",
        {"Return": True, "SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1"}]},
        authorize,
    )
    slept: list[float] = []
    with stub:
        assert ec2_api.send_create_security_group(ec2, create) == "sg-0new"
        assert ec2_api.send_authorize_ingress(ec2, authorize, sleep=slept.append) == "sgr-1"
        stub.assert_no_pending_responses()
    assert slept == [0.2, 0.4]


def test_a_group_that_never_appears_is_an_error_after_the_bound() -> None:
    import boto3
    from botocore.stub import Stubber

    from rexctl.errors import AwsError

    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    authorize = ec2_api.ingress_from_group_request("sg-0new", 6379, "sg-0ecs", "d", {})
    for _ in range(4):
        stub.add_client_error(
            "authorize_security_group_ingress",
            "InvalidGroup.NotFound",
            "The security group 'sg-0new' does not exist",
            expected_params=authorize,
        )
    slept: list[float] = []
    with stub, pytest.raises(AwsError) as info:
        ec2_api.send_authorize_ingress(ec2, authorize, sleep=slept.append, timeout=1.0)
    stub.assert_no_pending_responses()
    assert slept == [0.2, 0.4, 0.8]
    assert "The security group 'sg-0new' does not exist" in info.value.message
