"""Fixtures for the emulator tests: a small instance, started on a free loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from emulator_data import PASSWORD, base_scenario

from snowcheck.emulator import Emulator, Scenario


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators from scenario dicts; all are stopped at the end of the test."""
    started: list[Emulator] = []

    def make(data: dict[str, Any] | None = None) -> Emulator:
        emulator = Emulator(Scenario.from_dict(base_scenario() if data is None else data))
        started.append(emulator.start())
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """The base scenario, running."""
    return make_emulator()


@pytest.fixture
def session(emulator: Emulator) -> Iterator[requests.Session]:
    """A requests session logged in as admin."""
    with requests.Session() as session:
        session.auth = ("admin", PASSWORD)
        yield session
