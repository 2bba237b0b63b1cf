"""The Table API over HTTP: paging, fields, reference links, writes and their defaults."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import requests
from emulator_data import NOW

from snowcheck.emulator import Emulator


def table(emulator: Emulator, name: str, sys_id: str = "") -> str:
    return f"{emulator.url}/api/now/table/{name}" + (f"/{sys_id}" if sys_id else "")


def offsets(response: requests.Response) -> dict[str, int]:
    """rel -> sysparm_offset of each Link."""
    return {
        rel: int(parse_qs(urlsplit(link["url"]).query)["sysparm_offset"][0])
        for rel, link in response.links.items()
    }


def test_pages_by_offset_with_total_count_and_link_header(
    emulator: Emulator, session: requests.Session
) -> None:
    seen: list[str] = []
    for offset, size in ((0, 10), (10, 10), (20, 5)):
        response = session.get(
            table(emulator, "sysevent"),
            params={
                "sysparm_query": "parm1=mid1^ORDERBYsys_id",
                "sysparm_limit": "10",
                "sysparm_offset": str(offset),
            },
        )
        assert response.status_code == 200
        assert response.headers["X-Total-Count"] == "25"
        rows = response.json()["result"]
        assert len(rows) == size
        seen += [row["sys_id"] for row in rows]
    assert seen == sorted(f"e{n:02d}" for n in range(25))


def test_link_header_is_shaped_like_an_instance(
    emulator: Emulator, session: requests.Session
) -> None:
    params = {"sysparm_query": "ORDERBYsys_id", "sysparm_limit": "10"}
    first = session.get(table(emulator, "sysevent"), params=params)
    assert offsets(first) == {"first": 0, "prev": -10, "next": 10, "last": 20}
    assert re.fullmatch(r'(<http://127\.0\.0\.1:\d+/[^>]+>;rel="\w+",?){4}', first.headers["Link"])
    link = urlsplit(first.links["next"]["url"])
    assert link.path == "/api/now/table/sysevent"
    assert parse_qs(link.query)["sysparm_query"] == ["ORDERBYsys_id"]
    last = session.get(table(emulator, "sysevent"), params={**params, "sysparm_offset": "20"})
    assert offsets(last) == {"first": 0, "prev": 10, "last": 20}


def test_count_and_pagination_headers_can_be_turned_off(
    emulator: Emulator, session: requests.Session
) -> None:
    response = session.get(
        table(emulator, "sysevent"),
        params={"sysparm_no_count": "true", "sysparm_suppress_pagination_header": "true"},
    )
    assert "X-Total-Count" not in response.headers
    assert "Link" not in response.headers
    assert len(response.json()["result"]) == 25


def test_default_limit_is_10000(emulator: Emulator, session: requests.Session) -> None:
    emulator.load_rows("sysevent", ({"name": "login", "parm1": f"u{n}"} for n in range(10_050)))
    response = session.get(table(emulator, "sysevent"), params={"sysparm_fields": "sys_id"})
    assert len(response.json()["result"]) == 10_000
    assert response.headers["X-Total-Count"] == "10075"


def test_fields_including_dot_walked_ones(emulator: Emulator, session: requests.Session) -> None:
    response = session.get(
        table(emulator, "sys_user_has_role"),
        params={
            "sysparm_query": "role.name=mid_server^ORDERBYuser.user_name",
            "sysparm_fields": "user.user_name,role.name,nonexistent,user.nope,sys_id",
            "sysparm_exclude_reference_link": "true",
        },
    )
    assert response.json()["result"] == [
        {"user.user_name": "mid1", "role.name": "mid_server", "sys_id": "h1"},
        {"user.user_name": "mid2", "role.name": "mid_server", "sys_id": "h2"},
    ]


def test_reference_fields_come_with_links_unless_excluded(
    emulator: Emulator, session: requests.Session
) -> None:
    params = {"sysparm_fields": "sys_id,user,role", "sysparm_query": "ORDERBYsys_id"}
    linked = session.get(table(emulator, "sys_user_has_role"), params=params).json()["result"]
    assert linked[0] == {
        "sys_id": "h1",
        "user": {"link": f"{emulator.url}/api/now/table/sys_user/u1", "value": "u1"},
        "role": {"link": f"{emulator.url}/api/now/table/sys_user_role/r_mid", "value": "r_mid"},
    }
    assert linked[3]["user"] == ""  # an empty reference is a plain empty string
    plain = session.get(
        table(emulator, "sys_user_has_role"),
        params={**params, "sysparm_exclude_reference_link": "true"},
    ).json()["result"]
    assert plain[0] == {"sys_id": "h1", "user": "u1", "role": "r_mid"}
    also_plain = session.get(
        table(emulator, "sys_user_has_role"),
        params={
            **params,
            "sysparm_exclude_reference_link": "false",
            "sysparm_display_value": "false",
        },
    ).json()["result"]
    assert also_plain == linked


def test_all_values_are_strings_and_every_field_is_returned(
    emulator: Emulator, session: requests.Session
) -> None:
    row = session.get(table(emulator, "ecc_agent_issue")).json()["result"][0]
    assert set(row) >= {"sys_id", "message", "source", "state", "count", "mid_server"}
    assert all(isinstance(value, str) for value in row.values())


def test_get_one_record(emulator: Emulator, session: requests.Session) -> None:
    response = session.get(
        table(emulator, "sys_user_has_role", "h2"), params={"sysparm_fields": "user,user.user_name"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "result": {
            "user": {"link": f"{emulator.url}/api/now/table/sys_user/u2", "value": "u2"},
            "user.user_name": "mid2",
        }
    }


def test_create_fills_in_what_an_instance_does(
    emulator: Emulator, session: requests.Session
) -> None:
    response = session.post(
        table(emulator, "ecc_agent_issue"),
        json={"message": "hello", "source": "MIDUserConnectivity", "short_description": "x"},
    )
    assert response.status_code == 201
    record = response.json()["result"]
    assert re.fullmatch(r"[0-9a-f]{32}", record["sys_id"])
    assert record["sys_created_on"] == record["sys_updated_on"] == NOW
    assert (record["state"], record["count"], record["sys_domain"]) == ("new", "1", "global")
    assert record["mid_server"] == ""
    assert "short_description" not in record  # an instance ignores unknown fields
    assert response.headers["Location"] == table(emulator, "ecc_agent_issue", record["sys_id"])
    stored = [row for row in emulator.rows("ecc_agent_issue") if row["sys_id"] == record["sys_id"]]
    assert stored[0]["message"] == "hello"


def test_create_keeps_given_values(emulator: Emulator, session: requests.Session) -> None:
    response = session.post(
        table(emulator, "ecc_agent_issue"),
        params={
            "sysparm_exclude_reference_link": "true",
            "sysparm_fields": "state,count,mid_server",
        },
        json={"state": "acknowledged", "count": 5, "mid_server": "a1"},
    )
    assert response.json()["result"] == {"state": "acknowledged", "count": "5", "mid_server": "a1"}


def test_patch_and_put_update_fields_and_sys_updated_on(
    emulator: Emulator, session: requests.Session
) -> None:
    emulator.clock.advance(60)
    patched = session.patch(
        table(emulator, "ecc_agent_issue", "i1"), json={"count": "4", "last_detected": NOW}
    )
    assert patched.status_code == 200
    record = patched.json()["result"]
    assert (record["count"], record["state"]) == ("4", "acknowledged")
    assert record["sys_updated_on"] == "2026-11-25 10:01:00"
    emulator.clock.advance(60)
    put = session.put(table(emulator, "ecc_agent_issue", "i1"), json={"state": "resolved"})
    assert put.status_code == 200
    assert put.json()["result"]["state"] == "resolved"
    assert put.json()["result"]["count"] == "4"
    assert emulator.rows("ecc_agent_issue")[0]["sys_updated_on"] == "2026-11-25 10:02:00"


def test_delete_then_the_record_is_gone(emulator: Emulator, session: requests.Session) -> None:
    deleted = session.delete(table(emulator, "ecc_agent_issue", "i1"))
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert session.get(table(emulator, "ecc_agent_issue", "i1")).status_code == 404
    assert session.delete(table(emulator, "ecc_agent_issue", "i1")).status_code == 404


def test_versioned_paths_are_accepted(emulator: Emulator, session: requests.Session) -> None:
    response = session.get(f"{emulator.url}/api/now/v2/table/sys_user")
    assert response.status_code == 200
    assert len(response.json()["result"]) == 2


def test_responses_are_json_with_instance_headers(
    emulator: Emulator, session: requests.Session
) -> None:
    response = session.get(table(emulator, "sys_user"))
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.headers["Server"] == "ServiceNow"
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_path_parts_are_percent_decoded(emulator: Emulator, session: requests.Session) -> None:
    emulator.load_rows("sys_user", [{"sys_id": "odd id/1", "user_name": "odd"}])
    response = session.get(table(emulator, "sys_user", "odd%20id%2F1"))
    assert response.json()["result"]["user_name"] == "odd"
