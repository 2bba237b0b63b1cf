"""--all-profiles supports every output of a single check, and its exit is the worst one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import runner

from snowcheck.emulator import Emulator, Scenario

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"


run = runner(width=240)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, str]]:
    """A config of two good profiles (east, west) and one with a wrong password (bad)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    scenario = Scenario.load(str(DEMO))
    with Emulator(scenario) as east, Emulator(Scenario.load(str(DEMO))) as west:
        (tmp_path / "password").write_text("admin\n")
        (tmp_path / "wrong").write_text("wrong-password\n")
        for name in ("password", "wrong"):
            (tmp_path / name).chmod(0o600)
        path = tmp_path / "snowcheck.toml"
        path.write_text(
            'user = "admin"\npassword_file = "password"\n'
            f'[instances.east]\ninstance = "{east.url}"\n'
            f'[instances.west]\ninstance = "{west.url}"\n'
            f'[instances.bad]\ninstance = "{west.url}"\npassword_file = "wrong"\n'
        )
        yield str(path), east.url, west.url


def test_json_is_one_document_of_every_profile(fleet: tuple[str, str, str]) -> None:
    path, east, west = fleet
    code, out, _ = run("check", "--config", path, "--all-profiles", "--format", "json")
    assert code == 1  # bad could not complete: the worst of the profiles
    document = json.loads(out)
    entries = {entry["profile"]: entry for entry in document["profiles"]}
    assert list(entries) == ["east", "west", "bad"]
    assert entries["east"]["instance"] == east and entries["east"]["exit"] == 0
    assert len(entries["east"]["document"]["findings"]) == 10
    assert entries["west"]["document"]["instance"] == west
    assert entries["bad"]["exit"] == 1 and "authentication" in entries["bad"]["error"]
    assert "document" not in entries["bad"]


def test_nagios_is_one_line_for_the_fleet_with_per_profile_perfdata(
    fleet: tuple[str, str, str],
) -> None:
    path, _, _ = fleet
    code, out, _ = run("check", "--config", path, "--all-profiles", "--format", "nagios")
    lines = out.splitlines()
    assert code == 2  # CRITICAL: the demo has findings on down MID Servers
    assert lines[0].startswith("SNOWCHECK CRITICAL - 3 profiles: 2 CRITICAL, 1 UNKNOWN | ")
    perfdata = lines[0].split(" | ", 1)[1]
    assert "east_findings=10;;;0" in perfdata and "west_changes=11;;;0" in perfdata
    assert [line.split(":")[0] for line in lines[1:]] == ["east", "west", "bad"]


def test_prometheus_has_a_series_per_instance_and_none_for_an_unknown_one(
    fleet: tuple[str, str, str], tmp_path: Path
) -> None:
    path, east, west = fleet
    textfile = tmp_path / "snowcheck.prom"
    run("check", "--config", path, "--all-profiles", "--prometheus-textfile", str(textfile))
    text = textfile.read_text()
    assert text.count("# TYPE snowcheck_last_run_success gauge") == 1
    success = re.findall(
        r'^snowcheck_last_run_success\{snowcheck_instance="([^"]+)"\} (\d)', text, re.M
    )
    # bad shares west's instance: its failure is a second series of that label.
    assert (east, "1") in success and (west, "1") in success and (west, "0") in success


def test_quiet_prints_nothing_but_the_log_file_has_every_profile(
    fleet: tuple[str, str, str], tmp_path: Path
) -> None:
    path, _, _ = fleet
    log = tmp_path / "snowcheck.log"
    code, out, err = run(
        "check", "--config", path, "--all-profiles", "--quiet", "--log-file", str(log)
    )
    assert code == 1
    assert out == ""
    # Only the failure, in one line, for cron to mail.
    assert err.startswith("snowcheck: error: profile bad: authentication as admin failed")
    assert err.count("\n") == 1
    text = log.read_text()
    assert "check of http://127.0.0.1" in text
    assert "authentication as admin failed" in text
    assert "wrong-password" not in text


def test_an_explicit_lock_file_is_a_usage_error(
    fleet: tuple[str, str, str], tmp_path: Path
) -> None:
    path, _, _ = fleet
    code, out, err = run(
        "check", "--config", path, "--all-profiles", "--apply", "--lock-file", str(tmp_path / "l")
    )
    assert code == 2
    assert out == ""
    assert "--lock-file" in err and "--all-profiles" in err
    assert not (tmp_path / "l").exists()
