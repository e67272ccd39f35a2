"""The rexctl command line: root app, global options, the one place errors become exit codes.

Command groups live one module each beside this file and are attached with `add_typer`. Heavy
imports (boto3, moto, httpx) happen inside commands, so `rexctl --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from rexctl import __version__, ui
from rexctl.cli import chaos, deploy, probe, provision, sandbox, verify
from rexctl.cli.factory import GlobalOptions
from rexctl.errors import ExitCode, RexctlError


class RexctlGroup(TyperGroup):
    """Turns every expected failure into one message on stderr and its documented exit code."""

    # Global flags a user may also type after the command name (`rexctl provision --sandbox`).
    LIFTED_FLAGS = ("--sandbox",)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if ctx.parent is None:
            end = args.index("--") if "--" in args else len(args)
            lifted = [a for a in args[:end] if a in self.LIFTED_FLAGS]
            if lifted:
                rest = [a for a in args[:end] if a not in self.LIFTED_FLAGS]
                args = lifted + rest + args[end:]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except RexctlError as exc:
            if os.environ.get("REXCTL_DEBUG") == "1":
                raise
            ui.error(exc.message)
            if exc.hint:
                ui.info(exc.hint)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            ui.error("Interrupted.")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:
            if type(exc).__module__.startswith(("botocore", "boto3")):
                if os.environ.get("REXCTL_DEBUG") == "1":
                    raise
                from rexctl.aws.errors import translate

                err = translate(exc)
                ui.error(err.message)
                if err.hint:
                    ui.info(err.hint)
                raise typer.Exit(int(err.exit_code)) from None
            raise


app = typer.Typer(
    cls=RexctlGroup,
    name="rexctl",
    help="Put a Redis cache in front of an ECS backend, prove it helps, and prove the backend "
    "survives when the cache goes away. Start with `rexctl rehearse` (no AWS account needed).",
    rich_markup_mode=None,  # plain help: rich costs more start-up time than it adds
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"rexctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[
        str, typer.Option("--profile", envvar="REXCTL_PROFILE", help="AWS profile to use.")
    ] = "",
    region: Annotated[
        str, typer.Option("--region", envvar="REXCTL_REGION", help="AWS region, e.g. us-east-1.")
    ] = "",
    endpoint_url: Annotated[
        str,
        typer.Option(
            "--endpoint-url",
            envvar="REXCTL_ENDPOINT_URL",
            help="Send AWS calls here (moto, the sandbox). AWS_ENDPOINT_URL works too.",
        ),
    ] = "",
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", envvar="REXCTL_CONFIG", help="Configuration file.", show_default=True
        ),
    ] = Path("rexctl.toml"),
    json: Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to confirmations.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr.")
    ] = 0,
    use_sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            envvar="REXCTL_SANDBOX",
            help="Point every AWS call at the local sandbox (`rexctl sandbox up`); may also "
            "follow the command name.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    ui.reset()
    ctx.obj = GlobalOptions(
        profile=profile,
        region=region,
        endpoint_url=endpoint_url,
        config=config,
        json=json,
        yes=yes,
        verbose=verbose,
        sandbox=use_sandbox,
    )
    if ctx.invoked_subcommand not in (None, "chaos"):
        _warn_unrestored_drills(config)


def _warn_unrestored_drills(config: Path) -> None:
    """Cheap (files only, no AWS): a drill left in place must not go unnoticed."""
    from rexctl.drills.journal import default_state_dir, unrestored_summary
    from rexctl.sandbox.rehearse import unrestored_hint

    for warning in (unrestored_summary(default_state_dir(config)), unrestored_hint(Path.cwd())):
        if warning:
            ui.warn(warning)


for module in (provision, deploy, verify, probe, chaos, sandbox):  # the journey's order
    module.register(app)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a command
        sys.exit(int(ExitCode.INTERRUPTED))
