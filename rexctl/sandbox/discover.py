"""Find the running sandbox for a directory (placeholder until the sandbox issue lands)."""

from __future__ import annotations

from pathlib import Path

from rexctl.errors import UsageError


def sandbox_settings(cwd: Path) -> dict[str, str]:
    """Settings (endpoint_url, region) that point rexctl at the sandbox running for `cwd`."""
    raise UsageError("No sandbox is running here.", hint="Start one with `rexctl sandbox up`.")
