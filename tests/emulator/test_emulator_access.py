"""Authentication, table ACLs and every error status, with the bodies an instance sends."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests
from emulator_data import PASSWORD

from snowcheck.emulator import Emulator

NOT_AUTHENTICATED = {
    "error": {
        "message": "User Not Authenticated",
        "detail": "Required to provide Auth information",
    },
    "status": "failure",
}
NOT_AUTHORIZED = {
    "error": {"message": "User Not Authorized", "detail": "Failed API level ACL Validation"},
    "status": "failure",
}
NO_RECORD = {
    "error": {
        "message": "No Record found",
        "detail": "Record doesn't exist or ACL restricts the record retrieval",
    },
    "status": "failure",
}


def url(emulator: Emulator, path: str) -> str:
    return f"{emulator.url}/api/now/{path}"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(f"admin:{PASSWORD}x".encode()).decode(),
        "Basic " + base64.b64encode(f"nobody:{PASSWORD}".encode()).decode(),
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic not-base64!",
        "Bearer abc",
    ],
)
def test_missing_or_bad_credentials_get_401(emulator: Emulator, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(url(emulator, "table/sys_user"), headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response.headers["WWW-Authenticate"] == 'BASIC realm="Service-now"'


@pytest.mark.parametrize("path", ["table/sys_user", "stats/sys_user", "v1/batch", "nope"])
def test_every_api_path_needs_auth(emulator: Emulator, path: str) -> None:
    assert requests.get(url(emulator, path), timeout=5).status_code == 401


def test_unknown_table_is_400(emulator: Emulator, session: requests.Session) -> None:
    for response in (
        session.get(url(emulator, "table/sys_usr")),
        session.get(url(emulator, "table/sys_usr/abc")),
        session.post(url(emulator, "table/sys_usr"), json={}),
        session.get(url(emulator, "stats/sys_usr"), params={"sysparm_count": "true"}),
    ):
        assert response.status_code == 400
        assert response.json() == {
            "error": {"message": "Invalid table sys_usr", "detail": None},
            "status": "failure",
        }


def test_tables_declared_by_the_scenario_are_known(make_emulator: Any) -> None:
    emulator = make_emulator({"tables": {"u_custom": []}})
    response = requests.get(url(emulator, "table/u_custom"), auth=("admin", "admin"), timeout=5)
    assert response.status_code == 200
    assert response.json() == {"result": []}


def test_bad_sys_id_is_404(emulator: Emulator, session: requests.Session) -> None:
    for response in (
        session.get(url(emulator, "table/sys_user/nope")),
        session.patch(url(emulator, "table/sys_user/nope"), json={"active": "false"}),
        session.put(url(emulator, "table/sys_user/nope"), json={"active": "false"}),
        session.delete(url(emulator, "table/sys_user/nope")),
    ):
        assert response.status_code == 404
        assert response.json() == NO_RECORD


def test_unknown_api_path_and_method(emulator: Emulator, session: requests.Session) -> None:
    unknown = session.get(url(emulator, "tables/sys_user"))
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Requested URI does not represent any resource"
    assert session.post(url(emulator, "table/sys_user/u1"), json={}).status_code == 405
    assert session.patch(url(emulator, "table/sys_user"), json={}).status_code == 405


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_a_body_that_is_not_a_json_object_is_400(
    emulator: Emulator, session: requests.Session, body: bytes
) -> None:
    response = session.post(
        url(emulator, "table/ecc_agent_issue"),
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["status"] == "failure"
    assert len(emulator.rows("ecc_agent_issue")) == 1


def test_deny_read_gets_403_on_reads_only(emulator: Emulator) -> None:
    with requests.Session() as limited:
        limited.auth = ("limited", "limited-pw")
        for response in (
            limited.get(url(emulator, "table/sysevent")),
            limited.get(url(emulator, "table/sysevent/e01")),
            limited.get(url(emulator, "stats/sysevent"), params={"sysparm_count": "true"}),
        ):
            assert response.status_code == 403
            assert response.json() == NOT_AUTHORIZED
        assert limited.get(url(emulator, "table/sys_user")).status_code == 200
        assert limited.post(url(emulator, "table/sysevent"), json={"name": "x"}).status_code == 201


def test_deny_write_gets_403_on_writes_only(emulator: Emulator) -> None:
    with requests.Session() as reader:
        reader.auth = ("reader", "reader-pw")
        issue = url(emulator, "table/ecc_agent_issue")
        for response in (
            reader.post(issue, json={"message": "x"}),
            reader.patch(f"{issue}/i1", json={"count": "9"}),
            reader.put(f"{issue}/i1", json={"count": "9"}),
            reader.delete(f"{issue}/i1"),
        ):
            assert response.status_code == 403
            assert response.json() == NOT_AUTHORIZED
        assert reader.get(issue).status_code == 200
    assert emulator.rows("ecc_agent_issue")[0]["count"] == "3"


def test_acl_empty_reads_as_an_empty_table(emulator: Emulator) -> None:
    with requests.Session() as limited:
        limited.auth = ("limited", "limited-pw")
        response = limited.get(url(emulator, "table/ecc_agent"))
        assert response.status_code == 200
        assert response.json() == {"result": []}
        assert response.headers["X-Total-Count"] == "0"
        assert limited.get(url(emulator, "table/ecc_agent/a1")).json() == NO_RECORD
        stats = limited.get(url(emulator, "stats/ecc_agent"), params={"sysparm_count": "true"})
        assert stats.json() == {"result": {"stats": {"count": "0"}}}


def test_row_acl_shortens_pages_but_not_the_total(emulator: Emulator) -> None:
    with requests.Session() as limited:
        limited.auth = ("limited", "limited-pw")
        response = limited.get(
            url(emulator, "table/sys_user_has_role"),
            params={"sysparm_limit": "3", "sysparm_query": "ORDERBYsys_id"},
        )
        assert [row["sys_id"] for row in response.json()["result"]] == ["h1", "h2"]
        assert response.headers["X-Total-Count"] == "4"
        assert "next" in response.links
        rest = limited.get(response.links["next"]["url"])
        assert rest.json()["result"] == []


def test_stats_counts_with_a_query(emulator: Emulator, session: requests.Session) -> None:
    response = session.get(
        url(emulator, "stats/sysevent"),
        params={"sysparm_count": "true", "sysparm_query": "name=login"},
    )
    assert response.status_code == 200
    assert response.json() == {"result": {"stats": {"count": "12"}}}
    everything = session.get(url(emulator, "stats/sysevent"), params={"sysparm_count": "true"})
    assert everything.json()["result"]["stats"]["count"] == "25"
