"""ElastiCache adapter: reading the cache (replication group). Provisioning adds to this module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import error_code, translate

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
    )


def get_replication_group(client: ElastiCacheClient, group_id: str) -> CacheView | None:
    """The replication group, or None when it does not exist."""
    import botocore.exceptions

    try:
        resp = client.describe_replication_groups(ReplicationGroupId=group_id)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ReplicationGroupNotFoundFault":
            return None
        raise translate(exc, f"describe ElastiCache replication group {group_id}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise translate(exc, f"describe ElastiCache replication group {group_id}") from exc
    groups = resp.get("ReplicationGroups", [])
    return _view(dict(groups[0])) if groups else None
