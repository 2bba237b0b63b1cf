"""The CLI against the emulator, in-process: warnings and --quiet, what an applied run reports."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from snowcheck.cli import main
from snowcheck.emulator import Emulator, Scenario
from snowcheck.output.report import Terminal

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"


@pytest.mark.parametrize("quiet", [False, True], ids=["default", "quiet"])
def test_retry_warnings_follow_quiet(monkeypatch: pytest.MonkeyPatch, quiet: bool) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    with Emulator(Scenario.load(str(DEMO))) as emu:
        emu.faults.add("status", status=503, times=1, method="GET", path="/sys_user_has_role")
        out, err = io.StringIO(), io.StringIO()
        argv = ["check", "--instance", emu.url, "--user", "admin"]
        code = main(
            [*argv, "--quiet"] if quiet else argv,
            terminal=Terminal(stdout=out, stderr=err, width=200),
        )
    assert code == 0
    if quiet:
        assert (out.getvalue(), err.getvalue()) == ("", "")
    else:
        assert err.getvalue().startswith("warning: reading sys_user_has_role")
        assert "retrying in" in err.getvalue()
        assert "10 findings" in out.getvalue()


def test_applied_run_reports_what_it_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    with Emulator(Scenario.load(str(DEMO))) as emu:
        out = io.StringIO()
        argv = ["check", "--instance", emu.url, "--user", "admin", "--apply", "--no-lock"]
        code = main(
            [*argv, "--format", "json"],
            terminal=Terminal(stdout=out, stderr=io.StringIO(), width=200),
        )
        stored = {row["message"]: row["sys_id"] for row in emu.rows("ecc_agent_issue")}
        table = io.StringIO()
        main(argv, terminal=Terminal(stdout=table, stderr=io.StringIO(), width=400))
    assert code == 0
    document = json.loads(out.getvalue())
    assert document["applied"] is True
    creates = [c for c in document["changes"] if c["action"] == "create"]
    assert len(creates) == 8
    for create in creates:
        assert create["sys_id"] == stored[create["message"]]
    assert table.getvalue().endswith("10 findings · 9 advisories · applied: 10 updated\n")
