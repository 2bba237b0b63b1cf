"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import DEMO
from fixtures.tls import TlsFiles, make_tls_files

from snowcheck.emulator import Emulator, Scenario


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA, a server certificate for 127.0.0.1 and client certificates, made once."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    """The demo scenario served on 127.0.0.1, its password in the environment, the lock
    files in a folder of the test's own."""
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with Emulator(Scenario.load(str(DEMO))) as emulator:
        yield emulator
