"""Helpers of the end-to-end tests: the emulator over real HTTP, and the CLI.

Every test talks to 127.0.0.1 only. The emulator's clock is frozen right after start, so
``last_detected`` can be compared exactly; tests move it with ``emu.clock.advance``.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from snowcheck.cli import main
from snowcheck.emulator import Emulator, Scenario
from snowcheck.emulator.clock import format_time
from snowcheck.output.report import Terminal

ROOT = Path(__file__).resolve().parents[2]
DEMO_SCENARIO = ROOT / "config" / "examples" / "demo-scenario.json"
ISSUE_TABLE = "ecc_agent_issue"
SOURCE = "MIDUserConnectivity"
USER = "svc.snowcheck"
PASSWORD = "e2e-S3cret-pw-4711"
"""The account the tests' emulators accept (distinct from the user name, so a leak shows)."""

# Environment variables that would change how the CLI finds its instance, credentials,
# config, lock or proxy: none of them may leak from the developer's shell into a test.
_SCRUBBED_PREFIXES = ("SERVICENOW_", "SN_", "SNOWCHECK_", "REQUESTS_CA_BUNDLE", "CURL_CA")
_PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def demo_data() -> dict[str, Any]:
    """The demo scenario as a fresh, mutable dict."""
    with DEMO_SCENARIO.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def start(data: Mapping[str, Any] | None = None) -> Emulator:
    """Start an emulator on the demo scenario (or ``data``), with its clock frozen.

    Without ``users`` in the scenario, the one account is ``USER`` / ``PASSWORD``.
    """
    document = copy.deepcopy(dict(data)) if data is not None else demo_data()
    document.setdefault("users", {USER: {"password": PASSWORD}})
    scenario = Scenario.from_dict(document)
    emulator = Emulator(scenario).start()
    emulator.clock.freeze(emulator.clock.now())
    return emulator


def issues(emulator: Emulator) -> list[dict[str, str]]:
    """Every ecc_agent_issue row, raw, sorted by sys_id (a stable order to compare)."""
    return sorted(emulator.rows(ISSUE_TABLE), key=lambda row: row["sys_id"])


def ours(emulator: Emulator) -> list[dict[str, str]]:
    """Issues of our source with mid_server empty: the only ones snowcheck may touch."""
    return [
        row for row in issues(emulator) if row.get("source") == SOURCE and not row.get("mid_server")
    ]


def open_ours(emulator: Emulator) -> list[dict[str, str]]:
    return [row for row in ours(emulator) if row.get("state") != "resolved"]


def by_message(rows: Sequence[Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Rows keyed by message; fails if one message appears twice."""
    keyed: dict[str, dict[str, str]] = {}
    for row in rows:
        assert row["message"] not in keyed, f"duplicate issue: {row['message']!r}"
        keyed[row["message"]] = dict(row)
    return keyed


def now_text(emulator: Emulator) -> str:
    return format_time(emulator.clock.now())


def set_mid_status(emulator: Emulator, name: str, status: str) -> None:
    """Change a MID Server's status straight in the store."""
    for row in emulator.rows("ecc_agent"):
        if row["name"] == name:
            emulator.store.update("ecc_agent", row["sys_id"], {"status": status})
            return
    raise AssertionError(f"no MID Server named {name}")


def add_event(emulator: Emulator, name: str, user: str, parm2: str = "") -> None:
    """A sysevent row created at the emulator's now."""
    emulator.load_rows(
        "sysevent",
        [{"name": name, "parm1": user, "parm2": parm2, "sys_created_on": now_text(emulator)}],
    )


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def clean_env(tmp_path: Path, password: str | None = PASSWORD) -> dict[str, str]:
    """The environment of a CLI run: nothing inherited that matters, state under tmp_path."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SCRUBBED_PREFIXES) and name.lower() not in _PROXY_NAMES
    }
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.pop("COLUMNS", None)  # as under cron: stderr is not a terminal, rich's default width
    if password is not None:
        env["SERVICENOW_PASSWORD"] = password
    return env


def check_argv(emulator: Emulator, *args: str, user: str = USER) -> list[str]:
    return ["check", "--instance", emulator.url, "--user", user, *args]


def cli_command(emulator: Emulator, *args: str, user: str = USER) -> list[str]:
    """The argv of a real ``python -m snowcheck check`` process (no secret on it)."""
    return [sys.executable, "-m", "snowcheck", *check_argv(emulator, *args, user=user)]


def run_process(
    emulator: Emulator,
    *args: str,
    tmp_path: Path,
    user: str = USER,
    password: str | None = PASSWORD,
    timeout: float = 60,
) -> Result:
    """Run the real CLI as a subprocess against the emulator."""
    command = cli_command(emulator, *args, user=user)
    if password is not None:
        assert password not in command
    done = subprocess.run(
        command,
        env=clean_env(tmp_path, password),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


class InProcess:
    """``snowcheck.cli.main`` in this process, with a clean environment and captured output."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp: Path
    ) -> None:
        self._monkeypatch = monkeypatch
        self._capsys = capsys
        self.tmp_path = tmp

    def __call__(
        self, emulator: Emulator, *args: str, user: str = USER, password: str = PASSWORD
    ) -> Result:
        """``snowcheck check --instance URL --user USER ARGS...``."""
        return self.main(check_argv(emulator, *args, user=user), password=password)

    def main(self, argv: Sequence[str], *, password: str = PASSWORD) -> Result:
        """Any ``snowcheck`` command line, run by ``snowcheck.cli.main``."""
        for name in list(os.environ):
            if name.startswith(_SCRUBBED_PREFIXES) or name.lower() in _PROXY_NAMES:
                self._monkeypatch.delenv(name, raising=False)
        self._monkeypatch.setenv("SERVICENOW_PASSWORD", password)
        self._monkeypatch.setenv("XDG_STATE_HOME", str(self.tmp_path / "state"))
        self._monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        self._capsys.readouterr()  # forget what earlier steps printed
        stdout, stderr = io.StringIO(), io.StringIO()
        terminal = Terminal(stdout=stdout, stderr=stderr, width=200)
        code = main(list(argv), terminal=terminal)
        captured = self._capsys.readouterr()  # log records that reached sys.stderr
        return Result(code, stdout.getvalue() + captured.out, stderr.getvalue() + captured.err)


def error_text(result: Result) -> str:
    """The ``snowcheck: error:`` message of a run, with rich's soft line wraps undone.

    rich wraps a long error at the console's width (see test_error_is_one_line_on_stderr,
    an xfail); the continuation lines are joined back here so that the other tests check
    the message itself.
    """
    lines = result.err.splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith("snowcheck: error:")]
    assert len(starts) == 1, f"expected exactly one error, got: {result.err!r}"
    return "".join(lines[starts[0] :])


def assert_clean_failure(result: Result, *, contains: str) -> str:
    """Exit 1, exactly one ``snowcheck: error:`` message naming ``contains``, no traceback."""
    assert result.code == 1, result
    assert "Traceback" not in result.err
    assert "Traceback" not in result.out
    message = error_text(result)
    assert contains.lower() in message.lower(), message
    return message


def control(emulator: Emulator, method: str, path: str, payload: object = None) -> Any:
    """Call one of the emulator's /__emulator/ control endpoints over HTTP (no proxy)."""
    body = json.dumps(payload).encode("utf-8") if payload is not None else None
    request = urllib.request.Request(
        f"{emulator.url}/__emulator/{path.lstrip('/')}",
        data=body,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


def mid_id(emulator: Emulator, name: str) -> str:
    for row in emulator.rows("ecc_agent"):
        if row["name"] == name:
            return row["sys_id"]
    raise AssertionError(f"no MID Server named {name}")


Summary = list[tuple[str, str, str, str, str, str]]
_REFERENCE: dict[str, Summary] = {}


def summary(emulator: Emulator) -> Summary:
    """The issue table without ids and times: what a correct apply must leave."""
    return sorted(
        (
            row["source"],
            row["message"],
            row["state"],
            row["count"],
            row["mid_server"],
            row["sys_domain"],
        )
        for row in emulator.rows("ecc_agent_issue")
    )


def reference(cli: InProcess) -> Summary:
    """The issue table after one fault-free ``--apply`` of the demo scenario (computed once)."""
    if "demo" not in _REFERENCE:
        emulator = start()
        try:
            result = cli(emulator, "--apply")
            assert result.code == 0, result.err
            _REFERENCE["demo"] = summary(emulator)
        finally:
            emulator.stop()
    return _REFERENCE["demo"]
