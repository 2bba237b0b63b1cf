"""Scenarios, the clock and Date header, the request log and the control endpoints."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from emulator_data import NOW_HTTP, PASSWORD

from snowcheck.emulator import Emulator, Scenario, ScenarioError

REPO = Path(__file__).resolve().parents[2]


def test_date_header_comes_from_the_frozen_clock(
    emulator: Emulator, session: requests.Session
) -> None:
    for response in (
        session.get(f"{emulator.url}/api/now/table/sys_user"),
        requests.get(f"{emulator.url}/api/now/table/sys_user", timeout=5),  # 401 too
    ):
        assert response.headers["Date"] == NOW_HTTP
    emulator.clock.advance(90)
    later = session.get(f"{emulator.url}/api/now/table/sys_user")
    assert later.headers["Date"] == "Wed, 25 Nov 2026 10:01:30 GMT"


def test_without_now_the_clock_is_real_utc(make_emulator: Any) -> None:
    emulator = make_emulator({"tables": {"sysevent": [{"name": "login", "sys_created_on": "-2h"}]}})
    response = requests.get(
        f"{emulator.url}/api/now/table/sysevent", auth=("admin", "admin"), timeout=5
    )
    date = parsedate_to_datetime(response.headers["Date"])
    assert abs((date - datetime.now(UTC)).total_seconds()) < 5
    created = datetime.fromisoformat(response.json()["result"][0]["sys_created_on"])
    age = datetime.now(UTC) - created.replace(tzinfo=UTC)
    assert abs(age.total_seconds() - 7200) < 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-30m", "2026-11-25 09:30:00"),
        ("-5h", "2026-11-25 05:00:00"),
        ("-2d", "2026-11-23 10:00:00"),
        ("-90s", "2026-11-25 09:58:30"),
        ("+1h", "2026-11-25 11:00:00"),
        ("2026-01-01 00:00:00", "2026-01-01 00:00:00"),
        ("-30 m", "-30 m"),
        ("30m", "30m"),
    ],
)
def test_relative_times_resolve_against_the_scenario_now(value: str, expected: str) -> None:
    scenario = Scenario.from_dict(
        {"now": "2026-11-25 10:00:00", "tables": {"ecc_agent": [{"last_refreshed": value}]}}
    )
    assert scenario.tables["ecc_agent"][0]["last_refreshed"] == expected


def test_rows_may_come_as_the_table_api_returns_them() -> None:
    scenario = Scenario.from_dict(
        {
            "tables": {
                "sys_user_has_role": [
                    {
                        "user": {"link": "https://x/api/now/table/sys_user/u1", "value": "u1"},
                        "role": "r1",
                        "user.user_name": "dot-walked, ignored",
                        "inherited": False,
                    }
                ],
                "ecc_agent_issue": [{"count": 3}],
            },
            "instance": "snapshot metadata is ignored",
        }
    )
    assert scenario.tables["sys_user_has_role"][0] == {
        "user": "u1",
        "role": "r1",
        "inherited": "false",
    }
    assert scenario.tables["ecc_agent_issue"][0] == {"count": "3"}


def test_default_credentials_are_admin_admin() -> None:
    with Emulator(Scenario.from_dict({})) as emulator:
        assert emulator.credentials == ("admin", "admin")
        ok = requests.get(f"{emulator.url}/api/now/table/sys_user", auth=("admin", "admin"))
        assert ok.status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"now": "yesterday"},
        {"tables": {"Bad Table": []}},
        {"tables": {"sys_user": {"sys_id": "x"}}},
        {"tables": {"sys_user": [{"Bad Field": "x"}]}},
        {"tables": {"sys_user": [{"roles": ["a", "b"]}]}},
        {"users": {"admin": {"password": 1}}},
        {"users": {"admin": {"password": "x", "deny_read": "sysevent"}}},
        {"users": {"admin": {"password": "x", "typo": []}}},
        {"users": {}},
        {"faults": [{"kind": "nope"}]},
        {"batch": {"refuse_status": 500}},
        {"batch": {"max": 3}},
        {"references": {"nodot": "sys_user"}},
    ],
)
def test_malformed_scenarios_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ScenarioError):
        Scenario.from_dict(data)


def test_load_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"now": "2026-11-25 10:00:00", "tables": {"u_thing": [{}]}}))
    scenario = Scenario.load(path)
    assert scenario.now == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert "u_thing" in scenario.tables
    path.write_text("{not json")
    with pytest.raises(ScenarioError, match=re.escape(str(path))):
        Scenario.load(path)
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "missing.json")


def test_extra_references_from_the_scenario(make_emulator: Any) -> None:
    emulator = make_emulator(
        {
            "tables": {
                "u_widget": [{"sys_id": "w1", "owner": "u1"}],
                "sys_user": [{"sys_id": "u1", "user_name": "mid1"}],
            },
            "references": {"u_widget.owner": "sys_user"},
        }
    )
    response = requests.get(
        f"{emulator.url}/api/now/table/u_widget",
        params={"sysparm_query": "owner.user_name=mid1", "sysparm_fields": "owner"},
        auth=("admin", "admin"),
        timeout=5,
    )
    assert response.json()["result"][0]["owner"]["value"] == "u1"


def test_the_log_never_holds_credentials(emulator: Emulator, session: requests.Session) -> None:
    session.get(f"{emulator.url}/api/now/table/sys_user", params={"sysparm_limit": "1"})
    requests.get(f"{emulator.url}/api/now/table/sys_user", auth=("admin", "wrong"), timeout=5)
    session.post(f"{emulator.url}/api/now/table/ecc_agent_issue", json={"message": "m"})
    over_http = requests.get(f"{emulator.url}/__emulator/log", timeout=5).text
    in_python = json.dumps([entry.to_dict() for entry in emulator.log])
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    for text in (over_http, in_python):
        for secret in (PASSWORD, token, "Authorization", "authorization", "Basic "):
            assert secret not in text
    first = json.loads(over_http)[0]
    assert first == {
        "method": "GET",
        "path": "/api/now/table/sys_user",
        "query": {"sysparm_limit": "1"},
        "status": 200,
        "bytes_in": 0,
        "bytes_out": first["bytes_out"],
        "user": "admin",
        "fault": None,
        "batch": False,
        "ignored": [],
        "started": first["started"],
        "ended": first["ended"],
    }
    assert first["started"] <= first["ended"]
    assert first["bytes_out"] > 0
    assert [entry.status for entry in emulator.log] == [200, 401, 201]


def test_the_log_shows_dropped_conditions(emulator: Emulator, session: requests.Session) -> None:
    session.get(f"{emulator.url}/api/now/table/sys_user", params={"sysparm_query": "usr=x"})
    assert emulator.log[-1].ignored == ("usr=x",)


def test_control_endpoints_steer_faults_log_tables_and_clock(emulator: Emulator) -> None:
    control = f"{emulator.url}/__emulator"
    added = requests.post(
        f"{control}/faults",
        json={"faults": [{"kind": "status", "status": 503, "times": 2}], "latency": 0.01},
        timeout=5,
    )
    assert added.status_code == 200
    state = requests.get(f"{control}/faults", timeout=5).json()
    assert state["latency"] == 0.01
    assert state["faults"][0]["times"] == 2
    api = f"{emulator.url}/api/now/table/ecc_agent_issue"
    assert requests.get(api, auth=("admin", PASSWORD), timeout=5).status_code == 503
    assert requests.delete(f"{control}/faults", timeout=5).status_code == 200
    assert requests.get(api, auth=("admin", PASSWORD), timeout=5).status_code == 200
    assert len(requests.get(f"{control}/log", timeout=5).json()) == 2
    requests.delete(f"{control}/log", timeout=5)
    assert requests.get(f"{control}/log", timeout=5).json() == []

    rows = requests.get(f"{control}/tables/ecc_agent_issue", timeout=5).json()
    assert [row["sys_id"] for row in rows] == ["i1"]
    requests.post(
        f"{control}/tables/ecc_agent_issue",
        json=[{"sys_id": "i1", "state": "resolved"}, {"sys_id": "i2", "message": "m"}],
        timeout=5,
    )
    rows = requests.get(f"{control}/tables/ecc_agent_issue", timeout=5).json()
    assert [(row["sys_id"], row["state"]) for row in rows] == [("i1", "resolved"), ("i2", "new")]
    assert rows[0]["count"] == "3"
    requests.post(
        f"{control}/tables/u_new",
        json={"rows": [{"sys_id": "n1", "when": "-1h"}], "replace": True},
        timeout=5,
    )
    assert emulator.rows("u_new")[0]["when"] == "2026-11-25 09:00:00"
    requests.post(f"{control}/tables/ecc_agent_issue", json={"rows": [], "replace": True})
    assert emulator.rows("ecc_agent_issue") == []
    assert requests.get(f"{control}/tables/nope", timeout=5).status_code == 404

    clock = requests.post(f"{control}/clock", json={"advance": 60}, timeout=5).json()
    assert clock == {"now": "2026-11-25 10:01:00", "frozen": True}
    requests.post(f"{control}/clock", json={"now": "2027-01-01 00:00:00"}, timeout=5)
    assert requests.get(api, auth=("admin", PASSWORD), timeout=5).headers["Date"] == (
        "Fri, 01 Jan 2027 00:00:00 GMT"
    )
    real = requests.post(f"{control}/clock", json={"now": None}, timeout=5).json()
    assert real["frozen"] is False


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/faults", {"kind": "nope"}),
        ("POST", "/tables/sys_user", {"rows": "x"}),
        ("POST", "/clock", {"when": 1}),
        ("GET", "/nope", None),
    ],
)
def test_bad_control_requests(emulator: Emulator, method: str, path: str, body: Any) -> None:
    response = requests.request(method, f"{emulator.url}/__emulator{path}", json=body, timeout=5)
    assert response.status_code in (400, 404)
    assert response.json()["status"] == "failure"


def test_python_dash_m_serves_a_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"users": {"ops": {"password": "pw"}}, "tables": {"u_x": []}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "snowcheck.emulator", "--scenario", str(path), "--port", "0"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+) \(user: ops\)", line)
        assert match, line
        response = requests.get(f"{match[1]}/api/now/table/u_x", auth=("ops", "pw"), timeout=5)
        assert response.json() == {"result": []}
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def test_python_dash_m_reports_a_bad_scenario(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("[]")
    result = subprocess.run(
        [sys.executable, "-m", "snowcheck.emulator", "--scenario", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "bad.json" in result.stderr
    assert "Traceback" not in result.stderr
