"""The ECS adapter's deploy side: build_revision (pure), register/update/deregister and list_tasks
against moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws

from rexctl.aws.ecs import (
    READ_ONLY_FIELDS,
    TaskDefinition,
    build_revision,
    deregister_task_definition,
    describe_service,
    describe_task_definition,
    force_new_deployment,
    list_tasks,
    register_revision,
    short_arn,
    update_service,
)
from rexctl.errors import AwsError, ConfigError, UsageError
from tests.helpers import EXECUTION_ROLE_ARN

ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:3"


def base_td(**extra: Any) -> TaskDefinition:
    raw: dict[str, Any] = {
        "taskDefinitionArn": ARN,
        "family": "backend",
        "revision": 3,
        "status": "ACTIVE",
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
        "registeredAt": "2025-01-01T00:00:00Z",
        "registeredBy": "arn:aws:iam::123456789012:user/me",
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "containerDefinitions": [
            {
                "name": "backend",
                "image": "backend:1",
                "environment": [
                    {"name": "DB_URL", "value": "postgres://db"},
                    {"name": "REDIS_HOST", "value": "redis"},
                    {"name": "REDIS_AUTH_TOKEN", "value": "plain-token-oops"},
                ],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:secret:db"}],
                "portMappings": [{"containerPort": 3000}],
            },
            {"name": "sidecar", "image": "envoy", "environment": [{"name": "X", "value": "1"}]},
        ],
        **extra,
    }
    return TaskDefinition(
        arn=ARN, family="backend", revision=3, raw=raw, tags=[{"key": "team", "value": "web"}]
    )


def test_build_revision_sets_redis_and_keeps_everything_else() -> None:
    base = base_td()
    before = repr(base.raw)
    kwargs = build_revision(
        base,
        container="backend",
        set_env={"REDIS_ENABLED": "true", "REDIS_HOST": "master.x", "REDIS_PORT": "6379"},
        set_secrets={"REDIS_AUTH_TOKEN": "arn:secret:token"},
        extra_tags={"rexctl:previous-revision": ARN},
    )
    assert repr(base.raw) == before, "build_revision must not change its input"
    assert not READ_ONLY_FIELDS & set(kwargs)
    assert kwargs["family"] == "backend" and kwargs["cpu"] == "256"
    assert kwargs["executionRoleArn"].endswith("role/exec")
    backend, sidecar = kwargs["containerDefinitions"]
    assert sidecar == base.raw["containerDefinitions"][1]
    assert backend["environment"] == [
        {"name": "DB_URL", "value": "postgres://db"},
        {"name": "REDIS_HOST", "value": "master.x"},  # replaced in place
        {"name": "REDIS_ENABLED", "value": "true"},
        {"name": "REDIS_PORT", "value": "6379"},
    ]
    assert backend["secrets"] == [
        {"name": "DB_PASSWORD", "valueFrom": "arn:secret:db"},
        {"name": "REDIS_AUTH_TOKEN", "valueFrom": "arn:secret:token"},
    ]
    assert backend["portMappings"] == [{"containerPort": 3000}]
    assert kwargs["tags"] == [
        {"key": "team", "value": "web"},
        {"key": "rexctl:previous-revision", "value": ARN},
    ]


def test_build_revision_overwrites_a_tag_and_removes_variables() -> None:
    base = TaskDefinition(
        ARN, "backend", 3, base_td().raw, [{"key": "rexctl:previous-revision", "value": "old"}]
    )
    kwargs = build_revision(
        base,
        container="backend",
        set_env={},
        remove_env=["REDIS_HOST", "DB_PASSWORD"],
        extra_tags={"rexctl:previous-revision": "new"},
    )
    backend = kwargs["containerDefinitions"][0]
    assert [e["name"] for e in backend["environment"]] == ["DB_URL", "REDIS_AUTH_TOKEN"]
    assert "secrets" not in backend  # the only secret was removed: no empty list is sent
    assert kwargs["tags"] == [{"key": "rexctl:previous-revision", "value": "new"}]


def test_build_revision_drops_tags_that_only_aws_may_set() -> None:
    """Keys starting with `aws:` (any case) are AWS's own; register_task_definition refuses them
    ("Tag keys can't start with aws:"), so copying them back would fail every deploy."""
    tags = [
        {"key": "aws:cloudformation:stack-name", "value": "app"},
        {"key": "AWS:servicecatalog:productArn", "value": "arn:x"},
        {"key": "awsome", "value": "kept"},
    ]
    kwargs = build_revision(
        TaskDefinition(ARN, "backend", 3, base_td().raw, tags), container="backend", set_env={}
    )
    assert kwargs["tags"] == [{"key": "awsome", "value": "kept"}]


def test_build_revision_moves_a_secret_name_set_as_plain_env_out_of_secrets() -> None:
    kwargs = build_revision(base_td(), container="backend", set_env={"DB_PASSWORD": "x"})
    backend = kwargs["containerDefinitions"][0]
    assert "secrets" not in backend
    assert {"name": "DB_PASSWORD", "value": "x"} in backend["environment"]


def test_build_revision_refuses_contradictions_and_unknown_containers() -> None:
    with pytest.raises(ValueError, match="REDIS_HOST"):
        build_revision(
            base_td(), container="backend", set_env={"REDIS_HOST": "a"}, remove_env=["REDIS_HOST"]
        )
    with pytest.raises(
        ConfigError, match="no container named 'api' \\(it has: backend, sidecar\\)"
    ):
        build_revision(base_td(), container="api", set_env={})


def test_read_only_fields_match_botocore() -> None:
    """Every field describe returns but register refuses is dropped by build_revision."""
    model = botocore.session.get_session().get_service_model("ecs")
    described = set(model.shape_for("TaskDefinition").members)
    accepted = set(model.operation_model("RegisterTaskDefinition").input_shape.members)
    assert described - accepted <= READ_ONLY_FIELDS
    assert not READ_ONLY_FIELDS & accepted


def test_short_arn() -> None:
    assert short_arn(ARN) == "backend:3"
    assert short_arn("backend:3") == "backend:3"


@pytest.fixture
def ecs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    with mock_aws():
        client = boto3.client("ecs", region_name="us-east-1")
        client.create_cluster(clusterName="c")
        client.register_task_definition(
            executionRoleArn=EXECUTION_ROLE_ARN,
            family="backend",
            containerDefinitions=[
                {"name": "backend", "image": "b:1", "memory": 256,
                 "environment": [{"name": "KEEP", "value": "me"}]},
            ],
            tags=[{"key": "team", "value": "web"}],
        )  # fmt: skip
        client.create_service(
            cluster="c", serviceName="svc", taskDefinition="backend:1", desiredCount=1
        )
        yield client


def test_register_update_deregister_against_moto(ecs: Any) -> None:
    base = describe_task_definition(ecs, "backend:1")
    kwargs = build_revision(
        base, container="backend", set_env={"REDIS_ENABLED": "true"}, extra_tags={"k": "v"}
    )
    new = register_revision(ecs, kwargs)
    assert (new.family, new.revision) == ("backend", 2)
    assert new.environment("backend") == {"KEEP": "me", "REDIS_ENABLED": "true"}
    assert describe_task_definition(ecs, new.arn).tags == [
        {"key": "team", "value": "web"},
        {"key": "k", "value": "v"},
    ]
    update_service(ecs, "c", "svc", new.arn)
    assert describe_service(ecs, "c", "svc").task_definition == new.arn
    deregister_task_definition(ecs, new.arn)
    assert describe_task_definition(ecs, new.arn).raw["status"] == "INACTIVE"


def test_a_forced_deployment_gets_a_new_id_and_keeps_the_task_definition(ecs: Any) -> None:
    before = describe_service(ecs, "c", "svc")
    deployment = force_new_deployment(ecs, "c", "svc")
    after = describe_service(ecs, "c", "svc")
    assert deployment and before.primary is not None and deployment != before.primary.id
    assert after.task_definition == before.task_definition


def test_a_missing_task_definition_is_named(ecs: Any) -> None:
    with pytest.raises(UsageError) as info:
        describe_task_definition(ecs, "backend:9")
    assert info.value.message == (
        "Task definition backend:9 does not exist (in this account and region)."
    )
    assert info.value.hint == (
        "`aws ecs list-task-definitions --family-prefix backend` lists its revisions."
    )


def test_update_service_error_names_what_failed(ecs: Any) -> None:
    with pytest.raises(AwsError, match="update ECS service nope to backend:1"):
        update_service(
            ecs, "c", "nope", "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:1"
        )


def test_list_tasks_keeps_only_the_services_tasks(ecs: Any) -> None:
    from moto.ec2.utils import generate_instance_identity_document

    ec2 = boto3.resource("ec2", region_name="us-east-1")
    image = ec2.meta.client.describe_images()["Images"][0]["ImageId"]
    instance = ec2.create_instances(ImageId=image, MinCount=1, MaxCount=1)[0]
    doc = json.dumps(generate_instance_identity_document(instance))
    ecs.register_container_instance(cluster="c", instanceIdentityDocument=doc)
    ours = ecs.run_task(cluster="c", taskDefinition="backend:1", group="service:svc")["tasks"][0]
    ecs.run_task(cluster="c", taskDefinition="backend:1", group="family:backend")
    tasks = list_tasks(ecs, "c", "svc")
    assert [t.arn for t in tasks] == [ours["taskArn"]]
    assert tasks[0].group == "service:svc" and tasks[0].desired_status == "RUNNING"
    assert tasks[0].task_definition.endswith("backend:1")
    assert tasks[0].id == ours["taskArn"].rsplit("/", 1)[-1]
    ecs.stop_task(cluster="c", task=ours["taskArn"], reason="drill")
    assert list_tasks(ecs, "c", "svc") == []
    stopped = list_tasks(ecs, "c", "svc", desired_status="STOPPED")
    assert [(t.arn, t.stopped_reason) for t in stopped] == [(ours["taskArn"], "drill")]


def test_list_tasks_keeps_each_containers_exit_code() -> None:
    """DescribeTasks as AWS answers for a stopped task with a sidecar: `containers[].exitCode`
    per container (absent while a container has not exited), which the drills read for the
    backend's container."""
    from botocore.stub import Stubber

    from rexctl.drills.observe import container_exit_code

    ecs = boto3.client("ecs", region_name="us-east-1")
    arn = "arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef"
    task = {
        "taskArn": arn, "group": "service:svc", "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED", "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:1",
        "containers": [{"name": "log_router", "exitCode": 0}, {"name": "backend", "exitCode": 1},
                       {"name": "never-ran", "lastStatus": "STOPPED"}],
    }  # fmt: skip
    with Stubber(ecs) as stub:
        stub.add_response(
            "list_tasks",
            {"taskArns": [arn]},
            {"cluster": "c", "serviceName": "svc", "desiredStatus": "STOPPED"},
        )
        stub.add_response("describe_tasks", {"tasks": [task], "failures": []},
                          {"cluster": "c", "tasks": [arn]})  # fmt: skip
        (view,) = list_tasks(ecs, "c", "svc", desired_status="STOPPED")
        stub.assert_no_pending_responses()
    assert view.exit_codes == {"log_router": 0, "backend": 1}
    assert container_exit_code(view.exit_codes, "backend") == 1
    assert container_exit_code(view.exit_codes, "app") == 0
    assert container_exit_code({}, "backend") is None
