"""The Prometheus textfile knows its instance; --quiet silences the terminal, not the log."""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

import pytest
from cli_support import runner

from snowcheck.emulator import Emulator
from snowcheck.locking import default_lock_path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "examples" / "demo-scenario.json"
SNAPSHOT = ROOT / "config" / "examples" / "snapshot.json"


run = runner(width=200)


def series(text: str, metric: str) -> list[tuple[str, str]]:
    return re.findall(rf"^{metric}\{{(.*)\}} (\S+)$", text, re.MULTILINE)


def test_a_configuration_error_keeps_the_old_textfile(demo: Emulator, tmp_path: Path) -> None:
    textfile = tmp_path / "snowcheck.prom"
    code, _, _ = run(
        "check", "--instance", demo.url, "--user", "admin", "--prometheus-textfile", str(textfile)
    )
    assert code == 0
    good = textfile.read_text()
    assert f'snowcheck_instance="{demo.url}"' in good
    # Before any instance is known: a bad window, then an unknown profile.
    code, _, _ = run(
        "check", "--instance", demo.url, "--window", "5", "--prometheus-textfile", str(textfile)
    )
    assert code == 2
    code, _, _ = run("check", "--profile", "nope", "--prometheus-textfile", str(textfile))
    assert code == 2
    assert textfile.read_text() == good


def test_a_failed_run_of_a_known_instance_keeps_its_last_success(
    demo: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    textfile = tmp_path / "snowcheck.prom"
    argv = (
        "check",
        "--instance",
        demo.url,
        "--user",
        "admin",
        "--prometheus-textfile",
        str(textfile),
    )
    run(*argv)
    [(_, success_time)] = series(textfile.read_text(), "snowcheck_last_success_timestamp_seconds")
    monkeypatch.setenv("SERVICENOW_PASSWORD", "wrong-password")
    code, _, _ = run(*argv)
    assert code == 1
    text = textfile.read_text()
    label = f'snowcheck_instance="{demo.url}"'
    assert series(text, "snowcheck_last_run_success") == [(label, "0")]
    assert series(text, "snowcheck_last_success_timestamp_seconds") == [(label, success_time)]


def test_a_snapshot_run_writes_findings_under_the_snapshot_s_name(tmp_path: Path) -> None:
    textfile = tmp_path / "snowcheck.prom"
    code, _, _ = run("check", "--snapshot", str(SNAPSHOT), "--prometheus-textfile", str(textfile))
    assert code == 0
    text = textfile.read_text()
    label = 'snowcheck_instance="snapshot.json"'
    findings = series(text, "snowcheck_findings")
    assert findings and all(labels.startswith(label) for labels, _ in findings)
    assert sum(float(value) for _, value in findings) > 0
    assert series(text, "snowcheck_open_issues")
    assert 'instance="unknown"' not in text and "{instance=" not in text


def test_quiet_keeps_every_warning_in_the_log_file(demo: Emulator, tmp_path: Path) -> None:
    log = tmp_path / "snowcheck.log"
    password = tmp_path / "password"
    password.write_text("admin\n")
    password.chmod(0o644)  # readable by others: a warning
    config = tmp_path / "snowcheck.toml"
    config.write_text(f'instance = "{demo.url}"\nuser = "admin"\npassword_file = "password"\n')
    os.environ.pop("SERVICENOW_PASSWORD")
    code, out, err = run(
        "check", "--config", str(config), "--window", "4m", "--quiet", "--log-file", str(log)
    )
    assert code == 0
    assert out == "" and err == ""
    text = log.read_text()
    assert re.search(r"WARNING password file .* is readable by group or others", text)
    assert re.search(r"WARNING window 0:04:00 is shorter than the MID Server heartbeat", text)


def test_a_held_lock_is_logged_at_info(demo: Emulator, tmp_path: Path) -> None:
    log = tmp_path / "snowcheck.log"
    lock = default_lock_path(demo.url, os.environ)
    Path(lock).parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        argv = ("check", "--instance", demo.url, "--user", "admin", "--apply")
        code, _, _ = run(*argv, "--quiet", "--log-file", str(log))
    assert code == 0
    text = log.read_text()
    assert re.search(r"INFO another snowcheck run .* holds", text)
    assert "ERROR" not in text
