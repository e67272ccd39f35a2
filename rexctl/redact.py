"""What a secret is, decided in one place, and how rexctl hides it before printing or writing.

The rule, in words:

* A *name* (an environment variable, a dict key, a URL query parameter) holds a secret when one of
  its word parts is a secret word. Names are split into word parts on `_`, `-`, `.`, any other
  non-alphanumeric character and camelCase boundaries (`X-Amz-Security-Token`, `AuthToken`,
  `AWSAccessKeyId`), and whole parts are compared, never substrings: `DB_PASS` is secret,
  `PASSENGER` and `BYPASS_CACHE` are not; `REDIS_AUTH_TOKEN` is, `AUTHOR` is not. The secret
  words are TOKEN, PASSWORD, PASSWD, PASS, PWD, PW, PASSPHRASE, SECRET, KEY, CREDENTIAL(S), CREDS,
  PRIVATE, DSN, WEBHOOK, AUTH, AUTHORIZATION, SIGNATURE, SIGNING, SIG, COOKIE, SALT (plurals too),
  and the run-together forms APIKEY, AUTHTOKEN, ACCESSTOKEN, SECRETKEY, PRIVATEKEY, ... .
* Known-harmless uses of a secret word stay visible: KEY followed by PREFIX, SPACE, NAMESPACE,
  PATTERN or SEPARATOR (`CACHE_KEY_PREFIX`, `KEY_SPACE`) or preceded by PRIMARY, SORT, PARTITION,
  FOREIGN or PUBLIC (schema words and public keys); PRIVATE followed by a network word
  (`PRIVATE_SUBNETS`, `PRIVATE_IP`); the bare `PWD` (the shell's working directory).
* A name whose last part is ARN, NAME or ENABLED names a *reference* or a switch, not the secret
  (`SECRET_ARN`, `SECRET_NAME`, `REDIS_AUTH_ENABLED`), and a value that is an AWS ARN is always
  shown: an ARN says where a secret lives and who may read it, which is what a reader of a plan
  or a journal needs to check, and reading it does not give the secret away. For the same reason
  the structural keys of ECS and rexctl data (`valueFrom`, `secretArn`, `secret_arn`,
  `secret_name`, `secret_id`, `auth_token_secret`) are never redacted.
* Whatever the name, credentials inside URLs are hidden: the password of `scheme://user:pw@host`
  (`scheme://user:(redacted)@host`), a lone user part (`scheme://key@host`, the key of a Sentry
  DSN), the whole path of webhook URLs whose path is the secret (hooks.slack.com, hooks.*,
  discord.com/api/webhooks/..., *.webhook.office.com, outlook.office.com/webhook/...), and the
  values of query (or fragment) parameters with secret names (`token=`, `sig=`, `key=`,
  `X-Amz-Signature=`, `X-Amz-Credential=`, `access_token=`, ...). Scheme, host, port, path and
  the other parameters stay visible, so `redis://cache.local:6379/0` prints as it is.
* Text that is unmistakably a credential is hidden wherever it appears: PEM private key blocks,
  JWTs, AWS access key IDs (AKIA.../ASIA...), GitHub tokens (ghp_..., github_pat_...) and Slack
  tokens (xoxb-...).
* In free text, the known secret values given by the caller are replaced when they are at least
  8 characters long; shorter ones (`""`, `"a"`) would garble the message without protecting
  anything.

Everything is replaced by `REDACTED`; an empty value stays empty (so "not set" stays visible).
In data, a string, number or bytes under a secret key is replaced, `true`/`false`/`null` are kept
(`AuthTokenEnabled: true` says nothing secret), and dicts and lists under it are looked into;
`{"name": N, "value": V}` and `{"Key": N, "Value": V}` pairs are judged by N.
Every function returns new objects and never mutates its input. Stdlib only, cheap to import:
the root CLI may use it before every command.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = [
    "REDACTED",
    "is_secret_name",
    "redact_data",
    "redact_env",
    "redact_text",
    "redact_value",
]

REDACTED = "(redacted)"
MIN_SECRET_LENGTH = 8  # given secrets shorter than this are not replaced in free text

_WORD_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

_SECRET_PARTS = frozenset(
    {
        "TOKEN",
        "TOKENS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PWD",
        "PW",
        "PASSPHRASE",
        "SECRET",
        "SECRETS",
        "KEY",
        "KEYS",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "PRIVATE",
        "DSN",
        "WEBHOOK",
        "WEBHOOKS",
        "AUTH",
        "AUTHORIZATION",
        "SIGNATURE",
        "SIGNATURES",
        "SIGNING",
        "SIG",
        "COOKIE",
        "COOKIES",
        "SALT",
        # run-together forms (`apikey`, `authToken` split as `auth`+`Token` anyway)
        "APIKEY",
        "AUTHTOKEN",
        "ACCESSTOKEN",
        "REFRESHTOKEN",
        "SESSIONTOKEN",
        "ACCESSKEY",
        "ACCESSKEYID",
        "SECRETKEY",
        "PRIVATEKEY",
        "CLIENTSECRET",
    }
)
_HARMLESS_AFTER_KEY = frozenset({"PREFIX", "SPACE", "NAMESPACE", "PATTERN", "SEPARATOR"})
_HARMLESS_BEFORE_KEY = frozenset({"PRIMARY", "SORT", "PARTITION", "FOREIGN", "PUBLIC"})
_NETWORK_WORDS = frozenset(
    {
        "SUBNET",
        "SUBNETS",
        "IP",
        "IPS",
        "IPV4",
        "IPV6",
        "ADDRESS",
        "ADDRESSES",
        "DNS",
        "NETWORK",
        "ZONE",
        "LINK",
        "ENDPOINT",
        "HOST",
        "HOSTNAME",
        "CIDR",
        "ROUTE",
    }
)
_REFERENCE_SUFFIXES = frozenset({"ARN", "NAME", "ENABLED"})
# keys (compared lowercased, alphanumerics only) that hold references to secrets, not secrets
_STRUCTURAL_KEYS = frozenset(
    {"valuefrom", "secretarn", "secretname", "secretid", "authtokensecret"}
)
_LABEL_KEYS = ("name", "Name", "key", "Key")
_VALUE_KEYS = ("value", "Value")

_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]*:\S+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# a URL in text ends at whitespace, a quote, `<`/`>` or where the next `scheme://` begins
_URL = re.compile(rf"{_SCHEME.pattern}(?:(?!{_SCHEME.pattern})[^\s<>\"'`])+")
_WHOLE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_PORTLESS = re.compile(r":[0-9]*$")
_USERINFO_COLON = re.compile(r":(?![0-9]*$)")  # a colon that does not start a port
_TRAILING_PUNCTUATION = ".,;:!?)]}"
_KNOWN_TOKENS = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
    r"|\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}",
    re.DOTALL,
)
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_DISCORD_HOSTS = frozenset(
    {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}
)


def _parts(name: str) -> list[str]:
    return [p.upper() for p in _WORD_PART.findall(name)]


def is_secret_name(name: str) -> bool:
    """Whether a variable, key or parameter called `name` holds a secret (see the module rule)."""
    parts = _parts(name)
    if not parts or parts == ["PWD"]:
        return False
    if len(parts) > 1 and parts[-1] in _REFERENCE_SUFFIXES:
        return False
    for i, part in enumerate(parts):
        if part not in _SECRET_PARTS:
            continue
        before = parts[i - 1] if i else ""
        after = parts[i + 1] if i + 1 < len(parts) else ""
        if part in ("KEY", "KEYS") and (
            after in _HARMLESS_AFTER_KEY or before in _HARMLESS_BEFORE_KEY
        ):
            continue
        if part == "PRIVATE" and after in _NETWORK_WORDS:
            continue
        return True
    return False


def _is_structural(key: str) -> bool:
    return "".join(_WORD_PART.findall(key)).lower() in _STRUCTURAL_KEYS


def _redact_params(params: str) -> str:
    """`a=1&token=x` -> `a=1&token=(redacted)`; separators and order are kept."""
    out = []
    for piece in re.split(r"([&;])", params):
        key, eq, value = piece.partition("=")
        out.append(f"{key}={REDACTED}" if eq and value and is_secret_name(key) else piece)
    return "".join(out)


def _is_webhook(host: str, path: str) -> bool:
    if path in ("", "/"):
        return False
    if host.startswith("hooks.") or host.endswith(".webhook.office.com"):
        return True
    if host == "outlook.office.com":
        return path.startswith("/webhook")
    return host in _DISCORD_HOSTS and path.startswith("/api/webhooks")


def _authority_end(after: str) -> int:
    """Where the `[userinfo@]host[:port]` after `scheme://` ends: at the first `/`, `?` or `#`."""
    found = [i for i in (after.find(sep) for sep in "/?#") if i >= 0]
    return min(found, default=len(after))


def _userinfo_end(after: str) -> int:
    """The index of the `@` that ends the userinfo in what follows `scheme://`, or -1.

    Passwords are often pasted unencoded (`user:pa@ss/w#rd@host`), so a host part that still
    holds a colon not followed by a port number means the password went on to a later `@`."""
    end = _authority_end(after)
    at = after.rfind("@", 0, end)
    if after.startswith("[") or (at < 0 and not _USERINFO_COLON.search(after[:end])):
        return at
    while True:
        start = at + 1
        host = after[start : start + _authority_end(after[start:])]
        later = after.find("@", start)
        if host.startswith("[") or not _USERINFO_COLON.search(host) or later < 0:
            return at
        at = later


def _redact_url(url: str) -> str:
    """One URL with its credentials hidden (see the module rule)."""
    match = _SCHEME.match(url)
    if match is None:
        return url
    scheme, after = match.group(), url[match.end() :]
    at = _userinfo_end(after)
    userinfo = ""
    if at >= 0:
        user, colon, password = after[:at].partition(":")
        if colon:
            userinfo = f"{user}:{REDACTED if password else ''}@"
        else:
            userinfo = f"{REDACTED if user else ''}@"
        after = after[at + 1 :]
    end = _authority_end(after)
    hostport, rest = after[:end], after[end:]
    host = _PORTLESS.sub("", hostport).lower()
    path, _, fragment = rest.partition("#")
    path, qmark, query = path.partition("?")
    if _is_webhook(host, path):
        return f"{scheme}{userinfo}{hostport}/{REDACTED}"
    out = f"{scheme}{userinfo}{hostport}{path}"
    if qmark:
        out += "?" + _redact_params(query)
    if "#" in rest:
        out += "#" + (_redact_params(fragment) if "=" in fragment else fragment)
    return out


def _redact_url_in_text(match: re.Match[str]) -> str:
    url = match.group()
    stripped = url.rstrip(_TRAILING_PUNCTUATION)
    return _redact_url(stripped) + url[len(stripped) :]


def _redact_string(text: str) -> str:
    """Known credential formats and URL credentials hidden in a string of any kind."""
    text = _KNOWN_TOKENS.sub(REDACTED, text)
    if _WHOLE_URL.fullmatch(text) and len(_SCHEME.findall(text)) == 1:
        return _redact_url(text)  # a value that is one URL: quotes in its password are kept in
    return _URL.sub(_redact_url_in_text, text)


def redact_value(name: str, value: str) -> str:
    """`value` fit to print as the value of `name`: `REDACTED` for a secret name (an empty value
    stays empty, an ARN is shown), else the value with URL credentials and known token formats
    hidden."""
    if not value:
        return value
    if is_secret_name(name) and not _ARN.fullmatch(value):
        return REDACTED
    return _redact_string(value)


def _percent_encoded(text: str) -> str:
    """`text` as `urllib.parse.quote(text, safe="")` writes it (without importing urllib)."""
    return "".join(chr(b) if chr(b) in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """A message fit to print: each given secret of 8+ characters (and its percent-encoded form)
    replaced by `REDACTED`, URL credentials and known token formats hidden."""
    known = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
    known |= {_percent_encoded(s) for s in known}
    for secret in sorted(known, key=len, reverse=True):  # a longer secret may contain a shorter
        text = text.replace(secret, REDACTED)
    return _redact_string(text)


def redact_env(pairs: list[dict[str, str]]) -> list[dict[str, str]]:
    """ECS-style `[{"name": N, "value": V}, ...]` with each value redacted by its name; other
    keys (`valueFrom` of a `secrets` entry) are kept."""
    return [
        {**pair, "value": redact_value(pair.get("name", ""), pair["value"])}
        if isinstance(pair.get("value"), str)
        else dict(pair)
        for pair in pairs
    ]


def _under_secret(name: str, value: Any) -> Any:
    """`value` found under the secret name `name`."""
    if isinstance(value, str):
        return redact_value(name, value)
    if value is None or isinstance(value, bool):
        return value  # a switch (`AuthTokenEnabled: true`) or an absence says nothing secret
    if isinstance(value, dict):
        return redact_data(value)
    if isinstance(value, list):
        return [_under_secret(name, v) for v in value]
    if isinstance(value, tuple):
        return tuple(_under_secret(name, v) for v in value)
    return REDACTED  # numbers, bytes, anything else that could carry the secret


def _label(value: dict[Any, Any]) -> tuple[str, str] | None:
    """(label key, label) when `value` is a `{"name"/"key": N, "value": V}` pair."""
    if not any(k in value for k in _VALUE_KEYS):
        return None
    for key in _LABEL_KEYS:
        if isinstance(value.get(key), str):
            return key, value[key]
    return None


def redact_data(value: Any) -> Any:
    """A copy of a JSON-like structure (dicts, lists, tuples, strings) fit to print or write:
    values under secret-named keys redacted (structural keys such as `valueFrom` or
    `secret_arn` kept), `{"name": N, "value": V}` and `{"Key": N, "Value": V}` pairs redacted by
    N, and URL credentials hidden in every string. Never mutates `value`."""
    if isinstance(value, dict):
        label = _label(value)
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if label is not None and k == label[0]:
                out[k] = v
            elif label is not None and k in _VALUE_KEYS:
                out[k] = _under_secret(label[1], v) if is_secret_name(label[1]) else redact_data(v)
            elif isinstance(k, str) and not _is_structural(k) and is_secret_name(k):
                out[k] = _under_secret(k, v)
            else:
                out[k] = redact_data(v)
        return out
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_data(v) for v in value)
    if isinstance(value, str):
        return _redact_string(value)
    return value
