"""Encoded queries for the Table API: escaping, IN lists that survive commas, and chunking.

An encoded query is a list of conditions joined by ``^`` (AND) or ``^OR`` (OR). An
``^OR`` condition is OR-ed with the condition just before it, and these OR runs are
then AND-ed: ``A^B^ORC`` means ``A AND (B OR C)``. So the alternatives for one field
are written as one contiguous run (``fieldINa,b^ORfield=c,d``) that can follow any
AND-ed prefix; the prefix is never repeated inside the run.

A literal ``^`` in a value is written ``^^``. There is no escape for ``,`` in an IN
list, so a value holding a comma gets its own ``=`` condition in the run; so do
values with leading or trailing spaces (an IN list may trim its items) and the empty
value (``ISEMPTY``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import quote_plus

AND = "^"
OR = "^OR"


def escape(value: str) -> str:
    """Write a literal ``^`` as ``^^`` so it cannot end the condition."""
    return value.replace("^", "^^")


def eq(field: str, value: str) -> str:
    """The condition ``field = value``."""
    return f"{field}={escape(value)}"


def and_(*conditions: str) -> str:
    """AND conditions (or OR runs) together; empty ones are left out."""
    return AND.join(condition for condition in conditions if condition)


def _listable(value: str) -> bool:
    """Whether ``value`` can be an item of an IN list as it is."""
    return value != "" and "," not in value and value == value.strip()


def _alone(field: str, value: str) -> str:
    return f"{field}ISEMPTY" if value == "" else eq(field, value)


def in_(field: str, values: Iterable[str]) -> str:
    """One OR run matching ``field`` equal to any of ``values`` (duplicates dropped).

    Raises ValueError on no values: an empty IN list has no safe meaning.
    """
    unique = list(dict.fromkeys(values))
    if not unique:
        raise ValueError(f"no values to match {field} against")
    listed = [escape(value) for value in unique if _listable(value)]
    conditions = [f"{field}IN{','.join(listed)}"] if listed else []
    conditions.extend(_alone(field, value) for value in unique if not _listable(value))
    return OR.join(conditions)


def encoded_length(text: str) -> int:
    """Length of ``text`` once form-encoded into the URL, as requests sends it."""
    return len(quote_plus(text, safe=""))


def chunk_in(field: str, values: Iterable[str], max_chars: int) -> Iterator[str]:
    """Split ``in_(field, values)`` into OR runs each at most ``max_chars`` once URL-encoded.

    Values are sorted and deduplicated, so the same set gives the same queries. A
    single value too long for the budget still gets a run of its own. No values, no runs.
    """
    listed_head = encoded_length(f"{field}IN")
    separator = encoded_length(",")
    joiner = encoded_length(OR)
    chunk: list[str] = []
    size = 0
    has_list = False
    for value in sorted(set(values)):
        if _listable(value):
            # The first listed value opens the IN condition (and may need an OR before it).
            cost = encoded_length(escape(value))
            cost += separator if has_list else listed_head + (joiner if chunk else 0)
        else:
            cost = encoded_length(_alone(field, value)) + (joiner if chunk else 0)
        if chunk and size + cost > max_chars:
            yield in_(field, chunk)
            chunk, size, has_list = [], 0, False
            # Recost as the first value of a fresh run.
            if _listable(value):
                cost = listed_head + encoded_length(escape(value))
            else:
                cost = encoded_length(_alone(field, value))
        chunk.append(value)
        size += cost
        has_list = has_list or _listable(value)
    if chunk:
        yield in_(field, chunk)
