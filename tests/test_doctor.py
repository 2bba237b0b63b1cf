"""`snowcheck doctor` against the emulator in-process, and the example config file."""

from __future__ import annotations

import base64
import json
import shutil
import socket
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from snowcheck.cli import main
from snowcheck.connection import load_config_file
from snowcheck.emulator import Emulator, Scenario
from snowcheck.output.report import Terminal
from snowcheck.settings import (
    CONFIG_KEYS,
    ConnectionOptions,
    RuleOptions,
    check_settings,
    profile_names,
    select_profile,
)
from snowcheck.settings import resolve_connection as resolve_settings

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "examples" / "demo-scenario.json"
EXAMPLE = ROOT / "config" / "snowcheck.example.toml"

PASSWORD = "s3cret-Pa55word"
TABLES = (
    "sys_user_role",
    "sys_user_has_role",
    "sys_user",
    "ecc_agent_config",
    "ecc_agent",
    "sysevent",
    "ecc_agent_issue",
)
ENVIRONMENT = (
    "SERVICENOW_INSTANCE",
    "SERVICENOW_USERNAME",
    "SERVICENOW_PASSWORD",
    "SERVICENOW_PASSWORD_FILE",
    "SN_HOST",
    "SN_USERNAME",
    "SN_PASSWORD",
    "SNOWCHECK_CONFIG",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def scenario(**admin: Any) -> Scenario:
    """The demo scenario, with the admin's password and ACLs set."""
    document = json.loads(DEMO.read_text(encoding="utf-8"))
    document["users"] = {"admin": {"password": PASSWORD, **admin}}
    return Scenario.from_dict(document)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(scenario()) as emulator:
        yield emulator


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err
        self.lines = out.splitlines()

    def line(self, name: str) -> str:
        """The first line whose check name starts with ``name``."""
        found = [line for line in self.lines if line[4:].strip().startswith(name)]
        assert found, f"no line for {name!r} in:\n{self.out}"
        return found[0]


def doctor(*argv: str, password: str | None = PASSWORD, monkeypatch: pytest.MonkeyPatch) -> Run:
    if password is not None:
        monkeypatch.setenv("SERVICENOW_PASSWORD", password)
    out, err = StringIO(), StringIO()
    code = main(["doctor", *argv], terminal=Terminal(stdout=out, stderr=err, width=200))
    return Run(code, out.getvalue(), err.getvalue())


def doctor_at(emu: Emulator, *argv: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Run:
    return doctor("--instance", emu.url, "--user", "admin", *argv, monkeypatch=monkeypatch, **kw)


def test_all_pass_on_the_demo_scenario(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    run = doctor_at(emu, monkeypatch=monkeypatch)
    assert run.code == 0, run.out
    assert run.lines
    assert all(line.startswith("OK ") for line in run.lines), run.out
    for table in TABLES:
        assert run.line(f"read {table}")
    for name in ("configuration", "instance reachable", "credentials", "write ecc_agent_issue"):
        assert run.line(name)
    assert "docs" in run.line("message templates")
    assert "skew 0 s" in run.line("clock")
    assert PASSWORD not in run.out + run.err


def test_all_pass_with_the_default_emulator_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Emulator(Scenario.load(str(DEMO))) as emulator:
        run = doctor_at(emulator, monkeypatch=monkeypatch, password="admin")
    assert run.code == 0, run.out
    assert all(line.startswith("OK ") for line in run.lines), run.out


def test_nothing_is_written(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    before = emu.rows("ecc_agent_issue")
    run = doctor_at(emu, monkeypatch=monkeypatch)
    assert run.code == 0
    assert emu.rows("ecc_agent_issue") == before
    writes = [entry for entry in emu.log if entry.method != "GET"]
    assert [(entry.method, entry.status) for entry in writes] == [("PATCH", 404)]


def test_read_denied_names_the_table_and_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(scenario(deny_read=["sysevent"])) as emulator:
        run = doctor_at(emulator, monkeypatch=monkeypatch)
    assert run.code == 1
    line = run.line("read sysevent")
    assert line.startswith("FAIL")
    assert "403" in line
    assert "admin role" in line
    failed = [line for line in run.lines if line.startswith("FAIL")]
    assert failed == [line]
    assert run.line("read ecc_agent_issue").startswith("OK")
    assert run.line("clock").startswith("OK")


@pytest.mark.parametrize("table", ["sys_user_role", "sys_user_has_role", "ecc_agent_config"])
def test_an_empty_answer_fails_where_rows_must_exist(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator(scenario(acl_empty=[table])) as emulator:
        run = doctor_at(emulator, monkeypatch=monkeypatch)
    assert run.code == 1
    line = run.line(f"read {table}")
    assert line.startswith("FAIL")
    assert "no rows visible: the table is empty or an ACL hides them; grant" in line


@pytest.mark.parametrize("table", ["sysevent", "ecc_agent_issue"])
def test_an_empty_answer_is_ok_with_a_note_where_it_can_be(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator(scenario(acl_empty=[table])) as emulator:
        run = doctor_at(emulator, monkeypatch=monkeypatch)
    assert run.code == 0, run.out
    line = run.line(f"read {table}")
    assert line.startswith("OK")
    assert "note:" in line
    assert "an ACL hides them" in line


def test_bad_credentials_fail_without_showing_the_password(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Wr0ng-password-42"
    run = doctor_at(emu, monkeypatch=monkeypatch, password=wrong)
    assert run.code == 1
    line = run.line("credentials")
    assert line.startswith("FAIL")
    assert "check user and password" in line
    token = base64.b64encode(f"admin:{wrong}".encode()).decode()
    for secret in (wrong, token):
        assert secret not in run.out + run.err
    assert run.line("instance reachable").startswith("OK")
    assert not any(line.startswith("OK") for line in run.lines if "read " in line)


def test_a_hibernating_instance_is_named(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emu.faults.add("hibernate", times=10)
    run = doctor_at(emu, monkeypatch=monkeypatch)
    assert run.code == 1
    line = run.line("instance reachable")
    assert line.startswith("FAIL")
    assert "hibernating" in line
    assert "developer portal" in line


def test_an_unreachable_instance_fails_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = doctor(
        "--instance", f"http://127.0.0.1:{port}", "--user", "admin", monkeypatch=monkeypatch
    )
    assert run.code == 1
    assert run.line("instance reachable").startswith("FAIL")
    assert "cannot connect" in run.line("instance reachable")
    assert run.lines[-1].startswith("SKIP")


def test_write_denied_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(scenario(deny_write=["ecc_agent_issue"])) as emulator:
        run = doctor_at(emulator, monkeypatch=monkeypatch)
    assert run.code == 1
    line = run.line("write ecc_agent_issue")
    assert line.startswith("FAIL")
    assert "403" in line
    assert "write ACL" in line
    assert run.line("read ecc_agent_issue").startswith("OK")


def test_a_dry_run_only_profile_skips_the_write_check(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "snowcheck.toml"
    config.write_text(
        f'[instances.x]\ninstance = "{emu.url}"\nuser = "admin"\n'
        'password_env = "X_PASSWORD"\napply = false\n'
    )
    monkeypatch.setenv("X_PASSWORD", PASSWORD)
    run = doctor("--config", str(config), "--profile", "x", password=None, monkeypatch=monkeypatch)
    assert run.code == 0, run.out
    line = run.line("write ecc_agent_issue")
    assert line.startswith("SKIP")
    assert "apply = false" in line
    assert not any(entry.method == "PATCH" for entry in emu.log)


def test_configuration_warnings_are_shown_without_failing(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    config = tmp_path / "snowcheck.toml"
    config.write_text(f'instance = "{emu.url}"\nuser = "admin"\npassword_file = "password"\n')
    run = doctor("--config", str(config), password=None, monkeypatch=monkeypatch)
    assert run.code == 0, run.out
    warning = [line for line in run.lines if line.startswith("WARN")]
    assert len(warning) == 1
    assert "configuration" in warning[0]
    assert "chmod 600" in warning[0]
    assert PASSWORD not in run.out + run.err


def test_missing_configuration_fails_first(monkeypatch: pytest.MonkeyPatch) -> None:
    run = doctor("--user", "admin", monkeypatch=monkeypatch)
    assert run.code == 1
    assert len(run.lines) == 1
    assert run.lines[0].startswith("FAIL")
    assert "configuration" in run.lines[0]
    assert "no instance given" in run.lines[0]


def test_missing_password_fails_the_configuration(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = doctor_at(emu, monkeypatch=monkeypatch, password=None)
    assert run.code == 1
    assert run.line("configuration").startswith("FAIL")
    assert "no password" in run.line("configuration")


def test_other_configured_wording_is_warned_about(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = doctor_at(emu, "--messages", "kingston", monkeypatch=monkeypatch)
    assert run.code == 0
    lines = [line for line in run.lines if "message templates" in line]
    assert lines[0].startswith("OK")
    assert "docs" in lines[0]
    assert lines[1].startswith("WARN")
    assert "configured kingston" in lines[1]


def test_auto_wording_is_not_warned_about(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    run = doctor_at(emu, "--messages", "auto", monkeypatch=monkeypatch)
    assert run.code == 0
    assert not any(line.startswith("WARN") for line in run.lines)


def test_clock_skew_above_five_minutes_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    document = json.loads(DEMO.read_text(encoding="utf-8"))
    document["now"] = "2020-01-01 00:00:00"
    with Emulator(Scenario.from_dict(document)) as emulator:
        run = doctor_at(emulator, monkeypatch=monkeypatch, password="admin")
    assert run.code == 1
    line = run.line("clock")
    assert line.startswith("FAIL")
    assert "behind the local clock" in line


def test_data_is_printed_literally(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    run = doctor("--instance", emu.url, "--user", "evil\x1b[31m", monkeypatch=monkeypatch)
    assert run.code == 1
    assert "\x1b" not in run.out
    assert "evil\\x1b[31m" in run.line("credentials")


# The example config file -------------------------------------------------------------------


def test_example_config_parses_and_every_profile_resolves(tmp_path: Path) -> None:
    # A copy, with the files its relative paths name next to it, as on a real host.
    config = tmp_path / "snowcheck.toml"
    shutil.copyfile(EXAMPLE, config)
    secret = tmp_path / "prod.password"
    secret.write_text("from-a-file\n")
    secret.chmod(0o600)
    (tmp_path / "corporate-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    for name in ("hardened.client-secret", "cloud.client-secret", "keyed.api-key"):
        (tmp_path / name).write_text(f"secret of {name}\n")
        (tmp_path / name).chmod(0o600)
    for name in ("snowcheck-client.pem", "snowcheck-client.key"):
        (tmp_path / name).write_text("-----BEGIN-----\n")
        (tmp_path / name).chmod(0o600)
    document = load_config_file(config)
    names = profile_names(document)
    assert names == ["prod", "dev", "emulator", "hardened", "cloud", "keyed", "mtls"]
    environ = {"SNOWCHECK_DEV_PASSWORD": "from-env", "SNOWCHECK_EMULATOR_PASSWORD": "admin"}
    no_cli = RuleOptions()
    err = StringIO()
    terminal = Terminal(stdout=StringIO(), stderr=err)
    passwords: dict[str, str] = {}
    logins: dict[str, tuple[str, bool, bool]] = {}
    for name in [None, *names]:
        profile = select_profile(document, name)
        settings = check_settings(no_cli, profile, terminal.warn)
        assert settings.source == "MIDUserConnectivity"
        if name is None:
            continue
        resolved = resolve_settings(ConnectionOptions(), profile, environ=environ, prompt=None)
        assert resolved.warnings == ()
        login = resolved.connection.login
        passwords[name] = resolved.connection.password or login.client_secret or login.api_key
        logins[name] = (login.method, login.token_cache, bool(login.client_cert))
    assert err.getvalue() == ""
    assert passwords == {
        "prod": "from-a-file",
        "dev": "from-env",
        "emulator": "admin",
        "hardened": "from-a-file",
        "cloud": "secret of cloud.client-secret",
        "keyed": "secret of keyed.api-key",
        "mtls": "",
    }
    assert logins == {
        "prod": ("basic", True, False),
        "dev": ("basic", True, False),
        "emulator": ("basic", True, False),
        "hardened": ("oauth-password", True, False),
        "cloud": ("oauth-client-credentials", False, False),
        "keyed": ("api-key", True, False),
        "mtls": ("mtls", True, True),
    }
    hardened = resolve_settings(
        ConnectionOptions(), select_profile(document, "hardened"), environ=environ, prompt=None
    )
    assert hardened.connection.login.client_secret == "secret of hardened.client-secret"
    dev = select_profile(document, "dev")
    assert dev["apply"] is False
    assert check_settings(no_cli, dev, terminal.warn).messages == "auto"


def test_example_config_documents_only_keys_snowcheck_reads() -> None:
    read = {
        # connection.resolve_connection
        "instance",
        "user",
        "password_env",
        "password_file",
        "ca_bundle",
        "page_size",
        "connect_timeout",
        "read_timeout",
        # settings.check_settings and the apply guard
        "window",
        "messages",
        "source",
        "concurrency",
        "advisories",
        "apply",
        # settings.write_settings
        "batch",
        "batch_size",
        # credentials.resolve_login
        "auth",
        "client_id",
        "client_secret_file",
        "api_key_file",
        "api_key_header",
        "client_cert",
        "client_key",
        "token_cache",
    }
    document = load_config_file(EXAMPLE)
    keys = {key for key in document if key != "instances"}
    for profile in document["instances"].values():
        keys |= set(profile)
    assert keys <= read
    assert keys == read
    assert set(CONFIG_KEYS) == read
