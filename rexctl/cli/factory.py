"""Builds what a command needs (configuration, AWS clients) from the global options.

Commands call `get_factory(ctx)` and never build clients themselves, so tests can point every
command at moto or the sandbox through the same options a user would pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rexctl import config as config_mod

if TYPE_CHECKING:
    from rexctl.aws.session import AwsClients


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
            # The sandbox's moto accepts any credentials: never sign its requests with real ones
            # (the same variables `rexctl sandbox env` sets and unsets).
            os.environ["AWS_ACCESS_KEY_ID"] = "sandbox"
            os.environ["AWS_SECRET_ACCESS_KEY"] = "sandbox"
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
                os.environ.pop(name, None)
            cfg = config_mod.load(self.opts.config, flags=flags)
            return replace(cfg, profile="")
        return config_mod.load(self.opts.config, flags=flags)

    @cached_property
    def aws(self) -> AwsClients:
        from rexctl.aws.session import AwsClients

        cfg = self.config
        return AwsClients(profile=cfg.profile, region=cfg.region, endpoint_url=cfg.endpoint_url)


def get_factory(ctx: typer.Context, *, json: bool = False, yes: bool = False) -> Factory:
    """The factory for this invocation; a command's own `--json`/`--yes` add to the global ones."""
    opts = ctx.find_root().obj
    if not isinstance(opts, GlobalOptions):
        opts = GlobalOptions()
    if json or yes:
        opts = replace(opts, json=opts.json or json, yes=opts.yes or yes)
    return Factory(opts)
