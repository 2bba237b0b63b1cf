"""Ctrl-C and SIGTERM: a run ends at once while it reads, after the write in flight once it writes.

``handling_signals`` (entered by ``main``) turns SIGINT and SIGTERM into `Interrupted`,
raised in the main thread: exit status 128 + the signal's number, 130 or 143. A read in
flight is abandoned, and the hooks registered with `on_signal` stop the reads of other
threads at their next page or retry; threads started inside `threads_leave_signals`
leave the signals to the main thread. Inside `writing` a signal is only noted: the write
in flight completes or times out, the write-back asks `requested` before it starts
another, and the caller reports what was and was not written. Signals are process-wide,
and so is this state.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from snowcheck.errors import SnowcheckError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def threads_leave_signals() -> Iterator[None]:
    """Threads started inside never take SIGINT or SIGTERM: the main thread does.

    The kernel hands a process's signal to any thread that does not block it; given to
    another thread, it would leave the main thread blocked (on a socket, a lock) until
    that returned. Threads inherit the blocked signals of the thread starting them.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Interrupted(SnowcheckError):
    """SIGINT or SIGTERM ended the run: exit status 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message or f"interrupted by {signal_name(signum)}; nothing was written")


class _Signals:
    """What the handler knows: the signal received, and whether a write-back is running."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.writing = 0
        """Write-backs running (several with --all-profiles): a signal is only noted."""
        self.wrote = False
        """A write-back has run: a signal after it says that its changes were written."""
        self.hooks: list[Callable[[], None]] = []
        self.lock = threading.Lock()
        """Guards ``writing`` and ``hooks`` against other threads; never taken by the handler."""
        # The hooks take locks (an Event's) that the interrupted main thread may hold at
        # that very moment: the handler wakes a thread of their own through a pipe instead.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._runner = threading.Thread(target=self._run_hooks, name="snowcheck-stop", daemon=True)
        with threads_leave_signals():
            self._runner.start()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"!")
        if first and not self.writing:
            if self.wrote:
                raise Interrupted(
                    signum,
                    f"interrupted by {signal_name(signum)} after the write-back: "
                    "its changes were written",
                )
            raise Interrupted(signum)

    def _run_hooks(self) -> None:
        with contextlib.suppress(OSError):
            if os.read(self._wake_read, 1):
                with self.lock:
                    hooks = list(self.hooks)
                for hook in hooks:
                    hook()

    def close(self) -> None:
        os.close(self._wake_write)  # the runner's read returns: it ends
        self._runner.join(timeout=1)
        os.close(self._wake_read)


_state: _Signals | None = None


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` (or, inside `writing`, are noted) until the end.

    The handlers before are restored after. Outside the main thread (where Python cannot
    install handlers) this does nothing.
    """
    global _state
    if threading.current_thread() is not threading.main_thread() or _state is not None:
        yield
        return
    state = _Signals()
    previous = {signum: signal.signal(signum, state.handle) for signum in SIGNALS}
    _state = state
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _state = None
        state.close()


def received() -> int | None:
    """The signal that asked the run to stop, if any."""
    return _state.received if _state is not None else None


def requested() -> bool:
    """Whether a signal asked the run to stop: no write may start."""
    return received() is not None


@contextlib.contextmanager
def on_signal(hook: Callable[[], None]) -> Iterator[None]:
    """Call ``hook`` (from a thread of its own) when a signal arrives while inside."""
    state = _state
    if state is None:
        yield
        return
    with state.lock:
        state.hooks.append(hook)
    if state.received is not None:
        hook()
    try:
        yield
    finally:
        with state.lock:
            state.hooks.remove(hook)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """While inside, a signal does not raise: the write in flight is awaited, none starts after.

    The write-back asks `requested` before each write; the caller raises after it.
    """
    state = _state
    if state is None:
        yield
        return
    with state.lock:
        state.writing += 1
    try:
        yield
    finally:
        with state.lock:
            state.writing -= 1
            state.wrote = True
