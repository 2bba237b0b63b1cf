"""ServiceNow encoded queries: parsed into a small AST, then compiled to parameterised SQL.

Grammar, as the Table API reads `sysparm_query`:

- `^` joins conditions with AND, `^OR` joins a condition to the previous one with OR (OR binds
  tighter than AND), `^NQ` starts a new query whose rows are added (an OR of whole groups);
  `^EQ` ends the query.
- A literal `^` inside a value is written `^^`.
- A condition is `<field><operator><value>`; fields are lowercase names, dot-walked through
  reference fields (`role.name=mid_server`).
- `ORDERBY<field>` / `ORDERBYDESC<field>` may appear anywhere.

Semantics chosen to match a real instance for what snowcheck relies on:

- Values are compared as strings (dates `YYYY-MM-DD HH:MM:SS` order as strings).
- `=`, `!=`, `IN`, `NOT IN` and `STARTSWITH` compare as the instance's database does
  (`snowcheck.compare`): ignoring letter case and trailing spaces, so `status=Down` also
  finds `DOWN` and `Down `. sys_ids, dates and reference fields hold no letter whose case
  could differ: they are compared as stored, which keeps their plain indexes usable.
  `ENDSWITH`, `LIKE` (contains) and `NOT LIKE` ignore ASCII case. `IN` splits on `,` with
  no escape and no trimming.
- Empty values behave like the database's NULL: only `ISEMPTY`, `=` with an empty value and
  `IN` with an empty item match them; `!=`, `NOT IN`, `NOT LIKE`, `<`, `<=`, ... never do.
- A condition naming a field the table does not have (or that cannot be parsed) is dropped,
  silently, like a real instance's default: a typo widens the query. The dropped conditions
  are reported in `CompiledQuery.ignored` (the emulator's request log shows them).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from snowcheck.compare import fold

OPERATORS = (
    "NOT IN",
    "NOT LIKE",
    "ISNOTEMPTY",
    "ISEMPTY",
    "STARTSWITH",
    "ENDSWITH",
    "IN",
    "LIKE",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
"""Supported operators, longest first so that `NOT IN` is not read as a field `...NOT` + `IN`."""

_CONDITION = re.compile(
    r"(?P<field>[a-z0-9_]+(?:\.[a-z0-9_]+)*)(?P<operator>"
    + "|".join(re.escape(op) for op in OPERATORS)
    + r")(?P<value>.*)",
    re.DOTALL,
)
_ORDER = re.compile(r"ORDERBY(?P<desc>DESC)?(?P<field>[a-z0-9_]+(?:\.[a-z0-9_]+)*)")

# Beyond this many items an IN list is passed as one JSON parameter (SQLite caps parameters).
_MAX_INLINE_ITEMS = 500

FOLD = "snow_fold"
"""The SQL function computing `snowcheck.compare.fold`; `register_fold` adds it to a connection."""

EXACT_FIELDS = frozenset({"sys_id", "sys_created_on", "sys_updated_on"})
"""Fields compared as stored: sys_ids and dates (so are reference fields, which hold sys_ids)."""

_FOLDED_OPERATORS = frozenset({"=", "!=", "IN", "NOT IN", "STARTSWITH"})


def register_fold(connection: sqlite3.Connection) -> None:
    """Make `snow_fold(x)` available on `connection` (deterministic: indexes may use it)."""
    connection.create_function(FOLD, 1, fold, deterministic=True)


def folded(expression: str) -> str:
    """SQL for the value of `expression` as the database compares it."""
    return f"{FOLD}({expression})"


@dataclass(frozen=True)
class Condition:
    """One `<field><operator><value>` condition; `field` may be dot-walked (`role.name`)."""

    field: str
    operator: str
    value: str


@dataclass(frozen=True)
class Order:
    """One `ORDERBY` / `ORDERBYDESC` clause."""

    field: str
    descending: bool = False


Term = tuple[Condition, ...]
"""Conditions joined by `^OR`."""

Group = tuple[Term, ...]
"""Terms joined by `^` (AND)."""


@dataclass(frozen=True)
class Query:
    """A parsed encoded query: an OR of groups (split by `^NQ`), and the ordering."""

    groups: tuple[Group, ...] = ()
    order: tuple[Order, ...] = ()
    unparsed: tuple[str, ...] = ()
    """Segments that are not a condition this parser knows (dropped, like unknown fields)."""


def split_segments(text: str) -> list[str]:
    """Split an encoded query on `^`, turning `^^` into a literal `^` inside a segment."""
    segments: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "^":
            if text.startswith("^^", index):
                current.append("^")
                index += 2
                continue
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    segments.append("".join(current))
    return segments


def parse(text: str) -> Query:
    """Parse an encoded query (`sysparm_query`) into a `Query`."""
    groups: list[Group] = []
    terms: list[list[Condition]] = []
    order: list[Order] = []
    unparsed: list[str] = []
    for raw in split_segments(text):
        segment = raw
        if segment == "EQ":
            break
        if not segment:
            continue
        ordering = _ORDER.fullmatch(segment)
        if ordering is not None:
            order.append(Order(ordering["field"], descending=ordering["desc"] is not None))
            continue
        joins_previous = False
        if segment.startswith("NQ"):
            if terms:
                groups.append(tuple(tuple(term) for term in terms))
            terms = []
            segment = segment[2:]
        elif segment.startswith("OR"):
            joins_previous = True
            segment = segment[2:]
        condition = _CONDITION.fullmatch(segment)
        if condition is None:
            unparsed.append(raw)
            continue
        operator = condition["operator"]
        value = "" if operator in ("ISEMPTY", "ISNOTEMPTY") else condition["value"]
        parsed = Condition(condition["field"], operator, value)
        if joins_previous and terms:
            terms[-1].append(parsed)
        else:
            terms.append([parsed])
    if terms:
        groups.append(tuple(tuple(term) for term in terms))
    return Query(tuple(groups), tuple(order), tuple(unparsed))


class Catalog(Protocol):
    """What the compiler needs to know about tables: their fields and reference fields."""

    def has_field(self, table: str, name: str) -> bool:
        """Whether `table` has a field `name`."""
        ...

    def reference_target(self, table: str, name: str) -> str | None:
        """The table a reference field points to, or None if `name` is not a reference."""
        ...

    def sql_table(self, table: str) -> str:
        """The quoted SQL name of `table`."""
        ...


def quote_identifier(name: str) -> str:
    """Quote a (validated) SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class CompiledQuery:
    """SQL for a query against one table aliased `t0`: WHERE and ORDER BY, with parameters."""

    where: str
    params: tuple[str, ...]
    order_by: str
    sort_order_by: str
    """The same ordering, written so no index can provide it: for fetching every match,
    where a scan and a sort beat walking an index in order with a row lookup per entry."""
    ignored: tuple[str, ...] = field(default=())
    """Conditions or orderings dropped because they name an unknown field or do not parse."""


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches_empty(condition: Condition) -> bool:
    """Whether the condition can match an empty value (which a dangling reference reads as)."""
    if condition.operator == "ISEMPTY":
        return True
    if condition.operator == "=":
        return condition.value == ""
    if condition.operator == "IN":
        return "" in condition.value.split(",")
    return False


def _folded_predicate(expression: str, operator: str, value: str) -> tuple[str, list[str]]:
    """SQL for `=`, `!=`, `IN`, `NOT IN`, `STARTSWITH` ignoring case and trailing spaces."""
    nonempty = f"{expression} <> ''"
    key = folded(expression)
    if operator == "=":
        if value == "":
            return f"{expression} = ''", []
        # A value of spaces folds to '': still never true of an empty field.
        sql = f"{key} = ?" if fold(value) else f"({nonempty} AND {key} = ?)"
        return sql, [fold(value)]
    if operator == "!=":
        return f"({nonempty} AND {key} <> ?)", [fold(value)]
    if operator == "STARTSWITH":
        return f"({nonempty} AND {key} LIKE ? ESCAPE '\\')", [_like_escape(fold(value)) + "%"]
    if operator == "NOT IN":
        return _predicate(key, operator, ",".join(map(fold, value.split(","))), expression)
    # IN: an empty item matches the empty value (as `=` with no value does); any other item
    # never does, even one of spaces, which folds to ''.
    items = value.split(",")
    keys = [fold(item) for item in items if item]
    alternatives: list[str] = []
    params: list[str] = []
    if keys:
        sql, params = _predicate(key, "IN", ",".join(keys))
        alternatives.append(f"({nonempty} AND {sql})" if "" in keys else sql)
    if "" in items:
        alternatives.append(f"{expression} = ''")
    where = " OR ".join(alternatives)
    return (where if len(alternatives) == 1 else f"({where})"), params


def _predicate(
    expression: str, operator: str, value: str, stored: str | None = None
) -> tuple[str, list[str]]:
    """SQL for `<expression> <operator> <value>` under the semantics in the module docstring.

    `stored` is the value as stored when `expression` is its folded form: emptiness is
    decided on it.
    """
    nonempty = f"{stored or expression} <> ''"
    if operator == "=":
        return f"{expression} = ?", [value]
    if operator == "!=":
        return f"({nonempty} AND {expression} <> ?)", [value]
    if operator in (">", ">=", "<", "<="):
        return f"({nonempty} AND {expression} {operator} ?)", [value]
    if operator in ("IN", "NOT IN"):
        items = value.split(",")
        if len(items) > _MAX_INLINE_ITEMS:
            members = "(SELECT value FROM json_each(?))"
            params = [json.dumps(items)]
        else:
            members = "(" + ",".join("?" * len(items)) + ")"
            params = items
        if operator == "IN":
            return f"{expression} IN {members}", params
        return f"({nonempty} AND {expression} NOT IN {members})", params
    if operator == "STARTSWITH":
        return f"({nonempty} AND {expression} LIKE ? ESCAPE '\\')", [_like_escape(value) + "%"]
    if operator == "ENDSWITH":
        return f"({nonempty} AND {expression} LIKE ? ESCAPE '\\')", ["%" + _like_escape(value)]
    if operator == "LIKE":
        pattern = "%" + _like_escape(value) + "%"
        return f"({nonempty} AND {expression} LIKE ? ESCAPE '\\')", [pattern]
    if operator == "NOT LIKE":
        pattern = "%" + _like_escape(value) + "%"
        return f"({nonempty} AND {expression} NOT LIKE ? ESCAPE '\\')", [pattern]
    if operator == "ISEMPTY":
        return f"{expression} = ''", []
    if operator == "ISNOTEMPTY":
        return nonempty, []
    raise ValueError(f"unknown operator {operator!r}")


class _Compiler:
    """Compiles one query for one table; numbers the aliases of dot-walk subqueries."""

    def __init__(self, catalog: Catalog, prefix: str = "t") -> None:
        self.catalog = catalog
        self.prefix = prefix
        self.aliases = 0

    def new_alias(self) -> str:
        self.aliases += 1
        return f"{self.prefix}{self.aliases}"

    def valid_path(self, table: str, path: str) -> bool:
        *hops, last = path.split(".")
        for hop in hops:
            target = self.catalog.reference_target(table, hop)
            if target is None:
                return False
            table = target
        return self.catalog.has_field(table, last)

    def value_expression(self, table: str, path: str, alias: str) -> str:
        """SQL for the value at `path` from a row of `table` aliased `alias` ('' if dangling)."""
        first, _, rest = path.partition(".")
        column = f"{alias}.{quote_identifier(first)}"
        if not rest:
            return column
        target = self.catalog.reference_target(table, first)
        assert target is not None  # checked by valid_path
        inner_alias = self.new_alias()
        inner = self.value_expression(target, rest, inner_alias)
        source = f"{self.catalog.sql_table(target)} AS {inner_alias}"
        lookup = f'SELECT {inner} FROM {source} WHERE {inner_alias}."sys_id" = {column}'
        return f"COALESCE(({lookup}), '')"

    def compares_folded(self, table: str, path: str) -> bool:
        """Whether the field at `path` is compared ignoring case and trailing spaces."""
        *hops, last = path.split(".")
        for hop in hops:
            target = self.catalog.reference_target(table, hop)
            assert target is not None  # checked by valid_path
            table = target
        return last not in EXACT_FIELDS and self.catalog.reference_target(table, last) is None

    def condition(self, table: str, condition: Condition, alias: str) -> tuple[str, list[str]]:
        first, _, rest = condition.field.partition(".")
        if not rest or _matches_empty(condition):
            expression = self.value_expression(table, condition.field, alias)
            if condition.operator in _FOLDED_OPERATORS and self.compares_folded(
                table, condition.field
            ):
                return _folded_predicate(expression, condition.operator, condition.value)
            return _predicate(expression, condition.operator, condition.value)
        # A condition that cannot match an empty value is a semi-join on the referenced
        # table, which lets SQLite use the index of the target's field.
        target = self.catalog.reference_target(table, first)
        assert target is not None
        inner_alias = self.new_alias()
        inner_sql, params = self.condition(
            target, Condition(rest, condition.operator, condition.value), inner_alias
        )
        source = f"{self.catalog.sql_table(target)} AS {inner_alias}"
        column = f"{alias}.{quote_identifier(first)}"
        subquery = f'SELECT {inner_alias}."sys_id" FROM {source} WHERE {inner_sql}'
        return f"{column} IN ({subquery})", params


def _describe(condition: Condition) -> str:
    return f"{condition.field}{condition.operator}{condition.value}"


def compile_query(
    query: Query, table: str, catalog: Catalog, *, alias_prefix: str = "t"
) -> CompiledQuery:
    """Compile `query` into SQL for `table` (aliased `t0`), dropping unknown fields.

    Dot-walk subqueries are aliased `<alias_prefix>1`, `<alias_prefix>2`, ...; two compiled
    queries used in one statement need different prefixes.
    """
    compiler = _Compiler(catalog, alias_prefix)
    ignored: list[str] = list(query.unparsed)
    params: list[str] = []
    group_sql: list[str] = []
    matches_all = False
    for group in query.groups:
        term_sql: list[str] = []
        for term in group:
            alternatives: list[str] = []
            for condition in term:
                if not compiler.valid_path(table, condition.field):
                    ignored.append(_describe(condition))
                    continue
                sql, condition_params = compiler.condition(table, condition, "t0")
                alternatives.append(sql)
                params.extend(condition_params)
            if alternatives:
                term_sql.append("(" + " OR ".join(alternatives) + ")")
        if not term_sql:
            # Every condition of this group was dropped: the group matches every row.
            matches_all = True
        group_sql.append(" AND ".join(term_sql) if term_sql else "1")
    if matches_all or not group_sql:
        where = "1"
        params = []
    else:
        where = " OR ".join(f"({sql})" for sql in group_sql)

    order_terms: list[str] = []
    for order in query.order:
        if not compiler.valid_path(table, order.field):
            ignored.append(("ORDERBYDESC" if order.descending else "ORDERBY") + order.field)
            continue
        expression = compiler.value_expression(table, order.field, "t0")
        order_terms.append(expression + (" DESC" if order.descending else ""))
    # Ties (and queries without ORDERBY) fall back to insertion order, so paging is stable.
    order_by = ", ".join([*order_terms, "t0.rowid"])
    sort_order_by = ", ".join([*(f"+{term}" for term in order_terms), "t0.rowid"])
    return CompiledQuery(where, tuple(params), order_by, sort_order_by, tuple(ignored))


def compile_fields(
    fields: Sequence[str], table: str, catalog: Catalog
) -> tuple[list[str], list[str]]:
    """SQL value expressions for `sysparm_fields`; unknown fields are left out.

    Returns the kept field names and their expressions, in the same order.
    """
    compiler = _Compiler(catalog, "f")
    names: list[str] = []
    expressions: list[str] = []
    for name in fields:
        if name in names or not compiler.valid_path(table, name):
            continue
        names.append(name)
        expressions.append(compiler.value_expression(table, name, "t0"))
    return names, expressions
