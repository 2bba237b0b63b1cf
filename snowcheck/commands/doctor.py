"""``snowcheck doctor``: everything a check needs, checked in order, one line each.

Each line starts with ``OK``, ``FAIL``, ``SKIP`` or ``WARN``, names the check, and on
a failure says how to fix it. Only ``FAIL`` makes the doctor fail. The checks:

1. configuration: instance, ``auth`` method and its secrets resolve as they would for a check;
2. instance reachable: the first read answers with JSON (a hibernating developer
   instance answers 200 with an HTML page and is named as such);
3. credentials: that read was not refused with 401, naming the ``auth`` method and an
   OAuth token's expiry; on a 401, the schemes the instance's ``WWW-Authenticate``
   advertises with the ``auth`` setting that would use each (doctor_login.py);
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
from datetime import timedelta
from typing import Any

from snowcheck.commands.check import terminal_prompt
from snowcheck.commands.doctor_login import accepted, refused
from snowcheck.commands.doctor_reads import (
    ATTEMPTS,
    DATE_RESOLUTION,
    FAIL,
    MAX_SKEW,
    MAX_WAIT,
    OK,
    PROBE_SYS_ID,
    SKIP,
    WARN,
    Line,
    Report,
    TableChecks,
    as_seconds,
    grant,
    text_of,
)
from snowcheck.errors import ConfigError, InstanceError
from snowcheck.messages import TEMPLATE_SETS, choose
from snowcheck.output.report import Terminal
from snowcheck.pull import read_roles
from snowcheck.records import ISSUE_TABLE, ROLE_TABLE
from snowcheck.servicenow.instance import Instance
from snowcheck.settings import (
    CheckSettings,
    ConnectionOptions,
    DoctorOptions,
    WriteSettings,
    check_settings,
    load_file,
    resolve_connection,
    select_profile,
    write_settings,
)


class _Doctor(TableChecks):
    """Every check after the configuration: the reads, then writing, wording and the clock."""

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

    def _refused(self, exc: InstanceError) -> list[Line]:
        return refused(self.instance, exc, self._said(exc))

    def _accepted(self) -> list[Line]:
        return accepted(self.instance)

    def _write(self) -> None:
        table = ISSUE_TABLE
        name = f"write {table}"
        if not self.write.allowed:
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
                        grant(self.user, table, "write"),
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
            text_of(row.get("message"))
            for row in self.open_issues
            if not text_of(row.get("mid_server"))
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
                    f"the instance's clock is {as_seconds(abs(skew))} {ahead} the local clock "
                    f"(more than {as_seconds(MAX_SKEW)}): times taken locally (cron, the fallback "
                    "without a Date header) shift the reporting window by as much",
                    "synchronise the local clock (NTP), or the proxy's if one stamps the Date "
                    "header",
                )
            )
            return
        self.emit(Line(OK, name, f"skew {abs(skew.total_seconds()):.0f} s"))


def doctor(
    terminal: Terminal,
    where: ConnectionOptions,
    profile: Mapping[str, Any],
    *,
    prompt: Callable[[str], str] | None,
    settings: CheckSettings,
    write: WriteSettings,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Run every check in order, one line each on ``terminal.out``; True if none failed.

    Writes nothing permanent. Configuration problems stop the list at the first line;
    an unreachable instance or refused credentials stop it after theirs.
    """
    report = Report(terminal)
    try:
        resolved = resolve_connection(where, profile, prompt=prompt, environ=environ)
    except ConfigError as exc:
        report.emit(Line(FAIL, "configuration", str(exc)))
        return False
    connection = resolved.connection
    report.emit(
        Line(
            OK,
            "configuration",
            f"{connection.base_url} as {connection.user} (auth {connection.login.method}); "
            f"window {settings.window}, "
            f"source {settings.source}, messages {settings.messages}",
        )
    )
    for warning in resolved.warnings:
        report.emit(Line(WARN, "configuration", warning))
    with Instance(connection, attempts=ATTEMPTS, max_wait=MAX_WAIT) as session:
        _Doctor(session, settings, write, report.emit).run()
    return not report.failed


def run_doctor(options: DoctorOptions, terminal: Terminal) -> int:
    """``snowcheck doctor``: exit 0 only if every check passed."""
    profile = select_profile(
        load_file(options.connection.config, os.environ), options.connection.profile
    )
    ok = doctor(
        terminal,
        options.connection,
        profile,
        prompt=terminal_prompt(),
        settings=check_settings(options.rules, profile, terminal.warn),
        write=write_settings(profile),
    )
    return 0 if ok else 1
