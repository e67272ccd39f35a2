"""The common part of the Python test backends (stdlib only): the guide's cache-aside on
GET /api/products, a Redis client that speaks RESP over a socket, and the HTTP server.

Each backend file (no_reconnect.py, exits_on_error.py) chooses how its Redis link behaves on an
error. The environment is the task's: PORT, REDIS_ENABLED, REDIS_HOST, REDIS_PORT, DB_DELAY_MS.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "products:all"
PRODUCTS = [{"id": 1, "name": "Laptop"}, {"id": 2, "name": "Phone"}]


def log(message: str) -> None:
    print(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {message}", flush=True)


class RedisLink:
    """One Redis connection with a timeout on every call (`timeout` seconds). After an error
    `on_error(exc)` decides what happens next: by default the connection is simply dropped and
    the next call opens a new one."""

    def __init__(
        self, timeout: float = 0.3, on_error: Callable[[RedisLink, Exception], None] | None = None
    ) -> None:
        self.enabled = os.environ.get("REDIS_ENABLED") == "true"
        self.host = os.environ.get("REDIS_HOST", "127.0.0.1")
        self.port = int(os.environ.get("REDIS_PORT", "6379"))
        self.timeout = timeout
        self.on_error = on_error or (lambda link, exc: None)
        self.sock: socket.socket | None = None
        self.reader: Any = None
        self.closed_for_good = False
        self.lock = threading.Lock()

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.reader = self.sock.makefile("rb")
        self._send("PING")
        log("✅ Redis ready")

    def _send(self, *args: str) -> Any:
        assert self.sock is not None
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            data = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(out)
        line = self.reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2].decode()
        if kind == b"-":
            raise RuntimeError(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.reader.read(n + 2)[:-2].decode()
        return rest

    def drop(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None

    def command(self, *args: str) -> Any:
        if not self.enabled or self.closed_for_good:
            raise ConnectionError("Redis is not in use")
        with self.lock:
            try:
                if self.sock is None:
                    self._connect()
                return self._send(*args)
            except Exception as exc:
                log(f"⚠️ Redis error (ignored): {exc or type(exc).__name__}")
                self.drop()
                self.on_error(self, exc)
                raise


def products(link: RedisLink) -> dict[str, Any]:
    try:
        cached = link.command("GET", KEY)
        if cached:
            return {"source": "cache", "data": json.loads(cached)}
    except Exception:
        pass  # logged by the link; answer from the database
    time.sleep(int(os.environ.get("DB_DELAY_MS", "300")) / 1000)
    with contextlib.suppress(Exception):
        link.command("SET", KEY, json.dumps(PRODUCTS), "EX", "60")
    return {"source": "db", "data": PRODUCTS}


def serve(link: RedisLink) -> None:
    """GET /api/products and GET /health (always 200) on 127.0.0.1:$PORT, until SIGTERM."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/health":
                status, body = 200, {"ok": True}
            elif self.path == "/api/products":
                status, body = 200, products(link)
            else:
                status, body = 404, {"error": "not found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "3000"))), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if link.enabled:
        with contextlib.suppress(Exception):
            link.command("PING")
    log("listening")
    server.serve_forever()
