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


def test_engine_versions_asks_aws_and_lists_what_it_offers() -> None:
    """DescribeCacheEngineVersions as AWS answers it: the version asked for when offered, an
    empty list when not (then every version of the engine, over pages, for the message)."""
    ec = boto3.client("elasticache", region_name="us-east-1")
    stub = Stubber(ec)

    def answer(*versions: str, marker: str = "") -> dict[str, object]:
        rows = [
            {"Engine": "redis", "EngineVersion": v, "CacheParameterGroupFamily": "redis7"}
            for v in versions
        ]
        return {"CacheEngineVersions": rows, **({"Marker": marker} if marker else {})}

    stub.add_response(
        "describe_cache_engine_versions",
        answer("7.1"),
        {"Engine": "redis", "EngineVersion": "7.1"},
    )
    stub.add_response(
        "describe_cache_engine_versions", answer(), {"Engine": "redis", "EngineVersion": "7.3"}
    )
    stub.add_response(
        "describe_cache_engine_versions", answer("7.1", "6.2", marker="m1"), {"Engine": "redis"}
    )
    stub.add_response(
        "describe_cache_engine_versions",
        answer("10.0", "7.0"),
        {"Engine": "redis", "Marker": "m1"},
    )
    # A version AWS does not know may also be refused outright.
    stub.add_client_error(
        "describe_cache_engine_versions",
        "InvalidParameterValue",
        "Invalid engine version",
        expected_params={"Engine": "valkey", "EngineVersion": "seven"},
    )
    stub.add_response(
        "describe_cache_engine_versions",
        {"CacheEngineVersions": [{"Engine": "valkey", "EngineVersion": "8.0"}]},
        {"Engine": "valkey"},
    )
    with stub:
        assert ec_api.engine_versions(ec, "redis", "7.1") == ec_api.EngineVersions(
            "redis", "7.1", answered=True, offered=True
        )
        assert ec_api.engine_versions(ec, "redis", "7.3") == ec_api.EngineVersions(
            "redis", "7.3", answered=True, versions=["6.2", "7.0", "7.1", "10.0"]
        )
        assert ec_api.engine_versions(ec, "valkey", "seven").versions == ["8.0"]
        stub.assert_no_pending_responses()


def test_engine_versions_on_an_endpoint_that_does_not_implement_them() -> None:
    """moto 5.2 does not implement DescribeCacheEngineVersions: rexctl says it could not check."""
    with mock_aws():
        ec = clients().elasticache
        assert ec_api.engine_versions(ec, "redis", "7.1") == ec_api.EngineVersions(
            "redis", "7.1", answered=False
        )


def test_names_are_looked_up_lower_cased_as_elasticache_stores_them() -> None:
    """ElastiCache converts replication group ids and subnet group names to lower case and
    answers with that form; rexctl asks for that form."""
    ec = boto3.client("elasticache", region_name="us-east-1")
    stub = Stubber(ec)
    stub.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [{"ReplicationGroupId": "rexpress-redis", "Status": "available"}]},
        {"ReplicationGroupId": "rexpress-redis"},
    )
    stub.add_response(
        "describe_cache_subnet_groups",
        {"CacheSubnetGroups": [{"CacheSubnetGroupName": "rexpress-redis-subnets"}]},
        {"CacheSubnetGroupName": "rexpress-redis-subnets"},
    )
    with stub:
        view = ec_api.get_replication_group(ec, "Rexpress-Redis")
        group = ec_api.get_subnet_group(ec, "Rexpress-Redis-Subnets")
        stub.assert_no_pending_responses()
    assert view is not None and view.id == "rexpress-redis"
    assert group is not None and group.name == "rexpress-redis-subnets"
    assert ec_api.same_name("Rexpress-Redis", "rexpress-redis")


def test_not_yet_shown_names_what_a_modify_has_not_changed_yet() -> None:
    view = ec_api.CacheView(
        id="c",
        arn="",
        status="available",
        endpoint="",
        port=6379,
        node_type="cache.t4g.micro",
        member_clusters=["c-001", "c-002"],
        automatic_failover="enabled",
        multi_az="enabled",
        transit_encryption=False,
        at_rest_encryption=True,
        auth_enabled=False,
        cluster_mode="disabled",
        engine="redis",
    )
    params = {
        "ReplicationGroupId": "c",
        "CacheNodeType": "cache.t4g.small",
        "MultiAZEnabled": False,
        "AutomaticFailoverEnabled": False,
        "Engine": "valkey",
        "EngineVersion": "8.0",
        "SecurityGroupIds": ["sg-new"],
    }
    node = ec_api.NodeNetwork("c-001", "g", ["sg-old"], "7.1.0")
    assert ec_api.not_yet_shown(view, params, node) == [
        "node type is still cache.t4g.micro",
        "multi-AZ is still enabled",
        "automatic failover is still enabled",
        "engine is still redis",
        "security groups are still sg-old",
        "engine version is still 7.1.0",
    ]
    from dataclasses import replace

    done = replace(
        view,
        node_type="cache.t4g.small",
        multi_az="disabled",
        automatic_failover="disabled",
        engine="valkey",
    )
    assert (
        ec_api.not_yet_shown(done, params, ec_api.NodeNetwork("c-001", "g", ["sg-new"], "8.0.1"))
        == []
    )
    pending = replace(done, pending_modified={"AutomaticFailoverStatus": "disabled"})
    assert ec_api.not_yet_shown(pending, params) == ["pending: AutomaticFailoverStatus"]
