"""``snowcheck watch``: follow a fix until its issue is resolved, one check per interval.

The seed's remediation procedure as one command: after fixing the cause, re-run the
check with a 5-minute window, again and again, until no finding remains (for the users
named with ``--user``, or at all). Exit 0 when clear, 3 when the timeout passed with
findings left, 1 when a round could not complete (its reads are retried as every read
is), 2 for usage errors.

Without ``--apply`` nothing is written. With it, each round writes its plan under the
instance lock, once; with ``--user`` only the changes whose messages name those users
(so following one fix never resolves another user's issue); without ``--user`` a window
shorter than the default that would resolve issues needs ``--force``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from snowcheck import compare
from snowcheck.check import Outcome
from snowcheck.commands.check import terminal_prompt
from snowcheck.commands.live import live_check
from snowcheck.errors import ConfigError, PartialWrite
from snowcheck.guards import raise_if_short_window_resolves
from snowcheck.locking import InstanceLock, LockHeld, default_lock_path
from snowcheck.messages import TEMPLATE_SETS
from snowcheck.output.report import Terminal, change_json
from snowcheck.output.text import data, literal
from snowcheck.plan import Change
from snowcheck.records import format_time
from snowcheck.rules import Finding
from snowcheck.servicenow.instance import Instance
from snowcheck.settings import (
    CheckSettings,
    WatchOptions,
    WriteSettings,
    check_settings,
    load_file,
    resolve_connection,
    select_profile,
    write_settings,
)
from snowcheck.writeback import WriteBack

EXIT_CLEAR = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 3
WATCH_WINDOW = "5m"
"""The window of a watch unless --window says otherwise: a fix shows within minutes."""

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds of ``30s``, ``0.2s``, ``5m``, ``1h`` or a bare number of seconds."""
    match = _DURATION.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"invalid {option} {text!r}: give a positive duration such as 30s or 5m")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


@dataclass(frozen=True)
class Round:
    """What one round of a watch saw, and wrote."""

    number: int
    now: datetime
    findings: tuple[Finding, ...]
    """The findings left (of the followed users, when --user was given)."""
    appeared: tuple[Finding, ...]
    """Findings not there in the previous round (every one in the first)."""
    resolved: tuple[Finding, ...]
    """Findings of the previous round gone in this one."""
    written: tuple[Change, ...] | None
    """The changes written with --apply; None when nothing was to be written."""


def _key(finding: Finding) -> tuple[str, str, str]:
    return (finding.rule, finding.user, finding.message)


def named_user(message: str) -> str | None:
    """The user an issue message names (folded as the instance compares), by every wording."""
    folded = compare.fold(message)
    for templates in TEMPLATE_SETS.values():
        for template in templates.templates.values():
            for pattern in template.patterns():
                match = pattern.fullmatch(folded)
                if match:
                    return compare.fold(match.group("user"))
    return None


def changes_for_users(outcome: Outcome, users: Iterable[str]) -> tuple[Change, ...]:
    """The plan's changes whose messages name one of ``users`` (compared as the instance does)."""
    wanted = {compare.fold(user) for user in users}
    by_message = {finding.message: finding.user for finding in outcome.evaluation.findings}
    kept = []
    for change in outcome.plan.changes:
        user = by_message.get(change.message)
        folded = compare.fold(user) if user is not None else named_user(change.message)
        if folded in wanted:
            kept.append(change)
    return tuple(kept)


class Watch:
    """Rounds of a check on one instance until no (followed) finding is left or time is up."""

    def __init__(
        self,
        instance: Instance,
        settings: CheckSettings,
        options: WatchOptions,
        *,
        warn: Callable[[str], None],
        write: WriteSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = instance
        self.settings = settings
        self.options = options
        self.interval = parse_duration(options.interval, "--interval")
        self.timeout = parse_duration(options.timeout, "--timeout")
        self.warn = warn
        self.write = write or WriteSettings()
        self.sleep = sleep
        self.clock = clock
        self.writer = WriteBack(
            instance, batch=self.write.batch, batch_items=self.write.batch_items
        )
        self._previous: tuple[Finding, ...] = ()

    def run(self, show: Callable[[Round], None]) -> int:
        """Round after round, each shown; the exit status (a round that fails raises)."""
        started = self.clock()
        number = 0
        while True:
            number += 1
            current = self.round(number)
            show(current)
            if not current.findings:
                return EXIT_CLEAR
            left = self.timeout - (self.clock() - started)
            if left <= 0:
                return EXIT_TIMEOUT
            self.sleep(min(self.interval, left))

    def round(self, number: int) -> Round:
        """One check, its plan written (with --apply) under the instance lock."""
        options = self.options
        with contextlib.ExitStack() as held:
            writing = options.apply
            if writing and not options.no_lock:
                base_url = self.instance.connection.base_url
                path = options.lock_file or default_lock_path(base_url, os.environ)
                try:
                    held.enter_context(InstanceLock(path))
                except LockHeld as exc:
                    self.warn(f"{exc}; round {number} writes nothing")
                    writing = False
            checked = live_check(
                self.instance, self.settings, apply=False, force=options.force, warn=self.warn
            )
            written = self._write(checked.outcome) if writing else None
        if number == 1:
            self._warn_of_unknown_users(checked.outcome)
        findings = self.followed(checked.outcome.evaluation.findings)
        before = {_key(finding) for finding in self._previous}
        after = {_key(finding) for finding in findings}
        result = Round(
            number=number,
            now=checked.outcome.snapshot.now,
            findings=findings,
            appeared=tuple(f for f in findings if _key(f) not in before),
            resolved=tuple(f for f in self._previous if _key(f) not in after),
            written=written,
        )
        self._previous = findings
        return result

    def _warn_of_unknown_users(self, outcome: Outcome) -> None:
        """A followed name the check read nowhere is likely a typo: it would be clear at once."""
        inventory = outcome.inventory
        known = {compare.fold(user.user_name) for user in inventory.users}
        known |= {compare.fold(config.value) for config in inventory.configs}
        for user in self.options.users:
            if compare.fold(user) not in known:
                self.warn(
                    f"{user} is neither a mid_server role holder nor named by a "
                    "mid.instance.username: no finding can name it (is the name right?)"
                )

    def followed(self, findings: Sequence[Finding]) -> tuple[Finding, ...]:
        if not self.options.users:
            return tuple(findings)
        wanted = {compare.fold(user) for user in self.options.users}
        return tuple(f for f in findings if compare.fold(f.user) in wanted)

    def _write(self, outcome: Outcome) -> tuple[Change, ...]:
        plan = outcome.plan
        options = self.options
        if options.users:
            plan = replace(plan, changes=changes_for_users(outcome, options.users))
        else:
            raise_if_short_window_resolves(
                plan,
                window=self.settings.window,
                force=options.force,
                advice="name the users you follow with --user",
            )
        plan.raise_if_unsafe(saw_mid_users=outcome.evaluation.saw_mid_users, force=options.force)
        if not plan.changes:
            return ()
        return self.writer.apply(plan)


# Showing the rounds ----------------------------------------------------------------------------


def _users(findings: Iterable[Finding]) -> str:
    return ", ".join(dict.fromkeys(literal(finding.user) for finding in findings))


def round_line(current: Round) -> str:
    """One line per round: when, what is left, what changed, what was written."""
    left = len(current.findings)
    shown = dict.fromkeys(literal(finding.user) for finding in current.findings)
    names = ", ".join(list(shown)[:3]) + (", ..." if len(shown) > 3 else "")
    parts = [f"round {current.number} {format_time(current.now)}: {left} left"]
    if names:
        parts[0] += f" ({names})"
    if current.resolved:
        parts.append(f"{len(current.resolved)} resolved ({_users(current.resolved)})")
    if current.appeared and current.number > 1:
        parts.append(f"{len(current.appeared)} new ({_users(current.appeared)})")
    if current.written is not None:
        parts.append(f"wrote {len(current.written)}")
    return "; ".join(parts)


def finding_json(finding: Finding) -> dict[str, Any]:
    return {"rule": finding.rule, "user": finding.user, "message": finding.message}


def round_json(current: Round) -> dict[str, Any]:
    """One JSON Lines record: round, now, findings left, changes since the last round."""
    return {
        "round": current.number,
        "now": format_time(current.now),
        "findings": [finding_json(finding) for finding in current.findings],
        "changes": {
            "appeared": [finding_json(finding) for finding in current.appeared],
            "resolved": [finding_json(finding) for finding in current.resolved],
        },
        "written": None
        if current.written is None
        else [change_json(change) for change in current.written],
    }


def round_view(current: Round) -> Group:
    """The live view: the findings left and what changed since the last round."""
    table = Table(title=round_line(current), title_justify="left", expand=False)
    table.add_column("User", no_wrap=True)
    table.add_column("Rule", no_wrap=True)
    table.add_column("Message", overflow="fold", ratio=1)
    for finding in current.findings:
        table.add_row(data(finding.user), data(finding.rule), data(finding.message))
    changed = [Text(f"- {literal(f.user)}: {f.rule}", "green") for f in current.resolved]
    if current.number > 1:
        changed += [Text(f"+ {literal(f.user)}: {f.rule}", "red") for f in current.appeared]
    return Group(table, *changed)


def _show(
    terminal: Terminal, options: WatchOptions, stack: contextlib.ExitStack
) -> Callable[[Round], None]:
    out = terminal.out
    if options.format == "json":

        def show_json(current: Round) -> None:
            out.file.write(json.dumps(round_json(current), ensure_ascii=False) + "\n")
            out.file.flush()

        return show_json
    if options.quiet:
        return lambda current: None
    if out.is_terminal:
        live = stack.enter_context(Live(console=out, auto_refresh=False, transient=False))
        return lambda current: live.update(round_view(current), refresh=True)
    return lambda current: out.print(Text(round_line(current)), soft_wrap=True)


def run_watch(
    options: WatchOptions,
    terminal: Terminal,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """``snowcheck watch``: its exit status (errors it cannot report itself are raised)."""
    where = options.connection
    profile = select_profile(load_file(where.config, os.environ), where.profile)
    rules = options.rules
    if rules.window is None and "window" not in profile:
        rules = replace(rules, window=WATCH_WINDOW)
    settings = check_settings(rules, profile, terminal.warn)
    write = write_settings(profile)
    if options.apply and not write.allowed:
        raise ConfigError(
            f"profile {where.profile!r} does not allow --apply (apply = false in the config)"
        )
    parse_duration(options.interval, "--interval")
    parse_duration(options.timeout, "--timeout")
    resolved = resolve_connection(where, profile, prompt=terminal_prompt())
    for warning in resolved.warnings:
        terminal.warn(warning)
    with Instance(resolved.connection) as instance, contextlib.ExitStack() as stack:
        watch = Watch(instance, settings, options, warn=terminal.warn, write=write, sleep=sleep)
        try:
            code = watch.run(_show(terminal, options, stack))
        except PartialWrite as exc:
            terminal.partial_write(exc)  # what was and was not written, as check shows it
            raise
    followed = f" for {', '.join(options.users)}" if options.users else ""
    if code == EXIT_CLEAR:
        terminal.info(f"clear: no finding left{followed}")
    else:
        terminal.info(f"timeout after {options.timeout}: findings left{followed}")
    return code
