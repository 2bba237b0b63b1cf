"""The building blocks of every view: instance data printed literally, glyphs, trimmed lines.

Data from the instance is printed literally: markup is never parsed from it, and
control characters (ANSI escapes included) are shown as inert escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def literal(value: str) -> str:
    """The value with every control character shown as an escape, so a terminal cannot act on it."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


def data(value: str, style: str = "") -> Text:
    """A table cell from instance data: literal text, never markup."""
    return Text(literal(value), style=style)


@dataclass(frozen=True)
class Glyphs:
    """The marks the report draws, with an ASCII set for consoles that cannot print Unicode."""

    arrow: str
    dot: str
    yes: str
    no: str

    @classmethod
    def for_console(cls, console: Console) -> Glyphs:
        try:
            "→·✓✗".encode(console.encoding)
        except (UnicodeEncodeError, LookupError):
            return ASCII
        return UNICODE


UNICODE = Glyphs(arrow="→", dot="·", yes="✓", no="✗")
ASCII = Glyphs(arrow="->", dot="-", yes="yes", no="no")


def labelled(rows: Iterable[tuple[str, Text]], indent: int) -> Table:
    """Rows of ``label value`` under an indent; values wrap at spaces beneath themselves."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=max(indent - 1, 0))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column(ratio=1, overflow="fold")
    for label, value in rows:
        grid.add_row("", label, value)
    return grid


class Trimmed:
    """A renderable without the spaces tables pad lines with (mail and diffs would keep them)."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in console.render_lines(self.renderable, options, pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip():
                line.pop()
            if line and not line[-1].control:
                last = line[-1]
                line[-1] = Segment(last.text.rstrip(), last.style)
            yield from line
            yield Segment.line()
