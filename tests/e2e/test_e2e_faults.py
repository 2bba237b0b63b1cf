"""Faults injected by the emulator, over real HTTP: what recovers, and what fails cleanly.

Recoverable faults (a 503, a reset, a truncated body, on reads, on batch writes and on
single writes) are retried after a backoff of 1 to 2 s; to keep the suite fast those cases
replace the Instance's sleep by a recorder (its constructor's keyword default) and check
the waits; everything else is real. The 429 case (Retry-After: 1, twice) really sleeps.

Every failure: exit 1, one error message naming the cause, no traceback, and the
ecc_agent_issue table exactly as before.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from snowcheck.emulator import BatchConfig, Emulator
from snowcheck.servicenow.instance import Instance

from .support import (
    PASSWORD,
    USER,
    InProcess,
    Result,
    Summary,
    assert_clean_failure,
    by_message,
    control,
    demo_data,
    issues,
    open_ours,
    reference,
    run_process,
    start,
    summary,
)

pytestmark = pytest.mark.e2e

GRANTS = "/table/sys_user_has_role"
"""Persistent faults hit one read: the reads of round one are in flight together."""

TABLES = (
    "sys_user_has_role",
    "ecc_agent_config",
    "ecc_agent",
    "sys_user",
    "sysevent",
    "ecc_agent_issue",
)


def with_user(**access: Any) -> dict[str, Any]:
    """The demo scenario whose one account has the given ACL settings."""
    data = demo_data()
    data["users"] = {USER: {"password": PASSWORD, **access}}
    return data


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the Instance's waits between attempts instead of sleeping through them."""
    recorded: list[float] = []
    defaults = Instance.__init__.__kwdefaults__
    assert defaults is not None and "sleep" in defaults
    monkeypatch.setitem(defaults, "sleep", recorded.append)
    return recorded


# -- recovered ---------------------------------------------------------------------------------

SINGLE = BatchConfig(enabled=False)
"""An instance without the Batch API: the client falls back to one request per change."""

RECOVERED = [
    # Reads (the first request to arrive, one of round one, meets the fault).
    pytest.param({"kind": "status", "status": 503}, None, id="503-read"),
    pytest.param({"kind": "reset"}, None, id="reset-read"),
    pytest.param({"kind": "truncate"}, None, id="truncated-read"),
    # Writes through the Batch API: the whole batch, or items inside it.
    pytest.param({"kind": "reset", "path": "/v1/batch"}, None, id="batch-reset"),
    # The instance runs the batch but the answer is cut: the creates must be looked up,
    # not sent a second time.
    pytest.param({"kind": "truncate", "path": "/v1/batch"}, None, id="batch-answer-lost"),
    pytest.param(
        {"kind": "status", "status": 503, "batch_item": True, "method": "PATCH"},
        None,
        id="503-batch-item-update",
    ),
    pytest.param(
        {"kind": "status", "status": 503, "batch_item": True, "method": "POST"},
        None,
        id="503-batch-item-create",
    ),
    # Writes one request per change (no Batch API on the instance).
    pytest.param({"kind": "status", "status": 503, "method": "PATCH"}, SINGLE, id="503-update"),
    pytest.param({"kind": "reset", "method": "POST"}, SINGLE, id="reset-create"),
    pytest.param(
        {"kind": "truncate", "method": "POST", "path": "/table/ecc_agent_issue"},
        SINGLE,
        id="create-answer-lost",
    ),
]


def _recovered(emu: Emulator, cli: InProcess, expected: Summary, fault: dict[str, Any]) -> Result:
    """Apply with ``fault`` queued (over the control endpoint); check the run recovered."""
    control(emu, "POST", "faults", fault)
    emu.clear_log()
    result = cli(emu, "--apply", "--format", "json")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert result.json["applied"] is True
    assert control(emu, "GET", "faults")["faults"] == []  # every injected fault was met
    hits = [entry for entry in emu.log if entry.fault == fault["kind"]]
    assert len(hits) == fault.get("times", 1)
    if "method" in fault:
        assert {entry.method for entry in hits} == {fault["method"]}
    assert summary(emu) == expected  # the same table as without the fault
    by_message(open_ours(emu))  # no duplicate open issue
    creates = [
        entry
        for entry in emu.log
        if entry.method == "POST"
        and entry.path.endswith("/ecc_agent_issue")
        and entry.status == 201
    ]
    assert len(creates) == 8  # a create whose answer was lost is looked up, never sent twice
    return result


@pytest.mark.parametrize(("fault", "batch"), RECOVERED)
def test_transient_fault_is_recovered(
    emu: Emulator,
    cli: InProcess,
    waits: list[float],
    fault: dict[str, Any],
    batch: BatchConfig | None,
) -> None:
    """Retried after a backoff (recorded here, not slept: see the 429 test for real waits)."""
    expected = reference(cli)
    if batch is not None:
        emu.batch = batch
    _recovered(emu, cli, expected, fault)
    assert 1 <= len(waits) <= 2
    assert all(0 <= wait <= 3 for wait in waits)


def test_rate_limit_retry_after_is_really_waited(
    emu: Emulator, cli: InProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """429 with Retry-After: 1 on two attempts of one read: the real sleeps (about 2 s)."""
    expected = reference(cli)
    fault = {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "times": 2,
        "path": "/table/sys_user_has_role",
    }
    started = time.monotonic()
    _recovered(emu, cli, expected, fault)
    assert time.monotonic() - started >= 2.0
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2
    assert all("HTTP 429" in text and "retrying in 1.0 s" in text for text in retries)


# -- failed cleanly ------------------------------------------------------------------------------


def test_hibernating_instance(emu: Emulator, cli: InProcess) -> None:
    before = issues(emu)
    emu.faults.add("hibernate", times=50)
    result = cli(emu, "--apply")
    message = assert_clean_failure(result, contains="hibernating")
    assert "developer" in message
    assert issues(emu) == before
    assert all(entry.method == "GET" for entry in emu.log)


@pytest.mark.parametrize("table", TABLES)
def test_read_denied_names_the_table(cli: InProcess, table: str) -> None:
    emu = start(with_user(deny_read=[table]))
    try:
        before = issues(emu)
        result = cli(emu, "--apply")
        message = assert_clean_failure(result, contains=f"read access to {table} denied")
        assert "grant" in message
        assert issues(emu) == before
        assert all(entry.method == "GET" for entry in emu.log)
    finally:
        emu.stop()


def test_persistent_503_gives_up_after_five_attempts(
    emu: Emulator, cli: InProcess, waits: list[float]
) -> None:
    before = issues(emu)
    emu.faults.add("status", status=503, times=50, path=GRANTS)
    result = cli(emu, "--apply")
    assert_clean_failure(result, contains="unavailable")
    assert "after 5 attempts" in result.err
    assert len(waits) == 4
    assert len([entry for entry in emu.log if entry.path.endswith(GRANTS)]) == 5
    assert all(entry.method == "GET" for entry in emu.log)
    assert issues(emu) == before


def test_persistent_429_honours_retry_after_then_fails(
    emu: Emulator, cli: InProcess, waits: list[float]
) -> None:
    before = issues(emu)
    emu.faults.add("status", status=429, retry_after=3, times=50, path=GRANTS)
    result = cli(emu, "--apply")
    assert_clean_failure(result, contains="rate limited")
    assert waits == [3.0, 3.0, 3.0, 3.0]
    assert issues(emu) == before


def test_persistently_truncated_answers_fail_cleanly(
    emu: Emulator, cli: InProcess, waits: list[float]
) -> None:
    """What the code does with truncated bodies: retries (as above), then exit 1."""
    before = issues(emu)
    emu.faults.add("truncate", times=50, path=GRANTS)
    result = cli(emu, "--apply")
    assert_clean_failure(result, contains="broke")
    assert len(waits) == 4
    assert issues(emu) == before


def test_truncated_read_of_a_later_table_aborts_before_any_write(
    emu: Emulator, cli: InProcess, waits: list[float]
) -> None:
    """The last read (open issues) failing still means: nothing written."""
    before = issues(emu)
    emu.faults.add("truncate", times=50, path="/table/ecc_agent_issue")
    result = cli(emu, "--apply")
    assert_clean_failure(result, contains="ecc_agent_issue")
    assert issues(emu) == before
    assert all(entry.method == "GET" for entry in emu.log)


def test_wrong_password(emu: Emulator, tmp_path: Path) -> None:
    """The real CLI process: exit 1, one error naming authentication, no password anywhere."""
    before = issues(emu)
    wrong = "Wr0ng-Passw0rd-e2e-31337"
    result = run_process(emu, "--apply", tmp_path=tmp_path, password=wrong)
    message = assert_clean_failure(result, contains="authentication")
    assert USER in message
    for secret in (wrong, PASSWORD):
        assert secret not in result.out
        assert secret not in result.err
    assert issues(emu) == before
    assert {entry.status for entry in emu.log} == {401}


def test_write_denied_stops_before_writing(cli: InProcess) -> None:
    emu = start(with_user(deny_write=["ecc_agent_issue"]))
    try:
        before = issues(emu)
        result = cli(emu, "--apply")
        assert_clean_failure(result, contains="write access to ecc_agent_issue denied")
        assert issues(emu) == before
    finally:
        emu.stop()


def test_empty_acl_reads_refuse_to_resolve_everything(cli: InProcess) -> None:
    """No role holders and no configuration seen (what missing read access looks like):
    resolving every open issue is refused; --force applies it."""
    emu = start(with_user(acl_empty=["sys_user_has_role", "ecc_agent_config"]))
    try:
        before = issues(emu)
        open_before = {row["sys_id"] for row in open_ours(emu)}
        assert len(open_before) == 3
        refused = cli(emu, "--apply")
        message = assert_clean_failure(refused, contains="refusing to resolve")
        assert "--force" in message
        assert issues(emu) == before

        forced = cli(emu, "--apply", "--force", "--format", "json")
        assert forced.code == 0, forced.err
        assert {c["action"] for c in forced.json["changes"]} == {"resolve"}
        assert open_ours(emu) == []
        after = {row["sys_id"]: row for row in issues(emu)}
        for row in before:
            if row["sys_id"] in open_before:
                assert after[row["sys_id"]]["state"] == "resolved"
                assert after[row["sys_id"]]["count"] == row["count"]
            else:
                assert after[row["sys_id"]] == row
    finally:
        emu.stop()
