"""Drill journals: what a drill is about to change and exactly how to undo it, on disk first.

A drill writes its journal before it changes anything in AWS, and rewrites it after each step
that creates something new (a task-definition revision). Each write goes to a temporary file in
the same directory, is fsynced, and is renamed over the old file, so a crash (even SIGKILL or a
power cut) leaves either the old journal or the new one, never half of one. A journal is marked
`restored` only after AWS confirmed the restore; until then every rexctl command warns about it
and `rexctl chaos restore` can undo it from the journal alone (it holds the region, profile and
endpoint that were used).

Journals are the source of truth and are never dropped silently. Every `*.json` file in
`<state_dir>/drills/` is a journal: one that cannot be read as one (cut short, not an object,
fields of the wrong type, written by a newer rexctl) is still listed, with what is wrong
(`Journal.damage`) and whatever parts could be read, and it blocks new drills like an
unrestored one until `rexctl chaos restore` undoes what it recorded or `rexctl chaos discard`
sets it aside. Journals carry a format version (`FORMAT`); older formats are read, newer ones
are reported and never rewritten.

This module is imported by the root CLI before every command, so it stays cheap: no boto3, no
config file, just the state directory (REXCTL_STATE_DIR or `.rexctl` in the current directory).
"""

from __future__ import annotations

import json
import os
import re
import secrets as _secrets
import tempfile
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rexctl.drills.changes import Change, change_from_dict
from rexctl.errors import StateError

FORMAT = 2  # 1: rexctl before issue 11 (no "format" field); 2: + format, sandbox, damage, partial

PENDING = "pending"  # written before the fault; the fault may or may not be in place
RESTORED = "restored"  # AWS confirmed the restore
RESTORE_FAILED = "restore-failed"  # a restore ran and could not finish: manual undo needed
VOID = "void"  # its sandbox is gone, and with it everything the drill changed
SETTLED = (RESTORED, VOID)  # nothing left to undo

DRILL_ID = re.compile(r"\d{8}T\d{6}Z-(?P<drill>[a-z]+(?:-[a-z]+)*)-[0-9a-f]{6}")


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
    format: int = FORMAT
    # The local sandbox the drill ran against (dir, instance), empty against AWS: a journal
    # whose sandbox is gone changed nothing that still exists (`rexctl.drills.sandboxes`).
    sandbox: dict[str, str] = field(default_factory=dict)
    # What was wrong with the file this journal was read from; kept when it is written again.
    damage: list[str] = field(default_factory=list)
    # True when `changes` may lack some of what the drill recorded (the file was cut inside or
    # before them): restoring what could be read never marks such a journal restored.
    partial: bool = False
    void_reason: str = ""
    # Where it was read from (not written): a damaged file's name is its id.
    path: Path | None = field(default=None, compare=False, repr=False)

    def note(self, message: str) -> None:
        self.history.append(f"{now_iso()} {message}")

    @property
    def newer(self) -> bool:
        """Written by a newer rexctl: read what can be read, never rewrite or act on it."""
        return self.format > FORMAT

    @property
    def settled(self) -> bool:
        """Nothing left to undo and nothing to report: restored (or void) and read cleanly."""
        return self.status in SETTLED and not self.damage

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}
        data["changes"] = [c.to_dict() for c in self.changes]  # each kind's journal form
        plain: dict[str, Any] = json.loads(json.dumps(data, default=str))  # JSON values, copied
        return plain

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Journal:
        """A journal from well-formed data (raises on a missing or mistyped field)."""
        journal, problems = _from_data(data, fallback_id="")
        if problems:
            raise ValueError("; ".join(problems))
        return journal


# The fields a journal must have, and their JSON types; the rest have defaults.
_REQUIRED: dict[str, type] = {
    "id": str,
    "drill": str,
    "created_at": str,
    "aws": dict,
    "changes": list,
    "summary": list,
    "before": dict,
    "manual_undo": list,
}
_OPTIONAL: dict[str, type] = {
    "status": str,
    "updated_at": str,
    "restored_at": str,
    "history": list,
    "format": int,
    "sandbox": dict,
    "damage": list,
    "partial": bool,
    "void_reason": str,
}
STATUSES = (PENDING, RESTORED, RESTORE_FAILED, VOID)
_JSON_TYPE = {
    str: "a string",
    dict: "an object",
    list: "a list",
    int: "a number",
    bool: "true/false",
}


def _empty(name: str, kind: type) -> Any:
    if name == "format":
        return 1  # written before journals carried their format
    return PENDING if name == "status" else kind()


def _is(value: Any, kind: type) -> bool:
    if kind is int:  # JSON's true/false are not numbers
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for t, name in _JSON_TYPE.items():
        if type(value) is t:
            return name
    return f"a {type(value).__name__}"


def _from_data(data: Any, *, fallback_id: str) -> tuple[Journal, list[str]]:
    """Whatever can be read of `data` as a journal, and what is wrong with it (never raises)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        problems.append(f"it is {_kind(data)}, not a JSON object")
        data = {}
    values: dict[str, Any] = {}
    for name, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if name not in data:
            if name in _REQUIRED and data:
                problems.append(f"`{name}` is missing")
            values[name] = _empty(name, kind)
        elif not _is(data[name], kind):
            problems.append(f"`{name}` is {_kind(data[name])}, not {_JSON_TYPE[kind]}")
            values[name] = _empty(name, kind)
        else:
            values[name] = data[name]
    for name in ("summary", "manual_undo", "history", "damage"):
        if not all(isinstance(x, str) for x in values[name]):
            problems.append(f"`{name}` holds something other than text")
            values[name] = [str(x) for x in values[name]]
    for name in ("aws", "sandbox"):
        if not all(isinstance(v, str) for v in values[name].values()):
            problems.append(f"`{name}` holds something other than text")
            values[name] = {k: v for k, v in values[name].items() if isinstance(v, str)}
    if values["status"] not in STATUSES:
        problems.append(f"`status` is {values['status']!r}, not one of {', '.join(STATUSES)}")
        values["status"] = PENDING
    if fallback_id and values["id"] != fallback_id:
        if values["id"]:
            problems.append(f"its id {values['id']!r} is not its file name")
        values["id"] = fallback_id  # the file is what a restore rewrites and a discard moves
    if not values["drill"]:
        m = DRILL_ID.fullmatch(values["id"])
        values["drill"] = m.group("drill") if m else ""
    values["changes"] = [change_from_dict(c, values["drill"]) for c in values["changes"]]
    journal = Journal(**values)
    if journal.newer:
        problems.insert(
            0,
            f"it was written by a newer rexctl (journal format {journal.format}; this rexctl "
            f"reads formats 1 to {FORMAT})",
        )
    return journal, problems


def salvage(text: str) -> tuple[Any, tuple[Any, ...]] | None:
    """The longest readable beginning of a JSON document that was cut short, closed as JSON,
    and where it was cut: the keys (and list positions) of the containers still open there.
    None when not even that can be read."""
    stack: list[str] = []
    path: list[Any] = []
    cuts: list[tuple[int, tuple[str, ...], tuple[Any, ...]]] = []
    in_string = escaped = False
    string_start = 0
    last_string = ""
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                last_string = text[string_start : i + 1]
        elif ch == '"':
            in_string, string_start = True, i
        elif ch in "{[":
            stack.append(ch)
            path.append(None if ch == "{" else 0)
            cuts.append((i + 1, tuple(stack), tuple(path)))
        elif ch in "}]":
            if not stack:
                break
            stack.pop()
            path.pop()
        elif ch == ":" and stack and stack[-1] == "{":
            try:
                path[-1] = json.loads(last_string)
            except ValueError:
                break
        elif ch == "," and stack:
            cuts.append((i, tuple(stack), tuple(path)))
            path[-1] = path[-1] + 1 if stack[-1] == "[" else None  # the value before is whole
    for end, open_, where in reversed(cuts):
        closing = "".join("}" if c == "{" else "]" for c in reversed(open_))
        try:
            return json.loads(text[:end] + closing), where
        except ValueError:
            continue
    return None


def read(path: Path) -> Journal:
    """The journal in `path`, with `damage` saying what is wrong with the file (never raises
    for what is in the file; only for the file itself, e.g. a directory in its place)."""
    fallback_id = path.name.removesuffix(".json")
    damage: list[str] = []
    partial = False
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        text = path.read_bytes().decode("utf-8", errors="replace")
        damage.append(f"it is not UTF-8 text ({exc.reason} at byte {exc.start})")
    nothing = False
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        saved = salvage(text)
        if saved is None:
            data, nothing, partial = None, True, True
            damage.append(f"it is not JSON ({exc}), and nothing of it could be read")
        else:
            data, where = saved
            damage.append(f"it is not valid JSON ({exc}): only its beginning could be read")
            partial = len(where) > 1 and where[0] == "changes"  # cut inside: they held more?
    journal, problems = _from_data(data, fallback_id=fallback_id)
    if nothing:
        problems = []  # "not an object" says nothing more than "not JSON"
    journal.damage += damage + problems
    whole = isinstance(data, dict) and isinstance(data.get("changes"), list)
    journal.partial = journal.partial or partial or not whole
    journal.path = path
    return journal


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
    """Write the journal durably: temp file, fsync, atomic rename, fsync of the directory.

    A journal read from a damaged file keeps that file's bytes beside it (`<id>.json.damaged`)
    the first time it is written again. One written by a newer rexctl is never written: this
    rexctl would drop what it cannot read. A state directory that cannot be written is a
    `StateError` (exit 2), whatever the reason (not a directory, read-only, disk full).
    """
    if journal.newer:
        raise StateError(
            f"Journal {journal.id} was written by a newer rexctl (format {journal.format}); "
            "this rexctl will not rewrite it.",
            hint="Upgrade rexctl (`pip install -U rexctl`) to act on it.",
        )
    journal.updated_at = now_iso()
    journal.format = FORMAT  # what this rexctl writes, whatever it read
    directory = drills_dir(state_dir)
    path = journal_path(state_dir, journal.id)
    data = json.dumps(redact(journal.to_dict()), indent=2, sort_keys=True, default=str) + "\n"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if (
            journal.damage
            and path.is_file()
            and not path.with_name(path.name + ".damaged").exists()
        ):
            _write_durably(directory, path.with_name(path.name + ".damaged"), path.read_bytes())
        _write_durably(directory, path, data.encode("utf-8"))
    except OSError as exc:
        raise state_error(directory, exc) from None
    return path


def _write_durably(directory: Path, path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
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


def state_error(directory: Path, exc: OSError) -> StateError:
    """One message for a state directory rexctl cannot write (exit 2)."""
    why = exc.strerror or str(exc)
    where = exc.filename or directory
    return StateError(
        f"Cannot write rexctl's drill state in {directory} ({where}: {why}).",
        hint="Point `state_dir` in rexctl.toml (or REXCTL_STATE_DIR) at a writable directory "
        "with free space.",
    )


class DamagedJournal(ValueError):
    """`load` of a file that cannot be read as a journal (`read` gives what could be read)."""


def load(path: Path) -> Journal:
    """The journal in `path`; DamagedJournal when the file cannot be read as one."""
    journal = read(path)
    if journal.damage:
        raise DamagedJournal(f"{path}: {'; '.join(journal.damage)}")
    return journal


def _unreadable(path: Path, exc: OSError) -> Journal:
    journal, _ = _from_data({}, fallback_id=path.name.removesuffix(".json"))
    journal.damage = [f"it cannot be read ({exc.strerror or exc})"]
    journal.partial, journal.path = True, path
    return journal


def list_journals(state_dir: Path) -> list[Journal]:
    """Every journal, oldest first (ids start with a UTC timestamp): every `*.json` file in
    the drills directory, including those that cannot be read (`damage` says why)."""
    directory = drills_dir(state_dir)
    if not directory.is_dir():
        return []
    journals = []
    for path in sorted(directory.glob("*.json")):
        try:
            journals.append(read(path))
        except OSError as exc:
            journals.append(_unreadable(path, exc))
    return journals


def unrestored(state_dir: Path) -> list[Journal]:
    """The journals that block new drills: not restored (or void), or damaged."""
    return [j for j in list_journals(state_dir) if not j.settled]


def damage_text(journal: Journal) -> str:
    """Why a file cannot be read as a journal, and what to do: one paragraph."""
    where = journal.path or journal.id
    restorable = (
        ""
        if journal.newer or not journal.drill
        else (
            f"`rexctl chaos restore --drill {journal.id}` undoes what it recorded (what could be "
            "read), or "
        )
    )
    return (
        f"Drill journal {where} cannot be read as a journal: {'; '.join(journal.damage)}. "
        f"It blocks new drills until {restorable}`rexctl chaos discard {journal.id}` sets it "
        "aside."
    )


def unrestored_summary(state_dir: Path | None = None) -> str:
    """A warning when a drill journal is not marked restored, or is damaged; '' when none."""
    try:
        pending = unrestored(state_dir or default_state_dir())
    except OSError:
        return ""
    lines = [damage_text(j) for j in pending if j.damage]
    clean = [j for j in pending if not j.damage]
    if clean:
        ids = ", ".join(f"{j.id} ({j.drill})" for j in clean)
        lines.insert(
            0,
            f"{len(clean)} failure drill(s) may still be in place: {ids}. "
            "Run `rexctl chaos restore` to undo them.",
        )
    return "\n".join(lines)


def discard(journal: Journal, state_dir: Path) -> Path:
    """Set a journal aside: its file (and a damaged file's copy) move to `drills/discarded/`,
    where nothing reads them as journals any more. Returns the new path."""
    source = journal.path or journal_path(state_dir, journal.id)
    target_dir = drills_dir(state_dir) / "discarded"
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        n = 1
        while target.exists():
            n += 1
            target = target_dir / f"{source.stem}.{n}.json"
        damaged = source.with_name(source.name + ".damaged")
        if damaged.exists():
            os.replace(damaged, target.with_name(target.name + ".damaged"))
        os.replace(source, target)
    except OSError as exc:
        raise state_error(drills_dir(state_dir), exc) from None
    return target
