"""The one module that reaches into moto's in-process backend objects.

The daemon runs moto in its own process, so it can read and fix up what moto keeps: moto's ECS
never runs a task, keeps `deployments[0]` on the first task definition and records no events.
The sandbox runs the tasks itself and writes here what ECS would show: tasks and their states,
the deployments of a rolling update, running/pending counts and service events. It also reads
the security groups and network ACLs the gate applies, the execution role's policies (may a task
read its secrets?), and gives ElastiCache its time (`CacheTime`: `creating`, `modifying`,
`deleting`, then gone) and what moto 5.2 ignores of ModifyReplicationGroup: in-transit encryption
(`TransitEncryptionEnabled`, `TransitEncryptionMode`, the endpoints that change with it) and the
AUTH token (`AuthToken`, `AuthTokenUpdateStrategy`), which the gate and the node then apply.
Secrets Manager's AWSCURRENT as AWS keeps it (`fix_secret_versions`): moto 5.2 answers a
GetSecretValue without a version from the version it last *put* as current, so after
UpdateSecretVersionStage moves AWSCURRENT it goes on answering the old value (AWS: "If you don't
specify either a VersionStage or VersionId, Secrets Manager returns the AWSCURRENT version",
GetSecretValue.VersionId), and a task the sandbox starts would read the old token.
Everything else goes through boto3. Attribute names are those of moto 5.2.x.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from rexctl.aws import rules
from rexctl.sandbox import iam, network
from rexctl.sandbox.proxy import NodeAuth

ACCOUNT = "123456789012"  # moto's default account: any access key maps to it

# ElastiCache's time, shortened from minutes to seconds (AWS: 5-10 minutes to create, minutes to
# modify or delete). A modify answers `available` and still shows it for MODIFY_STARTS_AFTER
# seconds before the group turns `modifying`, as AWS may.
CREATE_SECONDS = 2.0
MODIFY_STARTS_AFTER = 0.3
MODIFY_SECONDS = 1.5
DELETE_SECONDS = 1.5
SERVING = ("available", "modifying")  # the node answers on its endpoint
_HIDDEN = "_sandbox_hidden_endpoints"  # node-group endpoint keys held back while `creating`
# In-transit encryption and AUTH, as ElastiCache keeps them (moto keeps neither the token nor a
# modify of them): the tokens the node accepts, whether it still accepts connections without
# AUTH (a ROTATE on a group without a token), the last token change, the plain endpoints kept
# while the group is `preferred`, and when its security last changed (the node follows that one).
_TOKENS = "_sandbox_tokens"
_OPEN = "_sandbox_open"
_LAST_AUTH = "_sandbox_last_auth"
_LEGACY = "_sandbox_legacy_endpoints"
_CHANGED = "_sandbox_security_changed"
_SECURE_PARAMS = {
    "transit_encryption_enabled": "TransitEncryptionEnabled",
    "transit_encryption_mode": "TransitEncryptionMode",
    "auth_token": "AuthToken",
    "auth_token_update_strategy": "AuthTokenUpdateStrategy",
}
_ENDPOINT_KEYS = (
    "primary_endpoint",
    "primary_endpoint_address",
    "reader_endpoint",
    "reader_endpoint_address",
)

# The AWS managed policy the guide attaches to the execution role, as AWS publishes it (moto
# loads AWS managed policies only with MOTO_IAM_LOAD_MANAGED_POLICIES=true: 1,500 of them, most
# of a second at every start).
ECS_TASK_EXECUTION_POLICY = "AmazonECSTaskExecutionRolePolicy"
ECS_TASK_EXECUTION_POLICY_ARN = f"arn:aws:iam::aws:policy/service-role/{ECS_TASK_EXECUTION_POLICY}"
ECS_TASK_EXECUTION_DOCUMENT: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
}
_AWS_MANAGED_SECRETS_KEY = ("", "alias/aws/secretsmanager")

# What ECS gives a service created without a deploymentConfiguration (moto keeps none).
DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def _now() -> datetime:
    return datetime.now(UTC)


def _backend(name: str, region: str) -> Any:
    from moto.backends import get_backend

    getter: Any = get_backend  # typed per service name; the sandbox reads a few attributes only
    return getter(name)[ACCOUNT][region]


def _iam_backend() -> Any:
    from moto.backends import get_backend

    getter: Any = get_backend
    return getter("iam")[ACCOUNT]["aws"]  # IAM is global: one backend per partition


def keep_tasks_running() -> None:
    """moto advances a task towards STOPPED on every describe; the sandbox decides instead."""
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})


@dataclass(frozen=True)
class ContainerSpec:
    """What the sandbox needs of a task definition to run its container."""

    arn: str
    container: str
    environment: dict[str, str]
    secrets: dict[str, str]  # name -> valueFrom
    log_group: str
    log_prefix: str
    execution_role: str = ""  # the task definition's executionRoleArn


@dataclass(frozen=True)
class DeploymentConfig:
    """A service's deploymentConfiguration, with ECS's defaults for what it leaves out."""

    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    circuit_breaker: bool = False
    rollback: bool = False
    reset_on_healthy_task: bool = True


@dataclass(frozen=True)
class CacheEndpoint:
    group_id: str
    port: int


TLS_OFF, TLS_PREFERRED, TLS_REQUIRED = "off", "preferred", "required"


class Moto:
    """Read and write moto's state for one region."""

    def __init__(self, region: str) -> None:
        self.region = region

    @property
    def ecs(self) -> Any:
        return _backend("ecs", self.region)

    @property
    def ec2(self) -> Any:
        return _backend("ec2", self.region)

    @property
    def elasticache(self) -> Any:
        return _backend("elasticache", self.region)

    # ECS -------------------------------------------------------------------------------------

    def service(self, cluster: str, name: str) -> Any | None:
        svc = self.ecs.services.get(f"{cluster}:{name}")
        return svc if svc is not None and svc.status == "ACTIVE" else None

    def container_spec(self, ref: str) -> ContainerSpec | None:
        """The task definition's first essential container (the sandbox runs one container)."""
        try:
            td = self.ecs.describe_task_definition(ref)
        except Exception:
            return None
        containers = list(td.container_definitions)
        if not containers:
            return None
        c = next((c for c in containers if c.get("essential", True)), containers[0])
        options = (c.get("logConfiguration") or {}).get("options") or {}
        return ContainerSpec(
            arn=td.arn,
            container=c.get("name", ""),
            environment={e["name"]: str(e.get("value", "")) for e in c.get("environment") or []},
            secrets={s["name"]: s.get("valueFrom", "") for s in c.get("secrets") or []},
            log_group=options.get("awslogs-group", ""),
            log_prefix=options.get("awslogs-stream-prefix", ""),
            execution_role=str(getattr(td, "execution_role_arn", None) or ""),
        )

    @staticmethod
    def deployment_configuration(svc: Any) -> DeploymentConfig:
        """The service's deploymentConfiguration; ECS's defaults where it has none (they are
        written into moto too, so `describe-services` shows them as ECS does)."""
        raw = dict(getattr(svc, "deployment_configuration", None) or {})
        full = {**DEFAULT_DEPLOYMENT_CONFIGURATION, **raw}
        breaker = {
            **DEFAULT_DEPLOYMENT_CONFIGURATION["deploymentCircuitBreaker"],
            **(full.get("deploymentCircuitBreaker") or {}),
        }
        full["deploymentCircuitBreaker"] = breaker
        if raw != full:
            svc.deployment_configuration = full
        return DeploymentConfig(
            minimum_healthy_percent=int(full.get("minimumHealthyPercent", 100)),
            maximum_percent=int(full.get("maximumPercent", 200)),
            circuit_breaker=bool(breaker.get("enable")),
            rollback=bool(breaker.get("rollback")),
            reset_on_healthy_task=bool(breaker.get("resetOnHealthyTask", True)),
        )

    @staticmethod
    def set_task_definition(svc: Any, arn: str) -> None:
        """What a rollback does to the service: it runs the earlier task definition again."""
        svc.task_definition = arn

    def new_task(self, svc: Any, td_arn: str, subnet: str, deployment_id: str) -> Any:
        """A PROVISIONING task of the service in moto, with its network interface in `subnet`."""
        net = dict((svc.network_configuration or {}).get("awsvpcConfiguration") or {})
        net["subnets"] = [subnet]
        task = self.ecs.run_task(
            svc.cluster_name,
            td_arn,
            1,
            None,
            deployment_id,
            None,
            "FARGATE",
            {"awsvpcConfiguration": net},
            group=f"service:{svc.name}",
        )[0]
        task.last_status = "PROVISIONING"
        task.containers[0].last_status = "PENDING"
        return task

    @staticmethod
    def task_running(task: Any) -> None:
        task.last_status = "RUNNING"
        task.started_at = _now()
        task.containers[0].last_status = "RUNNING"

    @staticmethod
    def task_stopped(task: Any, reason: str, stop_code: str, exit_code: int | None) -> None:
        if not task.stopped_reason:  # a user's ecs:StopTask reason wins
            task.stopped_reason = reason
        if not getattr(task, "stop_code", ""):
            task.stop_code = stop_code
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        task.stopped_at = _now()
        task.containers[0].last_status = "STOPPED"
        if exit_code is not None:
            task.containers[0].exitCode = exit_code

    @staticmethod
    def stop_requested(task: Any) -> bool:
        """Someone called ecs:StopTask (a user, a drill)."""
        return bool(task.desired_status == "STOPPED")

    @staticmethod
    def write_service(
        svc: Any, *, running: int, pending: int, deployments: list[dict[str, Any]]
    ) -> None:
        svc.running_count = running
        svc.pending_count = pending
        svc.deployments = deployments

    @staticmethod
    def add_event(svc: Any, message: str) -> None:
        event = {"id": str(uuid.uuid4()), "createdAt": _now(), "message": message}
        svc.events = [event, *svc.events][:100]

    @staticmethod
    def moto_deployment_id(svc: Any) -> str:
        """moto rewrites deployments[0]['id'] on update_service(forceNewDeployment=True)."""
        return str(svc.deployments[0]["id"]) if svc.deployments else ""

    # ElastiCache and the VPC -------------------------------------------------------------------

    def cache_endpoints(self) -> dict[str, CacheEndpoint]:
        """Primary and reader endpoint names of every replication group (also those of a group
        still `creating`, which describe calls do not show yet: the gate holds a task's
        connections to it until the group is `available`)."""
        found: dict[str, CacheEndpoint] = {}
        for rg in list(self.elasticache.replication_groups.values()):
            hidden = list(getattr(rg, _HIDDEN, None) or [])
            for ng in [*rg.node_groups, *hidden]:
                for key in ("primary_endpoint_address", "reader_endpoint_address"):
                    if ng.get(key):
                        found[ng[key]] = CacheEndpoint(rg.replication_group_id, int(rg.port))
            for name in list(getattr(rg, _LEGACY, None) or []):  # plain names, while `preferred`
                found[name] = CacheEndpoint(rg.replication_group_id, int(rg.port))
        return found

    def transit_mode(self, group_id: str) -> str:
        """The group's in-transit encryption as its node applies it: off, preferred, required."""
        rg = self.elasticache.replication_groups.get(group_id)
        if rg is None or not rg.transit_encryption_enabled:
            return TLS_OFF
        return TLS_PREFERRED if rg.transit_encryption_mode == TLS_PREFERRED else TLS_REQUIRED

    def node_auth(self) -> NodeAuth:
        """What the one cache node's AUTH accepts: the tokens of the group whose security changed
        last (the sandbox has one node for every group; see docs/sandbox.md)."""
        groups = [
            rg
            for rg in list(self.elasticache.replication_groups.values())
            if rg.status != "deleting"
        ]
        if not groups:
            return NodeAuth()
        rg = max(groups, key=lambda g: getattr(g, _CHANGED, 0.0))
        tokens = tuple(getattr(rg, _TOKENS, None) or ())
        return NodeAuth(tokens, bool(getattr(rg, _OPEN, True)) or not tokens)

    def path(self, group_id: str, subnet_id: str, task_groups: list[str]) -> network.Path:
        """The rules between a task (subnet, groups) and a replication group, as they are now.
        A group that is not serving (`creating`, `deleting`, gone) has no path (`exists`)."""
        rg = self.elasticache.replication_groups.get(group_id)
        task_subnet = self._subnet(subnet_id)
        groups = tuple(g for g in (self._group(i) for i in task_groups) if g)
        if rg is None or rg.status not in SERVING:
            return network.Path(task_subnet, groups, (), (), 0, exists=False)
        subnet_group = self.elasticache.cache_subnet_groups.get(rg.cache_subnet_group_name or "")
        subnet_ids = list(subnet_group.subnet_ids) if subnet_group else []
        cache_subnets = tuple(self._subnet(s) for s in subnet_ids)
        return network.Path(
            task_subnet=task_subnet,
            task_groups=groups,
            cache_subnets=cache_subnets,
            cache_groups=tuple(g for g in (self._group(i) for i in self._cache_sg_ids(rg)) if g),
            port=int(rg.port),
        )

    # IAM and Secrets Manager: may a task's execution role read its secrets? -------------------

    @property
    def iam(self) -> Any:
        return _iam_backend()

    def provide_ecs_task_execution_policy(self) -> None:
        """Make the AWS managed policy AmazonECSTaskExecutionRolePolicy attachable, with the
        document AWS publishes for it."""
        from moto.iam.models import AWSManagedPolicy

        backend = self.iam
        if ECS_TASK_EXECUTION_POLICY_ARN in backend.managed_policies:
            return
        data = {
            "DefaultVersionId": "v1",
            "Path": "/service-role/",
            "Document": ECS_TASK_EXECUTION_DOCUMENT,
            "CreateDate": "2017-11-16T18:48:22+00:00",
            "UpdateDate": "2017-11-16T18:48:22+00:00",
        }
        policy = AWSManagedPolicy.from_data(ECS_TASK_EXECUTION_POLICY, ACCOUNT, self.region, data)
        backend.managed_policies[policy.arn] = policy

    def role_documents(self, role_arn: str) -> tuple[Any, list[str]] | None:
        """(trust policy, identity policies: inline + default versions of the attached ones) of
        the role `role_arn` names, or None when no such role exists."""
        name = role_arn.rsplit("/", 1)[-1]
        if not role_arn.startswith("arn:aws:iam::") or ":role/" not in role_arn or not name:
            return None
        try:
            role = self.iam.get_role(name)
        except Exception:
            return None
        if str(role.arn) != role_arn:  # same name under another path or account
            return None
        documents = [str(d) for d in dict(role.policies).values()]
        for policy in list(dict(role.managed_policies).values()):
            documents.extend(str(v.document) for v in policy.versions if v.is_default)
        return role.assume_role_policy_document, documents

    def secret_problem(self, role_arn: str, value_from: str, task_id: str) -> str:
        """Why ECS, with execution role `role_arn`, could not fetch the secret `value_from` for
        task `task_id`, in the words of the error AWS reports ('' when it could)."""
        arn = secret_arn(value_from)
        if not arn:
            return (
                f"invalid secret reference {value_from}: the sandbox reads Secrets Manager "
                "secrets by ARN (arn:aws:secretsmanager:...) only"
            )
        if not role_arn:
            return "the task definition has no executionRoleArn to fetch secrets with"
        documents = self.role_documents(role_arn)
        if documents is None or not iam.trusts(documents[0]):
            return (
                f"ECS was unable to assume the role '{role_arn}' that was provided for this task. "
                "Please verify that the role being passed has the proper trust relationship and "
                "permissions and that your IAM user has permissions to pass this role."
            )
        caller = _assumed_role(role_arn, task_id)
        action = "secretsmanager:GetSecretValue"
        decision = iam.evaluate(documents[1], action, arn)
        if decision is not iam.Decision.ALLOWED:
            return (
                f"AccessDeniedException: User: {caller} is not authorized to perform: {action} "
                f"on resource: {arn} {_because(decision, action)}"
            )
        key = self._secret_key(arn)
        if key and iam.evaluate(documents[1], "kms:Decrypt", key) is not iam.Decision.ALLOWED:
            return "AccessDeniedException: Access to KMS is not allowed"
        return ""

    def _secret_key(self, arn: str) -> str:
        """The ARN of the customer managed KMS key that encrypts the secret ('' for the AWS
        managed key aws/secretsmanager, which needs no kms:Decrypt in the role's policy)."""
        try:
            secret = _backend("secretsmanager", self.region).secrets.get(arn)
        except Exception:
            return ""
        key = str(getattr(secret, "kms_key_id", None) or "") if secret is not None else ""
        if key in _AWS_MANAGED_SECRETS_KEY or key.endswith(":alias/aws/secretsmanager"):
            return ""
        if key.startswith("arn:aws:kms:") and ":key/" in key:
            return key
        if "alias/" in key:
            try:
                key_id = _backend("kms", self.region).get_key_id_from_alias(key.split(":")[-1])
            except Exception:
                key_id = None
            if not key_id:
                return f"arn:aws:kms:{self.region}:{ACCOUNT}:{key.split(':')[-1]}"
            key = str(key_id)
        return f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key.rsplit('/', 1)[-1]}"

    def _cache_sg_ids(self, rg: Any) -> list[str]:
        if rg.security_group_ids:
            return list(rg.security_group_ids)
        # moto ignores SecurityGroupIds on modify; fall back to provisioning's naming.
        name = f"{rg.replication_group_id}-sg"
        return [
            g.id
            for vpc_groups in list(self.ec2.groups.values())
            for g in list(vpc_groups.values())
            if g.name == name
        ]

    def _group(self, group_id: str) -> network.SecurityGroup | None:
        g = self.ec2.get_security_group_from_id(group_id)
        if g is None:
            return None
        return network.SecurityGroup(
            id=g.id,
            ingress=tuple(_sg_rule(r) for r in list(g.ingress_rules)),
            egress=tuple(_sg_rule(r) for r in list(g.egress_rules)),
        )

    def _subnet(self, subnet_id: str) -> network.Subnet:
        try:
            subnet = self.ec2.get_subnet(subnet_id)
        except Exception:
            return network.Subnet(subnet_id, "0.0.0.0/32")
        entries: tuple[network.AclEntry, ...] = ()
        for acl in list(self.ec2.network_acls.values()):
            if any(a.subnet_id == subnet_id for a in acl.associations):
                entries = tuple(_acl_entry(e) for e in list(acl.network_acl_entries))
                break
        return network.Subnet(subnet_id, subnet.cidr_block, entries)


def secret_arn(value_from: str) -> str:
    """The secret's ARN in a container's `valueFrom` (which may append
    `:json-key:version-stage:version-id`); '' when it is not a Secrets Manager ARN."""
    parts = value_from.split(":")
    if len(parts) < 7 or parts[:3] != ["arn", "aws", "secretsmanager"] or parts[5] != "secret":
        return ""
    return ":".join(parts[:7])


def _assumed_role(role_arn: str, session: str) -> str:
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ACCOUNT
    return f"arn:aws:sts::{account}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session}"


def _because(decision: iam.Decision, action: str) -> str:
    if decision is iam.Decision.EXPLICIT_DENY:
        return "with an explicit deny in an identity-based policy"
    return f"because no identity-based policy allows the {action} action"


def _port(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _sg_rule(rule: Any) -> network.SgRule:
    ip_range = rule.ip_range or {}
    source = rule.source_group or {}
    return network.SgRule(
        protocol=str(rule.ip_protocol),
        from_port=_port(rule.from_port),
        to_port=_port(rule.to_port),
        groups=(source["GroupId"],) if source.get("GroupId") else (),
        cidrs=(ip_range["CidrIp"],) if ip_range.get("CidrIp") else (),
    )


def _acl_entry(entry: Any) -> network.AclEntry:
    return network.AclEntry(
        rule_number=int(entry.rule_number),
        protocol=str(entry.protocol),
        action=str(entry.rule_action),
        egress=str(entry.egress).lower() == "true",
        cidr=entry.cidr_block or entry.ipv6_cidr_block or "0.0.0.0/0",
        from_port=_port(entry.port_range_from),
        to_port=_port(entry.port_range_to),
    )


# ElastiCache's time ----------------------------------------------------------------------------


@cache
def _state_fault() -> type[Exception]:
    from moto.elasticache.exceptions import ElastiCacheException

    class InvalidReplicationGroupStateFault(ElastiCacheException):
        code = "InvalidReplicationGroupState"

    return InvalidReplicationGroupStateFault


def _group_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return str(kwargs.get("replication_group_id") or (args[0] if args else ""))


class CacheTime:
    """Replication groups go through ElastiCache's states over time instead of being `available`
    at once and `deleting` forever (moto):

    - CreateReplicationGroup answers `creating`, with no endpoint in the node group (the endpoint
      appears, and the gate lets a task through, once it is `available`) for CREATE_SECONDS;
    - ModifyReplicationGroup answers, and still shows, `available` for MODIFY_STARTS_AFTER
      seconds, then `modifying` for MODIFY_SECONDS, then `available` again; it is refused with
      InvalidReplicationGroupState unless the group is `available`, as ElastiCache does;
    - DeleteReplicationGroup answers `deleting`; DELETE_SECONDS later the group is gone (its id
      can be used again). Deleting a group that is already `deleting` is refused.

    In-transit encryption and AUTH (what moto ignores of a modify) take effect when a modify's
    `modifying` ends, and are shown in PendingModifiedValues while it lasts; a request AWS would
    refuse given the group as it is (`rules.check_group`: `required` before `preferred`, a token
    on a group without TLS, SET before ROTATE or with another token...) is refused with AWS's
    code before anything changes:

    - create: a group without in-transit encryption gets ElastiCache's plain endpoint names
      (`<id>.<xxxxxx>.ng.0001.use1.cache.amazonaws.com`, reader `<id>-ro....`), one with it the
      TLS names moto gives (`master.<id>...`, `replica.<id>...`) and mode `required` unless
      another is asked; an AuthToken is the one token the node accepts;
    - TransitEncryptionEnabled + `preferred`: the TLS names are the group's endpoints from now on;
      the plain names keep resolving (for tasks that still use them) until `required`;
    - `required`: the plain names are gone, and the gate drops plain connections;
    - ROTATE: the node accepts the new token and keeps the previous one (or, on a group that had
      none, connections without AUTH), at most two; SET: only that token.

    `install()` wraps the three calls of moto's ElastiCache backend (again whenever moto made a
    new backend, after a reset) and hands ModifyReplicationGroup's TLS and AUTH parameters to the
    wrapped modify; `advance()` (the daemon calls it every 0.1 s) applies what is due. Requests
    run in moto's server threads, `advance` in the daemon's loop: one lock.
    """

    def __init__(self, region: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.region = region
        self.clock = clock
        self._due: dict[str, list[tuple[float, str]]] = {}
        self._pending: dict[str, dict[str, Any]] = {}  # a modify's TLS/AUTH, applied at the end
        self._lock = threading.Lock()

    @property
    def backend(self) -> Any:
        return _backend("elasticache", self.region)

    def install(self) -> None:
        _hand_over_secure_params()
        backend = self.backend
        if backend.__dict__.get("_sandbox_time") is self:
            return
        create, modify, delete = (
            backend.create_replication_group,
            backend.modify_replication_group,
            backend.delete_replication_group,
        )

        def on_create(*args: Any, **kwargs: Any) -> Any:
            rg = create(*args, **kwargs)
            with self._lock:
                rg.status = "creating"
                _secure_at_create(rg, kwargs.get("auth_token"), self.clock())
                hidden = []
                for ng in rg.node_groups:
                    keys = {k: ng.pop(k) for k in _ENDPOINT_KEYS if k in ng}
                    if not rg.transit_encryption_enabled:
                        keys = _plain_names(rg.replication_group_id, keys)
                    keys["node_group_members"] = [
                        m.pop("read_endpoint", None) for m in ng.get("node_group_members", [])
                    ]
                    hidden.append(keys)
                    ng["status"] = "creating"
                setattr(rg, _HIDDEN, hidden)
                self._due[rg.replication_group_id] = [(self.clock() + CREATE_SECONDS, "available")]
            return rg

        def on_modify(*args: Any, **kwargs: Any) -> Any:
            group_id = _group_id(args, kwargs)
            secure = {
                _SECURE_PARAMS[k]: v
                for k in list(kwargs)
                if k in _SECURE_PARAMS and (v := kwargs.pop(k)) is not None
            }
            with self._lock:
                rg = backend.replication_groups.get(group_id)
                if rg is not None and rg.status != "available":
                    raise _state_fault()(
                        f"Replication group {group_id} is not in the available state "
                        f"(it is {rg.status})."
                    )
                if rg is not None and secure:
                    refused = rules.check_group(
                        group_state(rg), "elasticache", "ModifyReplicationGroup", secure
                    )
                    if refused:
                        raise _fault(refused[0].code)(rules.refusal(refused)["Error"]["Message"])
            rg = modify(*args, **kwargs)
            with self._lock:
                start = self.clock() + MODIFY_STARTS_AFTER
                self._due[group_id] = [(start, "modifying"), (start + MODIFY_SECONDS, "available")]
                if secure:
                    self._pending[group_id] = secure
                else:
                    self._pending.pop(group_id, None)
            return rg

        def on_delete(*args: Any, **kwargs: Any) -> Any:
            group_id = _group_id(args, kwargs)
            with self._lock:
                rg = backend.replication_groups.get(group_id)
                if rg is not None and rg.status == "deleting":
                    raise _state_fault()(
                        f"Replication group {group_id} has status deleting which is not valid "
                        "for deletion."
                    )
            rg = delete(*args, **kwargs)
            with self._lock:
                self._due[group_id] = [(self.clock() + DELETE_SECONDS, "gone")]
            return rg

        backend.create_replication_group = on_create
        backend.modify_replication_group = on_modify
        backend.delete_replication_group = on_delete
        backend._sandbox_time = self

    def advance(self, now: float | None = None) -> None:
        """Apply every transition that is due by `now` (default: the clock)."""
        self.install()
        now = self.clock() if now is None else now
        backend = self.backend
        with self._lock:
            for group_id, steps in list(self._due.items()):
                rg = backend.replication_groups.get(group_id)
                while rg is not None and steps and steps[0][0] <= now:
                    _, what = steps.pop(0)
                    if what == "gone":
                        backend.replication_groups.pop(group_id, None)
                        tagging = getattr(backend, "tagging_service", None)
                        if tagging is not None:
                            tagging.delete_all_tags_for_resource(rg.arn)
                        rg = None
                    else:
                        _become(rg, what)
                        pending = self._pending.get(group_id)
                        if pending and what == "modifying":
                            rg.pending_modified_values = _pending_values(pending)
                        elif pending and what == "available":
                            _apply_secure(rg, self._pending.pop(group_id), now)
                if rg is None or not steps:
                    del self._due[group_id]
                    self._pending.pop(group_id, None)

    def pending(self, group_id: str) -> list[str]:
        """The states still to come for a group (for tests and the daemon log)."""
        with self._lock:
            return [what for _, what in self._due.get(group_id, [])]


def _become(rg: Any, status: str) -> None:
    """Set the group's status; on `available`, show the endpoints held back while `creating`.
    New node-group dicts replace the old ones, so that a describe being answered in another
    thread never sees one change under it."""
    rg.status = status
    if status != "available":
        return
    hidden = list(getattr(rg, _HIDDEN, None) or [])
    groups = []
    for i, ng in enumerate(list(rg.node_groups)):
        keys = dict(hidden[i]) if i < len(hidden) else {}
        endpoints = keys.pop("node_group_members", [])
        members = [
            {**m, "read_endpoint": endpoints[j]}
            if j < len(endpoints) and endpoints[j] is not None
            else dict(m)
            for j, m in enumerate(ng.get("node_group_members", []))
        ]
        groups.append({**ng, **keys, "node_group_members": members, "status": "available"})
    rg.node_groups = groups
    setattr(rg, _HIDDEN, None)


# In-transit encryption and AUTH -----------------------------------------------------------------


def group_state(rg: Any) -> rules.GroupState:
    """The group as a ModifyReplicationGroup request meets it (rules.check_group)."""
    tokens = list(getattr(rg, _TOKENS, None) or [])
    last = str(getattr(rg, _LAST_AUTH, "") or "")
    return rules.GroupState(
        engine=str(rg.engine or "redis"),
        engine_version=str(rg.engine_version or ""),
        transit_encryption=bool(rg.transit_encryption_enabled),
        transit_mode=str(rg.transit_encryption_mode or "") if rg.transit_encryption_enabled else "",
        auth_enabled=bool(tokens),
        last_auth_change=last,
        last_rotated=tokens[-1] if tokens and last == "ROTATE" else None,
    )


@cache
def _fault(code: str) -> type[Exception]:
    from moto.elasticache.exceptions import ElastiCacheException

    return type(f"Sandbox{code}", (ElastiCacheException,), {"code": code})


def _secure_at_create(rg: Any, token: str | None, now: float) -> None:
    if rg.transit_encryption_enabled and not rg.transit_encryption_mode:
        rg.transit_encryption_mode = TLS_REQUIRED  # what a TLS group created without a mode has
    if not rg.transit_encryption_enabled:
        rg.transit_encryption_mode = None
    setattr(rg, _TOKENS, [token] if token else [])
    setattr(rg, _OPEN, not token)
    setattr(rg, _LAST_AUTH, "SET" if token else "")
    setattr(rg, _LEGACY, [])
    setattr(rg, _CHANGED, now)


def _domain(address: str) -> tuple[str, str]:
    """(the random part, the rest) of an endpoint `master.<id>.<xxxxxx>.use1.cache...` or
    `<id>.<xxxxxx>.ng.0001.use1.cache...`."""
    parts = address.split(".")
    if parts[0] in ("master", "replica"):
        return parts[2], ".".join(parts[3:])
    return parts[1], ".".join(parts[4:])


def _plain_names(group_id: str, keys: dict[str, Any]) -> dict[str, Any]:
    """A node group's endpoint keys with ElastiCache's names for a group without TLS."""
    return _renamed(keys, lambda rand, rest, reader: f"{group_id}{'-ro' if reader else ''}."
                    f"{rand}.ng.0001.{rest}")  # fmt: skip


def _tls_names(group_id: str, keys: dict[str, Any]) -> dict[str, Any]:
    return _renamed(keys, lambda rand, rest, reader: f"{'replica' if reader else 'master'}."
                    f"{group_id}.{rand}.{rest}")  # fmt: skip


def _renamed(keys: dict[str, Any], name: Callable[[str, str, bool], str]) -> dict[str, Any]:
    out = dict(keys)
    for key in ("primary_endpoint_address", "reader_endpoint_address"):
        if out.get(key):
            rand, rest = _domain(str(out[key]))
            out[key] = name(rand, rest, key.startswith("reader"))
    for key, address in (("primary_endpoint", "primary_endpoint_address"),
                         ("reader_endpoint", "reader_endpoint_address")):  # fmt: skip
        if isinstance(out.get(key), dict) and out.get(address):
            out[key] = {**out[key], "address": out[address]}
    return out


def _pending_values(secure: dict[str, Any]) -> dict[str, Any]:
    """PendingModifiedValues while a modify of TLS/AUTH is under way."""
    shown: dict[str, Any] = {}
    if "TransitEncryptionEnabled" in secure:
        shown["TransitEncryptionEnabled"] = secure["TransitEncryptionEnabled"]
    if "TransitEncryptionMode" in secure:
        shown["TransitEncryptionMode"] = secure["TransitEncryptionMode"]
    if "AuthToken" in secure:
        strategy = secure.get("AuthTokenUpdateStrategy", "ROTATE")
        shown["AuthTokenStatus"] = "SETTING" if strategy == "SET" else "ROTATING"
    return shown


def _apply_secure(rg: Any, secure: dict[str, Any], now: float) -> None:
    """A modify's in-transit encryption and AUTH, as the group has them once `available`."""
    rg.pending_modified_values = {}
    mode = secure.get("TransitEncryptionMode")
    if secure.get("TransitEncryptionEnabled") is True and not rg.transit_encryption_enabled:
        rg.transit_encryption_enabled = True
        # New TLS endpoints; the plain ones keep answering until `required`.
        legacy = [
            ng.get(k)
            for ng in rg.node_groups
            for k in ("primary_endpoint_address", "reader_endpoint_address")
            if ng.get(k)
        ]
        setattr(rg, _LEGACY, legacy)  # fmt: skip
        rg.node_groups = [
            {**ng, **_tls_names(rg.replication_group_id, {k: ng[k] for k in _ENDPOINT_KEYS
                                                           if k in ng})}
            for ng in rg.node_groups
        ]  # fmt: skip
    if mode is not None:
        rg.transit_encryption_mode = mode
        if mode == TLS_REQUIRED:
            setattr(rg, _LEGACY, [])
    token = secure.get("AuthToken")
    if token is not None:
        tokens = list(getattr(rg, _TOKENS, None) or [])
        if secure.get("AuthTokenUpdateStrategy", "ROTATE") == "SET":
            tokens, opened, last = [token], False, "SET"
        else:  # ROTATE: the new token and the previous one (or no token at all), at most two
            opened = not tokens
            tokens = [*tokens[-1:], token]
            last = "ROTATE"
        setattr(rg, _TOKENS, tokens)
        setattr(rg, _OPEN, opened)
        setattr(rg, _LAST_AUTH, last)
        rg.auth_token_enabled = True
        rg.auth_token_last_modified_date = _now()
    setattr(rg, _CHANGED, now)


_HANDED_OVER = "_rexctl_sandbox_secure_params"


def _hand_over_secure_params() -> None:
    """moto's ModifyReplicationGroup handler passes its backend only the parameters moto models;
    wrap it so that a backend CacheTime wrapped also gets TransitEncryptionEnabled,
    TransitEncryptionMode, AuthToken and AuthTokenUpdateStrategy (other backends are called as
    moto calls them)."""
    from moto.core.responses import ActionResult
    from moto.elasticache.responses import ElastiCacheResponse

    if getattr(ElastiCacheResponse, _HANDED_OVER, False):
        return
    original = ElastiCacheResponse.modify_replication_group

    def modify_replication_group(self: Any) -> Any:
        backend = self.elasticache_backend
        if backend.__dict__.get("_sandbox_time") is None:
            return original(self)
        group = backend.modify_replication_group(
            replication_group_id=self._get_param("ReplicationGroupId"),
            replication_group_description=self._get_param("ReplicationGroupDescription"),
            engine=self._get_param("Engine"),
            cache_node_type=self._get_param("CacheNodeType"),
            automatic_failover_enabled=self._get_bool_param("AutomaticFailoverEnabled"),
            multi_az_enabled=self._get_bool_param("MultiAZEnabled"),
            snapshot_retention_limit=self._get_int_param("SnapshotRetentionLimit"),
            transit_encryption_enabled=self._get_bool_param("TransitEncryptionEnabled"),
            transit_encryption_mode=self._get_param("TransitEncryptionMode"),
            auth_token=self._get_param("AuthToken"),
            auth_token_update_strategy=self._get_param("AuthTokenUpdateStrategy"),
        )
        return ActionResult({"ReplicationGroup": group})

    ElastiCacheResponse.modify_replication_group = modify_replication_group  # type: ignore[method-assign]
    setattr(ElastiCacheResponse, _HANDED_OVER, True)


# Secrets Manager --------------------------------------------------------------------------------

_FIXED = "_rexctl_sandbox_secret_versions"


def fix_secret_versions() -> None:
    """Make moto's Secrets Manager answer UpdateSecretVersionStage as AWS does: refuse what AWS
    refuses given the secret's labels (`rules.check_secret`: moving a label attached to another
    version needs RemoveFromVersionId naming it), and, once AWSCURRENT moved, answer
    GetSecretValue without a version (and ECS starting a task) from the version that carries it.
    Patched on moto's backend class, once: every backend (also one made after a reset) has it."""
    from moto.secretsmanager.exceptions import InvalidParameterException
    from moto.secretsmanager.models import SecretsManagerBackend

    if getattr(SecretsManagerBackend, _FIXED, False):
        return
    original = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(
        self: Any,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str,
        move_to_version_id: str,
    ) -> tuple[str, str]:
        secret = self.secrets.get(secret_id)
        if secret is not None:
            state = rules.SecretState(
                {v: tuple(d["version_stages"]) for v, d in secret.versions.items()}
            )
            request = {"VersionStage": version_stage, "MoveToVersionId": move_to_version_id,
                       "RemoveFromVersionId": remove_from_version_id}  # fmt: skip
            refused = rules.check_secret(
                state, "secretsmanager", "UpdateSecretVersionStage",
                {k: v for k, v in request.items() if v},
            )  # fmt: skip
            if refused:
                raise InvalidParameterException(rules.refusal(refused)["Error"]["Message"])
        result: tuple[str, str] = original(
            self, secret_id, version_stage, remove_from_version_id, move_to_version_id
        )
        secret = self.secrets.get(secret_id)
        if secret is not None and version_stage == "AWSCURRENT":
            current = next(
                (v for v, d in secret.versions.items() if "AWSCURRENT" in d["version_stages"]),
                None,
            )
            if current is not None:
                secret.set_default_version_id(current)
        return result

    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
    setattr(SecretsManagerBackend, _FIXED, True)
