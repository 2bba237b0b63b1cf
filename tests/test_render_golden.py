"""The report, --debug 2, explain and the demo at 80 and 120 columns, against golden files.

Refresh the golden files after an intended change of output: ``./scripts/test --snapshot-update``
(they live in tests/__snapshots__/test_render_golden/, one plain-text file each).
Beyond the golden text, every rendering is held to the layout rules: no line wider than
the width (in characters, and in bytes at 80 columns, as ``awk 'length > 80'`` counts them),
and every finding's message whole, with no word broken across lines.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from snowcheck.advisories import HINTS
from snowcheck.cli import main
from snowcheck.commands.demo import demo
from snowcheck.output.report import Terminal

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "examples" / "snapshot.json"
SHOWN_AS = "config/examples/snapshot.json"
"""The snapshot's path as the report prints it, the same in every clone."""
WIDTHS = (80, 120)


class TextGolden(SingleFileSnapshotExtension):
    """One readable .txt file per rendering, so a change shows as a plain diff in review."""

    _write_mode = WriteMode.TEXT
    file_extension = "txt"


@pytest.fixture
def golden(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(TextGolden)


@pytest.fixture(autouse=True)
def _run_from_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def render(width: int, *argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), terminal=Terminal(stdout=out, stderr=err, width=width))
    assert code == 0, err.getvalue()
    return out.getvalue()


def json_document(*argv: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(render(400, *argv, "--format", "json"))
    return document


def finding_messages() -> list[str]:
    findings = json_document("check", "--snapshot", SHOWN_AS)["findings"]
    assert isinstance(findings, list)
    return [finding["message"] for finding in findings]


def advisory_texts(*argv: str) -> list[str]:
    """Each advisory's detail and hint, as the report must show them: whole."""
    advisories = json_document(*argv)["advisories"]
    assert isinstance(advisories, list)
    return [text for item in advisories for text in (item["detail"], HINTS[item["id"]])]


def users() -> list[str]:
    tables = json.loads(EXAMPLE.read_text())["tables"]
    return sorted(row["user_name"] for row in tables["sys_user"])


def assert_layout(text: str, width: int, messages: list[str]) -> None:
    """No line over ``width``; each message present whole, its words never split by a break."""
    for line in text.splitlines():
        assert len(line) <= width, line
        if width == 80:
            assert len(line.encode()) <= width, line
    # Joining the lines with single spaces rebuilds a message only if every line break
    # inside it fell between two words.
    flat = " ".join(text.split())
    for message in messages:
        assert message in flat, message


@pytest.mark.parametrize("width", WIDTHS)
def test_report(width: int, golden: SnapshotAssertion) -> None:
    text = render(width, "check", "--snapshot", SHOWN_AS)
    assert_layout(text, width, finding_messages() + advisory_texts("check", "--snapshot", SHOWN_AS))
    assert text == golden


@pytest.mark.parametrize("width", WIDTHS)
def test_report_debug_2(width: int, golden: SnapshotAssertion) -> None:
    text = render(width, "check", "--snapshot", SHOWN_AS, "--debug", "2")
    assert_layout(text, width, finding_messages() + advisory_texts("check", "--snapshot", SHOWN_AS))
    assert "Conditions per user" in text
    assert text == golden


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("user", users())
def test_explain(user: str, width: int, golden: SnapshotAssertion) -> None:
    text = render(width, "explain", user, "--snapshot", SHOWN_AS)
    message = json_document("explain", user, "--snapshot", SHOWN_AS)["message"]
    advised = advisory_texts("explain", user, "--snapshot", SHOWN_AS)
    assert_layout(text, width, ([message] if isinstance(message, str) else []) + advised)
    assert text == golden


_PORT = re.compile(r"127\.0\.0\.1:\d+")
_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_CLOCK = re.compile(r"\b\d\d:\d\d:\d\d\b")
_RULE = re.compile(r"^-+ (.*?) -+$", re.MULTILINE)


def normalised(text: str) -> str:
    """The demo runs on the real clock and a free port: those, and only those, vary."""
    text = _PORT.sub("127.0.0.1:PORT", text)
    text = _STAMP.sub("YYYY-MM-DD hh:mm:ss", text)
    text = _CLOCK.sub("hh:mm:ss", text)
    return _RULE.sub(r"--- \1 ---", text)


@pytest.mark.parametrize("width", WIDTHS)
def test_demo(width: int, golden: SnapshotAssertion) -> None:
    out = io.StringIO()
    demo(Terminal(stdout=out, stderr=io.StringIO(), width=width))
    text = out.getvalue()
    # The demo scenario holds the users of the bundled snapshot, with the same findings.
    assert_layout(text, width, finding_messages())
    assert len(text.splitlines()) <= 150
    assert normalised(text) == golden
