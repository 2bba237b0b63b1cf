"""The batch API: base64 bodies, per-item status, the serviced limit and refusal."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from snowcheck.emulator import BatchConfig, Emulator

JSON_HEADERS = [
    {"name": "Content-Type", "value": "application/json"},
    {"name": "Accept", "value": "application/json"},
]


def item(item_id: str, method: str, url: str, body: object | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"id": item_id, "method": method, "url": url, "headers": JSON_HEADERS}
    if body is not None:
        request["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return request


def batch(
    emulator: Emulator, session: requests.Session, *items: dict[str, Any]
) -> requests.Response:
    return session.post(
        f"{emulator.url}/api/now/v1/batch",
        json={"batch_request_id": "b-1", "rest_requests": list(items)},
    )


def body(serviced: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(serviced["body"])) if serviced["body"] else None


def test_serviced_requests_carry_status_headers_and_base64_bodies(
    emulator: Emulator, session: requests.Session
) -> None:
    response = batch(
        emulator,
        session,
        item("1", "PATCH", "/api/now/table/ecc_agent_issue/i1", {"state": "resolved"}),
        item("2", "POST", "/api/now/table/ecc_agent_issue", {"message": "new one"}),
        item("3", "GET", "/api/now/table/sys_user?sysparm_fields=user_name&sysparm_limit=1"),
        item("4", "PATCH", "/api/now/table/ecc_agent_issue/nope", {"state": "resolved"}),
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["batch_request_id"] == "b-1"
    assert answer["unserviced_requests"] == []
    serviced = {entry["id"]: entry for entry in answer["serviced_requests"]}
    assert [serviced[i]["status_code"] for i in "1234"] == [200, 201, 200, 404]
    assert serviced["1"]["status_text"] == "OK"
    assert body(serviced["1"])["result"]["state"] == "resolved"
    assert body(serviced["2"])["result"]["state"] == "new"
    assert body(serviced["3"]) == {"result": [{"user_name": "mid1"}]}
    assert body(serviced["4"])["error"]["message"] == "No Record found"
    headers = {h["name"]: h["value"] for h in serviced["3"]["headers"]}
    assert headers["Content-Type"] == "application/json;charset=UTF-8"
    assert headers["X-Total-Count"] == "2"
    assert all(isinstance(entry["execution_time"], int) for entry in answer["serviced_requests"])
    assert emulator.rows("ecc_agent_issue")[0]["state"] == "resolved"


def test_items_beyond_the_limit_are_unserviced(
    emulator: Emulator, session: requests.Session
) -> None:
    emulator.batch = BatchConfig(max_requests=2)
    items = [
        item(str(n), "PATCH", "/api/now/table/ecc_agent_issue/i1", {"count": str(n)})
        for n in range(5)
    ]
    answer = batch(emulator, session, *items).json()
    assert [entry["id"] for entry in answer["serviced_requests"]] == ["0", "1"]
    assert answer["unserviced_requests"] == ["2", "3", "4"]
    assert emulator.rows("ecc_agent_issue")[0]["count"] == "1"


@pytest.mark.parametrize("status", [400, 404])
def test_batch_can_be_refused(emulator: Emulator, session: requests.Session, status: int) -> None:
    emulator.batch = BatchConfig(enabled=False, refuse_status=status)
    response = batch(emulator, session, item("1", "GET", "/api/now/table/sys_user"))
    assert response.status_code == status
    assert response.json()["status"] == "failure"


def test_batch_settings_come_from_the_scenario(make_emulator: Any) -> None:
    emulator = make_emulator({"batch": {"enabled": False, "refuse_status": 404}})
    with requests.Session() as session:
        session.auth = ("admin", "admin")
        assert batch(emulator, session).status_code == 404


def test_items_run_as_the_batch_user_with_its_acls(emulator: Emulator) -> None:
    with requests.Session() as reader:
        reader.auth = ("reader", "reader-pw")
        answer = batch(
            emulator, reader, item("1", "PATCH", "/api/now/table/ecc_agent_issue/i1", {"count": 9})
        ).json()
    assert answer["serviced_requests"][0]["status_code"] == 403


def test_bad_items_and_bad_batches(emulator: Emulator, session: requests.Session) -> None:
    answer = batch(
        emulator,
        session,
        {"id": "1", "method": "GET"},
        {"id": "2", "method": "POST", "url": "/api/now/table/sys_user", "body": "%%%"},
        item("3", "POST", "/api/now/v1/batch", {"rest_requests": []}),
    ).json()
    assert [entry["status_code"] for entry in answer["serviced_requests"]] == [400, 400, 400]
    response = session.post(f"{emulator.url}/api/now/v1/batch", json={"requests": []})
    assert response.status_code == 400
    assert session.get(f"{emulator.url}/api/now/v1/batch").status_code == 405


def test_a_fault_can_hit_one_item_inside_a_batch(
    emulator: Emulator, session: requests.Session
) -> None:
    emulator.faults.add("status", status=503, batch_item=True, method="PATCH", path="/i1")
    answer = batch(
        emulator,
        session,
        item("1", "GET", "/api/now/table/ecc_agent_issue/i1"),
        item("2", "PATCH", "/api/now/table/ecc_agent_issue/i1", {"count": "9"}),
        item("3", "PATCH", "/api/now/table/ecc_agent_issue/i1", {"count": "10"}),
    ).json()
    codes = [entry["status_code"] for entry in answer["serviced_requests"]]
    assert codes == [200, 503, 200]
    assert emulator.rows("ecc_agent_issue")[0]["count"] == "10"


def test_the_log_records_the_batch_and_its_items(
    emulator: Emulator, session: requests.Session
) -> None:
    batch(
        emulator,
        session,
        item("1", "PATCH", "/api/now/table/ecc_agent_issue/i1?sysparm_fields=sys_id", {"a": 1}),
    )
    outer, inner = emulator.log
    assert (outer.method, outer.path, outer.batch) == ("POST", "/api/now/v1/batch", False)
    assert (inner.method, inner.path, inner.batch) == (
        "PATCH",
        "/api/now/table/ecc_agent_issue/i1",
        True,
    )
    assert inner.query == {"sysparm_fields": "sys_id"}
    assert (inner.status, inner.user, inner.bytes_in) == (200, "admin", len(b'{"a": 1}'))


def test_batch_settings_can_change_over_the_control_endpoint(
    emulator: Emulator, session: requests.Session
) -> None:
    control = f"{emulator.url}/__emulator/batch"
    assert requests.get(control, timeout=5).json() == {
        "enabled": True,
        "refuse_status": 400,
        "max_requests": None,
    }
    changed = requests.post(control, json={"max_requests": 1}, timeout=5).json()
    assert changed["max_requests"] == 1
    answer = batch(
        emulator,
        session,
        item("1", "GET", "/api/now/table/sys_user"),
        item("2", "GET", "/api/now/table/sys_user"),
    ).json()
    assert answer["unserviced_requests"] == ["2"]
    requests.post(control, json={"enabled": False, "refuse_status": 404}, timeout=5)
    assert batch(emulator, session).status_code == 404
    assert requests.post(control, json={"refuse_status": 418}, timeout=5).status_code == 400
