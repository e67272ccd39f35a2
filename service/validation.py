"""Validation of `POST /api/products` bodies: `{"name": "<1 to 200 characters>"}`, nothing else.

Every body answers a product name or raises `InvalidProduct` with a 4xx status; nothing a client
sends reaches an exception the service does not expect:

- the bytes must be UTF-8 (a leading BOM is ignored): 400 otherwise, whatever Content-Type says;
  a Content-Type naming another charset answers 415;
- the nesting depth is counted on the text before `json.loads` sees it (at most `MAX_DEPTH`
  arrays/objects deep: 400), so the parser never recurses far enough for a RecursionError;
- JSON syntax errors, `NaN`/`Infinity` and lone UTF-16 surrogates (`"\\ud800"`, which no UTF-8
  text can hold and SQLite cannot store) answer 400; numbers are never turned into ints, so a
  5,000-digit number costs nothing;
- the top level must be an object with exactly the field `name` (no duplicates), a string that,
  trimmed, has 1 to `MAX_NAME` characters and none of the characters `FORBIDDEN` matches: 422.
"""

from __future__ import annotations

import json
import re

MAX_BODY_BYTES = 16 * 1024
MAX_NAME = 200
MAX_DEPTH = 32
FIELDS = frozenset({"name"})

# A JSON string literal (possibly unterminated), or one bracket. Strings are matched whole so the
# brackets inside them are not counted. The pattern is the unrolled loop: linear, no backtracking.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[{\]}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")
# Refused in a name (Unicode categories): Cc, the C0 and C1 controls with DEL (U+0000-001F,
# U+007F-009F: tab, newline, U+0085 NEL); Zl and Zp, the line and paragraph separators
# (U+2028, U+2029: they break lines in logs and in JavaScript); and the bidirectional formatting
# characters of Cf (U+061C, U+200E, U+200F, U+202A-202E, U+2066-2069), which make text display in
# another order than it is stored. Other Cf characters are allowed: the zero-width joiners of emoji
# sequences and of Persian or Indic text, the tag characters of subdivision flags.
FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class InvalidProduct(ValueError):
    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def check_content_type(content_type: str | None) -> None:
    """Raise InvalidProduct(415) when Content-Type declares a charset other than UTF-8.

    The media type itself is not checked: the body is parsed as JSON whatever it says (`curl -d`
    sends application/x-www-form-urlencoded).
    """
    if not content_type:
        return
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in _CHARSETS:
                raise InvalidProduct(
                    f"unsupported charset {_shown(charset)}: the body must be UTF-8", 415
                )


def parse_new_product(body: bytes) -> str:
    """The product name in a request body, stripped; raise InvalidProduct (400/422) otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidProduct(f"body is not valid UTF-8 (byte {exc.start})", 400) from None
    text = text.removeprefix("\ufeff")
    check_depth(text)
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_number,
            parse_float=_number,
            parse_constant=_constant,
        )
    except InvalidProduct:
        raise
    except RecursionError:  # not reached: check_depth bounds the nesting well below the limit
        raise InvalidProduct(f"body nests deeper than {MAX_DEPTH} levels", 400) from None
    except ValueError as exc:
        raise InvalidProduct(f"body is not valid JSON: {exc}", 400) from None
    if _has_surrogate(data):
        raise InvalidProduct("body holds a lone UTF-16 surrogate (\\ud800-\\udfff)", 400)
    if not isinstance(data, dict):
        raise InvalidProduct('body must be a JSON object like {"name": "Tablet"}')
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        shown = ", ".join(_shown(key) for key in unknown[:5]) + (", ..." if unknown[5:] else "")
        raise InvalidProduct(f"unknown field(s): {shown}; only name is accepted")
    if "name" not in data:
        raise InvalidProduct("name is required")
    name = data["name"]
    if not isinstance(name, str):
        raise InvalidProduct("name must be a string")
    name = name.strip()
    if not name:
        raise InvalidProduct("name must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidProduct(f"name must be at most {MAX_NAME} characters")
    found = FORBIDDEN.search(name)
    if found:
        raise InvalidProduct(
            f"name must not contain control characters (U+{ord(found.group()):04X})"
        )
    return name


def check_depth(text: str) -> None:
    """Raise InvalidProduct(400) if arrays/objects nest deeper than MAX_DEPTH in `text`.

    Until the first syntax error, the brackets counted here are exactly those json.loads nests
    into (after one, json.loads stops): so this bounds its recursion whatever the text is.
    """
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidProduct(f"body nests deeper than {MAX_DEPTH} levels", 400)
        elif token in ("]", "}"):
            depth = max(depth - 1, 0)


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise InvalidProduct("an object repeats a field")  # names not shown: not yet checked
    return data


def _number(text: str) -> float:
    # Only `name` is read, and it must be a string: a number's value never matters. float() is
    # linear in the digits and never raises (int() of 5,000 digits does).
    return float(text)


def _constant(text: str) -> object:
    raise InvalidProduct(f"body is not valid JSON: {text} is not a JSON value", 400)


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return not value.isascii() and _SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


def _shown(text: str, limit: int = 40) -> str:
    """Client text quoted in an error message: shortened."""
    return text if len(text) <= limit else text[:limit] + "..."
