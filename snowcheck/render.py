"""Output: the rich report, the debug views and the JSON document; one object owns the consoles.

Data from the instance is printed literally: markup is never parsed from it,
and control characters (ANSI escapes included) are shown as inert escapes.
Reports go to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any, cast

from rich.console import Console
from rich.table import Table
from rich.text import Text

from snowcheck.check import Outcome
from snowcheck.errors import PartialWrite
from snowcheck.plan import Action, Change
from snowcheck.records import format_time
from snowcheck.redact import Redactor

SCHEMA_VERSION = 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def literal(value: str) -> str:
    """The value with every control character shown as an escape, so a terminal cannot act on it."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


def data(value: str, style: str = "") -> Text:
    """A table cell from instance data: literal text, never markup."""
    return Text(literal(value), style=style)


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


_ACTION_STYLE = {Action.CREATE: "bold red", Action.UPDATE: "yellow", Action.RESOLVE: "green"}


class _Redacting(io.TextIOBase):
    """A text stream that redacts what is written before passing it on.

    rich writes each print whole (or in whole lines when large), so a secret on
    one line reaches ``write`` in one piece.
    """

    def __init__(self, stream: IO[str], redactor: Redactor) -> None:
        super().__init__()
        self.stream = stream
        self.redactor = redactor

    def write(self, text: str) -> int:
        self.stream.write(self.redactor(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"


class Terminal:
    """Owns the stdout and stderr consoles; tests pass files and a fixed width.

    Everything written to either, the report and the JSON document included, goes
    through ``redactor``: the one the log file and the run's errors use too.
    """

    def __init__(
        self,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        *,
        width: int | None = None,
        quiet: bool = False,
        redactor: Redactor | None = None,
    ) -> None:
        self.redactor = redactor if redactor is not None else Redactor()
        out = cast(IO[str], _Redacting(stdout or sys.stdout, self.redactor))
        err = cast(IO[str], _Redacting(stderr or sys.stderr, self.redactor))
        self.out = Console(file=out, width=width, highlight=False, emoji=False)
        self.err = Console(file=err, width=width, highlight=False, emoji=False)
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

    def report(self, outcome: Outcome, *, applied: Sequence[Change] | None, debug: int = 0) -> None:
        """The findings table, the plan (or the changes ``applied``) and a summary, on stdout."""
        self.out.print(self._heading(outcome))
        if debug >= 1:
            self.debug(outcome, debug, self.out)
        self.out.print(self._findings(outcome))
        self.out.print(self._plan(_changes(outcome, applied), applied is not None))
        self.out.print(self.summary(outcome, applied=applied))

    def _heading(self, outcome: Outcome) -> Text:
        window = outcome.evaluation.window
        clock = {"local": " (local clock)", "snapshot": " (snapshot)"}.get(
            outcome.snapshot.clock_source, ""
        )
        return Text.assemble(
            ("snowcheck ", "bold"),
            literal(outcome.instance),
            f"  now {format_time(window.now)} UTC{clock}",
            f"  window {_duration(window.length.total_seconds())}",
            f" (events after {format_time(window.since)})",
            "  source ",
            literal(outcome.source),
            f"  messages {outcome.evaluation.templates.name}",
        )

    def _findings(self, outcome: Outcome) -> Table:
        table = Table(title="Findings", title_justify="left", show_lines=False, expand=False)
        table.add_column("Rule", no_wrap=True, style="cyan")
        table.add_column("User", overflow="fold", max_width=30)
        table.add_column("Down MID Servers", overflow="fold", max_width=30)
        table.add_column("Message", overflow="fold", ratio=3)
        table.add_column("Notes", overflow="fold", ratio=2)
        for finding in outcome.evaluation.findings:
            table.add_row(
                Text(finding.rule),
                data(finding.user, "bold"),
                data(", ".join(finding.down_mid_servers)),
                data(finding.message),
                Text("\n".join(literal(note) for note in finding.notes)),
            )
        if not outcome.evaluation.findings:
            table.add_row("", "", "", Text("no findings", style="green"), "")
        return table

    def _plan(self, changes: Sequence[Change], applied: bool) -> Table:
        title = "Changes applied" if applied else "Plan (dry run)"
        table = Table(title=title, title_justify="left")
        table.add_column("Action", no_wrap=True)
        table.add_column("Message", overflow="fold", ratio=1)
        table.add_column("State", no_wrap=True)
        table.add_column("Count", no_wrap=True)
        table.add_column("sys_id", overflow="fold", max_width=32)
        for change in changes:
            table.add_row(
                Text(change.action.value, style=_ACTION_STYLE[change.action]),
                data(change.message),
                Text(f"{change.state_before or '-'} -> {change.state}"),
                Text(
                    f"{'-' if change.count_before is None else change.count_before}"
                    f" -> {change.count}"
                ),
                data(change.sys_id or "(new)"),
            )
        if not changes:
            table.add_row("", Text("nothing to change", style="green"), "", "", "")
        return table

    def summary(self, outcome: Outcome, *, applied: Sequence[Change] | None) -> Text:
        changes = _changes(outcome, applied)
        counts = ", ".join(
            f"{sum(c.action is action for c in changes)} "
            + (f"{action.value}d" if applied is not None else f"to {action.value}")
            for action in (Action.CREATE, Action.UPDATE, Action.RESOLVE)
        )
        findings = len(outcome.evaluation.findings)
        tail = (
            "applied."
            if applied is not None
            else "dry run: nothing written (use --apply to write)."
            if changes
            else "nothing to write."
        )
        return Text.assemble(
            (f"{findings} finding{'s' if findings != 1 else ''}", "bold"),
            f"; {counts}; {tail}",
        )

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
        console = console or self.err
        sets = outcome.evaluation.sets
        attempts = outcome.evaluation.last_attempts
        named: list[tuple[str, Iterable[str]]] = [
            ("role users (active, mid_server)", sets.role_users),
            ("configured users (mid.instance.username)", sets.configured_users),
            ("down MID Servers", sets.down_mids.values()),
            ("down users (n >= 1)", sets.down_users),
            ("role-not-configured users", sets.role_not_configured),
            (
                "candidates with a login attempt in window",
                [user for user, event in attempts.items() if event is not None],
            ),
            (
                "candidates with no login attempt in window",
                [user for user, event in attempts.items() if event is None],
            ),
        ]
        counts = Table(title="Sets", title_justify="left")
        counts.add_column("Set")
        counts.add_column("Count", justify="right")
        if level >= 2:
            counts.add_column("Members", overflow="fold")
        for label, members in named:
            listed = sorted(members)
            row = [Text(label), Text(str(len(listed)))]
            if level >= 2:
                row.append(data(", ".join(listed)))
            counts.add_row(*row)
        console.print(counts)
        if level < 2:
            return
        traces = outcome.evaluation.traces
        if not traces:
            return
        table = Table(title="Conditions per user", title_justify="left")
        table.add_column("User", overflow="fold")
        for condition in traces[0].conditions:
            table.add_column(condition.name, overflow="fold")
        table.add_column("Rule")
        for trace in traces:
            table.add_row(
                data(trace.user, "bold"),
                *(data(condition.result) for condition in trace.conditions),
                Text(trace.rule or "-", style="cyan" if trace.rule else "dim"),
            )
        console.print(table)

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
        "changes": [change_json(change) for change in _changes(outcome, applied)],
        "applied": applied is not None,
    }
