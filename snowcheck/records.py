"""Typed, frozen records of the seven tables, converted once from raw Table API rows.

Raw rows hold strings: references arrive either as a plain sys_id or as a
``{"link", "value"}`` object, nulls as empty strings, dates as
``YYYY-MM-DD HH:MM:SS`` in UTC. Nothing past this module sees a raw row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from snowcheck import compare
from snowcheck.errors import DataError

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

ROLE_TABLE = "sys_user_role"
USER_ROLE_TABLE = "sys_user_has_role"
USER_TABLE = "sys_user"
CONFIG_TABLE = "ecc_agent_config"
MID_TABLE = "ecc_agent"
EVENT_TABLE = "sysevent"
ISSUE_TABLE = "ecc_agent_issue"
PROPERTY_TABLE = "sys_properties"

TABLES = (
    ROLE_TABLE,
    USER_ROLE_TABLE,
    USER_TABLE,
    CONFIG_TABLE,
    MID_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
)

OPTIONAL_TABLES = (PROPERTY_TABLE,)
"""Tables only the advisories read; a snapshot may hold them, an older one does not."""

ALL_MID_SERVERS = "all_mid_servers"
"""An extra read: ecc_agent rows of every status, not only the Down ones the rules need."""
CLONE_ISSUES = "clone_issues"
"""An extra read: the open ecc_agent_issue rows of source InstanceClone, besides our own."""
PROPERTIES = PROPERTY_TABLE
"""An extra read: the sys_properties rows of the MID Server version."""
EXTRA_READS = (ALL_MID_SERVERS, CLONE_ISSUES, PROPERTIES)

Row = Mapping[str, Any]


def parse_time(value: str) -> datetime:
    """Parse an instance date (``YYYY-MM-DD HH:MM:SS``, UTC) into an aware datetime."""
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """Format an aware datetime the way the instance stores it (UTC)."""
    return value.astimezone(UTC).strftime(DATE_FORMAT)


class _Reader:
    """Reads the fields of one raw row, naming table, sys_id and field on any problem."""

    def __init__(self, table: str, row: Any) -> None:
        if not isinstance(row, Mapping):
            raise DataError(table, "", "(row)", f"is a {type(row).__name__}, not an object")
        self.table = table
        self.row = row
        raw_id = row.get("sys_id", "")
        self.sys_id = raw_id if isinstance(raw_id, str) else ""

    def fail(self, field: str, problem: str) -> DataError:
        return DataError(self.table, self.sys_id, field, problem)

    def _raw(self, field: str, required: bool) -> Any:
        if field not in self.row:
            if required:
                raise self.fail(field, "is missing")
            return ""
        value = self.row[field]
        return "" if value is None else value

    def text(self, field: str, *, required: bool = True) -> str:
        value = self._raw(field, required)
        if not isinstance(value, str):
            raise self.fail(field, f"should be a string, got {type(value).__name__}")
        return value

    def nonempty(self, field: str) -> str:
        value = self.text(field)
        if value == "":
            raise self.fail(field, "is empty")
        return value

    def reference(self, field: str, *, required: bool = True) -> str:
        value = self._raw(field, required)
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and isinstance(value.get("value"), str):
            return str(value["value"])
        raise self.fail(field, "should be a sys_id or a {link, value} reference")

    def boolean(self, field: str, *, required: bool = True, default: bool = False) -> bool:
        value = self._raw(field, required)
        if value == "" and not required:
            return default
        # Identity, not equality: 1 == True, and a number is not a boolean string.
        if value == "true" or value is True:
            return True
        if value == "false" or value is False:
            return False
        raise self.fail(field, f"should be 'true' or 'false', got {value!r}")

    def optional_boolean(self, field: str) -> bool | None:
        """A boolean, or None when the row lacks the field or leaves it empty."""
        if self._raw(field, False) == "":
            return None
        return self.boolean(field)

    def optional_text(self, field: str) -> str | None:
        """A string, or None when the row lacks the field (an empty value stays empty)."""
        if field not in self.row:
            return None
        return self.text(field)

    def integer(self, field: str) -> int:
        value = self._raw(field, True)
        if value == "":
            return 0
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.fail(field, f"should be a whole number, got {value!r}")
        try:
            return int(value)
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
            raise self.fail(
                field, f"should be a count, got a number of {len(value)} digits"
            ) from None

    def time(self, field: str, *, required: bool = True) -> datetime | None:
        value = self.text(field, required=required)
        if value == "":
            if required:
                raise self.fail(field, "is empty")
            return None
        try:
            return parse_time(value)
        except ValueError:
            raise self.fail(field, f"should be a date YYYY-MM-DD HH:MM:SS, got {value!r}") from None


@dataclass(frozen=True)
class Role:
    """A row of sys_user_role."""

    sys_id: str
    name: str

    @classmethod
    def from_row(cls, row: Row) -> Role:
        r = _Reader(ROLE_TABLE, row)
        return cls(sys_id=r.nonempty("sys_id"), name=r.text("name"))


@dataclass(frozen=True)
class UserRole:
    """A row of sys_user_has_role: one user holding one role (inherited grants have rows too)."""

    user: str
    """sys_id of the sys_user."""
    role: str
    """sys_id of the sys_user_role."""

    @classmethod
    def from_row(cls, row: Row) -> UserRole:
        r = _Reader(USER_ROLE_TABLE, row)
        return cls(user=r.reference("user"), role=r.reference("role"))


@dataclass(frozen=True)
class User:
    """A row of sys_user."""

    sys_id: str
    user_name: str
    """The User ID: compared exactly with config values, as the database does with parm1."""
    active: bool
    sys_domain: str
    locked_out: bool
    password_needs_reset: bool | None = None
    """None when the row has no such field (a pull or snapshot from before the advisories)."""

    @classmethod
    def from_row(cls, row: Row) -> User:
        r = _Reader(USER_TABLE, row)
        return cls(
            sys_id=r.nonempty("sys_id"),
            user_name=r.text("user_name"),
            active=r.boolean("active"),
            sys_domain=r.reference("sys_domain", required=False) or "global",
            locked_out=r.boolean("locked_out", required=False),
            password_needs_reset=r.optional_boolean("password_needs_reset"),
        )


@dataclass(frozen=True)
class MidConfig:
    """A row of ecc_agent_config; the association rows have param_name mid.instance.username."""

    sys_id: str
    ecc_agent: str
    """sys_id of the MID Server; may be empty."""
    param_name: str
    value: str
    sys_domain: str

    @classmethod
    def from_row(cls, row: Row) -> MidConfig:
        r = _Reader(CONFIG_TABLE, row)
        return cls(
            sys_id=r.text("sys_id", required=False),
            ecc_agent=r.reference("ecc_agent", required=False),
            param_name=r.text("param_name"),
            value=r.text("value"),
            sys_domain=r.reference("sys_domain", required=False) or "global",
        )


@dataclass(frozen=True)
class MidServer:
    """A row of ecc_agent."""

    sys_id: str
    name: str
    status: str
    """Up, Down, Paused, Upgrading, ... (compared as the database does: DOWN is Down)."""
    last_refreshed: datetime | None
    user_name: str | None = None
    """The user the MID Server logged in as; None when the row has no such field."""
    validated: str | None = None
    """``true`` once an admin validated it (``false``, ``invalidated``, ... otherwise); None
    when the row has no such field."""
    version: str | None = None
    """The MID Server's build stamp; None when the row has no such field."""

    @classmethod
    def from_row(cls, row: Row) -> MidServer:
        r = _Reader(MID_TABLE, row)
        return cls(
            sys_id=r.nonempty("sys_id"),
            name=r.text("name"),
            status=r.text("status"),
            last_refreshed=r.time("last_refreshed", required=False),
            user_name=r.optional_text("user_name"),
            validated=r.optional_text("validated"),
            version=r.optional_text("version"),
        )


@dataclass(frozen=True)
class Event:
    """A row of sysevent (login, login.failed, login.authorization.failed are the ones used)."""

    sys_id: str
    name: str
    parm1: str
    """The user name the event is about."""
    parm2: str
    """For login.authorization.failed, the comma list of missing roles."""
    created_on: datetime

    @classmethod
    def from_row(cls, row: Row) -> Event:
        r = _Reader(EVENT_TABLE, row)
        created = r.time("sys_created_on")
        assert created is not None  # required=True never returns None
        return cls(
            sys_id=r.text("sys_id", required=False),
            name=r.text("name"),
            parm1=r.text("parm1"),
            parm2=r.text("parm2", required=False),
            created_on=created,
        )


@dataclass(frozen=True)
class Issue:
    """A row of ecc_agent_issue."""

    sys_id: str
    message: str
    """The column behind the UI label "Short description"; the issue's identity with source."""
    source: str
    state: str
    """new, acknowledged or resolved; empty is neither open nor resolved."""
    count: int
    last_detected: datetime | None
    mid_server: str
    sys_domain: str
    updated_on: datetime | None
    """sys_updated_on, which picks the issue to update among duplicates."""

    @property
    def is_open(self) -> bool:
        """``state != resolved`` as the database compares: an empty state is neither."""
        return compare.not_equal(self.state, "resolved")

    @classmethod
    def from_row(cls, row: Row) -> Issue:
        r = _Reader(ISSUE_TABLE, row)
        return cls(
            sys_id=r.nonempty("sys_id"),
            message=r.text("message"),
            source=r.text("source"),
            state=r.text("state"),
            count=r.integer("count"),
            last_detected=r.time("last_detected", required=False),
            mid_server=r.reference("mid_server", required=False),
            sys_domain=r.reference("sys_domain", required=False) or "global",
            updated_on=r.time("sys_updated_on", required=False),
        )


@dataclass(frozen=True)
class Property:
    """A row of sys_properties (mid.buildstamp and mid.version.override are the ones used)."""

    name: str
    value: str

    @classmethod
    def from_row(cls, row: Row) -> Property:
        r = _Reader(PROPERTY_TABLE, row)
        return cls(name=r.text("name"), value=r.text("value", required=False))


T = TypeVar("T")


def _convert(table: str, rows: Any, convert: Callable[[Row], T]) -> tuple[T, ...]:
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        raise DataError(table, "", "(table)", "should be a list of rows")
    return tuple(convert(row) for row in rows)


@dataclass(frozen=True)
class Snapshot:
    """What one pull saw: the instance's clock and the raw rows of each table."""

    now: datetime
    tables: Mapping[str, Sequence[Row]]
    clock_source: str = "instance"
    """Where ``now`` came from: "instance" (Date header), "local" (fallback) or "snapshot"."""
    extra_reads: frozenset[str] = frozenset()
    """Which of EXTRA_READS the tables hold; an older snapshot holds none."""
    why_unread: Mapping[str, str] = field(default_factory=dict)
    """Why an extra read the pull tried is missing (``advisories.advise``'s ``why_unread``)."""


@dataclass(frozen=True)
class Inventory:
    """The typed rows of one snapshot; the rules read only this."""

    roles: tuple[Role, ...]
    user_roles: tuple[UserRole, ...]
    users: tuple[User, ...]
    configs: tuple[MidConfig, ...]
    mid_servers: tuple[MidServer, ...]
    events: tuple[Event, ...]
    issues: tuple[Issue, ...]
    properties: tuple[Property, ...] = ()
    """sys_properties rows, read for the advisories only."""

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any]) -> Inventory:
        def rows(table: str) -> Iterable[Any]:
            return tables.get(table, ())  # type: ignore[no-any-return]

        return cls(
            roles=_convert(ROLE_TABLE, rows(ROLE_TABLE), Role.from_row),
            user_roles=_convert(USER_ROLE_TABLE, rows(USER_ROLE_TABLE), UserRole.from_row),
            users=_convert(USER_TABLE, rows(USER_TABLE), User.from_row),
            configs=_convert(CONFIG_TABLE, rows(CONFIG_TABLE), MidConfig.from_row),
            mid_servers=_convert(MID_TABLE, rows(MID_TABLE), MidServer.from_row),
            events=_convert(EVENT_TABLE, rows(EVENT_TABLE), Event.from_row),
            issues=_convert(ISSUE_TABLE, rows(ISSUE_TABLE), Issue.from_row),
            properties=_convert(PROPERTY_TABLE, rows(PROPERTY_TABLE), Property.from_row),
        )
