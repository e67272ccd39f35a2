"""`rexctl deploy` (guide step 12) and `rexctl rollback`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexctl import ui
from rexctl.cli.factory import get_factory
from rexctl.cli.options import DryRunOption, JsonOption, PollOption

if TYPE_CHECKING:
    from rexctl.aws.ecs import ServiceEvent, ServiceView
    from rexctl.deploy import DeployPlan, Outcome

NoWaitOption = Annotated[
    bool,
    typer.Option("--no-wait", help="Start the rollout and return without waiting for it."),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="REXCTL_DEPLOY_TIMEOUT",
        min=1,
        help="Seconds to wait for the rollout before giving up (exit 1).",
    ),
]


def deploy_cmd(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    no_wait: NoWaitOption = False,
    timeout: TimeoutOption = 900.0,
    poll: PollOption = 5.0,
    rollback_on_failure: Annotated[
        bool,
        typer.Option(
            "--rollback-on-failure",
            envvar="REXCTL_DEPLOY_ROLLBACK_ON_FAILURE",
            help="When the rollout fails or times out, roll the service back to the revision it "
            "ran before, and wait for that.",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Put the cache's endpoint into the service's task definition and roll the service (step 12).

    Registers a revision only when a REDIS_* value changes; waits until the PRIMARY deployment
    runs it, rollout COMPLETED. Exit 1 when the rollout fails or is rolled back.
    """
    from rexctl.deploy import WaitOptions, deploy

    f = get_factory(ctx, json=json)
    with _progress() as on_progress:
        outcome = deploy(
            f.config,
            ecs=f.aws.ecs,
            elasticache=f.aws.elasticache,
            secretsmanager=f.aws.secretsmanager,
            dry_run=dry_run,
            wait=WaitOptions(
                not no_wait,
                timeout,
                poll,
                on_progress=on_progress,
                rollback_on_failure=rollback_on_failure,
            ),
            on_plan=None if f.json else _show_plan,
        )
    _report(outcome, f.json)


def rollback_cmd(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="ARN_OR_FAMILY:REV",
            help="Revision to go back to (default: the one recorded by the last `rexctl deploy`).",
        ),
    ] = "",
    dry_run: DryRunOption = False,
    no_wait: NoWaitOption = False,
    timeout: TimeoutOption = 900.0,
    poll: PollOption = 5.0,
    json: JsonOption = False,
) -> None:
    """Put the service back on the revision it ran before the last `rexctl deploy` (or --to)."""
    from rexctl.deploy import WaitOptions, rollback

    f = get_factory(ctx, json=json)
    with _progress() as on_progress:
        outcome = rollback(
            f.config,
            ecs=f.aws.ecs,
            to=to,
            dry_run=dry_run,
            wait=WaitOptions(not no_wait, timeout, poll, on_progress=on_progress),
        )
    _report(outcome, f.json)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("deploy")(deploy_cmd)
    app.command("rollback")(rollback_cmd)


# ---------------------------------------------------------------------------------------------
# Rendering


def _show_plan(plan: DeployPlan) -> None:
    from rexctl.aws.ecs import short_arn

    for warning in plan.warnings:
        ui.warn(warning)
    title = f"{plan.service}: container {plan.container} of {short_arn(plan.current.arn)}"
    if not plan.changes:
        return
    rows = [(c.name, c.shown("old"), c.shown("new")) for c in plan.changes]
    ui.show(ui.table(["variable", "now", "new revision"], rows, title=title))


def _when(event: ServiceEvent) -> str:
    return event.created_at.strftime("%H:%M:%S") if event.created_at else "--:--:--"


def _deployments_line(view: ServiceView) -> str:
    from rexctl.aws.ecs import short_arn

    return "; ".join(
        f"{d.status} {short_arn(d.task_definition)} {d.rollout_state or '-'}, running "
        f"{d.running}/{d.desired}" + (f", {d.failed_tasks} failed" if d.failed_tasks else "")
        for d in view.deployments
    )


@contextmanager
def _progress() -> Iterator[Callable[[ServiceView, list[ServiceEvent]], None]]:
    """The rollout as it goes, on stderr. On a terminal: a live view of the deployments and the
    newest service events, started with the first look so the plan printed before stays above it.
    Elsewhere (CI, a pipe): a line whenever the deployments change and one per new event."""
    if not ui.interactive():
        last = [""]

        def on_line(view: ServiceView, fresh: list[ServiceEvent]) -> None:
            line = _deployments_line(view)
            if line != last[0]:
                ui.info(f"Deployments: {line}")
                last[0] = line
            for e in fresh:
                ui.info(f"  {_when(e)} {e.message}")

        yield on_line
        return
    state: dict[str, Any] = {"view": None, "events": []}

    def render() -> Any:
        from rexctl.aws.ecs import short_arn

        view = state["view"]
        rows = [
            (d.status, short_arn(d.task_definition), d.rollout_state or "-",
             f"{d.running}/{d.desired}", d.pending, d.failed_tasks)
            for d in view.deployments
        ]  # fmt: skip
        columns = ["deployment", "revision", "rollout", "running", "pending", "failed"]
        events = [(_when(e), e.message) for e in state["events"][-8:]]
        tables = [ui.table(columns, rows)]
        if events:  # a table folds long messages where plain text would be cut
            tables.append(ui.table(["time", "new service events"], events))
        return ui.group(*tables)

    with ExitStack() as stack:
        refresh: list[Callable[[], None]] = []

        def on_progress(view: ServiceView, fresh: list[ServiceEvent]) -> None:
            state["view"] = view
            state["events"].extend(fresh)
            if not refresh:
                refresh.append(stack.enter_context(ui.live(render)))
            refresh[0]()

        yield on_progress


def _report(outcome: Outcome, as_json: bool) -> None:
    from rexctl.aws.ecs import short_arn
    from rexctl.errors import CheckFailed

    if as_json:
        ui.print_json(outcome.to_dict())
    plan, verb = outcome.plan, outcome.action
    if outcome.status == "unchanged" and plan and plan.rollout_pending and not outcome.rollout:
        ui.warn(
            f"Nothing to register: the service is already set to {short_arn(outcome.from_arn)}, "
            f"but {plan.rollout_pending}."
        )
    elif outcome.status == "unchanged":
        ui.success(
            f"The service already runs the right revision ({short_arn(outcome.from_arn)}); "
            "nothing was registered or changed."
            if verb == "deploy"
            else f"The service already runs {short_arn(outcome.to_arn)}; nothing changed."
        )
    elif outcome.status == "dry-run":
        if not as_json and plan is not None:
            from rexctl.deploy import redacted_revision

            ui.info("Dry run: this revision would be registered (nothing was changed):")
            ui.print_json(redacted_revision(plan.revision))
        target = short_arn(outcome.to_arn) if outcome.to_arn else "the new revision"
        ui.info(
            f"Dry run: would update service {outcome.service} in cluster {outcome.cluster} "
            f"to {target}, then wait for the rollout."
        )
    elif outcome.status == "started":
        ui.success(
            f"{'Registered and started' if verb == 'deploy' else 'Started'}: service "
            f"{outcome.service} is rolling to {short_arn(outcome.to_arn)} (not waiting; "
            "`rexctl verify` checks it)."
        )
    elif outcome.rollout is not None and outcome.ok:
        ui.success(outcome.rollout.reason)
    if outcome.ok:
        return
    rollout = outcome.rollout
    if rollout is not None and rollout.events and not as_json and ui.interactive():
        # The live view showed only the newest events; off a terminal each was printed already.
        ui.info("Service events during the rollout:")
        for event in rollout.events:
            ui.info(f"  {_when(event)} {event.message}")
    back = outcome.rolled_back
    if back is not None:
        hint = (
            f"Rolled back to {short_arn(back.to_arn)}: "
            + (back.rollout.reason if back.rollout else back.status)
            if back.ok
            else f"The rollback to {short_arn(back.to_arn)} failed too: "
            + (back.rollout.reason if back.rollout else back.status)
        )
    elif verb == "deploy" and outcome.to_arn:
        hint = (
            f"ECS goes on with the rollout. To go back: `rexctl rollback --to "
            f"{short_arn(outcome.from_arn)}` (or `rexctl deploy --rollback-on-failure` next time)."
        )
    else:
        hint = None
    raise CheckFailed(rollout.reason if rollout else f"The {verb} failed.", hint=hint)
