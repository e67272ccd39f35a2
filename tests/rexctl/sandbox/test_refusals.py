"""The sandbox refuses what AWS refuses (rexctl/sandbox/refusals.py): decoding and answers."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import boto3
import botocore.exceptions
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.model import OperationModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from rexctl.aws import rules
from rexctl.sandbox import refusals
from rexctl.sandbox.refusals import Undecodable, answer, decode, decode_form

SESSION = botocore.session.get_session()
TOKEN = "Ab3!&#$^<>-" + "x" * 53  # 64 characters: every special character ElastiCache allows
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rexctl/rc/auth-token-AbCdEf"
TAGS = [{"Key": "managed-by", "Value": "rexctl"}, {"Key": "rexctl:cache-id", "Value": "rc"}]
BAD_DESCRIPTION = "rexctl: the ECS service's tasks"  # the apostrophe: AWS refuses it


def operation(service: str, name: str) -> OperationModel:
    return SESSION.get_service_model(service).operation_model(name)


def wire(service: str, name: str, params: dict[str, Any]) -> tuple[OperationModel, bytes]:
    """The operation and the request body exactly as botocore sends `params`."""
    op = operation(service, name)
    request = create_serializer(op.service_model.protocol, include_validation=False)
    serialized = request.serialize_to_request(params, op)
    prepared = AWSRequest(
        method=serialized["method"],
        url="http://127.0.0.1/",
        data=serialized["body"],
        headers=serialized["headers"],
    ).prepare()
    body = prepared.body or b""
    return op, body.encode("utf-8") if isinstance(body, str) else bytes(body)


def form_of(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def _container(**changes: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "backend",
        "image": "rexpress/backend:latest",
        "memory": 512,
        "essential": True,
        "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
        "environment": [{"name": "REDIS_HOST", "value": "master.rc.cache.amazonaws.com"}],
        "secrets": [{"name": "REDIS_AUTH", "valueFrom": SECRET_ARN}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": "/ecs/backend", "awslogs-region": "us-east-1"},
        },
    }
    container.update(changes)
    return container


# Realistic requests (as rexctl and the sandbox's seed send them), one or more per covered
# operation and a few beyond: decode(serialize(x)) must give x back.
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "ec2",
        "CreateSecurityGroup",
        {
            "GroupName": "rexctl-cache",
            "Description": "rexctl: Redis rc, port 6379 from the ECS service",
            "VpcId": "vpc-1",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": TAGS}],
        },
    ),
    (
        "ec2",
        "AuthorizeSecurityGroupIngress",
        {
            "GroupId": "sg-1",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "UserIdGroupPairs": [
                        {"GroupId": "sg-2", "Description": "rexctl: ECS tasks"},
                        {"GroupId": "sg-3", "UserId": "123456789012"},
                    ],
                    "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "the VPC & more"}],
                    "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
                    "PrefixListIds": [{"PrefixListId": "pl-1", "Description": "S3"}],
                },
                {
                    "IpProtocol": "icmp",
                    "FromPort": -1,
                    "ToPort": -1,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                },
            ],
            "TagSpecifications": [
                {"ResourceType": "security-group-rule", "Tags": TAGS},
                {"ResourceType": "security-group-rule", "Tags": [{"Key": "x", "Value": ""}]},
            ],
        },
    ),
    (
        "ec2",
        "RevokeSecurityGroupIngress",
        {
            "GroupId": "sg-1",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "UserIdGroupPairs": [{"GroupId": "sg-2", "Description": "rexctl: ECS tasks"}],
                }
            ],
            "SecurityGroupRuleIds": ["sgr-1", "sgr-2"],
        },
    ),
    ("ec2", "DeleteSecurityGroup", {"GroupId": "sg-1", "DryRun": True}),
    (
        "ec2",
        "CreateNetworkAclEntry",
        {
            "NetworkAclId": "acl-1",
            "RuleNumber": 1,
            "Protocol": "6",
            "RuleAction": "deny",
            "Egress": False,
            "CidrBlock": "10.0.1.0/24",
            "PortRange": {"From": 6379, "To": 6379},
        },
    ),
    (
        "ec2",
        "CreateNetworkAclEntry",
        {
            "NetworkAclId": "acl-1",
            "RuleNumber": 32766,
            "Protocol": "1",
            "RuleAction": "allow",
            "Egress": True,
            "Ipv6CidrBlock": "::/0",
            "IcmpTypeCode": {"Code": -1, "Type": -1},
        },
    ),
    ("ec2", "DeleteNetworkAclEntry", {"NetworkAclId": "acl-1", "RuleNumber": 1, "Egress": True}),
    (
        "ec2",
        "CreateNetworkAcl",
        {
            "VpcId": "vpc-1",
            "TagSpecifications": [
                {"ResourceType": "network-acl", "Tags": [{"Key": "managed-by", "Value": "rexctl"}]}
            ],
        },
    ),
    (
        "ec2",
        "ReplaceNetworkAclAssociation",
        {"AssociationId": "aclassoc-1", "NetworkAclId": "acl-2"},
    ),
    ("ec2", "DeleteNetworkAcl", {"NetworkAclId": "acl-2"}),
    (
        "ec2",
        "CreateTags",
        {"Resources": ["sg-1"], "Tags": [{"Key": "rexctl:drill:d-1", "Value": "break-sg"}]},
    ),
    (
        "ec2",
        "DeleteTags",
        {"Resources": ["sg-1"], "Tags": [{"Key": "rexctl:drill:d-1", "Value": "break-sg"}]},
    ),
    (
        "ec2",
        "DescribeSecurityGroups",
        {
            "Filters": [
                {"Name": "vpc-id", "Values": ["vpc-1"]},
                {"Name": "tag:a", "Values": ["b", "c"]},
            ],
            "GroupIds": ["sg-1"],
            "MaxResults": 50,
        },
    ),
    (
        "ec2",
        "DescribeSpotPriceHistory",
        {
            "StartTime": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
            "InstanceTypes": ["t3.micro"],
        },
    ),
    (
        "elasticache",
        "CreateCacheSubnetGroup",
        {
            "CacheSubnetGroupName": "rexctl-rc-subnets",
            "CacheSubnetGroupDescription": "rexctl: private subnets for rc",
            "SubnetIds": ["subnet-1", "subnet-2"],
            "Tags": [{"Key": "managed-by", "Value": "rexctl"}],
        },
    ),
    ("elasticache", "DeleteCacheSubnetGroup", {"CacheSubnetGroupName": "rexctl-rc-subnets"}),
    (
        "elasticache",
        "CreateReplicationGroup",
        {
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
            "SecurityGroupIds": ["sg-1", "sg-2"],
            "PreferredCacheClusterAZs": [],
            "Port": 6379,
            "AtRestEncryptionEnabled": False,
            "TransitEncryptionEnabled": True,
            "AuthToken": TOKEN,
            "Tags": [
                {"Key": "managed-by", "Value": "rexctl"},
                {"Key": "rexctl:cache-id", "Value": ""},
            ],
        },
    ),
    (
        "elasticache",
        "CreateReplicationGroup",
        {
            "ReplicationGroupId": "rexpress-cache-2",
            "ReplicationGroupDescription": "shards",
            "NumNodeGroups": 2,
            "NodeGroupConfiguration": [
                {"NodeGroupId": "0001", "ReplicaCount": 1, "ReplicaAvailabilityZones": ["a", "b"]},
                {"Slots": "0-8191", "PrimaryAvailabilityZone": "us-east-1a"},
            ],
            "LogDeliveryConfigurations": [
                {
                    "LogType": "slow-log",
                    "DestinationType": "cloudwatch-logs",
                    "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": "/rc"}},
                    "LogFormat": "json",
                    "Enabled": True,
                }
            ],
        },
    ),
    (
        "elasticache",
        "ModifyReplicationGroup",
        {
            "ReplicationGroupId": "rexpress-cache-1",
            "CacheNodeType": "cache.t4g.small",
            "AutomaticFailoverEnabled": True,
            "MultiAZEnabled": True,
            "SecurityGroupIds": ["sg-1"],
            "ApplyImmediately": True,
            "AuthToken": TOKEN,
            "AuthTokenUpdateStrategy": "ROTATE",
        },
    ),
    (
        "elasticache",
        "DeleteReplicationGroup",
        {"ReplicationGroupId": "rexpress-cache-1", "RetainPrimaryCluster": False},
    ),
    (
        "elasticache",
        "AddTagsToResource",
        {
            "ResourceName": "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:rc",
            "Tags": [{"Key": "rexctl:auth-token", "Value": "ROTATE 2025-01-31T12:00:00+00:00"}],
        },
    ),
    (
        "ecs",
        "RegisterTaskDefinition",
        {
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
    ),
    ("ecs", "UpdateService", {"cluster": "c", "service": "backend", "taskDefinition": "b:4"}),
    ("ecs", "DeregisterTaskDefinition", {"taskDefinition": "backend:3"}),
    (
        "secretsmanager",
        "CreateSecret",
        {
            "Name": "rexctl/rexpress-cache/auth-token",
            "Description": "rexctl: AUTH token of the ElastiCache replication group",
            "SecretString": TOKEN,
            "ClientRequestToken": "4c7c1b5e-9a43-4f0e-8d51-5d3c2c8f1f00",
            "Tags": [{"Key": "managed-by", "Value": "rexctl"}],
        },
    ),
    ("secretsmanager", "CreateSecret", {"Name": "blob", "SecretBinary": b"\x00\xff binary"}),
    (
        "secretsmanager",
        "DeleteSecret",
        {"SecretId": SECRET_ARN, "ForceDeleteWithoutRecovery": True},
    ),
    (
        "secretsmanager",
        "PutSecretValue",
        {
            "SecretId": SECRET_ARN,
            "SecretString": "Tok3n!&#$^<>-value-of-sixteen",
            "ClientRequestToken": "00000000-1111-2222-3333-444444444444",
            "VersionStages": ["AWSPENDING"],
        },
    ),
    (
        "secretsmanager",
        "UpdateSecretVersionStage",
        {
            "SecretId": SECRET_ARN,
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": "00000000-1111-2222-3333-444444444444",
            "RemoveFromVersionId": "55555555-6666-7777-8888-999999999999",
        },
    ),
    (
        "logs",
        "PutLogEvents",
        {
            "logGroupName": "/ecs/backend",
            "logStreamName": "ecs/backend/1",
            "logEvents": [{"timestamp": 1714566600000, "message": "GET /api/products 200"}],
        },
    ),
    # Beyond the sandbox's services: a query-protocol map and flattened lists.
    (
        "sns",
        "CreateTopic",
        {"Name": "t", "Attributes": {"DisplayName": "T", "Policy": "{}"}, "Tags": TAGS},
    ),
    (
        "sdb",
        "BatchPutAttributes",
        {
            "DomainName": "d",
            "Items": [
                {"Name": "i1", "Attributes": [{"Name": "a", "Value": "1", "Replace": True}]},
                {
                    "Name": "i2",
                    "Attributes": [{"Name": "b", "Value": "2"}, {"Name": "c", "Value": "3"}],
                },
            ],
        },
    ),
]


def example(service: str, name: str) -> dict[str, Any]:
    """The first of REQUESTS for this operation."""
    return next(p for s, n, p in REQUESTS if (s, n) == (service, name))


def wire_example(service: str, name: str) -> tuple[OperationModel, bytes]:
    return wire(service, name, example(service, name))


@pytest.mark.parametrize(
    ("service", "name", "params"),
    REQUESTS,
    ids=[f"{s}.{n}.{i}" for i, (s, n, _) in enumerate(REQUESTS)],
)
def test_decoding_gives_back_what_botocore_serialized(
    service: str, name: str, params: dict[str, Any]
) -> None:
    op, body = wire(service, name, params)
    assert decode(op, body) == params


def test_every_covered_operation_has_a_round_trip_example() -> None:
    assert {(s, n) for s, n, _ in REQUESTS} >= rules.COVERED


def test_ec2_lists_are_dot_n_with_the_capitalized_location_name() -> None:
    op, body = wire_example("ec2", "AuthorizeSecurityGroupIngress")
    form = form_of(body)
    assert form["IpPermissions.1.Groups.1.GroupId"] == "sg-2"
    assert form["IpPermissions.1.Groups.2.UserId"] == "123456789012"
    assert form["IpPermissions.1.IpRanges.1.CidrIp"] == "10.0.0.0/16"
    assert form["TagSpecification.2.Tag.1.Key"] == "x"
    hand_made = {
        "Action": "AuthorizeSecurityGroupIngress",
        "GroupId": "sg-1",
        "IpPermissions.1.IpProtocol": "tcp",
        "IpPermissions.1.FromPort": "6379",
        "IpPermissions.1.ToPort": "6379",
        "IpPermissions.1.Groups.1.GroupId": "sg-2",
        "IpPermissions.1.Groups.1.Description": BAD_DESCRIPTION,
        "TagSpecification.1.ResourceType": "security-group-rule",
        "TagSpecification.1.Tag.1.Key": "managed-by",
        "TagSpecification.1.Tag.1.Value": "rexctl",
    }
    assert decode_form(op, hand_made) == {
        "GroupId": "sg-1",
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": "sg-2", "Description": BAD_DESCRIPTION}],
            }
        ],
        "TagSpecifications": [
            {
                "ResourceType": "security-group-rule",
                "Tags": [{"Key": "managed-by", "Value": "rexctl"}],
            }
        ],
    }


def test_elasticache_lists_use_the_member_name_and_empty_lists_are_sent() -> None:
    _, body = wire_example("elasticache", "CreateReplicationGroup")
    form = form_of(body)
    assert form["SecurityGroupIds.SecurityGroupId.2"] == "sg-2"
    assert form["Tags.Tag.1.Key"] == "managed-by"
    assert form["PreferredCacheClusterAZs"] == ""
    assert form["TransitEncryptionEnabled"] == "true"
    _, body = wire_example("elasticache", "CreateCacheSubnetGroup")
    assert form_of(body)["SubnetIds.SubnetIdentifier.1"] == "subnet-1"


def test_list_elements_are_read_in_index_order_and_booleans_in_any_case() -> None:
    op = operation("elasticache", "ModifyReplicationGroup")
    form = {
        "ReplicationGroupId": "rc",
        "SecurityGroupIds.SecurityGroupId.10": "sg-10",
        "SecurityGroupIds.SecurityGroupId.2": "sg-2",
        "ApplyImmediately": "TRUE",
        "Unknown.Member": "ignored",
    }
    assert decode_form(op, form) == {
        "ReplicationGroupId": "rc",
        "SecurityGroupIds": ["sg-2", "sg-10"],
        "ApplyImmediately": True,
    }


@pytest.mark.parametrize(
    ("service", "name", "body"),
    [
        ("ec2", "CreateNetworkAclEntry", b"Action=CreateNetworkAclEntry&RuleNumber=one"),
        ("elasticache", "CreateReplicationGroup", b"Action=X&TransitEncryptionEnabled=yes"),
        ("elasticache", "CreateReplicationGroup", b"Action=X&ReplicationGroupId=\xff"),
        ("ecs", "RegisterTaskDefinition", b"{not json"),
        ("ecs", "RegisterTaskDefinition", b"[]"),
        ("ecs", "RegisterTaskDefinition", b'{"family": 3}'),
        ("ecs", "RegisterTaskDefinition", b'{"containerDefinitions": {"name": "x"}}'),
        ("secretsmanager", "CreateSecret", b'{"Name": "x", "SecretBinary": "%%%"}'),
    ],
)
def test_what_does_not_decode_is_undecodable(service: str, name: str, body: bytes) -> None:
    with pytest.raises(Undecodable):
        decode(operation(service, name), body)


# --- the answers, as botocore parses them -------------------------------------------------


def parsed_error(service: str, name: str, reply: refusals.Answer) -> dict[str, Any]:
    model = SESSION.get_service_model(service)
    headers = {k.lower(): v for k, v in reply.headers}
    response = {"status_code": 400, "headers": headers, "body": reply.body}
    result: dict[str, Any] = create_parser(model.protocol).parse(
        response, model.operation_model(name).output_shape
    )
    return result


@pytest.mark.parametrize(
    ("service", "name"),
    [
        ("ec2", "AuthorizeSecurityGroupIngress"),
        ("elasticache", "CreateReplicationGroup"),
        ("ecs", "RegisterTaskDefinition"),
        ("secretsmanager", "CreateSecret"),
    ],
)
def test_botocore_parses_each_answer_into_the_code_and_message(service: str, name: str) -> None:
    violation = rules.Violation(
        service, name, "Name", "may not contain <, > or & (nor \x00)", "the API reference", "Bad"
    )
    second = rules.Violation(service, name, "Other", "is required", "the model", "Other")
    reply = answer(SESSION.get_service_model(service), [violation, second])
    assert reply.status.startswith("400 ")
    error = parsed_error(service, name, reply)["Error"]
    assert error["Code"] == "Bad"
    expected = rules.refusal([violation, second])["Error"]["Message"]
    xml = SESSION.get_service_model(service).protocol != "json"
    # XML 1.0 cannot carry a NUL: it is written out; JSON escapes it.
    assert error["Message"] == (expected.replace("\x00", "\\u0000") if xml else expected)
    if service in ("ecs", "secretsmanager"):
        assert dict(reply.headers)["x-amzn-ErrorType"] == "Bad"
        assert json.loads(reply.body)["__type"] == "Bad"


# --- the middleware in front of a moto server ---------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = refusals.start_server()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(endpoint: str, name: str) -> Any:
    return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1")  # type: ignore[call-overload]


def refused(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error.get("Code", ""), error.get("Message", "")


def test_ec2_refuses_a_rule_description_aws_refuses_and_moto_never_sees_it(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    cache = ec2.create_security_group(GroupName="cache", Description="cache", VpcId=vpc)["GroupId"]
    tasks = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]

    def authorize(description: str) -> Any:
        return ec2.authorize_security_group_ingress(
            GroupId=cache,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "UserIdGroupPairs": [{"GroupId": tasks, "Description": description}],
                }
            ],
            TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": TAGS}],
        )

    def permissions() -> list[Any]:
        groups = ec2.describe_security_groups(GroupIds=[cache])["SecurityGroups"]
        return list(groups[0]["IpPermissions"])

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        authorize(BAD_DESCRIPTION)
    code, message = refused(exc)
    assert code == "InvalidParameterValue"
    assert "IpPermissions[0].UserIdGroupPairs[0].Description" in message
    assert "UserIdGroupPair.Description" in message
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert permissions() == []

    authorize("rexctl: the ECS service tasks")
    [rule] = permissions()
    assert rule["UserIdGroupPairs"][0]["GroupId"] == tasks


def test_ec2_answers_what_moto_answers_for_the_rest(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        ec2.describe_security_groups(GroupIds=["sg-0000000000000000f"])
    assert refused(exc)[0] == "InvalidGroup.NotFound"  # moto's answer, passed through
    assert ec2.describe_vpcs()["Vpcs"]


def test_elasticache_refuses_an_auth_token_without_tls(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    elasticache = client(endpoint, "elasticache")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    elasticache.create_cache_subnet_group(
        CacheSubnetGroupName="rexctl-rc-subnets",
        CacheSubnetGroupDescription="rexctl: private subnets for rc",
        SubnetIds=[subnet],
        Tags=[{"Key": "managed-by", "Value": "rexctl"}],
    )
    params: dict[str, Any] = {
        "ReplicationGroupId": "rexctl-rc",
        "ReplicationGroupDescription": "rexctl: Redis cache for ECS service backend",
        "Engine": "redis",
        "CacheNodeType": "cache.t4g.micro",
        "NumCacheClusters": 1,
        "CacheSubnetGroupName": "rexctl-rc-subnets",
        "AuthToken": TOKEN,
        "TransitEncryptionEnabled": False,
        "Tags": [{"Key": "managed-by", "Value": "rexctl"}],
    }
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        elasticache.create_replication_group(**params)
    code, message = refused(exc)
    assert code == rules.EC_AUTH_TOKEN_NEEDS_TLS.code == "InvalidParameterCombination"
    assert message.startswith("CreateReplicationGroup: AuthToken ")
    assert TOKEN not in message
    with pytest.raises(elasticache.exceptions.ReplicationGroupNotFoundFault):
        elasticache.describe_replication_groups(ReplicationGroupId="rexctl-rc")

    created = elasticache.create_replication_group(**{**params, "TransitEncryptionEnabled": True})
    assert created["ReplicationGroup"]["ReplicationGroupId"] == "rexctl-rc"


def test_ecs_refuses_fargate_awslogs_without_an_execution_role(endpoint: str) -> None:
    ecs = client(endpoint, "ecs")
    params: dict[str, Any] = {
        "family": "rexpress-backend",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [_container(secrets=[])],
    }
    with pytest.raises(ecs.exceptions.ClientException) as exc:
        ecs.register_task_definition(**params)
    code, message = refused(exc)
    assert code == "ClientException"
    assert (
        message
        == rules.refusal(rules.check("ecs", "RegisterTaskDefinition", params))["Error"]["Message"]
    )
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []

    td = ecs.register_task_definition(**params, executionRoleArn=ROLE)["taskDefinition"]
    assert td["revision"] == 1


def test_secrets_manager_refuses_a_name_with_a_bad_character(endpoint: str) -> None:
    sm = client(endpoint, "secretsmanager")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sm.create_secret(Name="rexctl/rc/auth token", SecretString=TOKEN)
    assert refused(exc)[0] == rules.SM_NAME_CHARS.code == "ValidationException"
    assert sm.list_secrets()["SecretList"] == []
    arn = sm.create_secret(Name="rexctl/rc/auth-token", SecretString=TOKEN)["ARN"]
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == TOKEN


def post(endpoint: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(endpoint + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), bytes(exc.read())


def test_unsigned_requests_are_checked_too(endpoint: str) -> None:
    form = "application/x-www-form-urlencoded; charset=utf-8"
    _, body = wire("elasticache", "CreateReplicationGroup", {
        "ReplicationGroupId": "unsigned", "ReplicationGroupDescription": "d",
        "AuthToken": TOKEN,
    })  # fmt: skip
    status, reply = post(endpoint, body, {"Content-Type": form})
    assert status == 400
    assert b"<Code>InvalidParameterCombination</Code>" in reply
    _, body = wire("secretsmanager", "CreateSecret", {"Name": "a b"})
    status, reply = post(endpoint, body, {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.CreateSecret",
    })  # fmt: skip
    assert (status, json.loads(reply)["__type"]) == (400, "ValidationException")


def test_a_request_that_does_not_decode_goes_to_moto(endpoint: str) -> None:
    """`yes` is no boolean: not decoded, so not checked (although the AuthToken has no TLS)."""
    sig = "AWS4-HMAC-SHA256 Credential=testing/20240501/us-east-1/elasticache/aws4_request, "
    body = urlencode({
        "Action": "CreateReplicationGroup", "Version": "2015-02-02",
        "ReplicationGroupId": "undecoded", "ReplicationGroupDescription": "d",
        "AuthToken": TOKEN, "TransitEncryptionEnabled": "yes",
    })  # fmt: skip
    status, reply = post(endpoint, body.encode(), {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": sig + "SignedHeaders=host, Signature=0",
    })  # fmt: skip
    assert status == 200, reply  # moto's answer: it accepts it
    assert b"<ReplicationGroupId>undecoded</ReplicationGroupId>" in reply


def test_secret_binary_reaches_moto_intact(endpoint: str) -> None:
    sm = client(endpoint, "secretsmanager")
    blob = bytes(range(256))
    arn = sm.create_secret(Name="rexctl/binary", SecretBinary=blob)["ARN"]
    assert sm.get_secret_value(SecretId=arn)["SecretBinary"] == blob
