"""The issue lifecycle across runs of the real CLI (subprocesses) against one emulated instance.

Run 1 creates and updates, run 2 counts again, then an admin fixes mid.apac (its MID comes
Up and the user logs in) and run 3 resolves that issue while the others keep counting.
When the problem comes back, a new issue is opened: the resolved one is never reopened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from snowcheck.emulator import Emulator

from .support import (
    SOURCE,
    InProcess,
    by_message,
    control,
    demo_data,
    issues,
    mid_id,
    now_text,
    open_ours,
    ours,
    run_process,
    start,
)
from .test_e2e_rules import EXPECTED

pytestmark = pytest.mark.e2e

APAC = EXPECTED[("authz_failed_down", "mid.apac")]
WEST = EXPECTED[("auth_failed_down", "mid.west")]
EAST = EXPECTED[("auth_failed_down", "mid.east")]
OLD = EXPECTED[("no_login_unassociated", "old.mid.account")]
GHOST = (
    "User ghost.mid is associated with 1 down MID Server. No login attempts within reporting "
    "period."
)


def _untouchable(emulator: Emulator) -> list[dict[str, str]]:
    """Issues of other sources, or with mid_server set: snowcheck must never change them."""
    return [row for row in issues(emulator) if row.get("source") != SOURCE or row.get("mid_server")]


def _apply(emulator: Emulator, tmp_path: Path) -> dict[str, Any]:
    result = run_process(emulator, "--apply", "--format", "json", tmp_path=tmp_path)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    document = result.json
    assert document["applied"] is True
    return document


def test_three_runs_create_count_and_resolve(tmp_path: Path) -> None:
    emu = start()
    try:
        untouchable = _untouchable(emu)
        original = by_message(ours(emu))
        resolved_east = original[EAST]
        assert resolved_east["state"] == "resolved"
        created = set(EXPECTED.values()) - {WEST, OLD}

        # -- run 1: create 8, update 2, resolve ghost.mid --------------------------------
        t0 = now_text(emu)
        first = _apply(emu, tmp_path)
        assert first["now"] == t0
        open1 = by_message(open_ours(emu))
        assert set(open1) == set(EXPECTED.values())
        for message in created:
            row = open1[message]
            assert row["state"] == "new"
            assert row["count"] == "1"
            assert row["source"] == SOURCE
            assert row["mid_server"] == ""
            assert row["last_detected"] == t0
            assert row["sys_domain"] == "global"
        assert (open1[WEST]["state"], open1[WEST]["count"]) == ("new", "3")
        assert open1[WEST]["last_detected"] == t0
        assert open1[WEST]["sys_domain"] == "acme"  # the finding's domain (the user's)
        assert open1[WEST]["sys_id"] == original[WEST]["sys_id"]
        assert (open1[OLD]["state"], open1[OLD]["count"]) == ("acknowledged", "6")
        ghost = next(row for row in ours(emu) if row["message"] == GHOST)
        assert (ghost["state"], ghost["count"]) == ("resolved", "7")
        assert ghost["last_detected"] == original[GHOST]["last_detected"]
        # The old resolved mid.east issue stays as it was; a new open one was created.
        east_rows = [row for row in ours(emu) if row["message"] == EAST]
        assert len(east_rows) == 2
        assert next(r for r in east_rows if r["sys_id"] == resolved_east["sys_id"]) == (
            resolved_east
        )
        assert _untouchable(emu) == untouchable

        # -- run 2, ten minutes later: every open issue counts once more -----------------
        emu.clock.advance(600)
        t1 = now_text(emu)
        second = _apply(emu, tmp_path)
        assert {c["action"] for c in second["changes"]} == {"update"}
        open2 = by_message(open_ours(emu))
        assert set(open2) == set(open1)
        for message, row in open2.items():
            assert row["sys_id"] == open1[message]["sys_id"]
            assert int(row["count"]) == int(open1[message]["count"]) + 1
            assert row["last_detected"] == t1
            assert row["state"] == open1[message]["state"]
        assert open2[APAC]["count"] == "2"

        # -- the fix, through the control endpoints: mid-apac-1 is Up, mid.apac logs in --
        emu.clock.advance(60)
        control(
            emu,
            "POST",
            "tables/ecc_agent",
            {"rows": [{"sys_id": mid_id(emu, "mid-apac-1"), "status": "Up"}]},
        )
        control(
            emu,
            "POST",
            "tables/sysevent",
            [{"name": "login", "parm1": "mid.apac", "parm2": "", "sys_created_on": "-1s"}],
        )

        # -- run 3: mid.apac's issue is resolved, count unchanged; the others count 3 ----
        emu.clock.advance(540)
        t2 = now_text(emu)
        third = _apply(emu, tmp_path)
        resolves = [c for c in third["changes"] if c["action"] == "resolve"]
        assert [c["message"] for c in resolves] == [APAC]
        apac = next(row for row in ours(emu) if row["message"] == APAC)
        assert apac["sys_id"] == open2[APAC]["sys_id"]
        assert (apac["state"], apac["count"], apac["last_detected"]) == ("resolved", "2", t1)
        open3 = by_message(open_ours(emu))
        assert set(open3) == set(open2) - {APAC}
        for message, row in open3.items():
            assert int(row["count"]) == int(open2[message]["count"]) + 1
            assert row["last_detected"] == t2
        for message in created - {APAC}:
            assert open3[message]["count"] == "3"
        assert open3[OLD]["state"] == "acknowledged"

        # -- the problem comes back: a new issue, the resolved one stays resolved --------
        emu.clock.advance(60)
        control(
            emu,
            "POST",
            "tables/ecc_agent",
            {"rows": [{"sys_id": mid_id(emu, "mid-apac-1"), "status": "Down"}]},
        )
        control(
            emu,
            "POST",
            "tables/sysevent",
            [
                {
                    "name": "login.authorization.failed",
                    "parm1": "mid.apac",
                    "parm2": "soap_script",
                    "sys_created_on": "-1s",
                }
            ],
        )
        emu.clock.advance(60)
        fourth = _apply(emu, tmp_path)
        creates = [c for c in fourth["changes"] if c["action"] == "create"]
        assert [c["message"] for c in creates] == [APAC]
        apac_rows = [row for row in ours(emu) if row["message"] == APAC]
        assert len(apac_rows) == 2
        old_apac = next(row for row in apac_rows if row["sys_id"] == apac["sys_id"])
        assert old_apac == apac  # never reopened, not even touched
        new_apac = next(row for row in apac_rows if row["sys_id"] != apac["sys_id"])
        assert (new_apac["state"], new_apac["count"]) == ("new", "1")
        assert new_apac["last_detected"] == now_text(emu)
        assert _untouchable(emu) == untouchable
        by_message(open_ours(emu))  # still no duplicate open issue
    finally:
        emu.stop()


def test_acknowledged_kept_and_foreign_issues_never_touched(emu: Emulator, cli: InProcess) -> None:
    """Issues of other sources, or with mid_server set, are left alone even when their
    message is a finding's; an acknowledged issue of ours stays acknowledged when counted."""
    apac_mid = mid_id(emu, "mid-apac-1")
    emu.load_rows(
        "ecc_agent_issue",
        [
            # Another source with the message of a finding: not ours, never updated.
            {"message": APAC, "source": "SomethingElse", "state": "new", "count": "4"},
            # Our source, but tied to a MID Server: another identity, never updated.
            {
                "message": EXPECTED[("authz_failed_down", "mid.emea")],
                "source": SOURCE,
                "state": "acknowledged",
                "count": "9",
                "mid_server": apac_mid,
            },
            # Our source with mid_server set and no finding: never resolved.
            {
                "message": "User nobody is associated with 1 down MID Server. No login attempts "
                "within reporting period.",
                "source": SOURCE,
                "state": "new",
                "count": "2",
                "mid_server": apac_mid,
            },
            # Another source, open, no finding: never resolved.
            {"message": GHOST, "source": "ECCQueueMonitor", "state": "acknowledged"},
        ],
    )
    untouchable = _untouchable(emu)
    untouchable_ids = {row["sys_id"] for row in untouchable}
    assert len(untouchable) == 7  # the demo's 3 (one an InstanceClone issue) and these 4

    for expected_count in (6, 7):
        emu.clock.advance(300)
        result = cli(emu, "--apply", "--format", "json")
        assert result.code == 0, result.err
        assert _untouchable(emu) == untouchable
        old = by_message(open_ours(emu))[OLD]
        assert (old["state"], old["count"]) == ("acknowledged", str(expected_count))
        assert old["last_detected"] == now_text(emu)

    # Ours got their own issues for the messages the foreign ones carry.
    mine = by_message(open_ours(emu))
    assert mine[APAC]["count"] == "2"
    assert mine[EXPECTED[("authz_failed_down", "mid.emea")]]["count"] == "2"
    # Not one write went to a foreign record.
    written = [entry for entry in emu.log if entry.method in ("PATCH", "PUT", "DELETE")]
    assert written
    assert not {entry.path.rsplit("/", 1)[-1] for entry in written} & untouchable_ids


def test_existing_duplicates_update_the_newest_and_warn(tmp_path: Path) -> None:
    """Two open issues with one identity already on the instance: the most recently
    updated one is counted, the other left as it is, with a warning. The real process
    also keeps stdout one JSON document while warnings (a retry too) go to stderr."""
    data = demo_data()
    west = next(row for row in data["tables"]["ecc_agent_issue"] if row["message"] == WEST)
    newer = {
        **west,
        "sys_id": "00000000000000000000000000000d01",
        "state": "acknowledged",
        "count": "9",
        "sys_updated_on": "-30m",  # the demo's own is 4 hours old
    }
    data["tables"]["ecc_agent_issue"].append(newer)
    emu = start(data)
    try:
        older = next(row for row in issues(emu) if row["sys_id"] == west["sys_id"])
        emu.faults.add("status", status=429, retry_after=0)  # a retry, logged on stderr
        result = run_process(emu, "--apply", "--format", "json", tmp_path=tmp_path)
        assert result.code == 0, result.err
        document = result.json  # stdout is exactly one JSON document
        updates = [c for c in document["changes"] if c["message"] == WEST]
        assert updates == [
            {
                "action": "update",
                "sys_id": newer["sys_id"],
                "message": WEST,
                "state": "acknowledged",
                "count": 10,
                "state_before": "acknowledged",
                "count_before": 9,
            }
        ]
        warnings = "".join(result.err.splitlines())  # rich wraps long lines
        assert "2 open issues share the message" in warnings
        assert "retrying" in warnings
        assert next(row for row in issues(emu) if row["sys_id"] == west["sys_id"]) == older
        assert next(row for row in issues(emu) if row["sys_id"] == newer["sys_id"])["count"] == "10"
    finally:
        emu.stop()
