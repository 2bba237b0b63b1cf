"""The apply guards through the CLI against the emulator: nothing is written, one line says why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import DEMO, runner
from factories import NOW_TEXT, FakeInstance

from snowcheck.emulator import Emulator, Scenario

run = runner(width=400)


def issues(emulator: Emulator) -> list[tuple[str, str, str]]:
    rows: list[dict[str, Any]] = emulator.rows("ecc_agent_issue")
    return sorted((row["message"], row["state"], str(row["count"])) for row in rows)


@pytest.fixture
def hidden_grants(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    """The demo instance, read by an account whose ACLs hide every sys_user_has_role row."""
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    document = json.loads(DEMO.read_text())
    document["users"] = {"admin": {"password": "admin", "acl_empty": ["sys_user_has_role"]}}
    with Emulator(Scenario.from_dict(document)) as emulator:
        yield emulator


def test_apply_is_refused_when_no_mid_server_grant_is_visible(hidden_grants: Emulator) -> None:
    before = issues(hidden_grants)
    code, out, err = run("check", "--instance", hidden_grants.url, "--user", "admin", "--apply")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "no grant of mid_server is visible in sys_user_has_role" in err
    assert "the admin role, or a custom role with a read ACL on sys_user_has_role" in err
    assert issues(hidden_grants) == before
    assert not [e for e in hidden_grants.log if e.method in ("POST", "PATCH", "PUT", "DELETE")]


def test_force_overrides_the_hidden_rows_guard(hidden_grants: Emulator) -> None:
    before = issues(hidden_grants)
    argv = ("check", "--instance", hidden_grants.url, "--user", "admin", "--apply", "--force")
    code, _, err = run(*argv)
    assert code == 0, err
    assert issues(hidden_grants) != before


def test_a_dry_run_with_hidden_grants_still_reports(hidden_grants: Emulator) -> None:
    code, out, _ = run("check", "--instance", hidden_grants.url, "--user", "admin")
    assert code == 0
    assert "Findings" in out


def test_a_short_window_apply_that_would_resolve_issues_asks_for_force(demo: Emulator) -> None:
    before = issues(demo)
    dry = json.loads(
        run(
            "check", "--instance", demo.url, "--user", "admin", "--window", "5m", "--format", "json"
        )[1]
    )
    resolves = [change for change in dry["changes"] if change["action"] == "resolve"]
    assert resolves  # the demo's failures are older than five minutes
    argv = ("check", "--instance", demo.url, "--user", "admin", "--window", "5m", "--apply")
    code, out, err = run(*argv)
    assert code == 1
    assert out == ""
    assert "shorter than the default 4h: an apply resolves the open issues" in err
    assert f"refusing to resolve {len(resolves)} open issues with a window of 5m" in err
    assert "follow a fix with snowcheck watch" in err
    assert issues(demo) == before
    code, _, err = run(*argv, "--force")
    assert code == 0, err
    assert "shorter than the default 4h" in err  # still warned
    assert issues(demo) != before


# -- huge plans: the Nagios output stays short ------------------------------------------------


def _role_holders_snapshot(tmp_path: Path, users: int) -> str:
    """``users`` holders of mid_server that no MID Server names: one finding each."""
    instance = FakeInstance()
    for i in range(users):
        instance.user(f"svc.{i:03d}")
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps({"now": NOW_TEXT, "tables": instance.tables}))
    return str(path)


@pytest.mark.parametrize(("users", "lines"), [(20, 21), (21, 21), (300, 21), (3, 4)])
def test_the_nagios_output_has_at_most_20_lines_after_the_status(
    tmp_path: Path, users: int, lines: int
) -> None:
    code, out, _ = run(
        "check", "--snapshot", _role_holders_snapshot(tmp_path, users), "--format", "nagios"
    )
    assert code == 1  # WARNING: role holders not configured
    shown = out.splitlines()
    assert len(shown) == lines
    assert shown[0].startswith(f"SNOWCHECK WARNING - {users} findings")
    if users > 20:
        assert shown[-1] == f"... and {users - 19} more findings (--format json lists all)"
        assert all(line.startswith("User svc.") for line in shown[1:-1])
    else:
        assert all(line.startswith("User svc.") for line in shown[1:])
