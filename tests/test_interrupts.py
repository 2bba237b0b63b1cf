"""Signals in process: raised at once while reading, noted while writing; the write-back
starts no write once asked to stop; the read pool never holds up the exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from test_batch import _instance, calls, emulator, standard_plan

from snowcheck import interrupts
from snowcheck.emulator import BatchConfig, Emulator
from snowcheck.errors import PartialWrite
from snowcheck.interrupts import Interrupted, handling_signals
from snowcheck.plan import Change
from snowcheck.read_pool import ReadPool, wait_for_first_failure
from snowcheck.writeback_batch import WritesStopped

__all__ = ["emulator"]  # the fixture, imported for the write-back tests


@pytest.fixture
def handled() -> Iterator[None]:
    with handling_signals():
        yield


def _signal(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs in this (the main) thread, at the next bytecode


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_raises_interrupted_with_its_exit_status(signum: int, code: int) -> None:
    before = signal.getsignal(signum)
    with handling_signals(), pytest.raises(Interrupted) as caught:
        _signal(signum)
    assert caught.value.exit_code == code
    assert str(caught.value) == (
        f"interrupted by {signal.Signals(signum).name}; nothing was written"
    )
    assert signal.getsignal(signum) is before  # the previous handler is back
    assert interrupts.received() is None


@pytest.mark.usefixtures("handled")
def test_while_writing_a_signal_is_noted_not_raised_and_only_the_first_counts() -> None:
    with interrupts.writing():
        assert not interrupts.requested()
        _signal(signal.SIGTERM)
        _signal(signal.SIGINT)
        assert interrupts.received() == signal.SIGTERM
    _signal(signal.SIGINT)  # after the first signal nothing more is raised
    assert interrupts.requested()


@pytest.mark.usefixtures("handled")
def test_a_signal_after_a_write_back_says_its_changes_were_written() -> None:
    with interrupts.writing():
        pass
    with pytest.raises(Interrupted, match="after the write-back: its changes were written"):
        _signal(signal.SIGINT)


@pytest.mark.usefixtures("handled")
def test_the_hooks_run_on_a_signal_from_a_thread_of_their_own() -> None:
    ran: list[str] = []
    done = threading.Event()

    def hook() -> None:
        ran.append(threading.current_thread().name)
        done.set()

    with interrupts.on_signal(hook), interrupts.writing():
        _signal(signal.SIGTERM)
        assert done.wait(5)
    assert ran == ["snowcheck-stop"]


def test_without_handling_signals_nothing_is_installed_or_requested() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.writing(), interrupts.on_signal(lambda: None):
        assert not interrupts.requested()
        assert signal.getsignal(signal.SIGTERM) is before


# The write-back asks before each write -------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "batch_items", "written", "requests"),
    [
        pytest.param(False, 100, 1, [("PATCH", "/api/now/table/ecc_agent_issue/a1")], id="single"),
        pytest.param(True, 2, 2, [("POST", "/api/now/v1/batch")], id="batched"),
    ],
)
def test_once_asked_to_stop_the_write_back_starts_no_write(
    emulator: Emulator,
    batch: bool,
    batch_items: int,
    written: int,
    requests: list[tuple[str, str]],
) -> None:
    emulator.batch = BatchConfig(enabled=batch)
    asked: list[Change] = []
    writer = _instance(emulator, batch=batch, batch_items=batch_items)
    writer.stop_requested = writer.batches.stop_requested = lambda: bool(asked)
    emulator.clear_log()
    with pytest.raises(PartialWrite) as caught:
        writer.apply(standard_plan(), on_change=asked.append)  # asked to stop after one write
    assert len(caught.value.applied) == written
    assert len(caught.value.not_applied) == 7 - written
    assert isinstance(caught.value.__cause__, WritesStopped)
    # Nothing after the write in flight: no other write, and no read-back of the creates.
    assert calls(emulator, batch=False) == requests


# The read pool -------------------------------------------------------------------------------


def test_the_read_pool_runs_calls_and_reports_failures() -> None:
    pool = ReadPool(2, "test")
    squares = [pool.submit(lambda n: n * n, n) for n in range(5)]
    failed = pool.submit(int, "not a number")
    assert [future.result(5) for future in squares] == [0, 1, 4, 9, 16]
    assert isinstance(failed.exception(5), ValueError)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(int, "1")


def test_the_read_pool_cancels_what_has_not_started() -> None:
    pool = ReadPool(1, "test")
    release = threading.Event()
    running = pool.submit(release.wait, 5)
    queued = pool.submit(int, "1")
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    release.set()
    assert running.result(5) is True


def test_a_read_left_waiting_does_not_hold_up_the_exit() -> None:
    """A thread blocked for good (as on a slow socket) and the interpreter still exits."""
    program = (
        "import threading\n"
        "from snowcheck.read_pool import ReadPool\n"
        "pool = ReadPool(2, 'test')\n"
        "pool.submit(threading.Event().wait)\n"
        "pool.shutdown(wait=False, cancel_futures=True)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", program], timeout=30, check=False)
    assert done.returncode == 0
    assert time.monotonic() - started < 5


def test_waiting_for_reads_returns_at_the_first_failure() -> None:
    pool = ReadPool(2, "test")
    release = threading.Event()
    slow = pool.submit(release.wait, 10)
    failed = pool.submit(int, "not a number")
    done, pending = wait_for_first_failure([slow, failed])
    assert failed in done and slow in pending
    release.set()
    pool.shutdown()
