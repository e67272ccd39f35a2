"""Property-based (hypothesis): whatever body a client POSTs, the service answers 2xx or 4xx.

Through Starlette's TestClient, which raises any exception the app lets out (a 500 would fail the
example too). One app per test; examples share it (and its database).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.exceptions import StarletteDeprecationWarning

from service.app import create_app
from service.logs import LogSink
from service.validation import FORBIDDEN, MAX_NAME
from tests.service.conftest import settings_for

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 to the httpx installed here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow],
)

# Any code point, surrogates included, and more often the ones the parser must care about.
SPECIAL = ["\ud800", "\udfff", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029", "\u202e",
           "\u200d", "\ufeff", "[", "{", "]", "}", '"', "\\", " ", "é", "😀"]  # fmt: skip
CHARS = st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL))
TEXT = st.text(CHARS, max_size=250)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)
OBJECTS = st.one_of(
    st.fixed_dictionaries({"name": st.one_of(TEXT, VALUES)}),
    st.fixed_dictionaries({"name": TEXT}, optional={"price": VALUES, "id": st.integers()}),
    st.dictionaries(TEXT, VALUES, max_size=3),
)


def encoded(value: Any, ensure_ascii: bool) -> bytes:
    # surrogatepass: a lone surrogate becomes the three bytes UTF-8 forbids (ensure_ascii=False),
    # or the JSON escape \udxxx (ensure_ascii=True)
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


BODIES = st.one_of(
    st.binary(max_size=400),
    st.builds(encoded, st.one_of(OBJECTS, VALUES), st.booleans()),
    st.builds(
        lambda n, inner, close: b"[" * n + inner + (b"]" * n if close else b""),
        st.integers(0, 6000),
        st.sampled_from([b"", b"1", b'{"name": "x"}', b'"a']),
        st.booleans(),
    ),
    st.builds(lambda n: b'{"name": ' + b'{"a": ' * n + b"1" + b"}" * (n + 1), st.integers(0, 80)),
)


def check(status: int, body: dict[str, Any]) -> None:
    assert 200 <= status < 500, (status, body)
    if status == 201:
        name = body["name"]
        assert type(body["id"]) is int and isinstance(name, str)
        assert 1 <= len(name) <= MAX_NAME and name == name.strip()
        assert FORBIDDEN.search(name) is None
    else:
        assert 400 <= status < 500 and isinstance(body["error"], str)


def test_any_body_answers_2xx_or_4xx(tmp_path: Path) -> None:
    lines: list[str] = []
    app = create_app(settings_for(tmp_path, DB_DELAY_MS=0), log=LogSink("text", lines.append))
    content_types = st.sampled_from(
        [None, "application/json", "text/plain; charset=latin-1", "application/json; charset="]
    )

    with TestClient(app) as client:

        @EXAMPLES
        @given(body=BODIES, content_type=content_types)
        def post(body: bytes, content_type: str | None) -> None:
            headers = {"content-type": content_type} if content_type else {}
            response = client.post("/api/products", content=body, headers=headers)
            check(response.status_code, response.json())

        post()
        assert client.get("/api/products").status_code == 200
    log = "".join(lines)
    assert "Traceback" not in log and " 500" not in log and "ERROR" not in log


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_any_json_value_answers_2xx_or_4xx(tmp_path: Path, ensure_ascii: bool) -> None:
    app = create_app(settings_for(tmp_path, DB_DELAY_MS=0), log=LogSink("text", lambda _: None))
    with TestClient(app) as client:

        @settings(EXAMPLES, max_examples=100)
        @given(value=st.one_of(OBJECTS, VALUES))
        def post(value: Any) -> None:
            response = client.post("/api/products", content=encoded(value, ensure_ascii))
            check(response.status_code, response.json())

        post()
