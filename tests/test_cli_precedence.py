"""An explicit profile says where and who; every config value is typed and checked once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import runner

from snowcheck.emulator import Emulator, Scenario

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"


run = runner(width=240)


@pytest.fixture
def pair() -> Iterator[tuple[Emulator, Emulator]]:
    """Two instances: "prod" (password prod-secret-1) and "dev" (password dev-secret-2)."""
    prod = json.loads(DEMO.read_text())
    prod["users"] = {"admin": {"password": "prod-secret-1"}}
    dev = json.loads(DEMO.read_text())
    dev["users"] = {"admin": {"password": "dev-secret-2"}}
    with Emulator(Scenario.from_dict(prod)) as first, Emulator(Scenario.from_dict(dev)) as second:
        yield first, second


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "snowcheck.toml"
    path.write_text(text)
    for name, secret in (("prod.password", "prod-secret-1"), ("dev.password", "dev-secret-2")):
        (tmp_path / name).write_text(secret + "\n")
        (tmp_path / name).chmod(0o600)
    return str(path)


def test_an_explicit_profile_beats_every_overriding_variable_and_names_each(
    tmp_path: Path, pair: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, dev = pair
    monkeypatch.setenv("SERVICENOW_INSTANCE", dev.url)
    monkeypatch.setenv("SN_HOST", dev.url)
    monkeypatch.setenv("SERVICENOW_USERNAME", "someone.else")
    monkeypatch.setenv("SERVICENOW_PASSWORD", "dev-secret-2")
    monkeypatch.setenv("SERVICENOW_PASSWORD_FILE", str(tmp_path / "dev.password"))
    monkeypatch.setenv("SN_PASSWORD", "dev-secret-2")
    path = config(
        tmp_path,
        f'[instances.prod]\ninstance = "{prod.url}"\nuser = "admin"\n'
        'password_file = "prod.password"\n',
    )
    dev.clear_log()
    code, out, err = run("check", "--config", path, "--profile", "prod", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["instance"] == prod.url
    assert dev.log == []
    warnings = [line for line in err.splitlines() if line.startswith("warning: ignoring ")]
    named = {line.split()[2].rstrip(":") for line in warnings}
    assert named == {
        "SERVICENOW_INSTANCE",
        "SN_HOST",
        "SERVICENOW_USERNAME",
        "SERVICENOW_PASSWORD",
        "SERVICENOW_PASSWORD_FILE",
        "SN_PASSWORD",
    }
    assert all("profile 'prod'" in line for line in warnings)


def test_without_a_profile_the_environment_still_beats_the_file(
    tmp_path: Path, pair: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, dev = pair
    monkeypatch.setenv("SERVICENOW_INSTANCE", dev.url)
    monkeypatch.setenv("SERVICENOW_PASSWORD", "dev-secret-2")
    path = config(tmp_path, f'instance = "{prod.url}"\nuser = "admin"\n')
    code, out, err = run("check", "--config", path, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["instance"] == dev.url
    assert "ignoring" not in err


def test_all_profiles_use_each_profile_s_own_password(
    tmp_path: Path, pair: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, dev = pair
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("SERVICENOW_INSTANCE", dev.url)
    monkeypatch.setenv("SERVICENOW_PASSWORD", "dev-secret-2")
    monkeypatch.setenv("DEV_PASSWORD", "dev-secret-2")
    path = config(
        tmp_path,
        'user = "admin"\n'
        f'[instances.prod]\ninstance = "{prod.url}"\npassword_file = "prod.password"\n'
        f'[instances.dev]\ninstance = "{dev.url}"\npassword_env = "DEV_PASSWORD"\n',
    )
    code, out, err = run("check", "--config", path, "--all-profiles", "--format", "json")
    assert code == 0, err
    profiles = {entry["profile"]: entry for entry in json.loads(out)["profiles"]}
    assert profiles["prod"]["instance"] == prod.url
    assert profiles["dev"]["instance"] == dev.url
    assert all("document" in entry for entry in profiles.values())
    assert "ignoring SERVICENOW_INSTANCE: profile 'prod'" in err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('apply = "false"', "config key 'apply' in [instances.prod] must be true or false"),
        ("apply = 0", "config key 'apply' in [instances.prod] must be true or false, got 0"),
        ('batch_size = "10"', "config key 'batch_size' in [instances.prod] must be a whole number"),
        ("max_changes = true", "config key 'max_changes' in [instances.prod] must be a whole"),
        ("instance = 5", "config key 'instance' in [instances.prod] must be a string, got 5"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_the_key(
    tmp_path: Path, line: str, message: str
) -> None:
    path = config(tmp_path, f'[instances.prod]\nuser = "admin"\n{line}\n')
    code, out, err = run("check", "--config", path, "--profile", "prod", "--apply")
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_string_false_no_longer_lets_apply_through(
    tmp_path: Path, pair: tuple[Emulator, Emulator]
) -> None:
    prod, _ = pair
    before = prod.rows("ecc_agent_issue")
    path = config(
        tmp_path,
        f'[instances.prod]\ninstance = "{prod.url}"\nuser = "admin"\n'
        'password_file = "prod.password"\napply = "false"\n',
    )
    code, _, err = run("check", "--config", path, "--profile", "prod", "--apply")
    assert code == 2
    assert "'apply'" in err
    assert prod.rows("ecc_agent_issue") == before
