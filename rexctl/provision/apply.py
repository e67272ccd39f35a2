"""Executors: apply a plan's actions, or (for `--dry-run`) only show them.

The executor keeps what it created, so a failure half way can say exactly what exists now; every
resource was tagged in the call that created it, and re-running `rexctl provision` continues from
there because the plan treats what exists as done. The AUTH token lives only inside the executor
and is scrubbed from any error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import elasticache as ec_api
from rexctl.aws import secrets as sm_api
from rexctl.aws.session import Clients
from rexctl.errors import Interrupted, RexctlError
from rexctl.provision.model import Action, Ref, Reporter
from rexctl.redact import redact_text


class DisplayOnlyExecutor:
    """`--dry-run`: says what would happen, calls nothing."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.done: list[str] = []

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            self.reporter.info(f"Would {action.summary} (step {action.step}).")
            self.done.append(action.summary)


class Executor:
    def __init__(
        self,
        clients: Clients,
        reporter: Reporter,
        *,
        token_factory: Callable[[], str] = sm_api.generate_auth_token,
    ) -> None:
        self.clients = clients
        self.reporter = reporter
        self.token_factory = token_factory
        self.outputs: dict[str, Any] = {}
        self.done: list[str] = []
        self._secrets: list[str] = []

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                self.execute(action)
            except RexctlError as exc:
                raise type(exc)(self.redact(exc.message), hint=self._partial(exc.hint)) from None
            except KeyboardInterrupt:
                raise Interrupted("Interrupted.", hint=self._partial(None)) from None
            self.done.append(action.summary)
            self.reporter.success(f"Step {action.step}: {action.summary}.")

    def redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    def _partial(self, hint: str | None) -> str:
        parts = [self.redact(hint)] if hint else []
        if self.done:
            parts.append(
                "Done before this failed: " + "; ".join(self.done) + ". Everything rexctl created "
                "is tagged managed-by=rexctl. Run `rexctl provision` again: it continues from "
                "there."
            )
        else:
            parts.append("Nothing was changed.")
        return "\n".join(parts)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return self.outputs[value.name]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _token(self, token: str, secret: str = "") -> str:
        self._secrets.append(token)  # redacted from any later message, usable or not
        problem = sm_api.token_problem(token)
        if problem and secret:
            raise RexctlError(
                f"The AUTH token stored in secret {secret} is not usable: {problem}.",
                hint="Put a valid token in it (`aws secretsmanager put-secret-value`), or delete "
                "it so that rexctl generates one.",
            )
        if problem:
            raise RexctlError(f"The AUTH token is not usable: {problem}.")
        self.outputs["auth_token"] = token
        return token

    def execute(self, action: Action) -> None:
        p = self.resolve(action.params)
        c = self.clients
        match action.kind:
            case "create_subnet_group":
                ec_api.create_subnet_group(
                    c.elasticache,
                    p["CacheSubnetGroupName"],
                    p["CacheSubnetGroupDescription"],
                    p["SubnetIds"],
                    p["Tags"],
                )
            case "create_security_group":
                self.outputs["cache_sg_id"] = ec2_api.create_security_group(
                    c.ec2, p["GroupName"], p["VpcId"], p["Description"], p["Tags"]
                )
            case "authorize_ingress":
                ec2_api.authorize_from_group(
                    c.ec2,
                    p["GroupId"],
                    p["Port"],
                    p["SourceGroup"],
                    "rexctl: from the ECS service tasks",  # EC2's character set: no apostrophe
                    p["Tags"],
                )
            case "create_auth_secret":
                token = self._token(self.token_factory())
                self.outputs["auth_secret_arn"] = sm_api.create_secret(
                    c.secretsmanager,
                    p["Name"],
                    token,
                    "rexctl: AUTH token of the ElastiCache replication group",
                    p["Tags"],
                )
            case "read_auth_secret":
                self._token(sm_api.read_secret(c.secretsmanager, p["SecretId"]), p["SecretId"])
            case "create_replication_group":
                ec_api.create_replication_group(c.elasticache, p)
            case "modify_replication_group":
                ec_api.modify_replication_group(c.elasticache, p)
            case _:  # pragma: no cover - the plan only builds the kinds above
                raise RexctlError(f"Unknown action {action.kind}.")
