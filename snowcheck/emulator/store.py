"""SQLite storage of the emulated tables: one table of TEXT columns per ServiceNow table."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
import weakref
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import Any

from snowcheck.emulator.clock import Clock, format_time
from snowcheck.emulator.query import (
    EXACT_FIELDS,
    Query,
    compile_fields,
    compile_query,
    folded,
    quote_identifier,
    register_fold,
)

SYSTEM_FIELDS = ("sys_id", "sys_created_on", "sys_updated_on")
"""Fields every table has; the store fills them in on insert."""

STANDARD_TABLES: Mapping[str, tuple[str, ...]] = {
    "sys_user": ("user_name", "name", "active", "locked_out", "password_needs_reset", "sys_domain"),
    "sys_user_role": ("name",),
    "sys_user_has_role": ("user", "role", "inherited"),
    "ecc_agent_config": ("ecc_agent", "param_name", "value", "sys_domain"),
    "ecc_agent": (
        "name",
        "status",
        "last_refreshed",
        "user_name",
        "validated",
        "version",
        "sys_domain",
    ),
    "sysevent": ("name", "parm1", "parm2"),
    "ecc_agent_issue": (
        "message",
        "source",
        "state",
        "count",
        "last_detected",
        "mid_server",
        "sys_domain",
    ),
    "sys_properties": ("name", "value"),
}
"""The tables snowcheck reads, always known, with the fields they have even when empty."""

REFERENCES: Mapping[tuple[str, str], str] = {
    ("sys_user_has_role", "user"): "sys_user",
    ("sys_user_has_role", "role"): "sys_user_role",
    ("ecc_agent_config", "ecc_agent"): "ecc_agent",
    ("ecc_agent_issue", "mid_server"): "ecc_agent",
}
"""Reference fields: (table, field) -> referenced table. `sys_domain` stays a plain string."""

INDEXED_FIELDS = frozenset(
    {
        "name",
        "parm1",
        "sys_created_on",
        "param_name",
        "status",
        "source",
        "state",
        "user",
        "role",
        "user_name",
    }
)
"""Fields snowcheck filters on; each gets an index in every table that has it. The index is on
the value as compared (`snow_fold(field)`) unless the field is compared as stored."""

COMPOSITE_INDEXES: Mapping[str, tuple[tuple[str, ...], ...]] = {
    # The login-event query is `name IN .. ^parm1 IN .. ^sys_created_on > ..`: one index
    # range per user name (or per event name, without a user list), bounded by time.
    "sysevent": (("parm1", "sys_created_on"), ("name", "sys_created_on")),
}

INSERT_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    "sys_user": {"sys_domain": "global", "password_needs_reset": "false"},
    "ecc_agent_config": {"sys_domain": "global"},
    "ecc_agent": {"sys_domain": "global"},
    "ecc_agent_issue": {"state": "new", "count": "1", "sys_domain": "global"},
}
"""Values an instance's dictionary defaults give to fields an insert leaves out (an explicit
empty value is kept). `sys_domain` is `global` on an instance without domain separation."""

_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_BULK_CHUNK = 20_000
_CACHED_RESULTS = 8


def valid_name(name: str) -> bool:
    """Whether `name` is a plausible table or field name (lowercase, digits, underscores)."""
    return _NAME.fullmatch(name) is not None


def to_text(value: object) -> str:
    """A Table API value as the string the instance stores.

    References may come as `{"link", "value"}` objects; booleans become `true`/`false`.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping) and "value" in value:
        return to_text(value["value"])
    if isinstance(value, int | float):
        return str(value)
    raise ValueError(f"unsupported value {value!r}")


@dataclass(frozen=True)
class Page:
    """One page of a filtered, ordered select."""

    fields: tuple[str, ...]
    """The field names kept from the request (unknown ones dropped), in request order."""
    rows: list[tuple[str, ...]]
    total: int | None
    """Rows matching the query, before limit and offset (None when not asked for)."""
    hidden: int
    """Rows of the page removed after the limit by a row-level ACL."""
    ignored: tuple[str, ...]
    """Conditions dropped because they name unknown fields or do not parse."""


class Store:
    """The emulated instance's tables, in SQLite; every method is thread-safe."""

    def __init__(
        self,
        clock: Clock,
        references: Mapping[tuple[str, str], str] | None = None,
        path: str = ":memory:",
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        register_fold(self._conn)
        # Emulators are often dropped without close(): release the database with the store.
        weakref.finalize(self, self._conn.close)
        self._references: dict[tuple[str, str], str] = dict(REFERENCES)
        self._references.update(references or {})
        self._fields: dict[str, list[str]] = {}
        self._counts: dict[tuple[str, str, tuple[str, ...]], int] = {}
        self._orders: OrderedDict[tuple[str, str, str, tuple[str, ...]], array[int]]
        self._orders = OrderedDict()
        self._deferred: set[str] = set()
        """Tables being bulk-loaded, whose indexes are built at the end."""
        for table, fields in STANDARD_TABLES.items():
            self.declare(table, fields)

    def close(self) -> None:
        """Release the database."""
        with self._lock:
            self._conn.close()

    # -- schema ------------------------------------------------------------------------------

    def declare(self, table: str, fields: Iterable[str] = ()) -> None:
        """Make `table` known (creating it if needed) with at least `fields`."""
        if not valid_name(table):
            raise ValueError(f"invalid table name {table!r}")
        with self._lock:
            if table not in self._fields:
                columns = ", ".join(
                    f"{quote_identifier(name)} TEXT NOT NULL DEFAULT ''" for name in SYSTEM_FIELDS
                )
                self._conn.execute(f"CREATE TABLE {self.sql_table(table)} ({columns})")
                self._fields[table] = list(SYSTEM_FIELDS)
                self._create_indexes(table)
            references = [name for (owner, name) in self._references if owner == table]
            self._add_fields(table, [*fields, *references])

    def _add_fields(self, table: str, fields: Iterable[str]) -> None:
        known = self._fields[table]
        added = False
        for name in fields:
            if name in known:
                continue
            if not valid_name(name):
                raise ValueError(f"invalid field name {name!r} for table {table}")
            self._conn.execute(
                f"ALTER TABLE {self.sql_table(table)} "
                f"ADD COLUMN {quote_identifier(name)} TEXT NOT NULL DEFAULT ''"
            )
            known.append(name)
            added = True
        if added:
            self._create_indexes(table)

    def _sync_fields(self, table: str) -> None:
        """Re-read a table's columns (after a rolled-back load that had added some)."""
        info = self._conn.execute(f"PRAGMA table_info({self.sql_table(table)})").fetchall()
        self._fields[table] = [str(column[1]) for column in info]

    def _index_specs(self, table: str) -> list[tuple[tuple[str, ...], bool]]:
        """(columns, unique) of every index `table` should have, given its fields."""
        known = self._fields[table]
        composites = [c for c in COMPOSITE_INDEXES.get(table, ()) if set(c) <= set(known)]
        leading = {columns[0] for columns in composites}
        specs: list[tuple[tuple[str, ...], bool]] = [(("sys_id",), True)]
        # A composite index also serves lookups on its first column alone.
        specs += [((name,), False) for name in known if name in INDEXED_FIELDS - leading]
        specs += [(columns, False) for columns in composites]
        return specs

    def _index_name(self, table: str, columns: Sequence[str]) -> str:
        return quote_identifier(f"{table}__{'__'.join(columns)}")

    def _indexed(self, table: str, column: str) -> str:
        """The indexed expression of `column`: what the compiled queries compare."""
        name = quote_identifier(column)
        if column in EXACT_FIELDS or (table, column) in self._references:
            return name
        return folded(name)

    def _create_indexes(self, table: str) -> None:
        if table in self._deferred:
            return
        for columns, unique in self._index_specs(table):
            indexed = ", ".join(self._indexed(table, column) for column in columns)
            self._conn.execute(
                f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS "
                f"{self._index_name(table, columns)} ON {self.sql_table(table)} ({indexed})"
            )

    def _drop_indexes(self, table: str) -> None:
        for columns, _ in self._index_specs(table):
            self._conn.execute(f"DROP INDEX IF EXISTS {self._index_name(table, columns)}")

    def is_table(self, table: str) -> bool:
        """Whether the instance has `table` (declared, or one snowcheck reads)."""
        return table in self._fields

    def tables(self) -> list[str]:
        """Every known table."""
        with self._lock:
            return list(self._fields)

    def fields(self, table: str) -> list[str]:
        """The fields of `table`, in the order they were seen."""
        with self._lock:
            return list(self._fields[table])

    def has_field(self, table: str, name: str) -> bool:
        """Whether `table` has a field `name`."""
        return name in self._fields.get(table, ())

    def reference_target(self, table: str, name: str) -> str | None:
        """The table a reference field points to, or None."""
        if not self.has_field(table, name):
            return None
        return self._references.get((table, name))

    def sql_table(self, table: str) -> str:
        """The quoted SQL name of `table` (prefixed, so no name clashes with SQLite's own)."""
        return quote_identifier(f"t_{table}")

    # -- writes ------------------------------------------------------------------------------

    def _prepare(
        self, table: str, values: Mapping[str, object], add_fields: bool, now: str
    ) -> dict[str, str]:
        """Normalise a row for insertion and fill in the defaults an instance would."""
        row: dict[str, str] = {}
        known = self._fields[table]
        for name, value in values.items():
            if "." in name:
                continue  # a dot-walked value (`user.user_name`) is derived, never stored
            if not add_fields and name not in known:
                continue  # an instance ignores fields the table does not have
            row[name] = value if type(value) is str else to_text(value)
        if not row.get("sys_id"):
            row["sys_id"] = uuid.uuid4().hex
        if not row.get("sys_created_on"):
            row["sys_created_on"] = now
        if not row.get("sys_updated_on"):
            row["sys_updated_on"] = now
        for name, default in INSERT_DEFAULTS.get(table, {}).items():
            row.setdefault(name, default)
        return row

    def _now(self) -> str:
        return format_time(self._clock.now())

    def _insert_rows(self, table: str, rows: Sequence[dict[str, str]]) -> None:
        columns: list[str] = []
        seen: set[tuple[str, ...]] = set()
        for row in rows:
            shape = tuple(row)
            if shape in seen:
                continue
            seen.add(shape)
            columns.extend(name for name in shape if name not in columns)
        self._add_fields(table, columns)
        names = ", ".join(map(quote_identifier, columns))
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {self.sql_table(table)} ({names}) VALUES ({marks})"
        params: Iterable[Any]
        if len(seen) == 1 and len(columns) > 1:
            params = map(itemgetter(*columns), rows)  # the fast path of a uniform bulk load
        else:
            blanks = [""] * len(columns)
            params = [tuple(map(row.get, columns, blanks)) for row in rows]
        try:
            self._conn.executemany(sql, params)
        except sqlite3.IntegrityError as error:
            if table in self._deferred:
                raise
            raise ValueError(f"{table}: duplicate sys_id ({error})") from error

    def _invalidate(self) -> None:
        self._counts.clear()
        self._orders.clear()

    def insert(
        self, table: str, values: Mapping[str, object], *, add_fields: bool = False
    ) -> dict[str, str]:
        """Insert one row; returns it as stored.

        Unknown fields are dropped, as the Table API does, unless `add_fields` (scenario
        loading) asks to create them. Raises ValueError on a duplicate sys_id.
        """
        with self._lock:
            row = self._prepare(table, values, add_fields, self._now())
            self._insert_rows(table, [row])
            self._invalidate()
            stored = self.get(table, row["sys_id"])
            assert stored is not None
            return stored

    def bulk_load(self, table: str, rows: Iterable[Mapping[str, object]]) -> int:
        """Insert many rows in one transaction (fields are created as seen); returns the count.

        Loading into an empty table builds its indexes once, after the rows. Raises
        ValueError (and loads nothing) on a duplicate sys_id.
        """
        with self._lock:
            self.declare(table)
            empty = self._conn.execute(f"SELECT 1 FROM {self.sql_table(table)} LIMIT 1")
            deferred = empty.fetchone() is None
            total = 0
            iterator = iter(rows)
            self._conn.execute("BEGIN")
            try:
                if deferred:
                    self._drop_indexes(table)
                    self._deferred.add(table)
                while chunk := list(islice(iterator, _BULK_CHUNK)):
                    now = self._now()
                    self._insert_rows(table, [self._prepare(table, r, True, now) for r in chunk])
                    total += len(chunk)
                self._deferred.discard(table)
                self._create_indexes(table)  # inside the transaction: a duplicate rolls back
                self._conn.execute("COMMIT")
            except BaseException as error:
                self._deferred.discard(table)
                self._conn.execute("ROLLBACK")
                self._sync_fields(table)
                if isinstance(error, sqlite3.IntegrityError):
                    raise ValueError(f"{table}: duplicate sys_id in the rows loaded") from error
                raise
            finally:
                self._invalidate()
            if total >= 10_000:
                # Statistics let the planner pick the selective index (parm1) over `name`.
                self._conn.execute(f"ANALYZE {self.sql_table(table)}")
            return total

    def update(
        self, table: str, sys_id: str, values: Mapping[str, object], *, touch: bool = True
    ) -> dict[str, str] | None:
        """Update the given fields of one row (unknown fields, sys_id and creation ignored).

        `touch` sets `sys_updated_on` to the clock, as every Table API update does.
        Returns the row as stored, or None if there is no such row.
        """
        with self._lock:
            changes = {
                name: to_text(value)
                for name, value in values.items()
                if self.has_field(table, name) and name not in ("sys_id", "sys_created_on")
            }
            if touch:
                changes["sys_updated_on"] = format_time(self._clock.now())
            if changes:
                assignments = ", ".join(f"{quote_identifier(name)} = ?" for name in changes)
                cursor = self._conn.execute(
                    f"UPDATE {self.sql_table(table)} SET {assignments} WHERE sys_id = ?",
                    [*changes.values(), sys_id],
                )
                if cursor.rowcount:
                    self._invalidate()
            return self.get(table, sys_id)

    def delete(self, table: str, sys_id: str) -> bool:
        """Delete one row; returns whether it existed."""
        with self._lock:
            cursor = self._conn.execute(
                f"DELETE FROM {self.sql_table(table)} WHERE sys_id = ?", [sys_id]
            )
            self._invalidate()
            return cursor.rowcount > 0

    def put_rows(self, table: str, rows: Iterable[Mapping[str, object]], *, replace: bool) -> int:
        """Scenario editing: replace every row, or add rows (a known sys_id updates that row).

        New fields are created as seen; `sys_updated_on` is only changed when given.
        Returns the number of rows written.
        """
        with self._lock:
            self.declare(table)
            if replace:
                self._conn.execute(f"DELETE FROM {self.sql_table(table)}")
                self._invalidate()
                return self.bulk_load(table, rows)
            count = 0
            for values in rows:
                sys_id = to_text(values.get("sys_id", ""))
                if sys_id and self.get(table, sys_id) is not None:
                    self._add_fields(table, [n for n in values if "." not in n])
                    self.update(table, sys_id, values, touch=False)
                else:
                    self.insert(table, values, add_fields=True)
                count += 1
            return count

    # -- reads -------------------------------------------------------------------------------

    def get(self, table: str, sys_id: str) -> dict[str, str] | None:
        """One row with every field, or None."""
        with self._lock:
            cursor = self._conn.execute(
                f"SELECT * FROM {self.sql_table(table)} WHERE sys_id = ?", [sys_id]
            )
            row = cursor.fetchone()
            if row is None:
                return None
            names = [column[0] for column in cursor.description]
            return dict(zip(names, row, strict=True))

    def rows(self, table: str) -> list[dict[str, str]]:
        """Every row of `table` with every field, in insertion order."""
        with self._lock:
            cursor = self._conn.execute(f"SELECT * FROM {self.sql_table(table)} ORDER BY rowid")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    def count(self, table: str, query: Query) -> int:
        """How many rows match `query` (unknown fields dropped)."""
        compiled = compile_query(query, table, self)
        with self._lock:
            return self._count(table, compiled.where, compiled.params)

    def _count(self, table: str, where: str, params: tuple[str, ...]) -> int:
        # Paging asks for the same total on every page: keep it until the next write.
        key = (table, where, params)
        cached = self._counts.get(key)
        if cached is None:
            sql = f"SELECT COUNT(*) FROM {self.sql_table(table)} AS t0 WHERE {where}"
            cached = int(self._conn.execute(sql, params).fetchone()[0])
            self._counts[key] = cached
        return cached

    def _ordered_ids(
        self, table: str, where: str, order_by: str, params: tuple[str, ...]
    ) -> array[int]:
        """The rowids of every matching row, in result order; kept until the next write.

        Paging by offset then costs one page, not a re-run of the filter and sort per page,
        and the total comes for free. The results are the same as re-running the query.
        """
        key = (table, where, order_by, params)
        ids = self._orders.get(key)
        if ids is None:
            sql = (
                f"SELECT t0.rowid FROM {self.sql_table(table)} AS t0 "
                f"WHERE {where} ORDER BY {order_by}"
            )
            ids = array("q", (row[0] for row in self._conn.execute(sql, params)))
            self._orders[key] = ids
            if len(self._orders) > _CACHED_RESULTS:
                self._orders.popitem(last=False)
        else:
            self._orders.move_to_end(key)
        return ids

    def select(
        self,
        table: str,
        query: Query,
        fields: Sequence[str] | None,
        *,
        limit: int,
        offset: int,
        count: bool = True,
        hide: Query | None = None,
    ) -> Page:
        """One page of rows matching `query`, with the requested fields (None: all fields).

        `hide` is a row-level ACL applied after the limit, as on a real instance: the page
        comes back short while the total still counts the hidden rows.
        """
        compiled = compile_query(query, table, self)
        with self._lock:
            names, expressions = compile_fields(
                fields if fields is not None else self._fields[table], table, self
            )
            params: list[Any] = []
            selected = list(expressions)
            if hide is not None and hide.groups:
                hidden = compile_query(hide, table, self, alias_prefix="h")
                selected.append(f"CASE WHEN ({hidden.where}) THEN 1 ELSE 0 END")
                params.extend(hidden.params)
            select_list = ", ".join(selected) if selected else "NULL"
            source = self.sql_table(table)
            total: int | None = None
            if count or offset > 0:
                ids = self._ordered_ids(
                    table, compiled.where, compiled.sort_order_by, compiled.params
                )
                total = len(ids)
                wanted = json.dumps(ids[offset : offset + limit].tolist())
                sql = (
                    f"SELECT {select_list} FROM json_each(?) AS page "
                    f"JOIN {source} AS t0 ON t0.rowid = page.value ORDER BY page.key"
                )
                result = self._conn.execute(sql, [*params, wanted]).fetchall()
            else:
                sql = (
                    f"SELECT {select_list} FROM {source} AS t0 WHERE {compiled.where} "
                    f"ORDER BY {compiled.order_by} LIMIT ? OFFSET ?"
                )
                params.extend(compiled.params)
                result = self._conn.execute(sql, [*params, limit, offset]).fetchall()
            hidden_count = 0
            if len(selected) > len(expressions):
                kept = [row[:-1] for row in result if not row[-1]]
                hidden_count = len(result) - len(kept)
                result = kept
            elif not selected:
                result = [() for _ in result]
            return Page(
                tuple(names), result, total if count else None, hidden_count, compiled.ignored
            )
