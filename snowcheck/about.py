"""``snowcheck --version``: snowcheck's version and those it runs with, as ``pip --version``."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from snowcheck import __version__

LIBRARIES = ("pysnow", "requests", "rich")


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_line() -> str:
    """E.g. ``snowcheck 0.1.0 from /…/snowcheck (Python 3.11.7; pysnow 0.7.17, …)``."""
    where = Path(__file__).resolve().parent
    libraries = ", ".join(f"{name} {_installed(name)}" for name in LIBRARIES)
    return f"snowcheck {__version__} from {where} (Python {platform.python_version()}; {libraries})"


class VersionAction(argparse.Action):
    """``--version``: print `version_line` and exit 0 (computed only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print snowcheck's version and those of Python and its libraries")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        try:
            sys.stdout.write(version_line() + "\n")
            sys.stdout.flush()
        except OSError as exc:
            from snowcheck.crash import GuardedStdout, OutputClosed

            # /dev/null under fd 1, so the interpreter's flush at exit cannot fail again.
            failure = GuardedStdout(sys.stdout).failure(exc)
            parser.exit(
                1, None if isinstance(failure, OutputClosed) else f"snowcheck: error: {failure}\n"
            )
        parser.exit()
