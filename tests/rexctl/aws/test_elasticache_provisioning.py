"""ElastiCache adapter: subnet groups, tags, creation, member nodes."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from rexctl.aws import elasticache as ec_api
from rexctl.errors import AwsError
from tests.rexctl.aws.world import build_world, clients


def test_subnet_group_and_replication_group_round_trip() -> None:
    with mock_aws():
        c = clients()
        world = build_world(c)
        ec = c.elasticache
        assert ec_api.get_subnet_group(ec, "g") is None
        arn = ec_api.create_subnet_group(ec, "g", "d", world.private_subnets, {"k": "v"})
        group = ec_api.get_subnet_group(ec, "g")
        assert group is not None and group.vpc_id == world.vpc_id
        assert group.subnet_ids == sorted(world.private_subnets)
        assert ec_api.list_tags(ec, arn) == {"k": "v"}
        view = ec_api.create_replication_group(
            ec,
            {
                "ReplicationGroupId": "rg",
                "ReplicationGroupDescription": "d",
                "Engine": "redis",
                "CacheNodeType": "cache.t4g.micro",
                "NumCacheClusters": 1,
                "Tags": {"a": "b"},
            },
        )
        assert view.engine == "redis" and view.replicas == 0 and view.cluster_mode == "disabled"
        assert ec_api.list_tags(ec, view.arn) == {"a": "b"}
        # moto does not show member clusters: rexctl then knows nothing about the node's network.
        assert ec_api.member_network(ec, "rg-001") is None


def test_member_network_reads_subnet_group_and_security_groups() -> None:
    ec = boto3.client("elasticache", region_name="us-east-1")
    stub = Stubber(ec)
    stub.add_response(
        "describe_cache_clusters",
        {
            "CacheClusters": [
                {
                    "CacheClusterId": "rg-001",
                    "CacheSubnetGroupName": "g",
                    "EngineVersion": "7.1.0",
                    "SecurityGroups": [{"SecurityGroupId": "sg-1", "Status": "active"}],
                }
            ]
        },
        {"CacheClusterId": "rg-001"},
    )
    with stub:
        node = ec_api.member_network(ec, "rg-001")
        stub.assert_no_pending_responses()
    assert node == ec_api.NodeNetwork("rg-001", "g", ["sg-1"], "7.1.0")


def test_delete_subnet_group_and_errors() -> None:
    ec = boto3.client("elasticache", region_name="us-east-1")
    stub = Stubber(ec)
    stub.add_response("delete_cache_subnet_group", {}, {"CacheSubnetGroupName": "g"})
    stub.add_client_error(
        "delete_cache_subnet_group",
        "CacheSubnetGroupInUse",
        "in use by rg",
        expected_params={"CacheSubnetGroupName": "g"},
    )
    with stub:
        ec_api.delete_subnet_group(ec, "g")
        with pytest.raises(AwsError) as info:
            ec_api.delete_subnet_group(ec, "g")
        stub.assert_no_pending_responses()
    assert info.value.message == (
        "AWS DeleteCacheSubnetGroup failed while trying to delete cache subnet group g: "
        "CacheSubnetGroupInUse: in use by rg"
    )


def test_describes_return_none_only_for_their_own_not_found_code() -> None:
    ec = boto3.client("elasticache", region_name="us-east-1")
    stub = Stubber(ec)
    stub.add_client_error(
        "describe_cache_subnet_groups",
        "CacheSubnetGroupNotFoundFault",
        expected_params={"CacheSubnetGroupName": "g"},
    )
    stub.add_client_error(
        "describe_cache_subnet_groups",
        "AccessDenied",
        "no",
        expected_params={"CacheSubnetGroupName": "g"},
    )
    stub.add_client_error(
        "describe_cache_clusters", "CacheClusterNotFound", expected_params={"CacheClusterId": "c"}
    )
    stub.add_client_error(
        "describe_replication_groups",
        "InvalidParameterValue",
        "bad id",
        expected_params={"ReplicationGroupId": "r"},
    )
    with stub:
        assert ec_api.get_subnet_group(ec, "g") is None
        with pytest.raises(AwsError) as denied:
            ec_api.get_subnet_group(ec, "g")
        assert ec_api.member_network(ec, "c") is None
        with pytest.raises(AwsError) as invalid:
            ec_api.get_replication_group(ec, "r")
        stub.assert_no_pending_responses()
    assert denied.value.message.startswith(
        "Access denied: your AWS identity may not call DescribeCacheSubnetGroups while trying to "
        "describe cache subnet group g."
    )
    assert invalid.value.message == (
        "AWS DescribeReplicationGroups failed while trying to describe ElastiCache replication "
        "group r: InvalidParameterValue: bad id"
    )
