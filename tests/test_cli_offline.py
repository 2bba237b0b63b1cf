"""The CLI on snapshot files: output, JSON contract, exit codes, one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from snowcheck.cli import main
from snowcheck.output.report import Terminal

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"

ALL_MESSAGES = (
    "Login authentication failure for User mid.east associated with 3 down MID Servers. "
    "Check password on MID servers.",
    "Login authentication failure for User mid.west associated with 1 down MID Server. "
    "Check password on MID server.",
    "Login authentication failure for User svc.integration with mid_server role not "
    "associated with a MID Server.",
    "Login authorization failure for User mid.apac associated with 1 down MID Server. "
    "Re-assign mid_server role to grant all required roles.",
    "Login authorization failure for User mid.emea associated with 2 down MID Servers. "
    "Re-assign mid_server role to grant all required roles.",
    "Login authorization failure for User svc.reports with mid_server role not associated "
    "with a MID Server.",
    "User mid.dr is associated with 2 down MID Servers. No login attempts within reporting period.",
    "User mid.lab is associated with 1 down MID Server. No login attempts within reporting period.",
    "User old.mid.account with mid_server role is not associated with a MID Server. No login "
    "attempts within reporting period.",
    "User admin.jane with mid_server role successfully connected but not associated with a MID "
    "Server. The mid_server role should be reserved for MID Server use only.",
)


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


def run(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), terminal=Terminal(stdout=out, stderr=err, width=400))
    return Run(code, out.getvalue(), err.getvalue())


def snapshot(tmp_path: Path, change: Any = None) -> str:
    document = json.loads(EXAMPLE.read_text())
    if change is not None:
        change(document)
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_report_prints_every_rules_message() -> None:
    result = run("check", "--snapshot", str(EXAMPLE))
    assert result.code == 0
    text = " ".join(result.out.split())
    for message in ALL_MESSAGES:
        assert message in text
    assert (
        "10 findings · 9 advisories · plan: 8 create, 2 update, 1 resolve · "
        "dry run, nothing written" in text
    )


def test_json_document_follows_the_contract() -> None:
    document = run("check", "--snapshot", str(EXAMPLE), "--format", "json").json()
    assert set(document) == {
        "schema_version",
        "instance",
        "now",
        "since",
        "window_seconds",
        "source",
        "findings",
        "advisories",
        "changes",
        "applied",
    }
    assert document["schema_version"] == 1
    assert document["now"] == "2026-11-25 12:00:00"
    assert document["since"] == "2026-11-25 07:59:00"
    assert document["window_seconds"] == 14400
    assert document["source"] == "MIDUserConnectivity"
    assert document["applied"] is False
    assert sorted(f["message"] for f in document["findings"]) == sorted(ALL_MESSAGES)
    for finding in document["findings"]:
        assert set(finding) == {"rule", "user", "message", "domain", "down_mid_servers", "notes"}
        assert isinstance(finding["down_mid_servers"], list)
        assert isinstance(finding["notes"], list)
    west = next(f for f in document["findings"] if f["user"] == "mid.west")
    assert west["domain"] == "acme"
    assert west["down_mid_servers"] == ["mid-west-1"]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for change in document["changes"]:
        assert set(change) == {
            "action",
            "sys_id",
            "message",
            "state",
            "count",
            "state_before",
            "count_before",
        }
        by_action.setdefault(change["action"], []).append(change)
    assert [c["action"] for c in document["changes"]] == (
        ["resolve"] + ["update"] * 2 + ["create"] * 8
    )
    for create in by_action["create"]:
        assert (create["sys_id"], create["state"], create["count"]) == (None, "new", 1)
        assert (create["state_before"], create["count_before"]) == (None, None)
    acknowledged = next(c for c in by_action["update"] if c["state_before"] == "acknowledged")
    assert (acknowledged["state"], acknowledged["count_before"], acknowledged["count"]) == (
        "acknowledged",
        5,
        6,
    )
    (resolve,) = by_action["resolve"]
    assert (resolve["state_before"], resolve["state"], resolve["count"]) == ("new", "resolved", 7)


def test_detailed_exitcode_is_3_with_findings_and_0_without(tmp_path: Path) -> None:
    assert run("check", "--snapshot", str(EXAMPLE), "--detailed-exitcode").code == 3

    def no_mid_users(document: Any) -> None:
        document["tables"]["ecc_agent_config"] = []
        document["tables"]["sys_user_has_role"] = []

    quiet = snapshot(tmp_path, no_mid_users)
    assert run("check", "--snapshot", quiet, "--detailed-exitcode").code == 0
    assert run("check", "--snapshot", str(EXAMPLE)).code == 0


def test_kingston_wording_on_request() -> None:
    document = run(
        "check", "--snapshot", str(EXAMPLE), "--messages", "kingston", "--format", "json"
    ).json()
    messages = {f["message"] for f in document["findings"]}
    assert (
        "User mid.lab associated with 1 down MID Server.  No login attempts within reporting "
        "period." in messages
    )


def test_debug_levels_show_sets_and_conditions() -> None:
    summary = run("check", "--snapshot", str(EXAMPLE), "--debug", "1").out
    assert "role users (active, mid_server)" in summary
    assert "Conditions per user" not in summary
    detailed = run("check", "--snapshot", str(EXAMPLE), "--debug", "2").out
    assert "Conditions per user" in detailed
    lines = detailed.split("Findings")[0].split("Sets")[1].splitlines()
    heading = next(n for n, line in enumerate(lines) if "role users (active" in line)
    role_users = lines[heading + 1]  # the members, beneath their set
    assert "mid.apac" in role_users
    assert "retired.mid" not in role_users


def test_debug_with_json_keeps_stdout_one_document() -> None:
    result = run("check", "--snapshot", str(EXAMPLE), "--debug", "2", "--format", "json")
    assert result.json()["schema_version"] == 1
    assert "Conditions per user" in result.err


def test_short_window_warns_about_the_heartbeat() -> None:
    result = run("check", "--snapshot", str(EXAMPLE), "--window", "2m", "--format", "json")
    assert result.code == 0
    assert "heartbeat" in result.err
    assert result.json()["window_seconds"] == 120


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["--window", "soon"], 2, "invalid window 'soon'"),
        (["--apply"], 2, "--apply needs a live instance"),
        (["--source", " "], 2, "issue source cannot be empty"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], code: int, says: str) -> None:
    result = run("check", "--snapshot", str(EXAMPLE), *argv)
    assert result.code == code
    assert says in result.err
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err


def test_missing_snapshot_is_a_usage_error(tmp_path: Path) -> None:
    result = run("check", "--snapshot", str(tmp_path / "nope.json"))
    assert result.code == 2
    assert "does not exist" in result.err


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda d: d["tables"]["sysevent"][0].update(sys_created_on="yesterday"),
            "sysevent record",
        ),
        (lambda d: d["tables"]["sys_user"][0].pop("user_name"), "field 'user_name' is missing"),
        (lambda d: d.pop("now"), "field 'now' is missing"),
    ],
)
def test_bad_data_exits_1_naming_table_and_field(tmp_path: Path, change: Any, says: str) -> None:
    result = run("check", "--snapshot", snapshot(tmp_path, change))
    assert result.code == 1
    assert says in result.err
    assert result.out == ""
    assert "Traceback" not in result.err


def test_instance_data_prints_literally(tmp_path: Path) -> None:
    def hostile(document: Any) -> None:
        for row in document["tables"]["sys_user"]:
            if row["user_name"] == "admin.jane":
                row["user_name"] = "[bold]jane\x1b[31m"
        for row in document["tables"]["sysevent"]:
            if row["parm1"] == "admin.jane":
                row["parm1"] = "[bold]jane\x1b[31m"

    out = run("check", "--snapshot", snapshot(tmp_path, hostile)).out
    assert "[bold]jane\\x1b[31m" in out
    assert "\x1b" not in out


def test_duplicate_open_issues_warn_on_a_snapshot_too(tmp_path: Path) -> None:
    def duplicate(document: Any) -> None:
        issues = document["tables"]["ecc_agent_issue"]
        twin = dict(issues[0], sys_id="f" * 32, sys_updated_on="2026-11-20 00:00:00")
        issues.append(twin)

    result = run("check", "--snapshot", snapshot(tmp_path, duplicate))
    assert result.code == 0
    assert "2 open issues share the message" in result.err
    assert "f" * 32 in result.err
