"""The watch's pieces without an instance: whose issue a message is, and how rounds are shown."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime

import pytest
from rich.console import Console

from snowcheck.commands.watch import Round, _show, named_user, round_json, round_line
from snowcheck.messages import DOCS, KINGSTON, TemplateSet
from snowcheck.output.report import Terminal
from snowcheck.rules import RULES, Finding
from snowcheck.settings import ConnectionOptions, RuleOptions, WatchOptions

NOW = datetime(2026, 11, 25, 12, 0, 0)


@pytest.mark.parametrize("templates", [DOCS, KINGSTON], ids=["docs", "kingston"])
@pytest.mark.parametrize("rule", [rule.id for rule in RULES])
def test_every_message_names_its_user(templates: TemplateSet, rule: str) -> None:
    for n in (1, 3):
        message = templates.render(rule, "Mid.West", n)
        # As the instance compares: case and trailing spaces do not count.
        assert named_user(message) == "mid.west"
        assert named_user(message.upper() + "  ") == "mid.west"


def test_a_message_of_another_kind_names_nobody() -> None:
    assert named_user("ECC queue is backing up") is None


def finding(user: str, rule: str = "no_login_down") -> Finding:
    return Finding(rule, user, DOCS.render(rule, user), "global")


def rounds() -> list[Round]:
    west, east = finding("mid.west"), finding("mid.east")
    return [
        Round(1, NOW, (west, east), (west, east), (), None),
        Round(2, NOW, (east,), (), (west,), ()),
    ]


def test_one_line_a_round() -> None:
    first, second = rounds()
    assert round_line(first) == "round 1 2026-11-25 12:00:00: 2 left (mid.west, mid.east)"
    assert round_line(second) == (
        "round 2 2026-11-25 12:00:00: 1 left (mid.east); 1 resolved (mid.west); wrote 0"
    )


def test_json_lines_carry_round_now_findings_and_changes() -> None:
    second = round_json(rounds()[1])
    json.dumps(second)
    assert second["round"] == 2
    assert second["now"] == "2026-11-25 12:00:00"
    assert [f["user"] for f in second["findings"]] == ["mid.east"]
    assert second["changes"] == {
        "appeared": [],
        "resolved": [
            {"rule": "no_login_down", "user": "mid.west", "message": finding("mid.west").message}
        ],
    }
    assert second["written"] == []


def test_on_a_terminal_a_live_view_of_what_is_left_and_what_changed() -> None:
    out = io.StringIO()
    terminal = Terminal(stdout=out, stderr=io.StringIO(), width=80)
    terminal.out = Console(file=out, width=80, force_terminal=True, color_system=None)
    options = WatchOptions(ConnectionOptions(), RuleOptions())
    with contextlib.ExitStack() as stack:
        show = _show(terminal, options, stack)
        for current in rounds():
            show(current)
    text = out.getvalue()
    assert "\x1b[" in text  # drawn in place, not printed line after line
    final = text[text.rindex("round 2") :]
    assert "1 left (mid.east)" in final
    assert "mid.east" in final and "no_login_down" in final
    assert "- mid.west: no_login_down" in final
