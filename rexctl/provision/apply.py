"""Executors: apply a plan's actions, or (for `--dry-run`) only show them.

The executor keeps what it created, so a failure half way can say exactly what exists now; every
resource was tagged in the call that created it, and re-running `rexctl provision` continues from
there because the plan treats what exists as done. The AUTH token lives only inside the executor
and is scrubbed from any error message. What is sent is what the plan checked: both take their
requests from `rexctl.provision.requests`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rexctl.aws import ec2 as ec2_api
from rexctl.aws import elasticache as ec_api
from rexctl.aws import secrets as sm_api
from rexctl.aws.session import Clients
from rexctl.errors import AwsError, Interrupted, RexctlError
from rexctl.provision.model import Action, Reporter
from rexctl.provision.requests import Request, requests, resolve, violations
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
    """Sends each action's requests (`rexctl.provision.requests`: the same ones the plan
    checked), resolving the values only known while applying.

    `settle(params)` waits until the replication group shows the change a ModifyReplicationGroup
    asked for (ElastiCache refuses a modify while the group is still modifying, and may still
    show `available` with the old values right after the call): it runs before the next modify,
    and the last one is left in `unconfirmed` for the caller's final wait.
    """

    def __init__(
        self,
        clients: Clients,
        reporter: Reporter,
        *,
        token_factory: Callable[[], str] = sm_api.generate_auth_token,
        sleep: Callable[[float], None] = time.sleep,
        settle: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        self.clients = clients
        self.reporter = reporter
        self.token_factory = token_factory
        self.sleep = sleep
        self.settle = settle
        self.outputs: dict[str, Any] = {}
        self.done: list[str] = []
        self.unconfirmed: dict[str, Any] | None = None  # the last modify, not yet seen applied
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

    def keep_secret(self, token: str) -> None:
        """A token read or made outside `execute` (TLS/AUTH later): redacted from messages too."""
        self._secrets.append(token)

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
        return resolve(value, self.outputs)

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
        if action.kind == "create_auth_secret":
            self._token(self.token_factory())
        for planned in requests(action):
            request = Request(planned.service, planned.operation, self.resolve(planned.params))
            refused = violations(request)
            if refused:  # a value only known now breaks a rule the plan could not check
                raise AwsError(
                    "AWS would refuse this request, so rexctl did not send it: "
                    + " ".join(v.message() for v in refused)
                )
            self.send(request)

    def send(self, request: Request) -> None:
        c = self.clients
        p = request.params
        match request.operation:
            case "CreateCacheSubnetGroup":
                ec_api.send_create_subnet_group(c.elasticache, p)
            case "CreateSecurityGroup":
                self.outputs["cache_sg_id"] = ec2_api.send_create_security_group(c.ec2, p)
            case "AuthorizeSecurityGroupIngress":
                # A group created a moment ago may not be found yet: retried with backoff.
                ec2_api.send_authorize_ingress(c.ec2, p, sleep=self.sleep)
            case "CreateSecret":
                self.outputs["auth_secret_arn"] = sm_api.send_create_secret(
                    c.secretsmanager, p, sleep=self.sleep
                )
            case "GetSecretValue":
                self._token(sm_api.read_secret(c.secretsmanager, p["SecretId"]), p["SecretId"])
            case "CreateReplicationGroup":
                ec_api.send_create_replication_group(c.elasticache, p)
            case "ModifyReplicationGroup":
                if self.unconfirmed is not None and self.settle is not None:
                    self.settle(self.unconfirmed)
                ec_api.modify_replication_group(c.elasticache, p)
                self.unconfirmed = p
            case _:  # pragma: no cover - `requests` only builds the operations above
                raise RexctlError(f"Unknown request {request.operation}.")
