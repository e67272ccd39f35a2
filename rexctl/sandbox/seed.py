"""What the sandbox's AWS looks like before the guide's step 1, created through boto3.

A VPC with DNS hostnames; two private subnets (two AZs, a route table without an internet route)
where the cache will go, and two public subnets (0.0.0.0/0 to an internet gateway) where the
backend's Fargate tasks run with public IPs, as many tutorial setups do. The ECS cluster
`rexpress`, the service `backend` (awsvpc, its own security group, FARGATE, 2 tasks, ECS's
default deployment configuration: circuit breaker off, 100 %/200 %) running the bundled service's
task definition with an awslogs configuration, and its log group.

The task execution role `ecsTaskExecutionRole`, as the ECS guide has you create it: trusted by
`ecs-tasks.amazonaws.com`, with the AWS managed policy AmazonECSTaskExecutionRolePolicy attached
(ECR pulls, log streams; a customer managed copy of it where moto does not offer the AWS one) and
an inline policy `rexctl-secrets` that lets it read the secrets named `rexctl/*` (what a user
following docs/deploy.md adds so that ECS can hand the AUTH token to the tasks). Every request
here is one AWS accepts (tests check them against `rexctl.aws.rules`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rexctl.sandbox.moto_state import (
    DEFAULT_DEPLOYMENT_CONFIGURATION,
    ECS_TASK_EXECUTION_DOCUMENT,
    ECS_TASK_EXECUTION_POLICY,
    ECS_TASK_EXECUTION_POLICY_ARN,
)
from rexctl.sandbox.state import CLUSTER, SERVICE

VPC_CIDR = "10.0.0.0/16"
PRIVATE = (("10.0.1.0/24", "a"), ("10.0.2.0/24", "b"))
PUBLIC = (("10.0.101.0/24", "a"), ("10.0.102.0/24", "b"))
FAMILY = "rexpress-backend"
CONTAINER = "backend"
LOG_GROUP = "/ecs/rexpress-backend"
CONTAINER_PORT = 8080
DESIRED = 2
# The guide's DB stands in at 1.5 s; the sandbox uses 300 ms so a rehearsal stays short.
ENVIRONMENT = {"DB_DELAY_MS": "300", "REDIS_ENABLED": "false", "LOG_FORMAT": "text"}
EXECUTION_ROLE = "ecsTaskExecutionRole"
SECRETS_POLICY = "rexctl-secrets"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True)
class Seeded:
    vpc_id: str
    private_subnets: list[str]
    public_subnets: list[str]
    service_sg: str
    task_definition: str
    execution_role: str


def _tags(name: str) -> list[dict[str, Any]]:
    return [{"Key": "Name", "Value": name}, {"Key": "sandbox", "Value": "rexctl"}]


def execution_role(iam: Any, region: str) -> str:
    """The task execution role (see the module's docstring); returns its ARN."""
    arn = str(
        iam.create_role(
            RoleName=EXECUTION_ROLE,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="ECS task execution role of the rexpress backend",
            Tags=[{"Key": "sandbox", "Value": "rexctl"}],
        )["Role"]["Arn"]
    )
    try:
        iam.attach_role_policy(RoleName=EXECUTION_ROLE, PolicyArn=ECS_TASK_EXECUTION_POLICY_ARN)
    except iam.exceptions.NoSuchEntityException:  # moto without its AWS managed policies
        copy = iam.create_policy(
            PolicyName=ECS_TASK_EXECUTION_POLICY,
            PolicyDocument=json.dumps(ECS_TASK_EXECUTION_DOCUMENT),
            Description="A copy of the AWS managed policy of the same name",
        )["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=EXECUTION_ROLE, PolicyArn=copy)
    account = arn.split(":")[4]
    iam.put_role_policy(
        RoleName=EXECUTION_ROLE,
        PolicyName=SECRETS_POLICY,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": f"arn:aws:secretsmanager:{region}:{account}:secret:rexctl/*",
                    }
                ],
            }
        ),
    )
    return arn


def seed(ec2: Any, ecs: Any, logs: Any, region: str, iam: Any) -> Seeded:
    vpc = ec2.create_vpc(
        CidrBlock=VPC_CIDR,
        TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags("rexpress")}],
    )["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)

    def subnets(kind: str, specs: tuple[tuple[str, str], ...]) -> list[str]:
        table = ec2.create_route_table(
            VpcId=vpc,
            TagSpecifications=[{"ResourceType": "route-table", "Tags": _tags(f"rexpress-{kind}")}],
        )["RouteTable"]["RouteTableId"]
        if kind == "public":
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ids = []
        for cidr, az in specs:
            subnet = ec2.create_subnet(
                VpcId=vpc,
                CidrBlock=cidr,
                AvailabilityZone=f"{region}{az}",
                TagSpecifications=[
                    {"ResourceType": "subnet", "Tags": _tags(f"rexpress-{kind}-{az}")}
                ],
            )["Subnet"]["SubnetId"]
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
            ids.append(subnet)
        return ids

    private = subnets("private", PRIVATE)
    public = subnets("public", PUBLIC)
    sg = ec2.create_security_group(
        GroupName="rexpress-backend-sg", Description="rexpress backend tasks", VpcId=vpc
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": CONTAINER_PORT,
                "ToPort": CONTAINER_PORT,
                "IpRanges": [{"CidrIp": VPC_CIDR, "Description": "the load balancer"}],
            }
        ],
    )
    logs.create_log_group(logGroupName=LOG_GROUP)
    role = execution_role(iam, region)
    ecs.create_cluster(clusterName=CLUSTER)
    td = ecs.register_task_definition(
        family=FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        executionRoleArn=role,
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": "rexpress/backend:latest",
                "memory": 512,
                "essential": True,
                "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
                "environment": [{"name": k, "value": v} for k, v in ENVIRONMENT.items()],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": LOG_GROUP,
                        "awslogs-region": region,
                        "awslogs-stream-prefix": "ecs",
                    },
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition=td,
        desiredCount=DESIRED,
        launchType="FARGATE",
        deploymentConfiguration=DEFAULT_DEPLOYMENT_CONFIGURATION,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": public,
                "securityGroups": [sg],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    return Seeded(vpc, private, public, sg, td, role)
