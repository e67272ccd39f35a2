"""`rexctl probe URL`: the guide's step 14 as a measurement (see docs/probe.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rexctl import ui
from rexctl.cli.factory import get_factory
from rexctl.cli.options import JsonOption
from rexctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from rexctl.probe import ProbeReport, ProbeResult

_SOURCE_STYLES = {"db": "yellow", "cache": "green", "OK": "green"}


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("probe")(probe)


def probe(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Argument(
            help="Products URL, e.g. https://<ALB-DNS>/api/products. Default: app.url from "
            "rexctl.toml or REXCTL_APP_URL.",
            show_default=False,
        ),
    ] = None,
    requests: Annotated[int, typer.Option("-n", "--requests", help="Requests to send.")] = 10,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Requests in flight at once (1: sequential).")
    ] = 1,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 10.0,
    source_field: Annotated[
        str | None,
        typer.Option(
            "--source-field",
            envvar="REXCTL_APP_SOURCE_FIELD",
            help="JSON body field that says db or cache; '' for none (default: app.source_field, "
            "source).",
            show_default=False,
        ),
    ] = None,
    source_header: Annotated[
        str | None,
        typer.Option(
            "--source-header",
            envvar="REXCTL_APP_SOURCE_HEADER",
            help="Header read when the body has no source field, HIT/MISS; '' for none "
            "(default: app.source_header, X-Cache).",
            show_default=False,
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra request header 'Name: value' (repeatable)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """GET a products URL n times: where each answer came from (db/cache) and how fast."""
    from rexctl import probe as core

    factory = get_factory(ctx, json=json)
    app = factory.config.app
    target = app.products_url(url or "")
    if not target:
        raise UsageError(
            "No URL to probe.", hint="Pass one, or set app.url in rexctl.toml (REXCTL_APP_URL)."
        )
    core.check_inputs(target, requests, concurrency, timeout)
    headers = core.parse_headers(header or [])
    field = app.source_field if source_field is None else source_field
    source = core.check_source(field, app.source_header if source_header is None else source_header)
    done = [0, 0]
    with ui.status(f"Probing {target}: 0/{requests}") as st:

        def progress(result: ProbeResult) -> None:
            done[0] += 1
            done[1] += 0 if result.ok else 1
            st.update(f"Probing {target}: {done[0]}/{requests}, {done[1]} failed")

        report = core.run_probe(
            target, requests=requests, concurrency=concurrency, timeout=timeout,
            source_field=field, headers=headers, on_result=progress, source_header=source,
        )  # fmt: skip
    if factory.json:
        ui.print_json(report.to_dict())
    else:
        _render(report, core.table_rows(report.results))
    for note in core.notes(report, field, source):
        ui.warn(note)
    if not report.ok:
        raise CheckFailed(core.failure_message(report))
    ui.success(f"{len(report.results)} of {len(report.results)} requests succeeded.")


def _render(report: ProbeReport, rows: list[ProbeResult]) -> None:
    ui.show(
        ui.table(
            ["#", "status", "source", "latency ms", "error"],
            [[r.index, r.status or "-", r.source or "-", f"{r.latency_ms:.1f}", r.error or "OK"]
             for r in rows],
            title=f"GET {report.url}",
            styles=_SOURCE_STYLES,
        )
    )  # fmt: skip
    if len(rows) < len(report.results):
        ui.print_text(
            f"Showing {len(rows)} of {len(report.results)} requests (the first ones and the "
            "failures); --json lists every one."
        )
    if report.summaries:
        summary_rows = [
            [s.source, s.count, *(f"{v:.1f}" for v in (s.p50, s.p95, s.p99, s.max))]
            for s in report.summaries
        ]
        ui.show(
            ui.table(
                ["source", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                summary_rows,
                title="Latency by source (successful requests, nearest-rank percentiles)",
                styles=_SOURCE_STYLES,
            )
        )
    if report.speedup is not None:
        speedup = f"{report.speedup:.1f}×"
    else:
        missing = [name for name in ("db", "cache") if report.summary(name) is None]
        speedup = f"n/a (no {' or '.join(missing)} answers)" if missing else "n/a"
    ui.print_text(f"Speed-up (p50 db / p50 cache): {speedup}")
