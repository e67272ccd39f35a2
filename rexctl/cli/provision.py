"""`rexctl init`, `plan`, `provision`, `status`, `teardown`: the cache, guide steps 1-11.

Each command parses its options, builds clients through the factory, calls one core function
(`rexctl.provision`, `rexctl.provision.status`) and renders the result. The core is imported
inside the commands so `rexctl --help` never imports boto3.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexctl import ui
from rexctl.cli.factory import get_factory
from rexctl.cli.options import DryRunOption, JsonOption, PollOption, YesOption
from rexctl.errors import UsageError

if TYPE_CHECKING:
    from rexctl.provision import ProvisionResult, TeardownPlan, TeardownResult
    from rexctl.provision.plan import Plan

TimeoutOption = Annotated[
    int | None,
    typer.Option(
        "--timeout",
        min=1,
        help="Seconds to wait for the cache (default: cache.wait_timeout, 1800).",
        show_default=False,
    ),
]


class UiReporter:
    """Core messages to stderr; progress as a spinner, or (not on a terminal, e.g. CI logs) a
    line per status change and at least one a minute, so a long wait never looks hung."""

    HEARTBEAT = 60.0

    def __init__(self, subject: str, spinner: Any) -> None:
        self.subject = subject
        self.spinner = spinner
        self.last = ""
        self.last_line_at = 0.0

    def info(self, message: str) -> None:
        ui.info(message)

    def warn(self, message: str) -> None:
        ui.warn(message)

    def success(self, message: str) -> None:
        ui.success(message)

    def progress(self, status: str, elapsed: float) -> None:
        minutes, seconds = divmod(int(elapsed), 60)
        text = f"{self.subject}: {status} ({minutes}m {seconds:02d}s elapsed)"
        self.spinner.update(text)
        due = status != self.last or elapsed - self.last_line_at >= self.HEARTBEAT
        if due and not ui.interactive():
            ui.info(text)
            self.last_line_at = elapsed
        self.last = status


def init(
    ctx: typer.Context,
    cluster: Annotated[
        str, typer.Option("--cluster", envvar="REXCTL_ECS_CLUSTER", help="ECS cluster name.")
    ] = "",
    service: Annotated[
        str, typer.Option("--service", envvar="REXCTL_ECS_SERVICE", help="ECS service name.")
    ] = "",
    container: Annotated[
        str,
        typer.Option(
            "--container",
            envvar="REXCTL_ECS_CONTAINER",
            help="Container that gets REDIS_* (default: the only one, else 'backend').",
        ),
    ] = "",
    url: Annotated[
        str, typer.Option("--url", envvar="REXCTL_APP_URL", help="The API URL (app.url).")
    ] = "",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    json: JsonOption = False,
) -> None:
    """Read the ECS service and its VPC and write rexctl.toml."""
    from rexctl.provision import init_config

    f = get_factory(ctx, json=json)
    with ui.status(f"Reading ECS service {service}..."):
        result = init_config(
            f.aws,
            f.config,
            cluster=cluster,
            service=service,
            container=container,
            url=url,
            force=force,
        )
    if f.json:
        ui.print_json({"path": str(result.path), "settings": result.values})
        return
    ui.print_text(result.text)
    ui.success(f"Wrote {result.path}. Next: `rexctl plan`, then `rexctl provision`.")


def plan(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show the guide's 15 steps and the state of each (read-only)."""
    from rexctl.provision import plan_account

    f = get_factory(ctx, json=json)
    with ui.status("Reading the account..."):
        result = plan_account(f.aws, f.config)
    if f.json:
        ui.print_json(result.to_dict())
        return
    _show_plan(result, title=f"Plan for {result.cache_id}")


def provision(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    timeout: TimeoutOption = None,
    poll: PollOption = 5.0,
    json: JsonOption = False,
) -> None:
    """Create or reuse the cache, its subnet group and security group (steps 1-11).

    On a running cache, `cache.tls` / `cache.auth` turned on are applied in place, step by step
    (preferred, the token, a rollout, verify, required, SET), without the API losing its cache;
    running it again continues where it stopped. See docs/provision.md.
    """
    from rexctl.provision import provision as run

    f = get_factory(ctx, json=json)
    cfg = f.config
    with ui.status(f"Provisioning {cfg.cache.id}...") as spinner:
        result = run(
            f.aws,
            cfg,
            reporter=UiReporter(cfg.cache.id, spinner),
            dry_run=dry_run,
            timeout=timeout,
            poll=poll,
        )
    _show_provision(result, json=f.json)
    error = result.error()
    if error is not None:
        raise error


def rotate_token(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    timeout: TimeoutOption = None,
    poll: PollOption = 5.0,
    json: JsonOption = False,
) -> None:
    """Give the cache a new AUTH token without a failed answer (ROTATE, roll, SET).

    The new token is staged in Secrets Manager (AWSPENDING), ROTATEd in (both tokens work), made
    the secret's current version, the service is forced into a new deployment (each new task
    reads it), every running task is checked, then the token is SET. The plan is shown first;
    running it again after an interruption continues. See docs/provision.md.
    """
    from rexctl.provision.rotate import rotate_token as run

    f = get_factory(ctx, json=json)
    cfg = f.config
    with ui.status(f"Rotating the AUTH token of {cfg.cache.id}...") as spinner:
        result = run(
            f.aws,
            cfg,
            reporter=UiReporter(cfg.cache.id, spinner),
            dry_run=dry_run,
            timeout=timeout,
            poll=poll,
        )
    if f.json:
        ui.print_json(result.to_dict())
    elif dry_run:
        ui.info("Dry run: nothing was changed.")


def status(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show the cache, its security group and subnet group, and the ECS service."""
    from rexctl.provision.status import gather_status

    f = get_factory(ctx, json=json)
    with ui.status("Reading the account..."):
        report = gather_status(f.aws, f.config)
    if f.json:
        ui.print_json(report)
        return
    _show_status(report)


def teardown(
    ctx: typer.Context,
    yes: YesOption = False,
    timeout: TimeoutOption = None,
    json: JsonOption = False,
) -> None:
    """Delete what rexctl created (tagged managed-by=rexctl), after asking."""
    import time

    from rexctl.provision import TeardownResult, plan_teardown
    from rexctl.provision import teardown as run

    f = get_factory(ctx, json=json, yes=yes)
    cfg = f.config
    with ui.status("Reading the account..."):
        doomed = plan_teardown(f.aws, cfg)
    _show_teardown_plan(doomed, json=f.json)
    if not doomed.doomed:
        if doomed.refused:
            ui.info("Nothing else to delete.")
        else:
            ui.info("Nothing to delete: no resource of this cache carries managed-by=rexctl.")
        if f.json:
            ui.print_json(TeardownResult(plan=doomed).to_dict())
        refused = doomed.error()
        if refused is not None:
            raise refused
        return
    if not _confirmed(doomed, yes=f.yes, json=f.json):
        return
    with ui.status(f"Deleting {cfg.cache.id}...") as spinner:
        result = run(
            f.aws,
            cfg,
            doomed,
            reporter=UiReporter(cfg.cache.id, spinner),
            timeout=float(timeout or cfg.cache.wait_timeout),
            clock=time.monotonic,
            sleep=time.sleep,
        )
    _show_teardown_result(result, json=f.json)
    error = result.error()
    if error is not None:
        raise error


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    for command in (init, plan, provision, status, teardown):
        app.command()(command)
    app.command("rotate-token")(rotate_token)


# Rendering -------------------------------------------------------------------------------------


def _show_plan(plan: Plan, *, title: str, messages: bool = True) -> None:
    from rexctl.provision.plan import STATE_STYLES

    rows = [(s.number, s.title, str(s.state), s.detail) for s in plan.steps]
    ui.show(ui.table(["Step", "What", "State", "Detail"], rows, title=title, styles=STATE_STYLES))
    if not messages:  # the core already reported them
        return
    for warning in plan.warnings:
        ui.warn(warning)
    for blocker in plan.blockers:
        ui.error(blocker.message)
        if blocker.hint:
            ui.info(blocker.hint)


def _show_provision(result: ProvisionResult, *, json: bool) -> None:
    if json:
        ui.print_json(result.to_dict())
        return
    if result.dry_run or result.refusal is not None:
        word = "Dry run" if result.dry_run else "Refused"
        _show_plan(
            result.plan, title=f"{word}: steps 1-11 for {result.plan.cache_id}", messages=False
        )
        if result.dry_run:
            ui.info("Dry run: nothing was changed.")
        return
    c = result.cache
    if c is not None and c.endpoint:
        _kv(
            f"Cache {c.id}",
            [("Status", c.status), ("Primary endpoint", c.endpoint), ("Port", c.port)],
        )


def _kv(title: str, rows: list[tuple[str, Any]]) -> None:
    """Key/value lines on stdout: never truncated, so endpoints can be copied (step 11)."""
    width = max(len(k) for k, _ in rows)
    ui.print_text("\n".join([title, *(f"  {k + ':':<{width + 1}} {v}" for k, v in rows)]))


def _show_status(report: dict[str, Any]) -> None:
    c = report["cache"]
    if c:
        enc = (
            f"at rest {'on' if c['at_rest_encryption'] else 'off'}, in transit "
            f"{'on' if c['transit_encryption'] else 'off'}, AUTH {'on' if c['auth'] else 'off'}"
        )
        rows = [
            ("Status", c["status"]),
            ("Endpoint", f"{c['endpoint']}:{c['port']}"),
            ("Node type", f"{c['node_type']} (+{c['replicas']} replica(s))"),
            ("Encryption", enc),
            ("Managed by rexctl", "yes" if c["managed_by_rexctl"] else "no"),
        ]
        if report.get("auth_secret"):
            rows.append(("AUTH token", f"in secret {report['auth_secret']['name']}"))
        _kv(f"Cache {c['id']}", rows)
    sg = report["security_group"]
    if sg:
        rules = [(r["rule"], r["protocol"], r["ports"], r["source"]) for r in sg["inbound"]]
        title = f"Security group {sg['name']} ({sg['id']}): inbound rules"
        ui.show(ui.table(["Rule", "Protocol", "Ports", "Source"], rules, title=title))
    sn = report["subnet_group"]
    if sn:
        subnets = [
            (s["id"], s["az"], "public" if s["public"] else "private") for s in sn["subnets"]
        ]
        title = f"Subnet group {sn['name']} ({sn['vpc_id']})"
        ui.show(ui.table(["Subnet", "AZ", "Kind"], subnets, title=title, styles={"public": "red"}))
    svc = report["service"]
    if svc:
        rows = [
            ("Task definition", svc["task_definition"]),
            ("Running / desired", f"{svc['running']} / {svc['desired']}"),
        ]
        rows += [(k, v) for k, v in svc["redis"].items()] or [("REDIS_*", "(none set)")]
        _kv(f"ECS service {svc['cluster']}/{svc['name']}", rows)
    for item in report["missing"]:
        ui.warn(f"Missing: {item}")


def _show_teardown_plan(plan: TeardownPlan, *, json: bool) -> None:
    """The table on stdout; with --json (stdout is for JSON) one line per resource on stderr."""
    if json:
        for r in plan.resources:
            ui.info(f"Will delete {r.label()}." if r.delete else f"Keeps {r.label()}: {r.why}.")
    elif plan.resources:
        rows = [
            (
                r.kind,
                r.label().removeprefix(r.kind + " "),
                "delete" if r.delete else f"kept ({r.why})",
            )
            for r in plan.resources
        ]
        title = f"Teardown of {plan.cache_id}"
        ui.show(
            ui.table(["Kind", "Resource", "Action"], rows, title=title, styles={"delete": "red"})
        )
    for warning in plan.warnings:
        ui.warn(warning)


def _confirmed(plan: TeardownPlan, *, yes: bool, json: bool) -> bool:
    """--yes, or a yes on a terminal; refuses when nobody can be asked."""
    if yes:
        return True
    if not (ui.interactive() and sys.stdin.isatty()):
        if json:
            ui.print_json(plan.to_dict())
        raise UsageError(
            "rexctl teardown deletes resources and needs a confirmation; this is not an "
            "interactive terminal.",
            hint="Re-run with `--yes` once the list above is what you want deleted.",
        )
    if ui.confirm(f"Delete these {len(plan.doomed)} resource(s)?"):
        return True
    ui.info("Nothing was deleted.")
    return False


def _show_teardown_result(result: TeardownResult, *, json: bool) -> None:
    if json:
        ui.print_json(result.to_dict())
        return
    for r in result.plan.kept:
        ui.info(f"Kept {r.label()}: {r.why}.")
