"""Write-backs that stop part-way without a kill: a write refused, a batch item failed,
Ctrl-C. Exit 1 (130 for Ctrl-C) with one error, a report of what was and was not
written, and the next run converges (counts as in test_e2e_kill: what was written
counts once more). Signals in depth: test_e2e_interrupts.py."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from snowcheck.emulator import BatchConfig, Emulator
from snowcheck.servicenow.instance import Instance

from .support import (
    InProcess,
    Summary,
    assert_clean_failure,
    by_message,
    clean_env,
    cli_command,
    issues,
    open_ours,
    reference,
    start,
    summary,
)

pytestmark = pytest.mark.e2e

WEST_ID = "7ecbe55bbb92ca57e5bcc140792da69e"  # mid.west's open issue in the demo


def _converged(expected: Summary, before: list[dict[str, str]], first: Emulator) -> Summary:
    """What the table must be after a rerun, given what the stopped run wrote."""
    was = {row["sys_id"]: row for row in before}
    touched = {
        row["message"]
        for row in issues(first)
        if row["state"] != "resolved" and was.get(row["sys_id"]) != row
    }
    return sorted(
        (s, m, st, str(int(c) + 1) if st != "resolved" and m in touched else c, ms, d)
        for s, m, st, c, ms, d in expected
    )


@pytest.mark.parametrize(
    ("batch", "fault", "written"),
    [
        pytest.param(
            BatchConfig(enabled=False),
            {"kind": "status", "status": 500, "method": "PATCH", "path": WEST_ID},
            1,  # the resolve before it
            id="one-request-per-change",
        ),
        pytest.param(
            BatchConfig(),
            {
                "kind": "status",
                "status": 500,
                "method": "PATCH",
                "path": WEST_ID,
                "batch_item": True,
            },
            10,  # every other item of the batch was executed
            id="batch-item",
        ),
    ],
)
def test_failed_write_reports_and_the_rerun_converges(
    emu: Emulator,
    cli: InProcess,
    monkeypatch: pytest.MonkeyPatch,
    batch: BatchConfig,
    fault: dict[str, Any],
    written: int,
) -> None:
    expected = reference(cli)
    defaults = Instance.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "sleep", lambda seconds: None)  # a 500 is not retried anyway
    emu.batch = batch
    emu.faults.add(**fault)
    before = issues(emu)

    result = cli(emu, "--apply")
    message = assert_clean_failure(result, contains=f"wrote {written} of 11 changes")
    assert "HTTP 500" in message
    assert "running the check again converges" in message
    assert "Write-back stopped part-way" in result.err  # the table of applied / not applied
    by_message(open_ours(emu))
    want = _converged(expected, before, emu)

    again = cli(emu, "--apply")
    assert again.code == 0, again.err
    assert summary(emu) == want
    by_message(open_ours(emu))
    west = next(row for row in issues(emu) if row["sys_id"] == WEST_ID)
    assert west["count"] == "3"  # the failed update was made once, by the rerun


def test_ctrl_c_during_reads_writes_nothing(tmp_path: Path) -> None:
    emu = start()
    try:
        before = issues(emu)
        emu.latency = 0.2
        process = subprocess.Popen(
            cli_command(emu, "--apply"),
            env=clean_env(tmp_path),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while len(emu.log) < 2:
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130  # 128 + SIGINT
        assert out == ""
        assert "Traceback" not in err
        assert err == "snowcheck: error: interrupted by SIGINT; nothing was written\n"
        time.sleep(0.3)  # a read still in flight is served; nothing else comes
        assert issues(emu) == before
        assert all(entry.method == "GET" for entry in emu.log)
    finally:
        emu.stop()
