"""ElastiCache adapter: the cache (replication group), its subnet group, tags and member nodes.

Everything rexctl creates here is tagged in the creating call, so a failure half way never leaves an
untagged resource behind.

Each write has a request builder (`*_request`: the exact kwargs of the boto3 call) and a sender
(`send_*`) that sends what it is given: provisioning checks the built request against AWS's
documented rules (`rexctl.aws.rules`) at plan time, and the executor sends that same request.

ElastiCache stores replication group ids and cache subnet group names in lower case (it converts
what it is sent); every lookup here asks for the lower-cased name (`aws_name`), as AWS has it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rexctl.aws.errors import aws_errors, error_code, translate, unless_missing

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
    pending_modified: dict[str, Any] = field(default_factory=dict)  # PendingModifiedValues
    transit_mode: str = ""  # TransitEncryptionMode: preferred | required ('' when not shown)
    auth_modified: str = ""  # AuthTokenLastModifiedDate, ISO 8601 ('' when none)

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
        pending_modified={
            k: v for k, v in dict(raw.get("PendingModifiedValues") or {}).items() if v
        },
        transit_mode=str(raw.get("TransitEncryptionMode") or ""),
        auth_modified=_iso(raw.get("AuthTokenLastModifiedDate")),
    )


def _iso(when: Any) -> str:
    return when.isoformat() if hasattr(when, "isoformat") else str(when or "")


def aws_name(name: str) -> str:
    """The name as ElastiCache stores it: replication group ids and cache subnet group names are
    converted to lower case (ElastiCache API reference, CreateReplicationGroup.ReplicationGroupId
    and CreateCacheSubnetGroup.CacheSubnetGroupName: "stored as a lowercase string")."""
    return name.lower()


def same_name(a: str, b: str) -> bool:
    """Whether two replication group ids (or subnet group names) are the same for ElastiCache."""
    return aws_name(a) == aws_name(b)


def get_replication_group(client: ElastiCacheClient, group_id: str) -> CacheView | None:
    """The replication group, or None when it does not exist."""
    group_id = aws_name(group_id)
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
    name = aws_name(name)
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


def subnet_group_request(
    name: str, description: str, subnet_ids: list[str], tags: dict[str, str]
) -> dict[str, Any]:
    """The CreateCacheSubnetGroup request."""
    return {
        "CacheSubnetGroupName": name,
        "CacheSubnetGroupDescription": description,
        "SubnetIds": list(subnet_ids),
        "Tags": _tag_list(tags),
    }


def send_create_subnet_group(client: ElastiCacheClient, request: dict[str, Any]) -> str:
    with aws_errors(f"create cache subnet group {request['CacheSubnetGroupName']}"):
        resp = client.create_cache_subnet_group(**request)
    return str(resp["CacheSubnetGroup"].get("ARN", ""))


def create_subnet_group(
    client: ElastiCacheClient,
    name: str,
    description: str,
    subnet_ids: list[str],
    tags: dict[str, str],
) -> str:
    request = subnet_group_request(name, description, subnet_ids, tags)
    return send_create_subnet_group(client, request)


def delete_subnet_group(client: ElastiCacheClient, name: str) -> None:
    name = aws_name(name)
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


def replication_group_request(params: dict[str, Any]) -> dict[str, Any]:
    """The CreateReplicationGroup request from complete parameters whose `Tags` is a dict."""
    return {**params, "Tags": _tag_list(params.get("Tags", {}))}


def send_create_replication_group(client: ElastiCacheClient, request: dict[str, Any]) -> CacheView:
    with aws_errors(f"create ElastiCache replication group {request['ReplicationGroupId']}"):
        resp = client.create_replication_group(**request)
    return _view(dict(resp["ReplicationGroup"]))


def create_replication_group(client: ElastiCacheClient, params: dict[str, Any]) -> CacheView:
    """Create the replication group from complete parameters; `Tags` is a dict."""
    return send_create_replication_group(client, replication_group_request(params))


def modify_request(params: dict[str, Any]) -> dict[str, Any]:
    """The ModifyReplicationGroup request (the parameters are the request)."""
    return dict(params)


def modify_replication_group(client: ElastiCacheClient, params: dict[str, Any]) -> CacheView:
    with aws_errors(f"modify ElastiCache replication group {params['ReplicationGroupId']}"):
        resp = client.modify_replication_group(**params)
    return _view(dict(resp["ReplicationGroup"]))


_ON_OFF = {True: "enabled", False: "disabled"}


def not_yet_shown(
    view: CacheView, params: dict[str, Any], node: NodeNetwork | None = None
) -> list[str]:
    """What of a ModifyReplicationGroup request the described group does not show yet ([]: all of
    it). Right after the call AWS may still show `available` with the old values, before the
    change starts; the change is done when the values asked for show and nothing is pending.
    `node` (the primary's `describe_cache_clusters`, when readable) shows the security groups and
    the engine version; without it those two cannot be told and count as shown."""
    missing: list[str] = []
    if view.status != "available":
        missing.append(view.status or "no status")
    if "CacheNodeType" in params and view.node_type != params["CacheNodeType"]:
        missing.append(f"node type is still {view.node_type}")
    for key, shown, what in (
        ("MultiAZEnabled", view.multi_az, "multi-AZ"),
        ("AutomaticFailoverEnabled", view.automatic_failover, "automatic failover"),
    ):
        if key in params and shown != _ON_OFF[bool(params[key])]:
            missing.append(f"{what} is still {shown or 'unknown'}")
    if "Engine" in params and view.engine and view.engine.lower() != str(params["Engine"]).lower():
        missing.append(f"engine is still {view.engine}")
    if params.get("TransitEncryptionEnabled") is True and not view.transit_encryption:
        missing.append("in-transit encryption is still off")
    mode = params.get("TransitEncryptionMode")
    if mode and view.transit_mode != mode:
        missing.append(f"transit encryption mode is still {view.transit_mode or 'not shown'}")
    if "AuthToken" in params and not view.auth_enabled:
        missing.append("AUTH is still off")
    if node is not None:
        want_sgs = params.get("SecurityGroupIds")
        if want_sgs is not None and sorted(node.security_groups) != sorted(want_sgs):
            missing.append(f"security groups are still {', '.join(node.security_groups)}")
        version = str(params.get("EngineVersion", ""))
        have = node.engine_version
        if version and have and not (have == version or have.startswith(version + ".")):
            missing.append(f"engine version is still {have}")
    if view.pending_modified:
        missing.append("pending: " + ", ".join(sorted(view.pending_modified)))
    return missing


@dataclass(frozen=True)
class EngineVersions:
    """What ElastiCache answers for an engine and version (DescribeCacheEngineVersions)."""

    engine: str
    version: str
    answered: bool  # False: the endpoint does not implement the call (moto, the sandbox)
    offered: bool = False  # AWS lists this engine and version
    versions: list[str] = field(default_factory=list)  # what AWS lists for the engine otherwise


def _version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))


def engine_versions(client: ElastiCacheClient, engine: str, version: str) -> EngineVersions:
    """Whether ElastiCache offers `engine` `version` in this region, and if not, which versions of
    the engine it does offer. An endpoint that does not implement DescribeCacheEngineVersions
    (moto answers NotImplementedError in process, HTTP 500 as a server) gives `answered=False`."""
    import botocore.exceptions as bce
    import botocore.parsers

    doing = f"list the {engine} versions ElastiCache offers"
    try:
        try:
            resp = client.describe_cache_engine_versions(Engine=engine, EngineVersion=version)
            if resp.get("CacheEngineVersions"):
                return EngineVersions(engine, version, answered=True, offered=True)
        except bce.ClientError as exc:
            # An engine version AWS does not know may be refused rather than listed as nothing.
            if error_code(exc) not in ("InvalidParameterValue", "InvalidParameterCombination"):
                raise
        found: set[str] = set()
        for page in client.get_paginator("describe_cache_engine_versions").paginate(Engine=engine):
            found.update(v["EngineVersion"] for v in page.get("CacheEngineVersions", []))
    except (NotImplementedError, botocore.parsers.ResponseParserError):
        return EngineVersions(engine, version, answered=False)
    except (bce.BotoCoreError, bce.ClientError) as exc:
        raise translate(exc, doing) from exc
    return EngineVersions(engine, version, answered=True, versions=sorted(found, key=_version_key))


def delete_replication_group(client: ElastiCacheClient, group_id: str) -> None:
    group_id = aws_name(group_id)
    with aws_errors(f"delete ElastiCache replication group {group_id}"):
        client.delete_replication_group(ReplicationGroupId=group_id)


def tag_resource(client: ElastiCacheClient, arn: str, tags: dict[str, str]) -> None:
    """AddTagsToResource (a key that exists is overwritten)."""
    with aws_errors(f"tag {arn}"):
        client.add_tags_to_resource(ResourceName=arn, Tags=_tag_list(tags))
