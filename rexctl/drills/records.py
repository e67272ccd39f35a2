"""Drill records on disk: what a drill saw and decided, kept to be read (and drawn) again.

A record is the object `DrillRecord.to_dict()` makes: what `--report FILE` writes and `--json`
prints. Every drill also keeps its record at `<state_dir>/records/<drill id>.json` when it ends,
so that `rexctl chaos report <drill id> --html FILE` can draw it later. Records live apart from
the journals (`<state_dir>/drills/`, where every `*.json` is a journal): a record is a report,
nothing ever restores from it.

Files are written whole or not at all (a temporary file in the same directory, renamed over the
target), so a reader never meets half a record or half an HTML page.

Stdlib only, no Typer and no rich: the CLI imports this inside commands.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from rexctl.errors import UsageError

# What `journal.new_drill_id` makes: UTC time, drill name, 6 hex digits.
DRILL_ID = re.compile(r"^\d{8}T\d{6}Z-[a-z][a-z0-9-]*-[0-9a-f]{6}$")


def records_dir(state_dir: Path) -> Path:
    return state_dir / "records"


def record_path(state_dir: Path, drill_id: str) -> Path:
    return records_dir(state_dir) / f"{drill_id}.json"


def to_json(record: dict[str, Any]) -> str:
    """The text of a record, as `--report` writes it."""
    return json.dumps(record, indent=2, default=str) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and a rename:
    `path` is either what it was or the whole new text, never half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(record: dict[str, Any], state_dir: Path) -> Path:
    """Keep a drill's record at `<state_dir>/records/<drill id>.json`."""
    drill_id = str(record.get("id") or "")
    if not DRILL_ID.match(drill_id):  # never a path built from something else
        raise ValueError(f"not a drill id: {drill_id!r}")
    directory = records_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = record_path(state_dir, drill_id)
    write_atomic(path, to_json(record))
    return path


def is_record(data: Any) -> bool:
    """A drill record, as opposed to a journal or any other JSON."""
    return isinstance(data, dict) and isinstance(data.get("drill"), str) and "observations" in data


def _is_journal(data: Any) -> bool:
    return isinstance(data, dict) and {"id", "drill", "changes", "history"} <= set(data)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"There is no file {path}.") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a drill record.") from None
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise UsageError(f"{path} is not a drill record: it is not valid JSON ({exc}).") from None


def load(ref: str, state_dirs: list[Path]) -> tuple[Path, dict[str, Any]]:
    """A record by file (a `--report` file, a saved record, or a journal whose record was saved)
    or by drill id (looked up in each state directory's `records/`, in order)."""
    path = Path(ref)
    looks_like_id = DRILL_ID.match(ref) is not None and not path.exists()
    if not looks_like_id:
        data = _read(path)
        if is_record(data):
            return path, data
        if _is_journal(data):  # its record, when the drill kept one
            drill_id = str(data["id"])
            found = _find(drill_id, state_dirs) if DRILL_ID.match(drill_id) else None
            if found is not None:
                return found, _checked(found)
            raise UsageError(
                f"{path} is the journal of drill {drill_id}: it says what the drill changed, not "
                "what it saw, and no record of that drill was kept "
                f"({_where(drill_id, state_dirs)}).",
                hint="Draw a record: a `--report` file, or a drill id (`rexctl chaos list`).",
            )
        raise UsageError(
            f"{path} is not a drill record (the JSON `--report` writes: it has no "
            '"drill" and "observations").'
        )
    found = _find(ref, state_dirs)
    if found is None:
        raise UsageError(
            f"No record of drill {ref}: {_where(ref, state_dirs)}.",
            hint="A drill keeps its record when it ends; `rexctl chaos list` shows the drills "
            "(set REXCTL_STATE_DIR, or --config, for another state directory).",
        )
    return found, _checked(found)


def _find(drill_id: str, state_dirs: list[Path]) -> Path | None:
    return next(
        (record_path(d, drill_id) for d in state_dirs if record_path(d, drill_id).is_file()), None
    )


def _where(drill_id: str, state_dirs: list[Path]) -> str:
    return "no " + " nor ".join(str(record_path(d, drill_id)) for d in state_dirs)


def _checked(path: Path) -> dict[str, Any]:
    data = _read(path)
    if not is_record(data):
        raise UsageError(f'{path} is not a drill record: it has no "drill" and "observations".')
    return dict(data)


def check_output(option: str, path: Path) -> None:
    """Refuse, before anything runs, a file that cannot be written where it is asked for."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: that is a directory; give a file name.")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: the directory {path.parent} does not exist.")


def write_html(
    path: Path,
    records: list[dict[str, Any]],
    steps: list[dict[str, Any]] | None = None,
    watched: list[dict[str, Any]] | None = None,
) -> None:
    """Draw `records` (and a rehearsal's `steps`, and its `watched` steps) as one HTML page at
    `path`, whole or not at all."""
    from rexctl.drills import report_html

    write_atomic(path, report_html.render(records, steps=steps, watched=watched or ()))
