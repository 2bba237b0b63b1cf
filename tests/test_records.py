"""Raw Table API rows to typed records: one case per table, then every way a row can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from factories import reference

from snowcheck.errors import DataError
from snowcheck.records import (
    Event,
    Inventory,
    Issue,
    MidConfig,
    MidServer,
    Role,
    User,
    UserRole,
    format_time,
    parse_time,
)

LINK = "https://example.service-now.com/api/now/table"
T = datetime(2026, 11, 25, 11, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("table", "row", "attribute", "expected"),
    [
        pytest.param(
            "sys_user_role",
            {"sys_id": "r1", "name": "mid_server"},
            "roles",
            Role(sys_id="r1", name="mid_server"),
            id="sys_user_role",
        ),
        pytest.param(
            "sys_user_has_role",
            {"sys_id": "g1", "user": "u1", "role": "r1"},
            "user_roles",
            UserRole(user="u1", role="r1"),
            id="sys_user_has_role-plain",
        ),
        pytest.param(
            "sys_user_has_role",
            {
                "sys_id": "g1",
                "user": reference("sys_user", "u1", link=True),
                "role": reference("sys_user_role", "r1", link=True),
            },
            "user_roles",
            UserRole(user="u1", role="r1"),
            id="sys_user_has_role-link",
        ),
        pytest.param(
            "sys_user",
            {
                "sys_id": "u1",
                "user_name": "mid.east",
                "active": "true",
                "locked_out": "true",
                "sys_domain": "acme",
            },
            "users",
            User(
                sys_id="u1", user_name="mid.east", active=True, sys_domain="acme", locked_out=True
            ),
            id="sys_user",
        ),
        pytest.param(
            "sys_user",
            {
                "sys_id": "u1",
                "user_name": "Mid East ",
                "active": "false",
                "sys_domain": reference("sys_domain", "d1", link=True),
            },
            "users",
            User(
                sys_id="u1", user_name="Mid East ", active=False, sys_domain="d1", locked_out=False
            ),
            id="sys_user-domain-link-no-locked_out",
        ),
        pytest.param(
            "sys_user",
            {
                "sys_id": "u1",
                "user_name": "x",
                "active": "true",
                "locked_out": "",
                "sys_domain": "",
            },
            "users",
            User(sys_id="u1", user_name="x", active=True, sys_domain="global", locked_out=False),
            id="sys_user-blank-domain-is-global",
        ),
        pytest.param(
            "ecc_agent_config",
            {
                "sys_id": "c1",
                "ecc_agent": reference("ecc_agent", "m1", link=True),
                "param_name": "mid.instance.username",
                "value": "mid.east",
                "sys_domain": "emea",
            },
            "configs",
            MidConfig(
                sys_id="c1",
                ecc_agent="m1",
                param_name="mid.instance.username",
                value="mid.east",
                sys_domain="emea",
            ),
            id="ecc_agent_config",
        ),
        pytest.param(
            "ecc_agent_config",
            {"param_name": "mid.instance.username", "value": "mid.east", "ecc_agent": None},
            "configs",
            MidConfig(
                sys_id="",
                ecc_agent="",
                param_name="mid.instance.username",
                value="mid.east",
                sys_domain="global",
            ),
            id="ecc_agent_config-sparse",
        ),
        pytest.param(
            "ecc_agent",
            {
                "sys_id": "m1",
                "name": "mid-east-1",
                "status": "Down",
                "last_refreshed": "2026-11-25 02:00:00",
            },
            "mid_servers",
            MidServer(
                sys_id="m1",
                name="mid-east-1",
                status="Down",
                last_refreshed=datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
            ),
            id="ecc_agent",
        ),
        pytest.param(
            "ecc_agent",
            {"sys_id": "m1", "name": "m", "status": "Up", "last_refreshed": ""},
            "mid_servers",
            MidServer(sys_id="m1", name="m", status="Up", last_refreshed=None),
            id="ecc_agent-never-refreshed",
        ),
        pytest.param(
            "sysevent",
            {
                "sys_id": "e1",
                "name": "login.authorization.failed",
                "parm1": "mid.east",
                "parm2": "soap_query,mid_server",
                "sys_created_on": "2026-11-25 11:30:00",
            },
            "events",
            Event(
                sys_id="e1",
                name="login.authorization.failed",
                parm1="mid.east",
                parm2="soap_query,mid_server",
                created_on=T,
            ),
            id="sysevent",
        ),
        pytest.param(
            "sysevent",
            {"name": "login", "parm1": "mid.east", "sys_created_on": "2026-11-25 11:30:00"},
            "events",
            Event(sys_id="", name="login", parm1="mid.east", parm2="", created_on=T),
            id="sysevent-no-parm2",
        ),
        pytest.param(
            "ecc_agent_issue",
            {
                "sys_id": "i1",
                "message": "m",
                "source": "MIDUserConnectivity",
                "state": "acknowledged",
                "count": "12",
                "last_detected": "2026-11-25 11:30:00",
                "mid_server": "",
                "sys_domain": "global",
                "sys_updated_on": "2026-11-25 11:30:00",
            },
            "issues",
            Issue(
                sys_id="i1",
                message="m",
                source="MIDUserConnectivity",
                state="acknowledged",
                count=12,
                last_detected=T,
                mid_server="",
                sys_domain="global",
                updated_on=T,
            ),
            id="ecc_agent_issue",
        ),
        pytest.param(
            "ecc_agent_issue",
            {
                "sys_id": "i1",
                "message": "m",
                "source": "s",
                "state": "new",
                "count": "",
                "mid_server": reference("ecc_agent", "m1", link=True),
            },
            "issues",
            Issue(
                sys_id="i1",
                message="m",
                source="s",
                state="new",
                count=0,
                last_detected=None,
                mid_server="m1",
                sys_domain="global",
                updated_on=None,
            ),
            id="ecc_agent_issue-sparse",
        ),
    ],
)
def test_conversion(table: str, row: dict[str, Any], attribute: str, expected: object) -> None:
    inventory = Inventory.from_tables({table: [row]})
    assert getattr(inventory, attribute) == (expected,)


def test_tables_left_out_are_empty() -> None:
    inventory = Inventory.from_tables({})
    assert inventory == Inventory((), (), (), (), (), (), ())


@pytest.mark.parametrize(
    ("state", "is_open"),
    [
        ("new", True),
        ("acknowledged", True),
        ("resolved", False),
        # As the database compares `state != resolved`: case and trailing spaces aside,
        # and an empty state is neither open nor resolved.
        ("Resolved", False),
        ("RESOLVED", False),
        ("resolved ", False),
        (" resolved", True),
        ("New", True),
        ("", False),
    ],
)
def test_issue_is_open(state: str, is_open: bool) -> None:
    row = {"sys_id": "i1", "message": "m", "source": "s", "state": state, "count": "1"}
    (issue,) = Inventory.from_tables({"ecc_agent_issue": [row]}).issues
    assert issue.is_open is is_open


def test_time_round_trip() -> None:
    assert parse_time("2026-11-25 11:30:00") == T
    assert format_time(T) == "2026-11-25 11:30:00"
    assert format_time(T.astimezone(timezone(timedelta(hours=-5)))) == "2026-11-25 11:30:00"


# ---------------------------------------------------------------------------
# Bad rows: a DataError naming the table, the sys_id and the field.
# ---------------------------------------------------------------------------

USER_ROW = {
    "sys_id": "u1",
    "user_name": "mid.east",
    "active": "true",
    "locked_out": "false",
    "sys_domain": "global",
}
EVENT_ROW = {
    "sys_id": "e1",
    "name": "login",
    "parm1": "mid.east",
    "parm2": "",
    "sys_created_on": "2026-11-25 11:30:00",
}
ISSUE_ROW = {
    "sys_id": "i1",
    "message": "m",
    "source": "MIDUserConnectivity",
    "state": "new",
    "count": "1",
    "mid_server": "",
}
MID_ROW = {"sys_id": "m1", "name": "m", "status": "Down", "last_refreshed": ""}
CONFIG_ROW = {
    "sys_id": "c1",
    "ecc_agent": "m1",
    "param_name": "mid.instance.username",
    "value": "mid.east",
}


def changed(row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**row, **fields}


def without(row: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != field}


@pytest.mark.parametrize(
    ("table", "row", "sys_id", "field", "message"),
    [
        pytest.param(
            "sysevent",
            changed(EVENT_ROW, sys_created_on="2026-11-25T11:30:00Z"),
            "e1",
            "sys_created_on",
            "sysevent record e1: field 'sys_created_on' should be a date YYYY-MM-DD HH:MM:SS, "
            "got '2026-11-25T11:30:00Z'",
            id="sysevent-iso-date",
        ),
        pytest.param(
            "sysevent",
            changed(EVENT_ROW, sys_created_on="yesterday"),
            "e1",
            "sys_created_on",
            "sysevent record e1: field 'sys_created_on' should be a date YYYY-MM-DD HH:MM:SS, "
            "got 'yesterday'",
            id="sysevent-bad-date",
        ),
        pytest.param(
            "sysevent",
            changed(EVENT_ROW, sys_created_on=""),
            "e1",
            "sys_created_on",
            "sysevent record e1: field 'sys_created_on' is empty",
            id="sysevent-empty-date",
        ),
        pytest.param(
            "sysevent",
            without(EVENT_ROW, "sys_created_on"),
            "e1",
            "sys_created_on",
            "sysevent record e1: field 'sys_created_on' is missing",
            id="sysevent-no-date",
        ),
        pytest.param(
            "sysevent",
            without(EVENT_ROW, "parm1"),
            "e1",
            "parm1",
            "sysevent record e1: field 'parm1' is missing",
            id="sysevent-no-parm1",
        ),
        pytest.param(
            "sys_user",
            changed(USER_ROW, active="yes"),
            "u1",
            "active",
            "sys_user record u1: field 'active' should be 'true' or 'false', got 'yes'",
            id="sys_user-active-yes",
        ),
        pytest.param(
            "sys_user",
            changed(USER_ROW, active="True"),
            "u1",
            "active",
            "sys_user record u1: field 'active' should be 'true' or 'false', got 'True'",
            id="sys_user-active-capitalised",
        ),
        pytest.param(
            "sys_user",
            without(USER_ROW, "active"),
            "u1",
            "active",
            "sys_user record u1: field 'active' is missing",
            id="sys_user-no-active",
        ),
        pytest.param(
            "sys_user",
            changed(USER_ROW, locked_out="1"),
            "u1",
            "locked_out",
            "sys_user record u1: field 'locked_out' should be 'true' or 'false', got '1'",
            id="sys_user-locked_out-1",
        ),
        pytest.param(
            "sys_user",
            without(USER_ROW, "sys_id"),
            "",
            "sys_id",
            "sys_user record (no sys_id): field 'sys_id' is missing",
            id="sys_user-no-sys_id",
        ),
        pytest.param(
            "sys_user",
            changed(USER_ROW, sys_id=""),
            "",
            "sys_id",
            "sys_user record (no sys_id): field 'sys_id' is empty",
            id="sys_user-empty-sys_id",
        ),
        pytest.param(
            "sys_user",
            changed(USER_ROW, user_name=5),
            "u1",
            "user_name",
            "sys_user record u1: field 'user_name' should be a string, got int",
            id="sys_user-user_name-number",
        ),
        pytest.param(
            "sys_user",
            changed(USER_ROW, sys_domain=["global"]),
            "u1",
            "sys_domain",
            "sys_user record u1: field 'sys_domain' should be a sys_id or a {link, value} "
            "reference",
            id="sys_user-domain-list",
        ),
        pytest.param(
            "sys_user",
            "mid.east",
            "",
            "(row)",
            "sys_user record (no sys_id): field '(row)' is a str, not an object",
            id="sys_user-row-is-a-string",
        ),
        pytest.param(
            "sys_user_has_role",
            ["u1", "r1"],
            "",
            "(row)",
            "sys_user_has_role record (no sys_id): field '(row)' is a list, not an object",
            id="sys_user_has_role-row-is-a-list",
        ),
        pytest.param(
            "sys_user_has_role",
            {"sys_id": "g1", "user": {"link": LINK, "value": 7}, "role": "r1"},
            "g1",
            "user",
            "sys_user_has_role record g1: field 'user' should be a sys_id or a {link, value} "
            "reference",
            id="sys_user_has_role-link-value-number",
        ),
        pytest.param(
            "sys_user_has_role",
            {"sys_id": "g1", "role": "r1"},
            "g1",
            "user",
            "sys_user_has_role record g1: field 'user' is missing",
            id="sys_user_has_role-no-user",
        ),
        pytest.param(
            "sys_user_role",
            {"sys_id": "r1"},
            "r1",
            "name",
            "sys_user_role record r1: field 'name' is missing",
            id="sys_user_role-no-name",
        ),
        pytest.param(
            "ecc_agent_issue",
            changed(ISSUE_ROW, count="abc"),
            "i1",
            "count",
            "ecc_agent_issue record i1: field 'count' should be a whole number, got 'abc'",
            id="ecc_agent_issue-count-abc",
        ),
        pytest.param(
            "ecc_agent_issue",
            changed(ISSUE_ROW, count="1.5"),
            "i1",
            "count",
            "ecc_agent_issue record i1: field 'count' should be a whole number, got '1.5'",
            id="ecc_agent_issue-count-fraction",
        ),
        pytest.param(
            "ecc_agent_issue",
            without(ISSUE_ROW, "count"),
            "i1",
            "count",
            "ecc_agent_issue record i1: field 'count' is missing",
            id="ecc_agent_issue-no-count",
        ),
        pytest.param(
            "ecc_agent_issue",
            changed(ISSUE_ROW, sys_updated_on="25/11/2026"),
            "i1",
            "sys_updated_on",
            "ecc_agent_issue record i1: field 'sys_updated_on' should be a date "
            "YYYY-MM-DD HH:MM:SS, got '25/11/2026'",
            id="ecc_agent_issue-bad-updated",
        ),
        pytest.param(
            "ecc_agent",
            without(MID_ROW, "status"),
            "m1",
            "status",
            "ecc_agent record m1: field 'status' is missing",
            id="ecc_agent-no-status",
        ),
        pytest.param(
            "ecc_agent",
            changed(MID_ROW, last_refreshed="soon"),
            "m1",
            "last_refreshed",
            "ecc_agent record m1: field 'last_refreshed' should be a date YYYY-MM-DD HH:MM:SS, "
            "got 'soon'",
            id="ecc_agent-bad-refresh",
        ),
        pytest.param(
            "ecc_agent_config",
            without(CONFIG_ROW, "param_name"),
            "c1",
            "param_name",
            "ecc_agent_config record c1: field 'param_name' is missing",
            id="ecc_agent_config-no-param_name",
        ),
    ],
)
def test_bad_row(table: str, row: Any, sys_id: str, field: str, message: str) -> None:
    with pytest.raises(DataError) as raised:
        Inventory.from_tables({table: [row]})
    error = raised.value
    assert (error.table, error.sys_id, error.field) == (table, sys_id, field)
    assert str(error) == message


def test_link_object_without_value_is_malformed() -> None:
    row = {"sys_id": "g1", "user": {"link": f"{LINK}/sys_user/u1"}, "role": "r1"}
    with pytest.raises(DataError) as raised:
        Inventory.from_tables({"sys_user_has_role": [row]})
    assert (raised.value.table, raised.value.sys_id, raised.value.field) == (
        "sys_user_has_role",
        "g1",
        "user",
    )


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param({"sys_id": "u1"}, id="object"),
        pytest.param("rows", id="string"),
        pytest.param(None, id="null"),
    ],
)
def test_table_that_is_not_a_list(rows: Any) -> None:
    with pytest.raises(DataError) as raised:
        Inventory.from_tables({"sys_user": rows})
    assert (
        str(raised.value) == "sys_user record (no sys_id): field '(table)' should be a list of rows"
    )


def test_bad_row_among_good_ones_is_named() -> None:
    rows = [USER_ROW, changed(USER_ROW, sys_id="u2", active="yes")]
    with pytest.raises(DataError, match="sys_user record u2: field 'active'"):
        Inventory.from_tables({"sys_user": rows})
