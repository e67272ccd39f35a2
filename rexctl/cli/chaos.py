"""`rexctl chaos`: the failure drills of the guide's step 15, and the way back from them.

Each drill command parses its options, lets `rexctl.drills.runner.prepare` refuse bad input and
plan, asks for confirmation, and hands the course to `runner.run`; the rest is rendering. The
logic lives in `rexctl/drills/`.
"""

from __future__ import annotations

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
ReportHtml = Annotated[
    Path | None,
    typer.Option(
        "--report-html",
        help="Write the drill as one self-contained HTML page (timeline chart, verdict, tasks, "
        "Redis errors, what was changed and undone); it opens from disk.",
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
    report_html: Path | None = None,
) -> None:
    import os

    from rexctl.aws.session import DRILL, LOOK
    from rexctl.drills import records, runner
    from rexctl.drills.lock import drill_lock
    from rexctl.drills.observe import LiveState, build_sensors

    if report is not None and not report.parent.is_dir():
        raise UsageError(f"--report {report}: the directory {report.parent} does not exist.")
    if report_html is not None:
        records.check_output("--report-html", report_html)
    f = get_factory(ctx, json=json, yes=yes)
    cfg = f.config
    options = runner.Options(duration=duration, interval=interval, settle=settle)
    target = {
        "region": cfg.region or f.aws.region_name,
        "profile": cfg.profile,
        "endpoint_url": cfg.endpoint_url or os.environ.get("AWS_ENDPOINT_URL", ""),
    }

    def clients(patience: Any, region: str = cfg.region) -> Any:
        return f.aws_for(
            region=region, profile=cfg.profile, endpoint_url=cfg.endpoint_url, patience=patience
        )

    # Held from the check for unrestored journals to the end of the restore: two drills started
    # together cannot both run, and `chaos restore` cannot undo this one while it runs.
    with drill_lock(cfg.state_dir, f"rexctl chaos {name}"):
        fault, plan, url = runner.prepare(
            name, clients(DRILL), cfg, url=url, options=options, yes=f.yes,
            interactive=ui.interactive(),
        )  # fmt: skip
        _show_plan(name, plan.summary, plan.warnings)
        _confirm(
            f.yes,
            f"Run the {name} drill now?",
            f"`rexctl chaos {name}` changes AWS resources and there is no terminal to confirm "
            "it: pass --yes.",
        )
        state = LiveState(drill=name, duration=duration)
        looks = clients(LOOK)

        def logs_client(region: str) -> Any:
            """CloudWatch Logs where the container's awslogs-region says (as `rexctl verify`)."""
            if not region or region == looks.region_name:
                return looks.logs
            return clients(LOOK, region).logs

        sensors = build_sensors(
            looks,
            cluster=cfg.ecs.cluster,
            service=cfg.ecs.service,
            container=cfg.ecs.container,
            url=url,
            logs_client=logs_client,
        )
        with ui.live(lambda: ui.text("\n".join(state.lines()))) as refresh:

            def sink(kind: str, data: Any) -> None:
                if kind == "signal":
                    ui.warn(f"{data}: stopping; the fault is undone first (not interruptible).")
                state.update(kind, data)
                refresh()

            course = runner.Course(
                sensors=sensors,
                state_dir=cfg.state_dir,
                aws_target=target,
                url=url,
                options=options,
                sink=sink,
                sandbox=f.sandbox_record(),
            )
            try:
                record = runner.run(fault, plan, course)
            finally:
                sensors.close()
    _finish(record, report, f.json, report_html=report_html, state_dir=cfg.state_dir)


def _confirm(yes: bool, question: str, no_terminal: str) -> None:
    """--yes, or a yes on a terminal; else UsageError (exit 2), and nothing was changed."""
    if yes:
        return
    if not ui.interactive():
        raise UsageError(no_terminal)
    if not ui.confirm(question):
        raise UsageError("Nothing was changed.")


def _show_plan(name: str, summary: list[str], warnings: list[str]) -> None:
    ui.info(f"The {name} drill will:")
    for line in summary:
        ui.info(f"  - {line}")
    for w in warnings:
        ui.warn(w)


def _finish(
    record: DrillRecord,
    report: Path | None,
    as_json: bool,
    *,
    report_html: Path | None = None,
    state_dir: Path | None = None,
) -> None:
    data = record.to_dict()
    _keep(data, report, report_html, state_dir)
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


def _keep(
    data: dict[str, Any], report: Path | None, report_html: Path | None, state_dir: Path | None
) -> None:
    """The record, kept for `rexctl chaos report`, and the files asked for. The drill is over
    and its outcome decides the exit code: a file that cannot be written is a warning."""
    from rexctl.drills import records

    targets: list[tuple[str, Any]] = []
    if state_dir is not None:
        targets.append(("record", lambda: records.save(data, state_dir)))
    if report is not None:
        targets.append(("--report", lambda: records.write_atomic(report, records.to_json(data))))
    if report_html is not None:
        targets.append(("--report-html", lambda: records.write_html(report_html, [data])))
    for what, write in targets:
        try:
            write()
        except (OSError, ValueError) as exc:
            ui.warn(f"Could not write the {what} of drill {data.get('id')}: {exc}")
        else:
            if what == "--report-html":
                ui.info(f"The drill's report: {report_html} (open it in a browser).")


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
        report_html: ReportHtml = None,
    ) -> None:
        _drill(ctx, name, duration=duration, interval=interval, settle=settle, url=url,
               report=report, json=json, yes=yes, report_html=report_html)  # fmt: skip

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
    """Undo every drill whose journal is not marked restored, from the journal alone.

    A journal whose sandbox is gone is marked void (what it changed went with the sandbox). A
    damaged journal is restored from what can be read of it.
    """
    from rexctl.aws.session import DRILL
    from rexctl.drills import journal as journal_mod
    from rexctl.drills import runner
    from rexctl.drills.faults import make_fault
    from rexctl.drills.lock import drill_lock

    f = get_factory(ctx, json=json, yes=yes)
    state_dir = f.state_dir  # from the settings alone: the sandbox may be gone
    with drill_lock(state_dir, "rexctl chaos restore"):
        pending = runner.pending_journals(state_dir, drill)
        # A sandbox that died took what the drill changed with it: void, no AWS, no question.
        voided = [
            runner.RestoreOutcome(j, runner.RestoreResult(True, 0, void=reason))
            for j in pending
            if (reason := runner.void_if_sandbox_gone(j, state_dir))
        ]
        pending = [j for j in pending if j.status != journal_mod.VOID]
        if not pending:
            if not voided:
                ui.success(f"Nothing to restore: every drill journal in {state_dir} is restored.")
            _render_restores(voided, f.json)
            return
        for j in pending:
            if j.damage:
                ui.warn(journal_mod.damage_text(j))
            ui.info(f"Drill {j.id} ({j.status}) changed, and restoring undoes:")
            for line in j.summary or ["(the journal does not say; what it recorded is used)"]:
                ui.info(f"  - {line}")
        _confirm(
            f.yes,
            f"Undo {len(pending)} drill(s) now?",
            "`rexctl chaos restore` changes AWS resources: pass --yes.",
        )
        outcomes = runner.restore_pending(
            pending,
            lambda j: make_fault(
                j.drill,
                f.aws_for(
                    profile=j.aws.get("profile", ""),
                    region=j.aws.get("region", ""),
                    endpoint_url=j.aws.get("endpoint_url", ""),
                    patience=DRILL,
                    sandbox=bool(j.sandbox) or None,
                ),
            ),
            state_dir,
            on_signal=lambda name: ui.warn(f"{name}: ignored until the restore is done."),
        )
    _render_restores(voided + outcomes, f.json)


@chaos_app.command("discard")
def discard(
    ctx: typer.Context,
    drill_id: Annotated[str, typer.Argument(help="The drill id (`rexctl chaos list`).")],
    json: JsonOption = False,
    yes: YesOption = False,
) -> None:
    """Set aside a journal that cannot be restored, e.g. a damaged one: it stops blocking new
    drills. Nothing is undone: what it changed stays in place (the command lists it first).

    The file moves to <state_dir>/drills/discarded/, where it is kept for the record.
    """
    from rexctl.drills import journal as journal_mod
    from rexctl.drills import runner
    from rexctl.drills.lock import drill_lock

    f = get_factory(ctx, json=json, yes=yes)
    state_dir = f.state_dir
    with drill_lock(state_dir, "rexctl chaos discard"):
        (journal,) = runner.pending_journals(state_dir, drill_id)
        staying = runner.left_in_place(journal)
        if journal.damage:
            ui.warn(journal_mod.damage_text(journal))
        ui.warn(
            f"Discarding {journal.id} undoes nothing: rexctl stops warning about it and lets "
            "new drills start. What it recorded stays as it is:"
        )
        for line in staying:
            ui.info(f"  - {line}")
        _confirm(
            f.yes,
            f"Discard {journal.id}?",
            "`rexctl chaos discard` needs a confirmation: pass --yes.",
        )
        moved = runner.discard(state_dir, journal)
    if f.json:
        ui.print_json({"id": journal.id, "moved_to": str(moved), "left_in_place": staying})
    else:
        ui.success(f"Discarded {journal.id}: its journal is now {moved} (kept for the record).")


def _render_restores(outcomes: list[RestoreOutcome], as_json: bool) -> None:
    if as_json:
        ui.print_json([o.to_dict() for o in outcomes])
    elif outcomes:

        def result(o: RestoreOutcome) -> str:
            return "void" if o.result.void else "restored" if o.result.ok else "failed"

        ui.show(
            ui.table(
                ["drill", "id", "result", "detail"],
                [
                    (
                        o.journal.drill,
                        o.journal.id,
                        result(o),
                        o.result.void or "; ".join(o.result.drift or o.result.errors[-1:]),
                    )
                    for o in outcomes
                ],
                title="Restore",
                styles={"restored": "green", "void": "green", "failed": "bold red"},
            )
        )
    failed = [o for o in outcomes if not o.result.ok]
    for o in failed[:-1]:
        message, hint = _still_in_place(o)
        ui.error(message)
        ui.info(hint)
    if failed:
        message, hint = _still_in_place(failed[-1])
        raise AwsError(message, hint=hint)


def _still_in_place(o: RestoreOutcome) -> tuple[str, str]:
    """The error for a journal the restore could not settle, and what to do about it."""
    j, result = o.journal, o.result
    why = result.errors[-1] if result.errors else "no detail"
    message = f"{j.drill or 'A drill'} ({j.id}) may still be in place: {why}."
    steps = [f"  {cmd}" for cmd in result.manual_undo]
    if steps:
        steps.insert(0, "Undo it by hand:")
    if j.damage or j.partial or j.newer or not result.manual_undo:
        steps.append(
            f"Once what it changed is undone (or you decide to leave it), "
            f"`rexctl chaos discard {j.id}` sets the journal aside."
        )
    return message, "\n".join(steps)


@chaos_app.command("list")
def list_journals(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show the drill journals: whether each is restored, and what is wrong with a damaged one."""
    from rexctl.drills import journal

    f = get_factory(ctx, json=json)
    state_dir = f.state_dir
    journals = journal.list_journals(state_dir)
    if f.json:
        ui.print_json([{**j.to_dict(), "path": str(j.path)} for j in journals])
        return
    ui.show(
        ui.table(  # the id names the drill and when it started; keep it on one line
            ["id", "status", "restored at"],
            [(j.id, "damaged" if j.damage else j.status, _when(j.restored_at)) for j in journals],
            title=f"Drill journals in {journal.drills_dir(state_dir)}",
            styles={
                "restored": "green",
                "void": "green",
                "pending": "yellow",
                "restore-failed": "bold red",
                "damaged": "bold red",
            },
        )
    )
    for j in journals:
        if j.damage:
            ui.warn(journal.damage_text(j))
        elif j.void_reason:
            ui.info(f"{j.id} is void: {j.void_reason}.")


def _when(stamp: str) -> str:
    return stamp[:19].replace("T", " ") or "-"


@chaos_app.command("report")
def report_cmd(
    ctx: typer.Context,
    record: Annotated[
        list[str],
        typer.Argument(
            help="A drill id (every drill keeps its record in <state_dir>/records/<id>.json), "
            "or a record file (what --report writes). Several: one page with each drill.",
            show_default=False,
            metavar="RECORD",
        ),
    ],
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write the drill(s) as one self-contained HTML page here."),
    ] = None,
) -> None:
    """Draw a drill's record again: the HTML page (--html FILE), or its verdict table."""
    from rexctl.drills import records
    from rexctl.drills.journal import default_state_dir
    from rexctl.sandbox.rehearse import drill_state_dir
    from rexctl.sandbox.state import sandbox_dir

    if html is not None:
        records.check_output("--html", html)
    f = get_factory(ctx)
    # The user's drills, then the rehearsal's (`rexctl rehearse` keeps its drills apart). Read
    # as the journals' warning reads it: a record file draws even if rexctl.toml is broken.
    state_dirs = [default_state_dir(f.opts.config), drill_state_dir(sandbox_dir(Path.cwd()))]
    loaded = [records.load(ref, state_dirs) for ref in record]
    if html is None:
        for path, data in loaded:
            _show_saved(path, data)
        ui.info("Draw it as a page: `rexctl chaos report ... --html FILE`.")
        return
    try:
        records.write_html(html, [data for _, data in loaded])
    except OSError as exc:
        raise UsageError(f"--html {html}: cannot write it: {exc.strerror or exc}.") from None
    ui.success(f"Wrote {html} ({len(loaded)} drill{'s' if len(loaded) != 1 else ''}).")


def _show_saved(path: Path, data: dict[str, Any]) -> None:
    verdict = data.get("verdict") if isinstance(data.get("verdict"), dict) else None
    title = f"{data.get('drill')} ({data.get('id')}): {data.get('outcome') or 'no outcome'}"
    if verdict is None:
        ui.info(f"{title}. {data.get('error') or 'No verdict.'} (record {path})")
        return
    rows = [
        (str(c.get("name")), str(c.get("status")), "\n".join(map(str, c.get("evidence") or [])))
        for c in verdict.get("checks") or []
        if isinstance(c, dict)
    ]
    ui.show(ui.table(["check", "result", "evidence"], rows, title=title, styles=ui.VERDICT_STYLES))
    ui.info(f"Record: {path}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(chaos_app, name="chaos")
