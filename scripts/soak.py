"""Soak test: many applied checks against a misbehaving emulator, compared to a fault-free one.

Two emulated instances run in this process on 127.0.0.1, loaded with the same seeded
scenario and the same frozen clock:

- the **fault** instance, checked by real ``python -m snowcheck check --apply`` processes
  (password in ``SERVICENOW_PASSWORD``, ``XDG_STATE_HOME`` in a temporary folder, a
  ``--config`` file setting a short ``read_timeout``), with one seeded fault queued before
  most runs: 429 with a small ``Retry-After``, 5xx (500 fails at once; 502/503/504 are
  retried), connection resets, truncated bodies, the hibernation page, answers slower than
  the read timeout, a failed request inside a batch, and a process SIGKILLed as soon as
  its first write shows in the emulator's log (latency is added so the kill lands between
  writes). Faults aim at reads, single writes and ``POST /api/now/v1/batch``; the batch
  API is also, at random, switched off (the client falls back to one request per change)
  or limited to a few requests per batch (the rest come back unserviced);
- the **reference** instance, checked by the same code in this process (``live_check``),
  with no faults at all.

Between runs the same seeded changes go to both (MID Servers going Up or Down, login
events added, a user activated or deactivated) and both clocks move forward by the same
amount, so at every step both checks see the same users, MID Servers, events and ``now``:
their findings must be equal, and only the issue tables may differ.

What "equal" means. A failed or killed run legitimately leaves the fault instance behind
(an update or a create that was never made); the next successful run converges. So the
comparison is made *after a final fault-free run on both*, on the open issues of our
source (``mid_server`` empty), and per run where a run claims success:

- **lost updates**: after a run that exited 0, a finding of that step (the reference run's
  findings) with no open issue whose ``last_detected`` is that step's ``now``; plus, at the
  end, each (message, state) of an open reference issue with no equal open fault issue.
- **duplicate open issues**: at the end, for each message, open fault issues beyond one.
- **resolved on partial data**: a fault run that resolved an issue whose message was a
  finding of that step (the data said it is still a problem).
- **over-counted**: at the end, an open fault issue whose ``count`` is higher than the
  reference issue's. Every run of the fault instance is matched by exactly one reference
  run, and a PATCH carries the absolute count (a retried PATCH cannot add twice), so
  re-runs legitimately add nothing here: the allowance is 0 (``RERUN_ALLOWANCE``). Counts
  *lower* than the reference are expected (failed runs update nothing) and only reported.
- **stale open issues**: at the end, an open fault issue whose message has no open
  reference issue (a resolve that never converged).
- **diverging findings**: a successful fault run whose findings differ from the reference
  run's at the same step, i.e. a run that planned on partial data.

A run *failed cleanly* when it exited 1 with exactly one ``snowcheck: error:`` line on
stderr and no traceback; it *failed uncleanly* on anything else (another exit status, a
traceback, no error line, stdout that is not one JSON document on success). Killed runs
are counted apart. The exit status is non-zero if any unclean failure or any of the
counts above is non-zero.

A slow answer comes back between 0.2 s past the read timeout and ``--slow-max`` seconds
(default 6). The instance still commits a write it answers late: when that happens after
the client has looked the create up again and re-sent it, the result is a duplicate open
issue (a real hazard on a slow instance, which the soak is meant to show). The small
soak in ``tests/test_soak.py`` passes ``--slow-max 2.5`` so that it guards everything
else; the slow-commit case has its own test there.

Usage: ``scripts/soak [--runs N] [--seed S] [--slow-max SECONDS] [--verbose]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from snowcheck.commands.live import live_check
from snowcheck.emulator import BatchConfig, Emulator, Scenario
from snowcheck.emulator.server import EmulatorHTTPServer
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.records import ISSUE_TABLE, format_time
from snowcheck.rules import DEFAULT_WINDOW
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection
from snowcheck.settings import CheckSettings

USER = "soak.checker"
READ_TIMEOUT = 1.0
STEP = timedelta(minutes=2)
START = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
RERUN_ALLOWANCE = 0
"""Count increments a fault run may legitimately add over the reference (see docstring)."""
RUN_TIMEOUT = 90.0
FAULT_SHARE = 0.75
"""Share of runs preceded by a fault."""
KINDS = ("429", "5xx", "reset", "truncate", "hibernate", "slow", "kill", "batch item")
EVENTS = ("login", "login.failed", "login.authorization.failed")
TARGETS: tuple[tuple[str | None, str | None], ...] = (
    (None, None),  # the first request of the run (weighted: it always exists)
    (None, None),
    (None, None),
    ("PATCH", "/table/ecc_agent_issue"),
    ("GET", "/table/sys_user_has_role"),
    ("GET", "/table/ecc_agent_config"),
    ("GET", "/table/ecc_agent?"),
    ("GET", "/table/sysevent"),
    ("GET", "/table/ecc_agent_issue"),
    ("POST", "/table/ecc_agent_issue"),
    ("PATCH", "/table/ecc_agent_issue"),
    ("POST", "/api/now/v1/batch"),
    ("POST", "/api/now/v1/batch"),
)
"""(method, path fragment) a fault is aimed at; a fault whose request never comes is not
counted as injected (a POST when nothing is created, say)."""


@contextlib.contextmanager
def quiet_dropped_connections() -> Iterator[None]:
    """Keep socketserver from printing a traceback for each connection a client dropped.

    A client killed or timed out mid-request resets its connection; that is the point of
    the soak, and the tracebacks would drown its output. Any other error still prints.
    """
    original = EmulatorHTTPServer.handle_error

    def handle_error(self: EmulatorHTTPServer, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            original(self, request, client_address)

    EmulatorHTTPServer.handle_error = handle_error  # type: ignore[method-assign]
    try:
        yield
    finally:
        EmulatorHTTPServer.handle_error = original  # type: ignore[method-assign]


def _id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


# -- the scenario ------------------------------------------------------------------------------


class World:
    """The seeded instance data both emulators share, and the changes made to it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now = START
        roles = {name: _id(rng) for name in ("mid_server", "soap", "soap_script")}
        self.tables: dict[str, list[dict[str, str]]] = {
            "sys_user_role": [{"sys_id": sid, "name": name} for name, sid in roles.items()],
            "sys_user_has_role": [],
            "sys_user": [],
            "ecc_agent_config": [],
            "ecc_agent": [],
            "sysevent": [],
            "ecc_agent_issue": [],
        }
        names = [
            "mid.alpha",
            "mid.bravo",
            "mid.charlie",
            "mid.delta",
            "mid,comma",
            "mid^caret",
            " mid.padded",
            "MID.ALPHA",
            "svc.roleonly",
            "admin.jane",
            "ghost.unlisted",
        ]
        self.users: dict[str, dict[str, str]] = {}
        self.mids: list[dict[str, str]] = []
        for name in names:
            listed = name != "ghost.unlisted"
            configured = name not in ("svc.roleonly", "admin.jane")
            if listed:
                user = {
                    "sys_id": _id(rng),
                    "user_name": name,
                    "active": "true",
                    "locked_out": "false",
                    "sys_domain": "global",
                }
                self.users[name] = user
                self.tables["sys_user"].append(user)
                held = ["mid_server", "soap", "soap_script"]
                if rng.random() < 0.2:
                    held = ["mid_server"]
                for role in held:
                    self.tables["sys_user_has_role"].append(
                        {"sys_id": _id(rng), "user": user["sys_id"], "role": roles[role]}
                    )
            if configured:
                for index in range(rng.randint(1, 3)):
                    mid = {
                        "sys_id": _id(rng),
                        "name": f"{name.strip()}-mid-{index}",
                        "status": rng.choice(["Up", "Down", "Down"]),
                        "last_refreshed": format_time(self.now - timedelta(hours=1)),
                    }
                    self.mids.append(mid)
                    self.tables["ecc_agent"].append(mid)
                    self.tables["ecc_agent_config"].append(
                        {
                            "sys_id": _id(rng),
                            "ecc_agent": mid["sys_id"],
                            "param_name": "mid.instance.username",
                            "value": name,
                            "sys_domain": "global",
                        }
                    )
        self.names = names
        for _ in range(8):
            self.tables["sysevent"].append(self._event())
        stale = [
            "User ghost.old is associated with 1 down MID Server. No login attempts within "
            "reporting period.",
            "User mid.retired with mid_server role is not associated with a MID Server. No "
            "login attempts within reporting period.",
        ]
        for message in stale:
            self.tables["ecc_agent_issue"].append(self._issue(message, "new"))
        self.tables["ecc_agent_issue"].append(self._issue(stale[0], "resolved"))
        self.tables["ecc_agent_issue"].append(self._issue(stale[1], "new", "OtherSource"))

    def _issue(self, message: str, state: str, source: str = DEFAULT_SOURCE) -> dict[str, str]:
        when = format_time(self.now - timedelta(hours=3))
        return {
            "sys_id": _id(self.rng),
            "message": message,
            "source": source,
            "state": state,
            "count": "3",
            "last_detected": when,
            "mid_server": "",
            "sys_domain": "global",
            "sys_updated_on": when,
        }

    def _event(self) -> dict[str, str]:
        name = self.rng.choice(EVENTS)
        return {
            "sys_id": _id(self.rng),
            "name": name,
            "parm1": self.rng.choice(self.names),
            "parm2": "soap_script" if name == "login.authorization.failed" else "",
            "sys_created_on": format_time(
                self.now - timedelta(seconds=self.rng.randint(0, 3 * 3600))
            ),
        }

    def scenario(self, password: str) -> Scenario:
        return Scenario.from_dict(
            {
                "now": format_time(self.now),
                "tables": self.tables,
                "users": {USER: {"password": password}},
            }
        )

    def changes(self) -> list[tuple[str, dict[str, str]]]:
        """The next step's seeded changes, as (table, row) puts (a known sys_id updates)."""
        puts: list[tuple[str, dict[str, str]]] = []
        for _ in range(self.rng.randint(1, 3)):
            roll = self.rng.random()
            if roll < 0.45:
                mid = self.rng.choice(self.mids)
                mid["status"] = "Up" if mid["status"] == "Down" else "Down"
                puts.append(("ecc_agent", {"sys_id": mid["sys_id"], "status": mid["status"]}))
            elif roll < 0.9:
                puts.append(("sysevent", self._event()))
            else:
                user = self.users[self.rng.choice(sorted(self.users))]
                user["active"] = "false" if user["active"] == "true" else "true"
                puts.append(("sys_user", {"sys_id": user["sys_id"], "active": user["active"]}))
        return puts


# -- one run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    outcome: str
    """succeeded, failed cleanly, failed uncleanly, killed."""
    code: int
    error: str = ""
    document: dict[str, Any] | None = None


def classify(code: int, out: str, err: str, *, killed: bool) -> RunResult:
    """Sort one finished process into the outcomes of the module docstring."""
    if killed and code == -signal.SIGKILL:
        return RunResult("killed", code)
    errors = [line for line in err.splitlines() if line.startswith("snowcheck: error:")]
    if "Traceback" in err or "Traceback" in out:
        return RunResult("failed uncleanly", code, "traceback")
    if code == 0:
        try:
            document = json.loads(out)
        except ValueError:
            return RunResult("failed uncleanly", code, "stdout is not one JSON document")
        if not isinstance(document, dict) or document.get("applied") is not True:
            return RunResult("failed uncleanly", code, "JSON document not applied")
        return RunResult("succeeded", code, document=document)
    if code == 1 and len(errors) == 1:
        return RunResult("failed cleanly", code, errors[0].removeprefix("snowcheck: error: "))
    return RunResult("failed uncleanly", code, f"exit {code}, {len(errors)} error lines")


def _open_issues(emulator: Emulator) -> list[dict[str, str]]:
    return [
        row
        for row in emulator.rows(ISSUE_TABLE)
        if row.get("source") == DEFAULT_SOURCE
        and row.get("mid_server", "") == ""
        and row.get("state") != "resolved"
    ]


@dataclass
class Tally:
    runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unclean: list[str] = field(default_factory=list)
    lost_updates: int = 0
    resolved_on_partial_data: int = 0
    diverging_findings: int = 0
    duplicates: int = 0
    over_counted: int = 0
    stale_open: int = 0
    missed_increments: int = 0
    """Reference count minus fault count, summed: updates failed runs never made (expected)."""
    elapsed: float = 0.0

    @property
    def failures(self) -> dict[str, int]:
        return {
            "runs that failed uncleanly": self.outcomes["failed uncleanly"],
            "lost updates": self.lost_updates,
            "duplicate open issues": self.duplicates,
            "issues resolved on partial data": self.resolved_on_partial_data,
            "over-counted issues": self.over_counted,
            "stale open issues": self.stale_open,
            "runs with diverging findings": self.diverging_findings,
        }


class Soak:
    def __init__(
        self,
        runs: int,
        seed: int,
        *,
        verbose: bool,
        out: Callable[[str], None],
        slow_max: float = 6.0,
    ) -> None:
        self.runs = runs
        self.slow_max = slow_max
        self.seed = seed
        self.verbose = verbose
        self.out = out
        self.rng = random.Random(seed)
        self.fault_rng = random.Random(seed * 7919 + 1)
        self.password = f"soak-{seed}-{random.Random(seed).getrandbits(64):x} ^&"
        self.world = World(random.Random(seed * 31 + 7))
        self.tally = Tally()

    # -- the two instances -------------------------------------------------------------------

    def _reference_check(self, reference: Emulator) -> set[str]:
        connection = Connection(
            base_url=reference.url, user=USER, password=self.password, read_timeout=10
        )
        settings = CheckSettings(window=DEFAULT_WINDOW, source=DEFAULT_SOURCE, messages="docs")
        with Instance(connection) as instance:
            checked = live_check(instance, settings, apply=True, force=False, warn=lambda _: None)
        return {finding.message for finding in checked.outcome.evaluation.findings}

    def _command(self, url: str, config: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "snowcheck",
            "check",
            "--apply",
            "--instance",
            url,
            "--user",
            USER,
            "--config",
            str(config),
            "--messages",
            "docs",
            "--format",
            "json",
        ]

    def _environment(self, state: Path) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SERVICENOW_", "SN_", "SNOWCHECK_"))
        }
        env["SERVICENOW_PASSWORD"] = self.password
        env["XDG_STATE_HOME"] = str(state)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- faults ------------------------------------------------------------------------------

    def _queue_fault(self, emulator: Emulator) -> tuple[str | None, float]:
        """Queue this run's fault (or none); returns its kind and how long it may stall."""
        rng = self.fault_rng
        roll = rng.random()
        if roll < 0.2:
            emulator.batch = BatchConfig(enabled=False, refuse_status=rng.choice([400, 404]))
        elif roll < 0.35:
            emulator.batch = BatchConfig(max_requests=rng.randint(1, 3))
        else:
            emulator.batch = BatchConfig()
        if rng.random() >= FAULT_SHARE:
            return None, 0.0
        kind = rng.choice(KINDS)
        method, path = rng.choice(TARGETS)
        if kind == "kill":
            emulator.latency = 0.15
            return kind, 0.4
        if kind == "429":
            times = rng.randint(1, 2)
            emulator.faults.add(
                "status", status=429, retry_after=1, times=times, method=method, path=path
            )
            return kind, 0.0
        if kind == "5xx":
            status = rng.choice([500, 502, 503, 504])
            emulator.faults.add("status", status=status, times=1, method=method, path=path)
            return kind, 0.0
        if kind == "batch item":
            status = rng.choice([429, 500, 503])
            emulator.faults.add(
                "status",
                status=status,
                retry_after=1,
                method=rng.choice(["POST", "PATCH"]),
                path="/table/ecc_agent_issue",
                batch_item=True,
            )
            return kind, 0.0
        if kind == "slow":
            seconds = rng.uniform(READ_TIMEOUT + 0.2, max(READ_TIMEOUT + 0.2, self.slow_max))
            emulator.faults.add("slow", seconds=seconds, method=method, path=path)
            return kind, seconds
        emulator.faults.add(kind, method=method, path=path)
        return kind, 0.0

    def _run_fault(
        self, emulator: Emulator, command: Sequence[str], env: dict[str, str], kind: str | None
    ) -> RunResult:
        emulator.clear_log()
        started = time.monotonic()
        child = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        killed = False
        if kind == "kill":
            while child.poll() is None and time.monotonic() - started < RUN_TIMEOUT:
                if any(
                    entry.method in ("POST", "PATCH", "PUT") and entry.status is not None
                    for entry in emulator.log
                ):
                    child.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.005)
        try:
            out, err = child.communicate(
                timeout=max(1.0, RUN_TIMEOUT - (time.monotonic() - started))
            )
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            return RunResult("failed uncleanly", child.returncode, "timed out (hung)")
        return classify(child.returncode, out, err, killed=killed)

    # -- the soak ----------------------------------------------------------------------------

    def run(self) -> Tally:
        tally = self.tally
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="snowcheck-soak-") as folder:
            config = Path(folder) / "soak.toml"
            config.write_text(f"read_timeout = {READ_TIMEOUT}\nconnect_timeout = 2\n")
            env = self._environment(Path(folder) / "state")
            with (
                quiet_dropped_connections(),
                Emulator(self.world.scenario(self.password)) as faulty,
                Emulator(self.world.scenario(self.password)) as reference,
            ):
                command = self._command(faulty.url, config)
                for index in range(1, self.runs + 1):
                    self._step(index, faulty, reference, command, env)
                # The final fault-free run on both, then the comparison.
                self._advance(faulty, reference)
                final = self._run_fault(faulty, command, env, None)
                self._reference_check(reference)
                if final.outcome != "succeeded":
                    tally.unclean.append(f"final run: {final.outcome} ({final.error})")
                    tally.outcomes["failed uncleanly"] += 1
                self._compare(faulty, reference)
        tally.elapsed = time.monotonic() - started
        return tally

    def _advance(self, faulty: Emulator, reference: Emulator) -> None:
        self.world.now += STEP
        for emulator in (faulty, reference):
            emulator.clock.advance(STEP.total_seconds())

    def _step(
        self,
        index: int,
        faulty: Emulator,
        reference: Emulator,
        command: Sequence[str],
        env: dict[str, str],
    ) -> None:
        tally = self.tally
        self._advance(faulty, reference)
        for table, row in self.world.changes():
            for emulator in (faulty, reference):
                emulator.store.put_rows(table, [dict(row)], replace=False)
        now_text = format_time(faulty.clock.now())

        findings = self._reference_check(reference)
        before = {row["sys_id"]: row["state"] for row in faulty.rows(ISSUE_TABLE)}
        kind, stall = self._queue_fault(faulty)
        result = self._run_fault(faulty, command, env, kind)
        self._settle(faulty, kind, stall)
        hits = [entry.fault for entry in faulty.log if entry.fault]
        faulty.faults.clear()
        if kind == "kill":
            if result.outcome == "killed":
                tally.faults["kill"] += 1
        elif hits:
            tally.faults[kind or "?"] += 1
        tally.runs += 1
        tally.outcomes[result.outcome] += 1
        if result.outcome == "failed cleanly":
            tally.errors[result.error.split(" (")[0][:70]] += 1
        if result.outcome == "failed uncleanly":
            tally.unclean.append(f"run {index} ({kind}): {result.error}")

        after = faulty.rows(ISSUE_TABLE)
        for row in after:
            was = before.get(row["sys_id"])
            resolved_now = was not in (None, "resolved") and row["state"] == "resolved"
            if resolved_now and row["source"] == DEFAULT_SOURCE and row["message"] in findings:
                tally.resolved_on_partial_data += 1
        lost = 0
        if result.outcome == "succeeded" and result.document is not None:
            seen = {finding["message"] for finding in result.document["findings"]}
            if seen != findings:
                tally.diverging_findings += 1
            fresh = {
                row["message"] for row in _open_issues(faulty) if row["last_detected"] == now_text
            }
            lost = len(findings - fresh)
            tally.lost_updates += lost
        if self.verbose:
            self.out(
                f"run {index:4d} {kind or '-':9s} {result.outcome:17s} "
                f"hits={len(hits)} findings={len(findings)} lost={lost} {result.error[:90]}"
            )
        elif index % 20 == 0:
            self.out(f"... {index} runs")

    @staticmethod
    def _settle(emulator: Emulator, kind: str | None, stall: float) -> None:
        """Let the emulator finish the requests a client gave up on, within this step.

        A slow answer is served (and its write committed) `stall` seconds after it came
        in, whatever the client did meanwhile; a killed client may leave one request in
        flight, served once the latency has passed.
        """
        if kind == "kill":
            time.sleep(stall)
        elif kind == "slow" and not emulator.faults.pending():  # the fault was taken
            deadline = time.monotonic() + stall + 5
            while time.monotonic() < deadline and not any(
                entry.fault == "slow" for entry in emulator.log
            ):
                time.sleep(0.05)

    def _compare(self, faulty: Emulator, reference: Emulator) -> None:
        tally = self.tally
        theirs: dict[str, list[dict[str, str]]] = {}
        for row in _open_issues(faulty):
            theirs.setdefault(row["message"], []).append(row)
        ours = {row["message"]: row for row in _open_issues(reference)}
        tally.duplicates = sum(len(rows) - 1 for rows in theirs.values())
        fault_pairs = {(row["message"], row["state"]) for rows in theirs.values() for row in rows}
        ref_pairs = {(row["message"], row["state"]) for row in ours.values()}
        tally.lost_updates += len(ref_pairs - fault_pairs)
        tally.stale_open = len(set(theirs) - set(ours))
        for message, row in ours.items():
            for match in theirs.get(message, []):
                difference = int(match["count"]) - int(row["count"])
                if difference > RERUN_ALLOWANCE:
                    tally.over_counted += 1
                elif difference < 0:
                    tally.missed_increments -= difference


# -- output ------------------------------------------------------------------------------------


def table(tally: Tally, seed: int) -> str:
    rows: list[tuple[str, str]] = [
        ("seed", str(seed)),
        ("runs", str(tally.runs)),
        ("faults injected", str(sum(tally.faults.values()))),
    ]
    rows += [(f"  {kind}", str(tally.faults[kind])) for kind in KINDS]
    rows += [
        ("runs that succeeded", str(tally.outcomes["succeeded"])),
        ("runs that failed cleanly", str(tally.outcomes["failed cleanly"])),
        ("runs killed (SIGKILL between writes)", str(tally.outcomes["killed"])),
        ("runs that failed uncleanly (must be 0)", str(tally.outcomes["failed uncleanly"])),
        ("final ecc_agent_issue, fault run vs fault-free run:", ""),
        ("  lost updates", str(tally.lost_updates)),
        ("  duplicate open issues", str(tally.duplicates)),
        ("  issues resolved on partial data", str(tally.resolved_on_partial_data)),
        ("  over-counted issues", str(tally.over_counted)),
        ("  stale open issues", str(tally.stale_open)),
        ("  runs with diverging findings", str(tally.diverging_findings)),
        ("  count increments missed by failed runs (expected)", str(tally.missed_increments)),
        ("elapsed", f"{tally.elapsed:.0f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label.ljust(width)}  {value}".rstrip() for label, value in rows]
    if tally.errors:
        lines.append("clean failures by error:")
        lines += [f"  {count:4d}  {error}" for error, count in tally.errors.most_common()]
    if tally.unclean:
        lines.append("unclean failures:")
        lines += [f"  {line}" for line in tally.unclean]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/soak",
        description="Applied checks against a faulty emulator, compared with a fault-free one.",
    )
    parser.add_argument("--runs", type=int, default=200, help="applied checks (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--slow-max",
        type=float,
        default=6.0,
        metavar="SECONDS",
        help=f"longest 'slow' answer (the read timeout is {READ_TIMEOUT:g} s; default 6)",
    )
    parser.add_argument("--verbose", action="store_true", help="one line per run")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    emit = out or (lambda line: print(line, file=sys.stderr, flush=True))
    soak = Soak(args.runs, args.seed, verbose=args.verbose, out=emit, slow_max=args.slow_max)
    tally = soak.run()
    report = table(tally, args.seed)
    if out is None:
        print(report, flush=True)
    else:
        out(report)
    return 1 if any(tally.failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
