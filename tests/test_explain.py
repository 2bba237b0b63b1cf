"""``snowcheck explain USER``: the pure value from a check's outcome, its JSON, and the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import runner

from snowcheck.check import assess, load_snapshot
from snowcheck.emulator import Emulator
from snowcheck.errors import ConfigError
from snowcheck.explain import explain
from snowcheck.plan import Action
from snowcheck.rules import DEFAULT_WINDOW

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"


def outcome() -> Any:
    return assess(
        load_snapshot(str(EXAMPLE)),
        instance="example",
        window=DEFAULT_WINDOW,
        source="MIDUserConnectivity",
        messages="docs",
    )


run = runner(width=80)


def test_a_user_with_an_open_issue_gets_the_rule_the_issue_and_the_update() -> None:
    checked = outcome()
    explanation = explain(checked, "mid.west")
    assert explanation.rule == "auth_failed_down"
    assert explanation.finding is not None
    assert explanation.issue is not None and explanation.change is not None
    assert explanation.change.action is Action.UPDATE
    assert explanation.change.sys_id == explanation.issue.sys_id
    assert explanation.issue.message == explanation.finding.message
    assert [mid.name for mid in explanation.mid_servers] == ["mid-west-1"]
    assert "config.xml" in explanation.hint


def test_events_are_the_windows_login_events_newest_first() -> None:
    checked = outcome()
    explanation = explain(checked, "mid.east")
    times = [event.created_on for event in explanation.events]
    assert times == sorted(times, reverse=True)
    assert all(checked.evaluation.window.holds(moment) for moment in times)
    assert explanation.last_attempt == explanation.events[0]


def test_a_down_user_who_logged_in_last_gets_no_rule_and_says_why() -> None:
    explanation = explain(outcome(), "mid.ok")
    assert explanation.rule is None and explanation.finding is None
    assert explanation.change is None and explanation.issue is None
    assert "successful login" in explanation.reason


def test_an_unwatched_user_has_no_conditions_and_a_reason() -> None:
    explanation = explain(outcome(), "retired.mid")
    assert explanation.conditions == ()
    assert "inactive" in explanation.reason
    assert explanation.record is not None and not explanation.record.active


def test_a_user_no_table_knows_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no user 'nobody'"):
        explain(outcome(), "nobody")


def test_json_follows_the_contract() -> None:
    code, out, err = run("explain", "svc.reports", "--snapshot", str(EXAMPLE), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert list(document) == [
        "schema_version",
        "user",
        "now",
        "since",
        "rule",
        "message",
        "conditions",
        "events",
        "mid_servers",
        "issue",
        "change",
        "advisories",
    ]
    assert document["schema_version"] == 1
    assert document["rule"] == "authz_failed_unassociated"
    assert document["conditions"]["holds mid_server"] == "yes"
    assert document["events"][0]["name"] == "login.authorization.failed"
    assert document["events"][0]["parm2"] == "mid_server"
    assert document["mid_servers"] == []
    assert document["issue"] is None
    assert document["change"]["action"] == "create"
    assert document["change"]["message"] == document["message"]


def test_json_of_a_user_without_finding_has_nulls() -> None:
    code, out, _ = run("explain", "mid.prod", "--snapshot", str(EXAMPLE), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert (document["rule"], document["message"], document["issue"], document["change"]) == (
        None,
        None,
        None,
        None,
    )
    assert {mid["status"] for mid in document["mid_servers"]} == {"Up", "Paused"}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["explain", "nobody", "--snapshot", str(EXAMPLE)], "no user 'nobody'"),
        (
            ["explain", "mid.west", "--snapshot", str(EXAMPLE), "--instance", "dev1"],
            "cannot be combined",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(argv: list[str], says: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and says in err


def test_explain_live_matches_the_snapshot_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    from snowcheck.emulator import Scenario

    document = json.loads(EXAMPLE.read_text())
    document["users"] = {"checker": {"password": "explain-pass"}}
    monkeypatch.setenv("SERVICENOW_PASSWORD", "explain-pass")
    monkeypatch.delenv("SNOWCHECK_CONFIG", raising=False)
    with Emulator(Scenario.from_dict(document)) as emu:
        issues_before = list(emu.rows("ecc_agent_issue"))
        argv = ["explain", "mid.west", "--instance", emu.url, "--user", "checker"]
        code, out, err = run(*argv, "--format", "json")
        issues_after = list(emu.rows("ecc_agent_issue"))
    offline = run("explain", "mid.west", "--snapshot", str(EXAMPLE), "--format", "json")[1]
    assert code == 0, err
    assert json.loads(out) == json.loads(offline)
    assert [item["id"] for item in json.loads(out)["advisories"]] == ["password_needs_reset"]
    assert issues_after == issues_before  # explain writes nothing


@pytest.mark.parametrize("live", [True, False], ids=["live", "snapshot"])
def test_a_plan_warning_is_said_once(
    live: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from snowcheck.emulator import Scenario

    document = json.loads(EXAMPLE.read_text())
    issues = document["tables"]["ecc_agent_issue"]
    twin = dict(next(row for row in issues if row["source"] == "MIDUserConnectivity"))
    twin["sys_id"] = "f" * 32  # a second open issue with the same message
    issues.append(twin)
    if live:
        document["users"] = {"checker": {"password": "explain-pass"}}
        monkeypatch.setenv("SERVICENOW_PASSWORD", "explain-pass")
        monkeypatch.delenv("SNOWCHECK_CONFIG", raising=False)
        with Emulator(Scenario.from_dict(document)) as emu:
            code, _, err = run("explain", "mid.west", "--instance", emu.url, "--user", "checker")
    else:
        snapshot = tmp_path / "twins.json"
        snapshot.write_text(json.dumps(document), encoding="utf-8")
        code, _, err = run("explain", "mid.west", "--snapshot", str(snapshot))
    assert code == 0, err
    assert err.count("open issues share the message") == 1
