"""The root CLI: start-up cost, global options, errors at the edge."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rexctl.cli import RexctlGroup, app
from rexctl.errors import AwsError, ConfigError

runner = CliRunner()


def test_help_does_not_import_boto3_or_rich() -> None:
    code = (
        "import sys; from rexctl.cli import main; sys.argv = ['rexctl', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'httpx', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "Usage: rexctl" in out.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("rexctl ")


def _app_raising(exc: BaseException) -> typer.Typer:
    """A tiny app that uses rexctl's edge (RexctlGroup) and raises `exc` from its command."""
    test_app = typer.Typer(cls=RexctlGroup)

    @test_app.callback()
    def root() -> None:
        pass

    @test_app.command()
    def boom() -> None:
        raise exc

    return test_app


def test_rexctl_error_becomes_message_and_exit_code() -> None:
    err = ConfigError("`ecs.cluster` is not set.", hint="Run `rexctl init`.")
    result = runner.invoke(_app_raising(err), ["boom"])
    assert result.exit_code == 2, result.output
    assert "Error: `ecs.cluster` is not set." in result.output
    assert "Run `rexctl init`." in result.output
    assert "Traceback" not in result.output


def test_keyboard_interrupt_exits_130() -> None:
    result = runner.invoke(_app_raising(KeyboardInterrupt()), ["boom"])
    assert result.exit_code == 130, result.output
    assert "Interrupted." in result.output


def test_escaped_botocore_error_is_translated() -> None:
    import botocore.exceptions

    result = runner.invoke(_app_raising(botocore.exceptions.NoRegionError()), ["boom"])
    assert result.exit_code == 2, result.output
    assert "No AWS region is set." in result.output


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REXCTL_DEBUG", "1")
    result = runner.invoke(_app_raising(AwsError("nope")), ["boom"])
    assert isinstance(result.exception, AwsError)


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2


def test_every_command_has_help_text() -> None:
    from typer.main import get_command

    def walk(cmd: object, path: str) -> list[tuple[str, object]]:
        found = [(path, cmd)]
        for name, sub in getattr(cmd, "commands", {}).items():
            found += walk(sub, f"{path} {name}")
        return found

    for path, cmd in walk(get_command(app), "rexctl"):
        assert (getattr(cmd, "help", None) or "").strip(), f"{path} has no help text"


def test_sandbox_flag_is_accepted_after_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`rexctl status --sandbox` means `rexctl --sandbox status` (no sandbox runs here)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REXCTL_SANDBOX_DIR", raising=False)
    result = runner.invoke(app, ["status", "--sandbox"])
    assert result.exit_code == 2, result.output
    assert "No sandbox is running here." in result.output


def test_sandbox_never_signs_with_real_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import rexctl.sandbox.discover
    from rexctl.cli.factory import Factory, GlobalOptions

    monkeypatch.setattr(
        rexctl.sandbox.discover,
        "sandbox_settings",
        lambda cwd: {"endpoint_url": "http://127.0.0.1:1", "region": "us-east-1"},
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREAL")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("REXCTL_PROFILE", "prod")
    factory = Factory(GlobalOptions(config=tmp_path / "rexctl.toml", sandbox=True))
    assert factory.config.endpoint_url == "http://127.0.0.1:1"
    assert factory.config.profile == ""
    credentials = factory.aws.session.get_credentials()
    assert (credentials.access_key, credentials.secret_key) == ("sandbox", "sandbox")
    assert factory.aws.ec2.meta.region_name == "us-east-1"
    # ... and building them changed nothing in the environment (no side effect on the process)
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAREAL"
    assert os.environ["AWS_PROFILE"] == "prod"


def _unrestored_journal(state_dir: Path, drill_id: str) -> None:
    from rexctl.drills.journal import Journal, now_iso, save

    journal = Journal(
        id=drill_id,
        drill="break-nacl",
        created_at=now_iso(),
        aws={"region": "us-east-1"},
        changes=[],
        summary=[],
        before={},
        manual_undo=[],
    )
    save(journal, state_dir)


def test_every_command_warns_about_unrestored_drills(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both the state_dir of rexctl.toml and a rehearsal's own journals are looked at."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REXCTL_STATE_DIR", raising=False)
    (tmp_path / "rexctl.toml").write_text('state_dir = "journals"\n', encoding="utf-8")
    _unrestored_journal(tmp_path / "journals", "d-user")
    _unrestored_journal(tmp_path / ".rexctl" / "sandbox" / "state", "d-rehearsal")
    result = runner.invoke(app, ["probe", "ftp://nowhere"])
    assert "1 failure drill(s) may still be in place: d-user (break-nacl)" in result.output
    assert "A rehearsal's drill may still be in place in the sandbox: d-rehearsal" in result.output
    assert "chaos restore --yes" in result.output
