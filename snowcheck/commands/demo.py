"""``snowcheck demo``: the whole lifecycle against the bundled emulator, in one command.

Dry run, apply (issues created and updated), then one problem fixed while
``snowcheck watch`` follows it, and a second applied run (counts go up, the
fixed issue is resolved). Everything
runs on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snowcheck.commands.live import live_check
from snowcheck.commands.watch import EXIT_CLEAR, Watch, round_line
from snowcheck.emulator import Emulator, Scenario
from snowcheck.errors import ConfigError
from snowcheck.output.plan_diff import plan_brief
from snowcheck.output.report import Terminal
from snowcheck.output.text import Glyphs, Trimmed, data
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.records import ISSUE_TABLE, MID_TABLE, USER_TABLE, format_time
from snowcheck.resources import DEMO_SCENARIO, data_path
from snowcheck.rules import DEFAULT_WINDOW, HEARTBEAT
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection
from snowcheck.settings import (
    CheckSettings,
    ConnectionOptions,
    DemoOptions,
    RuleOptions,
    WatchOptions,
)

FIXED_USER = "mid.west"
FIXED_MID = "mid-west-1"


def issue_table(emulator: Emulator, title: str, *, times: bool = True) -> RenderableType:
    """The issues snowcheck manages, as the instance holds them now; ``times``: last detected.

    Issues of other sources, or tied to one MID Server, are never touched and not shown.
    """
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=1)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, justify="right")
    if times:
        grid.add_column(no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    styles = {"new": "bold red", "acknowledged": "yellow", "resolved": "green"}
    ours = [
        row
        for row in emulator.rows(ISSUE_TABLE)
        if row.get("source") == DEFAULT_SOURCE and not row.get("mid_server")
    ]
    rows = sorted(ours, key=lambda r: (r.get("state") == "resolved", r.get("message", "")))
    heads = ["", "state", "count", *(["last detected"] if times else []), "message"]
    grid.add_row(*(Text(head, style="dim") for head in heads))
    for row in rows:
        state = row.get("state", "")
        grid.add_row(
            "",
            Text(state, style=styles.get(state, "")),
            data(row.get("count", "")),
            *([data(row.get("last_detected", ""))] if times else []),
            data(row.get("message", "")),
        )
    return Trimmed(Group(Text(f"{title} ({len(rows)})", style="bold"), grid, Text()))


def demo(terminal: Terminal, *, scenario: str | None = None) -> None:
    """Off a terminal (a file, a pipe, CI), the story in brief: about 120 lines at 80 columns."""
    with scenario_path(scenario) as path:
        _demo(terminal, path)


@contextlib.contextmanager
def scenario_path(scenario: str | None) -> Iterator[Path]:
    """The scenario file given, or the one shipped in the package."""
    if scenario is None:
        with data_path(DEMO_SCENARIO) as path:
            yield path
        return
    yield Path(scenario)


def _demo(terminal: Terminal, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"demo scenario {path} not found: pass --scenario FILE")
    settings = CheckSettings(window=DEFAULT_WINDOW, source=DEFAULT_SOURCE, messages="auto")
    out = terminal.out
    brief = not out.is_terminal
    marks = Glyphs.for_console(out)

    def rule(title: str) -> None:
        # Off a terminal, ASCII: a line of box-drawing characters is three bytes a column.
        out.rule(title, characters="-" if brief else "─")

    def applied_run(instance: Instance, *, show_changes: bool) -> None:
        checked = live_check(instance, settings, apply=True, force=False, warn=terminal.warn)
        if not brief:
            terminal.report(checked.outcome, applied=checked.applied)
            return
        if show_changes:
            changes = checked.applied or ()
            findings = checked.outcome.evaluation.findings
            out.print(Trimmed(plan_brief(changes, marks, findings, applied=True)))
        out.print(terminal.summary(checked.outcome, applied=checked.applied))
        out.print()

    with Emulator(Scenario.load(str(path))) as emulator:
        user, password = emulator.credentials
        connection = Connection(base_url=emulator.url, user=user, password=password, verify=True)
        rule(f"snowcheck demo: an emulated instance at {emulator.url}")
        out.print(issue_table(emulator, "ecc_agent_issue before snowcheck runs", times=not brief))

        with Instance(connection) as instance:
            rule("1. snowcheck check  (dry run: nothing is written)")
            checked = live_check(instance, settings, apply=False, force=False, warn=terminal.warn)
            terminal.report(checked.outcome, applied=checked.applied, brief=brief)
            if not brief:
                out.print(issue_table(emulator, "ecc_agent_issue after the dry run (unchanged)"))

            rule("2. snowcheck check --apply")
            if brief:
                out.print("The plan above, written to ecc_agent_issue:")
            applied_run(instance, show_changes=False)
            if not brief:
                out.print(issue_table(emulator, "ecc_agent_issue after --apply"))

            rule(f"3. the fix, followed by snowcheck watch --user {FIXED_USER}")
            clear = _follow_the_fix(terminal, instance, emulator)
            out.print(
                Text(
                    f"{'Clear. ' if clear else ''}The next run resolves {FIXED_USER}'s issue; "
                    "the others count once more.",
                )
            )
            applied_run(instance, show_changes=True)
            out.print(
                issue_table(emulator, "ecc_agent_issue after the second --apply", times=not brief)
            )
        out.print(
            Text(
                "Next, your instance (a dry run): snowcheck check --instance NAME --user USER",
                style="bold",
            )
        )


def _follow_the_fix(terminal: Terminal, instance: Instance, emulator: Emulator) -> bool:
    """``snowcheck watch --user mid.west`` (a 5-minute window) while the fix lands between its
    first two rounds; whether it ended clear."""
    out = terminal.out

    def fix_between_rounds(seconds: float) -> None:
        # The demo does not wait out the interval: the fix lands at once.
        _fix_one_problem(instance, emulator)
        out.print(Text(f"  the fix lands: {FIXED_USER}'s password; {FIXED_MID} is Up", "dim"))

    settings = CheckSettings(window=HEARTBEAT, source=DEFAULT_SOURCE, messages="auto")
    options = WatchOptions(ConnectionOptions(), RuleOptions(), users=(FIXED_USER,))
    follow = Watch(instance, settings, options, warn=terminal.warn, sleep=fix_between_rounds)
    return follow.run(lambda current: out.print(Text(round_line(current)))) == EXIT_CLEAR


def _fix_one_problem(instance: Instance, emulator: Emulator) -> None:
    """What an admin's fix looks like to the instance: the user's password reset cleared, the
    MID Up and refreshed (no heartbeat overdue), and its user logged in."""
    for row in emulator.rows(USER_TABLE):
        if row.get("user_name") == FIXED_USER:
            instance.patch(USER_TABLE, row["sys_id"], {"password_needs_reset": "false"})
    refreshed = format_time(emulator.clock.now())
    for row in emulator.rows(MID_TABLE):
        if row.get("name") == FIXED_MID:
            instance.patch(MID_TABLE, row["sys_id"], {"status": "Up", "last_refreshed": refreshed})
    emulator.load_rows(
        "sysevent", [{"name": "login", "parm1": FIXED_USER, "parm2": "", "sys_created_on": ""}]
    )


def run_demo(options: DemoOptions, terminal: Terminal) -> int:
    """``snowcheck demo``."""
    demo(terminal, scenario=options.scenario)
    return 0
