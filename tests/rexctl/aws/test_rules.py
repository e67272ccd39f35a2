"""AWS's documented request rules: each refuses what AWS refuses and admits what AWS admits."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
import pytest
from moto import mock_aws

from rexctl.aws import rules
from rexctl.aws.rules import (
    GroupState,
    SecretState,
    Violation,
    check,
    check_group,
    check_secret,
    install,
    refusal,
)

Key = tuple[str, str]

TAGS_EC2 = [{"Key": "managed-by", "Value": "rexctl"}, {"Key": "rexctl:cache-id", "Value": "rc"}]
TOKEN = "Ab3!&#$^<>-" + "x" * 53  # 64 characters, every special character ElastiCache allows
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/rc/auth-token-AbCdEf"


def _container(**changes: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "backend",
        "image": "rexpress/backend:latest",
        "memory": 512,
        "essential": True,
        "environment": [{"name": "REDIS_HOST", "value": "master.rc.cache.amazonaws.com"}],
        "secrets": [{"name": "REDIS_AUTH", "valueFrom": SECRET_ARN}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": "/ecs/backend", "awslogs-region": "us-east-1"},
        },
    }
    container.update(changes)
    return container


# One realistic request per covered operation, as rexctl sends it: check() admits each.
GOOD: dict[Key, dict[str, Any]] = {
    ("ec2", "CreateSecurityGroup"): {
        "GroupName": "rexctl-cache",
        "Description": "rexctl: Redis rc, port 6379 from the ECS service",
        "VpcId": "vpc-1",
        "TagSpecifications": [{"ResourceType": "security-group", "Tags": TAGS_EC2}],
    },
    ("ec2", "AuthorizeSecurityGroupIngress"): {
        "GroupId": "sg-1",
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": "sg-2", "Description": "rexctl: ECS tasks"}],
            }
        ],
        "TagSpecifications": [{"ResourceType": "security-group-rule", "Tags": TAGS_EC2}],
    },
    ("ec2", "RevokeSecurityGroupIngress"): {
        "GroupId": "sg-1",
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": "sg-2", "Description": "rexctl: ECS tasks"}],
            }
        ],
    },
    ("ec2", "DeleteSecurityGroup"): {"GroupId": "sg-1"},
    ("ec2", "CreateNetworkAclEntry"): {
        "NetworkAclId": "acl-1",
        "RuleNumber": 1,
        "Protocol": "6",
        "RuleAction": "deny",
        "Egress": False,
        "CidrBlock": "10.0.1.0/24",
        "PortRange": {"From": 6379, "To": 6379},
    },
    ("ec2", "DeleteNetworkAclEntry"): {"NetworkAclId": "acl-1", "RuleNumber": 1, "Egress": True},
    ("ec2", "CreateNetworkAcl"): {
        "VpcId": "vpc-1",
        "TagSpecifications": [{"ResourceType": "network-acl", "Tags": TAGS_EC2}],
    },
    ("ec2", "ReplaceNetworkAclAssociation"): {
        "AssociationId": "aclassoc-1",
        "NetworkAclId": "acl-2",
    },
    ("ec2", "DeleteNetworkAcl"): {"NetworkAclId": "acl-2"},
    ("ec2", "CreateTags"): {
        "Resources": ["sg-1"],
        "Tags": [{"Key": "rexctl:drill:20260101T000000Z-break-sg-aaaaaa", "Value": "break-sg"}],
    },
    ("ec2", "DeleteTags"): {
        "Resources": ["sg-1"],
        "Tags": [{"Key": "rexctl:drill:20260101T000000Z-break-sg-aaaaaa", "Value": "break-sg"}],
    },
    ("elasticache", "CreateCacheSubnetGroup"): {
        "CacheSubnetGroupName": "rexctl-rc-subnets",
        "CacheSubnetGroupDescription": "rexctl: private subnets for rc",
        "SubnetIds": ["subnet-1", "subnet-2"],
        "Tags": [{"Key": "managed-by", "Value": "rexctl"}],
    },
    ("elasticache", "DeleteCacheSubnetGroup"): {"CacheSubnetGroupName": "rexctl-rc-subnets"},
    ("elasticache", "CreateReplicationGroup"): {
        "ReplicationGroupId": "rexpress-cache-1",
        "ReplicationGroupDescription": "rexctl: Redis cache for ECS service backend",
        "Engine": "redis",
        "EngineVersion": "7.1",
        "ClusterMode": "disabled",
        "CacheNodeType": "cache.t4g.micro",
        "NumCacheClusters": 2,
        "AutomaticFailoverEnabled": True,
        "MultiAZEnabled": True,
        "CacheSubnetGroupName": "rexctl-rc-subnets",
        "SecurityGroupIds": ["sg-1"],
        "Port": 6379,
        "AtRestEncryptionEnabled": True,
        "TransitEncryptionEnabled": True,
        "AuthToken": TOKEN,
        "Tags": [{"Key": "managed-by", "Value": "rexctl"}, {"Key": "rexctl:cache-id", "Value": ""}],
    },
    ("elasticache", "ModifyReplicationGroup"): {
        "ReplicationGroupId": "rexpress-cache-1",
        "CacheNodeType": "cache.t4g.small",
        "AutomaticFailoverEnabled": True,
        "MultiAZEnabled": True,
        "SecurityGroupIds": ["sg-1"],
        "ApplyImmediately": True,
    },
    ("elasticache", "DeleteReplicationGroup"): {"ReplicationGroupId": "rexpress-cache-1"},
    ("elasticache", "AddTagsToResource"): {
        "ResourceName": "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rc",
        "Tags": [{"Key": "rexctl:auth-token", "Value": "ROTATE 2025-01-31T12:00:00+00:00"}],
    },
    ("ecs", "RegisterTaskDefinition"): {
        "family": "rexpress-backend_2",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": ROLE,
        "containerDefinitions": [_container()],
        "tags": [
            {"key": "rexctl:previous", "value": "arn:aws:ecs:us-east-1:1:task-definition/b:3"},
            {"key": "équipe", "value": "Zürich team 2"},
        ],
    },
    ("ecs", "UpdateService"): {"cluster": "c", "service": "backend", "taskDefinition": "b:4"},
    ("ecs", "DeregisterTaskDefinition"): {"taskDefinition": "backend:3"},
    ("secretsmanager", "CreateSecret"): {
        "Name": "rexctl/rexpress-cache/auth-token",
        "Description": "rexctl: AUTH token of the ElastiCache replication group",
        "SecretString": TOKEN,
        "Tags": [{"Key": "managed-by", "Value": "rexctl"}],
    },
    ("secretsmanager", "DeleteSecret"): {
        "SecretId": SECRET_ARN,
        "ForceDeleteWithoutRecovery": True,
    },
    ("secretsmanager", "PutSecretValue"): {
        "SecretId": SECRET_ARN,
        "SecretString": TOKEN,
        "ClientRequestToken": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "VersionStages": ["AWSPENDING"],
    },
    ("secretsmanager", "UpdateSecretVersionStage"): {
        "SecretId": SECRET_ARN,
        "VersionStage": "AWSCURRENT",
        "MoveToVersionId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "RemoveFromVersionId": "11111111-2222-3333-4444-555555555555",
    },
}


def req(key: Key, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    """GOOD[key] with some parameters replaced, added or dropped."""
    params = copy.deepcopy(GOOD[key])
    params.update(changes)
    for name in drop:
        params.pop(name)
    return params


SG = ("ec2", "CreateSecurityGroup")
AUTHORIZE = ("ec2", "AuthorizeSecurityGroupIngress")
REVOKE = ("ec2", "RevokeSecurityGroupIngress")
ACL = ("ec2", "CreateNetworkAclEntry")
SUBNETS = ("elasticache", "CreateCacheSubnetGroup")
CREATE_RG = ("elasticache", "CreateReplicationGroup")
MODIFY_RG = ("elasticache", "ModifyReplicationGroup")
TASKDEF = ("ecs", "RegisterTaskDefinition")
SECRET = ("secretsmanager", "CreateSecret")
PUT = ("secretsmanager", "PutSecretValue")
STAGE = ("secretsmanager", "UpdateSecretVersionStage")


def perm(**fields: Any) -> list[dict[str, Any]]:
    """One IpPermission: TCP 6379 from sg-2 unless `fields` say otherwise (None drops one)."""
    p: dict[str, Any] = {
        "IpProtocol": "tcp",
        "FromPort": 6379,
        "ToPort": 6379,
        "UserIdGroupPairs": [{"GroupId": "sg-2"}],
    }
    p.update(fields)
    return [{k: v for k, v in p.items() if v is not None}]


def tags_ec2(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in pairs]}]


def ecs_tags(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs]


# Requests AWS refuses, and requests at the limits that it accepts.

BAD = "InvalidParameterValue"
COMBO = "InvalidParameterCombination"
MISSING = "MissingParameter"
CLIENT = "ClientException"
INVALID = "InvalidParameterException"
PAIR0 = "IpPermissions[0].UserIdGroupPairs[0].Description"
TAG0 = "TagSpecifications[0].Tags[0]"


def no(
    key: Key, case: str, parameter: str, code: str, drop: tuple[str, ...] = (), **changes: Any
) -> Any:
    """A request AWS refuses: GOOD[key] changed; the parameter refused, the code AWS answers."""
    return pytest.param(key, req(key, drop, **changes), parameter, code, id=case)


def yes(key: Key, case: str, drop: tuple[str, ...] = (), **changes: Any) -> Any:
    """A request at the limits that AWS accepts: GOOD[key] changed."""
    return pytest.param(key, req(key, drop, **changes), id=case)


def pair(description: str) -> list[dict[str, str]]:
    return [{"GroupId": "sg-2", "Description": description}]


def source(member: str, description: str) -> list[dict[str, Any]]:
    """One IpPermission whose only source is one `member` entry with this description."""
    item = {
        "IpRanges": {"CidrIp": "10.0.0.0/16"},
        "Ipv6Ranges": {"CidrIpv6": "::/0"},
        "PrefixListIds": {"PrefixListId": "pl-1"},
    }[member]
    return perm(UserIdGroupPairs=None, **{member: [{**item, "Description": description}]})


# fmt: off
REFUSED = [
    # --- EC2 security groups and their rules
    no(SG, "sg-name-256", "GroupName", BAD, GroupName="a" * 256),
    no(SG, "sg-name-apostrophe", "GroupName", BAD, GroupName="rexctl's cache"),
    no(SG, "sg-name-sg-prefix", "GroupName", BAD, GroupName="sg-cache"),
    no(SG, "sg-description-256", "Description", BAD, Description="d" * 256),
    no(SG, "sg-description-accent", "Description", BAD, Description="cache café"),
    no(SG, "ec2-tag-key-128", f"{TAG0}.Key", BAD, TagSpecifications=tags_ec2(("k" * 128, "v"))),
    no(SG, "ec2-tag-aws-prefix", f"{TAG0}.Key", BAD, TagSpecifications=tags_ec2(("aws:a", "b"))),
    no(SG, "ec2-tag-value-257", f"{TAG0}.Value", BAD, TagSpecifications=tags_ec2(("k", "v" * 257))),
    no(SG, "ec2-51-tags", "TagSpecifications[0].Tags", "TagLimitExceeded",
       TagSpecifications=tags_ec2(*[(f"k{i}", "v") for i in range(51)])),
    no(SG, "ec2-tag-key-twice", "TagSpecifications[0].Tags[1].Key", BAD,
       TagSpecifications=tags_ec2(("k", "1"), ("k", "2"))),
    no(("ec2", "CreateTags"), "create-tags-aws-prefix", "Tags[0].Key", BAD,
       Tags=[{"Key": "aws:drill", "Value": "x"}]),
    no(("ec2", "CreateTags"), "create-tags-1001-resources", "Resources", BAD,
       Resources=[f"sg-{i}" for i in range(1001)]),
    no(("ec2", "DeleteTags"), "delete-tags-1001-resources", "Resources", BAD,
       Resources=[f"sg-{i}" for i in range(1001)]),
    no(AUTHORIZE, "pair-description-256", PAIR0, BAD,
       IpPermissions=perm(UserIdGroupPairs=pair("x" * 256))),
    no(AUTHORIZE, "pair-description-ampersand", PAIR0, BAD,
       IpPermissions=perm(UserIdGroupPairs=pair("cache & tasks"))),
    no(AUTHORIZE, "range-description-256", "IpPermissions[0].IpRanges[0].Description", BAD,
       IpPermissions=source("IpRanges", "x" * 256)),
    no(AUTHORIZE, "range-description-apostrophe", "IpPermissions[0].IpRanges[0].Description", BAD,
       IpPermissions=source("IpRanges", "the LB's range")),
    no(AUTHORIZE, "ipv6-description-256", "IpPermissions[0].Ipv6Ranges[0].Description", BAD,
       IpPermissions=source("Ipv6Ranges", "x" * 256)),
    no(AUTHORIZE, "ipv6-description-tab", "IpPermissions[0].Ipv6Ranges[0].Description", BAD,
       IpPermissions=source("Ipv6Ranges", "all\tof it")),
    no(AUTHORIZE, "prefix-description-256", "IpPermissions[0].PrefixListIds[0].Description", BAD,
       IpPermissions=source("PrefixListIds", "x" * 256)),
    no(AUTHORIZE, "prefix-description-ampersand", "IpPermissions[0].PrefixListIds[0].Description",
       BAD, IpPermissions=source("PrefixListIds", "S3 & co")),
    no(AUTHORIZE, "no-protocol", "IpPermissions[0].IpProtocol", MISSING,
       IpPermissions=perm(IpProtocol=None)),
    no(AUTHORIZE, "tcp-no-to-port", "IpPermissions[0].ToPort", BAD,
       IpPermissions=perm(ToPort=None)),
    no(AUTHORIZE, "udp-number-no-from-port", "IpPermissions[0].FromPort", BAD,
       IpPermissions=perm(IpProtocol="17", FromPort=None)),
    no(AUTHORIZE, "icmp-all-types-one-code", "IpPermissions[0].ToPort", BAD,
       IpPermissions=perm(IpProtocol="icmp", FromPort=-1, ToPort=0)),
    no(AUTHORIZE, "no-source", "IpPermissions[0]", MISSING,
       IpPermissions=perm(UserIdGroupPairs=None)),
    no(AUTHORIZE, "rule-tag-aws-prefix", f"{TAG0}.Key", BAD,
       TagSpecifications=tags_ec2(("aws:x", "y"))),
    no(REVOKE, "revoke-group-and-cidr", "IpPermissions[0]", COMBO,
       IpPermissions=perm(IpRanges=[{"CidrIp": "10.0.0.0/16"}])),
    no(REVOKE, "revoke-icmp-no-code", "IpPermissions[0].ToPort", BAD,
       IpPermissions=perm(IpProtocol="icmp", ToPort=None)),
    no(REVOKE, "revoke-pair-description-apostrophe", PAIR0, BAD,
       IpPermissions=perm(UserIdGroupPairs=pair("the ECS service's tasks"))),
    # --- EC2 network ACL entries
    no(ACL, "acl-rule-32767", "RuleNumber", BAD, RuleNumber=32767),
    no(ACL, "acl-rule-0", "RuleNumber", BAD, RuleNumber=0),
    no(ACL, "acl-tcp-no-port-range", "PortRange", MISSING, drop=("PortRange",)),
    no(ACL, "acl-udp-name-no-port-range", "PortRange", MISSING,
       drop=("PortRange",), Protocol="udp"),
    no(ACL, "acl-icmp-no-type-code", "IcmpTypeCode", MISSING, drop=("PortRange",), Protocol="1"),
    no(ACL, "acl-icmpv6-ipv6-no-type-code", "IcmpTypeCode", MISSING,
       drop=("PortRange", "CidrBlock"), Protocol="58", Ipv6CidrBlock="::/0"),
    # --- ElastiCache
    no(SUBNETS, "subnet-group-underscore", "CacheSubnetGroupName", BAD,
       CacheSubnetGroupName="rexctl_subnets"),
    no(SUBNETS, "subnet-group-256", "CacheSubnetGroupName", BAD, CacheSubnetGroupName="s" * 256),
    no(SUBNETS, "elasticache-51-tags", "Tags", "TagQuotaPerResourceExceeded",
       Tags=[{"Key": f"k{i}", "Value": ""} for i in range(51)]),
    no(SUBNETS, "elasticache-tag-no-key", "Tags[0].Key", BAD, Tags=[{"Value": "v"}]),
    no(SUBNETS, "elasticache-tag-key-129", "Tags[0].Key", BAD,
       Tags=[{"Key": "k" * 129, "Value": ""}]),
    no(SUBNETS, "elasticache-tag-value-257", "Tags[0].Value", BAD,
       Tags=[{"Key": "k", "Value": "v" * 257}]),
    no(CREATE_RG, "elasticache-tag-key-twice", "Tags[1].Key", BAD,
       Tags=[{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]),
    no(CREATE_RG, "group-id-digit-first", "ReplicationGroupId", BAD, ReplicationGroupId="1cache"),
    no(CREATE_RG, "group-id-trailing-hyphen", "ReplicationGroupId", BAD,
       ReplicationGroupId="cache-"),
    no(CREATE_RG, "group-id-double-hyphen", "ReplicationGroupId", BAD,
       ReplicationGroupId="ca--che"),
    no(CREATE_RG, "group-id-41", "ReplicationGroupId", BAD, ReplicationGroupId="c" * 41),
    no(CREATE_RG, "group-id-underscore", "ReplicationGroupId", BAD, ReplicationGroupId="rex_cache"),
    no(CREATE_RG, "engine-memcached", "Engine", BAD, Engine="memcached"),
    no(CREATE_RG, "num-cache-clusters-7", "NumCacheClusters", BAD, NumCacheClusters=7),
    no(CREATE_RG, "num-cache-clusters-0", "NumCacheClusters", BAD,
       NumCacheClusters=0, AutomaticFailoverEnabled=False, MultiAZEnabled=False),
    no(CREATE_RG, "replicas-per-node-group-6", "ReplicasPerNodeGroup", BAD,
       drop=("NumCacheClusters",), ReplicasPerNodeGroup=6),
    no(CREATE_RG, "failover-one-node", "NumCacheClusters", COMBO,
       NumCacheClusters=1, MultiAZEnabled=False),
    no(CREATE_RG, "failover-default-one-node", "NumCacheClusters", COMBO,
       drop=("NumCacheClusters",), MultiAZEnabled=False),
    no(CREATE_RG, "multi-az-one-node", "MultiAZEnabled", COMBO,
       NumCacheClusters=1, AutomaticFailoverEnabled=False),
    no(CREATE_RG, "cluster-mode-enabled-no-failover", "AutomaticFailoverEnabled", COMBO,
       ClusterMode="enabled", AutomaticFailoverEnabled=False, MultiAZEnabled=False),
    no(CREATE_RG, "cluster-mode-disabled-two-shards", "NumNodeGroups", COMBO, NumNodeGroups=2),
    no(CREATE_RG, "auth-token-15", "AuthToken", BAD, AuthToken="A" * 15),
    no(CREATE_RG, "auth-token-129", "AuthToken", BAD, AuthToken="A" * 129),
    no(CREATE_RG, "auth-token-at-sign", "AuthToken", BAD, AuthToken="A" * 20 + "@"),
    no(CREATE_RG, "auth-token-space", "AuthToken", BAD, AuthToken="A" * 20 + " b"),
    no(CREATE_RG, "auth-token-without-tls", "AuthToken", COMBO, TransitEncryptionEnabled=False),
    no(CREATE_RG, "auth-token-tls-default-off", "AuthToken", COMBO,
       drop=("TransitEncryptionEnabled",)),
    no(CREATE_RG, "tls-without-subnet-group", "CacheSubnetGroupName", COMBO,
       drop=("CacheSubnetGroupName",)),
    no(CREATE_RG, "transit-encryption-mode-value", "TransitEncryptionMode", BAD,
       TransitEncryptionMode="optional"),
    no(CREATE_RG, "cluster-mode-value", "ClusterMode", BAD, ClusterMode="Disabled"),
    no(MODIFY_RG, "modify-description-256", "ReplicationGroupDescription", BAD,
       ReplicationGroupDescription="d" * 256),
    no(MODIFY_RG, "modify-auth-token-slash", "AuthToken", BAD,
       AuthToken="A" * 20 + "/b", AuthTokenUpdateStrategy="ROTATE"),
    no(MODIFY_RG, "modify-auth-token-15", "AuthToken", BAD,
       AuthToken="A" * 15, AuthTokenUpdateStrategy="SET"),
    no(MODIFY_RG, "modify-auth-token-asterisk", "AuthToken", BAD,
       AuthToken="A" * 20 + "*b", AuthTokenUpdateStrategy="ROTATE"),
    no(MODIFY_RG, "modify-rotate-without-token", "AuthTokenUpdateStrategy", COMBO,
       AuthTokenUpdateStrategy="ROTATE"),
    no(MODIFY_RG, "modify-delete-without-user-group", "AuthTokenUpdateStrategy", COMBO,
       AuthTokenUpdateStrategy="DELETE"),
    no(("elasticache", "AddTagsToResource"), "add-tags-key-129", "Tags[0].Key", BAD,
       Tags=[{"Key": "k" * 129, "Value": ""}]),
    no(MODIFY_RG, "modify-strategy-value", "AuthTokenUpdateStrategy", BAD,
       AuthToken=TOKEN, AuthTokenUpdateStrategy="rotate"),
    no(MODIFY_RG, "modify-transit-encryption-mode-value", "TransitEncryptionMode", BAD,
       TransitEncryptionEnabled=True, TransitEncryptionMode="Preferred"),
    no(MODIFY_RG, "modify-cluster-mode-value", "ClusterMode", BAD, ClusterMode="on"),
    # --- ECS
    no(TASKDEF, "family-dot", "family", CLIENT, family="rexpress.backend"),
    no(TASKDEF, "family-256", "family", CLIENT, family="f" * 256),
    no(TASKDEF, "container-name-space", "containerDefinitions[0].name", CLIENT,
       containerDefinitions=[_container(name="web app")]),
    no(TASKDEF, "secrets-without-execution-role", "executionRoleArn", CLIENT,
       drop=("executionRoleArn",), requiresCompatibilities=["EC2"], networkMode="bridge"),
    no(TASKDEF, "fargate-awslogs-without-execution-role", "executionRoleArn", CLIENT,
       drop=("executionRoleArn",), containerDefinitions=[_container(secrets=[])]),
    no(TASKDEF, "fargate-bridge", "networkMode", CLIENT, networkMode="bridge"),
    no(TASKDEF, "fargate-default-network-mode", "networkMode", CLIENT, drop=("networkMode",)),
    no(TASKDEF, "fargate-no-task-cpu", "cpu", CLIENT, drop=("cpu",)),
    no(TASKDEF, "fargate-no-task-memory", "memory", CLIENT, drop=("memory",)),
    no(TASKDEF, "ecs-tag-value-comma", "tags[0].value", INVALID, tags=ecs_tags(("team", "a,b"))),
    no(TASKDEF, "ecs-tag-key-apostrophe", "tags[0].key", INVALID, tags=ecs_tags(("it's", "x"))),
    no(TASKDEF, "ecs-tag-key-aws-prefix-any-case", "tags[0].key", INVALID,
       tags=ecs_tags(("AWS:cloudformation:stack-name", "app"))),
    no(TASKDEF, "ecs-tag-value-aws-prefix", "tags[0].value", INVALID,
       tags=ecs_tags(("s", "aws:x"))),
    no(TASKDEF, "ecs-tag-key-twice", "tags[1].key", INVALID, tags=ecs_tags(("k", "1"), ("k", "2"))),
    # --- Secrets Manager
    no(SECRET, "secret-name-space", "Name", "ValidationException", Name="rexctl cache token"),
    no(SECRET, "secret-name-colon", "Name", "ValidationException", Name="rexctl/cache:token"),
    no(SECRET, "secret-string-and-binary", "SecretString", INVALID, SecretBinary=b"token"),
    no(PUT, "put-string-and-binary", "SecretString", INVALID, SecretBinary=b"token"),
    no(PUT, "put-no-value", "SecretString", INVALID, drop=("SecretString",)),
    no(PUT, "put-request-token-65", "ClientRequestToken", "ValidationException",
       ClientRequestToken="c" * 65),
    no(PUT, "put-21-stages", "VersionStages", "ValidationException",
       VersionStages=[f"L{i}" for i in range(21)]),
    no(PUT, "put-stage-257", "VersionStages[0]", "ValidationException", VersionStages=["s" * 257]),
    no(STAGE, "stage-label-257", "VersionStage", "ValidationException", VersionStage="s" * 257),
    no(STAGE, "stage-move-to-65", "MoveToVersionId", "ValidationException",
       MoveToVersionId="v" * 65),
    no(STAGE, "stage-remove-from-65", "RemoveFromVersionId", "ValidationException",
       RemoveFromVersionId="v" * 65),
]

ADMITTED = [
    yes(AUTHORIZE, "range-description-every-allowed-char",
        IpPermissions=source("IpRanges", "LB & checks: 10.0/16 (a) [b] {c} #1 @x +=;!$* ._-,")),
    yes(AUTHORIZE, "pair-description-255", IpPermissions=perm(UserIdGroupPairs=pair("d" * 255))),
    yes(AUTHORIZE, "all-protocols-without-ports",
        IpPermissions=perm(IpProtocol="-1", FromPort=None, ToPort=None)),
    yes(AUTHORIZE, "icmp-all-types-all-codes",
        IpPermissions=perm(IpProtocol="icmp", FromPort=-1, ToPort=-1)),
    yes(AUTHORIZE, "icmpv6-without-ports",
        IpPermissions=perm(IpProtocol="icmpv6", FromPort=None, ToPort=None)),
    yes(AUTHORIZE, "authorize-group-and-cidr",
        IpPermissions=perm(IpRanges=[{"CidrIp": "10.0.0.0/16"}])),
    yes(AUTHORIZE, "ec2-tags-at-the-limits",
        TagSpecifications=tags_ec2(("k" * 127, "v" * 256), ("AWS-ish", ""))),
    yes(SG, "sg-name-255-description-ampersand",
        GroupName="g" * 255, Description="port 6379 & more"),
    yes(SG, "ec2-50-tags", TagSpecifications=tags_ec2(*[(f"k{i}", "v") for i in range(50)])),
    yes(ACL, "acl-rule-32766-all-protocols", drop=("PortRange",), RuleNumber=32766, Protocol="-1"),
    yes(ACL, "acl-icmp-with-type-code",
        drop=("PortRange",), Protocol="1", IcmpTypeCode={"Type": -1, "Code": -1}),
    yes(ACL, "acl-icmpv6-ipv4", drop=("PortRange",), Protocol="58"),
    yes(SUBNETS, "subnet-group-255-50-tags",
        CacheSubnetGroupName="S" * 255, Tags=[{"Key": f"k{i}"} for i in range(50)]),
    yes(CREATE_RG, "group-id-40", ReplicationGroupId="R" + "e-x" * 13),
    yes(CREATE_RG, "single-node-no-tls", drop=("AuthToken",), NumCacheClusters=1,
        AutomaticFailoverEnabled=False, MultiAZEnabled=False, TransitEncryptionEnabled=False),
    yes(CREATE_RG, "failover-with-replicas-per-node-group",
        drop=("NumCacheClusters",), ReplicasPerNodeGroup=1),
    yes(CREATE_RG, "six-nodes-valkey-token-16", NumCacheClusters=6, Engine="valkey",
        TransitEncryptionMode="preferred", AuthToken="A" * 16),
    yes(CREATE_RG, "cluster-mode-enabled-no-replicas", drop=("NumCacheClusters",),
        ClusterMode="enabled", NumNodeGroups=3, ReplicasPerNodeGroup=0, MultiAZEnabled=False),
    yes(MODIFY_RG, "modify-auth-token-128-every-allowed-special",
        AuthToken="Ab1!&#$^<>-" + "x" * 117, AuthTokenUpdateStrategy="SET"),
    yes(MODIFY_RG, "modify-delete-strategy-to-rbac", AuthTokenUpdateStrategy="DELETE",
        UserGroupIdsToAdd=["rexpress-users"]),
    yes(MODIFY_RG, "modify-token-default-strategy", AuthToken=TOKEN),
    yes(TASKDEF, "family-and-name-255",
        family="F" * 255, containerDefinitions=[_container(name="n" * 255)]),
    yes(TASKDEF, "ec2-awslogs-without-role", drop=("executionRoleArn", "cpu", "memory"),
        requiresCompatibilities=["EC2"], networkMode="bridge",
        containerDefinitions=[_container(secrets=[])]),
    yes(TASKDEF, "fargate-without-secrets-or-awslogs", drop=("executionRoleArn",),
        containerDefinitions=[
            _container(secrets=[], logConfiguration={"logDriver": "awsfirelens"})
        ]),
    yes(TASKDEF, "ecs-tags-every-allowed-char",
        tags=ecs_tags(("cost center", "x_y.z:w/v=u+t-s@r"), ("awsome", ""))),
    yes(SECRET, "secret-name-every-allowed-char", Name="rexctl/A_b+c=d.e@f-1"),
    yes(PUT, "put-request-token-64", ClientRequestToken="c" * 64),
    yes(PUT, "put-binary-only", drop=("SecretString",), SecretBinary=b"token"),
    yes(PUT, "put-20-stages", VersionStages=[f"L{i}" for i in range(20)]),
    yes(PUT, "put-no-stages-means-awscurrent", drop=("VersionStages",)),
    yes(STAGE, "stage-remove-only", drop=("MoveToVersionId",), VersionStage="AWSPENDING"),
]
# fmt: on


def _only(violations: list[Violation]) -> Violation:
    assert len(violations) == 1, [v.message() for v in violations]
    return violations[0]


@pytest.mark.parametrize("key", sorted(GOOD))
def test_rexctls_requests_are_admitted(key: Key) -> None:
    assert check(*key, GOOD[key]) == []


@pytest.mark.parametrize(("key", "params"), ADMITTED)
def test_requests_at_the_limits_are_admitted(key: Key, params: dict[str, Any]) -> None:
    assert check(*key, params) == []


@pytest.mark.parametrize(("key", "params", "parameter", "code"), REFUSED)
def test_requests_aws_refuses_are_refused(
    key: Key, params: dict[str, Any], parameter: str, code: str
) -> None:
    v = _only(check(*key, params))
    assert (v.service, v.operation, v.parameter, v.code) == (*key, parameter, code)
    assert v.rule and v.source


def test_every_rule_is_exercised_by_a_refused_request() -> None:
    seen = [
        v for case in REFUSED for v in check(case.values[0][0], case.values[0][1], case.values[1])
    ]
    seen += [v for case in GROUP_REFUSED for v in check_group(case.values[0], *MODIFY_RG,
                                                                case.values[1])]  # fmt: skip
    seen += [v for case in SECRET_REFUSED for v in check_secret(case.values[0], *STAGE,
                                                                  case.values[1])]  # fmt: skip
    seen += [
        v
        for key, names in rules.REQUIRED_MEMBERS.items()
        for name in names
        for v in check(*key, req(key, drop=(name,)))
    ]
    unexercised = [
        r
        for r in rules.RULES
        if not any(
            v.source == r.source and v.code == r.code and v.rule.startswith(r.requirement)
            for v in seen
        )
    ]
    assert unexercised == []


def test_the_apostrophe_that_moto_accepted_is_refused() -> None:
    """The bug behind this module: AWS refused the rule description rexctl sent; moto took it."""
    params = {
        "GroupId": "sg-1",
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [
                    {"GroupId": "sg-2", "Description": "rexctl: the ECS service's tasks"}
                ],
            }
        ],
    }
    v = _only(check("ec2", "AuthorizeSecurityGroupIngress", params))
    assert v.parameter == "IpPermissions[0].UserIdGroupPairs[0].Description"
    assert v.code == "InvalidParameterValue"
    assert v.source == "EC2 API reference, UserIdGroupPair.Description"
    assert v.message() == (
        "AuthorizeSecurityGroupIngress: IpPermissions[0].UserIdGroupPairs[0].Description may "
        'contain only a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=;{}!$* (it contains "\'") '
        "(EC2 API reference, UserIdGroupPair.Description)."
    )


@pytest.mark.parametrize(
    ("key", "name"),
    [(key, name) for key, names in sorted(rules.REQUIRED_MEMBERS.items()) for name in names],
)
def test_required_members_are_required(key: Key, name: str) -> None:
    v = _only(check(*key, req(key, drop=(name,))))
    assert (v.parameter, v.code, v.rule) == (name, "MissingParameter", "is required")


def test_required_members_match_botocores_models() -> None:
    session = botocore.session.get_session()
    for (service, operation), names in rules.REQUIRED_MEMBERS.items():
        shape = session.get_service_model(service).operation_model(operation).input_shape
        assert shape is not None
        assert set(names) == set(shape.required_members), (service, operation)


def test_covered_operations_and_only_those() -> None:
    assert set(GOOD) == rules.COVERED
    assert check("ec2", "CreateVpc", {"CidrBlock": "10.0.0.0/33"}) == []
    assert check("s3", "CreateBucket", {}) == []


def test_values_of_another_type_are_left_to_botocore() -> None:
    """A plan holds placeholders for ids not known yet; check() skips, never crashes."""
    placeholder = object()
    params = req(
        CREATE_RG,
        ReplicationGroupId=placeholder,
        AuthToken=placeholder,
        NumCacheClusters="2",
        Tags=placeholder,
    )
    assert check(*CREATE_RG, params) == []
    assert check(*AUTHORIZE, {"IpPermissions": [placeholder, {"IpProtocol": 6}]}) != []
    assert check(*TASKDEF, req(TASKDEF, containerDefinitions=placeholder, tags=None)) == []


def test_an_auth_token_never_appears_in_a_violation() -> None:
    token = "secret@token-" + "z" * 10
    for key in (CREATE_RG, MODIFY_RG):
        params = req(key, AuthToken=token, AuthTokenUpdateStrategy="SET")
        [v] = [v for v in check(*key, params) if v.parameter == "AuthToken"]
        assert v.rule in {r.requirement for r in rules.RULES}  # no detail about the value
        assert "z" * 10 not in v.message()


def test_refusal_is_botocores_parsed_error_response() -> None:
    violations = check(*SG, req(SG, GroupName="sg-x'y"))
    assert len(violations) == 2
    response = refusal(violations)
    assert response == {
        "Error": {
            "Code": "InvalidParameterValue",
            "Message": " ".join(v.message() for v in violations),
        },
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    with pytest.raises(ValueError):
        refusal([])


def test_importing_the_rules_imports_neither_boto3_nor_botocore() -> None:
    code = (
        "import sys, rexctl.aws.rules\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- install(): the hook on a real boto3 client, with moto behind it -----------------------------


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def _groups(ec2: Any) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    cache = ec2.create_security_group(GroupName="cache", Description="cache", VpcId=vpc)
    tasks = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)
    return cache["GroupId"], tasks["GroupId"]


def _authorize(ec2: Any, group: str, source: str, description: str) -> Any:
    return ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": source, "Description": description}],
            }
        ],
    )


@pytest.mark.moto_only
def test_moto_alone_accepts_what_aws_refuses(ec2: Any) -> None:
    cache, tasks = _groups(ec2)
    _authorize(ec2, cache, tasks, "rexctl: the ECS service's tasks")  # no error: hence this module
    [group] = ec2.describe_security_groups(GroupIds=[cache])["SecurityGroups"]
    assert len(group["IpPermissions"]) == 1


@pytest.mark.moto_only
def test_installed_rules_refuse_before_anything_is_sent(ec2: Any) -> None:
    cache, tasks = _groups(ec2)
    install(ec2)
    install(ec2)  # twice is harmless
    sent: list[str] = []
    ec2.meta.events.register(
        "before-send.ec2.AuthorizeSecurityGroupIngress",
        lambda **kwargs: sent.append(kwargs["request"].url),
    )
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        _authorize(ec2, cache, tasks, "rexctl: the ECS service's tasks")
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidParameterValue"
    assert "IpPermissions[0].UserIdGroupPairs[0].Description" in error["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.operation_name == "AuthorizeSecurityGroupIngress"
    assert sent == []  # moto never saw it
    [group] = ec2.describe_security_groups(GroupIds=[cache])["SecurityGroups"]
    assert group["IpPermissions"] == []

    _authorize(ec2, cache, tasks, "rexctl: the ECS service tasks")  # a good one goes through
    assert len(sent) == 1
    [group] = ec2.describe_security_groups(GroupIds=[cache])["SecurityGroups"]
    [rule] = group["IpPermissions"]
    assert rule["UserIdGroupPairs"][0]["Description"] == "rexctl: the ECS service tasks"


@pytest.mark.moto_only
def test_install_affects_only_that_client(ec2: Any) -> None:
    cache, tasks = _groups(ec2)
    install(boto3.client("ec2", region_name="us-east-1"))
    _authorize(ec2, cache, tasks, "rexctl: the ECS service's tasks")


def test_installed_rules_raise_the_modeled_exception_where_there_is_one() -> None:
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        install(ecs)
        params = req(TASKDEF, drop=("executionRoleArn",))
        with pytest.raises(ecs.exceptions.ClientException) as raised:
            ecs.register_task_definition(**params)
        assert isinstance(raised.value, botocore.exceptions.ClientError)
        assert raised.value.response["Error"]["Code"] == "ClientException"
        assert ecs.list_task_definitions()["taskDefinitionArns"] == []
        good = ecs.register_task_definition(**GOOD[TASKDEF])["taskDefinition"]
        assert good["family"] == "rexpress-backend_2"


# ModifyReplicationGroup's TLS and AUTH parameters, against the group as it is now.

PLAIN = GroupState(engine="redis", engine_version="7.1")
PREFERRED = GroupState(engine="redis", engine_version="7.1", transit_encryption=True,
                       transit_mode="preferred")  # fmt: skip
ROTATED = GroupState(engine="redis", engine_version="7.1", transit_encryption=True,
                     transit_mode="preferred", auth_enabled=True, last_auth_change="ROTATE",
                     last_rotated=TOKEN)  # fmt: skip
TLS_ON = {"ReplicationGroupId": "rc", "TransitEncryptionEnabled": True,
          "TransitEncryptionMode": "preferred", "ApplyImmediately": True}  # fmt: skip
REQUIRED = {"ReplicationGroupId": "rc", "TransitEncryptionMode": "required",
            "ApplyImmediately": True}  # fmt: skip
ROTATE = {"ReplicationGroupId": "rc", "AuthToken": TOKEN, "AuthTokenUpdateStrategy": "ROTATE",
          "ApplyImmediately": True}  # fmt: skip
SET = {**ROTATE, "AuthTokenUpdateStrategy": "SET"}


def on(state: GroupState, case: str, parameter: str, code: str, **params: Any) -> Any:
    return pytest.param(state, params, parameter, code, id=case)


# fmt: off
GROUP_REFUSED = [
    on(PLAIN, "tls-on-without-mode", "TransitEncryptionMode", COMBO,
       **{**TLS_ON, "TransitEncryptionMode": None}),
    on(PLAIN, "tls-on-straight-to-required", "TransitEncryptionMode", COMBO,
       **{**TLS_ON, "TransitEncryptionMode": "required"}),
    on(PLAIN, "required-on-a-plain-group", "TransitEncryptionMode", COMBO, **REQUIRED),
    on(GroupState(engine="redis", engine_version="6.2.6"), "tls-on-redis-6",
       "TransitEncryptionEnabled", COMBO, **TLS_ON),
    on(GroupState(engine="valkey", engine_version="7.1"), "tls-on-valkey-7.1",
       "TransitEncryptionEnabled", COMBO, **TLS_ON),
    on(PLAIN, "token-on-a-plain-group", "AuthToken", COMBO, **ROTATE),
    on(GroupState(engine="redis", engine_version="5.0.4", transit_encryption=True),
       "token-on-redis-5.0.4", "AuthToken", COMBO, **ROTATE),
    on(PREFERRED, "set-before-any-rotate", "AuthTokenUpdateStrategy", COMBO, **SET),
    on(GroupState(engine="redis", engine_version="7.1", transit_encryption=True,
                  auth_enabled=True, last_auth_change="SET"),
       "set-twice", "AuthTokenUpdateStrategy", COMBO, **SET),
    on(ROTATED, "set-another-token", "AuthToken", BAD, **{**SET, "AuthToken": "B" * 64}),
]
GROUP_ADMITTED = [
    pytest.param(PLAIN, TLS_ON, id="tls-on-preferred"),
    pytest.param(PREFERRED, REQUIRED, id="required-after-preferred"),
    pytest.param(PREFERRED, ROTATE, id="rotate-on-a-tls-group"),
    pytest.param(ROTATED, ROTATE, id="rotate-again"),
    pytest.param(ROTATED, SET, id="set-the-rotated-token"),
    pytest.param(GroupState(engine="redis", engine_version="", transit_encryption=True,
                            auth_enabled=True), SET, id="set-when-rexctl-cannot-tell"),
    pytest.param(GroupState(engine="valkey", engine_version="8.0"), TLS_ON, id="tls-on-valkey-8"),
    pytest.param(GroupState(engine="redis", engine_version="7"), TLS_ON, id="major-only-7"),
    pytest.param(PLAIN, {"ReplicationGroupId": "rc", "CacheNodeType": "cache.t4g.small"},
                 id="nothing-about-tls-or-auth"),
]
# fmt: on


@pytest.mark.parametrize(("state", "params", "parameter", "code"), GROUP_REFUSED)
def test_what_aws_refuses_given_the_group(
    state: GroupState, params: dict[str, Any], parameter: str, code: str
) -> None:
    params = {k: v for k, v in params.items() if v is not None}
    v = _only(check_group(state, *MODIFY_RG, params))
    assert (v.parameter, v.code) == (parameter, code)
    assert check(*MODIFY_RG, params) == [], "the request alone is fine: the group decides"


@pytest.mark.parametrize(("state", "params"), GROUP_ADMITTED)
def test_what_aws_accepts_given_the_group(state: GroupState, params: dict[str, Any]) -> None:
    assert check_group(state, *MODIFY_RG, params) == []


def test_group_rules_never_show_a_token() -> None:
    state = GroupState(
        engine="redis",
        engine_version="7.1",
        transit_encryption=True,
        auth_enabled=True,
        last_auth_change="ROTATE",
        last_rotated="S" * 40,
    )
    (v,) = check_group(state, *MODIFY_RG, {**SET, "AuthToken": "T" * 40})
    assert "S" * 16 not in v.message() + repr(state) and "T" * 16 not in v.message()


# UpdateSecretVersionStage, against the secret's versions and their labels as they are now.

CURRENT = "11111111-2222-3333-4444-555555555555"
PENDING = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
OTHER = "99999999-8888-7777-6666-555555555555"
STAGED = SecretState({CURRENT: ("AWSCURRENT",), PENDING: ("AWSPENDING",)})


def stage(**params: Any) -> dict[str, Any]:
    return {"SecretId": SECRET_ARN, **params}


# fmt: off
SECRET_REFUSED = [
    pytest.param(STAGED, stage(VersionStage="AWSCURRENT", MoveToVersionId=PENDING),
                 "RemoveFromVersionId", INVALID, id="current-moved-without-naming-where-from"),
    pytest.param(STAGED, stage(VersionStage="AWSCURRENT", MoveToVersionId=PENDING,
                               RemoveFromVersionId=OTHER),
                 "RemoveFromVersionId", INVALID, id="current-moved-from-the-wrong-version"),
    pytest.param(STAGED, stage(VersionStage="AWSPENDING", MoveToVersionId=CURRENT),
                 "RemoveFromVersionId", INVALID, id="pending-moved-without-naming-where-from"),
    pytest.param(STAGED, stage(VersionStage="AWSCURRENT", MoveToVersionId=OTHER,
                               RemoveFromVersionId=CURRENT),
                 "MoveToVersionId", INVALID, id="to-a-version-that-does-not-exist"),
]
SECRET_ADMITTED = [
    pytest.param(STAGED, stage(VersionStage="AWSCURRENT", MoveToVersionId=PENDING,
                               RemoveFromVersionId=CURRENT), id="promote-the-pending-version"),
    pytest.param(STAGED, stage(VersionStage="AWSPENDING", RemoveFromVersionId=PENDING),
                 id="remove-a-label"),
    pytest.param(STAGED, stage(VersionStage="MINE", MoveToVersionId=CURRENT),
                 id="a-new-label-anywhere"),
]
# fmt: on


@pytest.mark.parametrize(("state", "params", "parameter", "code"), SECRET_REFUSED)
def test_what_aws_refuses_given_the_secrets_versions(
    state: SecretState, params: dict[str, Any], parameter: str, code: str
) -> None:
    v = _only(check_secret(state, *STAGE, params))
    assert (v.parameter, v.code) == (parameter, code)
    assert check(*STAGE, params) == [], "the request alone is fine: the secret decides"


@pytest.mark.parametrize(("state", "params"), SECRET_ADMITTED)
def test_what_aws_accepts_given_the_secrets_versions(
    state: SecretState, params: dict[str, Any]
) -> None:
    assert check_secret(state, *STAGE, params) == []


def test_a_secret_value_never_appears_in_a_violation() -> None:
    (v,) = check(*PUT, req(PUT, SecretBinary=b"binary-token"))
    assert TOKEN not in v.message() and "binary-token" not in v.message()
