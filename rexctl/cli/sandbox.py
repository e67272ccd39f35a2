"""`rexctl sandbox up | down | status | env` and `rexctl rehearse`: the local stand-in for AWS.

The logic lives in `rexctl/sandbox/` (daemon, control, discovery) and `rexctl/rehearse.py`; these
commands parse, call one core function and render. See docs/sandbox.md.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexctl import ui
from rexctl.cli.factory import get_factory
from rexctl.cli.options import JsonOption
from rexctl.errors import CheckFailed, Interrupted, UsageError

if TYPE_CHECKING:
    from rexctl.cli.factory import Factory
    from rexctl.sandbox.backend import Backend
    from rexctl.sandbox.control import Status
    from rexctl.sandbox.rehearse import Rehearsal, StepResult

sandbox_app = typer.Typer(
    rich_markup_mode=None,
    help="A local stand-in for the guide's AWS architecture (moto, redis-server, the bundled "
    "service's tasks, a load balancer, a gate that applies security groups and ACLs). "
    "See docs/sandbox.md.",
    no_args_is_help=True,
)

STATUS_STYLES = {"RUNNING": "green", "up": "green", "PENDING": "yellow", "down": "bold red"}

BackendCommand = Annotated[
    str,
    typer.Option(
        "--backend-command",
        envvar="REXCTL_SANDBOX_BACKEND_COMMAND",
        help="Run this command line as each ECS task instead of the bundled service (split into "
        "words like a shell, not run by one), e.g. 'node src/server.js'. It gets PORT, "
        "REDIS_HOST, REDIS_PORT and the task definition's environment (sandbox.backend_command).",
        show_default=False,
    ),
]
BackendDir = Annotated[
    str,
    typer.Option(
        "--backend-dir",
        envvar="REXCTL_SANDBOX_BACKEND_DIR",
        help="Directory the backend command runs in (default: the current directory; "
        "sandbox.backend_dir).",
        show_default=False,
    ),
]


def _backend(ctx: typer.Context, f: Factory, command: str, directory: str) -> Backend:
    """The backend the options and settings ask for, checked before anything starts (exit 2).
    A value Typer took from the environment is left to the configuration, which then names the
    variable in its messages."""
    from rexctl.sandbox import backend

    def given(name: str, value: str) -> str:
        # By name: Typer may bring its own copy of click's ParameterSource.
        source = getattr(ctx.get_parameter_source(name), "name", "")
        return value if source == "COMMANDLINE" else ""

    cfg = f.local_config(
        {
            "sandbox.backend_command": given("backend_command", command),
            "sandbox.backend_dir": given("backend_dir", directory),
        }
    )
    return backend.resolve(
        cfg.sandbox.backend_command,
        cfg.sandbox.backend_dir,
        cwd=Path.cwd(),
        path=cfg.app.path,
        health_path=cfg.app.health_path,
        sources=cfg.sources,
        config_path=cfg.path,
    )


@sandbox_app.command("up")
def up_cmd(
    ctx: typer.Context,
    backend_command: BackendCommand = "",
    backend_dir: BackendDir = "",
    json: JsonOption = False,
) -> None:
    """Start the sandbox of this directory in the background (or reuse the running one).

    The service's tasks run the bundled service, or your backend with --backend-command.
    """
    from rexctl.sandbox import control

    f = get_factory(ctx, json=json)
    backend = _backend(ctx, f, backend_command, backend_dir)
    with ui.status(f"Starting the sandbox (moto, redis-server, tasks of {backend.describe()})..."):
        result = control.up(Path.cwd(), backend=backend)
    view = control.status(Path.cwd())
    if f.json:
        ui.print_json({"started": result.started, **_status_json(view)})
        return
    word = "Started" if result.started else "Reusing the running"
    ui.success(f"{word} sandbox in {result.state.dir}.")
    if view is not None:
        _show_status(view)
    ui.info('Use it: `rexctl --sandbox <command>` here, or `eval "$(rexctl sandbox env)"`.')


@sandbox_app.command("down")
def down_cmd(ctx: typer.Context, json: JsonOption = False) -> None:
    """Stop the sandbox of this directory and every process it started."""
    from rexctl.sandbox import control

    f = get_factory(ctx, json=json)
    with ui.status("Stopping the sandbox..."):
        result = control.down(Path.cwd())
    if f.json:
        ui.print_json({"was_running": result.was_running, "killed": result.stopped})
        return
    if result.was_running:
        ui.success("Sandbox stopped; no process of it is left.")
    else:
        ui.info("No sandbox was running here" + (" (cleaned up its leftovers)." if result.stopped
                                                 else "."))  # fmt: skip


@sandbox_app.command("status")
def status_cmd(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show the sandbox's parts and their addresses."""
    from rexctl.sandbox import control

    f = get_factory(ctx, json=json)
    view = control.status(Path.cwd())
    if f.json:
        ui.print_json(_status_json(view))
        return
    if view is None:
        ui.info("No sandbox is running here. Start one with `rexctl sandbox up`.")
        return
    _show_status(view)


@sandbox_app.command("env")
def env_cmd(ctx: typer.Context, json: JsonOption = False) -> None:
    """Print shell exports that point rexctl and the AWS CLI at the sandbox.

    Use: eval "$(rexctl sandbox env)"
    """
    from rexctl.sandbox import control, discover

    f = get_factory(ctx, json=json)
    state = discover.find(Path.cwd())
    if state is None:
        raise UsageError("No sandbox is running here.", hint="Start one with `rexctl sandbox up`.")
    exports = control.env_exports(state)
    if f.json:
        ui.print_json(exports)
        return
    lines = [f"unset {' '.join(control.ENV_UNSET)}"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in exports.items()]
    print("\n".join(lines))


def rehearse_cmd(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the sandbox running afterwards.")
    ] = False,
    duration: Annotated[
        float,
        typer.Option("--duration", min=2, max=600, help="Seconds each failure drill observes."),
    ] = 8.0,
    settle: Annotated[
        float,
        typer.Option(
            "--settle",
            min=1,
            max=600,
            help="Seconds each drill waits, after its restore, for an answer from the cache.",
        ),
    ] = 30.0,
    drill: Annotated[
        list[str] | None,
        typer.Option(
            "--drill",
            help="Run only this drill of step 15 (repeatable): break-sg, break-nacl, wrong-host. "
            "Default: all three.",
            show_default=False,
        ),
    ] = None,
    backend_command: BackendCommand = "",
    backend_dir: BackendDir = "",
    secure: Annotated[
        bool,
        typer.Option(
            "--secure", help="With in-transit encryption (TLS) and an AUTH token from the start."
        ),
    ] = False,
    enable_later: Annotated[
        bool,
        typer.Option(
            "--enable-later",
            help="Start plain; after the drills, turn TLS and AUTH on with `rexctl provision` "
            "while the API is asked, and show that no answer failed.",
        ),
    ] = False,
    json: JsonOption = False,
    report_html: Annotated[
        Path | None,
        typer.Option(
            "--report-html",
            help="Write the rehearsal as one self-contained HTML page: the steps, and each "
            "drill's timeline chart, verdict, tasks, Redis errors and changes.",
        ),
    ] = None,
) -> None:
    """Rehearse the guide's 15 steps against the local sandbox (no AWS account needed).

    Runs init, provision (1-11), deploy (12), verify (13-14) and the three drills (15), each as
    `rexctl --sandbox ...`, against the bundled service or your backend (--backend-command, read
    as the [app] settings say). Exit 0 only when every step had its expected outcome.
    """
    from rexctl.drills import records
    from rexctl.sandbox.rehearse import check_drills, rehearse

    if report_html is not None:
        records.check_output("--report-html", report_html)
    f = get_factory(ctx, json=json)
    if secure and enable_later:
        raise UsageError(
            "--secure and --enable-later are two rehearsals: TLS and AUTH from the start, or "
            "turned on later. Choose one."
        )
    drills = check_drills(drill or [])
    backend = _backend(ctx, f, backend_command, backend_dir)
    result = rehearse(
        Path.cwd(), keep=keep, duration=duration, settle=settle, drills=drills, backend=backend,
        app=f.local_config().app, secure=secure, enable_later=enable_later, on_step=_progress,
    )  # fmt: skip
    if report_html is not None:
        _write_rehearsal_page(result, report_html)
    if f.json:
        ui.print_json(result.to_dict())
    else:
        _show_rehearsal(result)
    if result.advice:
        ui.info(f"What to change in {result.backend.describe()}:")
        for line in result.advice:
            ui.info(f"  - {line}")
    ui.info(result.sandbox_note)
    if result.interrupted:
        raise Interrupted("The rehearsal was interrupted; the steps after it did not run.")
    if not result.passed:
        failed = [f"{s.step} {s.name}" for s in result.steps if s.status != "passed"]
        raise CheckFailed("The rehearsal failed at: " + ", ".join(failed) + ".")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(sandbox_app, name="sandbox")
    app.command("rehearse")(rehearse_cmd)


# Rendering -------------------------------------------------------------------------------------


def _status_json(view: Status | None) -> dict[str, Any]:
    if view is None:
        return {"running": False}
    from rexctl.redact import redact_text

    backend = view.backend.to_dict()
    backend["command"] = [redact_text(a) for a in view.backend.command]
    return {
        "running": True,
        **view.state.to_dict(),
        "redis_up": view.redis_up,
        "backend": backend,
        "tasks": [t.__dict__ for t in view.tasks],
    }


def _show_status(view: Status) -> None:
    s = view.state
    rows: list[tuple[str, str, str]] = [
        ("daemon", f"pid {s.pid}", f"log {s.log_path}"),
        ("AWS APIs (moto)", s.endpoint_url, f"region {s.region}"),
        ("load balancer (app URL)", s.app_url, f"{sum(t.status == 'RUNNING' for t in view.tasks)}"
         " task(s) behind it"),
        ("cache node (redis-server)", f"127.0.0.1:{s.redis_port}", "up" if view.redis_up
         else "down"),
    ]  # fmt: skip
    health = f"health GET {view.backend.health_path}"
    rows.append(("backend (each task runs)", view.backend.describe(), health))
    for t in view.tasks:
        revision = t.task_definition.rsplit("/", 1)[-1]
        gate = f", gate 127.0.0.1:{t.gate_port} for {t.redis_host}" if t.gate_port else ""
        rows.append(
            (f"task {t.id[:8]} ({t.status})", f"http://127.0.0.1:{t.port}", f"{revision}{gate}")
        )
    ui.show(
        ui.table(
            ["part", "address", "detail"],
            rows,
            title=f"Sandbox {s.dir} (ECS {s.cluster}/{s.service})",
            styles=STATUS_STYLES,
        )
    )


def _progress(step: StepResult | None, label: str) -> None:
    if step is None:
        ui.info(f"… {label}")
    elif step.status == "passed":
        ui.success(f"{label}: passed ({step.seconds:.1f} s). {step.detail}")
    else:
        ui.error(f"{label}: failed ({step.seconds:.1f} s). {step.detail}")


def _write_rehearsal_page(result: Rehearsal, path: Path) -> None:
    """The steps on top, then a section per drill, from the record each drill printed, and one
    per watched step (TLS and AUTH later, the token rotation) from what the API answered."""
    from rexctl.drills import records

    steps, drawn, watched = [], [], []
    for i, s in enumerate(result.steps):
        row = s.to_dict()
        row.pop("observations", None)
        if records.is_record(s.data):
            drawn.append(s.data)
            row["record_id"] = s.data.get("id")
        elif s.observations is not None:
            row["section_id"] = f"watched-{i}"
            watched.append({**s.to_dict(), "section_id": row["section_id"]})
        steps.append(row)
    try:
        records.write_html(path, drawn, steps, watched)
    except OSError as exc:  # the rehearsal's outcome decides the exit code
        ui.warn(f"Could not write the report {path}: {exc}")
    else:
        ui.info(f"The rehearsal's report: {path} (open it in a browser).")


def _show_rehearsal(result: Rehearsal) -> None:
    rows = [(s.step, s.name, s.status, s.detail) for s in result.steps]
    verdict = "every step passed" if result.passed else "some steps failed"
    ui.show(
        ui.table(
            ["guide step", "rexctl", "result", "detail"],
            rows,
            title=f"Rehearsal: {verdict} ({result.seconds:.0f} s)",
            styles=ui.VERDICT_STYLES,
        )
    )
