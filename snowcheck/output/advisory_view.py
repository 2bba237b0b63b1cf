"""The advisories shown: the report's section after the findings, the demo's brief list, JSON.

Advisories are the causes the instance's job never reports (snowcheck.advisories); they
are shown beside the findings and never written to ecc_agent_issue, and the views say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.text import Text

from snowcheck.advisories import ADVISORIES, HINTS, Advice, Advisory, Severity
from snowcheck.output.text import Glyphs, data, labelled, literal

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "blue"}
NOT_WRITTEN = "never written to ecc_agent_issue"
ASK_DEBUG = "--debug 1 says why"


def advisory_head(number: int | None, advisory: Advisory, marks: Glyphs) -> Text:
    """``1 mid_user_mismatch · warning · mid-emea-2``: id, severity and subject."""
    head = Text(f"{number:>2} " if number is not None else "")
    head.append(advisory.id, style="cyan")
    head.append(f" {marks.dot} ")
    head.append(advisory.severity.value, style=SEVERITY_STYLE[advisory.severity])
    head.append(f" {marks.dot} ")
    head.append_text(data(advisory.subject, "bold"))
    return head


def advisory_view(
    number: int | None, advisory: Advisory, marks: Glyphs, *, with_hint: bool, indent: int = 3
) -> RenderableType:
    """The head line, the detail beneath it, and (``with_hint``) the advisory's hint."""
    rows = [("hint:", Text(HINTS[advisory.id], style="italic"))] if with_hint else []
    return Group(
        advisory_head(number, advisory, marks),
        Padding(data(advisory.detail), (0, 0, 0, indent)),
        labelled(rows, indent),
    )


def advisory_list(
    advisories: Sequence[Advisory], marks: Glyphs, *, numbered: bool = True, spaced: bool = True
) -> list[RenderableType]:
    """Each advisory; the hint of an id once, under the last advisory of that id."""
    parts: list[RenderableType] = []
    for position, advisory in enumerate(advisories):
        following = advisories[position + 1] if position + 1 < len(advisories) else None
        last_of_id = following is None or following.id != advisory.id
        number = position + 1 if numbered else None
        indent = 3 if numbered else 2
        parts.append(advisory_view(number, advisory, marks, with_hint=last_of_id, indent=indent))
        if spaced:
            parts.append(Text())
    return parts


def _skipped(advice: Advice) -> str:
    names = ", ".join(skip.advisory for skip in advice.skipped)
    return f"{len(advice.skipped)} not checked ({names}): {ASK_DEBUG}"


def advisories_section(advice: Advice | None, marks: Glyphs, *, spaced: bool) -> RenderableType:
    """``Advisories (N)`` and each advisory, or one line when there is none; nothing if not run."""
    if advice is None:
        return Group()
    if len(advice.skipped) == len(ADVISORIES):
        return Text.assemble(
            ("Advisories: ", "bold"),
            ("none checked", "yellow"),
            (f" {marks.dot} {ASK_DEBUG}", "dim"),
            "\n",
        )
    notes = [("skipped:", Text(_skipped(advice), style="dim"))] if advice.skipped else []
    if not advice.advisories:
        none = Text.assemble(("Advisories: ", "bold"), ("none", "green"))
        return Group(none, labelled(notes, 3), Text())
    heading = Text.assemble(
        (f"Advisories ({len(advice.advisories)})", "bold"), (f" {marks.dot} {NOT_WRITTEN}", "dim")
    )
    parts: list[RenderableType] = [heading, labelled(notes, 3)]
    parts += advisory_list(advice.advisories, marks, spaced=spaced)
    if not spaced:
        parts.append(Text())
    return Group(*parts)


class Packed:
    """Short items joined by ``, `` and wrapped only between items, under an indent."""

    def __init__(self, items: Sequence[Text], indent: int) -> None:
        self.items = items
        self.indent = indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = max(options.max_width - self.indent, 1)
        line = Text(" " * self.indent)
        used = 0
        for position, item in enumerate(self.items):
            piece = item.copy()
            if position + 1 < len(self.items):
                piece.append(",")
            if used and used + 1 + len(piece) > room:
                yield line
                line, used = Text(" " * self.indent), 0
            if used:
                line.append(" ")
                used += 1
            line.append_text(piece)
            used += len(piece)
        if used:
            yield line


def advisories_brief(advice: Advice | None, marks: Glyphs) -> RenderableType:
    """For the demo off a terminal: the count, then ``id subject`` of each, packed in lines."""
    if advice is None or not advice.advisories:
        return Group()
    items = [
        Text.assemble((advisory.id, "cyan"), " ", literal(advisory.subject))
        for advisory in advice.advisories
    ]
    heading = Text.assemble(
        (f"Advisories ({len(advice.advisories)})", "bold"), (f" {marks.dot} {NOT_WRITTEN}", "dim")
    )
    return Group(heading, Packed(items, 2), Text())


def advisory_json(advisory: Advisory) -> dict[str, Any]:
    return {
        "id": advisory.id,
        "severity": advisory.severity.value,
        "subject": advisory.subject,
        "detail": advisory.detail,
    }


def advisories_json(advisories: Sequence[Advisory] | None) -> list[dict[str, Any]]:
    """The advisories as JSON; ``[]`` when there are none or they were not computed."""
    return [advisory_json(advisory) for advisory in advisories or ()]
