"""Bounded plans: --max-changes refuses a big apply; a huge report stays readable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import runner, writes
from factories import NOW_TEXT, FakeInstance

from snowcheck.emulator import Emulator, Scenario

run = runner(width=200)


def holders(users: int) -> dict[str, Any]:
    """``users`` holders of mid_server that no MID Server names: one create each."""
    instance = FakeInstance()
    for i in range(users):
        instance.user(f"svc.{i:04d}")
    return instance.tables


def test_a_plan_above_max_changes_writes_nothing_and_says_why(demo: Emulator) -> None:
    before = demo.rows("ecc_agent_issue")
    argv = ("check", "--instance", demo.url, "--user", "admin", "--apply", "--max-changes", "5")
    code, out, err = run(*argv)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "refusing to apply 11 changes, more than --max-changes 5" in err
    assert demo.rows("ecc_agent_issue") == before
    assert writes(demo) == []


def test_force_or_no_limit_applies_the_big_plan(demo: Emulator) -> None:
    base = ("check", "--instance", demo.url, "--user", "admin", "--apply")
    code, _, err = run(*base, "--max-changes", "0")
    assert code == 0, err
    assert writes(demo)


def test_the_profile_key_max_changes_bounds_the_plan(demo: Emulator, tmp_path: Path) -> None:
    config = tmp_path / "snowcheck.toml"
    config.write_text(
        f'[instances.lab]\ninstance = "{demo.url}"\nuser = "admin"\nmax_changes = 3\n'
        # The variable the profile names itself is its own, not an override.
        'password_env = "SERVICENOW_PASSWORD"\n'
    )
    code, _, err = run("check", "--config", str(config), "--profile", "lab", "--apply")
    assert code == 1
    assert "more than --max-changes 3" in err
    assert writes(demo) == []
    code, _, err = run("check", "--config", str(config), "--profile", "lab", "--apply", "--force")
    assert code == 0, err
    assert writes(demo)


def test_the_default_limit_is_500(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with Emulator(Scenario.from_dict({"tables": holders(501)})) as emulator:
        code, _, err = run("check", "--instance", emulator.url, "--user", "admin", "--apply")
        assert code == 1
        assert "refusing to apply 501 changes, more than --max-changes 500" in err
        assert writes(emulator) == []


def test_the_table_report_shows_50_findings_and_counts_the_rest(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps({"now": NOW_TEXT, "tables": holders(60)}))
    code, out, _ = run("check", "--snapshot", str(snapshot))
    assert code == 0
    assert "svc.0049" in out and "svc.0050" not in out
    assert "... and 10 more findings (--all shows every one" in out
    assert "... and 10 more changes" in out
    assert out.splitlines()[-1].startswith("60 findings")
    code, every, _ = run("check", "--snapshot", str(snapshot), "--all")
    assert "svc.0059" in every and "more findings" not in every
    code, document, _ = run("check", "--snapshot", str(snapshot), "--format", "json")
    assert len(json.loads(document)["findings"]) == 60
