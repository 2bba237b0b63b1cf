"""The doctor's lines and its table checks: reachable, credentials, each table readable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.text import Text

from snowcheck.errors import InstanceError
from snowcheck.output.report import Terminal
from snowcheck.output.text import literal
from snowcheck.pull import (
    read_associations,
    read_open_issues,
)
from snowcheck.records import (
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
    ROLE_TABLE,
    USER_ROLE_TABLE,
    USER_TABLE,
    format_time,
)
from snowcheck.rules import LOGIN_EVENTS, SCHEDULING_MARGIN
from snowcheck.servicenow.errors import InstanceHibernating
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.query import and_, chunk_in, eq, in_
from snowcheck.servicenow.session import secrets_of
from snowcheck.settings import CheckSettings, WriteSettings

OK = "OK"
FAIL = "FAIL"
SKIP = "SKIP"
WARN = "WARN"

_STYLES = {OK: "bold green", FAIL: "bold red", SKIP: "yellow", WARN: "bold yellow"}

ATTEMPTS = 2
"""Attempts per request: a doctor should answer quickly, not ride out a long outage."""
MAX_WAIT = 5.0
"""Longest wait between two attempts, in seconds."""

MAX_SKEW = timedelta(minutes=5)
"""Clock skew above which the clock check fails."""
DATE_RESOLUTION = timedelta(seconds=1)
"""The Date header is in whole seconds."""

PROBE_SYS_ID = "snowcheck-doctor-write-probe-not-a-record"
"""A sys_id the instance never generates (sys_ids are 32 hexadecimal digits)."""

SAMPLE_USERS = 20
"""Role holders looked up in sys_user; enough to prove access, small enough for one URL."""
EVENT_QUERY_BUDGET = 2000
"""URL-encoded characters of the user names in the sysevent probe (one chunk only)."""
RECENT_EVENTS = timedelta(minutes=10)
"""The sysevent probe's period when no MID user name is known (bounded: the table is big)."""

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Line:
    """One check's result."""

    status: str
    name: str
    detail: str = ""
    fix: str = ""


def text_of(value: Any) -> str:
    if isinstance(value, dict):  # a reference left as {link, value}
        value = value.get("value", "")
    return value if isinstance(value, str) else ""


def grant(user: str, table: str, access: str = "read") -> str:
    """How to get ``access`` to ``table``, naming the role."""
    advice = f"grant {user} the admin role, or a custom role with a {access} ACL on {table}"
    if table.startswith("ecc_agent"):
        advice += (
            "; not mid_server, which would make the checker itself a MID Server user "
            "the check reports"
        )
    return advice


def _empty(user: str, table: str) -> str:
    return f"no rows visible: the table is empty or an ACL hides them; {grant(user, table)}"


def as_seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f} s"


class Report:
    """Prints the lines (data literally) and remembers whether one failed."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.failed = False

    def emit(self, line: Line) -> None:
        if line.status == FAIL:
            self.failed = True
        parts: list[str | tuple[str, str]] = [
            (f"{line.status:<4}", _STYLES[line.status]),
            "  ",
            (line.name, "bold"),
        ]
        if line.detail:
            parts += [": ", literal(line.detail)]
        if line.fix:
            parts += [("; fix: ", "bold"), literal(line.fix)]
        self.terminal.out.print(Text.assemble(*parts), soft_wrap=True)


def _unreachable(exc: InstanceError) -> bool:
    """Whether a failed read means the instance did not answer usefully at all.

    No status: no HTTP answer (connection, DNS, TLS, timeout). A 2xx status on an
    error: the answer was not the Table API's JSON (a hibernation or login page). 429
    and 5xx after the retries: unavailable. Anything else (401, 403, 404, 400) came
    from a Table API that answered.
    """
    status = exc.status
    return status is None or 200 <= status < 300 or status == 429 or status >= 500


class TableChecks:
    """The reachability and read checks, against one Instance; state flows down the list."""

    def __init__(
        self,
        instance: Instance,
        settings: CheckSettings,
        write: WriteSettings,
        emit: Callable[[Line], None],
    ) -> None:
        self.instance = instance
        self.settings = settings
        self.write = write
        self.emit = emit
        self.user = instance.connection.user
        self.secrets = secrets_of(instance.connection)
        self.clock_sample: tuple[datetime, datetime] | None = None
        """The local clock just before and after the request that set ``instance.now``."""
        self.role_ids: list[str] = []
        self.mid_server_role: str | None = None
        self.holder_ids: list[str] = []
        self.user_names: set[str] = set()
        self.open_issues: Rows | None = None

    def _said(self, exc: InstanceError) -> str:
        """An error's text; Instance already keeps secrets out, this makes sure of it."""
        text = str(exc)
        for secret in self.secrets:
            text = text.replace(secret, "****")
        return text

    def _read(self, table: str, read: Callable[[], Rows]) -> Rows | InstanceError:
        """Run one read, catching its error, and sample the clocks around the first answer."""
        fresh = self.instance.now is None
        before = datetime.now(UTC)
        try:
            return read()
        except InstanceError as exc:
            return exc
        finally:
            if fresh and self.instance.now is not None:
                self.clock_sample = (before, datetime.now(UTC))

    # -- reachable, credentials ------------------------------------------------------------

    def _reached(self, first: Rows | InstanceError) -> bool:
        base_url = self.instance.connection.base_url
        if isinstance(first, InstanceError) and _unreachable(first):
            message = self._said(first)
            name = "instance reachable"
            if isinstance(first, InstanceHibernating):
                name = "instance reachable (hibernating)"
            self.emit(Line(FAIL, name, message))
            self.emit(Line(SKIP, "remaining checks", "they need an instance that answers"))
            return False
        status = first.status if isinstance(first, InstanceError) else 200
        self.emit(Line(OK, "instance reachable", f"{base_url} answered JSON (HTTP {status})"))
        if isinstance(first, InstanceError) and first.status == 401:
            for line in self._refused(first):
                self.emit(line)
            self.emit(Line(SKIP, "remaining checks", "they need accepted credentials"))
            return False
        for line in self._accepted():
            self.emit(line)
        return True

    def _refused(self, exc: InstanceError) -> list[Line]:
        """The lines for a first read refused with 401 (the doctor names the schemes)."""
        return [Line(FAIL, "credentials", self._said(exc))]

    def _accepted(self) -> list[Line]:
        """The lines once the first read got through (the doctor adds the token's expiry)."""
        return [Line(OK, "credentials", f"{self.user} accepted")]

    # -- reads -------------------------------------------------------------------------------

    def _denied(self, table: str, exc: InstanceError) -> Line:
        name = f"read {table}"
        if exc.status in (403, 404):
            return Line(
                FAIL,
                name,
                f"read access to {table} denied (HTTP {exc.status})",
                grant(self.user, table),
            )
        return Line(FAIL, name, self._said(exc))

    def _visible(
        self, table: str, read: Callable[[], Rows], *, required: bool = True
    ) -> Rows | None:
        """The rows read, or None after a FAIL line: access denied, or (when required) none
        visible, which on an instance with MID Servers means an ACL hides them."""
        rows = self._read(table, read)
        if isinstance(rows, InstanceError):
            self.emit(self._denied(table, rows))
            return None
        if required and not rows:
            self.emit(Line(FAIL, f"read {table}", _empty(self.user, table)))
            return None
        return rows

    def _roles(self, rows: Rows | InstanceError) -> None:
        name = f"read {ROLE_TABLE}"
        if isinstance(rows, InstanceError):
            self.emit(self._denied(ROLE_TABLE, rows))
            return
        self.role_ids = sorted({text_of(row.get("sys_id")) for row in rows} - {""})
        mid = [row for row in rows if row.get("name") == "mid_server"]
        if not rows:
            self.emit(Line(FAIL, name, _empty(self.user, ROLE_TABLE)))
        elif not mid:
            self.emit(
                Line(
                    FAIL,
                    name,
                    "no mid_server role visible: an ACL hides it",
                    grant(self.user, ROLE_TABLE),
                )
            )
        else:
            self.mid_server_role = text_of(mid[0].get("sys_id")) or None
            self.emit(Line(OK, name, "the mid_server role is visible"))

    def _grants(self) -> None:
        table = USER_ROLE_TABLE
        if self.mid_server_role:
            query = eq("role", self.mid_server_role)
        else:
            query = eq("role.name", "mid_server")
        rows = self._visible(table, lambda: self.instance.fetch(table, query, ("sys_id", "user")))
        if rows is None:
            return
        self.holder_ids = sorted({text_of(row.get("user")) for row in rows} - {""})
        self.emit(Line(OK, f"read {table}", f"{len(rows)} grants of mid_server visible"))

    def _users(self) -> None:
        table = USER_TABLE
        # The account's own record always exists; role holders exist unless deleted.
        query = eq("user_name", self.user)
        sample = self.holder_ids[:SAMPLE_USERS]
        if sample:
            query = f"{query}^OR{in_('sys_id', sample)}"
        rows = self._visible(
            table, lambda: self.instance.fetch(table, query, ("sys_id", "user_name"))
        )
        if rows is None:
            return
        self.user_names.update(text_of(row.get("user_name")) for row in rows)
        self.emit(Line(OK, f"read {table}", f"{len(rows)} user records visible"))

    def _associations(self) -> None:
        table = CONFIG_TABLE
        rows = self._visible(table, lambda: read_associations(self.instance))
        if rows is None:
            return
        self.user_names.update(text_of(row.get("value")) for row in rows)
        self.emit(
            Line(OK, f"read {table}", f"{len(rows)} mid.instance.username associations visible")
        )

    def _mid_servers(self) -> None:
        table = MID_TABLE
        rows = self._visible(table, lambda: self.instance.fetch(table, "", ("sys_id",)))
        if rows is None:
            return
        self.emit(Line(OK, f"read {table}", f"{len(rows)} MID Servers visible"))

    def _events(self) -> None:
        table = EVENT_TABLE
        now = self.instance.now or datetime.now(UTC)
        names = sorted(self.user_names - {""})
        chunk = next(chunk_in("parm1", names, EVENT_QUERY_BUDGET), "")
        since = now - (self.settings.window + SCHEDULING_MARGIN if chunk else RECENT_EVENTS)
        # Bounded by time (the table is large and rotates) and by the MID users' names.
        query = and_(in_("name", LOGIN_EVENTS), f"sys_created_on>{format_time(since)}", chunk)
        rows = self._visible(
            table, lambda: self.instance.fetch(table, query, ("sys_id",)), required=False
        )
        if rows is None:
            return
        who = "of the MID users " if chunk else ""
        if not rows:
            self.emit(
                Line(
                    OK,
                    f"read {table}",
                    f"note: no login events {who}since {format_time(since)} UTC visible: "
                    "none happened, or an ACL hides them; if MID Servers logged in meanwhile, "
                    + grant(self.user, table),
                )
            )
            return
        self.emit(
            Line(
                OK,
                f"read {table}",
                f"{len(rows)} login events {who}since {format_time(since)} UTC visible",
            )
        )

    def _issues(self) -> None:
        table = ISSUE_TABLE
        source = self.settings.source
        rows = self._visible(table, lambda: read_open_issues(self.instance, source), required=False)
        if rows is None:
            return
        self.open_issues = rows
        if not rows:
            self.emit(
                Line(
                    OK,
                    f"read {table}",
                    f"note: no open issues of source {source} visible: none are open, or an "
                    "ACL hides them; if the instance shows some, " + grant(self.user, table),
                )
            )
            return
        self.emit(Line(OK, f"read {table}", f"{len(rows)} open issues of source {source} visible"))

    # -- write -------------------------------------------------------------------------------
