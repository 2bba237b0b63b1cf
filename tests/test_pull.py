"""pull_snapshot against a `responses` mock: which requests, with which queries, and how many."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from snowcheck import pull
from snowcheck.emulator import Emulator, Scenario
from snowcheck.errors import DataError, InstanceError
from snowcheck.pull import pull_snapshot
from snowcheck.records import Inventory
from snowcheck.rules import event_candidates
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.query import chunk_in
from snowcheck.servicenow.session import Connection

BASE = "https://dev1.service-now.com"
API = f"{BASE}/api/now/table"
DATE = "Wed, 01 May 2024 11:59:20 GMT"
WINDOW = timedelta(hours=4)
LOGINS = "nameINlogin,login.failed,login.authorization.failed"
TABLE_NAMES = (
    "sys_user_role",
    "sys_user_has_role",
    "ecc_agent_config",
    "ecc_agent",
    "sys_user",
    "sysevent",
    "ecc_agent_issue",
    "sys_properties",
)
SNAPSHOT_TABLES = set(TABLE_NAMES)
ROUND_ONE = ("sys_user_has_role", "ecc_agent_config", "ecc_agent", "ecc_agent_issue")


def _user(sys_id: str, name: str, active: str = "true") -> dict[str, str]:
    return {
        "user": sys_id,
        "user.user_name": name,
        "user.active": active,
        "user.sys_domain": "global",
        "user.locked_out": "false",
        "user.password_needs_reset": "false",
    }


def _grant(sys_id: str, role: str, user: dict[str, str]) -> dict[str, str]:
    name = {"r_mid": "mid_server", "r_soap": "soap_script"}[role]
    return {"sys_id": sys_id, "role": role, "role.name": name, **user}


def scenario() -> dict[str, list[dict[str, Any]]]:
    return {
        "sys_user_role": [
            {"sys_id": "r_mid", "name": "mid_server"},
            {"sys_id": "r_soap", "name": "soap_script"},
        ],
        "sys_user_has_role": [
            _grant("g1", "r_mid", _user("u1", "mid.one")),
            _grant("g2", "r_soap", _user("u1", "mid.one")),
            _grant("g3", "r_mid", _user("u2", "a,b", active="false")),
            # A grant whose user is gone: its dot-walked fields come back empty.
            {**_grant("g4", "r_mid", _user("u9", "")), "user.active": ""},
        ],
        "ecc_agent_config": [
            {
                "sys_id": "c1",
                "ecc_agent": "m1",
                "param_name": "mid.instance.username",
                "value": "mid.one",
                "sys_domain": "global",
            },
            {
                "sys_id": "c2",
                "ecc_agent": "m1",
                "param_name": "mid.instance.username",
                "value": "cfg^user",
                "sys_domain": "global",
            },
        ],
        "ecc_agent": [
            {"sys_id": "m1", "name": "MID 1", "status": "Down", "last_refreshed": ""},
        ],
        "sys_user": [
            {
                "sys_id": "u3",
                "user_name": "cfg^user",
                "active": "true",
                "sys_domain": "global",
                "locked_out": "false",
                "password_needs_reset": "true",
            },
        ],
        "sysevent": [
            {
                "sys_id": "e1",
                "name": "login.failed",
                "parm1": "mid.one",
                "parm2": "",
                "sys_created_on": "2024-05-01 11:00:00",
            },
        ],
        "ecc_agent_issue": [
            {
                "sys_id": "i1",
                "message": "old",
                "source": "MIDUserConnectivity",
                "state": "new",
                "count": "1",
                "last_detected": "2024-05-01 08:00:00",
                "mid_server": "",
                "sys_domain": "global",
                "sys_updated_on": "2024-05-01 08:00:00",
            },
        ],
        "sys_properties": [
            {"name": "mid.buildstamp", "value": "xanadu-07-02-2024__patch1"},
            {"name": "mid.version.override", "value": ""},
        ],
    }


class FakeTables:
    """Serves each table's rows, paged by sysparm_offset/limit, whatever the query asks."""

    def __init__(self, mock: responses.RequestsMock, tables: dict[str, list[dict[str, Any]]]):
        self.tables = tables
        self.mock = mock
        for table in TABLE_NAMES:
            mock.add_callback("GET", f"{API}/{table}", callback=self.answer)

    def answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        table = urlsplit(request.url).path.rsplit("/", 1)[1]
        query = dict(parse_qsl(urlsplit(request.url).query))
        offset, limit = int(query["sysparm_offset"]), int(query["sysparm_limit"])
        rows = self.tables.get(table, [])
        headers = {"X-Total-Count": str(len(rows)), "Date": DATE}
        return 200, headers, json.dumps({"result": rows[offset : offset + limit]})

    def queries(self) -> list[tuple[str, str]]:
        return [
            (
                urlsplit(call.request.url).path.rsplit("/", 1)[1],
                dict(parse_qsl(urlsplit(call.request.url).query))["sysparm_query"],
            )
            for call in self.mock.calls
        ]


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def make_instance(page_size: int = 10000) -> Instance:
    connection = Connection(
        base_url=BASE, user="checker", password="pw-secret", page_size=page_size
    )
    return Instance(connection, sleep=lambda _: None, attempts=2)


def stub_candidates(monkeypatch: pytest.MonkeyPatch, names: set[str]) -> list[Inventory]:
    seen: list[Inventory] = []

    def candidates(inventory: Inventory) -> set[str]:
        seen.append(inventory)
        return names

    monkeypatch.setattr(pull, "event_candidates", candidates)
    return seen


def test_pull_reads_round_one_then_round_two(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTables(mock, scenario())
    seen = stub_candidates(monkeypatch, {"mid.one", "a,b", "cfg^user"})

    snapshot = pull_snapshot(
        make_instance(), window=WINDOW, source="MIDUserConnectivity", concurrency=1
    )

    # One at a time, reads go in this order; concurrently, only their order changes.
    assert fake.queries() == [
        # Round one: nothing here needs an earlier answer.
        ("sys_user_has_role", "role.nameINmid_server,soap,soap_script^ORDERBYsys_id"),
        ("ecc_agent_config", "param_name=mid.instance.username^ORDERBYsys_id"),
        ("ecc_agent", "ORDERBYsys_id"),  # every MID Server, for the advisories
        (
            "ecc_agent_issue",
            "sourceINMIDUserConnectivity,InstanceClone^state!=resolved^ORDERBYsys_id",
        ),
        ("sys_properties", "nameINmid.buildstamp,mid.version.override^ORDERBYsys_id"),
        # Round two: mid.one is known from the role grants; only cfg^user is asked for.
        ("sys_user", "user_nameINcfg^^user^ORDERBYsys_id"),
        (
            "sysevent",
            # No upper bound, as the job's query: an event dated after now counts.
            f"{LOGINS}^sys_created_on>2024-05-01 07:58:20"
            "^parm1INcfg^^user,mid.one^ORparm1=a,b^ORDERBYsys_id",
        ),
    ]
    fields = [
        dict(parse_qsl(urlsplit(call.request.url).query))["sysparm_fields"] for call in mock.calls
    ]
    assert fields[0] == (
        "sys_id,user,role,role.name,user.user_name,user.active,user.sys_domain,"
        "user.locked_out,user.password_needs_reset"
    )
    assert fields[2] == "sys_id,name,status,last_refreshed,user_name,validated,version"
    assert fields[4] == "name,value"
    assert fields[5] == "sys_id,user_name,active,sys_domain,locked_out,password_needs_reset"

    assert snapshot.now == datetime(2024, 5, 1, 11, 59, 20, tzinfo=UTC)
    assert snapshot.clock_source == "instance"
    assert set(snapshot.tables) == SNAPSHOT_TABLES
    assert snapshot.extra_reads == {"all_mid_servers", "clone_issues", "sys_properties"}
    assert snapshot.why_unread == {}
    # The roles come from the grants' dot-walked role names, one row per role.
    assert snapshot.tables["sys_user_role"] == [
        {"sys_id": "r_mid", "name": "mid_server"},
        {"sys_id": "r_soap", "name": "soap_script"},
    ]
    assert snapshot.tables["sys_user"] == [
        {
            "sys_id": "u1",
            "user_name": "mid.one",
            "active": "true",
            "sys_domain": "global",
            "locked_out": "false",
            "password_needs_reset": "false",
        },
        {
            "sys_id": "u2",
            "user_name": "a,b",
            "active": "false",
            "sys_domain": "global",
            "locked_out": "false",
            "password_needs_reset": "false",
        },
        scenario()["sys_user"][0],
    ]
    assert snapshot.tables["sys_user_has_role"][0] == {
        "sys_id": "g1",
        "user": "u1",
        "role": "r_mid",
    }
    assert len(snapshot.tables["sys_user_has_role"]) == 4
    assert [row["sys_id"] for row in snapshot.tables["sysevent"]] == ["e1"]
    assert snapshot.tables["sys_properties"] == scenario()["sys_properties"]
    # The rules were asked for candidates from round one alone: holders, no user row read.
    assert len(seen[0].users) == 2 and seen[0].events == () and seen[0].issues == ()
    inventory = Inventory.from_tables(snapshot.tables)  # the snapshot converts cleanly
    assert [user.password_needs_reset for user in inventory.users] == [False, False, True]


def test_without_advisories_none_of_their_reads_is_made(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTables(mock, scenario())
    stub_candidates(monkeypatch, {"mid.one"})
    snapshot = pull_snapshot(
        make_instance(), window=WINDOW, source="S", concurrency=1, advisories=False
    )
    assert fake.queries()[:4] == [
        ("sys_user_has_role", "role.nameINmid_server,soap,soap_script^ORDERBYsys_id"),
        ("ecc_agent_config", "param_name=mid.instance.username^ORDERBYsys_id"),
        ("ecc_agent", "status=Down^ORDERBYsys_id"),
        ("ecc_agent_issue", "source=S^state!=resolved^ORDERBYsys_id"),
    ]
    assert [table for table, _ in fake.queries()[4:]] == ["sys_user", "sysevent"]
    fields = dict(parse_qsl(urlsplit(mock.calls[2].request.url).query))["sysparm_fields"]
    assert fields == "sys_id,name,status,last_refreshed"
    assert snapshot.extra_reads == frozenset()
    assert "sys_properties" not in snapshot.tables


@pytest.mark.parametrize("status", [401, 403])
def test_denied_properties_leave_the_table_out_with_the_reason(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    FakeTables(mock, scenario())
    stub_candidates(monkeypatch, {"mid.one"})
    mock.replace("GET", f"{API}/sys_properties", status=status, json={"error": {"message": "ACL"}})
    snapshot = pull_snapshot(make_instance(), window=WINDOW, source="S")
    assert "sys_properties" not in snapshot.tables
    assert snapshot.extra_reads == {"all_mid_servers", "clone_issues"}
    assert snapshot.why_unread == {
        "sys_properties": f"read access to sys_properties denied (HTTP {status})"
    }
    assert len(snapshot.tables["sysevent"]) == 1  # the rest of the pull went on


def test_properties_hidden_by_acls_leave_the_table_out(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = scenario()
    tables["sys_properties"] = [{"name": "", "value": ""}, {"name": "", "value": ""}]
    FakeTables(mock, tables)
    stub_candidates(monkeypatch, set())
    snapshot = pull_snapshot(make_instance(), window=WINDOW, source="S")
    assert "sys_properties" not in snapshot.tables
    assert "hidden by ACLs" in snapshot.why_unread["sys_properties"]


def test_other_property_failures_fail_the_pull(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeTables(mock, scenario())
    stub_candidates(monkeypatch, set())
    mock.replace("GET", f"{API}/sys_properties", status=500, json={"error": {"message": "x"}})
    with pytest.raises(InstanceError, match="sys_properties"):
        pull_snapshot(make_instance(), window=WINDOW, source="S")


def test_real_rules_choose_the_event_candidates(mock: responses.RequestsMock) -> None:
    fake = FakeTables(mock, scenario())
    pull_snapshot(make_instance(), window=WINDOW, source="MIDUserConnectivity")
    events = [query for table, query in fake.queries() if table == "sysevent"]
    assert len(events) == 1
    assert "mid.one" in events[0]  # configured on a down MID


def test_reads_that_are_not_needed_are_skipped(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = scenario()
    tables["sys_user_has_role"] = []
    tables["ecc_agent_config"] = []
    fake = FakeTables(mock, tables)
    stub_candidates(monkeypatch, set())
    snapshot = pull_snapshot(make_instance(), window=WINDOW, source="S")
    queried = [table for table, _ in fake.queries()]
    assert sorted(queried) == sorted([*ROUND_ONE, "sys_properties"])
    assert snapshot.tables["sysevent"] == [] and snapshot.tables["sys_user"] == []


def test_events_come_in_one_request_per_chunk_of_names(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTables(mock, scenario())
    names = {f"user{i:02}" for i in range(50)}
    stub_candidates(monkeypatch, names)
    # Each chunk: "parm1IN" (7) + 6 per name + 3 per "%2C": 21 names fit 200 characters.
    pull_snapshot(make_instance(), window=WINDOW, source="S", budget=200)
    events = [query for table, query in fake.queries() if table == "sysevent"]
    assert len(events) == 3 == len(list(chunk_in("parm1", names, 200)))
    asked = [
        name
        for query in events
        for name in query.split("^parm1IN")[1].removesuffix("^ORDERBYsys_id").split(",")
    ]
    assert sorted(asked) == sorted(names)


@pytest.mark.parametrize("advisories", [True, False])
def test_request_count_follows_the_formula(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, advisories: bool
) -> None:
    tables = scenario()
    tables["sys_user_has_role"] = [
        _grant(f"g{i}", "r_mid", _user(f"u{i}", f"name{i}")) for i in range(5)
    ]
    tables["ecc_agent_issue"] = []
    tables["sys_properties"] *= 2
    fake = FakeTables(mock, tables)
    stub_candidates(monkeypatch, {"name1", "x"})
    page_size = 2

    def pages(rows: int) -> int:
        return max(1, math.ceil(rows / page_size))

    pull_snapshot(
        make_instance(page_size=page_size), window=WINDOW, source="S", advisories=advisories
    )

    expected = (
        pages(5)  # grants
        + pages(2)  # associations
        + pages(1)  # MID Servers
        + pages(0)  # open issues
        + (pages(4) if advisories else 0)  # the version properties
        + pages(1)  # one chunk of configured names not among the holders
        + pages(1)  # one chunk of candidates
    )
    assert len(fake.queries()) == expected == (10 if advisories else 8)


def test_a_failed_pull_raises_and_nothing_is_written(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeTables(mock, scenario())
    stub_candidates(monkeypatch, {"mid.one"})
    mock.replace("GET", f"{API}/sysevent", status=403, json={"error": {"message": "ACL"}})
    with pytest.raises(InstanceError, match="read access to sysevent denied"):
        pull_snapshot(make_instance(), window=WINDOW, source="S")
    assert {call.request.method for call in mock.calls} == {"GET"}


def test_a_pull_failing_on_a_later_page_raises(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = scenario()
    tables["ecc_agent_issue"] = tables["ecc_agent_issue"] * 3
    for index, row in enumerate(tables["ecc_agent_issue"]):
        tables["ecc_agent_issue"][index] = {**row, "sys_id": f"i{index}"}
    fake = FakeTables(mock, tables)
    stub_candidates(monkeypatch, set())
    answered: list[int] = []

    def flaky(request: Any) -> tuple[int, dict[str, str], str]:
        answered.append(1)
        if len(answered) > 1:
            return 503, {}, ""
        return fake.answer(request)

    mock.replace(responses.CallbackResponse("GET", f"{API}/ecc_agent_issue", callback=flaky))
    with pytest.raises(InstanceError, match="unavailable"):
        pull_snapshot(make_instance(page_size=2), window=WINDOW, source="S")
    assert {call.request.method for call in mock.calls} == {"GET"}


def test_bad_rows_stop_the_pull_before_the_events(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = scenario()
    tables["ecc_agent"] = [{"name": "no sys_id", "status": "Down"}]
    fake = FakeTables(mock, tables)
    monkeypatch.setattr(pull, "event_candidates", lambda inventory: set())
    with pytest.raises(DataError, match="ecc_agent"):
        pull_snapshot(make_instance(), window=WINDOW, source="S")
    assert "sysevent" not in [table for table, _ in fake.queries()]


def test_progress_is_reported_per_table(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeTables(mock, scenario())
    stub_candidates(monkeypatch, set())
    instance = make_instance()
    told: list[tuple[str, int, int | None]] = []
    instance.progress = lambda table, count, total: told.append((table, count, total))
    pull_snapshot(instance, window=WINDOW, source="S", concurrency=1)
    assert told[0] == ("sys_user_has_role", 4, 4)
    assert ("ecc_agent_issue", 1, 1) in told


def test_same_snapshot_and_queries_at_any_concurrency(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTables(mock, scenario())
    stub_candidates(monkeypatch, {f"user{i:02}" for i in range(50)} | {"mid.one"})
    one = pull_snapshot(make_instance(), window=WINDOW, source="S", budget=200, concurrency=1)
    sequential = fake.queries()
    mock.calls.reset()
    four = pull_snapshot(make_instance(), window=WINDOW, source="S", budget=200)
    assert sorted(fake.queries()) == sorted(sequential)
    assert len(sequential) == 9  # 5 in round one + 1 user chunk + 3 event chunks
    assert four == one


def test_independent_reads_run_at_once(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTables(mock, scenario())
    stub_candidates(monkeypatch, set())
    # Each read of round one waits until all five are in flight: one at a time, or with
    # a default concurrency below five, it would time out.
    barrier = threading.Barrier(5, timeout=10)

    def together(request: Any) -> tuple[int, dict[str, str], str]:
        barrier.wait()
        return fake.answer(request)

    for table in (*ROUND_ONE, "sys_properties"):
        mock.replace(responses.CallbackResponse("GET", f"{API}/{table}", callback=together))
    snapshot = pull_snapshot(make_instance(), window=WINDOW, source="S")
    assert len(snapshot.tables["ecc_agent_issue"]) == 1


def test_a_failed_concurrent_read_fails_the_pull_before_the_events(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTables(mock, scenario())
    stub_candidates(monkeypatch, {"mid.one"})
    mock.replace("GET", f"{API}/ecc_agent_config", status=403, json={"error": {"message": "ACL"}})
    with pytest.raises(InstanceError, match="read access to ecc_agent_config denied"):
        pull_snapshot(make_instance(), window=WINDOW, source="S", concurrency=4)
    queried = {table for table, _ in fake.queries()}
    assert "sysevent" not in queried and "sys_user" not in queried
    assert {call.request.method for call in mock.calls} == {"GET"}


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        pull_snapshot(make_instance(), window=WINDOW, source="S", concurrency=0)


def test_a_failed_read_stops_the_others_waiting_to_retry(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeTables(mock, scenario())
    stub_candidates(monkeypatch, set())
    retried = responses.Response(
        "GET", f"{API}/sys_user_has_role", status=503, headers={"Retry-After": "30"}, body=""
    )
    mock.replace(retried)
    mock.replace("GET", f"{API}/ecc_agent_config", status=403, json={"error": {"message": "ACL"}})
    connection = Connection(base_url=BASE, user="checker", password="pw-secret")
    instance = Instance(connection, attempts=5)  # the real, interruptible wait
    started = time.monotonic()
    with pytest.raises(InstanceError, match="ecc_agent_config"):
        pull_snapshot(instance, window=WINDOW, source="S", concurrency=4)
    time.sleep(0.3)
    # The grants read was told to wait 30 s before its second attempt: it gave up instead.
    assert time.monotonic() - started < 5
    assert sum(call.request.url.startswith(f"{API}/sys_user_has_role") for call in mock.calls) <= 1


def test_a_second_check_through_one_instance_takes_a_fresh_now() -> None:
    demo = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"
    with Emulator(Scenario.load(str(demo))) as emu:
        emu.clock.freeze(emu.clock.now())  # a second ticking over mid-test changes nothing
        user, password = emu.credentials
        connection = Connection(base_url=emu.url, user=user, password=password)
        with Instance(connection, sleep=lambda _: None) as instance:
            first = pull_snapshot(instance, window=WINDOW, source="S")
            emu.clock.advance(3600)
            second = pull_snapshot(instance, window=WINDOW, source="S")
    # The emulator's clock runs on while the test does: a second may tick between the reads.
    assert timedelta(hours=1) <= second.now - first.now < timedelta(hours=1, seconds=5)


def test_a_grant_whose_role_name_is_hidden_fails_the_pull(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = scenario()
    tables["sys_user_has_role"][1]["role.name"] = ""  # the query matched it: an ACL hides it
    fake = FakeTables(mock, tables)
    stub_candidates(monkeypatch, {"mid.one"})
    with pytest.raises(InstanceError, match="read access to sys_user_role"):
        pull_snapshot(make_instance(), window=WINDOW, source="S")
    assert "sysevent" not in [table for table, _ in fake.queries()]


def test_role_names_are_kept_as_the_database_matched_them(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = scenario()
    tables["sys_user_has_role"][0]["role.name"] = "MID_Server "  # matched case-insensitively
    tables["ecc_agent_config"] = tables["ecc_agent_config"][1:]  # mid.one: a holder, unconfigured
    FakeTables(mock, tables)
    snapshot = pull_snapshot(make_instance(), window=WINDOW, source="MIDUserConnectivity")
    assert snapshot.tables["sys_user_role"][0] == {"sys_id": "r_mid", "name": "MID_Server "}
    inventory = Inventory.from_tables(snapshot.tables)
    # The rules fold it as the database does: mid.one holds mid_server, so it is a
    # candidate (role holder not configured).
    assert event_candidates(inventory) == {"mid.one", "cfg^user"}
