"""Encoded query parsing and its SQL semantics, from tables of cases."""

from __future__ import annotations

import pytest

from snowcheck.compare import fold
from snowcheck.emulator.clock import Clock
from snowcheck.emulator.query import (
    Condition,
    Order,
    compile_query,
    parse,
    split_segments,
)
from snowcheck.emulator.store import Store

USERS = [
    {
        "sys_id": "a",
        "user_name": "alice",
        "active": "true",
        "name": "Alice Smith",
        "sys_created_on": "2026-01-01 00:00:00",
    },
    {
        "sys_id": "b",
        "user_name": "bob",
        "active": "false",
        "name": "Bob^Caret",
        "sys_created_on": "2026-02-01 00:00:00",
    },
    {
        "sys_id": "c",
        "user_name": "Carol",
        "active": "true",
        "name": "",
        "sys_created_on": "2026-03-01 00:00:00",
    },
    {
        "sys_id": "d",
        "user_name": "dave,jr",
        "active": "",
        "name": "Dave 100%",
        "sys_created_on": "2026-04-01 00:00:00",
    },
]

HAS_ROLE = [
    {"sys_id": "h1", "user": "a", "role": "r_mid"},
    {"sys_id": "h2", "user": "b", "role": "r_soap"},
    {"sys_id": "h3", "user": "", "role": "r_mid"},
    {"sys_id": "h4", "user": "missing", "role": "r_mid"},
]

ROLES = [{"sys_id": "r_mid", "name": "mid_server"}, {"sys_id": "r_soap", "name": "soap_script"}]


@pytest.fixture(scope="module")
def store() -> Store:
    store = Store(Clock())
    store.bulk_load("sys_user", USERS)
    store.bulk_load("sys_user_has_role", HAS_ROLE)
    store.bulk_load("sys_user_role", ROLES)
    return store


def ids(store: Store, table: str, query: str) -> list[str]:
    page = store.select(table, parse(query), ["sys_id"], limit=100, offset=0)
    return [row[0] for row in page.rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["a", "b", "c", "d"]),
        ("user_name=alice", ["a"]),
        ("user_name=Alice", ["a"]),  # `=` ignores case, as the instance's database does
        ("user_name!=alice", ["b", "c", "d"]),
        ("active!=true", ["b"]),  # an empty value never matches `!=`
        ("sys_created_on>2026-02-01 00:00:00", ["c", "d"]),
        ("sys_created_on>=2026-02-01 00:00:00", ["b", "c", "d"]),
        ("sys_created_on<2026-02-01 00:00:00", ["a"]),
        ("sys_created_on<=2026-02-01 00:00:00", ["a", "b"]),
        ("user_nameINalice,bob", ["a", "b"]),
        ("user_nameINalice,Bob", ["a", "b"]),
        ("user_nameNOT INalice,bob", ["c", "d"]),
        ("activeNOT INtrue", ["b"]),
        ("user_nameSTARTSWITHca", ["c"]),  # STARTSWITH / ENDSWITH / LIKE ignore case
        ("user_nameENDSWITHJR", ["d"]),
        ("nameLIKEsmith", ["a"]),
        ("nameNOT LIKEsmith", ["b", "d"]),
        ("nameLIKE100%", ["d"]),  # % and _ are literal
        ("nameLIKE_", []),
        ("nameISEMPTY", ["c"]),
        ("nameISNOTEMPTY", ["a", "b", "d"]),
        ("active=", ["d"]),
        ("user_name=alice^ORuser_name=bob", ["a", "b"]),
        ("active=true^user_name=alice^ORuser_name=Carol", ["a", "c"]),
        ("active=true^user_name=bob^ORuser_name=Carol", ["c"]),
        ("user_name=alice^NQuser_name=bob", ["a", "b"]),
        ("active=true^user_name=Carol^NQuser_name=bob^active=false", ["b", "c"]),
        ("name=Bob^^Caret", ["b"]),
        ("user_nameINdave,jr", []),  # no escape for a comma inside IN
        ("user_name=dave,jr", ["d"]),
        ("bogus=1", ["a", "b", "c", "d"]),  # unknown fields are dropped: the query widens
        ("bogus=1^user_name=alice", ["a"]),
        ("user_name=alice^ORbogus=1", ["a"]),
        ("user_name=alice^NQbogus=1", ["a", "b", "c", "d"]),
        ("not a condition^user_name=bob", ["b"]),
        ("user_name=alice^EQ^user_name=bob", ["a"]),
        ("ORDERBYuser_name", ["c", "a", "b", "d"]),  # string (binary) order
        ("ORDERBYDESCuser_name", ["d", "b", "a", "c"]),
        ("active=true^ORDERBYDESCsys_created_on", ["c", "a"]),
        ("ORDERBYbogus", ["a", "b", "c", "d"]),
        ("ORDERBYactive^ORDERBYDESCuser_name", ["d", "b", "a", "c"]),
        ("user_name=x'; DROP TABLE t_sys_user; --", []),
    ],
)
def test_sys_user_queries(store: Store, query: str, expected: list[str]) -> None:
    assert ids(store, "sys_user", query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role.name=mid_server", ["h1", "h3", "h4"]),
        ("user.user_name=alice", ["h1"]),
        ("user.user_nameISEMPTY", ["h3", "h4"]),  # empty and dangling references
        ("user.active!=true", ["h2"]),
        ("user.user_nameSTARTSWITHB", ["h2"]),
        ("role.name=mid_server^user.active=true", ["h1"]),
        ("role.name=soap_script^ORuser.user_name=alice", ["h1", "h2"]),
        ("user.bogus=1", ["h1", "h2", "h3", "h4"]),
        ("bogus.name=1", ["h1", "h2", "h3", "h4"]),
        ("role.name.x=1", ["h1", "h2", "h3", "h4"]),  # `name` is not a reference
        ("userISEMPTY", ["h3"]),
        ("user=a", ["h1"]),
        ("ORDERBYuser.user_name", ["h3", "h4", "h1", "h2"]),
        ("ORDERBYDESCrole.name", ["h2", "h1", "h3", "h4"]),
    ],
)
def test_dot_walk_queries(store: Store, query: str, expected: list[str]) -> None:
    assert ids(store, "sys_user_has_role", query) == expected


def test_split_segments_turns_double_caret_into_a_literal() -> None:
    assert split_segments("a=x^^y^b=1") == ["a=x^y", "b=1"]
    assert split_segments("a=x^^^b=1") == ["a=x^", "b=1"]
    assert split_segments("") == [""]


def test_parse_builds_groups_of_and_terms_of_or_conditions() -> None:
    query = parse("a=1^ORb!=2^cIN3,4^NQdISEMPTY^ORDERBYe^ORDERBYDESCf.g")
    assert query.groups == (
        (
            (Condition("a", "=", "1"), Condition("b", "!=", "2")),
            (Condition("c", "IN", "3,4"),),
        ),
        ((Condition("d", "ISEMPTY", ""),),),
    )
    assert query.order == (Order("e"), Order("f.g", descending=True))


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("nameNOT INa,b", Condition("name", "NOT IN", "a,b")),
        ("nameNOT LIKEx", Condition("name", "NOT LIKE", "x")),
        ("nameISNOTEMPTY", Condition("name", "ISNOTEMPTY", "")),
        ("messageLIKEa=b", Condition("message", "LIKE", "a=b")),
        ("message=a=b", Condition("message", "=", "a=b")),
        (
            "sys_created_on>=2026-01-01 00:00:00",
            Condition("sys_created_on", ">=", "2026-01-01 00:00:00"),
        ),
        ("role.name=mid_server", Condition("role.name", "=", "mid_server")),
        ("nameENDSWITH.failed", Condition("name", "ENDSWITH", ".failed")),
    ],
)
def test_parse_operators(text: str, condition: Condition) -> None:
    assert parse(text).groups == (((condition,),),)


def test_unknown_fields_and_unparsed_segments_are_reported(store: Store) -> None:
    query = parse("bogus=1^garbage^user_name=bob^ORDERBYnope")
    compiled = compile_query(query, "sys_user", store)
    assert compiled.ignored == ("garbage", "bogus=1", "ORDERBYnope")


def test_values_are_parameters_never_sql_text(store: Store) -> None:
    value = "x'); DELETE FROM t_sys_user; --"
    compiled = compile_query(parse(f"user_name={value}^nameLIKE{value}"), "sys_user", store)
    assert value not in compiled.where
    assert fold(value) in compiled.params
    assert len(ids(store, "sys_user", f"user_name={value}")) == 0
    assert len(ids(store, "sys_user", "")) == 4


def test_long_in_lists_go_through_one_parameter(store: Store) -> None:
    names = ["alice", "bob", *(f"user{n}" for n in range(2000))]
    query = parse("user_nameIN" + ",".join(names))
    assert len(compile_query(query, "sys_user", store).params) == 1
    assert ids(store, "sys_user", "user_nameIN" + ",".join(names)) == ["a", "b"]


def test_filters_use_indexes(store: Store) -> None:
    compiled = compile_query(parse("user_name=alice"), "sys_user", store)
    plan = store._conn.execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM t_sys_user AS t0 WHERE {compiled.where}",
        compiled.params,
    ).fetchall()
    assert any("USING INDEX" in row[-1] for row in plan), plan
