"""ElastiCache adapter: the cache (replication group), its subnet group, tags and member nodes.

Everything rexctl creates here is tagged in the creating call, so a failure half way never leaves an
untagged resource behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors, unless_missing

if TYPE_CHECKING:
    from mypy_boto3_elasticache import ElastiCacheClient


@dataclass(frozen=True)
class CacheView:
    id: str
    arn: str
    status: str  # creating | available | modifying | deleting | ...
    endpoint: str  # primary endpoint address ('' until available)
    port: int
    node_type: str
    member_clusters: list[str]
    automatic_failover: str
    multi_az: str
    transit_encryption: bool
    at_rest_encryption: bool
    auth_enabled: bool
    cluster_mode: str
    engine: str = ""
    description: str = ""

    @property
    def replicas(self) -> int:
        """Read replicas (cluster mode disabled: every member cluster but the primary)."""
        return max(len(self.member_clusters) - 1, 0)


def _view(raw: dict[str, Any]) -> CacheView:
    groups = raw.get("NodeGroups") or [{}]
    primary = groups[0].get("PrimaryEndpoint") or {}
    return CacheView(
        id=raw.get("ReplicationGroupId", ""),
        arn=raw.get("ARN", ""),
        status=raw.get("Status", ""),
        endpoint=primary.get("Address", ""),
        port=int(primary.get("Port", 0) or 0),
        node_type=raw.get("CacheNodeType", ""),
        member_clusters=list(raw.get("MemberClusters", [])),
        automatic_failover=raw.get("AutomaticFailover", ""),
        multi_az=raw.get("MultiAZ", ""),
        transit_encryption=bool(raw.get("TransitEncryptionEnabled", False)),
        at_rest_encryption=bool(raw.get("AtRestEncryptionEnabled", False)),
        auth_enabled=bool(raw.get("AuthTokenEnabled", False)),
        cluster_mode="enabled" if raw.get("ClusterEnabled") else "disabled",
        engine=raw.get("Engine", ""),
        description=raw.get("Description", ""),
    )


def get_replication_group(client: ElastiCacheClient, group_id: str) -> CacheView | None:
    """The replication group, or None when it does not exist."""
    resp = unless_missing(
        "ReplicationGroupNotFoundFault",
        f"describe ElastiCache replication group {group_id}",
        lambda: client.describe_replication_groups(ReplicationGroupId=group_id),
    )
    if resp is None:
        return None
    groups = resp.get("ReplicationGroups", [])
    return _view(dict(groups[0])) if groups else None


def _tag_list(tags: dict[str, str]) -> list[Any]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def list_tags(client: ElastiCacheClient, arn: str) -> dict[str, str]:
    with aws_errors(f"read the tags of {arn}"):
        resp = client.list_tags_for_resource(ResourceName=arn)
    return {t["Key"]: t.get("Value", "") for t in resp.get("TagList", [])}


@dataclass(frozen=True)
class SubnetGroupView:
    name: str
    arn: str
    vpc_id: str
    subnet_ids: list[str] = field(default_factory=list)


def get_subnet_group(client: ElastiCacheClient, name: str) -> SubnetGroupView | None:
    """The cache subnet group, or None when it does not exist."""
    resp = unless_missing(
        "CacheSubnetGroupNotFoundFault",
        f"describe cache subnet group {name}",
        lambda: client.describe_cache_subnet_groups(CacheSubnetGroupName=name),
    )
    groups = resp.get("CacheSubnetGroups", []) if resp else []
    if not groups:
        return None
    raw = groups[0]
    return SubnetGroupView(
        name=raw.get("CacheSubnetGroupName", name),
        arn=raw.get("ARN", ""),
        vpc_id=raw.get("VpcId", ""),
        subnet_ids=sorted(s["SubnetIdentifier"] for s in raw.get("Subnets", [])),
    )


def cache_subnet_ids(client: ElastiCacheClient, name: str) -> list[str]:
    """The subnets of the cache subnet group ([] when the group does not exist)."""
    group = get_subnet_group(client, name)
    return list(group.subnet_ids) if group else []


def create_subnet_group(
    client: ElastiCacheClient,
    name: str,
    description: str,
    subnet_ids: list[str],
    tags: dict[str, str],
) -> str:
    with aws_errors(f"create cache subnet group {name}"):
        resp = client.create_cache_subnet_group(
            CacheSubnetGroupName=name,
            CacheSubnetGroupDescription=description,
            SubnetIds=subnet_ids,
            Tags=_tag_list(tags),
        )
    return str(resp["CacheSubnetGroup"].get("ARN", ""))


def delete_subnet_group(client: ElastiCacheClient, name: str) -> None:
    with aws_errors(f"delete cache subnet group {name}"):
        client.delete_cache_subnet_group(CacheSubnetGroupName=name)


@dataclass(frozen=True)
class NodeNetwork:
    """Where the primary node lives: only `describe_cache_clusters` on a member tells."""

    cluster_id: str
    subnet_group: str
    security_groups: list[str]
    engine_version: str


def member_network(client: ElastiCacheClient, cluster_id: str) -> NodeNetwork | None:
    """The member cluster's subnet group and security groups; None when it cannot be read."""
    resp = unless_missing(
        "CacheClusterNotFound",
        f"describe cache cluster {cluster_id}",
        lambda: client.describe_cache_clusters(CacheClusterId=cluster_id),
    )
    clusters = resp.get("CacheClusters", []) if resp else []
    if not clusters:
        return None
    raw = clusters[0]
    return NodeNetwork(
        cluster_id=cluster_id,
        subnet_group=raw.get("CacheSubnetGroupName", ""),
        security_groups=[g["SecurityGroupId"] for g in raw.get("SecurityGroups", [])],
        engine_version=raw.get("EngineVersion", ""),
    )


def create_replication_group(client: ElastiCacheClient, params: dict[str, Any]) -> CacheView:
    """Create the replication group from complete parameters; `Tags` is a dict."""
    params = {**params, "Tags": _tag_list(params.get("Tags", {}))}
    with aws_errors(f"create ElastiCache replication group {params['ReplicationGroupId']}"):
        resp = client.create_replication_group(**params)
    return _view(dict(resp["ReplicationGroup"]))


def modify_replication_group(client: ElastiCacheClient, params: dict[str, Any]) -> CacheView:
    with aws_errors(f"modify ElastiCache replication group {params['ReplicationGroupId']}"):
        resp = client.modify_replication_group(**params)
    return _view(dict(resp["ReplicationGroup"]))


def delete_replication_group(client: ElastiCacheClient, group_id: str) -> None:
    with aws_errors(f"delete ElastiCache replication group {group_id}"):
        client.delete_replication_group(ReplicationGroupId=group_id)
