"""Warnings logged while a check runs reach the terminal as warnings, and --quiet hides them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from snowcheck.cli import main
from snowcheck.emulator import Emulator, Scenario
from snowcheck.render import Terminal

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"


@pytest.mark.parametrize("quiet", [False, True], ids=["default", "quiet"])
def test_retry_warnings_follow_quiet(monkeypatch: pytest.MonkeyPatch, quiet: bool) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    with Emulator(Scenario.load(str(DEMO))) as emu:
        emu.faults.add("status", status=503, times=1, method="GET")
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
        assert err.getvalue().startswith("warning: reading sys_user_role")
        assert "retrying in" in err.getvalue()
        assert "10 findings" in out.getvalue()
