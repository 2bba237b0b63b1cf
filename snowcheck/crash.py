"""The last resort: no traceback for any input, and stdout failures said in one line.

``main`` hands any exception it did not expect to `last_resort`, which prints one
line naming it and asking for a report; ``--debug 2`` or ``SNOWCHECK_TRACEBACK=1``
shows the traceback as well. `GuardedStdout` turns a failed write to stdout (a full
disk, a reader gone away) into a `SnowcheckError`, so it is reported like any other
failure instead of as a traceback at exit.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from snowcheck.errors import SnowcheckError

if TYPE_CHECKING:
    from snowcheck.output.report import Terminal

TRACEBACK_VARIABLE = "SNOWCHECK_TRACEBACK"


class OutputError(SnowcheckError):
    """Standard output cannot be written (a full disk, an I/O error)."""


class OutputClosed(OutputError):
    """The reader of standard output went away (``| head -1``): nothing more to say."""


class GuardedStdout:
    """A text stream around stdout whose write errors are `OutputError`.

    Non-ASCII data on an ASCII-only stdout (``PYTHONIOENCODING=ascii``, ``LC_ALL=C``) is
    written as backslash escapes, as Python writes stderr, rather than failing. After a
    write error the stream's descriptor is pointed at /dev/null, so the interpreter's own
    flush at exit cannot fail again.
    """

    def __init__(self, stream: IO[str]) -> None:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")
        self._stream = stream
        self._failed = False

    def write(self, text: str) -> int:
        if self._failed:
            return len(text)
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self.failure(exc) from None

    def flush(self) -> None:
        if self._failed:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            raise self.failure(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def failure(self, exc: OSError) -> OutputError:
        """The error to raise for ``exc``; stdout is unusable from now on."""
        self._failed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # not a real file: nothing will flush it at exit
        if isinstance(exc, BrokenPipeError):
            return OutputClosed("standard output was closed before the output was written")
        return OutputError(f"cannot write to standard output: {exc.strerror or exc}")


def traceback_wanted(debug: int | None, environ: Mapping[str, str]) -> bool:
    """``--debug 2`` or ``SNOWCHECK_TRACEBACK=1``."""
    return (debug or 0) >= 2 or environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")


def last_resort(
    exc: BaseException, terminal: Terminal, *, debug: int | None, environ: Mapping[str, str]
) -> int:
    """One line for an exception nobody expected (the traceback too when asked); exit 1.

    ``debug`` is the command's ``--debug`` level, None for a command without the option.
    """
    show = traceback_wanted(debug, environ)
    try:
        if show:
            traceback.print_exception(exc, file=terminal.err.file)
        how = "--debug 2" if debug is not None else f"{TRACEBACK_VARIABLE}=1"
        asked = "the traceback above" if show else f"the traceback that {how} shows"
        first_line = (str(exc).splitlines() or [""])[0]
        detail = f" ({first_line})" if first_line else ""
        terminal.error(
            f"unexpected {type(exc).__name__}{detail}: this is a bug in snowcheck; "
            f"please report it with {asked}"
        )
    except Exception:  # stderr itself is unusable: the exit status is all that is left
        pass
    return 1


def guarded_stdout() -> IO[str]:
    """The process's stdout, guarded."""
    return cast("IO[str]", GuardedStdout(sys.stdout))
