"""Connection settings: instance normalisation, precedence, passwords, the config file."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from snowcheck.connection import (
    Connection,
    ResolvedConnection,
    config_path,
    load_config_file,
    normalise_instance,
    resolve_connection,
)
from snowcheck.errors import ConfigError

SECRET = "s3cret-Pa55word"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dev12345", "https://dev12345.service-now.com"),
        ("DEV12345", "https://dev12345.service-now.com"),
        ("acme.service-now.com", "https://acme.service-now.com"),
        ("acme.service-now.com:8443", "https://acme.service-now.com:8443"),
        ("https://acme.service-now.com/", "https://acme.service-now.com"),
        ("https://acme.service-now.com/now/nav/ui?x=1", "https://acme.service-now.com"),
        ("  https://Acme.Service-Now.com  ", "https://acme.service-now.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.8.9.10:80/", "http://127.8.9.10:80"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:9000/api", "http://[::1]:9000"),
        ("localhost:9000", "https://localhost:9000"),
        ("10.0.0.5", "https://10.0.0.5"),
    ],
)
def test_normalise_instance(value: str, expected: str) -> None:
    assert normalise_instance(value) == expected


@pytest.mark.parametrize(
    "value", ["http://acme.service-now.com", "http://10.0.0.1:8080", "http://[::2]/"]
)
def test_http_is_refused_off_loopback(value: str) -> None:
    with pytest.raises(ConfigError, match="https is required"):
        normalise_instance(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "dev 12345",
        "ftp://acme.service-now.com",
        "https://",
        "acme..com",
        "a:b:c",
        "https://host:99999",
        "-bad-",
        "acme.service-now.com:port",
    ],
)
def test_garbage_instances_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="not a valid instance"):
        normalise_instance(value)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as caught:
        normalise_instance(f"https://admin:{SECRET}@acme.service-now.com")
    assert SECRET not in str(caught.value)


def test_connection_repr_never_shows_the_password() -> None:
    connection = Connection(base_url="https://dev1.service-now.com", user="u", password=SECRET)
    assert SECRET not in repr(connection)
    assert SECRET not in str(connection)
    assert connection.host == "dev1.service-now.com"
    assert connection.use_ssl


def resolve(
    *,
    instance: str | None = None,
    user: str | None = None,
    ca_bundle: str | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> ResolvedConnection:
    return resolve_connection(
        instance=instance,
        user=user,
        ca_bundle=ca_bundle,
        config=config or {},
        environ=environ or {},
        prompt=prompt,
    )


def test_command_line_beats_environment_beats_config() -> None:
    config = {"instance": "fromfile", "user": "file.user", "password_env": "MY_PW"}
    environ = {
        "SERVICENOW_INSTANCE": "fromenv",
        "SERVICENOW_USERNAME": "env.user",
        "SERVICENOW_PASSWORD": "env-pw",
        "MY_PW": "file-pw",
    }
    both = resolve(instance="fromcli", user="cli.user", config=config, environ=environ)
    assert both.connection.base_url == "https://fromcli.service-now.com"
    assert both.connection.user == "cli.user"
    assert both.connection.password == "env-pw"

    env_only = resolve(config=config, environ=environ).connection
    assert (env_only.base_url, env_only.user) == ("https://fromenv.service-now.com", "env.user")

    del environ["SERVICENOW_INSTANCE"], environ["SERVICENOW_USERNAME"]
    del environ["SERVICENOW_PASSWORD"]
    file_only = resolve(config=config, environ=environ).connection
    assert file_only.base_url == "https://fromfile.service-now.com"
    assert (file_only.user, file_only.password) == ("file.user", "file-pw")


def test_ansible_variables_are_fallbacks() -> None:
    environ = {"SN_HOST": "dev7", "SN_USERNAME": "ansible", "SN_PASSWORD": "pw"}
    connection = resolve(environ=environ).connection
    assert (connection.base_url, connection.user, connection.password) == (
        "https://dev7.service-now.com",
        "ansible",
        "pw",
    )
    environ |= {"SERVICENOW_INSTANCE": "dev8", "SERVICENOW_USERNAME": "ours"}
    environ["SERVICENOW_PASSWORD"] = "ours-pw"
    connection = resolve(environ=environ).connection
    assert (connection.base_url, connection.user, connection.password) == (
        "https://dev8.service-now.com",
        "ours",
        "ours-pw",
    )


def test_settings_come_from_the_config_file(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("cert")
    config = {
        "instance": "dev1",
        "user": "u",
        "ca_bundle": str(bundle),
        "connect_timeout": 3,
        "read_timeout": 30.5,
        "page_size": 500,
    }
    connection = resolve(config=config, environ={"SERVICENOW_PASSWORD": "p"}).connection
    assert connection.verify == str(bundle)
    assert (connection.connect_timeout, connection.read_timeout) == (3.0, 30.5)
    assert connection.page_size == 500
    cli = resolve(
        ca_bundle=str(bundle),
        environ={"SERVICENOW_PASSWORD": "p"},
        config={"instance": "dev1", "user": "u"},
    )
    assert cli.connection.verify == str(bundle)
    default = resolve(config={"instance": "dev1", "user": "u"}, environ={"SN_PASSWORD": "p"})
    assert default.connection.verify is True


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": "10"}, "page_size"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"connect_timeout": True}, "connect_timeout"),
        ({"ca_bundle": "/no/such/bundle.pem"}, "CA bundle"),
    ],
)
def test_bad_config_values(config: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        resolve(instance="dev1", user="u", config=config, environ={"SERVICENOW_PASSWORD": "p"})
    with pytest.raises(ConfigError, match="'user'"):
        resolve(instance="dev1", config={"user": 5}, environ={"SERVICENOW_PASSWORD": "p"})


def test_missing_instance_names_flag_env_and_key() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(user="u", environ={"SERVICENOW_PASSWORD": "p"})
    message = str(caught.value)
    assert "--instance" in message and "SERVICENOW_INSTANCE" in message
    assert "'instance'" in message


def test_missing_user_names_flag_env_and_key() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(instance="dev1", environ={"SERVICENOW_PASSWORD": "p"})
    message = str(caught.value)
    assert "--user" in message and "SERVICENOW_USERNAME" in message and "'user'" in message


def test_missing_password_names_the_three_ways() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(instance="dev1", user="u")
    message = str(caught.value)
    for way in ("SERVICENOW_PASSWORD,", "SERVICENOW_PASSWORD_FILE", "terminal"):
        assert way in message


def test_prompt_is_used_last() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    resolved = resolve(instance="dev1", user="u", prompt=prompt)
    assert resolved.connection.password == "typed"
    assert asked == ["Password for u at https://dev1.service-now.com: "]
    resolve(instance="dev1", user="u", prompt=prompt, environ={"SERVICENOW_PASSWORD": "p"})
    assert len(asked) == 1
    with pytest.raises(ConfigError, match="no password"):
        resolve(instance="dev1", user="u", prompt=lambda _: "")


def test_password_file_strips_one_newline_and_warns_when_others_can_read(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(f"{SECRET}\n\n")
    secret.chmod(0o600)
    resolved = resolve(instance="dev1", user="u", environ={"SERVICENOW_PASSWORD_FILE": str(secret)})
    assert resolved.connection.password == f"{SECRET}\n"
    assert resolved.warnings == ()

    secret.write_text(f"{SECRET}\r\n")
    secret.chmod(0o644)
    resolved = resolve(instance="dev1", user="u", environ={"SERVICENOW_PASSWORD_FILE": str(secret)})
    assert resolved.connection.password == SECRET
    assert len(resolved.warnings) == 1
    assert "readable by group or others" in resolved.warnings[0]
    assert "chmod 600" in resolved.warnings[0]
    assert SECRET not in resolved.warnings[0]


def test_password_precedence(tmp_path: Path) -> None:
    file_pw = tmp_path / "pw"
    file_pw.write_text("from-file")
    file_pw.chmod(0o600)
    config = {"password_file": str(file_pw), "password_env": "MY_PW"}

    def password(environ: dict[str, str]) -> str:
        return resolve(
            instance="dev1", user="u", config=config, environ=environ
        ).connection.password

    with pytest.raises(ConfigError, match="MY_PW"):  # password_env is tried before password_file
        password({})
    assert password({"MY_PW": "named"}) == "named"
    assert password({"MY_PW": "named", "SN_PASSWORD": "sn"}) == "sn"
    env = {"SN_PASSWORD": "sn", "SERVICENOW_PASSWORD_FILE": str(file_pw)}
    assert password(env) == "from-file"
    env["SERVICENOW_PASSWORD"] = "env"
    assert password(env) == "env"
    del config["password_env"]
    assert password({}) == "from-file"


def test_password_sources_that_fail_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        resolve(instance="d", user="u", environ={"SERVICENOW_PASSWORD_FILE": str(tmp_path / "x")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve(instance="d", user="u", config={"password_file": str(empty)})
    with pytest.raises(ConfigError, match="MISSING_VAR"):
        resolve(instance="d", user="u", config={"password_env": "MISSING_VAR"})


def test_load_config_file(tmp_path: Path) -> None:
    path = tmp_path / "snowcheck.toml"
    path.write_text('instance = "dev1"\nuser = "u"\npassword_file = "pw.txt"\npage_size = 100\n')
    config = load_config_file(path)
    assert config["instance"] == "dev1"
    assert config["page_size"] == 100
    assert config["password_file"] == str(tmp_path / "pw.txt")


def test_config_file_errors_are_one_line_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('instance = "dev1"\nuser = \n')
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "line 2" in message
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "absent.toml")


def test_config_path() -> None:
    assert config_path("a.toml", {"SNOWCHECK_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"SNOWCHECK_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) is None


@pytest.mark.skipif(os.name != "posix", reason="permission bits")
def test_unreadable_password_file(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "pw").write_text("x")
    folder.chmod(0)
    try:
        if os.access(folder / "pw", os.R_OK):
            pytest.skip("running as root")
        with pytest.raises(ConfigError, match="cannot read password file"):
            resolve(
                instance="d", user="u", environ={"SERVICENOW_PASSWORD_FILE": str(folder / "pw")}
            )
    finally:
        folder.chmod(0o700)
