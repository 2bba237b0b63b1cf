"""Write-back through the Batch API, against the emulator over real HTTP.

Order and caps, unserviced items, refusal and fallback, per-item failures, lost answers
(a create is never sent blindly twice) and duplicate-safe creates without the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from snowcheck.emulator import BatchConfig, Emulator, LogEntry, Scenario, sequential_rounds
from snowcheck.errors import PartialWrite
from snowcheck.plan import Action, Change, Plan
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection
from snowcheck.writeback import DEFAULT_BATCH_BYTES, DEFAULT_BATCH_ITEMS, WriteBack

SOURCE = "MIDUserConnectivity"
ISSUES = "/api/now/table/ecc_agent_issue"
BATCH = "/api/now/v1/batch"


def _issue(sys_id: str, message: str, created: str = "2026-11-25 09:00:00") -> dict[str, str]:
    return {
        "sys_id": sys_id,
        "message": message,
        "source": SOURCE,
        "state": "new",
        "count": "2",
        "last_detected": "2026-11-25 09:00:00",
        "mid_server": "",
        "sys_domain": "global",
        "sys_created_on": created,
        "sys_updated_on": created,
    }


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    scenario = Scenario.from_dict(
        {
            "now": "2026-11-25 10:00:00",
            "tables": {"ecc_agent_issue": [_issue("a1", "old"), _issue("b2", "kept")]},
        }
    )
    with Emulator(scenario, port=0) as emu:
        yield emu


def _instance(
    emu: Emulator,
    *,
    batch: bool = True,
    batch_items: int = DEFAULT_BATCH_ITEMS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    concurrency: int = 1,
    **options: Any,
) -> WriteBack:
    """The write-back to the emulator (``options`` go to the Instance beneath)."""
    user, password = emu.credentials
    connection = Connection(base_url=emu.url, user=user, password=password)
    options.setdefault("sleep", lambda seconds: None)
    instance = Instance(connection, **options)
    return WriteBack(
        instance,
        batch=batch,
        batch_items=batch_items,
        batch_bytes=batch_bytes,
        concurrency=concurrency,
    )


def resolve(message: str, sys_id: str) -> Change:
    return Change(Action.RESOLVE, message, sys_id, "new", 2, "resolved", 2, {"state": "resolved"})


def update(message: str, sys_id: str) -> Change:
    payload = {"count": "3", "last_detected": "2026-11-25 10:00:00", "sys_domain": "global"}
    return Change(Action.UPDATE, message, sys_id, "new", 2, "new", 3, payload)


def create(message: str) -> Change:
    payload = {
        "message": message,
        "source": SOURCE,
        "state": "new",
        "count": "1",
        "last_detected": "2026-11-25 10:00:00",
        "sys_domain": "global",
        "mid_server": "",
    }
    return Change(Action.CREATE, message, None, None, None, "new", 1, payload)


def plan(*changes: Change) -> Plan:
    return Plan(changes=changes, open_issues=2)


def standard_plan(creates: int = 5) -> Plan:
    return plan(
        resolve("old", "a1"),
        update("kept", "b2"),
        *(create(f"User u{n} is down, badly^really") for n in range(creates)),
    )


def settled_log(emu: Emulator) -> list[LogEntry]:
    """The request log once the server has logged its last answer (it logs after sending)."""
    seen = len(emu.log)
    for _ in range(50):
        time.sleep(0.02)
        if len(emu.log) == seen:
            break
        seen = len(emu.log)
    return emu.log


def calls(emu: Emulator, *, batch: bool | None = None) -> list[tuple[str, str]]:
    return [
        (entry.method, entry.path)
        for entry in settled_log(emu)
        if batch is None or entry.batch is batch
        if entry.path.startswith("/api/")
    ]


def open_issues(emu: Emulator) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in emu.rows("ecc_agent_issue"):
        if row["state"] != "resolved":
            found.setdefault(row["message"], []).append(row["sys_id"])
    return found


def test_changes_go_in_batches_in_plan_order(emulator: Emulator) -> None:
    told: list[Change] = []
    applied = _instance(emulator, batch_items=3).apply(standard_plan(), on_change=told.append)

    outer = calls(emulator, batch=False)
    # Three batches of at most three changes, then one read-back query for the creates.
    assert outer == [("POST", BATCH)] * 3 + [("GET", ISSUES)]
    inner = calls(emulator, batch=True)
    assert inner == [("PATCH", f"{ISSUES}/a1"), ("PATCH", f"{ISSUES}/b2")] + [("POST", ISSUES)] * 5
    assert [change.action for change in applied] == ["resolve", "update", *["create"] * 5]
    assert all(change.sys_id for change in applied)
    assert told == list(applied)
    rows = {row["sys_id"]: row for row in emulator.rows("ecc_agent_issue")}
    assert rows["a1"]["state"] == "resolved"
    assert rows["b2"]["count"] == "3"
    expected = {"kept", *(f"User u{n} is down, badly^really" for n in range(5))}
    assert set(open_issues(emulator)) == expected


def test_a_byte_cap_splits_batches(emulator: Emulator) -> None:
    _instance(emulator, batch_items=100, batch_bytes=900).apply(standard_plan())
    batches = [entry for entry in settled_log(emulator) if entry.path == BATCH]
    assert len(batches) == 7  # each change is over 450 bytes of JSON: one per batch
    assert all(entry.bytes_in <= 900 for entry in batches)


def test_unserviced_items_are_sent_again(emulator: Emulator) -> None:
    emulator.batch = BatchConfig(max_requests=2)
    applied = _instance(emulator, batch_items=100).apply(standard_plan())
    assert len(applied) == 7
    assert calls(emulator, batch=False).count(("POST", BATCH)) == 4  # 2 + 2 + 2 + 1
    assert len(calls(emulator, batch=True)) == 7  # each change executed exactly once
    assert len(emulator.rows("ecc_agent_issue")) == 7


def test_a_batch_api_that_services_nothing_fails_cleanly(emulator: Emulator) -> None:
    emulator.batch = BatchConfig(max_requests=0)
    with pytest.raises(PartialWrite) as caught:
        _instance(emulator, attempts=3).apply(standard_plan())
    assert caught.value.applied == ()
    assert len(caught.value.not_applied) == 7
    assert "serviced none" in str(caught.value)
    assert calls(emulator, batch=False) == [("POST", BATCH)] * 3


@pytest.mark.parametrize("status", [400, 404])
def test_a_refused_batch_api_falls_back_to_single_requests(emulator: Emulator, status: int) -> None:
    emulator.batch = BatchConfig(enabled=False, refuse_status=status)
    instance = _instance(emulator)
    applied = instance.apply(standard_plan(creates=2))
    assert calls(emulator) == [
        ("POST", BATCH),
        ("PATCH", f"{ISSUES}/a1"),
        ("PATCH", f"{ISSUES}/b2"),
        ("POST", ISSUES),
        ("POST", ISSUES),
        ("GET", ISSUES),
    ]
    assert len(applied) == 4 and all(change.sys_id for change in applied)
    # The refusal is remembered: the next apply goes one by one from the start.
    emulator.clear_log()
    instance.apply(plan(update("kept", "b2")))
    assert calls(emulator) == [("PATCH", f"{ISSUES}/b2")]


def test_batch_can_be_turned_off(emulator: Emulator) -> None:
    _instance(emulator, batch=False).apply(plan(update("kept", "b2")))
    assert calls(emulator) == [("PATCH", f"{ISSUES}/b2")]


def test_a_failed_item_is_reported_and_no_further_batch_is_sent(emulator: Emulator) -> None:
    emulator.store.delete("ecc_agent_issue", "a1")
    changes = standard_plan(creates=3).changes
    with pytest.raises(PartialWrite) as caught:
        _instance(emulator, batch_items=3).apply(plan(*changes))
    error = caught.value
    # The first batch (resolve a1, update b2, first create) ran; a1 was gone.
    assert error.applied[0] == changes[1]
    assert error.applied[1].message == changes[2].message and error.applied[1].sys_id
    assert error.not_applied == (changes[0], *changes[3:])
    assert error.status == 404
    assert "wrote 2 of 5 changes" in str(error) and "record a1" in str(error)
    assert calls(emulator, batch=False).count(("POST", BATCH)) == 1


def test_a_create_item_with_a_gateway_error_is_looked_up_then_sent_again(
    emulator: Emulator,
) -> None:
    emulator.faults.add("status", status=503, method="POST", batch_item=True)
    sleeps: list[float] = []
    applied = _instance(emulator, sleep=sleeps.append).apply(plan(create("m1"), create("m2")))
    assert [change.message for change in applied] == ["m1", "m2"]
    assert calls(emulator, batch=False) == [
        ("POST", BATCH),  # m1 answered 503, m2 written
        ("GET", ISSUES),  # m1 looked up: not there
        ("POST", BATCH),  # m1 again
        ("GET", ISSUES),  # read back for duplicates
    ]
    assert len(sleeps) == 1
    assert {message: len(ids) for message, ids in open_issues(emulator).items()} == {
        "old": 1,
        "kept": 1,
        "m1": 1,
        "m2": 1,
    }


def test_a_lost_batch_answer_never_duplicates_a_create(emulator: Emulator) -> None:
    # The batch runs, then the answer is cut off half-way: the creates exist.
    emulator.faults.add("truncate", path=BATCH)
    applied = _instance(emulator).apply(plan(update("kept", "b2"), create("m1"), create("m2")))
    assert calls(emulator, batch=False) == [
        ("POST", BATCH),  # executed, answer lost
        ("GET", ISSUES),  # m1 and m2 looked up in one query: both found
        ("POST", BATCH),  # the update alone, sent again (setting the same values)
        ("GET", ISSUES),  # read back for duplicates
    ]
    assert [len(ids) for ids in open_issues(emulator).values()] == [1, 1, 1, 1]
    created = {row["message"]: row["sys_id"] for row in emulator.rows("ecc_agent_issue")}
    assert applied[1].sys_id == created["m1"] and applied[2].sys_id == created["m2"]


def test_a_batch_refused_for_good_ends_in_partial_write(emulator: Emulator) -> None:
    emulator.faults.add("status", status=503, path=BATCH, times=10)
    with pytest.raises(PartialWrite) as caught:
        _instance(emulator, attempts=2).apply(plan(update("kept", "b2")))
    assert caught.value.not_applied == (update("kept", "b2"),)
    assert "unavailable" in str(caught.value) and "after 2 attempts" in str(caught.value)


@pytest.mark.parametrize(
    ("theirs", "keeper"), [("2026-11-25 09:59:59", "theirs"), ("2026-11-25 10:00:00", "ours")]
)
def test_a_duplicate_made_by_a_concurrent_run_is_resolved(
    emulator: Emulator, theirs: str, keeper: str
) -> None:
    # A concurrent run created the same issue after our pull: a second before ours, or
    # in the same second (the emulator's clock stands at 10:00:00).
    other = _issue("zzzz-theirs", "m1", created=theirs)
    emulator.load_rows("ecc_agent_issue", [other])
    instance = _instance(emulator)
    applied = instance.apply(plan(create("m1")))
    ours = applied[0].sys_id
    assert ours is not None
    remaining = open_issues(emulator)["m1"]
    # Earliest sys_created_on wins; a tie goes to the smaller sys_id ("zzzz..." is larger).
    assert remaining == (["zzzz-theirs"] if keeper == "theirs" else [ours])
    assert [change.sys_id for change in instance.duplicates_resolved] == [
        ours if keeper == "theirs" else "zzzz-theirs"
    ]


def _run_at_once(emu: Emulator, changes: tuple[Change, ...], sizes: tuple[int, ...]) -> None:
    """Apply the same plan from several runs (no lock), released together by a barrier."""
    barrier = threading.Barrier(len(sizes))
    errors: list[BaseException] = []

    def run(batch_items: int) -> None:
        instance = _instance(emu, batch_items=batch_items)
        barrier.wait()
        try:
            instance.apply(plan(*changes))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_two_runs_at_the_same_moment_leave_one_open_issue_per_message(
    emulator: Emulator,
) -> None:
    # Both runs planned the same creates (neither saw an open issue), and both write
    # them: every message gets two records, and exactly one of them stays open.
    emulator.latency = 0.005
    for round_ in range(3):
        changes = tuple(create(f"User mid{n} is down ({round_})") for n in range(30))
        _run_at_once(emulator, changes, (7, 11))
    opened = open_issues(emulator)
    assert len(opened) == 2 + 3 * 30
    assert all(len(ids) == 1 for ids in opened.values())
    assert len(emulator.rows("ecc_agent_issue")) == 2 + 2 * 3 * 30


def test_three_runs_at_the_same_moment_leave_one_open_issue_per_message(
    emulator: Emulator,
) -> None:
    emulator.latency = 0.002
    changes = tuple(create(f"User mid{n} is down") for n in range(20))
    _run_at_once(emulator, changes, (3, 5, 100))
    opened = open_issues(emulator)
    assert all(len(ids) == 1 for ids in opened.values()) and len(opened) == 22


def test_a_hibernating_instance_fails_the_batch_without_retrying(emulator: Emulator) -> None:
    emulator.faults.add("hibernate", path=BATCH)
    with pytest.raises(PartialWrite) as caught:
        _instance(emulator).apply(plan(update("kept", "b2"), create("m1")))
    assert "hibernating" in str(caught.value)
    assert caught.value.applied == () and len(caught.value.not_applied) == 2
    assert calls(emulator) == [("POST", BATCH)]
    assert "m1" not in open_issues(emulator)


def test_a_rate_limited_item_waits_as_asked_and_is_sent_again(emulator: Emulator) -> None:
    emulator.faults.add("status", status=429, retry_after=3, method="PATCH", batch_item=True)
    sleeps: list[float] = []
    applied = _instance(emulator, sleep=sleeps.append).apply(plan(update("kept", "b2")))
    assert applied == (update("kept", "b2"),)
    assert sleeps == [3.0]
    assert calls(emulator, batch=False) == [("POST", BATCH)] * 2
    assert [entry.status for entry in settled_log(emulator) if entry.batch] == [429, 200]


def _wide_plan(emu: Emulator) -> tuple[Change, ...]:
    """Four updates and two resolves (three batches of two), then two creates."""
    emu.store.bulk_load("ecc_agent_issue", [_issue(f"w{n}", f"wide {n}") for n in range(6)])
    return (
        *(update(f"wide {n}", f"w{n}") for n in range(4)),
        create("new one"),
        *(resolve(f"wide {n}", f"w{n}") for n in range(4, 6)),
        create("new two"),
    )


@pytest.mark.parametrize(("concurrency", "rounds"), [(3, 3), (1, 5)])
def test_independent_batches_go_out_at_once_then_the_creates(
    emulator: Emulator, concurrency: int, rounds: int
) -> None:
    changes = _wide_plan(emulator)
    emulator.latency = 0.25  # the batches of one round overlap, however busy the machine
    told: list[Change] = []
    writer = _instance(emulator, batch_items=2, concurrency=concurrency)
    applied = writer.apply(plan(*changes), on_change=told.append)

    outer = [entry for entry in settled_log(emulator) if not entry.batch]
    # With 3 slots: the three batches of updates and resolves at once, then the creates'
    # batch, then the read-back. One at a time, in plan order: 4 batches, then the read-back.
    assert sequential_rounds(outer) == rounds
    if concurrency > 1:
        assert [entry.method for entry in outer] == ["POST"] * 4 + ["GET"]
        last_batch = [entry for entry in settled_log(emulator) if entry.batch][-2:]
        assert [entry.method for entry in last_batch] == ["POST", "POST"]  # the creates last
    assert [change.message for change in applied] == [change.message for change in changes]
    assert all(change.sys_id for change in applied)
    assert sorted(told, key=lambda c: c.message) == sorted(applied, key=lambda c: c.message)
    rows = {row["sys_id"]: row for row in emulator.rows("ecc_agent_issue")}
    assert all(rows[f"w{n}"]["count"] == "3" for n in range(4))
    assert all(rows[f"w{n}"]["state"] == "resolved" for n in range(4, 6))
    assert {"new one", "new two"} <= set(open_issues(emulator))


def test_a_failed_independent_batch_stops_the_creates(emulator: Emulator) -> None:
    changes = _wide_plan(emulator)
    emulator.store.delete("ecc_agent_issue", "w0")
    with pytest.raises(PartialWrite) as caught:
        _instance(emulator, batch_items=2, concurrency=3).apply(plan(*changes))
    error = caught.value
    assert error.status == 404 and "record w0" in str(error)
    not_applied = {change.message for change in error.not_applied}
    assert {"wide 0", "new one", "new two"} <= not_applied
    assert all(change.action != Action.CREATE for change in error.applied)
    assert not any(
        entry.method == "POST" and entry.batch for entry in settled_log(emulator)
    )  # no create was sent
    assert len(error.applied) + len(error.not_applied) == len(changes)
