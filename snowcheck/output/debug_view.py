"""The --debug views: the named sets and, at level 2, each user's conditions as a compact matrix."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from snowcheck.advisories import ADVISORIES, Advice
from snowcheck.check import Outcome
from snowcheck.output.text import data
from snowcheck.records import Event
from snowcheck.rules import AUTHZ_FAILED, LOGIN_FAILED, Condition, UserTrace

HEADS = {
    "in sys_user": ("sys", "in sys_user"),
    "active": ("act", "active"),
    "holds mid_server": ("mid", "holds mid_server"),
    "holds soap_script": ("soap", "holds soap_script (or a role containing it)"),
    "configured (mid.instance.username)": ("cfg", "named by a mid.instance.username row"),
    "down MID Servers (n)": ("n", "down MID Servers naming the user"),
}
"""Condition name to its short column head and the legend's words for it."""
SHOWN_ELSEWHERE = frozenset({"kind", "last attempt"})
"""The kind follows from n and cfg; the last attempt gets its own columns, from the event."""
SHORT_EVENT = {LOGIN_FAILED: "failed", AUTHZ_FAILED: "authz"}
WIDE = 100
"""From this width on, times also say how long ago they were."""


def clock(moment: datetime) -> str:
    return f"{moment:%H:%M:%S}"


def ago(moment: datetime, now: datetime) -> str:
    """``45s ago``, ``12m ago``, ``3h05m ago``."""
    seconds = int((now - moment).total_seconds())
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m ago"


def debug_view(outcome: Outcome, level: int, width: int) -> RenderableType:
    parts: list[RenderableType] = [_sets(outcome, level)]
    if outcome.advice is not None:
        parts.append(_advice(outcome.advice))
    if level >= 2 and outcome.evaluation.traces:
        parts.append(_matrix(outcome, width))
    return Group(*parts)


def _sets(outcome: Outcome, level: int) -> RenderableType:
    sets = outcome.evaluation.sets
    attempts = outcome.evaluation.last_attempts
    named: list[tuple[str, Iterable[str]]] = [
        ("role users (active, mid_server)", sets.role_users),
        ("configured users (mid.instance.username)", sets.configured_users),
        ("down MID Servers", sets.down_mids.values()),
        ("down users (n >= 1)", sets.down_users),
        ("role-not-configured users", sets.role_not_configured),
        ("candidates with a login attempt in window", [u for u, e in attempts.items() if e]),
        ("candidates with no login attempt in window", [u for u, e in attempts.items() if not e]),
    ]
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for label, members in named:
        listed = sorted(members)
        grid.add_row(Text(str(len(listed))), Text(label))
        if level >= 2 and listed:
            # Wrapped at the spaces after commas, so a member is never cut.
            grid.add_row("", Padding(data(", ".join(listed), "dim"), (0, 0, 0, 2)))
    return Group(Text("Sets", style="bold"), Padding(grid, (0, 0, 0, 2)), Text())


def _advice(advice: Advice) -> RenderableType:
    """How many of each advisory, ``-`` for one not checked; then the notes: what and why not."""
    skipped = {skip.advisory for skip in advice.skipped}
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for rule in ADVISORIES:
        count = Text("-", style="dim") if rule.id in skipped else Text(str(advice.count(rule.id)))
        grid.add_row(count, Text(rule.id))
    notes = Table.grid(padding=(0, 1))
    notes.add_column(no_wrap=True, style="dim")
    notes.add_column(ratio=1, overflow="fold")
    for note in advice.notes:
        notes.add_row("note:", data(note))
    return Group(
        Text("Advisories", style="bold"),
        Padding(grid, (0, 0, 0, 2)),
        Padding(notes, (0, 0, 0, 2)),
        Text(),
    )


def _mark(condition: Condition) -> Text:
    # yes/no rather than check marks: as narrow as the heads, and one byte a character
    # (awk and some mail paths count bytes).
    value = condition.result
    if value in ("yes", "true"):
        return Text("yes", style="green")
    if value in ("no", "false"):
        return Text("no", style="red")
    if value == "n/a":
        return Text("-", style="dim")
    return data(value)


def _last(event: Event | None, watched: bool, now: datetime, width: int) -> tuple[Text, Text]:
    if not watched:
        return Text("-", style="dim"), Text("")
    if event is None:
        return Text("none"), Text("")
    when = clock(event.created_on)
    if width >= WIDE:
        when += f" {ago(event.created_on, now)}"
    return Text(SHORT_EVENT.get(event.name, event.name)), Text(when)


def _shown(trace: UserTrace) -> list[Condition]:
    return [c for c in trace.conditions if c.name not in SHOWN_ELSEWHERE]


def _matrix(outcome: Outcome, width: int) -> RenderableType:
    evaluation = outcome.evaluation
    traces = evaluation.traces
    conditions = _shown(traces[0])
    table = Table.grid(padding=(0, 1))
    table.add_column("user", overflow="fold", min_width=8)
    for _ in conditions:
        table.add_column(no_wrap=True, justify="center")
    for _ in ("last", "at", "rule"):
        table.add_column(no_wrap=True)
    heads = [HEADS.get(c.name, (c.name, c.name))[0] for c in conditions]
    table.add_row(*(Text(head, style="bold") for head in ["user", *heads, "last", "at", "rule"]))
    watched = evaluation.sets.candidates
    for trace in traces:
        last, at = _last(
            evaluation.last_attempts.get(trace.user),
            trace.user in watched,
            evaluation.window.now,
            width,
        )
        table.add_row(
            data(trace.user, "bold"),
            *(_mark(condition) for condition in _shown(trace)),
            last,
            at,
            Text(trace.rule or "-", style="cyan" if trace.rule else "dim"),
        )
    legend = [
        f"{HEADS.get(c.name, (c.name, c.name))[0]} {HEADS.get(c.name, (c.name, c.name))[1]}"
        for c in conditions
    ]
    legend.append(
        f"last: the last login attempt in the window (failed = {LOGIN_FAILED}, "
        f"authz = {AUTHZ_FAILED}), at: its time (UTC)"
    )
    return Group(
        Text("Conditions per user", style="bold"),
        table,
        Padding(Text("; ".join(legend), style="dim"), (0, 0, 0, 2)),
        Text(),
    )
