"""Rows a row-level ACL filters out (X-Total-Count above the rows returned) stop an apply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import runner, writes

from snowcheck.emulator import Emulator, Scenario

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"


run = runner(width=400)


@pytest.fixture
def hidden_issues(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    """The demo, read by an account whose ACL hides the open issues in state new."""
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    document = json.loads(DEMO.read_text())
    document["users"] = {
        "admin": {"password": "admin", "acl_hide": {"ecc_agent_issue": "state=new"}}
    }
    with Emulator(Scenario.from_dict(document)) as emulator:
        yield emulator


def test_an_apply_is_refused_when_an_acl_filtered_rows_out(hidden_issues: Emulator) -> None:
    before = hidden_issues.rows("ecc_agent_issue")
    argv = ("check", "--instance", hidden_issues.url, "--user", "admin", "--apply")
    code, out, err = run(*argv)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "counted more ecc_agent_issue rows (X-Total-Count) than it returned" in err
    assert "the admin role, or a custom role with a read ACL on ecc_agent_issue" in err
    assert hidden_issues.rows("ecc_agent_issue") == before
    assert writes(hidden_issues) == []


def test_force_overrides_it(hidden_issues: Emulator) -> None:
    argv = ("check", "--instance", hidden_issues.url, "--user", "admin", "--apply", "--force")
    code, _, err = run(*argv)
    assert code == 0, err
    assert writes(hidden_issues)


def test_a_dry_run_still_reports(hidden_issues: Emulator) -> None:
    code, out, _ = run("check", "--instance", hidden_issues.url, "--user", "admin")
    assert code == 0
    assert "dry run, nothing written" in out


def test_an_empty_plan_with_hidden_rows_applies_nothing_but_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    document = json.loads(DEMO.read_text())
    # Nothing for the check to find (MID Servers, no user), and their rows hidden.
    document["tables"] = {table: [] for table in document["tables"]}
    document["tables"]["ecc_agent"] = json.loads(DEMO.read_text())["tables"]["ecc_agent"]
    document["users"] = {
        "admin": {"password": "admin", "acl_hide": {"ecc_agent": "nameISNOTEMPTY"}}
    }
    with Emulator(Scenario.from_dict(document)) as emulator:
        code, out, err = run("check", "--instance", emulator.url, "--user", "admin", "--apply")
        assert code == 0, err
        assert "the plan is empty, so nothing is written; but refusing to apply" in err
        assert "ecc_agent rows" in err
        assert writes(emulator) == []
        assert "applied: nothing to write" in out
