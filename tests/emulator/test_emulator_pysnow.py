"""The pysnow client against the emulator, as against an instance."""

from __future__ import annotations

from collections.abc import Iterator

import pysnow
import pytest
import requests
from emulator_data import PASSWORD

from snowcheck.emulator import Emulator


@pytest.fixture
def client(emulator: Emulator) -> Iterator[pysnow.Client]:
    with requests.Session() as session:
        session.auth = ("admin", PASSWORD)
        yield pysnow.Client(host=f"127.0.0.1:{emulator.port}", use_ssl=False, session=session)


def test_get_with_query_fields_limit_and_offset(client: pysnow.Client) -> None:
    roles = client.resource(api_path="/table/sys_user_has_role")
    rows = roles.get(
        query="role.name=mid_server^ORDERBYsys_id",
        fields=["sys_id", "user", "user.user_name"],
        limit=10,
        offset=0,
    ).all()
    assert [row["user.user_name"] for row in rows] == ["mid1", "mid2"]
    assert rows[0]["user"]["value"] == "u1"  # pysnow asks for reference links by default


def test_get_with_a_dict_query(client: pysnow.Client) -> None:
    users = client.resource(api_path="/table/sys_user")
    rows = users.get(query={"user_name": "mid2"}, fields=["active"]).all()
    assert rows == [{"active": "false"}]


def test_pagination_by_offset(client: pysnow.Client) -> None:
    events = client.resource(api_path="/table/sysevent")
    seen: list[str] = []
    offset = 0
    while True:
        response = events.get(query="ORDERBYsys_id", fields=["sys_id"], limit=10, offset=offset)
        page = response.all()
        seen += [row["sys_id"] for row in page]
        total = int(response.headers["X-Total-Count"])
        offset += 10
        if len(page) < 10 or offset >= total:
            break
    assert seen == [f"e{n:02d}" for n in range(25)]


def test_create_and_update(client: pysnow.Client, emulator: Emulator) -> None:
    issues = client.resource(api_path="/table/ecc_agent_issue")
    created = issues.create(payload={"message": "m", "source": "MIDUserConnectivity"}).one()
    assert (created["state"], created["count"]) == ("new", "1")
    issues.update(query={"sys_id": created["sys_id"]}, payload={"state": "resolved"})
    stored = {row["sys_id"]: row for row in emulator.rows("ecc_agent_issue")}
    assert stored[created["sys_id"]]["state"] == "resolved"


def test_errors_raise_http_error(client: pysnow.Client, emulator: Emulator) -> None:
    with pytest.raises(requests.HTTPError) as missing:
        client.resource(api_path="/table/sys_usr").get(query="").all()
    assert missing.value.response.status_code == 400
    emulator.faults.add("status", status=503)
    with pytest.raises(requests.HTTPError) as unavailable:
        client.resource(api_path="/table/sys_user").get(query="").all()
    assert unavailable.value.response.status_code == 503
