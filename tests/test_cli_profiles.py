"""Profiles from the config file: selection, apply = false, and --all-profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import runner

from snowcheck.emulator import Emulator, Scenario

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"


@pytest.fixture
def emulators() -> Iterator[tuple[Emulator, Emulator]]:
    with Emulator(Scenario.load(str(DEMO))) as first, Emulator(Scenario.load(str(DEMO))) as second:
        yield first, second


run = runner(width=240)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "snowcheck.toml"
    path.write_text(text)
    (tmp_path / "password").write_text("admin\n")
    (tmp_path / "password").chmod(0o600)
    (tmp_path / "wrong").write_text("not-the-password\n")
    (tmp_path / "wrong").chmod(0o600)
    return str(path)


def test_profile_is_selected_and_top_level_keys_are_defaults(
    tmp_path: Path, emulators: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = emulators
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = write_config(
        tmp_path,
        f'user = "admin"\npassword_file = "password"\nwindow = "2h"\n'
        f'[instances.lab]\ninstance = "{first.url}"\n',
    )
    code, out, _ = run("check", "--config", config, "--profile", "lab", "--format", "json")
    assert code == 0
    assert '"window_seconds": 7200' in out
    assert f'"instance": "{first.url}"' in out


def test_unknown_profile_names_the_known_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[instances.prod]\ninstance = "dev1"\n')
    code, _, err = run("check", "--config", config, "--profile", "qa")
    assert code == 2
    assert "no profile 'qa'" in err
    assert "prod" in err


def test_dry_run_only_profile_refuses_apply_before_any_request(
    tmp_path: Path, emulators: tuple[Emulator, Emulator]
) -> None:
    first, _ = emulators
    first.clear_log()
    config = write_config(
        tmp_path,
        f'[instances.prod]\ninstance = "{first.url}"\nuser = "admin"\n'
        'password_file = "password"\napply = false\n',
    )
    code, _, err = run("check", "--config", config, "--profile", "prod", "--apply")
    assert code == 2
    assert "does not allow --apply" in err
    assert first.log == []


def test_all_profiles_prints_one_table_and_fails_if_one_failed(
    tmp_path: Path, emulators: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = emulators
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = write_config(
        tmp_path,
        'user = "admin"\n'
        f'[instances.east]\ninstance = "{first.url}"\npassword_file = "password"\n'
        f'[instances.west]\ninstance = "{second.url}"\npassword_file = "wrong"\n',
    )
    code, out, err = run("check", "--config", config, "--all-profiles")
    assert code == 1
    assert "Profiles" in out
    east = next(line for line in out.splitlines() if " east " in line)
    assert "10" in east and "dry run" in east
    west = next(line for line in out.splitlines() if " west " in line)
    assert "authentication" in west
    assert "not-the-password" not in out + err


def test_all_profiles_applies_only_where_allowed(
    tmp_path: Path, emulators: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = emulators
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    before = second.rows("ecc_agent_issue")
    config = write_config(
        tmp_path,
        'user = "admin"\npassword_file = "password"\n'
        f'[instances.east]\ninstance = "{first.url}"\n'
        f'[instances.west]\ninstance = "{second.url}"\napply = false\n',
    )
    code, out, err = run("check", "--config", config, "--all-profiles", "--apply")
    # A profile with apply = false runs dry, with a note, instead of failing the run.
    assert code == 0
    assert "applied" in next(line for line in out.splitlines() if " east " in line)
    assert "dry run" in next(line for line in out.splitlines() if " west " in line)
    assert "profile west: dry run: the profile does not allow --apply" in err
    assert second.rows("ecc_agent_issue") == before
    assert len(first.rows("ecc_agent_issue")) > len(before)
