"""Fixtures of the end-to-end tests: an emulated instance on 127.0.0.1, and the CLI in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snowcheck.emulator import Emulator

from .support import InProcess, start


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The demo scenario served on 127.0.0.1, clock frozen."""
    emulator = start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> InProcess:
    return InProcess(monkeypatch, capsys, tmp_path)
