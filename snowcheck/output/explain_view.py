"""``snowcheck explain`` shown: one user's records, events, conditions, rule, issue and plan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text

from snowcheck.explain import SHOWN_ROLES, Explanation
from snowcheck.output.advisory_view import NOT_WRITTEN, advisories_json, advisory_list
from snowcheck.output.debug_view import HEADS, ago, clock
from snowcheck.output.plan_diff import change_head
from snowcheck.output.report import SCHEMA_VERSION, change_json
from snowcheck.output.text import Glyphs, data, labelled
from snowcheck.records import format_time
from snowcheck.rules import AUTHZ_FAILED, Condition

INDENT = 2


def _yes(value: bool, marks: Glyphs) -> Text:
    return Text(marks.yes, style="green") if value else Text(marks.no, style="red")


def _record(explanation: Explanation, marks: Glyphs) -> Text:
    record = explanation.record
    if record is None:
        return Text("no row has this User ID", style="red")
    return Text.assemble(
        "active ",
        _yes(record.active, marks),
        f" {marks.dot} locked out ",
        _yes(record.locked_out, marks),
        f" {marks.dot} domain ",
        data(record.sys_domain),
    )


def _roles(explanation: Explanation, marks: Glyphs) -> Text:
    text = Text()
    for position, role in enumerate(SHOWN_ROLES):
        if position:
            text.append(f" {marks.dot} ")
        text.append(f"{role} ")
        text.append_text(_yes(role in explanation.roles, marks))
    return text


def _mids(explanation: Explanation, marks: Glyphs) -> Text:
    if not explanation.mid_servers:
        return Text("none names this user in mid.instance.username", style="dim")
    text = Text()
    for position, mid in enumerate(explanation.mid_servers):
        if position:
            text.append(f" {marks.dot} ")
        text.append_text(data(mid.name))
        text.append(" ")
        text.append_text(data(mid.status, "red" if mid.status == "Down" else "green"))
    return text


def _when(moment: datetime, now: datetime) -> str:
    return f"{clock(moment)} ({ago(moment, now)})"


def _condition(condition: Condition, explanation: Explanation) -> Text:
    last = explanation.last_attempt
    if condition.name == "last attempt" and last is not None:
        # HH:MM:SS and how long ago, rather than the full timestamp of the debug trace.
        return Text.assemble(data(last.name), f" at {_when(last.created_on, explanation.now)}")
    return data(condition.result)


def _events(explanation: Explanation) -> list[tuple[str, Text]]:
    if not explanation.events:
        return [("", Text("none in the window", style="dim"))]
    rows: list[tuple[str, Text]] = []
    for event in explanation.events:
        line = Text.assemble(
            f"{_when(event.created_on, explanation.now)} ",
            data(event.name, "bold"),
        )
        if event.name == AUTHZ_FAILED and event.parm2.strip():
            line.append(" missing: ")
            line.append_text(data(event.parm2))
        rows.append(("", line))
    return rows


def explanation_view(explanation: Explanation, marks: Glyphs) -> RenderableType:
    heading = Text.assemble(
        ("explain ", "bold"),
        data(explanation.user, "bold"),
        f"\nnow {format_time(explanation.now)} UTC {marks.dot} ",
        f"events after {clock(explanation.since)}",
    )
    rows: list[tuple[str, Text]] = [
        ("sys_user", _record(explanation, marks)),
        ("roles", _roles(explanation, marks)),
        ("MID Servers", _mids(explanation, marks)),
        ("login events", Text("newest first", style="dim")),
        *_events(explanation),
    ]
    conditions = [
        (HEADS.get(c.name, (c.name, ""))[1] or c.name, _condition(c, explanation))
        for c in explanation.conditions
    ]
    if not conditions:
        conditions = [("", Text("the user is not one the rules watch", style="dim"))]
    finding = explanation.finding
    change = explanation.change
    issue = explanation.issue
    verdict: list[tuple[str, Text]] = [
        ("rule", Text(explanation.reason)),
        ("message", data(finding.message) if finding else Text("none", style="dim")),
        (
            "open issue",
            Text.assemble(data(issue.state), f", count {issue.count}, sys_id ", data(issue.sys_id))
            if issue
            else Text("none", style="dim"),
        ),
        ("plan", change_head(change, marks) if change else Text("no change", style="dim")),
    ]
    if change is not None and finding is None:
        verdict.append(("", data(change.message)))
    if explanation.hint:
        verdict.append(("hint", Text(explanation.hint, style="italic")))
    return Group(
        heading,
        Text(),
        labelled(rows, INDENT),
        Text(),
        Text("Conditions", style="bold"),
        labelled(conditions, INDENT),
        Text(),
        labelled(verdict, INDENT),
        *_advisories(explanation, marks),
    )


def _advisories(explanation: Explanation, marks: Glyphs) -> list[RenderableType]:
    """The advisories about the user and its MID Servers, each with its hint."""
    advisories = explanation.advisories
    if advisories is None:
        return []
    if not advisories:
        return [Text(), Text.assemble(("Advisories: ", "bold"), ("none", "green"))]
    heading = Text.assemble(
        (f"Advisories ({len(advisories)})", "bold"), (f" {marks.dot} {NOT_WRITTEN}", "dim")
    )
    parts = advisory_list(advisories, marks, numbered=False, spaced=False)
    return [Text(), heading, *(Padding(part, (0, 0, 0, INDENT)) for part in parts)]


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    issue = explanation.issue
    return {
        "schema_version": SCHEMA_VERSION,
        "user": explanation.user,
        "now": format_time(explanation.now),
        "since": format_time(explanation.since),
        "rule": explanation.rule,
        "message": explanation.finding.message if explanation.finding else None,
        "conditions": {c.name: c.result for c in explanation.conditions},
        "events": [
            {"name": e.name, "created": format_time(e.created_on), "parm2": e.parm2}
            for e in explanation.events
        ],
        "mid_servers": [{"name": m.name, "status": m.status} for m in explanation.mid_servers],
        "issue": None
        if issue is None
        else {
            "sys_id": issue.sys_id,
            "message": issue.message,
            "state": issue.state,
            "count": issue.count,
            "last_detected": format_time(issue.last_detected) if issue.last_detected else None,
        },
        "change": change_json(explanation.change) if explanation.change else None,
        "advisories": advisories_json(explanation.advisories),
    }
