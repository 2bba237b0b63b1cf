"""A thread pool for reads that may be abandoned: its threads never hold up the process's exit."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from typing import Any, ParamSpec, TypeVar

from snowcheck.interrupts import threads_leave_signals

P = ParamSpec("P")
T = TypeVar("T")

_Call = tuple["Future[Any]", Callable[[], Any]]

WAKE_EVERY = 0.2
"""Seconds between the waking moments of a thread waiting for reads."""


def wait_for_first_failure(
    futures: Sequence[Future[Any]],
) -> tuple[set[Future[Any]], set[Future[Any]]]:
    """``concurrent.futures.wait(futures, return_when=FIRST_EXCEPTION)``, in short waits.

    Between them the main thread runs its signal handlers, even for a signal that
    reached another thread (one not started inside ``threads_leave_signals``).
    """
    while True:
        done, pending = wait(futures, timeout=WAKE_EVERY, return_when=FIRST_EXCEPTION)
        if not pending or any(future.exception() is not None for future in done):
            return done, pending


class ReadPool(Executor):
    """Runs calls on at most ``workers`` daemon threads.

    ``ThreadPoolExecutor`` joins its threads when the interpreter exits, so a read left
    behind by Ctrl-C or SIGTERM (nothing will use its answer) would hold up the exit
    until its socket times out, a minute later. These threads are daemons: the process
    exits at once and they end with it. Abandoned reads stop by themselves at their next
    page or retry (``Instance.stop_reads``). They leave SIGINT and SIGTERM to the main
    thread.
    """

    def __init__(self, workers: int, name: str) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._workers = workers
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._calls.put((future, lambda: fn(*args, **kwargs)))
            if len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                with threads_leave_signals():
                    thread.start()
                self._threads.append(thread)
        return future

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            future, run = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = run()
            except BaseException as exc:  # the caller sees it through the future
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    call = self._calls.get_nowait()
                except queue.Empty:
                    break
                if call is not None:
                    call[0].cancel()
        for _ in threads:
            self._calls.put(None)
        if wait:
            for thread in threads:
                thread.join()
