"""The advisories' extra reads through `snowcheck check`: made by default, none with
--no-advisories (or `advisories = false`), and their data reaching the Outcome."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from snowcheck.check import assess
from snowcheck.cli import main
from snowcheck.emulator import Emulator, Scenario
from snowcheck.output.report import Terminal
from snowcheck.pull import pull_snapshot
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"
SOURCE = "MIDUserConnectivity"


def _requests(emu: Emulator, *extra: str, config: Path | None = None) -> Counter[str]:
    argv = ["check", "--instance", emu.url, "--user", "admin", *extra]
    if config is not None:
        argv += ["--config", str(config)]
    emu.clear_log()
    code = main(argv, terminal=Terminal(stdout=io.StringIO(), stderr=io.StringIO(), width=200))
    assert code == 0
    return Counter(entry.path.rsplit("/", 1)[1] for entry in emu.log)


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    monkeypatch.delenv("SNOWCHECK_CONFIG", raising=False)
    with Emulator(Scenario.load(str(DEMO))) as emulator:
        yield emulator  # type: ignore[misc]


def test_a_check_makes_the_advisories_reads_and_no_advisories_skips_them(
    emu: Emulator, tmp_path: Path
) -> None:
    on = _requests(emu)
    off = _requests(emu, "--no-advisories")
    config = tmp_path / "snowcheck.toml"
    config.write_text("advisories = false\n", encoding="utf-8")
    off_by_config = _requests(emu, config=config)
    # One page each: the same reads, plus one for sys_properties (no extra request for
    # every MID Server, the clone issues or password_needs_reset: the queries widen).
    assert sum(on.values()) == sum(off.values()) + 1 == 7
    assert on - off == Counter({"sys_properties": 1})
    assert off == off_by_config
    assert "sys_properties" not in off


def test_the_outcome_carries_the_advice_of_the_extra_reads(emu: Emulator) -> None:
    connection = Connection(base_url=emu.url, user="admin", password="admin")
    with Instance(connection) as instance:
        snapshot = pull_snapshot(instance, window=timedelta(hours=4), source=SOURCE)
        plain = pull_snapshot(instance, window=timedelta(hours=4), source=SOURCE, advisories=False)
    outcome = assess(
        snapshot, instance=emu.url, window=timedelta(hours=4), source=SOURCE, messages="docs"
    )
    assert outcome.advice is not None
    assert outcome.advice.skipped == ()  # every extra read was made
    without = assess(
        plain,
        instance=emu.url,
        window=timedelta(hours=4),
        source=SOURCE,
        messages="docs",
        advisories=False,
    )
    assert without.advice is None
    # Every MID Server was read, yet the rules see the Down ones only: same findings, same plan.
    assert len(snapshot.tables["ecc_agent"]) > len(plain.tables["ecc_agent"])
    assert outcome.evaluation.findings == without.evaluation.findings
    assert outcome.plan.changes == without.plan.changes


def test_denied_properties_say_why_in_the_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = Scenario.load(str(DEMO))
    with Emulator(scenario) as emu:
        emu.faults.add("status", status=403, path="/table/sys_properties")
        connection = Connection(base_url=emu.url, user="admin", password="admin")
        with Instance(connection) as instance:
            snapshot = pull_snapshot(instance, window=timedelta(hours=4), source=SOURCE)
    outcome = assess(
        snapshot, instance="x", window=timedelta(hours=4), source=SOURCE, messages="docs"
    )
    assert outcome.advice is not None
    reasons = {skip.reason for skip in outcome.advice.skipped}
    assert reasons == {"read access to sys_properties denied (HTTP 403)"}


def test_open_clone_issues_never_reach_the_plan_or_the_wording(emu: Emulator) -> None:
    connection = Connection(base_url=emu.url, user="admin", password="admin")
    with Instance(connection) as instance:
        snapshot = pull_snapshot(instance, window=timedelta(hours=4), source=SOURCE)
    issues = list(snapshot.tables["ecc_agent_issue"])
    ours = [row for row in issues if row["source"] == SOURCE and row["state"] != "resolved"]
    assert ours
    # A clone issue per open issue of ours, same message, and one in the older wording.
    clones = [
        {**row, "sys_id": f"clone{n}", "source": "InstanceClone"} for n, row in enumerate(ours)
    ]
    clones.append({**ours[0], "sys_id": "clone-old", "source": "InstanceClone", "message": "x.  y"})
    widened = replace(snapshot, tables={**snapshot.tables, "ecc_agent_issue": issues + clones})
    window = timedelta(hours=4)
    for messages in ("docs", "auto"):
        before = assess(snapshot, instance="x", window=window, source=SOURCE, messages=messages)
        after = assess(widened, instance="x", window=window, source=SOURCE, messages=messages)
        assert after.plan.changes == before.plan.changes
        assert after.evaluation.templates == before.evaluation.templates
        touched = {change.sys_id for change in after.plan.changes}
        assert not touched & {row["sys_id"] for row in clones}
