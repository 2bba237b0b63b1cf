"""A write-back killed part-way (SIGKILL of the real CLI process), then the next run converges.

What is correct after the second run: the same issues, in (message, state) terms, as one
fault-free run; no duplicate open issue; and the counts tell exactly which changes the
killed run completed. Each completed update or create counted once, the second run counts
again: an issue updated by the killed run ends at its original count + 2, one it created at
2; a change it never made ends as in the fault-free run (update: original + 1, create: 1).
A resolve is the same whichever run made it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from snowcheck.emulator import BatchConfig, Emulator

from .support import (
    ISSUE_TABLE,
    InProcess,
    by_message,
    clean_env,
    cli_command,
    issues,
    open_ours,
    reference,
    run_process,
    start,
    summary,
)
from .test_e2e_rules import EXPECTED

pytestmark = pytest.mark.e2e

LATENCY = 0.2


def _writes(emulator: Emulator) -> list[str]:
    return [
        entry.method
        for entry in emulator.log
        if entry.method in ("POST", "PATCH")
        and entry.path.startswith(f"/api/now/table/{ISSUE_TABLE}")
    ]


def _settle(emulator: Emulator) -> None:
    """Wait until requests already sent by the dead process have been served."""
    time.sleep(LATENCY + 0.15)
    seen = -1
    while seen != len(emulator.log):
        seen = len(emulator.log)
        time.sleep(LATENCY + 0.15)


@pytest.mark.parametrize(
    "batch",
    [
        # The Batch API servicing two changes per request (the rest come back unserviced
        # and are sent again), so the write-back takes several requests.
        pytest.param(BatchConfig(max_requests=2), id="batched"),
        pytest.param(BatchConfig(enabled=False), id="one-request-per-change"),
    ],
)
def test_killed_write_back_converges_on_the_next_run(
    cli: InProcess, tmp_path: Path, batch: BatchConfig
) -> None:
    expected = reference(cli)
    emu = start()
    try:
        before = {row["sys_id"]: row for row in issues(emu)}
        emu.batch = batch
        emu.latency = LATENCY
        process = subprocess.Popen(
            cli_command(emu, "--apply"),
            env=clean_env(tmp_path),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            # Wait for the first create: the resolve and both updates came before it.
            while "POST" not in _writes(emu):
                assert process.poll() is None, "the run finished before it could be killed"
                assert time.monotonic() < deadline, "no write-back within 30 s"
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=10) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stderr is not None
            process.stderr.close()
        _settle(emu)
        emu.latency = 0

        killed_writes = _writes(emu)
        assert 1 <= len(killed_writes) < 11, killed_writes  # killed part-way
        after_kill = {row["sys_id"]: row for row in issues(emu)}
        updated_by_killed = {
            row["message"]
            for sys_id, row in after_kill.items()
            if sys_id in before and row["state"] != "resolved" and row != before[sys_id]
        }
        created_by_killed = {
            row["message"] for sys_id, row in after_kill.items() if sys_id not in before
        }
        assert created_by_killed  # the kill came after at least one create
        assert len(updated_by_killed) == 2  # plan order: resolve, update, update, create...
        open_after_kill = by_message(
            [
                r
                for r in after_kill.values()
                if r["source"] == "MIDUserConnectivity"
                and not r["mid_server"]
                and r["state"] != "resolved"
            ]
        )

        # The next run (no latency) converges.
        emu.clear_log()
        result = run_process(emu, "--apply", "--format", "json", tmp_path=tmp_path)
        assert result.code == 0, result.err
        assert "Traceback" not in result.err
        created_again = {c["message"] for c in result.json["changes"] if c["action"] == "create"}
        assert not created_again & created_by_killed  # nothing the killed run created twice

        final_open = by_message(open_ours(emu))  # no duplicate open issue per message
        final = summary(emu)
        # (message, state) terms: exactly the fault-free run's table.
        assert sorted((s, m, st, ms) for s, m, st, _, ms, _ in final) == sorted(
            (s, m, st, ms) for s, m, st, _, ms, _ in expected
        )
        # Counts: one more than the fault-free run exactly for what the killed run wrote.
        touched = updated_by_killed | created_by_killed
        want = sorted(
            (s, m, st, str(int(c) + 1) if st != "resolved" and m in touched else c, ms, d)
            for s, m, st, c, ms, d in expected
        )
        assert final == want
        # Spelled out: both updates were made by the killed run and again by the next one
        # (mid.west 2 -> 4, old.mid.account 5 -> 7, still acknowledged); an issue the killed
        # run created was counted again (2), one it never created was created once (1).
        west = final_open[EXPECTED[("auth_failed_down", "mid.west")]]
        old = final_open[EXPECTED[("no_login_unassociated", "old.mid.account")]]
        assert (west["state"], west["count"]) == ("new", "4")
        assert (old["state"], old["count"]) == ("acknowledged", "7")
        for message in created_by_killed:
            assert final_open[message]["count"] == "2"
        for message in created_again:
            assert final_open[message]["count"] == "1"
        # The same rule, stated from the table the killed run left behind.
        for message, row in final_open.items():
            if message in open_after_kill:
                assert int(row["count"]) == int(open_after_kill[message]["count"]) + 1
            else:
                assert row["count"] == "1"
        # Issues of other sources, and with mid_server set, never changed.
        for sys_id, row in before.items():
            if row["source"] != "MIDUserConnectivity" or row["mid_server"]:
                assert {r["sys_id"]: r for r in issues(emu)}[sys_id] == row
    finally:
        emu.stop()
