"""The ``auth`` setting and its secrets: where each comes from, in which order, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowcheck.credentials import LoginOptions, auth_method, resolve_login
from snowcheck.errors import ConfigError
from snowcheck.servicenow.auth import ApiKey, Basic, OAuthClientCredentials, OAuthPassword
from snowcheck.servicenow.session import CertificateOnly, open_session
from snowcheck.settings import CONFIG_KEYS, ConnectionOptions, resolve_connection

OAUTH_ENV = {"SERVICENOW_CLIENT_ID": "cid", "SERVICENOW_CLIENT_SECRET": "env-secret"}


def secret_file(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def test_every_auth_key_is_a_config_key() -> None:
    for key in (
        "auth",
        "client_id",
        "client_secret_file",
        "api_key_file",
        "api_key_header",
        "client_cert",
        "client_key",
        "token_cache",
    ):
        assert key in CONFIG_KEYS


@pytest.mark.parametrize(
    ("cli", "environ", "config", "expected"),
    [
        (None, {}, {}, "basic"),
        (None, {}, {"auth": "api-key"}, "api-key"),
        (None, {"SN_GRANT_TYPE": "password"}, {"auth": "api-key"}, "oauth-password"),
        (None, {"SN_GRANT_TYPE": "client_credentials"}, {}, "oauth-client-credentials"),
        (None, {"SERVICENOW_AUTH": "mtls", "SN_GRANT_TYPE": "password"}, {}, "mtls"),
        ("basic", {"SERVICENOW_AUTH": "mtls"}, {"auth": "api-key"}, "basic"),
    ],
)
def test_the_method_comes_from_cli_then_environment_then_file(
    cli: str | None, environ: dict[str, str], config: dict[str, str], expected: str
) -> None:
    assert auth_method(cli, config, environ) == expected


@pytest.mark.parametrize(
    ("environ", "config", "named"),
    [
        ({"SERVICENOW_AUTH": "oauth"}, {}, "SERVICENOW_AUTH"),
        ({}, {"auth": "token"}, "config key 'auth'"),
        ({"SN_GRANT_TYPE": "refresh_token"}, {}, "SN_GRANT_TYPE=refresh_token"),
    ],
)
def test_an_unknown_method_is_a_config_error_naming_its_source(
    environ: dict[str, str], config: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        auth_method(None, config, environ)


def test_the_client_secret_comes_from_env_then_file_then_ansible_then_config(
    tmp_path: Path,
) -> None:
    env_file = secret_file(tmp_path, "env.secret", "file-secret\n")
    config_file = secret_file(tmp_path, "config.secret", "config-secret\n")
    config = {"auth": "oauth-client-credentials", "client_id": "cid"}
    config["client_secret_file"] = str(config_file)
    chain = [
        ({"SERVICENOW_CLIENT_SECRET": "env-secret"}, "env-secret"),
        ({"SERVICENOW_CLIENT_SECRET_FILE": str(env_file)}, "file-secret"),
        ({"SN_CLIENT_SECRET": "ansible-secret"}, "ansible-secret"),
        ({}, "config-secret"),
    ]
    environ: dict[str, str] = {}
    for added, _ in chain:
        environ.update(added)
    for added, expected in chain:
        login = resolve_login(LoginOptions(), config, environ=environ, prompt=None).login
        assert login.client_secret == expected
        for name in added:
            del environ[name]


def test_secrets_are_prompted_for_on_a_terminal_only() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed-value"

    config = {"auth": "oauth-password"}
    login = resolve_login(LoginOptions(), config, environ={}, prompt=prompt).login
    assert (login.client_id, login.client_secret) == ("typed-value", "typed-value")
    assert asked == ["OAuth client id: ", "OAuth client secret of typed-value: "]
    with pytest.raises(ConfigError, match="SERVICENOW_CLIENT_ID"):
        resolve_login(LoginOptions(), config, environ={}, prompt=None)
    with pytest.raises(ConfigError, match="no API key: set SERVICENOW_API_KEY"):
        resolve_login(LoginOptions(auth="api-key"), {}, environ={}, prompt=None)


def test_a_secret_file_others_may_read_gets_a_warning(tmp_path: Path) -> None:
    loose = secret_file(tmp_path, "api.key", "k3y-value\n", 0o644)
    resolved = resolve_login(
        LoginOptions(auth="api-key"), {"api_key_file": str(loose)}, environ={}, prompt=None
    )
    assert resolved.login.api_key == "k3y-value"
    assert resolved.warnings == (
        f"API key file {loose} is readable by group or others (mode 644): run chmod 600 {loose}",
    )
    with pytest.raises(ConfigError, match=r"API key file .* not found"):
        resolve_login(
            LoginOptions(auth="api-key"),
            {"api_key_file": str(tmp_path / "missing")},
            environ={},
            prompt=None,
        )


def test_client_certificate_settings(tmp_path: Path) -> None:
    cert = secret_file(tmp_path, "c.pem", "cert")
    key = secret_file(tmp_path, "c.key", "key")
    login = resolve_login(
        LoginOptions(auth="mtls", client_cert=str(cert), client_key=str(key)),
        {},
        environ={},
        prompt=None,
    ).login
    assert (login.client_cert, login.client_key) == (str(cert), str(key))
    from_env = resolve_login(
        LoginOptions(), {}, environ={"SERVICENOW_CLIENT_CERT": str(cert)}, prompt=None
    ).login
    assert (from_env.method, from_env.client_cert) == ("basic", str(cert))
    with pytest.raises(ConfigError, match="auth mtls needs a client certificate"):
        resolve_login(LoginOptions(auth="mtls"), {}, environ={}, prompt=None)
    with pytest.raises(ConfigError, match=r"client cert .* not found"):
        resolve_login(
            LoginOptions(client_cert=str(tmp_path / "no.pem")), {}, environ={}, prompt=None
        )
    with pytest.raises(ConfigError, match="client_key needs client_cert"):
        resolve_login(LoginOptions(client_key=str(key)), {}, environ={}, prompt=None)


def test_the_token_cache_is_on_unless_switched_off() -> None:
    environ = {**OAUTH_ENV, "SERVICENOW_PASSWORD": "pw"}
    config = {"auth": "oauth-password"}

    def cached(cli: LoginOptions, config: dict[str, object]) -> bool:
        return resolve_login(cli, config, environ=environ, prompt=None).login.token_cache

    assert cached(LoginOptions(), config)
    assert not cached(LoginOptions(no_token_cache=True), config)
    assert not cached(LoginOptions(), {**config, "token_cache": False})
    with pytest.raises(ConfigError, match="token_cache"):
        cached(LoginOptions(), {**config, "token_cache": "no"})


@pytest.mark.parametrize(
    ("method", "environ", "auth_type", "user"),
    [
        ("basic", {"SERVICENOW_PASSWORD": "pw"}, Basic, "svc"),
        ("oauth-password", {**OAUTH_ENV, "SERVICENOW_PASSWORD": "pw"}, OAuthPassword, "svc"),
        ("oauth-client-credentials", OAUTH_ENV, OAuthClientCredentials, None),
        ("api-key", {"SERVICENOW_API_KEY": "k3y-value"}, ApiKey, None),
    ],
)
def test_the_session_authenticates_by_method(
    method: str, environ: dict[str, str], auth_type: type, user: str | None
) -> None:
    where = ConnectionOptions(instance="dev12345", user=user)
    options = ConnectionOptions(
        instance=where.instance, user=where.user, login=LoginOptions(auth=method)
    )
    connection = resolve_connection(options, {}, prompt=None, environ=environ).connection
    session = open_session(connection)
    assert isinstance(session.auth, auth_type)
    if user is None:
        assert connection.password == ""
        assert connection.user.startswith("the ")
    if isinstance(session.auth, OAuthPassword | OAuthClientCredentials):
        assert session.auth.session is session  # token requests share TLS and proxies
        assert session.auth.cache is not None


def test_mtls_sends_the_certificate_and_no_header(tmp_path: Path) -> None:
    cert = secret_file(tmp_path, "c.pem", "cert")
    options = ConnectionOptions(
        instance="dev12345", login=LoginOptions(auth="mtls", client_cert=str(cert))
    )
    connection = resolve_connection(options, {}, prompt=None, environ={}).connection
    session = open_session(connection)
    assert isinstance(session.auth, CertificateOnly)
    assert session.cert == str(cert)
