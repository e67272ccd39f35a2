"""Shared by the deploy and verify tests: a small AWS world in moto. A cluster, a service on a task
definition with two containers, a cache (replication group) and, with AUTH, its secret.

Provisioning belongs to another module, so the cache is created here directly with boto3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from rexctl.config import Config, load

ACCOUNT, REGION = "123456789012", "us-east-1"
CACHE_ID = "rexpress-redis"
TOKEN = "Sup3rSecretT0ken-abcdefghij!"  # what must never appear in output or in `environment`
SECRET_NAME = f"rexctl/{CACHE_ID}/auth-token"
LOG_GROUP = "/ecs/backend"


@dataclass
class World:
    ecs: Any
    elasticache: Any
    secretsmanager: Any
    logs: Any
    cfg: Config
    endpoint: str  # the cache's primary endpoint

    @property
    def family_arns(self) -> list[str]:
        return list(self.ecs.list_task_definitions(familyPrefix="backend")["taskDefinitionArns"])

    def service(self) -> dict[str, Any]:
        return dict(self.ecs.describe_services(cluster="c", services=["svc"])["services"][0])

    def container_env(self, arn: str, container: str = "backend") -> dict[str, str]:
        td = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        c = next(c for c in td["containerDefinitions"] if c["name"] == container)
        return {e["name"]: e["value"] for e in c.get("environment", [])}

    def put_logs(self, task: str, messages: list[str], container: str = "backend") -> None:
        stream = f"ecs/{container}/{task}"
        self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        now = int(time.time() * 1000)
        self.logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
        )


def write_config(tmp_path: Path, extra: str = "", endpoint_url: str = "") -> Path:
    path = tmp_path / "rexctl.toml"
    head = f'endpoint_url = "{endpoint_url}"\n' if endpoint_url else ""
    path.write_text(
        f'{head}region = "{REGION}"\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[cache]\nid = "{CACHE_ID}"\n{extra}\n'
        '[ecs]\ncluster = "c"\nservice = "svc"\ncontainer = "backend"\n',
        encoding="utf-8",
    )
    return path


def make_world(
    tmp_path: Path,
    *,
    endpoint_url: str | None = None,
    tls: bool = False,
    auth: bool = False,
    secret: bool = True,
    cache: bool = True,
    log_config: bool = True,
    backend_env: list[dict[str, str]] | None = None,
) -> World:
    """Build the world (MOTO_ECS_SERVICE_RUNNING must already be set). With `endpoint_url` (a
    moto server) the server's state is wiped first: its backends are this process's globals and
    outlive the previous test's server."""
    kw: dict[str, Any] = {"region_name": REGION}
    if endpoint_url:
        kw["endpoint_url"] = endpoint_url
        httpx.post(f"{endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
    ecs = boto3.client("ecs", **kw)
    elasticache = boto3.client("elasticache", **kw)
    secretsmanager = boto3.client("secretsmanager", **kw)
    logs = boto3.client("logs", **kw)
    ecs.create_cluster(clusterName="c")
    backend: dict[str, Any] = {
        "name": "backend",
        "image": "backend:1",
        "memory": 256,
        "environment": backend_env
        if backend_env is not None
        else [
            {"name": "NODE_ENV", "value": "production"},
            {"name": "REDIS_ENABLED", "value": "false"},
        ],
    }
    if log_config:
        backend["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {"awslogs-group": LOG_GROUP, "awslogs-stream-prefix": "ecs",
                        "awslogs-region": REGION},
        }  # fmt: skip
        logs.create_log_group(logGroupName=LOG_GROUP)
    ecs.register_task_definition(
        family="backend",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
        containerDefinitions=[
            backend,
            {"name": "sidecar", "image": "envoy", "memory": 64,
             "environment": [{"name": "SIDECAR", "value": "1"}]},
        ],
        tags=[{"key": "team", "value": "web"}],
    )  # fmt: skip
    ecs.create_service(cluster="c", serviceName="svc", taskDefinition="backend:1", desiredCount=1)
    endpoint = ""
    if cache:
        args: dict[str, Any] = {
            "ReplicationGroupId": CACHE_ID,
            "ReplicationGroupDescription": "rexctl test",
            "CacheNodeType": "cache.t4g.micro",
            "Engine": "redis",
            "NumCacheClusters": 1,
        }
        if tls:  # AWS: in-transit encryption needs a cache subnet group (a VPC)
            ec2 = boto3.client("ec2", **kw)
            vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
            elasticache.create_cache_subnet_group(
                CacheSubnetGroupName=f"{CACHE_ID}-subnets",
                CacheSubnetGroupDescription="rexctl test",
                SubnetIds=[subnet],
            )
            args["CacheSubnetGroupName"] = f"{CACHE_ID}-subnets"
            args["TransitEncryptionEnabled"] = True
        if auth:
            args["AuthToken"] = TOKEN
        group = elasticache.create_replication_group(**args)["ReplicationGroup"]
        endpoint = group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    if auth and secret:
        secretsmanager.create_secret(Name=SECRET_NAME, SecretString=TOKEN)
    extra = ("tls = true\n" if tls else "") + ("auth = true\n" if auth else "")
    cfg = load(write_config(tmp_path, extra), environ={})
    return World(ecs, elasticache, secretsmanager, logs, cfg, endpoint)


def ecs_service_object(cluster: str = "c", service: str = "svc") -> Any:
    """moto's own service object (the backend lives in this process, also under a
    ThreadedMotoServer)."""
    from moto.ecs.models import ecs_backends

    return ecs_backends[ACCOUNT][REGION].services[f"{cluster}:{service}"]


def finish_moto_rollout(cluster: str = "c", service: str = "svc") -> bool:
    """moto keeps deployments[0] on the old task definition after update_service (see
    ../shared/notes/moto-caveats.md); make it look like ECS after a finished rolling update:
    the PRIMARY deployment on the service's new ARN, COMPLETED, running == desired.
    True when it changed something."""
    svc = ecs_service_object(cluster, service)
    dep = svc.deployments[0]
    if dep["taskDefinition"] == svc.task_definition:
        return False
    dep.update(
        taskDefinition=svc.task_definition,
        rolloutState="COMPLETED",
        runningCount=svc.desired_count,
        desiredCount=svc.desired_count,
        pendingCount=0,
    )
    return True


def test_world_and_the_moto_rollout_fix(tmp_path: Path, monkeypatch: Any) -> None:
    """The helpers above behave as the deploy and verify tests assume."""
    from moto import mock_aws

    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    with mock_aws():
        world = make_world(tmp_path, tls=True, auth=True)
        assert world.endpoint.startswith(f"master.{CACHE_ID}.")
        assert world.cfg.ecs.cluster == "c" and world.cfg.cache.auth
        world.ecs.register_task_definition(
            family="backend", containerDefinitions=[{"name": "backend", "image": "b", "memory": 8}]
        )
        new = world.family_arns[-1]
        world.ecs.update_service(cluster="c", service="svc", taskDefinition=new)
        # the caveat this works around: moto's deployment stays on the old revision
        assert world.service()["deployments"][0]["taskDefinition"].endswith("backend:1")
        assert finish_moto_rollout() is True
        assert finish_moto_rollout() is False
        (deployment,) = world.service()["deployments"]
        assert (deployment["taskDefinition"], deployment["rolloutState"]) == (new, "COMPLETED")
