"""The root CLI: start-up cost, global options, errors at the edge."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from rexctl.cli import app

runner = CliRunner()


def test_help_does_not_import_boto3() -> None:
    code = "import sys; from rexctl.cli import app; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("rexctl ")
