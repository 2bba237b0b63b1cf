"""What the command-line tests share: snowcheck run in-process, and the writes it sent."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from snowcheck.cli import main
from snowcheck.emulator import Emulator, LogEntry
from snowcheck.output.report import Terminal

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"
"""The demo scenario, as readers find it in config/examples/."""

WRITES = ("POST", "PATCH", "PUT", "DELETE")


def runner(*, width: int) -> Callable[..., tuple[int, str, str]]:
    """``run(*argv) -> (exit, stdout, stderr)`` of snowcheck's main at a fixed width."""

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), terminal=Terminal(stdout=out, stderr=err, width=width))
        return code, out.getvalue(), err.getvalue()

    return run


def writes(emulator: Emulator) -> list[LogEntry]:
    """The requests of the emulator's log that could have changed a record."""
    return [entry for entry in emulator.log if entry.method in WRITES]
