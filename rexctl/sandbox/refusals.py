"""The sandbox refuses what AWS refuses: `rexctl.aws.rules`, applied in front of moto.

moto accepts requests that AWS refuses (a rule description with an apostrophe, an AuthToken
without in-transit encryption, a Fargate task definition with awslogs and no execution role).
So that a rehearsal fails where AWS would, the sandbox's moto server runs behind `Refusals`, a
WSGI middleware that, for every request:

1. identifies the service: the SigV4 credential scope (`Credential=AKID/date/region/SERVICE/
   aws4_request` in the Authorization header, or `X-Amz-Credential` in a presigned query
   string), else the `X-Amz-Target` prefix of a JSON service, else the form's `Version` (an
   unsigned query request). Only the services `rules.COVERED` names are considered (ec2,
   elasticache, ecs, secretsmanager); anything else goes straight to moto, its body unread.
2. identifies the operation: `X-Amz-Target: <targetPrefix>.<Operation>` (JSON protocol), the
   form's `Action` (query and ec2 protocols). An operation `rules.COVERED` does not name goes
   to moto undecoded.
3. decodes the request back into the boto3 method's kwargs by walking the operation's input
   shape in botocore's service model, mirroring botocore's serializers (`botocore/serialize.py`)
   exactly, so that `decode(serialize(kwargs)) == kwargs`:
   - JSON (ecs, secretsmanager, logs): the body is the kwargs; members renamed by a `name`
     trait are renamed back, blobs are base64-decoded, timestamps become aware datetimes.
   - query (elasticache): flattened form parameters. A list is `Prefix.<member name or
     "member">.N`, or `Prefix.N` / `<member name>.N` when the shape is `flattened`; an empty list
     is `Prefix=` (empty); a map is `Prefix.entry.N.key` / `.value` (names from the shapes).
     Members use their `locationName` when they have one.
   - ec2: like query, but every list is `Prefix.N`, and members use their `queryName`, else
     their capitalized `locationName` (`IpPermissions.1.Groups.1.GroupId` is
     `IpPermissions[0].UserIdGroupPairs[0].GroupId`; `TagSpecification.1.Tag.1.Key` is
     `TagSpecifications[0].Tags[0].Key`).
   Scalars are converted by shape type: integer/long `int`, boolean `true`/`false` (any case),
   float/double `float`, blob base64 to `bytes`, timestamp ISO 8601 to an aware datetime.
4. runs `rules.check(service, operation, kwargs)`. No violation: the request goes to moto
   unchanged (its body is re-wound for it). Violations: the middleware answers itself, HTTP 400,
   in the service's own error format (`answer`), and moto never sees the request:
   - ec2: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`
   - query: `<ErrorResponse xmlns="<the service's xmlNamespace>"><Error><Type>Sender</Type>
     <Code/><Message/></Error><RequestId/></ErrorResponse>`
   - JSON: `x-amzn-ErrorType: CODE` and `{"__type": CODE, "message": MSG}`.
   The code and message are `rules.refusal(violations)`'s: the first violation's code, every
   violation in the message. botocore parses them into `Error.Code` / `Error.Message`.

Never break the sandbox: a request that cannot be decoded (not UTF-8, not JSON, an operation the
model does not know, a scalar that does not convert, a compressed or over-large body) goes to
moto as it came; an unexpected error in the middleware is logged and the request goes to moto.

Limits:

- Only what `rules.py` holds is refused; everything else is moto's answer (moto's own
  validation, or none).
- The code and message format are AWS's, the message text is rules.py's (it names the rule and
  where AWS documents it), not AWS's wording. AWS's HTTP headers beyond the request id and
  content type (x-amz-id-2 and the like) are not imitated.
- Unknown form parameters and JSON members (a newer API than botocore's model) are ignored, so
  rules on them do not apply. A repeated form parameter counts once (its first value).
- The wrapped app is swapped into moto's ThreadedMotoServer right after it starts (moto builds
  its WSGI app inside the server thread and offers no hook). The server listens on a port chosen
  by the system, unknown to anyone until `start_server` returns, so no request can reach moto
  unchecked in between.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import io
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.utils import parse_timestamp

from rexctl.aws import rules

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from moto.server import ThreadedMotoServer

__all__ = [
    "MAX_BODY",
    "Answer",
    "Refusals",
    "Undecodable",
    "answer",
    "decode",
    "decode_form",
    "decode_json",
    "start_server",
]

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024  # a larger body is not read here (no request rules.py checks is)

_PROTOCOLS = ("ec2", "query", "json")
_CREDENTIAL = re.compile(r"Credential=([^,\s]+)")
# Characters XML 1.0 allows; anything else is written as \uXXXX.
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Undecodable(Exception):
    """The request cannot be turned back into boto3 kwargs: it goes to moto unchecked."""


class _Missing:
    """Marker: the parameter is not in the request."""


_MISSING = _Missing()


# --- decoding ---------------------------------------------------------------------------------


def decode(operation: OperationModel, body: bytes, query_string: str = "") -> dict[str, Any]:
    """The boto3 kwargs of a request to `operation`, from its body (and URL query string).

    The service model's protocol says how: JSON for "json", flattened form parameters for
    "query" and "ec2". Raises `Undecodable` when the request does not decode.
    """
    protocol = operation.service_model.protocol
    if protocol == "json":
        if not body.strip():
            return decode_json(operation, {})
        try:
            document = json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError
            raise Undecodable(f"the body is not JSON: {exc}") from None
        return decode_json(operation, document)
    if protocol in ("query", "ec2"):
        return decode_form(operation, _form(body, query_string))
    raise Undecodable(f"protocol {protocol!r} is not decoded")


def _form(body: bytes, query_string: str = "") -> dict[str, str]:
    """Form parameters of the body, then of the URL; the first value of a name counts."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Undecodable("the body is not UTF-8") from None
    form: dict[str, str] = {}
    for source in (text, query_string):
        for key, value in parse_qsl(source, keep_blank_values=True):
            form.setdefault(key, value)
    return form


def decode_json(operation: OperationModel, document: Any) -> dict[str, Any]:
    """The boto3 kwargs of a JSON-protocol request whose body parsed to `document`."""
    if not isinstance(document, dict):
        raise Undecodable("the JSON body is not an object")
    shape = operation.input_shape
    if shape is None:
        return {}
    value = _json(shape, document)
    assert isinstance(value, dict)
    return value


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (int, float, str),
    "double": (int, float, str),
}


def _json(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return value
        if not isinstance(value, dict):
            raise Undecodable(f"{shape.name} is not an object")
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            raw = value.get(member.serialization.get("name", name))
            if raw is not None:
                out[name] = _json(member, raw)
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise Undecodable(f"{shape.name} is not a list")
        return [_json(shape.member, item) for item in value]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise Undecodable(f"{shape.name} is not an object")
        return {key: _json(shape.value, item) for key, item in value.items()}
    if kind == "blob":
        if not isinstance(value, str):
            raise Undecodable(f"{shape.name} is not base64 text")
        return _base64(value)
    if kind == "timestamp":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
        if isinstance(value, str):
            return _timestamp(value)
        raise Undecodable(f"{shape.name} is not a timestamp")
    types = _JSON_TYPES.get(kind)
    if (
        types is None
        or not isinstance(value, types)
        or (isinstance(value, bool) and kind != "boolean")
    ):
        raise Undecodable(f"{shape.name} ({kind}) is {type(value).__name__}")
    if isinstance(value, str) and kind in ("float", "double"):
        return _float(value)  # "Infinity", "-Infinity", "NaN"
    return value


def decode_form(operation: OperationModel, form: Mapping[str, str]) -> dict[str, Any]:
    """The boto3 kwargs of a query- or ec2-protocol request with these form parameters."""
    shape = operation.input_shape
    if shape is None:
        return {}
    reader = _FormReader(form, ec2=operation.service_model.protocol == "ec2")
    return reader.structure(shape, "")


class _FormReader:
    """Un-flattens form parameters, mirroring botocore's QuerySerializer and EC2Serializer."""

    def __init__(self, form: Mapping[str, str], ec2: bool) -> None:
        self.form = form
        self.ec2 = ec2
        # Every dotted prefix of every name ("A.1.B" gives "A", "A.1", "A.1.B"): which subtrees
        # are present, so that the walk visits only what the request holds (shapes may recurse).
        self.prefixes: set[str] = set()
        for key in form:
            parts = key.split(".")
            for i in range(1, len(parts) + 1):
                self.prefixes.add(".".join(parts[:i]))

    def name(self, shape: Shape, default: str) -> str:
        """The serialized name: `_get_serialized_name` of the serializer."""
        serialization = shape.serialization
        if self.ec2:
            if "queryName" in serialization:
                return str(serialization["queryName"])
            if "name" in serialization:
                name = str(serialization["name"])
                return name[:1].upper() + name[1:]  # a locationName is capitalized on input
            return default
        return str(serialization.get("name", default))

    def indices(self, prefix: str) -> list[int]:
        """N of every `prefix.N` present, in order."""
        start = prefix + "."
        found: set[int] = set()
        for p in self.prefixes:
            if p.startswith(start):
                rest = p[len(start) :]
                if rest.isdigit() and rest.isascii():
                    found.add(int(rest))
        return sorted(found)

    def value(self, shape: Shape, prefix: str) -> Any:
        if isinstance(shape, StructureShape):
            if prefix not in self.prefixes:
                return _MISSING
            out = self.structure(shape, prefix)
            return out if out else _MISSING
        if isinstance(shape, ListShape):
            return self.list(shape, prefix)
        if isinstance(shape, MapShape):
            return self.map(shape, prefix)
        raw = self.form.get(prefix)
        if raw is None:
            return _MISSING
        return _scalar(shape, raw)

    def structure(self, shape: StructureShape, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = self.name(member, name)
            path = f"{prefix}.{key}" if prefix else key
            value = self.value(member, path)  # a flattened list is not under `path`
            if value is not _MISSING:
                out[name] = value
        return out

    def list(self, shape: ListShape, prefix: str) -> Any:
        member = shape.member
        if self.ec2:
            list_prefix = prefix
        elif shape.serialization.get("flattened"):
            list_prefix = prefix
            if member.serialization.get("name"):
                name = self.name(member, "")
                list_prefix = ".".join([*prefix.split(".")[:-1], name])
        else:
            list_prefix = f"{prefix}.{member.serialization.get('name', 'member')}"
        indices = self.indices(list_prefix)
        if not indices:
            if not self.ec2 and self.form.get(prefix) == "":
                return []  # the query protocol sends an empty list as `Prefix=`
            return _MISSING
        items: list[Any] = []
        for i in indices:
            item = self.value(member, f"{list_prefix}.{i}")
            if item is _MISSING:
                if not isinstance(member, StructureShape):
                    raise Undecodable(f"{list_prefix}.{i} is not a {member.type_name}")
                item = {}
            items.append(item)
        return items

    def map(self, shape: MapShape, prefix: str) -> Any:
        full = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = self.name(shape.key, "key")
        value_name = self.name(shape.value, "value")
        indices = self.indices(full)
        if not indices:
            return _MISSING
        out: dict[Any, Any] = {}
        for i in indices:
            key = self.value(shape.key, f"{full}.{i}.{key_name}")
            value = self.value(shape.value, f"{full}.{i}.{value_name}")
            if key is _MISSING or value is _MISSING:
                raise Undecodable(f"{full}.{i} lacks its key or value")
            out[key] = value
        return out


def _scalar(shape: Shape, raw: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            return int(raw)
        except ValueError:
            raise Undecodable(f"{shape.name} is not an integer: {raw!r}") from None
    if kind == "boolean":
        lowered = raw.lower()
        if lowered not in ("true", "false"):
            raise Undecodable(f"{shape.name} is not a boolean: {raw!r}")
        return lowered == "true"
    if kind in ("float", "double"):
        return _float(raw)
    if kind == "blob":
        return _base64(raw)
    if kind == "timestamp":
        return _timestamp(raw)
    if kind == "string":
        return raw
    raise Undecodable(f"{shape.name}: type {kind!r} is not decoded")


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise Undecodable(f"not a number: {raw!r}") from None


def _base64(raw: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise Undecodable("a blob is not base64") from None


def _timestamp(raw: str) -> datetime.datetime:
    try:
        return parse_timestamp(raw)
    except (ValueError, TypeError, OverflowError):
        raise Undecodable(f"not a timestamp: {raw!r}") from None


# --- answering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """An HTTP response: WSGI status line, headers, body."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


def _xml(text: str) -> str:
    return escape(_XML_INVALID.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def answer(service: ServiceModel, violations: list[rules.Violation]) -> Answer:
    """The HTTP 400 the service answers a refused request with, in its own error format."""
    error = rules.refusal(violations)["Error"]
    code, message = str(error["Code"]), str(error["Message"])
    request_id = str(uuid.uuid4())
    protocol = service.protocol
    if protocol == "json":
        version = service.metadata.get("jsonVersion", "1.1")
        body = json.dumps({"__type": code, "message": message}).encode("utf-8")
        headers = [
            ("Content-Type", f"application/x-amz-json-{version}"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ]
    elif protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Errors><Error><Code>{_xml(code)}</Code>"
            f"<Message>{_xml(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif protocol == "query":
        namespace = service.metadata.get(
            "xmlNamespace",
            f"http://{service.endpoint_prefix}.amazonaws.com/doc/{service.api_version}/",
        )
        body = (
            f'<ErrorResponse xmlns="{_xml(namespace)}"><Error><Type>Sender</Type>'
            f"<Code>{_xml(code)}</Code><Message>{_xml(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    else:
        raise ValueError(f"no error format for protocol {protocol!r}")
    headers.append(("Content-Length", str(len(body))))
    return Answer("400 Bad Request", headers, body)


# --- the middleware ---------------------------------------------------------------------------


class _Services:
    """botocore's models of the services rules.py covers, and how a request names each."""

    def __init__(self, session: botocore.session.Session | None = None) -> None:
        session = session or botocore.session.get_session()
        names = sorted({service for service, _ in rules.COVERED})
        self.models: dict[str, ServiceModel] = {}
        self.by_signing_name: dict[str, str] = {}
        self.by_target: dict[str, str] = {}
        self.by_version: dict[str, str] = {}
        for name in names:
            model = session.get_service_model(name)
            if model.protocol not in _PROTOCOLS:
                continue  # a protocol this module does not decode: its requests pass
            self.models[name] = model
            self.by_signing_name[model.signing_name or model.endpoint_prefix] = name
            target = model.metadata.get("targetPrefix")
            if model.protocol == "json" and target:
                self.by_target[str(target)] = name
            elif model.protocol != "json":
                self.by_version[model.api_version] = name
        self._lock = threading.Lock()
        self._operations: dict[tuple[str, str], OperationModel] = {}

    def operation(self, service: str, name: str) -> OperationModel | None:
        if (service, name) not in rules.COVERED:
            return None  # nothing to check: not even decoded
        model = self.models[service]
        if name not in model.operation_names:
            return None
        with self._lock:  # botocore caches lazily; requests arrive on many threads
            key = (service, name)
            if key not in self._operations:
                self._operations[key] = model.operation_model(name)
            return self._operations[key]


def _signing_service(environ: WSGIEnvironment) -> str | None:
    """The service of the SigV4 credential scope, if the request is signed."""
    credential: str | None = None
    match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if match:
        credential = match.group(1)
    else:
        for key, value in parse_qsl(str(environ.get("QUERY_STRING", ""))):
            if key == "X-Amz-Credential":
                credential = value
    if credential is None:
        return None
    scope = credential.split("/")
    if len(scope) < 5 or scope[-1] != "aws4_request":
        return None
    return scope[-2].lower()


def _read_body(environ: WSGIEnvironment) -> bytes:
    """The request body; `wsgi.input` is replaced by a copy, so the app reads it as sent."""
    if environ.get("HTTP_CONTENT_ENCODING", "identity").lower() not in ("", "identity"):
        raise Undecodable("a compressed body")
    length_header = environ.get("CONTENT_LENGTH") or ""
    try:
        length = int(length_header) if length_header else None
    except ValueError:
        raise Undecodable(f"Content-Length {length_header!r}") from None
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length is None:
        if not environ.get("wsgi.input_terminated"):
            return b""  # no length and not chunked: no body
        data = stream.read(MAX_BODY + 1)
        environ["wsgi.input"] = io.BytesIO(data + stream.read())
        if len(data) > MAX_BODY:
            raise Undecodable("the body is too large to check")
        return bytes(data)
    if length > MAX_BODY:
        raise Undecodable("the body is too large to check")
    data = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(data)
    return bytes(data)


class Refusals:
    """WSGI middleware: answer what `rules.check` refuses as AWS does; pass the rest to `app`."""

    def __init__(self, app: WSGIApplication, session: botocore.session.Session | None = None):
        self.app = app
        self.services = _Services(session)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            refused = self.refuse(environ)
        except Undecodable:
            refused = None
        except Exception:
            log.warning("could not check a request against AWS's rules", exc_info=True)
            refused = None
        if refused is None:
            return self.app(environ, start_response)
        start_response(refused.status, refused.headers)
        return [refused.body]

    def refuse(self, environ: WSGIEnvironment) -> Answer | None:
        """AWS's answer when `rules.check` refuses the request; None to let moto answer."""
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        service = _signing_service(environ)
        body: bytes | None = None
        if service is None:  # unsigned: the target header, else the form's Version
            if target:
                service = self.services.by_target.get(target.split(".", 1)[0])
            elif str(environ.get("CONTENT_TYPE", "")).startswith(
                "application/x-www-form-urlencoded"
            ):
                body = _read_body(environ)
                version = _form(body, str(environ.get("QUERY_STRING", ""))).get("Version", "")
                service = self.services.by_version.get(version)
        else:
            service = self.services.by_signing_name.get(service)
        if service is None:
            return None
        model = self.services.models[service]
        if body is None:
            body = _read_body(environ)
        query_string = str(environ.get("QUERY_STRING", ""))
        if model.protocol == "json":
            prefix, _, name = target.partition(".")
            if prefix != model.metadata.get("targetPrefix"):
                return None
            form: dict[str, str] | None = None
        else:
            form = _form(body, query_string)
            name = form.get("Action", "")
        operation = self.services.operation(service, name)
        if operation is None:
            return None
        params = decode_form(operation, form) if form is not None else decode(operation, body)
        violations = rules.check(service, name, params)
        if not violations:
            return None
        refused = answer(model, violations)
        log.info("refused %s %s: %s", service, name, violations[0].code)
        return refused


def start_server(ip_address: str = "127.0.0.1") -> ThreadedMotoServer:
    """A started moto ThreadedMotoServer whose app runs behind `Refusals`.

    It listens on a free port the system picks (`get_host_and_port()` tells which), so nothing
    can reach it before the app is wrapped; `stop()` stops it as usual.
    """
    from moto.server import ThreadedMotoServer

    refusals = Refusals(_not_started)  # botocore's models load before moto listens
    server = ThreadedMotoServer(ip_address=ip_address, port=0, verbose=False)
    server.start()
    wsgi = getattr(server, "_server", None)  # moto builds its app in the server thread
    if wsgi is None or not callable(getattr(wsgi, "app", None)):
        server.stop()
        raise RuntimeError("moto's ThreadedMotoServer no longer keeps its WSGI server in _server")
    refusals.app = wsgi.app
    wsgi.app = refusals
    return server


def _not_started(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("503 Service Unavailable", [("Content-Length", "0")])
    return [b""]
