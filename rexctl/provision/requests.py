"""The exact AWS requests each planned action sends, and AWS's documented rules checked on them.

One builder per action (the adapters' `*_request` functions) serves both sides: the plan checks
the requests against `rexctl.aws.rules` before anything is changed (a violation blocks the step,
naming the parameter and the rule), and the executor sends those same requests once the values
only known while applying (`Ref`: the new group's id, the AUTH token) are resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import elasticache as ec_api
from rexctl.aws import rules
from rexctl.aws import secrets as sm_api
from rexctl.provision.model import Action, Ref

# What a Ref will look like once resolved, for checking a plan: a value of the right shape (AWS's
# rules are about shapes and combinations, never about the one id or token rexctl will get).
PLACEHOLDERS: dict[str, Any] = {
    "cache_sg_id": "sg-00000000000000000",
    "auth_token": "0" * 64,  # a token of the generated length and an allowed alphabet
    "auth_secret_arn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:placeholder-AAAAAA",
}

# Where the value of a refused parameter comes from, to say which setting to fix.
SETTINGS = {
    ("CreateSecurityGroup", "GroupName"): "cache.security_group",
    ("CreateCacheSubnetGroup", "CacheSubnetGroupName"): "cache.subnet_group",
    ("CreateCacheSubnetGroup", "SubnetIds"): "cache.subnets",
    ("CreateReplicationGroup", "ReplicationGroupId"): "cache.id",
    ("CreateReplicationGroup", "Engine"): "cache.engine",
    ("CreateReplicationGroup", "EngineVersion"): "cache.engine_version",
    ("CreateReplicationGroup", "CacheNodeType"): "cache.node_type",
    ("CreateReplicationGroup", "NumCacheClusters"): "cache.replicas",
    ("CreateReplicationGroup", "MultiAZEnabled"): "cache.multi_az",
    ("CreateReplicationGroup", "Port"): "cache.port",
    ("CreateReplicationGroup", "TransitEncryptionEnabled"): "cache.tls",
    ("CreateReplicationGroup", "AuthToken"): "cache.auth",
    ("CreateSecret", "Name"): "cache.id",
    ("ModifyReplicationGroup", "CacheNodeType"): "cache.node_type",
    ("ModifyReplicationGroup", "Engine"): "cache.engine",
    ("ModifyReplicationGroup", "EngineVersion"): "cache.engine_version",
}


@dataclass(frozen=True)
class Request:
    service: str  # botocore's service name
    operation: str  # botocore's operation name
    params: dict[str, Any]  # the boto3 method's kwargs; may hold Refs until resolved


def requests(action: Action) -> list[Request]:
    """The AWS requests that `action` sends, in order."""
    p = action.params
    match action.kind:
        case "create_subnet_group":
            return [
                Request(
                    "elasticache",
                    "CreateCacheSubnetGroup",
                    ec_api.subnet_group_request(
                        p["CacheSubnetGroupName"],
                        p["CacheSubnetGroupDescription"],
                        p["SubnetIds"],
                        p["Tags"],
                    ),
                )
            ]
        case "create_security_group":
            return [
                Request(
                    "ec2",
                    "CreateSecurityGroup",
                    ec2_api.security_group_request(
                        p["GroupName"], p["VpcId"], p["Description"], p["Tags"]
                    ),
                )
            ]
        case "authorize_ingress":
            return [
                Request(
                    "ec2",
                    "AuthorizeSecurityGroupIngress",
                    ec2_api.ingress_from_group_request(
                        p["GroupId"], p["Port"], p["SourceGroup"], p["Description"], p["Tags"]
                    ),
                )
            ]
        case "create_auth_secret":
            return [
                Request(
                    "secretsmanager",
                    "CreateSecret",
                    sm_api.secret_request(
                        p["Name"], Ref("auth_token"), p["Description"], p["Tags"]
                    ),
                )
            ]
        case "read_auth_secret":
            return [Request("secretsmanager", "GetSecretValue", {"SecretId": p["SecretId"]})]
        case "create_replication_group":
            return [
                Request(
                    "elasticache", "CreateReplicationGroup", ec_api.replication_group_request(p)
                )
            ]
        case "modify_replication_group":
            return [Request("elasticache", "ModifyReplicationGroup", ec_api.modify_request(p))]
    raise ValueError(f"unknown action kind {action.kind}")  # pragma: no cover


def resolve(value: Any, outputs: dict[str, Any]) -> Any:
    """`value` with every Ref replaced by its output."""
    if isinstance(value, Ref):
        return outputs[value.name]
    if isinstance(value, dict):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value


def violations(request: Request, outputs: dict[str, Any] | None = None) -> list[rules.Violation]:
    """What AWS documents it refuses in `request` (Refs checked as their placeholders, or as
    `outputs` when they are known)."""
    known = {**PLACEHOLDERS, **(outputs or {})}
    return rules.check(request.service, request.operation, resolve(request.params, known))


def setting_of(violation: rules.Violation) -> str:
    """The rexctl.toml setting that produced the refused parameter ('' when none does)."""
    top = violation.parameter.split("[", 1)[0].split(".", 1)[0]
    return SETTINGS.get((violation.operation, top), "")
