"""The one module that owns rich.

Data and `--json` go to stdout; messages, warnings, spinners and progress go to stderr. Text that
comes from AWS or from the network is printed with markup off. No spinner or live display when
stderr is not a terminal. rich is imported on first use, so `rexctl --help` never pays for it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

_out: Console | None = None
_err: Console | None = None


def escape(text: str) -> str:
    """Text shown as is: rich markup in it (e.g. `[red]` from an AWS message) is not applied."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def out() -> Console:
    global _out
    if _out is None:
        from rich.console import Console

        _out = Console(soft_wrap=True, highlight=False, emoji=False)  # follows sys.stdout
    return _out


def err() -> Console:
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(
            stderr=True, soft_wrap=True, highlight=False, emoji=False
        )  # follows sys.stderr
    return _err


def reset() -> None:
    """Forget the consoles (tests swap sys.stdout/sys.stderr between invocations)."""
    global _out, _err
    _out = _err = None


def interactive() -> bool:
    return err().is_terminal and not os.environ.get("CI")


def error(message: str) -> None:
    err().print(f"[bold red]Error:[/] {escape(message)}")


def warn(message: str) -> None:
    err().print(f"[yellow]Warning:[/] {escape(message)}")


def info(message: str) -> None:
    err().print(escape(message))


def success(message: str) -> None:
    err().print(f"[green]✓[/] {escape(message)}")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_text(text: str) -> None:
    out().print(escape(text))


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    styles: Mapping[str, str] | None = None,
) -> Table:
    """A table of plain-text cells: text from AWS or logs is never markup nor an emoji code (an
    ARN with `:secret:` stays an ARN), and long values fold onto the next line instead of being
    cut. `styles` maps a cell value (e.g. "passed") to a style."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        cells = []
        for value in row:
            value_text = "" if value is None else str(value)
            cells.append(Text(value_text, style=(styles or {}).get(value_text, "")))
        t.add_row(*cells)
    return t


def show(renderable: Any) -> None:
    """Print a rich renderable (table, panel) on stdout."""
    out().print(renderable)


VERDICT_STYLES = {
    "passed": "green",
    "ok": "green",
    "done": "green",
    "failed": "bold red",
    "warning": "yellow",
    "to do": "cyan",
    "will change": "yellow",
    "not observed": "yellow",
}


@contextmanager
def status(message: str) -> Iterator[Any]:
    """A spinner on stderr while something slow runs; silent when stderr is not a terminal.

    Yields an object with `.update(text)`.
    """
    if not interactive():
        yield _NullStatus()
        return
    with err().status(escape(message)) as s:
        yield _RichStatus(s)


class _NullStatus:
    def update(self, text: str) -> None:
        pass


class _RichStatus:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def update(self, text: str) -> None:
        self._inner.update(escape(text))


@contextmanager
def live(render: Any) -> Iterator[Any]:
    """A live-refreshing view on stderr; `render()` returns the renderable.

    Yields a `refresh()` callable. When stderr is not a terminal it does nothing.
    """
    if not interactive():
        yield lambda: None
        return
    from rich.live import Live

    with Live(render(), console=err(), refresh_per_second=4, transient=False) as lv:
        yield lambda: lv.update(render())


def confirm(question: str) -> bool:
    from rich.prompt import Confirm

    return Confirm.ask(escape(question), console=err(), default=False)


def group(*renderables: Any) -> Any:
    """Stack renderables (tables, text) vertically, e.g. for a live view."""
    from rich.console import Group

    return Group(*renderables)


def text(value: str, style: str = "") -> Any:
    """Plain text (never markup) with an optional style, as a renderable."""
    from rich.text import Text

    return Text(value, style=style)


def panel(renderable: Any, title: str = "") -> Any:
    from rich.panel import Panel

    return Panel(renderable, title=escape(title) if title else None, title_align="left")
