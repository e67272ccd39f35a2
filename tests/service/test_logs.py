"""LogSink: text and JSON lines, buffered request lines, secrets redacted."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from service.logs import LogSink, SinkHandler

pytestmark = pytest.mark.anyio

NOW = 1_767_225_600.125  # 2026-01-01T00:00:00.125Z


def test_text_lines() -> None:
    lines: list[str] = []
    sink = LogSink("text", lines.append, clock=lambda: NOW)
    sink.warning("⚠️ Redis unavailable at startup")
    sink.request("GET", "/api/products", 200, "db", 1501.234, "miss")
    assert lines == [
        "2026-01-01T00:00:00.125Z WARNING ⚠️ Redis unavailable at startup\n",
        '2026-01-01T00:00:00.125Z INFO GET /api/products 200 source: "db" (miss) 1501.23 ms\n',
    ]


def test_json_lines_carry_the_same_message() -> None:
    lines: list[str] = []
    sink = LogSink("json", lines.append, clock=lambda: NOW)
    sink.info("✅ Redis ready")
    sink.request("GET", "/api/products", 200, "cache", 0.0512, "near")
    first, second = (json.loads(line) for line in "".join(lines).splitlines())
    assert first == {"ts": "2026-01-01T00:00:00.125Z", "level": "info", "msg": "✅ Redis ready"}
    assert second["msg"] == 'GET /api/products 200 source: "cache" (near) 0.05 ms'
    assert (second["source"], second["status"], second["cache"]) == ("cache", 200, "near")
    assert "✅" in lines[0]  # not \\u2705: grep finds the same text in both formats


async def test_request_lines_are_batched_and_flushed_on_close() -> None:
    writes: list[str] = []
    sink = LogSink("text", writes.append, flush_interval=60)
    sink.start()
    for _ in range(3):
        sink.request("GET", "/api/products", 200, "cache", 0.01, "near")
    assert writes == []  # buffered: one write per batch, not one per request
    sink.info("✅ Redis ready")  # an event line goes out at once, after what is buffered
    assert len(writes) == 1 and writes[0].count("\n") == 4
    assert writes[0].rstrip().endswith("✅ Redis ready")
    sink.request("GET", "/api/products", 200, "cache", 0.01, "near")
    await sink.close()
    assert len(writes) == 2 and 'source: "cache"' in writes[1]


async def test_the_background_task_flushes_promptly() -> None:
    writes: list[str] = []
    sink = LogSink("text", writes.append, flush_interval=0.02)
    sink.start()
    sink.request("GET", "/api/products", 200, "db", 1.0, "miss")

    for _ in range(100):
        if writes:
            break
        await asyncio.sleep(0.01)
    await sink.close()
    assert writes and 'source: "db"' in writes[0]


def test_secrets_are_redacted_in_messages_and_fields() -> None:
    lines: list[str] = []
    sink = LogSink("json", lines.append, secrets=["hunter2-token"])
    sink.warning("⚠️ Redis error (ignored): bad hunter2-token", detail="x hunter2-token")
    handler = SinkHandler(sink)
    handler.emit(logging.LogRecord("uvicorn.error", logging.ERROR, "", 0, "auth hunter2-token",
                                   None, None))  # fmt: skip
    text = "".join(lines)
    assert "hunter2-token" not in text and text.count("***") == 3
