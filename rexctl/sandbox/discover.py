"""Find the running sandbox for a directory (what the global `--sandbox` flag uses).

The sandbox of the current directory comes first; otherwise the one named by
`REXCTL_SANDBOX_DIR` (which `rexctl sandbox env` exports, so `--sandbox` keeps working after a
`cd`).
"""

from __future__ import annotations

import os
from pathlib import Path

from rexctl.errors import UsageError
from rexctl.sandbox.state import SandboxState, is_daemon, read_state, sandbox_dir


def find(cwd: Path) -> SandboxState | None:
    candidates = [sandbox_dir(cwd)]
    named = os.environ.get("REXCTL_SANDBOX_DIR", "")
    if named:
        candidates.append(Path(named))
    for directory in candidates:
        state = read_state(directory)
        if state is not None and is_daemon(state.pid, directory):
            return state
    return None


def sandbox_settings(cwd: Path) -> dict[str, str]:
    """Settings (endpoint_url, region) that point rexctl at the sandbox running for `cwd`."""
    state = find(cwd)
    if state is None:
        raise UsageError("No sandbox is running here.", hint="Start one with `rexctl sandbox up`.")
    return {"endpoint_url": state.endpoint_url, "region": state.region}
