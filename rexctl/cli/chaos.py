"""`rexctl chaos`: the failure drills of the guide's step 15, and the way back from them.

Each drill command parses its options, lets `rexctl.drills.runner.prepare` refuse bad input and
plan, asks for confirmation, and hands the course to `runner.run`; the rest is rendering. The
logic lives in `rexctl/drills/`.
"""

from __future__ import annotations

import json as json_mod
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexctl import ui
from rexctl.cli.factory import get_factory
from rexctl.cli.options import JsonOption, YesOption
from rexctl.errors import AwsError, FaultNotObserved, UsageError, error_for

if TYPE_CHECKING:
    from rexctl.drills.runner import DrillRecord, RestoreOutcome

chaos_app = typer.Typer(
    rich_markup_mode=None,
    help="Failure drills (guide step 15): break the cache's reachability on purpose, watch the "
    "API, logs and tasks, and always put everything back. See docs/chaos.md.",
    no_args_is_help=True,
)

Duration = Annotated[
    float,
    typer.Option(
        "--duration", envvar="REXCTL_CHAOS_DURATION", help="Seconds to observe (at most 3600)."
    ),
]
Interval = Annotated[
    float,
    typer.Option(
        "--interval", envvar="REXCTL_CHAOS_INTERVAL", help="Seconds between observations."
    ),
]
Settle = Annotated[
    float,
    typer.Option(
        "--settle",
        envvar="REXCTL_CHAOS_SETTLE",
        help="After the restore, seconds to wait for an answer from the cache again.",
    ),
]
Url = Annotated[
    str,
    typer.Option("--url", envvar="REXCTL_APP_URL", help="The API to watch (default: `app.url`)."),
]
Report = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Write the whole record (journal, observations, verdict) as JSON."
    ),
]


def _drill(
    ctx: typer.Context,
    name: str,
    *,
    duration: float,
    interval: float,
    settle: float,
    url: str,
    report: Path | None,
    json: bool,
    yes: bool,
) -> None:
    import os

    from rexctl.drills import runner
    from rexctl.drills.observe import LiveState, build_sensors

    if report is not None and not report.parent.is_dir():
        raise UsageError(f"--report {report}: the directory {report.parent} does not exist.")
    f = get_factory(ctx, json=json, yes=yes)
    cfg = f.config
    options = runner.Options(duration=duration, interval=interval, settle=settle)
    fault, plan, url = runner.prepare(
        name, f.aws, cfg, url=url, options=options, yes=f.yes, interactive=ui.interactive()
    )
    _show_plan(name, plan.summary, plan.warnings)
    if not f.yes and not ui.confirm(f"Run the {name} drill now?"):
        raise UsageError("Nothing was changed.")
    state = LiveState(drill=name, duration=duration)

    def logs_client(region: str) -> Any:
        """CloudWatch Logs where the container's awslogs-region says (as `rexctl verify`)."""
        if not region or region == f.aws.region_name:
            return f.aws.logs
        return f.aws_for(region=region, profile=cfg.profile, endpoint_url=cfg.endpoint_url).logs

    sensors = build_sensors(
        f.aws,
        cluster=cfg.ecs.cluster,
        service=cfg.ecs.service,
        container=cfg.ecs.container,
        url=url,
        logs_client=logs_client,
        source_field=cfg.app.source_field,
        source_header=cfg.app.source_header,
        error_phrase=cfg.app.error_phrase,
    )
    target = {
        "region": cfg.region or f.aws.region_name,
        "profile": cfg.profile,
        "endpoint_url": cfg.endpoint_url or os.environ.get("AWS_ENDPOINT_URL", ""),
    }
    with ui.live(lambda: ui.text("\n".join(state.lines()))) as refresh:

        def sink(kind: str, data: Any) -> None:
            if kind == "signal":
                ui.warn(f"{data}: stopping; the fault is undone first (this is not interruptible).")
            state.update(kind, data)
            refresh()

        course = runner.Course(
            sensors=sensors,
            state_dir=cfg.state_dir,
            aws_target=target,
            url=url,
            options=options,
            sink=sink,
        )
        try:
            record = runner.run(fault, plan, course)
        finally:
            sensors.close()
    _finish(record, report, f.json)


def _show_plan(name: str, summary: list[str], warnings: list[str]) -> None:
    ui.info(f"The {name} drill will:")
    for line in summary:
        ui.info(f"  - {line}")
    for w in warnings:
        ui.warn(w)


def _finish(record: DrillRecord, report: Path | None, as_json: bool) -> None:
    data = record.to_dict()
    if report is not None:
        report.write_text(json_mod.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    if as_json:
        ui.print_json(data)
    else:
        _render(record, data)
    if record.restore is not None and record.restore.drift:
        ui.warn(
            "Restored, but the describe differs from before the drill (a change by someone "
            "else?): " + "; ".join(record.restore.drift)
        )
    if record.error:
        raise error_for(record.exit_code or 1, record.error, hint=record.hint or None)
    if record.verdict is not None and record.verdict.outcome == "not observed":
        raise FaultNotObserved(
            f"Fault not observed. {record.verdict.reason}",
            hint=record.verdict.suggestion or None,
        )
    if record.exit_code:
        raise error_for(record.exit_code, f"The {record.drill} drill {record.outcome}.")


def _render(record: DrillRecord, data: dict[str, Any]) -> None:
    if record.verdict is not None:
        rows = [(c.name, c.status, c.text) for c in record.verdict.checks]
        ui.show(
            ui.table(
                ["check", "result", "evidence"],
                rows,
                title=f"{record.drill} ({record.id}): {record.verdict.outcome}",
                styles=ui.VERDICT_STYLES,
            )
        )
    buckets = data["timeline"]
    if buckets:
        ui.show(
            ui.table(
                ["t (s)", "phase", "requests", "failed", "sources", "p50 ms", "max ms"],
                [
                    (
                        f"{b['start']:g}",
                        b["phase"],
                        b["requests"],
                        b["failed"],
                        ", ".join(f"{k} {v}" for k, v in sorted(b["sources"].items())),
                        "-" if b["p50_ms"] is None else f"{b['p50_ms']:.0f}",
                        "-" if b["max_ms"] is None else f"{b['max_ms']:.0f}",
                    )
                    for b in buckets
                ],
                title="Latency timeline (5-second buckets)",
            )
        )
    if record.restore is not None and record.restore.ok:
        ui.success(f"Restored and confirmed by AWS (journal {record.id}).")
    if record.verdict is not None and record.verdict.advice:
        ui.info("What to change in the backend:")
        for line in record.verdict.advice:
            ui.info(f"  - {line}")


def _drill_command(name: str, doc: str) -> None:
    """Register `rexctl chaos <name>`: the options every drill takes, then `_drill`."""

    def command(
        ctx: typer.Context,
        duration: Duration = 60.0,
        interval: Interval = 1.0,
        settle: Settle = 120.0,
        url: Url = "",
        report: Report = None,
        json: JsonOption = False,
        yes: YesOption = False,
    ) -> None:
        _drill(ctx, name, duration=duration, interval=interval, settle=settle, url=url,
               report=report, json=json, yes=yes)  # fmt: skip

    command.__doc__ = doc
    chaos_app.command(name)(command)


_drill_command(
    "break-sg",
    """Revoke the cache's inbound rule from the service's security group, watch, restore it.

    Open connections survive a revoked rule, so this drill may end "fault not observed" (exit 4).
    """,
)
_drill_command(
    "break-nacl",
    "DENY the cache port in the cache subnets' network ACLs (cuts open connections), restore.",
)
_drill_command(
    "wrong-host",
    "Roll a revision whose REDIS_HOST does not resolve, watch, roll back and deregister it.",
)


@chaos_app.command("restore")
def restore(
    ctx: typer.Context,
    drill: Annotated[
        str, typer.Option("--drill", help="Only this drill id (default: every unrestored one).")
    ] = "",
    json: JsonOption = False,
    yes: YesOption = False,
) -> None:
    """Undo every drill whose journal is not marked restored, from the journal alone."""
    from rexctl.drills import runner
    from rexctl.drills.faults import make_fault

    f = get_factory(ctx, json=json, yes=yes)
    state_dir = f.config.state_dir
    pending = runner.pending_journals(state_dir, drill)
    if not pending:
        ui.success(f"Nothing to restore: every drill journal in {state_dir} is restored.")
        if f.json:
            ui.print_json([])
        return
    for j in pending:
        ui.info(f"Drill {j.id} ({j.status}) changed, and restoring undoes:")
        for line in j.summary:
            ui.info(f"  - {line}")
    if not f.yes:
        if not ui.interactive():
            raise UsageError("`rexctl chaos restore` changes AWS resources: pass --yes.")
        if not ui.confirm(f"Undo {len(pending)} drill(s) now?"):
            raise UsageError("Nothing was changed.")
    outcomes = runner.restore_pending(
        pending,
        lambda j: make_fault(
            j.drill,
            f.aws_for(
                profile=j.aws.get("profile", ""),
                region=j.aws.get("region", ""),
                endpoint_url=j.aws.get("endpoint_url", ""),
            ),
        ),
        state_dir,
        on_signal=lambda name: ui.warn(f"{name}: ignored until the restore is done."),
    )
    _render_restores(outcomes, f.json)


def _render_restores(outcomes: list[RestoreOutcome], as_json: bool) -> None:
    if as_json:
        ui.print_json([o.to_dict() for o in outcomes])
    else:
        ui.show(
            ui.table(
                ["drill", "id", "result", "detail"],
                [
                    (
                        o.journal.drill,
                        o.journal.id,
                        "restored" if o.result.ok else "failed",
                        "; ".join(o.result.drift or o.result.errors[-1:]),
                    )
                    for o in outcomes
                ],
                title="Restore",
                styles={"restored": "green", "failed": "bold red"},
            )
        )
    failed = [o for o in outcomes if not o.result.ok]
    for o in failed[:-1]:
        ui.error(f"{o.journal.drill} ({o.journal.id}) is still in place. Undo it by hand:")
        for cmd in o.result.manual_undo:
            ui.info(f"  {cmd}")
    if failed:
        last = failed[-1]
        raise AwsError(
            f"{last.journal.drill} ({last.journal.id}) is still in place. Undo it by hand:",
            hint="\n".join(f"  {cmd}" for cmd in last.result.manual_undo) or None,
        )


@chaos_app.command("list")
def list_journals(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show the drill journals and whether each is restored."""
    from rexctl.drills import journal

    f = get_factory(ctx, json=json)
    journals = journal.list_journals(f.config.state_dir)
    if f.json:
        ui.print_json([j.to_dict() for j in journals])
        return
    ui.show(
        ui.table(  # the id names the drill and when it started; keep it on one line
            ["id", "status", "restored at"],
            [(j.id, j.status, j.restored_at[:19].replace("T", " ") or "-") for j in journals],
            title=f"Drill journals in {journal.drills_dir(f.config.state_dir)}",
            styles={"restored": "green", "pending": "yellow", "restore-failed": "bold red"},
        )
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(chaos_app, name="chaos")
