"""Two real CLI processes at once against one instance: with the lock, and without it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from .support import (
    SOURCE,
    InProcess,
    Result,
    by_message,
    clean_env,
    cli_command,
    open_ours,
    ours,
    reference,
    start,
    summary,
)

pytestmark = pytest.mark.e2e

LATENCY = 0.15


def _spawn(command: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> Result:
    out, err = process.communicate(timeout=60)
    return Result(process.returncode, out, err)


def test_second_run_skips_while_the_first_holds_the_lock(cli: InProcess, tmp_path: Path) -> None:
    """Same instance, default lock (under XDG_STATE_HOME): the second run does nothing,
    the first applies exactly what a lone run would."""
    expected = reference(cli)
    emu = start()
    try:
        emu.latency = LATENCY
        first = _spawn(cli_command(emu, "--apply"), tmp_path)
        try:
            deadline = time.monotonic() + 30
            while not emu.log:  # the lock is taken before the first request
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            second = _finish(_spawn(cli_command(emu, "--apply"), tmp_path))
        finally:
            result = _finish(first)
        assert result.code == 0, result.err
        assert second.code == 0, second.err
        assert "skipping" in second.err
        assert second.out == ""
        assert "Traceback" not in second.err
        assert summary(emu) == expected  # exactly one run's changes
    finally:
        emu.stop()


def test_concurrent_runs_without_the_lock_leave_one_open_issue_per_message(
    cli: InProcess, tmp_path: Path
) -> None:
    """--no-lock, started together: both may create the same issues; each run reads its
    creates back and resolves the duplicates, so one open issue per message remains."""
    expected = reference(cli)
    emu = start()
    try:
        emu.latency = LATENCY
        folders = [tmp_path / "a", tmp_path / "b"]
        for folder in folders:
            folder.mkdir()
        processes = [_spawn(cli_command(emu, "--apply", "--no-lock"), folder) for folder in folders]
        results = [_finish(process) for process in processes]
        for result in results:
            assert result.code == 0, result.err
            assert "Traceback" not in result.err
        creates = [
            entry
            for entry in emu.log
            if entry.method == "POST"
            and entry.path.endswith("/ecc_agent_issue")
            and entry.status == 201
        ]
        assert len(creates) > 8  # the race was real: both runs created issues
        final_open = by_message(open_ours(emu))  # no duplicate open issue
        expected_open = {
            message
            for source, message, state, _, mid_server, _ in expected
            if source == SOURCE and state != "resolved" and not mid_server
        }
        assert set(final_open) == expected_open
        # Every duplicate was resolved, not deleted: one open and the rest resolved.
        rows = ours(emu)
        assert len(rows) == len(expected_open) + 2 + len(creates) - 8
    finally:
        emu.stop()
