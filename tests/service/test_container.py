"""The image and compose file, checked as text (no Docker needed) and by running their pieces."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from service.settings import Settings
from tests.helpers import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "service" / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
DOCKERIGNORE = (ROOT / ".dockerignore").read_text(encoding="utf-8")


def instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [
        line[len(name) :].strip() for line in joined.splitlines() if line.startswith(name + " ")
    ]


def test_the_image_runs_the_same_entry_point_as_non_root() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    assert json.loads(instructions("CMD")[0]) == ["python", "-m", "rexctl.service"]
    assert instructions("EXPOSE") == ["3000"]
    users = instructions("USER")
    assert users and users[-1] not in ("root", "0")
    env = " ".join(instructions("ENV"))
    assert "HOST=0.0.0.0" in env and "PORT=3000" in env


def healthcheck_code() -> str:
    (line,) = instructions("HEALTHCHECK")
    command = json.loads(line[line.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"]
    return str(command[2])


def test_the_healthcheck_passes_on_a_live_service_and_fails_without_one(tmp_path: Path) -> None:
    code = healthcheck_code()
    service = ServiceProcess({"DB_DELAY_MS": "0"}, tmp_path)
    service.start()
    try:
        ok = subprocess.run([sys.executable, "-c", code], timeout=20, capture_output=True,
                            env={**os.environ, "PORT": str(service.port)})  # fmt: skip
    finally:
        service.stop()
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run([sys.executable, "-c", code], timeout=20, capture_output=True,
                          env={**os.environ, "PORT": str(free_port())})  # fmt: skip
    assert down.returncode != 0


def test_compose_mirrors_the_seed_and_its_backend_env_is_valid(tmp_path: Path) -> None:
    assert re.search(r"\n  redis:\n    image: redis:7-alpine\n", COMPOSE)
    assert '"6379:6379"' in COMPOSE and '"3000:3000"' in COMPOSE
    assert "dockerfile: service/Dockerfile" in COMPOSE and "context: ." in COMPOSE
    backend = COMPOSE[COMPOSE.index("\n  backend:") :]
    block = backend[backend.index("environment:") : backend.index("ports:")]
    env = dict(re.findall(r"\n      (\w+): \"?([^\"\n]*)\"?", block))
    assert env == {"REDIS_ENABLED": "true", "REDIS_HOST": "redis", "REDIS_PORT": "6379",
                   "PORT": "3000"}  # fmt: skip
    settings = Settings.from_env({**env, "DATABASE_PATH": str(tmp_path / "p.sqlite3")})
    assert (settings.redis_enabled, settings.redis_host, settings.redis_port) == (
        True,
        "redis",
        6379,
    )


def ignored(path: str) -> bool:
    """Docker's rule for these patterns: one matches the path or any of its parent directories;
    a leading `**/` matches any number of directories, including none."""
    patterns = [p.strip() for p in DOCKERIGNORE.splitlines() if p.strip() and p[0] != "#"]
    assert not any(p.startswith("!") for p in patterns)  # no exceptions: this reading suffices
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        variants = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
        if any(fnmatch.fnmatchcase(p, v) for p in prefixes for v in variants):
            return True
    return False


def test_the_build_context_leaves_out_local_state_and_keeps_what_the_image_copies() -> None:
    for path in (".venv/bin/python", ".git/config", ".rexctl/journal.json", "x/.rexctl/a",
                 ".bench/awscli/bin/aws", "products.sqlite3", "data/p.sqlite3-wal",
                 "service/__pycache__/app.cpython-311.pyc", ".mypy_cache/x", ".ruff_cache/x",
                 ".pytest_cache/v", "tests/service/test_app.py"):  # fmt: skip
        assert ignored(path), path
    copied = [src for line in instructions("COPY") for src in line.split()[:-1]]
    assert copied == ["pyproject.toml", "README.md", "rexctl", "service"]
    for src in copied:
        assert (ROOT / src).exists() and not ignored(src), src
    for package in ("rexctl", "service"):
        modules = [str(f.relative_to(ROOT)) for f in (ROOT / package).rglob("*.py")]
        assert modules and not any(ignored(m) for m in modules)
