"""Issue 9: the wheel that `pip install rexctl` installs claims no generic top-level module, carries
the bundled backend as `rexctl.service` (which runs from there), and depends on what the sandbox
needs (moto, bounded to the minor version the sandbox's moto_state.py is tested on)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (path,) = out.glob("rexctl-*.whl")
    return path


def test_the_wheel_installs_only_the_rexctl_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"rexctl"}
    assert "rexctl/service/__main__.py" in names and "rexctl/service/app.py" in names
    assert "rexctl/sandbox/guard.py" in names  # run as a file by the sandbox


def test_the_wheel_depends_on_a_bounded_moto(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]  # fmt: skip
    moto = [r for r in requires if r.startswith("moto")]
    assert len(moto) == 1 and "<5.3" in moto[0] and ">=5.2" in moto[0], requires
    assert any(r.startswith("flask") for r in requires)  # moto's server, which the sandbox runs


def test_the_installed_backend_runs_as_rexctl_service(wheel: Path, tmp_path: Path) -> None:
    """Unpacked as site-packages would hold it, away from the checkout: `python -m rexctl.service`
    starts, validates its environment and refuses a bad PORT with exit 2 (its documented code)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "PORT": "not-a-port"}
    proc = subprocess.run(
        [sys.executable, "-m", "rexctl.service"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "PORT" in proc.stderr and "Traceback" not in proc.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import rexctl.service, sys; print(rexctl.service.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip().startswith(str(site)), probe.stdout + probe.stderr
