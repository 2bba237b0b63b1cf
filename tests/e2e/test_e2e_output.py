"""Exit codes and outputs for cron and monitoring, the run lock, and ``snowcheck demo``."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snowcheck.emulator import Emulator

from .support import (
    PASSWORD,
    InProcess,
    Result,
    clean_env,
    error_text,
    issues,
    run_process,
    start,
)
from .test_e2e_rules import RULES

pytestmark = pytest.mark.e2e

# A scenario whose check finds nothing: one MID user, its MID Up.
HEALTHY = {
    "tables": {
        "sys_user_role": [{"sys_id": "r1", "name": "mid_server"}],
        "sys_user_has_role": [{"sys_id": "g1", "user": "u1", "role": "r1"}],
        "sys_user": [{"sys_id": "u1", "user_name": "mid.one", "active": "true"}],
        "ecc_agent_config": [
            {"ecc_agent": "m1", "param_name": "mid.instance.username", "value": "mid.one"}
        ],
        "ecc_agent": [{"sys_id": "m1", "name": "mid-one", "status": "Up"}],
        "sysevent": [{"name": "login", "parm1": "mid.one", "sys_created_on": "-5m"}],
        "ecc_agent_issue": [],
    }
}


def test_detailed_exitcode(emu: Emulator, cli: InProcess) -> None:
    assert cli(emu, "--detailed-exitcode").code == 3
    assert cli(emu, "--detailed-exitcode", "--apply", "--format", "json").code == 3
    healthy = start(HEALTHY)
    try:
        result = cli(healthy, "--detailed-exitcode", "--format", "json")
        assert result.code == 0, result.err
        assert result.json["findings"] == []
    finally:
        healthy.stop()


def test_nagios_critical(emu: Emulator, cli: InProcess) -> None:
    result = cli(emu, "--format", "nagios")
    assert result.code == 2
    lines = result.out.splitlines()
    assert lines[0].startswith("SNOWCHECK CRITICAL - ")
    assert "10 findings" in lines[0]
    for rule in RULES:
        assert f"{rule}=" in lines[0]  # perfdata per rule
    assert "9 advisories" in lines[0]
    assert len(lines) == 1 + 10 + 9  # one line per finding, then one per advisory
    assert all(line.startswith("advisory ") for line in lines[11:])


def test_nagios_unknown_when_the_check_cannot_run(emu: Emulator, cli: InProcess) -> None:
    before = issues(emu)
    emu.faults.add("hibernate", times=10)
    result = cli(emu, "--format", "nagios", "--apply")
    assert result.code == 3
    assert result.out.startswith("SNOWCHECK UNKNOWN - ")
    assert "hibernating" in result.out
    assert issues(emu) == before


def test_quiet_prints_nothing_on_success(emu: Emulator, cli: InProcess) -> None:
    dry = cli(emu, "--quiet")
    assert (dry.code, dry.out) == (0, "")
    applied = cli(emu, "--quiet", "--apply")
    assert (applied.code, applied.out) == (0, "")
    assert "Traceback" not in applied.err
    assert len([row for row in issues(emu) if row["count"] == "1"]) >= 8  # it did apply


def test_prometheus_textfile(emu: Emulator, cli: InProcess, tmp_path: Path) -> None:
    path = tmp_path / "metrics" / "snowcheck.prom"
    path.parent.mkdir()
    result = cli(emu, "--apply", "--quiet", "--prometheus-textfile", str(path))
    assert result.code == 0, result.err
    text = path.read_text(encoding="utf-8")
    findings = [line for line in text.splitlines() if line.startswith("snowcheck_findings{")]
    assert {line.split('rule="')[1].split('"')[0] for line in findings} == set(RULES)
    assert sum(int(line.rsplit(" ", 1)[1]) for line in findings) == 10
    assert f'instance="{emu.url}"' in findings[0]
    assert "snowcheck_last_run_success{" in text
    assert PASSWORD not in text
    assert list(path.parent.iterdir()) == [path]  # written atomically: no temporary left

    # A failed run still writes the file, with success 0.
    emu.faults.add("hibernate", times=10)
    failed = cli(emu, "--apply", "--quiet", "--prometheus-textfile", str(path))
    assert failed.code == 1
    text = path.read_text(encoding="utf-8")
    assert any(
        line.startswith("snowcheck_last_run_success{") and line.endswith(" 0")
        for line in text.splitlines()
    )


def _hold_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_note(result: Result) -> str:
    """The note on stderr as one string."""
    return "".join(result.err.splitlines())


def test_apply_skips_when_another_process_holds_the_lock(emu: Emulator, tmp_path: Path) -> None:
    lock = tmp_path / "snowcheck.lock"
    before = issues(emu)
    fd = _hold_lock(lock)
    try:
        result = run_process(emu, "--apply", "--lock-file", str(lock), tmp_path=tmp_path)
    finally:
        os.close(fd)
    assert result.code == 0
    assert result.out == ""
    assert "Traceback" not in result.err
    note = _lock_note(result)
    assert f"process {os.getpid()}" in note
    assert str(lock) in note
    assert "skipping" in note
    assert issues(emu) == before
    assert emu.log == []  # not even a read: the lock comes first

    # Released: the same command applies.
    result = run_process(emu, "--apply", "--lock-file", str(lock), tmp_path=tmp_path)
    assert result.code == 0, result.err
    assert issues(emu) != before


def test_default_lock_lives_under_xdg_state_home(emu: Emulator, tmp_path: Path) -> None:
    result = run_process(emu, "--apply", "--quiet", tmp_path=tmp_path)
    assert (result.code, result.out, result.err) == (0, "", "")
    locks = list((tmp_path / "state" / "snowcheck").iterdir())
    assert [path.name for path in locks] == [f"127.0.0.1_{emu.port}.lock"]


@pytest.mark.parametrize("case", ["auth-error", "lock-note"])
def test_error_is_one_line_on_stderr(emu: Emulator, tmp_path: Path, case: str) -> None:
    if case == "auth-error":
        result = run_process(emu, "--apply", tmp_path=tmp_path, password="not-the-password")
        assert result.code == 1
        assert error_text(result).startswith("snowcheck: error: authentication")
    else:
        lock = tmp_path / "snowcheck.lock"
        fd = _hold_lock(lock)
        try:
            result = run_process(emu, "--apply", "--lock-file", str(lock), tmp_path=tmp_path)
        finally:
            os.close(fd)
        assert result.code == 0
        assert "skipping" in result.err
    assert len(result.err.splitlines()) == 1, result.err


def test_demo(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "snowcheck", "demo"],
        env=clean_env(tmp_path, password=None),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "resolved" in done.stdout
    assert "127.0.0.1" in done.stdout
