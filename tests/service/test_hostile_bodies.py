"""Issue 11: any POST body answers 2xx or 4xx, never 5xx nor a traceback; a write that waits for
the SQLite lock answers 503 + Retry-After within its bound and never holds up reads of the list."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import ServiceProcess
from tests.service.conftest import FAST, running, settings_for

pytestmark = pytest.mark.anyio

SEED_DATA = [{"id": 1, "name": "Laptop"}, {"id": 2, "name": "Phone"}]
NESTED = "body nests deeper than 32 levels"
SURROGATE = "body holds a lone UTF-16 surrogate (\\ud800-\\udfff)"

# (body, status, error); every one answered 500 (RecursionError, UnicodeEncodeError) or was
# accepted before issue 11.
HOSTILE: list[tuple[bytes, int, str]] = [
    (b"[" * 5000, 400, NESTED),
    (b'{"name": ' + b"[" * 10_000, 400, NESTED),  # fits in 16 KiB: unclosed
    (b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400, NESTED),
    (b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", 413, "body larger than 16384 bytes"),
    (b'{"name": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2000 + b"}", 400, NESTED),
    (b'{"name":"ab\\ud800cd"}', 400, SURROGATE),
    (b'{"name":"ab\\udfffcd"}', 400, SURROGATE),
    (b'{"name":"x", "\\ud800": 1}', 400, SURROGATE),  # in a key, echoed by "unknown field(s)"
    (b'{"name":"ab\xed\xa0\x80cd"}', 400, "body is not valid UTF-8 (byte 11)"),  # UTF-8 surrogate
    (b'\xff\xfe{\x00"\x00', 400, "body is not valid UTF-8 (byte 0)"),
    (b'{"name":"caf\xe9"}', 400, "body is not valid UTF-8 (byte 12)"),  # Latin-1
    (b'{"name": NaN}', 400, "body is not valid JSON: NaN is not a JSON value"),
    (b'{"name": -Infinity}', 400, "body is not valid JSON: -Infinity is not a JSON value"),
    (b'{"name": 1' + b"0" * 6000 + b"}", 422, "name must be a string"),
    (b'{"name": "a", "name": "b"}', 422, "an object repeats a field"),
    (b'"Tablet"', 422, 'body must be a JSON object like {"name": "Tablet"}'),
    (b"null", 422, 'body must be a JSON object like {"name": "Tablet"}'),
    ('{"name": "a\u0085b"}'.encode(), 422, "name must not contain control characters (U+0085)"),
    (b'{"name": "a\\u0085b"}', 422, "name must not contain control characters (U+0085)"),
    (b'{"name": "a\\u009fb"}', 422, "name must not contain control characters (U+009F)"),
    (b'{"name": "a\\u2028b"}', 422, "name must not contain control characters (U+2028)"),
    (b'{"name": "a\\u2029b"}', 422, "name must not contain control characters (U+2029)"),
    (b'{"name": "abc\\u202edcba"}', 422, "name must not contain control characters (U+202E)"),
    (b'{"name": "a\\u0000b"}', 422, "name must not contain control characters (U+0000)"),
    (b'{"x' + b"y" * 100 + b'": 1}', 422,
     f"unknown field(s): x{'y' * 39}...; only name is accepted"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "error"), HOSTILE)
async def test_hostile_bodies_answer_4xx_without_a_traceback(
    tmp_path: Path, body: bytes, status: int, error: str
) -> None:
    async with running(settings_for(tmp_path)) as h:
        response = await h.client.post("/api/products", content=body)
        assert (response.status_code, response.json()) == (status, {"error": error})
        assert response.headers["content-type"] == "application/json"
        assert (await h.products()).json()["data"] == SEED_DATA
        log = h.log()
    assert "Traceback" not in log and " 500" not in log and "ERROR" not in log


async def test_a_non_utf8_charset_answers_415(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path)) as h:
        refused = await h.client.post(
            "/api/products",
            content='{"name": "Tablet"}'.encode("utf-16"),
            headers={"content-type": "application/json; charset=UTF-16"},
        )
        assert (refused.status_code, refused.json()) == (
            415,
            {"error": "unsupported charset utf-16: the body must be UTF-8"},
        )
        accepted = await h.client.post(
            "/api/products",
            content=b'{"name": "Tablet"}',
            headers={"content-type": 'application/json; charset="utf-8"'},
        )
        assert accepted.status_code == 201


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ('{"name": "👩\u200d💻 Dev"}'.encode(), "👩\u200d💻 Dev"),  # ZWJ (Cf) is allowed
        (b'{"name": "\\ud83d\\ude00"}', "😀"),  # an escaped surrogate *pair* is one character
        ('\ufeff{"name": "Tablet"}'.encode(), "Tablet"),  # a UTF-8 BOM is ignored
        (b'{"name": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', "[" * 42),  # not nesting
        (b'{"name": "\\tTablet\\u0085\\n"}', "Tablet"),  # whitespace ends are trimmed
    ],
)
async def test_what_is_still_accepted(tmp_path: Path, body: bytes, name: str) -> None:
    async with running(settings_for(tmp_path)) as h:
        response = await h.client.post("/api/products", content=body)
        assert (response.status_code, response.json()) == (201, {"id": 3, "name": name})


def test_the_process_logs_no_traceback_for_hostile_bodies(tmp_path: Path) -> None:
    """Through uvicorn, which logs a traceback for any exception an ASGI app lets out."""
    service = ServiceProcess({**FAST, "DB_DELAY_MS": "0"}, tmp_path)
    service.start()
    try:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            for body, status, _error in HOSTILE:
                assert client.post("/api/products", content=body).status_code == status
            assert client.get("/api/products").json()["data"] == SEED_DATA
    finally:
        service.stop()
    log = service.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert " 500" not in log and "ERROR" not in log


@pytest.fixture
def write_lock(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction on the service's file: `BEGIN IMMEDIATE`, held."""
    conn = sqlite3.connect(tmp_path / "products.sqlite3", isolation_level=None)
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.rollback()
        conn.close()


async def test_a_held_write_lock_gives_503_and_never_holds_up_reads(
    tmp_path: Path, write_lock: sqlite3.Connection
) -> None:
    # The default DB_WRITE_TIMEOUT_MS (3000); Redis disabled, so every GET reads the database.
    async with running(settings_for(tmp_path, DB_DELAY_MS=0)) as h:
        wait = h.app.state.settings.db_write_timeout
        assert wait == 3.0
        write_lock.execute("BEGIN IMMEDIATE")

        async def post(name: str) -> tuple[httpx.Response, float]:
            started = time.monotonic()
            response = await h.client.post("/api/products", json={"name": name})
            return response, time.monotonic() - started

        started = time.monotonic()
        posts = [asyncio.create_task(post(f"P{i}")) for i in range(3)]
        await asyncio.sleep(0.3)  # the first POST waits for the lock, the others behind it
        for _ in range(3):
            before = time.monotonic()
            response = await h.products()
            took = time.monotonic() - before
            assert response.json() == {"source": "db", "data": SEED_DATA}
            assert took < 1.0, f"a GET took {took:.2f} s behind a waiting write"
        assert not any(task.done() for task in posts)

        answers = await asyncio.gather(*posts)
        total = time.monotonic() - started
        for response, took in answers:
            assert (response.status_code, response.json()) == (
                503,
                {"error": "the database is busy, retry later"},
            )
            assert response.headers["retry-after"] == "3"
            assert took < wait + 1.5  # each write's wait counts from its call, queueing included
        assert wait - 0.5 < answers[0][1]  # the first one did wait
        assert total < wait + 1.5  # not 3 writes x 3 s

        write_lock.rollback()  # the other process commits or gives up: writes go through again
        created = await h.client.post("/api/products", json={"name": "Tablet"})
        assert (created.status_code, created.json()) == (201, {"id": 3, "name": "Tablet"})
        assert (await h.products()).json()["data"][-1] == {"id": 3, "name": "Tablet"}
        log = h.log()
    assert log.count("WARNING POST /api/products 503: write: the database stayed locked") == 3
    assert "Traceback" not in log and "ERROR" not in log


async def test_a_write_that_may_not_wait_fails_at_once(
    tmp_path: Path, write_lock: sqlite3.Connection
) -> None:
    async with running(settings_for(tmp_path, DB_DELAY_MS=0, DB_WRITE_TIMEOUT_MS=0)) as h:
        assert (await h.client.post("/api/products", json={"name": "A"})).status_code == 201
        write_lock.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        refused = await h.client.post("/api/products", json={"name": "B"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert time.monotonic() - started < 1.0
        write_lock.rollback()


async def test_the_read_and_write_connections_are_separate(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path, DB_DELAY_MS=0)) as h:
        store = h.cache.store
        assert store.journal_mode == "wal"
        await h.products()
        assert (await h.client.post("/api/products", json={"name": "Tablet"})).status_code == 201
        readers = list(store._readers)
        assert readers and store._writer is not None and store._writer not in readers
        # a reader may not write, whatever a bug would send it
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            readers[0].execute("DELETE FROM products")
        assert json.loads((await h.products()).text)["data"][-1]["name"] == "Tablet"
