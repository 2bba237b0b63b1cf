"""Ctrl-C (SIGINT) and SIGTERM sent to the real CLI process while it reads or writes.

While it reads, the run ends within a second, even with a read waiting on a slow
answer, and writes nothing. While it writes, the write in flight is awaited, no other
starts, and the run says in one line what was and was not written; the JSON document
and the log file list the written changes, and the Prometheus textfile says failure.
Exit 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from snowcheck.emulator import BatchConfig, Emulator

from .support import ISSUE_TABLE, by_message, clean_env, cli_command, issues, open_ours, start

pytestmark = pytest.mark.e2e

SIGNALS = [
    pytest.param(signal.SIGINT, 130, id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
]
PLAN = 11
"""Changes the demo scenario's plan makes."""


@dataclass(frozen=True)
class Stopped:
    code: int
    out: str
    err: str
    seconds: float
    """From the signal to the process's exit."""


def _writes(emulator: Emulator) -> list[tuple[str, str]]:
    """The write requests the emulator served with 2xx (a batch counts once, not per change).

    A refused batch request (400, no Batch API) wrote nothing and is not counted.
    """
    return [
        (e.method, e.path)
        for e in emulator.log
        if e.method in ("POST", "PATCH") and not e.batch and e.status and e.status < 300
    ]


def _signal_when_taken(
    emulator: Emulator, argv: list[str], tmp_path: Path, signum: int, *, after: float = 0.0
) -> Stopped:
    """Run the CLI; once the emulator has taken the queued fault (the request is being
    served) and ``after`` seconds more, send ``signum``; time the exit."""
    process = subprocess.Popen(
        cli_command(emulator, *argv),
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while emulator.faults.pending():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the slow request never came"
            time.sleep(0.01)
        time.sleep(after)
        sent = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        return Stopped(process.returncode, out, err, time.monotonic() - sent)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _textfile(tmp_path: Path) -> dict[str, float]:
    """The Prometheus textfile's samples, by metric name and labels (as written)."""
    samples: dict[str, float] = {}
    for line in (tmp_path / "snowcheck.prom").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _metric(samples: dict[str, float], name: str) -> list[float]:
    return [value for key, value in samples.items() if key.startswith(name + "{")]


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
@pytest.mark.parametrize(
    ("slow_table", "options"),
    [
        # One read at a time: in the main thread.
        pytest.param("/sys_user_has_role?", ["--concurrency", "1"], id="main-thread-read"),
        pytest.param("/ecc_agent?", [], id="pooled-read"),
        # With two rows a page, a later page of a read (they go out at once).
        pytest.param("sysparm_offset=2", [], id="later-page"),
    ],
)
def test_a_signal_during_a_slow_read_ends_the_run_within_a_second(
    tmp_path: Path, signum: int, code: int, slow_table: str, options: list[str]
) -> None:
    emu = start()
    try:
        before = issues(emu)
        emu.faults.add("slow", seconds=30, method="GET", path=slow_table)
        config = tmp_path / "snowcheck.toml"
        config.write_text("page_size = 2\n")
        argv = ["--apply", "--prometheus-textfile", str(tmp_path / "snowcheck.prom")]
        argv += ["--config", str(config), *options]
        stopped = _signal_when_taken(emu, argv, tmp_path, signum)
        assert stopped.seconds < 1.0, stopped
        assert stopped.code == code
        assert stopped.out == ""
        name = signal.Signals(signum).name
        assert stopped.err == f"snowcheck: error: interrupted by {name}; nothing was written\n"
        assert issues(emu) == before
        assert _writes(emu) == []
        samples = _textfile(tmp_path)
        assert _metric(samples, "snowcheck_last_run_success") == [0.0]
        assert sum(_metric(samples, "snowcheck_changes_applied")) == 0
    finally:
        emu.stop()


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
@pytest.mark.parametrize(
    ("batch", "slow", "written"),
    [
        # Two changes per batch request: the first batch is in flight.
        pytest.param(
            BatchConfig(max_requests=2),
            {"method": "POST", "path": "/api/now/v1/batch"},
            2,
            id="batched",
        ),
        # One request per change: the first, the resolve, is in flight.
        pytest.param(BatchConfig(enabled=False), {"method": "PATCH"}, 1, id="one-by-one"),
    ],
)
def test_a_signal_during_the_write_back_awaits_the_write_in_flight_and_starts_none(
    tmp_path: Path,
    signum: int,
    code: int,
    batch: BatchConfig,
    slow: dict[str, str],
    written: int,
) -> None:
    emu = start()
    try:
        before = {row["sys_id"]: row for row in issues(emu)}
        emu.batch = batch
        emu.faults.add("slow", seconds=1.5, **slow)
        log_file = tmp_path / "snowcheck.log"
        argv = ["--apply", "--format", "json", "--log-file", str(log_file)]
        argv += ["--prometheus-textfile", str(tmp_path / "snowcheck.prom")]
        stopped = _signal_when_taken(emu, argv, tmp_path, signum, after=0.3)

        # The write in flight was awaited (about 1.2 s more), then the run ended at once.
        assert 1.0 < stopped.seconds < 1.2 + 1.0, stopped
        assert stopped.code == code
        name = signal.Signals(signum).name
        assert stopped.err == (
            f"snowcheck: error: interrupted by {name} during the write-back: wrote {written} "
            f"of {PLAN} changes to {ISSUE_TABLE}, {PLAN - written} not written; running the "
            "check again converges\n"
        )
        # No write started after the signal: only the one in flight reached the instance.
        assert len(_writes(emu)) == (1 if batch.enabled else written)
        changed = {
            row["sys_id"]: row
            for row in issues(emu)
            if row["sys_id"] not in before or before[row["sys_id"]] != row
        }
        assert len(changed) == written

        document = json.loads(stopped.out)
        assert document["applied"] is True
        assert document["interrupted"] == name
        assert sorted(c["sys_id"] for c in document["changes"]) == sorted(changed)
        assert len(document["not_applied"]) == PLAN - written

        samples = _textfile(tmp_path)
        assert _metric(samples, "snowcheck_last_run_success") == [0.0]
        assert sum(_metric(samples, "snowcheck_changes_applied")) == written

        logged = log_file.read_text()
        for sys_id in changed:
            assert f"written before {name}:" in logged and sys_id in logged
        assert f"interrupted by {name} during the write-back" in logged

        # The next run converges: one open issue per finding, none other.
        emu.faults.clear()
        again = subprocess.run(
            cli_command(emu, "--apply", "--format", "json"),
            env=clean_env(tmp_path),
            capture_output=True,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        findings = {finding["message"] for finding in json.loads(again.stdout)["findings"]}
        assert set(by_message(open_ours(emu))) == findings
    finally:
        emu.stop()


def test_stdout_closed_after_the_writes_says_they_were_made(tmp_path: Path) -> None:
    """As ``snowcheck check --apply | head -1`` when the reader is gone before the report."""
    emu = start()
    try:
        before = {row["sys_id"]: row for row in issues(emu)}
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = subprocess.run(
                cli_command(emu, "--apply"),
                env=clean_env(tmp_path),
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(write_end)
        assert done.returncode == 1
        assert done.stderr == (
            "snowcheck: error: standard output was closed before the report, but the "
            f"write-back was made: {PLAN} changes written to {ISSUE_TABLE}\n"
        )
        changed = [row for row in issues(emu) if before.get(row["sys_id"]) != row]
        assert len(changed) == PLAN  # every change of the plan was written
    finally:
        emu.stop()
