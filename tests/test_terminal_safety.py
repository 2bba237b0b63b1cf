"""Instance data printed inert: ANSI/OSC escapes and rich markup from any field never act.

A snapshot holds hostile user names, MID Server names, parm2 and messages of open
issues; `snowcheck check --snapshot FILE` prints them in the table report, at --debug 2,
in --format nagios and --format json, on a plain file and on a console forced to behave
as a colour terminal (where rich emits its own SGR codes, and only those).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from factories import AUTHZ, FAILED, INSIDE, NOW_TEXT, SOURCE, FakeInstance, issue_row
from rich.console import Console

from snowcheck.cli import main
from snowcheck.emulator import BatchConfig, Emulator, Scenario
from snowcheck.output.report import Terminal
from snowcheck.records import ISSUE_TABLE, TABLES

CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"
OSC8 = "\x1b]8;;http://e.vil/\x1b\\click\x1b]8;;\x1b\\"
C1_CSI = "\x9b31m"

USERS = {
    "clear": f"a{CLEAR}b",
    "title": f"t{TITLE}",
    "markup": "[bold red]u3[/]",
    "link": "[link=http://e.vil/]u4[/link]",
    "overwrite": "r\rx\x08\u202eevil",
    "pipe": "p|ipe=1;;;0",
    "c1": f"c{C1_CSI}1",
}
MIDS = {
    "clear": f"m{CLEAR}",
    "title": f"m{TITLE}",
    "markup": "[blink]mid[/]",
    "link": OSC8,
    "overwrite": "mid\r\n2",
    "pipe": "mid|x",
    "c1": f"m{C1_CSI}",
}
PARM2 = f"soap_script,{TITLE}[bold]role[/],{OSC8}"
OLD_MESSAGES = (
    f"Old {CLEAR} [bold red]issue[/] {OSC8} | perf=1",
    f"[link=http://e.vil/]acknowledged[/link] {TITLE}\n2nd line",
)

MARKERS = ("[bold red]u3[/]", "[link=http://e.vil/]u4[/link]", "[blink]mid[/]")
"""Markup that must come out as the very text it is (if parsed, it would vanish)."""

# Rich's own styling on a colour terminal: SGR only (no OSC 8, which is what parsed
# [link=...] markup would produce).
_SGR = re.compile(r"\x1b\[[0-9;]*m")
# ... and, on stderr, its progress bar: hide/show the cursor, move up, erase the line.
_PROGRESS = re.compile(r"\x1b\[\?25[lh]|\r(?=\x1b\[)|\x1b\[[0-9]*[AK]")
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def hostile_snapshot(tmp_path: Path) -> Path:
    fake = FakeInstance()
    for key, user in USERS.items():
        fake.user(user)
        fake.mid(MIDS[key], "Down").associate(user, MIDS[key])
    fake.event(AUTHZ, USERS["clear"], INSIDE, parm2=PARM2)
    fake.event(FAILED, USERS["link"], INSIDE)
    fake.tables[ISSUE_TABLE] = [
        issue_row(OLD_MESSAGES[0], state="new", record="1" * 32),
        issue_row(OLD_MESSAGES[1], state="acknowledged", record="2" * 32),
        issue_row(OLD_MESSAGES[1], state="new", record="3" * 32, updated_on="2026-11-25 07:00:00"),
    ]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps({"now": NOW_TEXT, "tables": fake.tables}))
    return path


def assert_inert(text: str, *, colour: bool = False) -> None:
    """No control character a terminal acts on, apart from rich's own SGR when colour is on."""
    if colour:
        text = _SGR.sub("", _PROGRESS.sub("", text))
    lines = text.replace("\n", "")
    assert "\x1b" not in lines, repr(text)
    found = _FORBIDDEN.search(lines)
    assert found is None, f"{found.group()!r} in {text!r}"


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def run(*argv: str, colour: bool = False) -> Run:
    out, err = io.StringIO(), io.StringIO()
    terminal = Terminal(stdout=out, stderr=err, width=400)
    if colour:
        for name, buffer in (("out", out), ("err", err)):
            console = Console(
                file=buffer,
                width=400,
                force_terminal=True,
                color_system="truecolor",
                highlight=False,
                emoji=False,
            )
            setattr(terminal, name, console)
    code = main(list(argv), terminal=terminal)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour-terminal"])
@pytest.mark.parametrize("debug", ["0", "2"])
def test_table_report_prints_hostile_fields_inert(tmp_path: Path, colour: bool, debug: str) -> None:
    snapshot = hostile_snapshot(tmp_path)
    result = run("check", "--snapshot", str(snapshot), "--debug", debug, colour=colour)
    assert result.code == 0, result.err
    assert_inert(result.out, colour=colour)
    assert_inert(result.err, colour=colour)
    plain = _SGR.sub("", result.out)
    for marker in MARKERS:
        assert marker in plain
    # Escapes are shown as escapes: visible, and unable to act.
    assert "\\x1b[2J" in plain
    assert "\\x1b]0;pwned\\x07" in plain
    assert "\\x9b31m" in plain
    assert "Old \\x1b[2J [bold red]issue[/]" in plain  # the resolved issue's message
    if debug == "2":
        assert "Conditions per user" in plain
        assert "Sets" in plain


def test_debug_with_json_goes_to_stderr_inert_and_json_stays_valid(tmp_path: Path) -> None:
    snapshot = hostile_snapshot(tmp_path)
    result = run("check", "--snapshot", str(snapshot), "--debug", "2", "--format", "json")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert "\x1b" not in result.out  # JSON escapes control characters itself
    assert {finding["user"] for finding in document["findings"]} == set(USERS.values())
    assert {c["message"] for c in document["changes"] if c["action"] == "resolve"} >= {
        OLD_MESSAGES[0]
    }
    assert_inert(result.err)
    assert "[bold red]u3[/]" in result.err


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour-terminal"])
def test_nagios_output_is_inert_one_line_per_finding_and_no_forged_perfdata(
    tmp_path: Path, colour: bool
) -> None:
    snapshot = hostile_snapshot(tmp_path)
    result = run("check", "--snapshot", str(snapshot), "--format", "nagios", colour=colour)
    assert result.code == 2  # CRITICAL: users of down MID Servers
    assert_inert(result.out)
    lines = result.out.splitlines()
    assert lines[0].startswith("SNOWCHECK CRITICAL - 7 findings")
    assert len(lines) == 1 + len(USERS)
    assert lines[0].count("|") == 1
    for line in lines[1:]:
        assert "|" not in line  # a `|` would start (forged) performance data
    assert any("[bold red]u3[/]" in line for line in lines)
    assert any("p/ipe=1;;;0" in line for line in lines)


def test_a_real_process_on_a_forced_colour_terminal_prints_inert(tmp_path: Path) -> None:
    snapshot = hostile_snapshot(tmp_path)
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "400", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "snowcheck", "check", "--snapshot", str(snapshot)]
    for extra in (["--debug", "2"], ["--debug", "2", "--format", "nagios"]):
        done = subprocess.run(
            [*command, *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 2), done.stderr
        assert_inert(done.stdout, colour=True)
        assert_inert(done.stderr, colour=True)
        assert "Traceback" not in done.stderr
    # The colour really was on for the report (so the SGR allowance was exercised).
    report = subprocess.run(
        [sys.executable, "-m", "snowcheck", "check", "--snapshot", str(snapshot)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert _SGR.search(report.stdout)
    assert "[bold red]u3[/]" in _SGR.sub("", report.stdout)


def test_data_error_text_from_hostile_rows_is_inert(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    tables: dict[str, list[object]] = {table: [] for table in TABLES}
    tables["sys_user"] = [{"sys_id": f"x{CLEAR}{TITLE}", "user_name": "u", "active": "maybe"}]
    path.write_text(json.dumps({"now": NOW_TEXT, "tables": tables}))
    result = run("check", "--snapshot", str(path), colour=True)
    assert result.code == 2  # a snapshot's content error, like a missing snapshot
    assert "sys_user record" in result.err
    assert_inert(result.err, colour=True)
    assert_inert(result.out, colour=True)


def test_source_name_from_the_command_line_is_shown_inert(tmp_path: Path) -> None:
    snapshot = hostile_snapshot(tmp_path)
    result = run("check", "--snapshot", str(snapshot), "--source", f"{SOURCE}{TITLE}[b]x[/b]")
    assert result.code == 0, result.err
    assert_inert(result.out)
    assert "[b]x[/b]" in result.out


# -- live: the same data pulled over HTTP ------------------------------------------------------

PASSWORD = "terminal-pass"


def _live_emulator(tmp_path: Path) -> Emulator:
    document = json.loads(hostile_snapshot(tmp_path).read_text())
    document["users"] = {"checker": {"password": PASSWORD}}
    return Emulator(Scenario.from_dict(document))


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", PASSWORD)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SNOWCHECK_CONFIG", raising=False)


def test_hostile_names_survive_the_live_pull_and_print_inert(
    live_env: None, tmp_path: Path
) -> None:
    with _live_emulator(tmp_path) as emu:
        live = run("check", "--instance", emu.url, "--user", "checker", "--format", "json")
        table = run(
            "check", "--instance", emu.url, "--user", "checker", "--debug", "2", colour=True
        )
    offline = run("check", "--snapshot", str(hostile_snapshot(tmp_path)), "--format", "json")
    assert live.code == 0, live.err
    findings = json.loads(live.out)["findings"]
    assert {f["user"] for f in findings} == set(USERS.values())
    expected = json.loads(offline.out)["findings"]
    assert sorted(f["message"] for f in findings) == sorted(f["message"] for f in expected)
    assert table.code == 0, table.err
    assert_inert(table.out, colour=True)
    assert_inert(table.err, colour=True)
    # The plan's warning about the two open issues sharing a hostile message, inert too.
    warning = " ".join(_SGR.sub("", _PROGRESS.sub("", table.err)).split())
    assert "2 open issues share the message '[link=http://e.vil/]acknowledged" in warning
    assert "\\x1b]0;pwned\\x07" in warning
    assert "[bold red]u3[/]" in _SGR.sub("", table.out)


def test_the_partial_write_table_prints_hostile_messages_inert(
    live_env: None, tmp_path: Path
) -> None:
    with _live_emulator(tmp_path) as emu:
        emu.batch = BatchConfig(enabled=False)  # one request per change
        emu.faults.add("status", status=500, method="PATCH", times=1)
        result = run("check", "--instance", emu.url, "--user", "checker", "--apply", colour=True)
    assert result.code == 1
    flat = " ".join(_SGR.sub("", result.err).split())
    assert "Write-back stopped part-way" in flat
    assert "[bold red]issue[/]" in flat
    assert_inert(result.err, colour=True)
    assert_inert(result.out, colour=True)
