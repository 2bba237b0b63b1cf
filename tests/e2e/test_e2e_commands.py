"""The other commands end to end: ``snowcheck emulator`` in its own process, and ``doctor``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from snowcheck.emulator import Emulator

from .support import (
    DEMO_SCENARIO,
    PASSWORD,
    USER,
    InProcess,
    Result,
    clean_env,
    demo_data,
    issues,
    start,
)

pytestmark = pytest.mark.e2e


def test_emulator_command_serves_a_check_from_another_process(tmp_path: Path) -> None:
    """``snowcheck emulator --port 0`` in one process, ``snowcheck check --apply`` in
    another: the URL and user come from the emulator's one line on stderr."""
    serve = ["emulator", "--port", "0", "--scenario", str(DEMO_SCENARIO)]
    server = subprocess.Popen(
        [sys.executable, "-m", "snowcheck", *serve],
        env=clean_env(tmp_path, password=None),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+) \(user: (\S+)\)", line)
        assert found, line
        url, user = found.groups()
        env = clean_env(tmp_path, password="admin")
        command = [sys.executable, "-m", "snowcheck", "check", "--instance", url]
        done = subprocess.run(
            [*command, "--user", user, "--apply", "--format", "json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        assert len(Result(0, done.stdout, "").json["changes"]) == 11
        again = subprocess.run(
            [*command, "--user", user, "--apply", "--format", "json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        actions = {c["action"] for c in Result(0, again.stdout, "").json["changes"]}
        assert actions == {"update"}  # the first run's creates were stored
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()


def test_doctor_on_a_healthy_account(emu: Emulator, cli: InProcess) -> None:
    before = issues(emu)
    result = cli.main(["doctor", "--instance", emu.url, "--user", USER])
    assert result.code == 0, result.out + result.err
    assert "FAIL" not in result.out
    assert "Traceback" not in result.err
    assert PASSWORD not in result.out + result.err
    assert issues(emu) == before  # the doctor writes nothing


@pytest.mark.parametrize(
    ("access", "names"),
    [
        pytest.param({"deny_read": ["sysevent"]}, "sysevent", id="read-denied"),
        pytest.param({"deny_write": ["ecc_agent_issue"]}, "ecc_agent_issue", id="write-denied"),
    ],
)
def test_doctor_names_the_missing_access(
    cli: InProcess, access: dict[str, list[str]], names: str
) -> None:
    data = demo_data()
    data["users"] = {USER: {"password": PASSWORD, **access}}
    emu = start(data)
    try:
        before = issues(emu)
        result = cli.main(["doctor", "--instance", emu.url, "--user", USER])
        assert result.code == 1
        failures = [line for line in result.out.splitlines() if line.startswith("FAIL")]
        assert failures, result.out
        assert any(names in line for line in failures), failures
        assert "Traceback" not in result.err
        assert issues(emu) == before
    finally:
        emu.stop()
