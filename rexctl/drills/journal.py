"""Drill journals: what a drill is about to change and exactly how to undo it, on disk first.

A drill writes its journal before it changes anything in AWS, and rewrites it after each step
that creates something new (a task-definition revision). Each write goes to a temporary file in
the same directory, is fsynced, and is renamed over the old file, so a crash (even SIGKILL or a
power cut) leaves either the old journal or the new one, never half of one. A journal is marked
`restored` only after AWS confirmed the restore; until then every rexctl command warns about it
and `rexctl chaos restore` can undo it from the journal alone (it holds the region, profile and
endpoint that were used).

This module is imported by the root CLI before every command, so it stays cheap: no boto3, no
config file, just the state directory (REXCTL_STATE_DIR or `.rexctl` in the current directory).
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rexctl.drills.changes import Change, change_from_dict

PENDING = "pending"  # written before the fault; the fault may or may not be in place
RESTORED = "restored"  # AWS confirmed the restore
RESTORE_FAILED = "restore-failed"  # a restore ran and AWS kept rejecting it: manual undo needed


@dataclass
class Journal:
    id: str
    drill: str  # break-sg | break-nacl | wrong-host
    created_at: str
    aws: dict[str, str]  # region, profile, endpoint_url: what a later restore must talk to
    changes: list[Change]  # fault-specific: what changes and how to undo it (rexctl.drills.changes)
    summary: list[str]  # the plan in words, as shown before confirmation
    before: dict[str, Any]  # normalized describe of what the drill touches, before it
    manual_undo: list[str]  # aws CLI commands that undo the changes by hand
    status: str = PENDING
    updated_at: str = ""
    restored_at: str = ""
    history: list[str] = field(default_factory=list)  # timestamped steps, for the record

    def note(self, message: str) -> None:
        self.history.append(f"{now_iso()} {message}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["changes"] = [c.to_dict() for c in self.changes]  # each kind's journal form
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Journal:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        if isinstance(kwargs.get("changes"), list):
            kwargs["changes"] = [change_from_dict(c) for c in kwargs["changes"]]
        return cls(**kwargs)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_state_dir(config_path: Path | None = None) -> Path:
    """Where the journals are: REXCTL_STATE_DIR, else `state_dir` in the config file, else
    `.rexctl` (the precedence of rexctl.config, read cheaply: the root CLI calls this before
    every command; an unreadable file counts as not setting it)."""
    if os.environ.get("REXCTL_STATE_DIR"):
        return Path(os.environ["REXCTL_STATE_DIR"])
    if config_path is not None:
        import tomllib

        try:
            value = tomllib.loads(config_path.read_text(encoding="utf-8")).get("state_dir")
        except (OSError, ValueError):
            value = None
        if isinstance(value, str) and value:
            return Path(value)
    return Path(".rexctl")


def drills_dir(state_dir: Path) -> Path:
    return state_dir / "drills"


def new_drill_id(drill: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{drill}-{_secrets.token_hex(3)}"


def redact(value: Any) -> Any:
    """A copy fit to write or show: secrets hidden by the one rule of `rexctl.redact`."""
    from rexctl.redact import redact_data

    return redact_data(value)


def journal_path(state_dir: Path, drill_id: str) -> Path:
    return drills_dir(state_dir) / f"{drill_id}.json"


def save(journal: Journal, state_dir: Path) -> Path:
    """Write the journal durably: temp file, fsync, atomic rename, fsync of the directory."""
    journal.updated_at = now_iso()
    directory = drills_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = journal_path(state_dir, journal.id)
    data = json.dumps(redact(journal.to_dict()), indent=2, sort_keys=True, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{journal.id}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load(path: Path) -> Journal:
    return Journal.from_dict(json.loads(path.read_text(encoding="utf-8")))


def list_journals(state_dir: Path) -> list[Journal]:
    """Every readable journal, oldest first (ids start with a UTC timestamp)."""
    directory = drills_dir(state_dir)
    if not directory.is_dir():
        return []
    journals = []
    for path in sorted(directory.glob("*.json")):
        try:
            journals.append(load(path))
        except (OSError, ValueError, TypeError, AttributeError):
            continue  # a foreign or damaged file is not a drill journal
    return journals


def unrestored(state_dir: Path) -> list[Journal]:
    return [j for j in list_journals(state_dir) if j.status != RESTORED]


def unrestored_summary(state_dir: Path | None = None) -> str:
    """A warning line when a drill journal is not marked restored; '' when none."""
    try:
        pending = unrestored(state_dir or default_state_dir())
    except OSError:
        return ""
    if not pending:
        return ""
    ids = ", ".join(f"{j.id} ({j.drill})" for j in pending)
    return (
        f"{len(pending)} failure drill(s) may still be in place: {ids}. "
        "Run `rexctl chaos restore` to undo them."
    )
