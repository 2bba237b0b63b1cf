"""The report's layout rules that golden files do not show: --wide, ASCII consoles, hints."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from snowcheck.cli import main
from snowcheck.output.report import Terminal
from snowcheck.output.text import ASCII, UNICODE, Glyphs
from snowcheck.remedies import HINTS
from snowcheck.rules import RULES

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"
SYS_ID = re.compile(r"\b[0-9a-f]{32}\b")


def report(*extra: str, stdout: io.TextIOBase | None = None, width: int = 80) -> str:
    out = stdout or io.StringIO()
    terminal = Terminal(stdout=out, stderr=io.StringIO(), width=width)  # type: ignore[arg-type]
    assert main(["check", "--snapshot", str(EXAMPLE), *extra], terminal=terminal) == 0
    if isinstance(out, io.StringIO):
        return out.getvalue()
    return ""


def test_sys_ids_only_with_wide() -> None:
    assert not SYS_ID.search(report())
    wide = report("--wide")
    assert "sys_id 7ecbe55bbb92ca57e5bcc140792da69e" in wide  # the update
    assert "sys_id b8fdce28f0f639e72d2cde4cf107324f" in wide  # the resolve
    assert "sys_id (new)" in wide


def test_wide_at_120_columns_keeps_the_sys_ids_whole() -> None:
    wide = report("--wide", width=120)
    assert "b8fdce28f0f639e72d2cde4cf107324f" in wide
    assert all(len(line) <= 120 for line in wide.splitlines())


def test_a_console_that_cannot_print_unicode_gets_ascii_marks() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    assert Glyphs.for_console(Console(file=stream)) is ASCII
    assert Glyphs.for_console(Console(file=io.StringIO())) is UNICODE
    report("--debug", "2", stdout=stream)  # would raise UnicodeEncodeError on a mark
    stream.flush()
    text = raw.getvalue().decode("ascii")
    assert "10 findings - 9 advisories - plan: 8 create, 2 update, 1 resolve -\ndry run" in text
    assert "count 2 -> 3" in text


def test_every_rule_has_a_one_line_hint() -> None:
    assert set(HINTS) == {rule.id for rule in RULES}
    indent = len("   hint: ")
    for hint in HINTS.values():
        assert hint and len(hint) + indent <= 80, hint


def test_debug_times_say_how_long_ago_only_when_wide() -> None:
    narrow = report("--debug", "2")
    wide = report("--debug", "2", width=120)
    matrix = narrow.split("Conditions per user")[1].split("Findings (")[0]
    assert "11:40:00 " in matrix and "ago" not in matrix
    assert "11:40:00 20m ago" in wide
