"""The soak at a small size, its comparison's own checks, and two --apply runs at once.

The soak (scripts/soak.py) runs as a subprocess, as scripts/soak does, with 12 runs.
The concurrency tests start two real `python -m snowcheck check --apply` processes at
the same moment against one emulator that answers slowly, so their runs overlap.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from snowcheck.emulator import BatchConfig, Emulator, Scenario
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.records import ISSUE_TABLE

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "scripts" / "soak.py"
DEMO = ROOT / "config" / "examples" / "demo-scenario.json"
USER = "racer"
PASSWORD = "race-pass-42"
NOW = "2026-11-25 12:00:00"


def _load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("snowcheck_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _value(report: str, label: str) -> str:
    for line in report.splitlines():
        if line.startswith(label):
            return line[len(label) :].strip()
    raise AssertionError(f"no {label!r} line in:\n{report}")


# -- the soak ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_small_soak_has_no_unclean_failure_and_converges() -> None:
    done = subprocess.run(
        # Slow answers at most 1.5 s past the read timeout: the slow-commit duplicates have
        # their own (xfail) test below; this one guards everything else.
        [sys.executable, str(SOAK), "--runs", "12", "--seed", "11", "--slow-max", "2.5"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    report = done.stdout
    assert _value(report, "runs ") == "12", report
    assert _value(report, "runs that failed uncleanly (must be 0)") == "0", report + done.stderr
    assert int(_value(report, "faults injected")) >= 4, report
    for label in (
        "  lost updates",
        "  duplicate open issues",
        "  issues resolved on partial data",
        "  over-counted issues",
        "  stale open issues",
        "  runs with diverging findings",
    ):
        assert _value(report, label) == "0", report
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, report + done.stderr


def _issue(message: str, *, state: str = "new", count: str = "1", n: int = 0) -> dict[str, str]:
    return {
        "sys_id": f"{n:032x}",
        "message": message,
        "source": DEFAULT_SOURCE,
        "state": state,
        "count": count,
        "last_detected": NOW,
        "mid_server": "",
        "sys_domain": "global",
        "sys_updated_on": NOW,
    }


def test_the_soak_comparison_counts_each_kind_of_divergence() -> None:
    soak = _load_soak()
    with Emulator() as faulty, Emulator() as reference:
        reference.store.put_rows(
            ISSUE_TABLE,
            [
                _issue("kept", count="5", n=1),
                _issue("over", count="2", n=2),
                _issue("lost", n=3),
                _issue("behind", count="4", n=4),
                _issue("acked", state="acknowledged", n=5),
            ],
            replace=True,
        )
        faulty.store.put_rows(
            ISSUE_TABLE,
            [
                _issue("kept", count="5", n=1),
                _issue("over", count="3", n=2),
                _issue("behind", count="2", n=4),
                _issue("acked", state="new", n=5),
                _issue("stale", n=6),
                _issue("kept", count="1", n=7),
                _issue("resolved twice", state="resolved", n=8),
                _issue("resolved twice", state="resolved", n=9),
            ],
            replace=True,
        )
        run = soak.Soak(1, 1, verbose=False, out=lambda _: None)
        run._compare(faulty, reference)
    tally = run.tally
    assert tally.duplicates == 1  # "kept" twice open; resolved duplicates do not count
    assert tally.over_counted == 1  # "over": 3 > 2
    assert tally.lost_updates == 2  # "lost" missing, "acked" state differs
    assert tally.stale_open == 1  # "stale"
    assert tally.missed_increments == 2 + 4  # "behind" 4 -> 2, second "kept" 5 -> 1
    assert any(tally.failures.values())


@pytest.mark.parametrize(
    ("code", "out", "err", "killed", "outcome"),
    [
        (0, '{"applied": true, "findings": []}', "warning: x\n", False, "succeeded"),
        (0, "not json", "", False, "failed uncleanly"),
        (
            1,
            "",
            "retrying\nsnowcheck: error: the instance is hibernating\n",
            False,
            "failed cleanly",
        ),
        (1, "", "snowcheck: error: a\nsnowcheck: error: b\n", False, "failed uncleanly"),
        (1, "", "Traceback (most recent call last):\n", False, "failed uncleanly"),
        (1, "", "", False, "failed uncleanly"),
        (2, "", "snowcheck: error: bad config\n", False, "failed uncleanly"),
        (-9, "", "", True, "killed"),
        (-9, "", "", False, "failed uncleanly"),
        (-11, "", "", True, "failed uncleanly"),
    ],
)
def test_the_soak_sorts_process_outcomes(
    code: int, out: str, err: str, killed: bool, outcome: str
) -> None:
    assert _load_soak().classify(code, out, err, killed=killed).outcome == outcome


# -- two --apply runs at once ------------------------------------------------------------------


def _scenario() -> Scenario:
    document = json.loads(DEMO.read_text())
    document["now"] = NOW
    document["users"] = {USER: {"password": PASSWORD}}
    return Scenario.from_dict(document)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SERVICENOW_", "SN_", "SNOWCHECK_"))
    }
    environment["SERVICENOW_PASSWORD"] = PASSWORD
    environment["XDG_STATE_HOME"] = str(tmp_path / "state")
    return environment


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(_scenario()) as emu:
        yield emu


def _command(url: str, *extra: str) -> list[str]:
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
        "--messages",
        "docs",
        *extra,
    ]


def _together(commands: list[list[str]], env: dict[str, str]) -> list[tuple[int, str]]:
    children = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    results = []
    for child in children:
        _, err = child.communicate(timeout=120)
        results.append((child.returncode, err))
    return results


def _issues(emulator: Emulator) -> list[tuple[str, str, str, str]]:
    """Our issues without their sys_ids: (message, state, count, last_detected), sorted."""
    return sorted(
        (row["message"], row["state"], row["count"], row["last_detected"])
        for row in emulator.rows(ISSUE_TABLE)
        if row.get("source") == DEFAULT_SOURCE
    )


def _open_duplicates(emulator: Emulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in emulator.rows(ISSUE_TABLE):
        if row.get("source") == DEFAULT_SOURCE and row.get("state") != "resolved":
            counts[row["message"]] = counts.get(row["message"], 0) + 1
    return {message: n for message, n in counts.items() if n > 1}


def _one_run_result(env: dict[str, str]) -> list[tuple[str, str, str, str]]:
    with Emulator(_scenario()) as alone:
        done = subprocess.run(
            _command(alone.url), env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        return _issues(alone)


@pytest.mark.slow
def test_two_runs_at_once_with_the_lock_leave_the_table_of_one_run(
    emulator: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    lock = str(tmp_path / "one.lock")
    emulator.latency = 0.25  # every request is slow: the two runs overlap for sure
    results = _together([_command(emulator.url, "--lock-file", lock)] * 2, env)
    emulator.latency = 0
    assert [code for code, _ in results] == [0, 0], results
    flat = [" ".join(err.split()) for _, err in results]  # rich wraps long lines
    skipped = [err for err in flat if "holds" in err and "skipping this run" in err]
    assert len(skipped) == 1, results
    assert _issues(emulator) == _one_run_result(env)
    assert _open_duplicates(emulator) == {}


def _created_by_one_run(env: dict[str, str]) -> int:
    with Emulator(_scenario()) as alone:
        before = len(alone.rows(ISSUE_TABLE))
        subprocess.run(_command(alone.url), env=env, capture_output=True, timeout=120, check=True)
        return len(alone.rows(ISSUE_TABLE)) - before


def _no_lock_race(emulator: Emulator, env: dict[str, str]) -> list[tuple[int, str]]:
    emulator.latency = 0.25
    results = _together([_command(emulator.url, "--no-lock")] * 2, env)
    emulator.latency = 0
    return results


@pytest.mark.slow
def test_two_runs_at_once_without_the_lock_both_complete(
    emulator: Emulator, env: dict[str, str]
) -> None:
    assert _created_by_one_run(env) > 0  # the race is about creates: there are some
    results = _no_lock_race(emulator, env)
    assert [code for code, _ in results] == [0, 0], results
    assert all("Traceback" not in err for _, err in results)


@pytest.mark.slow
def test_two_runs_at_once_without_the_lock_create_no_duplicate_open_issue(
    emulator: Emulator, env: dict[str, str]
) -> None:
    """Each run reads back what it created and resolves a concurrent run's duplicates."""
    _no_lock_race(emulator, env)
    assert _open_duplicates(emulator) == {}
    # The race really happened: both runs created, and the duplicates were settled.
    issues = _issues(emulator)
    opened = {m for m, s, _, _ in issues if s != "resolved"}
    assert any(s == "resolved" and m in opened for m, s, _, _ in issues)
    # And the issues are those of one run, apart from the resolved duplicates and counts.
    alone = _one_run_result(env)
    opened = {(m, s) for m, s, _, _ in _issues(emulator) if s != "resolved"}
    assert opened == {(m, s) for m, s, _, _ in alone if s != "resolved"}


# -- a create slower than the read timeout -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("batch", [False, True], ids=["single-requests", "batch-api"])
def test_a_create_answered_after_the_read_timeout_leaves_no_duplicate(
    env: dict[str, str], tmp_path: Path, batch: bool
) -> None:
    config = tmp_path / "snowcheck.toml"
    config.write_text("read_timeout = 1\n")
    with Emulator(_scenario()) as emu:
        emu.batch = BatchConfig(enabled=batch)
        path = "/api/now/v1/batch" if batch else "/table/ecc_agent_issue"
        emu.faults.add("slow", seconds=5, method="POST", path=path)
        started = time.monotonic()
        done = subprocess.run(
            _command(emu.url, "--config", str(config)),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # Wait for the slow POST to be served (it commits then, whatever the client did).
        while not any(e.fault == "slow" for e in emu.log) and time.monotonic() < started + 30:
            time.sleep(0.1)
        assert "Traceback" not in done.stderr
        assert done.returncode in (0, 1), done.stderr
        assert _open_duplicates(emu) == {}
        # The next run reads what the slow answer saved and converges.
        again = subprocess.run(
            _command(emu.url, "--config", str(config)),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert _open_duplicates(emu) == {}
