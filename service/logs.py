"""Log lines, cheap enough for one per request.

A `LogSink` formats each line as text (`2025-01-31T12:00:00.123Z INFO ✅ Redis ready`) or as one
JSON object (`{"ts": ..., "level": "info", "msg": "✅ Redis ready", ...}`) and hands it to a
writer (stdout by default). Per-request lines are appended to a list and written by a background
task every `flush_interval` seconds (one write syscall per batch instead of one per request);
every other line is written at once, after whatever is buffered, so the order is kept. The buffer is
also written when it grows past `max_buffered` lines and on shutdown (`close()`).

Secrets given to the sink are replaced by `***` in every non-request line (request lines only hold
fixed text and numbers). The standard `logging` records of uvicorn go through the same sink
(`SinkHandler`), so LOG_FORMAT=json covers them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable

Writer = Callable[[str], None]


def stdout_writer(fd: int | None = None) -> Writer:
    """Write straight to the stdout file descriptor, whatever sys.stdout's buffering is."""
    if fd is None:
        try:
            fd = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # stdout replaced by an in-memory stream
            return _text_writer
    target = fd

    def write(text: str) -> None:
        data = text.encode("utf-8", "replace")
        while data:
            written = os.write(target, data)
            data = data[written:]

    return write


def _text_writer(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class LogSink:
    def __init__(
        self,
        fmt: str = "text",
        writer: Writer | None = None,
        *,
        secrets: Iterable[str] = (),
        flush_interval: float = 0.1,
        max_buffered: int = 2000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.json = fmt == "json"
        self._writer = writer or stdout_writer()
        self._secrets = [s for s in secrets if s]
        self._buffer: list[str] = []
        self._flush_interval = flush_interval
        self._max_buffered = max_buffered
        self._clock = clock
        self._second = -1
        self._stamp = ""
        self._task: asyncio.Task[None] | None = None

    # -- lines ----------------------------------------------------------------------------------
    def log(self, level: str, msg: str, **fields: object) -> None:
        """A line written at once (state changes, errors, start-up)."""
        for secret in self._secrets:
            msg = msg.replace(secret, "***")
            fields = {k: _redact(v, secret) for k, v in fields.items()}
        self._buffer.append(self._format(level, msg, fields))
        self.flush()

    def info(self, msg: str, **fields: object) -> None:
        self.log("info", msg, **fields)

    def warning(self, msg: str, **fields: object) -> None:
        self.log("warning", msg, **fields)

    def error(self, msg: str, **fields: object) -> None:
        self.log("error", msg, **fields)

    def request(
        self, method: str, path: str, status: int, source: str, ms: float, note: str
    ) -> None:
        """One buffered line: `GET /api/products 200 source: "cache" (near) 0.05 ms`."""
        if self.json:
            line = self._format(
                "info",
                f'{method} {path} {status} source: "{source}" ({note}) {ms:.2f} ms',
                {"method": method, "path": path, "status": status, "source": source,
                 "cache": note, "duration_ms": round(ms, 3)},
            )  # fmt: skip
        else:
            line = (
                f'{self._timestamp()} INFO {method} {path} {status} source: "{source}" '
                f"({note}) {ms:.2f} ms\n"
            )
        buffer = self._buffer
        buffer.append(line)
        if len(buffer) >= self._max_buffered or self._task is None:
            self.flush()

    def _format(self, level: str, msg: str, fields: dict[str, object]) -> str:
        if self.json:
            record = {"ts": self._timestamp(), "level": level, "msg": msg, **fields}
            return json.dumps(record, ensure_ascii=False, default=str) + "\n"
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        return f"{self._timestamp()} {level.upper()} {msg}{extra}\n"

    def _timestamp(self) -> str:
        now = self._clock()
        second = int(now)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    # -- flushing -------------------------------------------------------------------------------
    def flush(self) -> None:
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        with contextlib.suppress(OSError):  # a closed stdout must not fail a request
            self._writer(text)

    def start(self) -> None:
        """Start the background flusher (call inside the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            self.flush()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.flush()


def _redact(value: object, secret: str) -> object:
    return value.replace(secret, "***") if isinstance(value, str) else value


class SinkHandler(logging.Handler):
    """Send standard `logging` records (uvicorn's) through a LogSink."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.exc_info:
                # the traceback text only: never frame locals, which may hold the token
                msg = f"{msg}\n{logging.Formatter().formatException(record.exc_info)}"
            fields = {"logger": record.name} if self.sink.json else {}
            self.sink.log(record.levelname.lower(), msg, **fields)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def route_standard_logging(sink: LogSink, level: int = logging.INFO) -> None:
    """Point the root logger (and uvicorn's loggers, which do not propagate) at the sink."""
    handler = SinkHandler(sink)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
