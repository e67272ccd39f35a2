"""Ship the tasks' output to CloudWatch Logs (moto), as the awslogs driver does.

Lines are buffered per stream and sent in batches with `put_log_events` every `interval`
seconds, in a worker thread so the event loop never waits on HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any


class LogShipper:
    def __init__(self, logs: Any, interval: float = 0.5) -> None:
        self.logs = logs
        self.interval = interval
        self._buffers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._streams: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, group: str, stream: str, message: str) -> None:
        event = {"timestamp": int(time.time() * 1000), "message": message}
        self._buffers.setdefault((group, stream), []).append(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        batches, self._buffers = self._buffers, {}
        if batches:
            await asyncio.to_thread(self._send, batches)

    def _send(self, batches: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        for (group, stream), events in batches.items():
            try:
                if (group, stream) not in self._streams:
                    self._ensure(group, stream)
                for i in range(0, len(events), 1000):
                    self.logs.put_log_events(
                        logGroupName=group, logStreamName=stream, logEvents=events[i : i + 1000]
                    )
            except Exception as exc:  # the sandbox keeps running; the daemon log says why
                print(f"sandbox: could not ship logs to {group}/{stream}: {exc}", flush=True)

    def _ensure(self, group: str, stream: str) -> None:
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=group)
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self._streams.add((group, stream))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
