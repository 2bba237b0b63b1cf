"""The emulator compares as the instance's database does, and as ``snowcheck.compare`` says.

`=`, `!=`, `IN`, `NOT IN` and `STARTSWITH` ignore letter case and trailing spaces; `!=` and
`NOT IN` never match an empty value; sys_ids and references are compared as stored.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snowcheck import compare
from snowcheck.emulator.clock import Clock
from snowcheck.emulator.query import parse
from snowcheck.emulator.store import Store

STATUSES = {
    "m1": "Down",
    "m2": "DOWN",
    "m3": "down ",
    "m4": " Down",
    "m5": "Down\t",
    "m6": "Up",
    "m7": "",
    "m8": "Dówn",
}


@pytest.fixture(scope="module")
def store() -> Store:
    store = Store(Clock())
    store.bulk_load("ecc_agent", [{"sys_id": k, "status": v} for k, v in STATUSES.items()])
    store.bulk_load("sys_user_role", [{"sys_id": "r1", "name": "MID_Server "}])
    store.bulk_load(
        "sys_user_has_role",
        [{"sys_id": "h1", "user": "u1", "role": "r1"}, {"sys_id": "h2", "user": "u2", "role": ""}],
    )
    return store


def ids(store: Store, table: str, query: str) -> list[str]:
    page = store.select(table, parse(query), ["sys_id"], limit=100, offset=0)
    return sorted(row[0] for row in page.rows)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=Down", ["m1", "m2", "m3"]),
        ("status=DOWN  ", ["m1", "m2", "m3"]),
        ("status= down", ["m4"]),  # a leading space counts
        ("status!=Down", ["m4", "m5", "m6", "m8"]),  # never the empty m7
        ("statusINup,DOWN", ["m1", "m2", "m3", "m6"]),
        ("statusNOT INup,DOWN", ["m4", "m5", "m8"]),  # never the empty m7
        ("statusSTARTSWITHDO", ["m1", "m2", "m3", "m5"]),
        ("statusSTARTSWITHdown ", ["m1", "m2", "m3", "m5"]),
        ("status=", ["m7"]),
        ("statusIN,Up", ["m6", "m7"]),
        ("status=dówn", ["m8"]),  # case folds beyond ASCII; accents still count
        ("sys_id=M1", []),  # sys_ids are compared as stored
        ("sys_idINm1,M2", ["m1"]),
    ],
)
def test_status_queries(store: Store, query: str, expected: list[str]) -> None:
    assert ids(store, "ecc_agent", query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role.name=mid_server", ["h1"]),
        ("role.nameINmid_server,soap_script", ["h1"]),
        ("role.name!=mid_server", []),
        ("role.name!=soap", ["h1"]),  # a dangling role reads as empty: never `!=`
        ("user=U1", []),  # references are compared as stored
    ],
)
def test_dot_walked_and_reference_queries(store: Store, query: str, expected: list[str]) -> None:
    assert ids(store, "sys_user_has_role", query) == expected


def test_folded_fields_are_looked_up_through_an_index(store: Store) -> None:
    page = store.select("ecc_agent", parse("status=down"), ["sys_id"], limit=10, offset=0)
    assert len(page.rows) == 3
    plan = store._conn.execute(
        'EXPLAIN QUERY PLAN SELECT * FROM "t_ecc_agent" AS t0 WHERE snow_fold(t0."status") = ?',
        ["down"],
    ).fetchall()
    assert any("USING INDEX" in row[-1] for row in plan), plan


# Values that differ from each other only where the database may or may not look.
_spellings = st.builds(
    lambda base, case, pad: case(base) + pad,
    st.sampled_from(["down", "mid.x", "a,b", "é", "", "x y"]),
    st.sampled_from([str.lower, str.upper, str.title, lambda text: " " + text]),
    st.sampled_from(["", " ", "  ", "\t"]),
)


@settings(max_examples=150, deadline=None)
@given(
    stored=st.lists(_spellings, min_size=1, max_size=8),
    value=_spellings.filter(lambda text: "," not in text),
    items=st.lists(_spellings.filter(lambda text: "," not in text), min_size=1, max_size=3),
)
def test_the_emulator_and_snowcheck_compare_alike(
    stored: list[str], value: str, items: list[str]
) -> None:
    store = Store(Clock())
    store.bulk_load(
        "ecc_agent", [{"sys_id": f"m{i}", "status": text} for i, text in enumerate(stored)]
    )

    def matching(query: str) -> set[str]:
        return set(ids(store, "ecc_agent", query))

    def where(verdict: Callable[[str], bool]) -> set[str]:
        return {f"m{i}" for i, text in enumerate(stored) if verdict(text)}

    listed = ",".join(items)
    if value:  # `status=` with no value is ISEMPTY, not a comparison
        assert matching(f"status={value}") == where(lambda t: compare.equal(t, value))
        assert matching(f"status!={value}") == where(lambda t: compare.not_equal(t, value))
        assert matching(f"statusSTARTSWITH{value}") == where(
            lambda t: compare.starts_with(t, value)
        )
    # An empty item of an IN list is ISEMPTY; no other item ever matches the empty value.
    named = [item for item in items if item]
    empty_item = len(named) < len(items)
    assert matching(f"statusIN{listed}") == where(
        lambda t: compare.one_of(t, named) or (empty_item and t == "")
    )
    assert matching(f"statusNOT IN{listed}") == where(lambda t: compare.none_of(t, items))
