"""The advisories as tables of cases: each one firing and silent, and skipped with a reason.

Rows go through ``Inventory.from_tables`` as the Table API returns them, so the new
record fields are exercised too. Expected subjects are literals, never derived.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import requests
from factories import NOW, FakeInstance, sys_id

from snowcheck.advisories import ADVISORIES, HINTS, Advice, Severity, advise, advise_snapshot
from snowcheck.check import load_snapshot
from snowcheck.emulator import Emulator, Scenario
from snowcheck.errors import DataError
from snowcheck.records import (
    ALL_MID_SERVERS,
    CLONE_ISSUES,
    EXTRA_READS,
    ISSUE_TABLE,
    MID_TABLE,
    PROPERTIES,
    PROPERTY_TABLE,
    USER_TABLE,
    Inventory,
    MidServer,
    User,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"
STAMP = "zurich-07-01-2025__patch2-10-08-2025_10-15-2025_1203"
OLD_STAMP = "yokohama-12-18-2024__patch5-06-18-2025_06-26-2025_0611"
FRESH = "2026-11-25 11:58:00"
ALL_READS = frozenset(EXTRA_READS)
IDS = (
    "mid_user_mismatch",
    "user_locked_out",
    "password_needs_reset",
    "user_inactive",
    "shared_mid_user",
    "heartbeat_overdue",
    "not_validated",
    "version_mismatch",
    "clone_credentials",
)


class World(FakeInstance):
    """A fake instance whose MID Servers carry the advisories' fields."""

    def __init__(self) -> None:
        super().__init__()
        self.properties: dict[str, str] = {"mid.buildstamp": STAMP}

    def server(
        self,
        name: str,
        user: str | None = None,
        *,
        status: str = "Up",
        logged_in: str | None = None,
        validated: str = "true",
        version: str = STAMP,
        refreshed: str = FRESH,
        without: Iterable[str] = (),
    ) -> World:
        """A MID Server configured with ``user`` (none: no config row), logged in as it."""
        self.mid(name, status)
        row = self.tables[MID_TABLE][-1]
        row.update(
            last_refreshed=refreshed,
            user_name=(user or "") if logged_in is None else logged_in,
            validated=validated,
            version=version,
        )
        for field in without:
            del row[field]
        if user is not None:
            self.associate(user, name)
        return self

    def account(
        self,
        user_name: str,
        *,
        active: bool = True,
        locked_out: bool = False,
        password_needs_reset: str | None = "false",
    ) -> World:
        self.user(user_name, active=active, locked_out=locked_out)
        if password_needs_reset is not None:
            self.tables[USER_TABLE][-1]["password_needs_reset"] = password_needs_reset
        return self

    def clone_issue(self, *, source: str = "InstanceClone", state: str = "new") -> World:
        self.tables[ISSUE_TABLE].append(
            {
                "sys_id": sys_id(ISSUE_TABLE, source, state),
                "message": "Clone left credentials of the source instance.",
                "source": source,
                "state": state,
                "count": "1",
                "last_detected": FRESH,
                "mid_server": sys_id(MID_TABLE, "mid-a"),
                "sys_domain": "global",
                "sys_updated_on": FRESH,
            }
        )
        return self

    def advise(self, reads: Iterable[str] = ALL_READS) -> Advice:
        tables: dict[str, Any] = dict(self.tables)
        tables[PROPERTY_TABLE] = [
            {"sys_id": sys_id(PROPERTY_TABLE, name), "name": name, "value": value}
            for name, value in self.properties.items()
        ]
        return advise(Inventory.from_tables(tables), now=NOW, extra_reads=reads)


def subjects(advice: Advice, advisory: str) -> list[str]:
    return [item.subject for item in advice.advisories if item.id == advisory]


Case = Callable[[World], object]


def cases(*rows: tuple[str, Case, list[str]]) -> list[Any]:
    return [pytest.param(setup, expected, id=name) for name, setup, expected in rows]


def check_cases(advisory: str, setup: Case, expected: list[str]) -> Advice:
    world = World()
    setup(world)
    advice = world.advise()
    assert subjects(advice, advisory) == expected
    return advice


# -- mid_user_mismatch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        ("same user", lambda w: w.server("mid-a", "mid.a"), []),
        ("case differs", lambda w: w.server("mid-a", "mid.a", logged_in="MID.A"), []),
        ("trailing space", lambda w: w.server("mid-a", "mid.a", logged_in="mid.a  "), []),
        ("leading space", lambda w: w.server("mid-a", "mid.a", logged_in=" mid.a"), ["mid-a"]),
        ("another user", lambda w: w.server("mid-a", "mid.a", logged_in="mid.b"), ["mid-a"]),
        ("down too", lambda w: w.server("mid-a", "mid.a", status="Down", logged_in="x"), ["mid-a"]),
        ("never logged in", lambda w: w.server("mid-a", "mid.a", logged_in=""), []),
        ("no config row", lambda w: w.server("mid-a", logged_in="mid.b"), []),
        (
            "one of two rows",
            lambda w: w.server("mid-a", "mid.a", logged_in="mid.b").associate("mid.b", "mid-a"),
            [],
        ),
    ),
)
def test_mid_user_mismatch(setup: Case, expected: list[str]) -> None:
    check_cases("mid_user_mismatch", setup, expected)


def test_mid_user_mismatch_names_both_users() -> None:
    advice = World().server("mid-a", "mid.a", logged_in="mid.old").advise()
    (item,) = advice.advisories
    assert item.detail == "logged in as mid.old, but mid.instance.username is mid.a"
    assert item.severity is Severity.WARNING
    assert set(item.users) == {"mid.old", "mid.a"}


# -- user_locked_out, password_needs_reset, user_inactive ----------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        (
            "locked, up",
            lambda w: w.account("mid.a", locked_out=True).server("mid-a", "mid.a"),
            ["mid.a"],
        ),
        (
            "locked, down",
            lambda w: w.account("mid.a", locked_out=True).server("mid-a", "mid.a", status="Down"),
            ["mid.a"],
        ),
        ("not locked", lambda w: w.account("mid.a").server("mid-a", "mid.a"), []),
        (
            "record spelled in another case",
            lambda w: w.account("mid.a", locked_out=True).server("mid-a", "MID.A"),
            ["MID.A"],
        ),
        ("locked, configured nowhere", lambda w: w.account("mid.a", locked_out=True), []),
        ("no sys_user record", lambda w: w.server("mid-a", "mid.a"), []),
    ),
)
def test_user_locked_out(setup: Case, expected: list[str]) -> None:
    check_cases("user_locked_out", setup, expected)


def test_user_locked_out_names_every_mid_server_of_the_user() -> None:
    world = World().account("mid.a", locked_out=True)
    world.server("mid-b", "mid.a", status="Down").server("mid-a", "MID.A ")
    (item,) = world.advise().advisories
    assert item.detail == "locked out; configured on mid-a, mid-b"
    assert item.mid_servers == ("mid-a", "mid-b")


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        (
            "must reset",
            lambda w: w.account("mid.a", password_needs_reset="true").server("mid-a", "mid.a"),
            ["mid.a"],
        ),
        ("need not", lambda w: w.account("mid.a").server("mid-a", "mid.a"), []),
        (
            "field missing",
            lambda w: w.account("mid.a", password_needs_reset=None).server("mid-a", "mid.a"),
            [],
        ),
    ),
)
def test_password_needs_reset(setup: Case, expected: list[str]) -> None:
    check_cases("password_needs_reset", setup, expected)


def test_password_needs_reset_unknown_is_said() -> None:
    world = World().account("mid.a", password_needs_reset=None).server("mid-a", "mid.a")
    assert world.advise().notes == (
        "password_needs_reset not checked for mid.a: their rows have no "
        "sys_user.password_needs_reset",
    )


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        (
            "inactive",
            lambda w: w.account("mid.a", active=False).server("mid-a", "mid.a"),
            ["mid.a"],
        ),
        ("active", lambda w: w.account("mid.a").server("mid-a", "mid.a"), []),
        (
            "inactive twin of an active record",
            lambda w: w.account("mid.a", active=False).account("mid.a").server("mid-a", "mid.a"),
            [],
        ),
    ),
)
def test_user_inactive(setup: Case, expected: list[str]) -> None:
    check_cases("user_inactive", setup, expected)


# -- shared_mid_user -----------------------------------------------------------------------


def on(world: World, user: str, *mids: str) -> World:
    for mid in mids:
        world.server(mid, user)
    return world


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        ("two MID Servers", lambda w: on(w, "mid.a", "m1", "m2"), []),
        ("three MID Servers", lambda w: on(w, "mid.a", "m1", "m2", "m3"), ["mid.a"]),
        (
            "three, one down",
            lambda w: on(w, "mid.a", "m1", "m2").server("m3", "mid.a", status="Down"),
            ["mid.a"],
        ),
        (
            "three spellings of one user",
            lambda w: on(on(on(w, "mid.a", "m1"), "MID.A", "m2"), "mid.a ", "m3"),
            ["MID.A"],
        ),
        (
            "three rows on two MID Servers",
            lambda w: on(w, "mid.a", "m1", "m2").associate("mid.a", "m1"),
            [],
        ),
        (
            "a row on a MID Server that does not exist",
            lambda w: on(w, "mid.a", "m1", "m2").associate("mid.a", "gone"),
            [],
        ),
    ),
)
def test_shared_mid_user(setup: Case, expected: list[str]) -> None:
    check_cases("shared_mid_user", setup, expected)


# -- heartbeat_overdue ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        ("fresh", lambda w: w.server("mid-a"), []),
        ("15 minutes exactly", lambda w: w.server("mid-a", refreshed="2026-11-25 11:45:00"), []),
        ("15 min 1 s", lambda w: w.server("mid-a", refreshed="2026-11-25 11:44:59"), ["mid-a"]),
        (
            "status UP",
            lambda w: w.server("mid-a", status="UP", refreshed="2026-11-25 11:00:00"),
            ["mid-a"],
        ),
        ("Down", lambda w: w.server("mid-a", status="Down", refreshed="2026-11-25 02:00:00"), []),
        (
            "Paused",
            lambda w: w.server("mid-a", status="Paused", refreshed="2026-11-25 02:00:00"),
            [],
        ),
        ("never refreshed", lambda w: w.server("mid-a", refreshed=""), []),
    ),
)
def test_heartbeat_overdue(setup: Case, expected: list[str]) -> None:
    check_cases("heartbeat_overdue", setup, expected)


# -- not_validated -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        ("true", lambda w: w.server("mid-a"), []),
        ("TRUE", lambda w: w.server("mid-a", validated="TRUE"), []),
        ("false", lambda w: w.server("mid-a", validated="false"), ["mid-a"]),
        ("invalidated", lambda w: w.server("mid-a", validated="invalidated"), ["mid-a"]),
        ("empty", lambda w: w.server("mid-a", validated=""), ["mid-a"]),
        ("field missing", lambda w: w.server("mid-a", without=["validated"]), []),
    ),
)
def test_not_validated(setup: Case, expected: list[str]) -> None:
    check_cases("not_validated", setup, expected)


def test_not_validated_unknown_field_is_said() -> None:
    advice = World().server("mid-a", without=["validated"]).advise()
    assert "not_validated not checked for mid-a: their rows have no ecc_agent.validated" in (
        advice.notes
    )


# -- version_mismatch ----------------------------------------------------------------------


def props(world: World, **values: str) -> World:
    world.properties = {name.replace("_", "."): value for name, value in values.items()}
    return world


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        ("same", lambda w: w.server("mid-a"), []),
        ("older", lambda w: w.server("mid-a", version=OLD_STAMP), ["mid-a"]),
        ("surrounding spaces", lambda w: w.server("mid-a", version=f" {STAMP} "), []),
        ("unknown version", lambda w: w.server("mid-a", version=""), []),
        (
            "override matches",
            lambda w: props(
                w.server("mid-a", version=OLD_STAMP),
                mid_buildstamp=STAMP,
                mid_version_override=OLD_STAMP,
            ),
            [],
        ),
        (
            "override differs",
            lambda w: props(
                w.server("mid-a"), mid_buildstamp=STAMP, mid_version_override=OLD_STAMP
            ),
            ["mid-a"],
        ),
        (
            "override empty",
            lambda w: props(w.server("mid-a"), mid_buildstamp=STAMP, mid_version_override=" "),
            [],
        ),
    ),
)
def test_version_mismatch(setup: Case, expected: list[str]) -> None:
    check_cases("version_mismatch", setup, expected)


def test_version_mismatch_names_the_property() -> None:
    world = props(World().server("mid-a"), mid_buildstamp=STAMP, mid_version_override=OLD_STAMP)
    (item,) = world.advise().advisories
    assert item.detail == f"version {STAMP}, the instance's mid.version.override is {OLD_STAMP}"


def test_version_mismatch_without_the_property_is_skipped() -> None:
    world = props(World().server("mid-a", version=OLD_STAMP))
    advice = world.advise()
    assert advice.advisories == ()
    assert advice.notes == (
        "version_mismatch skipped: the instance has no mid.buildstamp property (or it is empty)",
    )


def test_version_mismatch_with_sys_properties_unreadable_is_skipped() -> None:
    world = World().server("mid-a", version=OLD_STAMP, validated="false")
    advice = world.advise(ALL_READS - {PROPERTIES})
    assert subjects(advice, "not_validated") == ["mid-a"]  # the others still run
    assert subjects(advice, "version_mismatch") == []
    assert [skip.advisory for skip in advice.skipped] == ["version_mismatch"]
    assert "sys_properties was not read" in advice.notes[0]


def test_why_unread_can_be_given() -> None:
    world = World().server("mid-a")
    inventory = Inventory.from_tables(world.tables)
    advice = advise(
        inventory,
        now=NOW,
        extra_reads={ALL_MID_SERVERS, CLONE_ISSUES},
        why_unread={PROPERTIES: "read access to sys_properties denied (HTTP 403)"},
    )
    assert advice.notes == (
        "version_mismatch skipped: read access to sys_properties denied (HTTP 403)",
    )


# -- clone_credentials ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    cases(
        ("open", lambda w: w.server("mid-a").clone_issue(), ["mid-a"]),
        ("acknowledged", lambda w: w.server("mid-a").clone_issue(state="acknowledged"), ["mid-a"]),
        (
            "source in lowercase",
            lambda w: w.server("mid-a").clone_issue(source="instanceclone"),
            ["mid-a"],
        ),
        ("resolved", lambda w: w.server("mid-a").clone_issue(state="resolved"), []),
        ("Resolved ", lambda w: w.server("mid-a").clone_issue(state="Resolved "), []),
        ("empty state", lambda w: w.server("mid-a").clone_issue(state=""), []),
        (
            "another source",
            lambda w: w.server("mid-a").clone_issue(source="MIDUserConnectivity"),
            [],
        ),
    ),
)
def test_clone_credentials(setup: Case, expected: list[str]) -> None:
    check_cases("clone_credentials", setup, expected)


# -- what was not read ---------------------------------------------------------------------


def test_without_the_extra_reads_every_advisory_is_skipped_and_said() -> None:
    world = World().account("mid.a", locked_out=True).server("mid-a", "mid.a", validated="false")
    world.clone_issue()
    advice = world.advise(reads=())
    assert advice.advisories == ()
    assert [skip.advisory for skip in advice.skipped] == list(IDS)
    assert all("skipped: " in note for note in advice.notes)


def test_without_clone_issues_only_clone_credentials_is_skipped() -> None:
    world = World().server("mid-a", validated="false").clone_issue()
    advice = world.advise(ALL_READS - {CLONE_ISSUES})
    assert [item.id for item in advice.advisories] == ["not_validated"]
    assert [skip.advisory for skip in advice.skipped] == ["clone_credentials"]


# -- the table, and the example snapshot ---------------------------------------------------


def test_the_table_has_each_id_once_with_a_hint() -> None:
    assert tuple(rule.id for rule in ADVISORIES) == IDS
    assert all(HINTS[advisory].strip() for advisory in IDS)


def test_example_snapshot_shows_each_advisory_once() -> None:
    advice = advise_snapshot(load_snapshot(str(EXAMPLE)))
    assert [item.id for item in advice.advisories] == list(IDS)
    assert advice.notes == ()
    assert {item.id: item.subject for item in advice.advisories} == {
        "mid_user_mismatch": "mid-emea-2",
        "user_locked_out": "mid.dr",
        "password_needs_reset": "mid.west",
        "user_inactive": "mid.lab",
        "shared_mid_user": "mid.east",
        "heartbeat_overdue": "mid-spare-1",
        "not_validated": "mid-ok-1",
        "version_mismatch": "mid-prod-2",
        "clone_credentials": "mid-prod-1",
    }


def test_advice_about_a_user_covers_its_mid_servers() -> None:
    advice = advise_snapshot(load_snapshot(str(EXAMPLE)))
    about_east = [item.id for item in advice.about("MID.East")]
    assert about_east == ["shared_mid_user"]
    about_prod = [item.id for item in advice.about("mid.prod", ["mid-prod-1", "mid-prod-2"])]
    assert about_prod == ["version_mismatch", "clone_credentials"]


def old_snapshot(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> str:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    edit(document)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_old_snapshot_loads_with_the_advisories_skipped(tmp_path: Path) -> None:
    def strip(document: dict[str, Any]) -> None:
        del document["extra_reads"]
        del document["tables"][PROPERTY_TABLE]
        tables = document["tables"]
        tables[MID_TABLE] = [row for row in tables[MID_TABLE] if row["status"] == "Down"]

    snapshot = load_snapshot(old_snapshot(tmp_path, strip))
    assert snapshot.extra_reads == frozenset()
    advice = advise_snapshot(snapshot)
    assert advice.advisories == ()
    assert [skip.advisory for skip in advice.skipped] == list(IDS)


def test_a_sys_properties_table_in_a_snapshot_means_it_was_read(tmp_path: Path) -> None:
    snapshot = load_snapshot(old_snapshot(tmp_path, lambda document: document.pop("extra_reads")))
    assert snapshot.extra_reads == {PROPERTIES}


def test_snapshot_with_an_unknown_extra_read_is_refused(tmp_path: Path) -> None:
    path = old_snapshot(tmp_path, lambda document: document.update(extra_reads=["everything"]))
    with pytest.raises(DataError, match="unknown reads everything"):
        load_snapshot(path)


def test_snapshot_extra_reads_must_be_a_list(tmp_path: Path) -> None:
    path = old_snapshot(tmp_path, lambda document: document.update(extra_reads="all"))
    with pytest.raises(DataError, match="list of names"):
        load_snapshot(path)


# -- the records ---------------------------------------------------------------------------


def test_old_rows_give_unknown_new_fields() -> None:
    mid = MidServer.from_row({"sys_id": "a", "name": "m", "status": "Up", "last_refreshed": ""})
    assert (mid.user_name, mid.validated, mid.version) == (None, None, None)
    user = User.from_row({"sys_id": "u", "user_name": "x", "active": "true"})
    assert user.password_needs_reset is None


def test_new_rows_give_the_new_fields() -> None:
    mid = MidServer.from_row(
        {
            "sys_id": "a",
            "name": "m",
            "status": "Up",
            "last_refreshed": "",
            "user_name": "mid.a",
            "validated": "false",
            "version": STAMP,
        }
    )
    assert (mid.user_name, mid.validated, mid.version) == ("mid.a", "false", STAMP)
    user = User.from_row(
        {"sys_id": "u", "user_name": "x", "active": "true", "password_needs_reset": "true"}
    )
    assert user.password_needs_reset is True
    with pytest.raises(DataError, match="password_needs_reset"):
        User.from_row(
            {"sys_id": "u", "user_name": "x", "active": "true", "password_needs_reset": "1"}
        )


# -- the emulator serves what the advisories read ------------------------------------------

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"


def test_demo_emulator_serves_the_extra_reads_and_shows_each_advisory_once() -> None:
    document = json.loads(DEMO.read_text(encoding="utf-8"))
    document["now"] = "2026-11-25 12:00:00"
    fields = {
        MID_TABLE: "sys_id,name,status,last_refreshed,user_name,validated,version",
        USER_TABLE: "sys_id,user_name,active,locked_out,password_needs_reset,sys_domain",
        PROPERTY_TABLE: "name,value",
        ISSUE_TABLE: "sys_id,message,source,state,count,last_detected,mid_server,sys_updated_on",
        "ecc_agent_config": "sys_id,ecc_agent,param_name,value",
    }
    queries = {
        PROPERTY_TABLE: "nameINmid.buildstamp,mid.version.override",
        ISSUE_TABLE: "sourceINMIDUserConnectivity,InstanceClone^state!=resolved",
        "ecc_agent_config": "param_name=mid.instance.username",
    }
    tables: dict[str, Any] = {}
    with Emulator(Scenario.from_dict(document)) as emulator, requests.Session() as session:
        session.auth = ("admin", "admin")
        for table, wanted in fields.items():
            response = session.get(
                f"{emulator.url}/api/now/table/{table}",
                params={"sysparm_fields": wanted, "sysparm_query": queries.get(table, "")},
                timeout=10,
            )
            response.raise_for_status()
            tables[table] = response.json()["result"]
    assert all(set(row) == set(fields[MID_TABLE].split(",")) for row in tables[MID_TABLE])
    assert {row["status"] for row in tables[MID_TABLE]} == {"Down", "Up", "Paused"}
    advice = advise(Inventory.from_tables(tables), now=NOW, extra_reads=ALL_READS)
    assert [item.id for item in advice.advisories] == list(IDS)
    assert advice.notes == ()
