"""``snowcheck doctor``: everything a check needs, checked in order, one line each.

Each line starts with ``OK``, ``FAIL``, ``SKIP`` or ``WARN``, names the check, and on
a failure says how to fix it. Only ``FAIL`` makes the doctor fail. The checks:

1. configuration: instance, user and password resolve as they would for a check;
2. instance reachable: the first read answers with JSON (a hibernating developer
   instance answers 200 with an HTML page and is named as such);
3. credentials: that read was not refused with 401;
4. read access to each of the seven tables, with the query shapes the check uses and
   always bounded (see "What proves read access" below);
5. write access to ``ecc_agent_issue``, without writing anything (see below), or SKIP
   for a profile with ``apply = false``;
6. the message template set that matches the open issues on the instance, with a
   warning when the configured set differs;
7. the skew between the local clock and the instance's ``Date`` header.

What proves read access. A 403 (or a 404 on a list read, which an ACL can also cause)
proves that access is denied. An answer with rows proves it is granted. An empty
answer proves nothing by itself: the table may be empty, or a row-level ACL may hide
every row (the Table API then answers 200 with no rows, not 403). So each table is
asked for rows that must exist wherever MID Servers are in use, and an empty answer
is a failure for those tables: the ``mid_server`` role in ``sys_user_role``, its
grants in ``sys_user_has_role``, the account's own record and the role holders' in
``sys_user``, the ``mid.instance.username`` rows of ``ecc_agent_config``, and the MID
Servers in ``ecc_agent``. ``sysevent`` (login events of the window) and
``ecc_agent_issue`` (open issues) can legitimately be empty: there an empty answer is
OK with a note. A query for a sys_id that does not exist proves nothing: it is empty
whether access is granted or not.

What proves write access without writing. The check PATCHes open issues of
``ecc_agent_issue``. The doctor PATCHes, with an empty body, a sys_id that cannot
exist (it is not hexadecimal, so the instance never generated it). A table-level
write ACL refuses the request with 403 before the record is looked up; a request
that gets past it ends in 404 ("No Record found"). So 403 is a FAIL and 404 an OK
meaning "allowed to try". Nothing can be changed: the record does not exist, and the
body sets no field. What this cannot see: a create ACL that differs from the write
ACL, and record-level write ACLs (conditions on the record's own fields); only a real
``--apply`` meets those.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.text import Text

from snowcheck.connection import resolve_connection
from snowcheck.errors import ConfigError, InstanceError
from snowcheck.instance import Instance
from snowcheck.messages import TEMPLATE_SETS, choose
from snowcheck.pull import (
    read_associations,
    read_open_issues,
    read_roles,
)
from snowcheck.query import and_, chunk_in, eq, in_
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
from snowcheck.redact import Redactor
from snowcheck.render import Terminal, literal
from snowcheck.rules import LOGIN_EVENTS, SCHEDULING_MARGIN
from snowcheck.run import CheckSettings

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


def _text(value: Any) -> str:
    if isinstance(value, dict):  # a reference left as {link, value}
        value = value.get("value", "")
    return value if isinstance(value, str) else ""


def _grant(user: str, table: str, access: str = "read") -> str:
    """How to get ``access`` to ``table``, naming the role."""
    advice = f"grant {user} the admin role, or a custom role with a {access} ACL on {table}"
    if table.startswith("ecc_agent"):
        advice += (
            "; not mid_server, which would make the checker itself a MID Server user "
            "the check reports"
        )
    return advice


def _empty(user: str, table: str) -> str:
    return f"no rows visible: the table is empty or an ACL hides them; {_grant(user, table)}"


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f} s"


class _Report:
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


class _Doctor:
    """The checks after the configuration, against one Instance; state flows down the list."""

    def __init__(
        self,
        instance: Instance,
        settings: CheckSettings,
        profile: Mapping[str, Any],
        emit: Callable[[Line], None],
    ) -> None:
        self.instance = instance
        self.settings = settings
        self.profile = profile
        self.emit = emit
        self.user = instance.connection.user
        self.redactor = Redactor.for_login(instance.connection.user, instance.connection.password)
        self.clock_sample: tuple[datetime, datetime] | None = None
        """The local clock just before and after the request that set ``instance.now``."""
        self.role_ids: list[str] = []
        self.mid_server_role: str | None = None
        self.holder_ids: list[str] = []
        self.user_names: set[str] = set()
        self.open_issues: Rows | None = None

    def _said(self, exc: InstanceError) -> str:
        """An error's text; Instance already keeps secrets out, this makes sure of it."""
        return self.redactor(str(exc))

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

    def run(self) -> None:
        first = self._read(ROLE_TABLE, lambda: read_roles(self.instance))
        if not self._reached(first):
            return
        self._roles(first)
        self._grants()
        self._users()
        self._associations()
        self._mid_servers()
        self._events()
        self._issues()
        self._write()
        self._messages()
        self._clock()

    # -- reachable, credentials ------------------------------------------------------------

    def _reached(self, first: Rows | InstanceError) -> bool:
        base_url = self.instance.connection.base_url
        if isinstance(first, InstanceError) and _unreachable(first):
            message = self._said(first)
            name = "instance reachable"
            if "hibernat" in message.lower():
                name = "instance reachable (hibernating)"
            self.emit(Line(FAIL, name, message))
            self.emit(Line(SKIP, "remaining checks", "they need an instance that answers"))
            return False
        status = first.status if isinstance(first, InstanceError) else 200
        self.emit(Line(OK, "instance reachable", f"{base_url} answered JSON (HTTP {status})"))
        if isinstance(first, InstanceError) and first.status == 401:
            self.emit(
                Line(
                    FAIL,
                    "credentials",
                    f"{base_url} refused {self.user} (HTTP 401)",
                    "check user and password (SERVICENOW_USERNAME, SERVICENOW_PASSWORD or the "
                    "config file), and that the account may use basic authentication",
                )
            )
            self.emit(Line(SKIP, "remaining checks", "they need accepted credentials"))
            return False
        self.emit(Line(OK, "credentials", f"{self.user} accepted"))
        return True

    # -- reads -------------------------------------------------------------------------------

    def _denied(self, table: str, exc: InstanceError) -> Line:
        name = f"read {table}"
        if exc.status in (403, 404):
            return Line(
                FAIL,
                name,
                f"read access to {table} denied (HTTP {exc.status})",
                _grant(self.user, table),
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
        self.role_ids = sorted({_text(row.get("sys_id")) for row in rows} - {""})
        mid = [row for row in rows if row.get("name") == "mid_server"]
        if not rows:
            self.emit(Line(FAIL, name, _empty(self.user, ROLE_TABLE)))
        elif not mid:
            self.emit(
                Line(
                    FAIL,
                    name,
                    "no mid_server role visible: an ACL hides it",
                    _grant(self.user, ROLE_TABLE),
                )
            )
        else:
            self.mid_server_role = _text(mid[0].get("sys_id")) or None
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
        self.holder_ids = sorted({_text(row.get("user")) for row in rows} - {""})
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
        self.user_names.update(_text(row.get("user_name")) for row in rows)
        self.emit(Line(OK, f"read {table}", f"{len(rows)} user records visible"))

    def _associations(self) -> None:
        table = CONFIG_TABLE
        rows = self._visible(table, lambda: read_associations(self.instance))
        if rows is None:
            return
        self.user_names.update(_text(row.get("value")) for row in rows)
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
                    + _grant(self.user, table),
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
                    "ACL hides them; if the instance shows some, " + _grant(self.user, table),
                )
            )
            return
        self.emit(Line(OK, f"read {table}", f"{len(rows)} open issues of source {source} visible"))

    # -- write -------------------------------------------------------------------------------

    def _write(self) -> None:
        table = ISSUE_TABLE
        name = f"write {table}"
        if self.profile.get("apply", True) is False:
            self.emit(
                Line(SKIP, name, "the profile is dry-run only (apply = false): nothing is written")
            )
            return
        try:
            self.instance.patch(table, PROBE_SYS_ID, {})
        except InstanceError as exc:
            if exc.status == 404:
                self.emit(
                    Line(
                        OK,
                        name,
                        "allowed: an empty update of a record that does not exist got past the "
                        "table's write ACL (HTTP 404, not 403); nothing was written",
                    )
                )
            elif exc.status == 403:
                self.emit(
                    Line(
                        FAIL,
                        name,
                        f"write access to {table} denied (HTTP 403): --apply would fail",
                        _grant(self.user, table, "write"),
                    )
                )
            else:
                self.emit(Line(FAIL, name, self._said(exc)))
            return
        # 2xx: a record with that sys_id exists; the empty body changed none of its fields.
        self.emit(Line(OK, name, "allowed (an empty update was accepted; no field changed)"))

    # -- messages, clock -----------------------------------------------------------------------

    def _messages(self) -> None:
        name = "message templates"
        if self.open_issues is None:
            self.emit(Line(SKIP, name, f"needs read access to {ISSUE_TABLE}"))
            return
        messages = [
            _text(row.get("message"))
            for row in self.open_issues
            if not _text(row.get("mid_server"))
        ]
        configured = self.settings.messages
        if not messages:
            self.emit(
                Line(OK, name, f"no open issues to match; the check uses {configured} wording")
            )
            return
        detected = choose("auto", messages)
        matched = sum(detected.matches(message) for message in messages)
        if matched == 0:
            known = ", ".join(TEMPLATE_SETS)
            self.emit(
                Line(
                    WARN,
                    name,
                    f"none of the {len(messages)} open issues matches a known wording ({known}): "
                    "the check would resolve them and create new ones",
                )
            )
            return
        self.emit(
            Line(
                OK,
                name,
                f"{detected.name} (matches {matched} of {len(messages)} open issues)",
            )
        )
        if configured not in ("auto", detected.name):
            self.emit(
                Line(
                    WARN,
                    name,
                    f"configured {configured}, but the open issues use {detected.name} wording: "
                    "the check would resolve them and create duplicates in the other wording; "
                    f'use --messages {detected.name} (or auto), or messages = "{detected.name}"',
                )
            )

    def _clock(self) -> None:
        name = "clock"
        now = self.instance.now
        if now is None or self.clock_sample is None:
            self.emit(Line(SKIP, name, "no answer from the instance was read"))
            return
        if self.instance.clock_source == "local":
            self.emit(
                Line(OK, name, "note: the instance sent no Date header; the check uses local time")
            )
            return
        before, after = self.clock_sample
        # The Date header was stamped between the two local readings, truncated to a second.
        low, high = before - DATE_RESOLUTION, after
        if now > high:
            skew = now - high
        elif now < low:
            skew = now - low
        else:
            skew = timedelta(0)
        ahead = "ahead of" if skew > timedelta(0) else "behind"
        if abs(skew) > MAX_SKEW:
            self.emit(
                Line(
                    FAIL,
                    name,
                    f"the instance's clock is {_seconds(abs(skew))} {ahead} the local clock "
                    f"(more than {_seconds(MAX_SKEW)}): times taken locally (cron, the fallback "
                    "without a Date header) shift the reporting window by as much",
                    "synchronise the local clock (NTP), or the proxy's if one stamps the Date "
                    "header",
                )
            )
            return
        self.emit(Line(OK, name, f"skew {abs(skew.total_seconds()):.0f} s"))


def doctor(
    terminal: Terminal,
    *,
    instance: str | None,
    user: str | None,
    ca_bundle: str | None,
    profile: Mapping[str, Any],
    prompt: Callable[[str], str] | None,
    settings: CheckSettings,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Run every check in order, one line each on ``terminal.out``; True if none failed.

    Writes nothing permanent. Configuration problems stop the list at the first line;
    an unreachable instance or refused credentials stop it after theirs.
    """
    report = _Report(terminal)
    try:
        resolved = resolve_connection(
            instance=instance,
            user=user,
            ca_bundle=ca_bundle,
            config=profile,
            environ=os.environ if environ is None else environ,
            prompt=prompt,
        )
    except ConfigError as exc:
        report.emit(Line(FAIL, "configuration", str(exc)))
        return False
    connection = resolved.connection
    terminal.redactor.add_login(connection.user, connection.password)
    report.emit(
        Line(
            OK,
            "configuration",
            f"{connection.base_url} as {connection.user}; window {settings.window}, "
            f"source {settings.source}, messages {settings.messages}",
        )
    )
    for warning in resolved.warnings:
        report.emit(Line(WARN, "configuration", warning))
    with Instance(connection, attempts=ATTEMPTS, max_wait=MAX_WAIT) as session:
        _Doctor(session, settings, profile, report.emit).run()
    return not report.failed
