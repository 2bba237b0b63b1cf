"""How snowcheck logs in: the ``auth`` setting and the secrets each method needs.

``auth`` comes from ``--auth``, then ``SERVICENOW_AUTH``, then Ansible's ``SN_GRANT_TYPE``
(``password`` or ``client_credentials``), then the config file, else ``basic``. Secrets are
found as the password is, never on the command line: the environment variable, its
``_FILE`` twin, Ansible's ``SN_*`` name, the config file's ``*_file`` key, then a prompt on
a terminal. Problems that are not fatal (a secret file others may read) are warnings.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snowcheck.errors import ConfigError
from snowcheck.secret_files import read_secret_text
from snowcheck.servicenow.auth import DEFAULT_API_KEY_HEADER
from snowcheck.servicenow.session import AUTH_METHODS, Login

GRANT_TYPES = {"password": "oauth-password", "client_credentials": "oauth-client-credentials"}
"""Ansible's SN_GRANT_TYPE values -> the ``auth`` setting."""

OAUTH = ("oauth-password", "oauth-client-credentials")
NEEDS_PASSWORD = ("basic", "oauth-password")
"""The methods that log in as ``user`` with a password."""

ACCOUNTS = {
    "oauth-client-credentials": "the OAuth application user",
    "api-key": "the API key's user",
    "mtls": "the certificate's user",
}
"""Who the instance sees when no ``user`` is given, for messages."""


@dataclass(frozen=True)
class LoginOptions:
    """The login part of the command line (None: not given); secrets are never on it."""

    auth: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    no_token_cache: bool = False


@dataclass(frozen=True)
class ResolvedLogin:
    login: Login
    warnings: tuple[str, ...] = ()


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"config key {key!r} must be a non-empty string")
    return value


def _group_or_others(mode: int) -> bool:
    return os.name == "posix" and bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def _secret(
    what: str,
    name: str,
    *,
    ansible: str,
    key: str,
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    prompt: Callable[[str], str] | None,
    asking: str,
) -> tuple[str, list[str]]:
    """A secret from NAME, NAME_FILE, the Ansible name, the config's KEY_file, or a prompt."""
    value = _env(environ, name)
    if value:
        return value, []
    path = _env(environ, f"{name}_FILE")
    if path:
        return read_secret_text(path, f"{what} file", f"{name}_FILE")
    value = _env(environ, ansible)
    if value:
        return value, []
    path = _text(config, f"{key}_file")
    if path is not None:
        return read_secret_text(path, f"{what} file", f"config key '{key}_file'")
    if prompt is not None:
        answer = prompt(asking)
        if not answer:
            raise ConfigError(f"no {what} given at the prompt")
        return answer, []
    raise ConfigError(
        f"no {what}: set {name} (or {ansible}), point {name}_FILE at a file holding it, or "
        f"run on a terminal to be prompted (the config file may name the file with {key}_file)"
    )


def auth_method(cli: str | None, config: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The ``auth`` setting: --auth, SERVICENOW_AUTH, SN_GRANT_TYPE, the config, else basic."""
    known = ", ".join(AUTH_METHODS)
    method = cli or _env(environ, "SERVICENOW_AUTH")
    origin = "--auth" if cli else "SERVICENOW_AUTH"
    if not method:
        grant = _env(environ, "SN_GRANT_TYPE")
        if grant:
            if grant not in GRANT_TYPES:
                raise ConfigError(
                    f"SN_GRANT_TYPE={grant} is not supported: use password or "
                    f"client_credentials, or set SERVICENOW_AUTH to one of {known}"
                )
            return GRANT_TYPES[grant]
        method, origin = _text(config, "auth"), "config key 'auth'"
    if method is None:
        return "basic"
    if method not in AUTH_METHODS:
        raise ConfigError(f"unknown auth method {method!r} ({origin}): choose one of {known}")
    return method


def _file_setting(
    cli: str | None,
    environ: Mapping[str, str],
    variable: str,
    config: Mapping[str, Any],
    key: str,
) -> str | None:
    """A file path from the command line, the environment or the config; it must exist."""
    value = cli or _env(environ, variable) or _text(config, key)
    if value is None:
        return None
    where = Path(value).expanduser()
    if not where.is_file():
        flag = key.replace("_", "-")
        raise ConfigError(
            f"{key.replace('_', ' ')} {where} not found (--{flag}, {variable} or {key!r})"
        )
    return str(where)


def _token_cache(cli: LoginOptions, config: Mapping[str, Any]) -> bool:
    value = config.get("token_cache", True)
    if not isinstance(value, bool):
        raise ConfigError("config key 'token_cache' must be true or false")
    return value and not cli.no_token_cache


def resolve_login(
    cli: LoginOptions,
    config: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    prompt: Callable[[str], str] | None,
) -> ResolvedLogin:
    """The ``auth`` method and what it needs, from command line, environment and file."""
    method = auth_method(cli.auth, config, environ)
    warnings: list[str] = []
    client_id = client_secret = api_key = ""
    if method in OAUTH:
        client_id = _env(environ, "SERVICENOW_CLIENT_ID", "SN_CLIENT_ID") or ""
        client_id = client_id or _text(config, "client_id") or ""
        if not client_id and prompt is not None:
            client_id = prompt("OAuth client id: ").strip()
        if not client_id:
            raise ConfigError(
                f"auth {method} needs the OAuth client id: set SERVICENOW_CLIENT_ID (or "
                "SN_CLIENT_ID), or 'client_id' in the config file"
            )
        client_secret, found = _secret(
            "OAuth client secret",
            "SERVICENOW_CLIENT_SECRET",
            ansible="SN_CLIENT_SECRET",
            key="client_secret",
            config=config,
            environ=environ,
            prompt=prompt,
            asking=f"OAuth client secret of {client_id}: ",
        )
        warnings += found
    header = _env(environ, "SERVICENOW_API_KEY_HEADER") or _text(config, "api_key_header")
    header = (header or DEFAULT_API_KEY_HEADER).strip()
    if ":" in header or not header:
        raise ConfigError(f"api_key_header {header!r} is not a header name")
    if method == "api-key":
        api_key, found = _secret(
            "API key",
            "SERVICENOW_API_KEY",
            ansible="SN_API_KEY",
            key="api_key",
            config=config,
            environ=environ,
            prompt=prompt,
            asking="API key: ",
        )
        warnings += found
    client_cert = _file_setting(
        cli.client_cert, environ, "SERVICENOW_CLIENT_CERT", config, "client_cert"
    )
    client_key = _file_setting(
        cli.client_key, environ, "SERVICENOW_CLIENT_KEY", config, "client_key"
    )
    if client_key is not None and client_cert is None:
        raise ConfigError("client_key needs client_cert: give the certificate too")
    if method == "mtls" and client_cert is None:
        raise ConfigError(
            "auth mtls needs a client certificate: pass --client-cert FILE (and --client-key "
            "FILE), set SERVICENOW_CLIENT_CERT, or 'client_cert' in the config file"
        )
    if client_key is not None and _group_or_others(Path(client_key).stat().st_mode):
        warnings.append(
            f"client key {client_key} is readable by group or others: run chmod 600 {client_key}"
        )
    login = Login(
        method=method,
        client_id=client_id,
        client_secret=client_secret,
        api_key=api_key,
        api_key_header=header,
        client_cert=client_cert,
        client_key=client_key,
        token_cache=_token_cache(cli, config),
    )
    return ResolvedLogin(login, tuple(warnings))
