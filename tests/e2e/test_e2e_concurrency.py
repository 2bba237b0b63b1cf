"""Two real CLI processes at once against one instance: with the lock, and without it."""

from __future__ import annotations

import signal
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
    the first applies exactly what a lone run would.

    The first run is frozen (SIGSTOP) once its lock file names it, so the second surely
    starts while the lock is held, however slow the machine; then it resumes (SIGCONT).
    """
    expected = reference(cli)
    emu = start()
    try:
        lock = tmp_path / "state" / "snowcheck" / f"127.0.0.1_{emu.port}.lock"
        first = _spawn(cli_command(emu, "--apply"), tmp_path)
        try:
            deadline = time.monotonic() + 30
            while not (lock.exists() and lock.read_text() == f"{first.pid}\n"):
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first run never took the lock"
                time.sleep(0.01)
            first.send_signal(signal.SIGSTOP)
            try:
                second = _finish(_spawn(cli_command(emu, "--apply"), tmp_path))
            finally:
                first.send_signal(signal.SIGCONT)
        finally:
            result = _finish(first)
        assert result.code == 0, result.err
        assert second.code == 0, second.err
        assert second.out == ""
        assert "Traceback" not in second.err
        note = "".join(second.err.splitlines())  # rich wraps it: see the one-line xfail
        assert f"another snowcheck run (process {first.pid}) holds {lock}" in note
        assert "skipping" in note
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
        # Each run's write-back waits 1.5 s on the instance: the other run's pull (a tenth
        # of that) surely ends meanwhile, so both plan the same creates.
        emu.faults.add("slow", seconds=1.5, path="/v1/batch", times=2)
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
        duplicated = {
            message
            for message in {row["message"] for row in open_ours(emu)}
            if sum(row["message"] == message for row in open_ours(emu)) > 1
        }
        assert not duplicated, (
            f"open duplicates left: {[r for r in ours(emu) if r['message'] in duplicated]}; "
            f"stderr of the runs: {[result.err for result in results]}"
        )
        final_open = by_message(open_ours(emu))
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
