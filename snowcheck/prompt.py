"""The password prompt: Ctrl-D and Ctrl-C there end the run with one line, no traceback."""

from __future__ import annotations

import contextlib
import getpass
import signal
import sys
from collections.abc import Callable

from snowcheck.errors import ConfigError
from snowcheck.interrupts import Interrupted


class PromptInterrupted(Interrupted):
    """Ctrl-C (or SIGTERM) at the password prompt: nothing was read yet, nor written."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum, "interrupted at the password prompt")


def password_prompt() -> Callable[[str], str] | None:
    """A prompt for the password when stdin is a terminal, else None (no one to ask)."""
    if sys.stdin is None or not sys.stdin.isatty():
        return None
    return ask_password


def ask_password(prompt: str) -> str:
    """``getpass`` with Ctrl-D (end of input) and Ctrl-C turned into snowcheck errors."""
    try:
        return getpass.getpass(prompt)
    except EOFError:
        _new_line()
        raise ConfigError("no password given at the prompt (end of input)") from None
    except KeyboardInterrupt:
        _new_line()
        raise PromptInterrupted() from None
    except Interrupted as exc:  # snowcheck's own handler (snowcheck.interrupts) is installed
        _new_line()
        raise PromptInterrupted(exc.signum) from None


def _new_line() -> None:
    """End the prompt's line, so the message that follows starts on its own."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.write("\n")
        sys.stderr.flush()
