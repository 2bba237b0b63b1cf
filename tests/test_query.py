"""Encoded-query building: exact strings from a table of cases, meaning checked by evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snowcheck.servicenow.query import and_, chunk_in, encoded_length, eq, escape, in_


def _split(query: str) -> list[str]:
    """Split an encoded query on ^ separators, reading ^^ as a literal caret (left to right)."""
    parts, current, index = [], "", 0
    while index < len(query):
        if query.startswith("^^", index):
            current += "^"
            index += 2
        elif query[index] == "^":
            parts.append(current)
            current = ""
            index += 1
        else:
            current += query[index]
            index += 1
    parts.append(current)
    return parts


def _condition_holds(condition: str, record: dict[str, str]) -> bool:
    for field in sorted(record, key=len, reverse=True):
        if condition == f"{field}ISEMPTY":
            return record[field] == ""
        if condition.startswith(f"{field}IN"):
            return record[field] in condition[len(field) + 2 :].split(",")
        if condition.startswith(f"{field}="):
            return record[field] == condition[len(field) + 1 :]
    raise AssertionError(f"condition not understood: {condition!r}")


def matches(query: str, record: dict[str, str]) -> bool:
    """ServiceNow's reading: ^OR binds to the condition before it; the OR runs are AND-ed."""
    groups: list[list[str]] = []
    for part in _split(query):
        if part.startswith("OR") and groups:
            groups[-1].append(part[2:])
        else:
            groups.append([part])
    return all(any(_condition_holds(c, record) for c in group) for group in groups)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain", "plain"), ("a^b", "a^^b"), ("^^", "^^^^"), ("", "")],
)
def test_escape(value: str, expected: str) -> None:
    assert escape(value) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a"], "parm1INa"),
        (["a", "b", "a"], "parm1INa,b"),
        (["a^b", "c"], "parm1INa^^b,c"),
        (["a,b"], "parm1=a,b"),
        (["x", "a,b", "y"], "parm1INx,y^ORparm1=a,b"),
        (["a,b", "c,d"], "parm1=a,b^ORparm1=c,d"),
        (["x^,y"], "parm1=x^^,y"),
        ([" padded", "x"], "parm1INx^ORparm1= padded"),
        (["", "x"], "parm1INx^ORparm1ISEMPTY"),
    ],
)
def test_in_puts_commas_in_their_own_condition(values: list[str], expected: str) -> None:
    assert in_("parm1", values) == expected


def test_in_refuses_no_values() -> None:
    with pytest.raises(ValueError, match="parm1"):
        in_("parm1", [])


def test_eq_and_and() -> None:
    assert eq("message", "a^b") == "message=a^^b"
    assert and_("a=1", "", "b=2") == "a=1^b=2"


def test_or_run_after_an_and_prefix_keeps_the_prefix_for_every_alternative() -> None:
    query = and_("name=login", in_("parm1", ["x", "a,b"]))
    assert query == "name=login^parm1INx^ORparm1=a,b"
    assert matches(query, {"name": "login", "parm1": "a,b"})
    assert matches(query, {"name": "login", "parm1": "x"})
    # The comma value must not escape the prefix: A^B^ORC is A AND (B OR C).
    assert not matches(query, {"name": "logout", "parm1": "a,b"})
    assert not matches(query, {"name": "logout", "parm1": "x"})


def test_chunk_in_splits_on_the_budget() -> None:
    names = [f"user{i:03}" for i in range(100)]
    chunks = list(chunk_in("parm1", names, 200))
    assert len(chunks) > 1
    assert all(encoded_length(chunk) <= 200 for chunk in chunks)
    assert chunks[0].startswith("parm1INuser000,user001,")
    rejoined = [name for chunk in chunks for name in chunk.removeprefix("parm1IN").split(",")]
    assert rejoined == names


def test_chunk_in_with_no_values_yields_nothing() -> None:
    assert list(chunk_in("parm1", [], 100)) == []


def test_chunk_in_gives_an_overlong_value_a_chunk_of_its_own() -> None:
    assert list(chunk_in("parm1", ["a" * 50, "b"], 20)) == ["parm1IN" + "a" * 50, "parm1INb"]


names = st.lists(
    st.text(alphabet="ab,^ OR", min_size=0, max_size=6), min_size=1, max_size=30, unique=True
)


@given(values=names, budget=st.integers(min_value=40, max_value=300))
def test_chunks_match_exactly_the_names_and_fit_the_budget(values: list[str], budget: int) -> None:
    chunks = list(chunk_in("parm1", values, budget))
    probes = [*values, "", "zz", "a,b,", "^", "OR"]
    for chunk in chunks:
        query = and_("name=login", chunk)
        assert not matches(query, {"name": "other", "parm1": values[0]})
        single = len(_split(chunk)) == 1 and encoded_length(chunk) > budget
        assert encoded_length(chunk) <= budget or single
    for probe in probes:
        hits = [
            c for c in chunks if matches(and_("name=login", c), {"name": "login", "parm1": probe})
        ]
        assert len(hits) == (1 if probe in values else 0), (probe, chunks)
