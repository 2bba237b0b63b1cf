"""Output: the rich report, the debug views and the JSON document; one object owns the consoles.

Data from the instance is printed literally: markup is never parsed from it,
and control characters (ANSI escapes included) are shown as inert escapes.
Reports go to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from snowcheck.check import Outcome
from snowcheck.errors import PartialWrite
from snowcheck.output.advisory_view import (
    advisories_brief,
    advisories_json,
    advisories_section,
)
from snowcheck.output.text import Glyphs, Trimmed, data, labelled, literal
from snowcheck.plan import Action, Change
from snowcheck.records import format_time
from snowcheck.remedies import hint
from snowcheck.rules import Finding

SCHEMA_VERSION = 1


def _duration(seconds: float) -> str:
    """``4h``, ``5m``, ``90s``: a window as the command line takes it."""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def finding_view(
    number: int, finding: Finding, marks: Glyphs, *, spaced: bool = True
) -> RenderableType:
    """A head line (rule, user, down MID Servers), the whole message, notes and the hint."""
    head = Text.assemble(f"{number:>2} ", (finding.rule, "cyan"), f" {marks.dot} ")
    head.append_text(data(finding.user, "bold"))
    if finding.down_mid_servers:
        head.append(f" {marks.dot} down: ")
        head.append_text(data(", ".join(finding.down_mid_servers)))
    message = Padding(data(finding.message), (0, 0, 0, 3))
    rows = [("note:", data(note)) for note in finding.notes]
    if hint(finding.rule):
        rows.append(("hint:", Text(hint(finding.rule), style="italic")))
    return Group(head, message, labelled(rows, 3), *([Text()] if spaced else []))


class Terminal:
    """Owns the stdout and stderr consoles; tests pass files and a fixed width."""

    def __init__(
        self,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        *,
        width: int | None = None,
        quiet: bool = False,
    ) -> None:
        self.out = Console(file=stdout or sys.stdout, width=width, highlight=False, emoji=False)
        self.err = Console(file=stderr or sys.stderr, width=width, highlight=False, emoji=False)
        self.quiet = quiet

    # Diagnostics ---------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.err.print(
                Text.assemble(("warning: ", "bold yellow"), literal(message)), soft_wrap=True
            )

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(Text(literal(message), style="dim"), soft_wrap=True)

    def error(self, message: str) -> None:
        # soft_wrap: one line whatever the width (cron and journald read it line by line).
        self.err.print(
            Text.assemble(("snowcheck: error: ", "bold red"), literal(message)), soft_wrap=True
        )

    # The report ----------------------------------------------------------------------------

    def report(
        self,
        outcome: Outcome,
        *,
        applied: Sequence[Change] | None,
        debug: int = 0,
        wide: bool = False,
        brief: bool = False,
    ) -> None:
        """The findings, the plan (or the changes ``applied``) and a one-line summary, on stdout.

        ``brief`` (the demo off a terminal): no blank line between findings, and the plan
        one line per change, naming the user, since the findings just above hold the messages.
        """
        from snowcheck.output.plan_diff import plan_brief, plan_view

        marks = Glyphs.for_console(self.out)
        self.out.print(self._heading(outcome, marks))
        self.out.print()
        if debug >= 1:
            self.debug(outcome, debug, self.out)
        self.out.print(Trimmed(self._findings(outcome, marks, spaced=not brief)))
        if brief:
            self.out.print(Trimmed(advisories_brief(outcome.advice, marks)))
        else:
            self.out.print(Trimmed(advisories_section(outcome.advice, marks, spaced=True)))
        changes = _changes(outcome, applied)
        if brief:
            plan = plan_brief(
                changes, marks, outcome.evaluation.findings, applied=applied is not None
            )
        else:
            plan = plan_view(
                changes, marks, applied=applied is not None, wide=wide, width=self.out.width
            )
        self.out.print(Trimmed(plan))
        self.out.print(self.summary(outcome, applied=applied))

    def _heading(self, outcome: Outcome, marks: Glyphs) -> Text:
        window = outcome.evaluation.window
        clock = {"local": " (local clock)", "snapshot": " (snapshot)"}.get(
            outcome.snapshot.clock_source, ""
        )
        dot = f" {marks.dot} "
        return Text.assemble(
            ("snowcheck ", "bold"),
            literal(outcome.instance),
            "\n",
            f"now {format_time(window.now)} UTC{clock}",
            dot,
            f"window {_duration(window.length.total_seconds())}",
            f" (events after {window.since:%H:%M:%S})",
            "\n",
            "source ",
            literal(outcome.source),
            dot,
            f"messages {outcome.evaluation.templates.name}",
        )

    def _findings(self, outcome: Outcome, marks: Glyphs, *, spaced: bool) -> RenderableType:
        findings = outcome.evaluation.findings
        if not findings:
            return Text.assemble(("Findings: ", "bold"), ("none", "green"), "\n")
        parts: list[RenderableType] = [Text(f"Findings ({len(findings)})", style="bold")]
        for number, finding in enumerate(findings, 1):
            parts.append(finding_view(number, finding, marks, spaced=spaced))
        if not spaced:
            parts.append(Text())
        return Group(*parts)

    def summary(self, outcome: Outcome, *, applied: Sequence[Change] | None) -> Text:
        """``7 findings · 2 advisories · plan: 2 create, 4 update · dry run, nothing written``.

        Too wide for the console, it breaks between two of its parts, never inside one.
        """
        marks = Glyphs.for_console(self.out)
        changes = _changes(outcome, applied)
        findings = len(outcome.evaluation.findings)
        order = (Action.CREATE, Action.UPDATE, Action.RESOLVE)
        counts = [(sum(c.action is action for c in changes), action) for action in order]
        parts = [f"{findings} finding{'s' if findings != 1 else ''}"]
        advisories = len(outcome.advice.advisories) if outcome.advice else 0
        if advisories:
            parts.append(f"{advisories} advisor{'ies' if advisories != 1 else 'y'}")
        if applied is not None:
            done = ", ".join(f"{n} {action.value}d" for n, action in counts if n)
            parts.append(f"applied: {done or 'nothing to write'}")
        elif changes:
            planned = ", ".join(f"{n} {action.value}" for n, action in counts if n)
            parts += [f"plan: {planned}", "dry run, nothing written"]
        else:
            parts.append("plan: nothing to change")
        line = Text(parts[0], style="bold")
        used = len(parts[0])
        for part in parts[1:]:
            if used + len(marks.dot) + 2 + len(part) > self.out.width:
                line.append(f" {marks.dot}\n{part}")
                used = len(part)
            else:
                line.append(f" {marks.dot} {part}")
                used += len(marks.dot) + 2 + len(part)
        return line

    def partial_write(self, exc: PartialWrite) -> None:
        """On stderr: which changes of an interrupted write-back were applied and which not."""
        table = Table(title="Write-back stopped part-way", title_justify="left")
        for column in ("Result", "Action", "Message", "sys_id"):
            table.add_column(column, overflow="fold")
        rows = [("applied", change) for change in exc.applied]
        rows += [
            ("failed" if position == 0 else "not attempted", change)
            for position, change in enumerate(exc.not_applied)
        ]
        for result, change in rows:
            if isinstance(change, Change):
                table.add_row(
                    Text(result, style="green" if result == "applied" else "red"),
                    change.action.value,
                    data(change.message),
                    data(change.sys_id or "(new)"),
                )
        self.err.print(table)

    def profiles(self, results: Sequence[Any]) -> None:
        """One summary table for --all-profiles (cli.ProfileResult values)."""
        table = Table(title="Profiles", title_justify="left")
        for column in ("Profile", "Instance", "Findings", "Create", "Update", "Resolve", "Result"):
            table.add_column(column, overflow="fold")
        for result in results:
            if result.outcome is None:
                table.add_row(
                    data(result.name),
                    data(result.instance),
                    "-",
                    "-",
                    "-",
                    "-",
                    data(result.error or "", "red" if result.code else "yellow"),
                )
                continue
            plan = result.outcome.plan
            table.add_row(
                data(result.name),
                data(result.instance),
                str(len(result.outcome.evaluation.findings)),
                *(
                    str(len(plan.of(action)))
                    for action in (Action.CREATE, Action.UPDATE, Action.RESOLVE)
                ),
                Text("applied" if result.applied else "dry run", style="green"),
            )
        self.out.print(table)

    # Debug ---------------------------------------------------------------------------------

    def debug(self, outcome: Outcome, level: int, console: Console | None = None) -> None:
        """Level 1: the size of every set; level 2: every member and each user's conditions."""
        from snowcheck.output.debug_view import debug_view

        console = console or self.err
        console.print(Trimmed(debug_view(outcome, level, console.width)))

    # JSON ----------------------------------------------------------------------------------

    def json(self, outcome: Outcome, *, applied: Sequence[Change] | None) -> None:
        """One JSON document on stdout (SPEC section 5)."""
        self.out.file.write(json.dumps(to_json(outcome, applied=applied), indent=2) + "\n")
        self.out.file.flush()


def change_json(change: Change) -> dict[str, Any]:
    return {
        "action": change.action.value,
        "sys_id": change.sys_id,
        "message": change.message,
        "state": change.state,
        "count": change.count,
        "state_before": change.state_before,
        "count_before": change.count_before,
    }


def _changes(outcome: Outcome, applied: Sequence[Change] | None) -> Sequence[Change]:
    """What was written (creates with their new sys_id), or else what the plan would write."""
    return outcome.plan.changes if applied is None else applied


def to_json(outcome: Outcome, *, applied: Sequence[Change] | None) -> dict[str, Any]:
    """The JSON contract of SPEC section 5; ``applied``: the changes written, None if none."""
    window = outcome.evaluation.window
    return {
        "schema_version": SCHEMA_VERSION,
        "instance": outcome.instance,
        "now": format_time(window.now),
        "since": format_time(window.since),
        "window_seconds": int(window.length.total_seconds()),
        "source": outcome.source,
        "findings": [
            {
                "rule": finding.rule,
                "user": finding.user,
                "message": finding.message,
                "domain": finding.domain,
                "down_mid_servers": list(finding.down_mid_servers),
                "notes": list(finding.notes),
            }
            for finding in outcome.evaluation.findings
        ],
        "advisories": advisories_json(outcome.advice.advisories if outcome.advice else None),
        "changes": [change_json(change) for change in _changes(outcome, applied)],
        "applied": applied is not None,
    }
