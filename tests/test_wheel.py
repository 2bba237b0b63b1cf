"""The built wheel, installed in a fresh virtualenv outside the checkout, works as a user's would.

Nothing is downloaded: the wheel is built with .venv's setuptools (no build isolation) and
installed with --no-deps --no-index into a new virtualenv that sees .venv's packages
through a .pth file (a plain path: .venv's own .pth files, the editable install's
among them, are not run). Every command runs from a temporary folder, so nothing of
the checkout is on its path.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import snowcheck

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "snowcheck")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    site_packages: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _quiet_pip(*argv: str) -> list[str]:
    return [sys.executable, "-m", "pip", *argv, "--disable-pip-version-check", "--quiet"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # a copy: building writes build/ and *.egg-info next to it
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = base / "dist"
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist)]
    subprocess.run(_quiet_pip(*build, str(source)), check=True, timeout=300)
    [wheel] = dist.glob("snowcheck-*.whl")

    fresh = base / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site_packages / "dotvenv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = ["install", "--no-deps", "--no-index", str(wheel)]
    subprocess.run([str(python), *_quiet_pip(*install)[1:]], check=True, timeout=300)

    cwd = base / "elsewhere"
    cwd.mkdir()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SERVICENOW_", "SN_", "SNOWCHECK_", "PYTHON"))
    }
    env["XDG_STATE_HOME"] = str(base / "state")
    env["NO_PROXY"] = "127.0.0.1,localhost"
    yield Installed(wheel, fresh / "bin", site_packages, cwd, env)


def test_the_wheel_ships_the_data_and_names_license_and_home_page(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = set(archive.namelist())
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    assert {"snowcheck/data/demo-scenario.json", "snowcheck/data/snapshot.json"} <= names
    assert "snowcheck/py.typed" in names
    assert re.search(r"^License-Expression: MIT$", metadata, re.M)
    assert re.search(r"^Project-URL: Homepage, https://\S+$", metadata, re.M)
    assert re.search(rf"^Version: {re.escape(snowcheck.__version__)}$", metadata, re.M)


def test_version_comes_from_the_installed_copy(installed: Installed) -> None:
    done = installed.run(str(installed.bin / "snowcheck"), "--version")
    assert done.returncode == 0, done.stderr
    where = installed.site_packages / "snowcheck"
    assert done.stdout.startswith(f"snowcheck {snowcheck.__version__} from {where} (Python ")
    via_module = installed.run(str(installed.bin / "python"), "-m", "snowcheck", "--version")
    assert via_module.returncode == 0 and via_module.stdout == done.stdout


def test_demo_runs_from_another_folder(installed: Installed) -> None:
    done = installed.run(str(installed.bin / "snowcheck"), "demo")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "snowcheck demo: an emulated instance at http://127.0.0.1:" in done.stdout
    assert "ecc_agent_issue after the second --apply" in done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_emulator_says_how_to_point_snowcheck_at_it(installed: Installed) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [str(installed.bin / "snowcheck"), "emulator", "--port", str(port)],
        cwd=installed.cwd,
        env=installed.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        listening = server.stderr.readline()
        assert (
            listening == f"snowcheck emulator listening on http://127.0.0.1:{port} (user: admin)\n"
        )
        how = server.stderr.readline().strip()
        found = re.fullmatch(
            r"point snowcheck at it: SERVICENOW_PASSWORD=(\S+) (snowcheck check .*)", how
        )
        assert found, how
        password, command = found.groups()
        assert f"--instance http://127.0.0.1:{port} --user admin" in command
        # Follow the instructions: a dry run against the emulator, with the installed copy.
        argv = [str(installed.bin / "snowcheck"), *command.split()[1:], "--format", "json"]
        checked = subprocess.run(
            argv,
            cwd=installed.cwd,
            env={**installed.env, "SERVICENOW_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
        assert '"schema_version": 1' in checked.stdout
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
    with socket.socket() as probe:  # stopped: the port is free again
        probe.bind(("127.0.0.1", port))
