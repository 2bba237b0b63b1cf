"""Property tests on hostile input: user names through queries, malformed rows, plan convergence.

The HTTP properties share one module-scoped emulator on 127.0.0.1 and replace the rows
they need before each example, so every example sees exactly the rows it generated.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from factories import NOW, NOW_TEXT, SOURCE, issue_row, sys_id
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from snowcheck import compare
from snowcheck.emulator import Emulator, Scenario
from snowcheck.emulator.query import Condition, parse
from snowcheck.errors import DataError
from snowcheck.plan import Action, build_plan
from snowcheck.pull import read_events, read_open_issues
from snowcheck.records import (
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
    ROLE_TABLE,
    USER_ROLE_TABLE,
    USER_TABLE,
    Inventory,
    format_time,
)
from snowcheck.rules import Finding
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.query import and_, chunk_in, in_
from snowcheck.servicenow.session import Connection
from snowcheck.writeback import WriteBack

# -- strategies --------------------------------------------------------------------------------

HOSTILE_NAMES = (
    "mid^east",
    "^",
    "^^",
    "a^ORb",
    "x^NQparm1=y",
    "^EQ",
    "ORDERBYparm1",
    "a,b",
    ",",
    " lead",
    "trail ",
    " ",
    "",
    'quo"te',
    "o'brien",
    "javascript:alert(1)",
    "javascript:gs.getUser()",
    "ü𝔘nicode-用户",
    "ISEMPTY",
    "parm1=mid",
    "%20",
    "+plus+",
    "a&b=c",
    "back\\slash",
    "tab\there",
    "new\nline",
    "mid.east",
    "MID.EAST",
    "x" * 1500,
)

# Any Unicode text the JSON and URL layers can carry (no lone surrogates).
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)
user_names = st.one_of(
    st.sampled_from(HOSTILE_NAMES),
    _TEXT,
    # Near-misses of each other: the same name with spaces, case and separators changed.
    st.builds(
        lambda base, pad: pad[0] + base + pad[1],
        st.sampled_from(["mid.east", "a,b", "x^y"]),
        st.tuples(st.sampled_from(["", " ", "  "]), st.sampled_from(["", " ", "\t"])),
    ),
)


# -- the emulator ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    scenario = Scenario.from_dict({"now": NOW_TEXT, "tables": {}})
    with Emulator(scenario) as emu:
        yield emu


def _instance(emu: Emulator) -> Instance:
    user, password = emu.credentials
    connection = Connection(base_url=emu.url, user=user, password=password, page_size=7)
    return Instance(connection, sleep=lambda _: None)


def _selected(parm1: str, wanted: Sequence[str]) -> bool:
    """Whether ``in_("parm1", wanted)`` selects ``parm1``, as the instance's database compares.

    Case and trailing spaces aside; the empty name is ``parm1ISEMPTY``.
    """
    return any(compare.equal(parm1, name) if name else parm1 == "" for name in wanted)


def _event(name: str, index: int) -> dict[str, str]:
    return {
        "sys_id": sys_id("event", str(index)),
        "name": "login.failed",
        "parm1": name,
        "parm2": "",
        "sys_created_on": "2026-11-25 11:30:00",
    }


HTTP = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HTTP
@given(
    names=st.lists(user_names, min_size=1, max_size=8, unique=True),
    data=st.data(),
)
def test_any_user_name_round_trips_through_the_query_and_the_emulator(
    emulator: Emulator, names: list[str], data: st.DataObject
) -> None:
    wanted = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True), label="wanted")
    # Two events per name, so a name matching a near-miss shows up as extra rows.
    rows = [_event(name, index) for index, name in enumerate(names + names)]
    emulator.store.put_rows(EVENT_TABLE, rows, replace=True)
    expected = sorted(row["sys_id"] for row in rows if _selected(row["parm1"], wanted))

    query = and_("name=login.failed", in_("parm1", wanted), "sys_created_on>2026-11-25 07:00:00")
    with _instance(emulator) as instance:
        got = instance.fetch(EVENT_TABLE, query, ("sys_id", "parm1"))
    assert sorted(row["sys_id"] for row in got) == expected
    assert all(_selected(row["parm1"], wanted) for row in got)
    assert {row["parm1"] for row in got} >= set(wanted)


@settings(HTTP, max_examples=20)
@given(names=st.lists(user_names, min_size=1, max_size=10, unique=True), budget=st.integers(1, 80))
def test_chunked_name_lists_together_return_exactly_the_rows_of_those_names(
    emulator: Emulator, names: list[str], budget: int
) -> None:
    # Spellings the database takes for the name (case, trailing spaces) and near-misses.
    others = [f"{name} " for name in names] + [name.upper() for name in names]
    others += [f" {name}" for name in names] + [f"{name}\t" for name in names]
    everyone = list(dict.fromkeys(names + others))
    rows = [_event(name, index) for index, name in enumerate(everyone)]
    emulator.store.put_rows(EVENT_TABLE, rows, replace=True)
    expected = sorted(row["sys_id"] for row in rows if _selected(row["parm1"], names))

    got: list[str] = []
    with _instance(emulator) as instance:
        for chunk in chunk_in("parm1", names, budget):
            got += [row["sys_id"] for row in instance.fetch(EVENT_TABLE, chunk, ("sys_id",))]
    # Names equal to the database (mid.east, MID.EAST) may sit in two chunks: one row can
    # answer both, which is why read_events keeps events by sys_id.
    assert sorted(set(got)) == expected


@settings(max_examples=300, deadline=None)
@given(names=st.lists(user_names, min_size=1, max_size=12), budget=st.integers(1, 200))
def test_the_emulator_parser_reads_back_exactly_the_names_the_builder_wrote(
    names: list[str], budget: int
) -> None:
    for query in [in_("parm1", names), *chunk_in("parm1", names, budget)]:
        parsed = parse(and_("name=login", query, "ORDERBYsys_id"))
        assert parsed.unparsed == ()
        ((first, *rest),) = parsed.groups
        assert first == (Condition("name", "=", "login"),)
        ((*alternatives,),) = rest
        matched: set[str] = set()
        for condition in alternatives:
            assert condition.field == "parm1"
            if condition.operator == "IN":
                matched.update(condition.value.split(","))
            elif condition.operator == "ISEMPTY":
                matched.add("")
            else:
                assert condition.operator == "="
                matched.add(condition.value)
        if query == in_("parm1", names):
            assert matched == set(names)
        else:
            assert matched <= set(names)


@settings(HTTP, max_examples=20)
@given(names=st.lists(user_names, min_size=1, max_size=8, unique=True), budget=st.integers(1, 120))
def test_read_events_returns_exactly_the_window_events_of_the_candidates(
    emulator: Emulator, names: list[str], budget: int
) -> None:
    rows: list[dict[str, str]] = []
    for index, name in enumerate(names):
        for kind, created in (
            ("login.failed", "2026-11-25 11:30:00"),  # in the window
            ("login", "2026-11-25 07:00:00"),  # before it
            ("logout", "2026-11-25 11:40:00"),  # not a login event
        ):
            row = _event(name, len(rows))
            row.update(name=kind, sys_created_on=created, parm2=str(index))
            rows.append(row)
        rows.append(dict(_event(name + "x", len(rows)), parm2=str(index)))  # a near-miss name
    emulator.store.put_rows(EVENT_TABLE, rows, replace=True)
    wanted = names[: max(1, len(names) // 2)]
    expected = sorted(
        row["sys_id"]
        for row in rows
        if _selected(row["parm1"], wanted)
        and row["name"] == "login.failed"
        and row["sys_created_on"] == "2026-11-25 11:30:00"
    )
    since = NOW - timedelta(hours=4, minutes=1)
    with _instance(emulator) as instance:
        got = read_events(instance, wanted, since=since, budget=budget)
    assert sorted(row["sys_id"] for row in got) == expected


# -- malformed rows ----------------------------------------------------------------------------

VALID_ROWS: dict[str, dict[str, Any]] = {
    ROLE_TABLE: {"sys_id": sys_id("role", "mid_server"), "name": "mid_server"},
    USER_ROLE_TABLE: {
        "sys_id": sys_id("grant", "1"),
        "user": {"link": "https://x/api/now/table/sys_user/u1", "value": sys_id("user", "1")},
        "role": sys_id("role", "mid_server"),
    },
    USER_TABLE: {
        "sys_id": sys_id("user", "1"),
        "user_name": "mid.east",
        "active": "true",
        "locked_out": "false",
        "sys_domain": "global",
    },
    CONFIG_TABLE: {
        "sys_id": sys_id("config", "1"),
        "ecc_agent": sys_id("mid", "1"),
        "param_name": "mid.instance.username",
        "value": "mid.east",
        "sys_domain": {"link": "https://x/api/now/table/sys_domain/global", "value": "global"},
    },
    MID_TABLE: {
        "sys_id": sys_id("mid", "1"),
        "name": "mid-east-1",
        "status": "Down",
        "last_refreshed": "2026-11-25 02:00:00",
    },
    EVENT_TABLE: {
        "sys_id": sys_id("event", "1"),
        "name": "login.failed",
        "parm1": "mid.east",
        "parm2": "",
        "sys_created_on": "2026-11-25 11:30:00",
    },
    ISSUE_TABLE: issue_row("Some message"),
}

REQUIRED: dict[str, tuple[str, ...]] = {
    ROLE_TABLE: ("sys_id", "name"),
    USER_ROLE_TABLE: ("user", "role"),
    USER_TABLE: ("sys_id", "user_name", "active"),
    CONFIG_TABLE: ("param_name", "value"),
    MID_TABLE: ("sys_id", "name", "status"),
    EVENT_TABLE: ("name", "parm1", "sys_created_on"),
    ISSUE_TABLE: ("sys_id", "message", "source", "state", "count"),
}
"""Fields without which a row is malformed (a missing optional field reads as empty)."""

KIND: dict[tuple[str, str], str] = {
    (USER_ROLE_TABLE, "user"): "reference",
    (USER_ROLE_TABLE, "role"): "reference",
    (USER_TABLE, "sys_domain"): "reference",
    (CONFIG_TABLE, "ecc_agent"): "reference",
    (CONFIG_TABLE, "sys_domain"): "reference",
    (ISSUE_TABLE, "mid_server"): "reference",
    (ISSUE_TABLE, "sys_domain"): "reference",
    (USER_TABLE, "active"): "boolean",
    (USER_TABLE, "locked_out"): "boolean",
    (MID_TABLE, "last_refreshed"): "date",
    (EVENT_TABLE, "sys_created_on"): "date",
    (ISSUE_TABLE, "last_detected"): "date",
    (ISSUE_TABLE, "sys_updated_on"): "date",
    (ISSUE_TABLE, "count"): "integer",
}
"""Fields that are not plain text; every other field of VALID_ROWS is text."""

# Every field a record reads (sys_user_has_role's own sys_id is never read).
_FIELDS = sorted(
    (table, field)
    for table, row in VALID_ROWS.items()
    for field in row
    if (table, field) != (USER_ROLE_TABLE, "sys_id")
)

# Values of the wrong JSON type for a string field (None reads as empty, as the API's null).
wrong_types = st.one_of(
    st.integers(min_value=2),
    st.integers(max_value=-1),
    st.floats(allow_nan=False).filter(lambda f: f not in (0.0, 1.0)),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.sampled_from(["x", "display_value"]), st.text(max_size=3), max_size=2),
)
bad_dates = st.one_of(
    st.sampled_from(
        [
            "2026-13-01 00:00:00",
            "2026-02-30 10:00:00",
            "2026-11-25T11:30:00Z",
            "2026-11-25",
            "11/25/2026 11:30:00",
            "2026-11-25 25:00:00",
            "yesterday",
            "2026-11-25 11:30:00 UTC",
            "-30m",
        ]
    ),
    st.text(min_size=1, max_size=25).filter(lambda t: not t.isspace()),
)
bad_references = st.one_of(
    st.just({"link": "https://x/api/now/table/sys_user/abc"}),
    st.builds(lambda v: {"link": "https://x", "value": v}, wrong_types | st.none()),
    st.lists(st.text(max_size=5), max_size=2),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
)
bad_booleans = st.one_of(
    st.sampled_from(["yes", "no", "True", "FALSE", "1", "0", "t", "on"]), st.text(min_size=1)
).filter(lambda v: v not in ("true", "false"))
bad_integers = st.one_of(
    st.sampled_from(["one", "1.5", "1e3", "0x10", "--1", "9" * 5000]),
    # int() also takes surrounding spaces, a sign, "_" between digits and non-ASCII digits:
    # lenient, but never a wrong count, so those are not counted as malformed here.
    st.text(min_size=1, max_size=10).filter(lambda t: not re.fullmatch(r"\s*[+-]?[\d_]+\s*", t)),
)


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """A table, the field made bad, and a row of that table with that field made bad."""
    table, field = draw(st.sampled_from(_FIELDS))
    row = dict(VALID_ROWS[table])
    kind = KIND.get((table, field), "text")
    if field in REQUIRED[table] and draw(st.booleans()):
        del row[field]
        return table, field, row
    if kind == "reference":
        row[field] = draw(bad_references)
    elif kind == "date":
        row[field] = draw(bad_dates | wrong_types)
    elif kind == "boolean":
        row[field] = draw(bad_booleans | wrong_types)
    elif kind == "integer":
        # A JSON number that is a whole number is a count: accepted, so not drawn here.
        row[field] = draw(bad_integers | wrong_types.filter(lambda v: not isinstance(v, int)))
    else:
        row[field] = draw(wrong_types)
    return table, field, row


def _tables_with(table: str, bad_row: dict[str, Any], position: int) -> dict[str, list[Any]]:
    """Every table with its valid row, the bad row inserted into ``table`` at ``position``."""
    tables: dict[str, list[Any]] = {name: [dict(row)] for name, row in VALID_ROWS.items()}
    tables[table].insert(position, bad_row)
    return tables


def test_the_valid_rows_are_valid() -> None:
    Inventory.from_tables({name: [row] for name, row in VALID_ROWS.items()})


@settings(max_examples=300, deadline=None)
@given(case=malformed(), position=st.integers(0, 1))
def test_any_malformed_row_is_a_data_error_naming_table_sys_id_and_field(
    case: tuple[str, str, dict[str, Any]], position: int
) -> None:
    table, field, row = case
    with pytest.raises(DataError) as caught:
        Inventory.from_tables(_tables_with(table, row, position))
    error = caught.value
    assert (error.table, error.field) == (table, field)
    message = str(error)
    assert table in message
    assert f"'{field}'" in message
    if field != "sys_id" or isinstance(row.get("sys_id"), str):
        assert row.get("sys_id", "") in message
        assert error.sys_id == row.get("sys_id", "")


@pytest.mark.parametrize(
    ("table", "field", "value"),
    [
        (USER_TABLE, "active", 1),
        (USER_TABLE, "active", 0),
        (USER_TABLE, "locked_out", 1.0),
    ],
)
def test_numbers_and_json_booleans_are_not_accepted_as_boolean_strings(
    table: str, field: str, value: Any
) -> None:
    row = dict(VALID_ROWS[table], **{field: value})
    with pytest.raises(DataError):
        Inventory.from_tables(_tables_with(table, row, 0))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=4),
        ),
        max_size=3,
    ),
    table=st.sampled_from(sorted(VALID_ROWS)),
)
def test_garbage_rows_and_tables_give_a_data_error_or_a_record_never_a_crash(
    rows: list[Any], table: str
) -> None:
    for tables in ({table: rows}, {table: {"not": "a list"}}, {table: "rows"}):
        try:
            Inventory.from_tables(tables)
        except DataError as error:
            assert error.table == table
            assert error.field


# -- the plan converges ------------------------------------------------------------------------

MESSAGES = (
    "User mid.east is associated with 1 down MID Server. No login attempts within reporting "
    "period.",
    "Login authentication failure for User a,b with mid_server role not associated with a "
    "MID Server.",
    "message with ^ caret",
    "[bold red]markup[/] \x1b[2J",
    "ü 用户",
    " padded ",
)
messages = st.one_of(st.sampled_from(MESSAGES), st.text(min_size=1, max_size=30))
times = st.sampled_from(["", "2026-11-25 08:00:00", "2026-11-25 09:00:00", "2026-11-26 08:00:00"])

issue_rows = st.builds(
    lambda message, state, count, source, mid, updated, n: issue_row(
        message,
        state=state,
        count=str(count),
        source=source,
        mid_server=mid,
        updated_on=updated,
        record=sys_id("issue", str(n)),
    ),
    messages,
    st.sampled_from(["new", "acknowledged", "resolved"]),
    st.integers(0, 5),
    st.sampled_from([SOURCE, SOURCE, "OtherSource"]),
    st.sampled_from(["", "", sys_id("mid", "1")]),
    times,
    st.integers(),
)
findings_strategy = st.lists(
    st.builds(
        Finding,
        rule=st.just("no_login_down"),
        user=st.text(max_size=5),
        message=messages,
        domain=st.sampled_from(["global", "acme"]),
    ),
    max_size=6,
)


def _unique_ids(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({row["sys_id"]: row for row in rows}.values())


def _apply_in_memory(
    plan_changes: Sequence[Any], rows: list[dict[str, Any]], counter: Iterator[int]
) -> list[dict[str, Any]]:
    """What the instance holds after the plan's writes (sys_updated_on = now on every write)."""
    by_id = {row["sys_id"]: dict(row) for row in rows}
    for change in plan_changes:
        if change.action is Action.CREATE:
            new_id = sys_id("created", str(next(counter)))
            by_id[new_id] = {**change.payload, "sys_id": new_id, "sys_updated_on": NOW_TEXT}
        else:
            by_id[change.sys_id].update(change.payload, sys_updated_on=NOW_TEXT)
    return list(by_id.values())


def _only_updates(plan: Any) -> None:
    assert plan.of(Action.CREATE) == ()
    assert plan.of(Action.RESOLVE) == ()


@settings(max_examples=200, deadline=None)
@given(findings=findings_strategy, rows=st.lists(issue_rows, max_size=8))
def test_applying_the_plan_then_planning_again_gives_only_updates(
    findings: list[Finding], rows: list[dict[str, Any]]
) -> None:
    rows = _unique_ids(rows)
    issues = Inventory.from_tables({ISSUE_TABLE: rows}).issues
    first = build_plan(findings, issues, source=SOURCE, now=NOW)
    after = _apply_in_memory(first.changes, rows, itertools.count())

    later = NOW + timedelta(minutes=5)
    again = build_plan(
        findings, Inventory.from_tables({ISSUE_TABLE: after}).issues, source=SOURCE, now=later
    )
    _only_updates(again)
    assert {change.message for change in again.changes} == {f.message for f in findings}


@settings(HTTP, max_examples=20)
@given(findings=findings_strategy, rows=st.lists(issue_rows, max_size=6))
def test_applying_the_plan_on_the_emulator_then_planning_again_gives_only_updates(
    emulator: Emulator, findings: list[Finding], rows: list[dict[str, Any]]
) -> None:
    rows = _unique_ids(rows)
    # The emulator stores what the API would: no NUL (SQLite text) and no lone surrogates.
    assume(all("\x00" not in row["message"] for row in rows))
    assume(all("\x00" not in finding.message for finding in findings))
    emulator.store.put_rows(ISSUE_TABLE, rows, replace=True)
    with _instance(emulator) as instance:
        issues = Inventory.from_tables({ISSUE_TABLE: read_open_issues(instance, SOURCE)}).issues
        first = build_plan(findings, issues, source=SOURCE, now=NOW)
        WriteBack(instance).apply(first)
        reread = read_open_issues(instance, SOURCE)
    again = build_plan(
        findings,
        Inventory.from_tables({ISSUE_TABLE: reread}).issues,
        source=SOURCE,
        now=NOW + timedelta(minutes=5),
    )
    _only_updates(again)
    stored = {row["sys_id"]: row for row in emulator.rows(ISSUE_TABLE)}
    for change in first.of(Action.RESOLVE):
        assert stored[change.sys_id]["state"] == "resolved"
    for change in first.of(Action.UPDATE):
        assert stored[change.sys_id]["count"] == str(change.count)
        assert stored[change.sys_id]["last_detected"] == format_time(NOW)
