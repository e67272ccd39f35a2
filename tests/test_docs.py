"""Every command and every setting is documented (sqlite-utils' tests/test_docs.py idea)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command

from rexctl.cli import app
from rexctl.config import SETTINGS, Setting

DOCS = Path(__file__).resolve().parent.parent / "docs"


def all_docs() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def command_paths() -> list[str]:
    paths: list[str] = []

    def walk(cmd: object, path: str) -> None:
        subs = getattr(cmd, "commands", {})
        if not subs and path:
            paths.append(path)
        for name, sub in subs.items():
            walk(sub, f"{path} {name}".strip())

    walk(get_command(app), "")
    return paths


def test_there_are_commands() -> None:
    assert command_paths(), "the CLI has no commands"


@pytest.mark.parametrize("path", command_paths())
def test_command_is_documented(path: str) -> None:
    assert f"rexctl {path}" in all_docs(), f"`rexctl {path}` does not appear in docs/"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_setting_is_documented(setting: Setting) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert f"`{setting.key}`" in text and f"`{setting.env}`" in text


def option_envvars() -> set[str]:
    found: set[str] = set()

    def walk(cmd: object) -> None:
        for param in getattr(cmd, "params", []):
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                found.add(envvar)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(get_command(app))
    return found


@pytest.mark.parametrize("envvar", sorted(option_envvars()))
def test_option_envvar_is_documented(envvar: str) -> None:
    assert f"`{envvar}`" in (DOCS / "configuration.md").read_text(encoding="utf-8")


def test_every_aws_rule_is_listed_with_its_source() -> None:
    """docs/aws-rules.md lists every rule rexctl checks, where AWS documents it and its code."""
    from rexctl.aws import rules

    text = (DOCS / "aws-rules.md").read_text(encoding="utf-8")
    rows = {
        tuple(cell.strip().replace("\\|", "|").strip("`") for cell in line.strip("|").split(" | "))
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| rule ")
    }
    assert {(r.requirement, r.source, r.code) for r in rules.RULES} <= rows
    for service, operation in rules.COVERED:
        assert f"{service} {operation}" in text


def test_every_variable_is_in_the_one_table_and_documented() -> None:
    """Issue 9: every REXCTL_* variable an option declares, or that rexctl reads, is a setting's
    variable or in config.VARIABLES (and only those); docs/configuration.md lists each."""
    import re

    from rexctl.config import VARIABLES

    table = {s.env for s in SETTINGS} | {v.env for v in VARIABLES}
    assert option_envvars() <= table
    root = Path(__file__).resolve().parent.parent / "rexctl"
    read = set()
    for path in root.rglob("*.py"):
        read |= set(re.findall(r"\bREXCTL_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    assert read <= table, sorted(read - table)
    assert {v.env for v in VARIABLES} <= option_envvars() | read  # no stale entry
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert [v.env for v in VARIABLES if f"`{v.env}`" not in text] == []
