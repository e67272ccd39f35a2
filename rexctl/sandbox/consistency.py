"""EC2's eventual consistency for a new security group, in front of the sandbox's moto server.

EC2 documents that its API is eventually consistent: a resource just created may not be found by
the calls that follow, which then fail with its `*.NotFound` error code, and clients are to retry
with backoff ("Eventual consistency in the Amazon EC2 API", EC2 API reference). For security
groups that is `InvalidGroup.NotFound` right after CreateSecurityGroup. moto finds everything at
once, so a client that does not retry passes against moto and fails against AWS.

`Consistency` is a WSGI middleware around moto's app. For NEW_GROUP_INVISIBLE_SECONDS after a
CreateSecurityGroup succeeded (its answer names the new `groupId`), an EC2 request that names that
group id is answered as EC2 answers it, HTTP 400:

    <Response><Errors><Error><Code>InvalidGroup.NotFound</Code>
    <Message>The security group 'sg-...' does not exist</Message></Error></Errors>
    <RequestID>...</RequestID></Response>

and moto never sees it. "Names" means: `GroupId.N` of DescribeSecurityGroups; `GroupId` of
Authorize/RevokeSecurityGroupIngress/Egress and DeleteSecurityGroup; a source group of theirs
(`IpPermissions.N.Groups.M.GroupId`). Limits: filters (`group-id`, `group-name` in
DescribeSecurityGroups or DescribeSecurityGroupRules) see the group at once; other services that
take a group id (ElastiCache SecurityGroupIds, ECS awsvpcConfiguration) are not delayed; the
window is fixed, where AWS's varies.

Only groups created while the middleware is `armed` are affected: the daemon arms it after it
seeded the world, whose groups are meant to exist long before step 1. Requests it cannot read go
to moto unchanged; an error of its own never breaks the sandbox (moto answers).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

NEW_GROUP_INVISIBLE_SECONDS = 0.5
MAX_BODY = 1024 * 1024  # EC2 requests naming groups are small; a larger body is not read

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_GROUP_ID = re.compile(rb"<groupId>\s*(sg-[0-9a-zA-Z]+)\s*</groupId>")
_SOURCE_GROUP = re.compile(r"^IpPermissions\.\d+\.Groups\.\d+\.GroupId$")
_NAMED_BY_GROUP_ID = frozenset(
    {
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",
        "DeleteSecurityGroup",
    }
)


def named_groups(form: dict[str, str]) -> list[str]:
    """The security-group ids an EC2 request (its form parameters) names directly."""
    action = form.get("Action", "")
    if action == "DescribeSecurityGroups":
        return [v for k, v in form.items() if re.fullmatch(r"GroupId\.\d+", k)]
    if action in _NAMED_BY_GROUP_ID:
        ids = [form["GroupId"]] if form.get("GroupId") else []
        return ids + [v for k, v in form.items() if _SOURCE_GROUP.match(k)]
    return []


def not_found(group_id: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """EC2's answer for a security group it does not find (yet)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        "<Response><Errors><Error><Code>InvalidGroup.NotFound</Code>"
        f"<Message>The security group '{group_id}' does not exist</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()
    headers = [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body)))]
    return "400 Bad Request", headers, body


def _is_ec2(environ: WSGIEnvironment) -> bool:
    match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return match is not None and match.group(1).lower() == "ec2"


class Consistency:
    """WSGI middleware: a new security group stays invisible to calls naming it for `window`
    seconds after its creation (see the module's docstring)."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        window: float = NEW_GROUP_INVISIBLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        armed: bool = True,
    ) -> None:
        self.app = app
        self.window = window
        self.clock = clock
        self.armed = armed
        self._created: dict[str, float] = {}  # group id -> when CreateSecurityGroup answered
        self._lock = threading.Lock()
        # (action, group id) of the latest requests answered InvalidGroup.NotFound
        self.refused: deque[tuple[str, str]] = deque(maxlen=100)

    @classmethod
    def install(cls, server: Any, **kwargs: Any) -> Consistency:
        """Wrap the app of a started moto ThreadedMotoServer (whatever already wraps it)."""
        wsgi = getattr(server, "_server", None)
        if wsgi is None or not callable(getattr(wsgi, "app", None)):
            raise RuntimeError("moto's ThreadedMotoServer keeps no WSGI server in _server")
        middleware = cls(wsgi.app, **kwargs)
        wsgi.app = middleware
        return middleware

    def invisible(self, group_id: str) -> bool:
        with self._lock:
            created = self._created.get(group_id)
            if created is None:
                return False
            if self.clock() - created < self.window:
                return True
            del self._created[group_id]
            return False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            form = self._form(environ) if self.window > 0 and _is_ec2(environ) else None
        except Exception:
            log.warning("could not read an EC2 request; moto answers it", exc_info=True)
            form = None
        if form is None:
            return self.app(environ, start_response)
        for group_id in named_groups(form):
            if self.invisible(group_id):
                action = form.get("Action", "")
                with self._lock:
                    self.refused.append((action, group_id))
                print(f"sandbox: {action} naming {group_id} answered InvalidGroup.NotFound "
                      "(eventual consistency)", flush=True)  # fmt: skip
                status, headers, body = not_found(group_id)
                start_response(status, headers)
                return [body]
        if form.get("Action") == "CreateSecurityGroup" and self.armed:
            return self._remember(environ, start_response)
        return self.app(environ, start_response)

    def _remember(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        status: list[str] = []

        def start(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        result = self.app(environ, start)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        match = _GROUP_ID.search(body)
        if status and status[0].startswith("200") and match:
            with self._lock:
                self._created[match.group(1).decode()] = self.clock()
        return [body]

    @staticmethod
    def _form(environ: WSGIEnvironment) -> dict[str, str] | None:
        """The request's form parameters (body, then URL); `wsgi.input` is re-wound for moto."""
        length_header = str(environ.get("CONTENT_LENGTH") or "0")
        length = int(length_header) if length_header.isdigit() else -1
        if length < 0 or length > MAX_BODY:
            return None
        stream = environ.get("wsgi.input")
        data = stream.read(length) if stream is not None and length else b""
        environ["wsgi.input"] = io.BytesIO(data)
        form: dict[str, str] = {}
        for source in (data.decode("utf-8", errors="replace"), str(environ.get("QUERY_STRING"))):
            for key, value in parse_qsl(source, keep_blank_values=True):
                form.setdefault(key, value)
        return form
