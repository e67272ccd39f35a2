"""Builds what a command needs (configuration, AWS clients) from the global options.

Commands call `get_factory(ctx)` and never build clients themselves, so tests can point every
command at moto or the sandbox through the same options a user would pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rexctl import config as config_mod

if TYPE_CHECKING:
    from rexctl.aws.session import AwsClients, Patience


SANDBOX_CREDENTIALS = ("sandbox", "sandbox")  # the keys `rexctl sandbox env` exports


@dataclass(frozen=True)
class GlobalOptions:
    profile: str = ""
    region: str = ""
    endpoint_url: str = ""
    config: Path = config_mod.DEFAULT_CONFIG_PATH
    json: bool = False
    yes: bool = False
    verbose: int = 0
    sandbox: bool = False


class Factory:
    def __init__(self, opts: GlobalOptions) -> None:
        self.opts = opts

    @property
    def json(self) -> bool:
        return self.opts.json

    @property
    def yes(self) -> bool:
        return self.opts.yes

    @cached_property
    def config(self) -> config_mod.Config:
        flags = {
            "region": self.opts.region,
            "profile": self.opts.profile,
            "endpoint_url": self.opts.endpoint_url,
        }
        if self.opts.sandbox:
            from rexctl.sandbox.discover import sandbox_settings

            for key, value in sandbox_settings(Path.cwd()).items():
                flags[key] = value
            cfg = config_mod.load(self.opts.config, flags=flags)
            return replace(cfg, profile="")
        return config_mod.load(self.opts.config, flags=flags)

    @cached_property
    def state_dir(self) -> Path:
        """Where the drill journals are, from the settings alone: no sandbox has to be running
        and no AWS is asked (`rexctl chaos restore` must work after the sandbox died)."""
        return config_mod.load(self.opts.config).state_dir

    @cached_property
    def aws(self) -> AwsClients:
        """The clients for the configured account, region and endpoint."""
        cfg = self.config
        return self.aws_for(region=cfg.region, profile=cfg.profile, endpoint_url=cfg.endpoint_url)

    def aws_for(
        self,
        *,
        region: str,
        profile: str = "",
        endpoint_url: str = "",
        patience: Patience | None = None,
        sandbox: bool | None = None,
    ) -> AwsClients:
        """Clients for another target: a log group in another region, or the account, region and
        endpoint a drill journal recorded (`sandbox`: whether that was a sandbox; default: the
        `--sandbox` flag); with `patience`, bounded timeouts and retries (the drills'). The only
        place commands get clients from."""
        from rexctl.aws.session import AwsClients

        if self.opts.sandbox if sandbox is None else sandbox:
            # The sandbox's moto accepts any credentials: never sign its requests with real ones.
            return AwsClients(
                region=region,
                endpoint_url=endpoint_url,
                credentials=SANDBOX_CREDENTIALS,
                patience=patience,
            )
        return AwsClients(
            profile=profile, region=region, endpoint_url=endpoint_url, patience=patience
        )

    def sandbox_record(self) -> dict[str, str]:
        """Which sandbox the AWS calls go to (`--sandbox`), as a drill journal records it; {}
        against AWS. A journal whose sandbox is gone is void (`rexctl.drills.runner`)."""
        if not self.opts.sandbox:
            return {}
        from rexctl.sandbox.discover import find

        state = find(Path.cwd())
        return state.record() if state is not None else {}


def get_factory(ctx: typer.Context, *, json: bool = False, yes: bool = False) -> Factory:
    """The factory for this invocation; a command's own `--json`/`--yes` add to the global ones."""
    opts = ctx.find_root().obj
    if not isinstance(opts, GlobalOptions):
        opts = GlobalOptions()
    if json or yes:
        opts = replace(opts, json=opts.json or json, yes=opts.yes or yes)
    return Factory(opts)
