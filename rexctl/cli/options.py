"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the result as JSON on stdout (messages stay on stderr)."),
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (needed when not interactive)."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change, and change nothing.")
]
PollOption = Annotated[
    float,
    typer.Option(
        "--poll",
        envvar="REXCTL_DEPLOY_POLL",
        min=0.05,
        help="Seconds between rollout checks (deploy, rollback, and provision or rotate-token "
        "when they roll the service).",
    ),
]
