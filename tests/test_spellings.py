"""Random spellings of one scenario: snowcheck touches an issue once per run and never flaps.

Values the instance's database compares (role and param names, status, parm1, issue source,
state and message) come in any case, with trailing spaces, or empty; user names and
association values too. Whatever the spelling:

- one run touches each issue at most once and writes at most one issue per identity;
- applied (in memory, as the instance would store it), the next run plans only count
  updates, of the very issues the first run wrote;
- respelling only what the database compares changes nothing in the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from factories import NOW, NOW_TEXT, SOURCE
from hypothesis import given, settings
from hypothesis import strategies as st

from snowcheck import compare
from snowcheck.check import Outcome, assess
from snowcheck.messages import KINGSTON
from snowcheck.plan import Action, ours_and_open
from snowcheck.records import (
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
    ROLE_TABLE,
    USER_ROLE_TABLE,
    USER_TABLE,
    Inventory,
    Snapshot,
)
from snowcheck.rules import RULES

Tables = dict[str, list[dict[str, Any]]]
Respell = Callable[[str], str]

NAMES = ("mid.a", "mid.b", "svc.c")
TIMES = ("2026-11-25 07:00:00", "2026-11-25 11:00:00", "2026-11-25 11:30:00", "2026-11-25 12:10:00")
CASES: tuple[Respell, ...] = (str, str.upper, str.lower, str.title, str.swapcase)
PADS = ("", " ", "  ")


@st.composite
def respellings(draw: st.DrawFn) -> Respell:
    """A change of case and trailing spaces: what the database's comparison ignores."""
    case = draw(st.sampled_from(CASES))
    pad = draw(st.sampled_from(PADS))
    return lambda text: case(text) + pad if text else text


def spelled(text: str, *, empty: bool = True) -> st.SearchStrategy[str]:
    """``text`` respelled, or (when ``empty``) the empty value."""
    spellings = respellings().map(lambda respell: respell(text))
    return st.one_of(spellings, st.just("")) if empty else spellings


@st.composite
def scenarios(draw: st.DrawFn) -> Tables:
    tables: Tables = {table: [] for table in (ROLE_TABLE, USER_ROLE_TABLE, USER_TABLE)}
    tables[ROLE_TABLE] = [
        {"sys_id": "r.mid", "name": draw(spelled("mid_server"))},
        {"sys_id": "r.soap", "name": draw(spelled("soap_script"))},
    ]
    for index, name in enumerate(NAMES):
        if not draw(st.booleans()):
            continue
        user = f"u{index}"
        tables[USER_TABLE].append(
            {
                "sys_id": user,
                "user_name": draw(spelled(name)),
                "active": draw(st.sampled_from(["true", "false"])),
                "sys_domain": draw(st.sampled_from(["global", "acme", ""])),
            }
        )
        for role in draw(st.sets(st.sampled_from(["r.mid", "r.soap"]))):
            tables[USER_ROLE_TABLE].append({"sys_id": f"g{user}{role}", "user": user, "role": role})
    tables[MID_TABLE] = [
        {"sys_id": mid, "name": mid, "status": draw(st.one_of(spelled("Down"), spelled("Up")))}
        for mid in ("m1", "m2")
    ]
    tables[CONFIG_TABLE] = [
        {
            "sys_id": f"c{index}",
            "ecc_agent": draw(st.sampled_from(["m1", "m2", ""])),
            "param_name": draw(spelled("mid.instance.username")),
            "value": draw(st.sampled_from(NAMES).flatmap(spelled)),
            "sys_domain": draw(st.sampled_from(["global", "beta"])),
        }
        for index in range(draw(st.integers(0, 4)))
    ]
    tables[EVENT_TABLE] = [
        {
            "sys_id": f"e{index}",
            "name": draw(st.sampled_from(["login", "login.failed", "login.authorization.failed"])),
            "parm1": draw(st.sampled_from(NAMES).flatmap(spelled)),
            "parm2": "",
            "sys_created_on": draw(st.sampled_from(TIMES)),
        }
        for index in range(draw(st.integers(0, 5)))
    ]
    tables[ISSUE_TABLE] = [draw(issues(f"i{index}")) for index in range(draw(st.integers(0, 5)))]
    return tables


@st.composite
def issues(draw: st.DrawFn, sys_id: str) -> dict[str, Any]:
    rule = draw(st.sampled_from(RULES))
    message = KINGSTON.render(rule.id, draw(st.sampled_from(NAMES)), draw(st.integers(1, 2)))
    return {
        "sys_id": sys_id,
        "message": draw(spelled(message)),
        "source": draw(st.one_of(spelled(SOURCE), st.just("ECCQueueMonitor"))),
        "state": draw(
            st.one_of(*(spelled(state) for state in ("new", "acknowledged", "resolved")))
        ),
        "count": str(draw(st.integers(0, 9))),
        "last_detected": "2026-11-25 08:00:00",
        "mid_server": draw(st.sampled_from(["", "", "m1"])),
        "sys_domain": "global",
        "sys_updated_on": draw(st.sampled_from(TIMES[:3])),
    }


def check(tables: Tables) -> Outcome:
    snapshot = Snapshot(now=NOW, tables=tables, clock_source="snapshot")
    window = timedelta(hours=4)
    return assess(snapshot, instance="test", window=window, source=SOURCE, messages="kingston")


def applied(tables: Tables, outcome: Outcome) -> tuple[Tables, set[str]]:
    """The tables once the plan is written, as the instance stores it; and the issues written."""
    rows = {row["sys_id"]: dict(row) for row in tables[ISSUE_TABLE]}
    written: set[str] = set()
    for index, change in enumerate(outcome.plan.changes):
        if change.action is Action.CREATE:
            record = f"new{index}"
            rows[record] = {"sys_id": record, **change.payload, "sys_updated_on": NOW_TEXT}
        else:
            assert change.sys_id is not None
            record = change.sys_id
            rows[record].update(change.payload, sys_updated_on=NOW_TEXT)
        if change.action is not Action.RESOLVE:
            written.add(record)
    return {**tables, ISSUE_TABLE: list(rows.values())}, written


def open_issues_by_identity(tables: Tables) -> dict[str, int]:
    counts: dict[str, int] = {}
    for issue in Inventory.from_tables(tables).issues:
        if ours_and_open(issue, SOURCE):
            counts[compare.fold(issue.message)] = counts.get(compare.fold(issue.message), 0) + 1
    return counts


@settings(max_examples=200, deadline=None)
@given(tables=scenarios())
def test_each_issue_is_touched_once_and_the_next_run_only_counts(tables: Tables) -> None:
    first = check(tables)
    changes = first.plan.changes
    touched = [change.sys_id for change in changes if change.sys_id is not None]
    assert len(touched) == len(set(touched)), changes
    written = [compare.fold(c.message) for c in changes if c.action is not Action.RESOLVE]
    assert len(written) == len(set(written)), changes

    after, kept = applied(tables, first)
    before_counts, after_counts = open_issues_by_identity(tables), open_issues_by_identity(after)
    for finding in first.evaluation.findings:
        identity = compare.fold(finding.message)
        assert after_counts[identity] == max(1, before_counts.get(identity, 0)), finding

    second = check(after)
    assert {change.action for change in second.plan.changes} <= {Action.UPDATE}
    assert {change.sys_id for change in second.plan.changes} == kept
    for change in second.plan.changes:
        assert change.count == (change.count_before or 0) + 1
        assert compare.fold(change.state) == compare.fold(change.state_before or "")
    third = check(applied(after, second)[0])
    assert [(c.action, c.sys_id) for c in third.plan.changes] == [
        (c.action, c.sys_id) for c in second.plan.changes
    ]


def _respelled(tables: Tables, respell: Respell) -> Tables:
    """The same scenario with every value the database compares respelled."""
    database_fields = {
        ROLE_TABLE: ("name",),
        MID_TABLE: ("status",),
        CONFIG_TABLE: ("param_name",),
        EVENT_TABLE: ("parm1",),
        ISSUE_TABLE: ("source", "state", "message"),
    }
    copy: Tables = {}
    for table, rows in tables.items():
        fields = database_fields.get(table, ())
        copy[table] = [
            {name: respell(value) if name in fields else value for name, value in row.items()}
            for row in rows
        ]
    return copy


@settings(max_examples=200, deadline=None)
@given(tables=scenarios(), respell=respellings())
def test_respelling_what_the_database_compares_changes_nothing(
    tables: Tables, respell: Respell
) -> None:
    def plan_of(outcome: Outcome) -> list[tuple[str, str | None, str, int]]:
        return [
            (change.action.value, change.sys_id, compare.fold(change.message), change.count)
            for change in outcome.plan.changes
        ]

    original, respelled = check(tables), check(_respelled(tables, respell))
    assert respelled.evaluation.findings == original.evaluation.findings
    assert sorted(plan_of(respelled)) == sorted(plan_of(original))
