"""Round trips of a pull, counted from the emulator's request log (start and end of each)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from snowcheck.emulator import Emulator, LogEntry, Scenario, sequential_rounds
from snowcheck.pull import DEFAULT_CONCURRENCY, pull_snapshot
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"
WINDOW = timedelta(hours=4)
LATENCY = 0.25
"""Per request: long enough that the requests of one round overlap on a busy machine."""


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(Scenario.load(str(DEMO))) as emulator:
        emulator.latency = LATENCY
        yield emulator


def _pull(emu: Emulator, *, page_size: int = 10000, **options: object) -> list[LogEntry]:
    user, password = emu.credentials
    connection = Connection(base_url=emu.url, user=user, password=password, page_size=page_size)
    emu.clear_log()
    with Instance(connection, sleep=lambda _: None) as instance:
        pull_snapshot(instance, window=WINDOW, source="MIDUserConnectivity", **options)  # type: ignore[arg-type]
    return emu.log


def _tables(log: list[LogEntry]) -> Counter[str]:
    return Counter(entry.path.rsplit("/", 1)[1] for entry in log)


def test_sequential_rounds_counts_the_longest_chain() -> None:
    def entry(started: float, ended: float) -> LogEntry:
        return LogEntry(
            "GET", "/api/now/table/t", {}, 200, 0, 0, None, None, started=started, ended=ended
        )

    assert sequential_rounds([]) == 0
    # Three at once, then two at once after all of them: two rounds.
    assert (
        sequential_rounds([entry(0, 1), entry(0, 1.2), entry(0.1, 1), entry(1.3, 2), entry(1.3, 2)])
        == 2
    )
    # One after another: as many rounds as requests.
    assert sequential_rounds([entry(0, 1), entry(1, 2), entry(2, 3)]) == 3


def test_a_one_page_instance_is_read_in_two_rounds(emu: Emulator) -> None:
    log = _pull(emu)
    assert sequential_rounds(log) == 2
    # Round one: five reads (the advisories' included), round two: users and events.
    assert _tables(log) == {
        "sys_user_has_role": 1,
        "ecc_agent_config": 1,
        "ecc_agent": 1,
        "ecc_agent_issue": 1,
        "sys_properties": 1,
        "sys_user": 1,
        "sysevent": 1,
    }
    first = sorted(log, key=lambda entry: entry.started)[:5]
    assert {entry.path.rsplit("/", 1)[1] for entry in first} == {
        "sys_user_has_role",
        "ecc_agent_config",
        "ecc_agent",
        "ecc_agent_issue",
        "sys_properties",
    }
    assert DEFAULT_CONCURRENCY >= 5


def test_one_at_a_time_every_request_is_a_round(emu: Emulator) -> None:
    log = _pull(emu, concurrency=1)
    assert sequential_rounds(log) == len(log) == 7


def test_without_advisories_their_reads_are_not_made(emu: Emulator) -> None:
    log = _pull(emu, advisories=False)
    assert sequential_rounds(log) == 2
    assert "sys_properties" not in _tables(log)
    assert len(log) == 6
    mids = next(entry for entry in log if entry.path.endswith("/ecc_agent"))
    assert mids.query["sysparm_query"] == "status=Down^ORDERBYsys_id"


def test_a_paged_instance_reads_its_remaining_pages_at_once(emu: Emulator) -> None:
    page_size = 5
    totals = {table: len(emu.rows(table)) for table in ("sys_user_has_role", "ecc_agent")}
    log = _pull(emu, page_size=page_size, concurrency=16)  # no wave throttled
    counts = _tables(log)
    # Each paged read makes pages(T) requests, the first page first, then the rest at once.
    for table, total in totals.items():
        assert counts[table] == math.ceil(total / page_size)
    # Round one: first pages, then the remaining pages; round two: events and users, one
    # page each here (the candidates' events and the configured users fit five rows).
    paged_two = any(counts[table] > 1 for table in ("sys_user", "sysevent") if table in counts)
    assert sequential_rounds(log) == 2 + 1 + (1 if paged_two else 0)
    assert sequential_rounds(log) < len(log)


def _most_in_flight(log: list[LogEntry]) -> int:
    moments = sorted(
        [(entry.started, 1) for entry in log] + [(entry.ended, -1) for entry in log],
        key=lambda moment: (moment[0], moment[1]),
    )
    flying = most = 0
    for _, step in moments:
        flying += step
        most = max(most, flying)
    return most


def test_concurrency_bounds_the_requests_in_flight_pages_included(emu: Emulator) -> None:
    log = _pull(emu, page_size=5, concurrency=3)
    assert _most_in_flight(log) == 3
    wide = _pull(emu, page_size=5, concurrency=16)
    assert len(wide) == len(log)  # when requests go, not which
    assert sequential_rounds(wide) < sequential_rounds(log)
