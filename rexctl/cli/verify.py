"""`rexctl verify`: guide steps 13 (logs) and 14 (the API answers from the cache)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexctl import ui
from rexctl.cli.factory import get_factory
from rexctl.cli.options import JsonOption

if TYPE_CHECKING:
    from rexctl.verify import VerifyReport


def verify_cmd(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Option(
            "--url",
            envvar="REXCTL_APP_URL",
            help="Products URL to probe, e.g. https://<ALB-DNS>/api/products (default: app.url).",
        ),
    ] = "",
    requests: Annotated[
        int,
        typer.Option(
            "--requests", "-n", envvar="REXCTL_VERIFY_REQUESTS", min=2, help="Requests to send."
        ),
    ] = 10,
    since: Annotated[
        str,
        typer.Option(
            "--since",
            envvar="REXCTL_VERIFY_SINCE",
            help="Search logs from this long ago (15m, 2h) or this time (ISO 8601); default: "
            "when the PRIMARY deployment began.",
        ),
    ] = "",
    timeout: Annotated[
        float,
        typer.Option("--timeout", envvar="REXCTL_VERIFY_TIMEOUT", min=0.1, help="Per request, s."),
    ] = 10.0,
    json: JsonOption = False,
) -> None:
    """Check that the deployed backend uses the cache: logs (step 13) and a probe (step 14).

    Exit 0 when no check failed (warnings allowed), 1 when one failed.
    """
    from rexctl.errors import CheckFailed
    from rexctl.verify import verify

    f = get_factory(ctx, json=json)
    cfg = f.config

    def logs_client(region: str) -> Any:
        if not region or region == f.aws.region_name:
            return f.aws.logs
        return f.aws_for(region=region, profile=cfg.profile, endpoint_url=cfg.endpoint_url).logs

    with ui.status("Verifying") as status:
        report = verify(
            cfg,
            ecs=f.aws.ecs,
            logs_client=logs_client,
            url=url,
            requests=requests,
            timeout=timeout,
            since=since,
            on_step=status.update,
        )
    if f.json:
        ui.print_json(report.to_dict())
    else:
        _show(report)
    if not report.ok:
        names = ", ".join(c.name for c in report.failed)
        raise CheckFailed(f"Verification failed: {names}.")


def _show(report: VerifyReport) -> None:
    if report.logs and report.logs.streams:
        rows: list[tuple[Any, ...]] = []
        for s in report.logs.streams:
            last = max((e for e in (s.ready.last, s.error.last) if e), key=lambda e: e.timestamp)
            rows.append((s.task, s.ready.count, s.error.count, last.message.strip()))
        ui.show(ui.table(["task stream", "Redis ready", "Redis error", "last message"], rows,
                         title=f"Logs: {report.logs.group}"))  # fmt: skip
    rows = [(c.name, c.status, c.text) for c in report.checks]
    ui.show(
        ui.table(
            ["check", "result", "evidence"],
            rows,
            title=f"rexctl verify: {report.service} ({report.task_definition})",
            styles=ui.VERDICT_STYLES,
        )
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("verify")(verify_cmd)
