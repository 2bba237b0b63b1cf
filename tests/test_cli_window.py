"""--window through the CLI: always with a unit, on the command line and in the config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import runner

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"


run = runner(width=200)


@pytest.mark.parametrize(
    ("window", "seconds"),
    [("90s", 90), ("5m", 300), ("4h", 14400), ("4h30m", 16200), ("300000ms", 300)],
)
def test_a_window_with_its_unit_is_the_reporting_period(window: str, seconds: int) -> None:
    code, out, _ = run("check", "--snapshot", str(EXAMPLE), "--window", window, "--format", "json")
    assert code == 0
    assert json.loads(out)["window_seconds"] == seconds


@pytest.mark.parametrize("window", ["5", "300000"])
def test_a_bare_number_on_the_command_line_is_a_usage_error_suggesting_the_unit(
    window: str,
) -> None:
    code, out, err = run("check", "--snapshot", str(EXAMPLE), "--window", window)
    assert code == 2
    assert out == ""
    assert f"invalid window '{window}': give a unit, e.g. {window}m for minutes" in err
    assert f"{window}ms for milliseconds" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("value", ["5", '"5"', "300000"])
def test_a_bare_number_in_the_config_file_is_a_usage_error_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "not-used")
    config = tmp_path / "snowcheck.toml"
    # Port 9 (discard): the window is refused before any connection is tried.
    config.write_text(f'instance = "http://127.0.0.1:9"\nuser = "u"\nwindow = {value}\n')
    code, out, err = run("check", "--config", str(config))
    assert code == 2
    assert out == ""
    number = value.strip('"')
    assert f"invalid window '{number}': give a unit, e.g. {number}m for minutes" in err
