"""``snowcheck demo``: the whole lifecycle against the bundled emulator, in one command.

Dry run, apply (issues created and updated), then one problem fixed and a
second applied run (counts go up, the fixed issue is resolved). Everything
runs on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rich.table import Table
from rich.text import Text

from snowcheck.connection import Connection
from snowcheck.emulator import Emulator, Scenario
from snowcheck.errors import ConfigError
from snowcheck.instance import Instance
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.records import ISSUE_TABLE, MID_TABLE
from snowcheck.render import Terminal, data
from snowcheck.resources import DEMO_SCENARIO, data_path
from snowcheck.rules import DEFAULT_WINDOW
from snowcheck.run import CheckSettings, live_check

FIXED_USER = "mid.west"
FIXED_MID = "mid-west-1"


def issue_table(emulator: Emulator, title: str) -> Table:
    """The issues snowcheck manages, as the instance holds them now.

    Issues of other sources, or tied to one MID Server, are never touched and not shown.
    """
    table = Table(title=title, title_justify="left")
    table.add_column("State", no_wrap=True)
    table.add_column("Count", no_wrap=True, justify="right")
    table.add_column("Last detected", no_wrap=True)
    table.add_column("Message", overflow="fold", ratio=1)
    styles = {"new": "bold red", "acknowledged": "yellow", "resolved": "green"}
    ours = [
        row
        for row in emulator.rows(ISSUE_TABLE)
        if row.get("source") == DEFAULT_SOURCE and not row.get("mid_server")
    ]
    rows = sorted(ours, key=lambda r: (r.get("state") == "resolved", r.get("message", "")))
    for row in rows:
        state = row.get("state", "")
        table.add_row(
            Text(state, style=styles.get(state, "")),
            data(row.get("count", "")),
            data(row.get("last_detected", "")),
            data(row.get("message", "")),
        )
    return table


def demo(terminal: Terminal, *, scenario: str | None = None) -> None:
    with scenario_path(scenario) as path:
        _demo(terminal, path)


@contextlib.contextmanager
def scenario_path(scenario: str | None) -> Iterator[Path]:
    """The scenario file given, or the one shipped in the package."""
    if scenario is None:
        with data_path(DEMO_SCENARIO) as path:
            yield path
        return
    path = Path(scenario)
    if not path.is_file():
        raise ConfigError(f"demo scenario {path} not found: pass --scenario FILE")
    yield path


def _demo(terminal: Terminal, path: Path) -> None:
    settings = CheckSettings(window=DEFAULT_WINDOW, source=DEFAULT_SOURCE, messages="auto")
    out = terminal.out
    with Emulator(Scenario.load(str(path))) as emulator:
        user, password = emulator.credentials
        connection = Connection(base_url=emulator.url, user=user, password=password, verify=True)
        out.rule(f"snowcheck demo: an emulated instance at {emulator.url}")
        out.print(issue_table(emulator, "ecc_agent_issue before snowcheck runs"))

        with Instance(connection) as instance:
            out.rule("1. snowcheck check  (dry run: nothing is written)")
            checked = live_check(instance, settings, apply=False, force=False, warn=terminal.warn)
            terminal.report(checked.outcome, applied=checked.applied)
            out.print(issue_table(emulator, "ecc_agent_issue after the dry run (unchanged)"))

            out.rule("2. snowcheck check --apply")
            checked = live_check(instance, settings, apply=True, force=False, warn=terminal.warn)
            terminal.report(checked.outcome, applied=checked.applied)
            out.print(issue_table(emulator, "ecc_agent_issue after --apply"))

            out.rule(
                f"3. {FIXED_USER}'s password is fixed: {FIXED_MID} is Up and logs in; "
                "the next scheduled run"
            )
            _fix_one_problem(instance, emulator)
            checked = live_check(instance, settings, apply=True, force=False, warn=terminal.warn)
            terminal.report(checked.outcome, applied=checked.applied)
            out.print(issue_table(emulator, "ecc_agent_issue after the second --apply"))
        out.print(
            Text(
                "Point snowcheck at your instance next: "
                "snowcheck check --instance <name> --user <user>  (a dry run).",
                style="bold",
            )
        )


def _fix_one_problem(instance: Instance, emulator: Emulator) -> None:
    """What an admin's fix looks like to the instance: the MID is Up and its user logged in."""
    for row in emulator.rows(MID_TABLE):
        if row.get("name") == FIXED_MID:
            instance.patch(MID_TABLE, row["sys_id"], {"status": "Up"})
    emulator.load_rows(
        "sysevent", [{"name": "login", "parm1": FIXED_USER, "parm2": "", "sys_created_on": ""}]
    )
