"""`python -m service` as the container runs it: start-up, env errors, logs, several processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import RedisServer, ServiceProcess, free_port
from tests.service.conftest import FAST


def redis_env(redis: RedisServer, **extra: str) -> dict[str, str]:
    return {**FAST, "REDIS_ENABLED": "true", "REDIS_HOST": redis.host,
            "REDIS_PORT": str(redis.port), **extra}  # fmt: skip


def wait_for_log(service: ServiceProcess, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := service.log()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged within {timeout}s:\n{log}")
        time.sleep(0.02)
    return log


def stop_with_sigterm(service: ServiceProcess) -> int:
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    code = service.proc.wait(10)
    service.stop()
    return code


def test_the_process_serves_logs_the_guide_lines_and_stops_cleanly(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    token = "tok-in-env-991"
    redis_server.client().config_set("requirepass", token)
    service = ServiceProcess(redis_env(redis_server, REDIS_AUTH_TOKEN=token), tmp_path)
    service.start()
    try:
        with httpx.Client(base_url=service.url, timeout=5) as client:
            assert client.get("/api/products").json()["source"] == "db"
            second = client.get("/api/products")
            assert second.json()["source"] == "cache" and second.headers["x-cache"] == "HIT"
            assert "server" not in second.headers
            assert client.get("/health").json()["redis"]["state"] == "ready"
        log = wait_for_log(service, 'source: "cache"')  # buffered lines still arrive promptly
        assert " INFO ✅ Redis ready (AUTH)\n" in log and 'source: "db"' in log
    finally:
        code = stop_with_sigterm(service)
    log = service.log()
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert "Application shutdown complete." in log
    assert "products service stopped" in log  # flushed on shutdown
    assert token not in log


def test_unreachable_redis_at_start_up_is_not_fatal(tmp_path: Path) -> None:
    env = {
        **FAST,
        "REDIS_ENABLED": "true",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(free_port()),
    }
    service = ServiceProcess(env, tmp_path)
    service.start()
    try:
        with httpx.Client(base_url=service.url, timeout=5) as client:
            assert client.get("/health").status_code == 200
            response = client.get("/api/products")
            assert response.status_code == 200 and response.json()["source"] == "db"
        log = wait_for_log(service, 'source: "db"')
        assert "⚠️ Redis unavailable at startup" in log
        assert "⚠️ Redis error (ignored): connect: Error 111 connecting to" in log
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_PORT": "six"},
         "service: REDIS_PORT='six' is invalid: expected a whole number from 1 to 65535"),
        ({"LOG_FORMAT": "yaml"},
         "service: LOG_FORMAT='yaml' is invalid: expected one of: text, json"),
        ({"DATABASE_PATH": "/nonexistent-dir/p.sqlite3"},
         "service: DATABASE_PATH='/nonexistent-dir/p.sqlite3' is invalid: "
         "directory /nonexistent-dir does not exist"),
    ],
)  # fmt: skip
def test_a_bad_environment_exits_2_with_one_line(env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service"],
        env={**os.environ, "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == message + "\n"
    assert result.stdout == ""


def test_json_log_format_covers_every_line(tmp_path: Path, redis_server: RedisServer) -> None:
    service = ServiceProcess(redis_env(redis_server, LOG_FORMAT="json"), tmp_path)
    service.start()
    try:
        httpx.get(service.url + "/api/products", timeout=5)
        wait_for_log(service, "source: ")
    finally:
        stop_with_sigterm(service)
    records = [json.loads(line) for line in service.log().splitlines()]
    messages = [r["msg"] for r in records]
    assert "✅ Redis ready" in messages
    assert any(r.get("logger") == "uvicorn.error" for r in records)  # uvicorn's lines too
    assert any(r.get("source") == "db" for r in records)


def test_a_write_reaches_another_process_within_the_near_cache_bound(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    shared = {"DATABASE_PATH": str(tmp_path / "shared.sqlite3")}  # default NEAR_CACHE_TTL_MS=1000
    a = ServiceProcess(redis_env(redis_server, **shared), tmp_path)
    b = ServiceProcess(redis_env(redis_server, **shared), tmp_path)
    a.start()
    b.start()
    try:
        with httpx.Client(timeout=5) as client:
            client.get(b.url + "/api/products")
            warm = client.get(b.url + "/api/products")
            assert warm.headers["server-timing"].startswith('cache;desc="near"')
            created = client.post(a.url + "/api/products", json={"name": "Tablet"})
            assert created.status_code == 201
            posted = time.monotonic()
            while True:
                data = client.get(b.url + "/api/products").json()["data"]
                if {"id": 3, "name": "Tablet"} in data:
                    break
                assert time.monotonic() - posted < 5, "B never served the new list"
                time.sleep(0.01)
            assert time.monotonic() - posted <= 1.0 + 0.5  # the documented bound, plus slack
    finally:
        a.stop()
        b.stop()


def test_a_database_path_that_is_not_an_sqlite_file_exits_2(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello\n" * 100)
    cases = [
        (tmp_path, "it is a directory, expected the path of an SQLite file"),
        (not_a_db, "file is not a database"),
    ]
    for path, problem in cases:
        result = subprocess.run(
            [sys.executable, "-m", "service"],
            env={**os.environ, "PORT": str(free_port()), "DATABASE_PATH": str(path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"service: DATABASE_PATH={str(path)!r} is invalid: {problem}\n"
    assert not_a_db.read_text() == "hello\n" * 100  # left as it was
