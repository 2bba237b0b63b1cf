"""Where the instance is and who logs in, from CLI, env and file: the connection part of settings.

Precedence is command line, then environment, then config file. The password never
comes from the command line: it comes from the environment, a file, or a prompt.
Problems found while resolving that are not fatal (a password file readable by
others) are returned as warnings for the CLI to print, not printed here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from snowcheck.errors import ConfigError
from snowcheck.secret_files import read_secret_text
from snowcheck.servicenow.session import Connection, Login

SERVICENOW_DOMAIN = "service-now.com"

# A short instance name: one DNS label, as in dev12345 or acme-test.
_SHORT_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")

# Keys of the config file that resolve_connection reads; paths among them are made
# relative to the config file by load_config_file.
PATH_KEYS = (
    "password_file",
    "ca_bundle",
    "client_secret_file",
    "api_key_file",
    "client_cert",
    "client_key",
)


@dataclass(frozen=True)
class ResolvedConnection:
    """A Connection and the warnings met while resolving it (for the CLI to print)."""

    connection: Connection
    warnings: tuple[str, ...] = ()


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return all(_HOST_LABEL.match(label) for label in labels)


def normalise_instance(value: str) -> str:
    """Turn a short name, a host name (with port) or a URL into ``scheme://host[:port]``.

    ``dev12345`` becomes ``https://dev12345.service-now.com``; a path, query or trailing
    slash is dropped; ``http://`` is accepted only for loopback hosts.
    """
    text = value.strip()
    garbage = ConfigError(
        f"not a valid instance: {value!r}: give a short name (dev12345), a host name "
        "(acme.service-now.com) or an https:// URL"
    )
    if not text or any(ch.isspace() for ch in text):
        raise garbage
    if "://" not in text and _SHORT_NAME.match(text) and text.lower() != "localhost":
        return f"https://{text.lower()}.{SERVICENOW_DOMAIN}"
    url = text if "://" in text else f"https://{text}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise garbage from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("http", "https") or not host or not _valid_host(host):
        raise garbage
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"the instance URL must not hold credentials: give the user with --user or "
            f"SERVICENOW_USERNAME and the password with SERVICENOW_PASSWORD (host {host})"
        )
    if scheme == "http" and not _is_loopback(host):
        raise ConfigError(
            f"https is required for {host}: http:// is accepted only for loopback addresses "
            "(127.0.0.0/8, ::1, localhost)"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}"


def config_path(cli_value: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: --config, else SNOWCHECK_CONFIG, else none."""
    chosen = cli_value or environ.get("SNOWCHECK_CONFIG") or None
    return Path(chosen) if chosen else None


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file; relative password_file/ca_bundle are taken from its folder.

    That holds at the top level and in each [instances.NAME] profile.
    """
    where = Path(path)
    try:
        text = where.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {where} not found (--config or SNOWCHECK_CONFIG)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {where} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {where}: {exc.strerror}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "invalid TOML"
        position = _TOML_POSITION.search(message)
        if position:
            message = message[: position.start()]
            raise ConfigError(
                f"config file {where}, line {position.group(1)}: invalid TOML: {message}"
            ) from None
        raise ConfigError(f"config file {where}: invalid TOML: {message}") from None
    profiles = document.get("instances")
    tables = [document, *(profiles.values() if isinstance(profiles, dict) else ())]
    for table in tables:
        if not isinstance(table, dict):
            continue
        for key in PATH_KEYS:
            value = table.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                table[key] = str(where.parent / value)
    return document


def _env(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` set to a non-empty value, as (name, value)."""
    for name in names:
        value = environ.get(name)
        if value:
            return name, value
    return None


def _pick(
    cli: str | None,
    environ: Mapping[str, str],
    names: tuple[str, ...],
    config: Mapping[str, Any],
    key: str,
) -> str | None:
    """The command-line value, else the first environment variable set, else the config key."""
    if cli:
        return cli
    found = _env(environ, *names)
    return found[1] if found else _config_text(config, key)


def _config_text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"config key {key!r} must be a non-empty string")
    return value


def _config_number(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"config key {key!r} must be a positive number of seconds")
    return float(value)


def _config_page_size(config: Mapping[str, Any]) -> int:
    value = config.get("page_size", 10000)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError("config key 'page_size' must be a positive whole number")
    return value


def _resolve_password(
    *,
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    prompt: Callable[[str], str] | None,
    user: str,
    base_url: str,
) -> tuple[str, list[str]]:
    found = _env(environ, "SERVICENOW_PASSWORD")
    if found:
        return found[1], []
    found = _env(environ, "SERVICENOW_PASSWORD_FILE")
    if found:
        return read_secret_text(found[1], "password file", "SERVICENOW_PASSWORD_FILE")
    found = _env(environ, "SN_PASSWORD")
    if found:
        return found[1], []
    variable = _config_text(config, "password_env")
    if variable is not None:
        value = environ.get(variable)
        if not value:
            raise ConfigError(
                f"config key 'password_env' names the environment variable {variable}, "
                "which is not set"
            )
        return value, []
    password_file = _config_text(config, "password_file")
    if password_file is not None:
        return read_secret_text(password_file, "password file", "config key 'password_file'")
    if prompt is not None:
        answer = prompt(f"Password for {user} at {base_url}: ")
        if not answer:
            raise ConfigError("no password given at the prompt")
        return answer, []
    raise ConfigError(
        f"no password for {user} at {base_url}: set SERVICENOW_PASSWORD, point "
        "SERVICENOW_PASSWORD_FILE at a file holding it, or run on a terminal to be prompted "
        "(the config file may name them with password_env or password_file)"
    )


def resolve_connection(
    *,
    instance: str | None,
    user: str | None,
    ca_bundle: str | None,
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    prompt: Callable[[str], str] | None,
    login: Login | None = None,
    account: str | None = None,
) -> ResolvedConnection:
    """Build the Connection from the command line, then the environment, then the config file.

    ``prompt`` is called for the password only when no other source gives one; the
    CLI passes ``getpass.getpass`` when stdin is a terminal, else None. ``login``: the
    ``auth`` method (snowcheck.credentials); with ``account`` set, the method needs no user
    nor password, and ``account`` names who the instance sees when no user is given.
    """
    raw_instance = _pick(instance, environ, ("SERVICENOW_INSTANCE", "SN_HOST"), config, "instance")
    if not raw_instance:
        raise ConfigError(
            "no instance given: pass --instance, set SERVICENOW_INSTANCE (or SN_HOST), "
            "or set 'instance' in the config file"
        )
    base_url = normalise_instance(raw_instance)

    login_name = _pick(user, environ, ("SERVICENOW_USERNAME", "SN_USERNAME"), config, "user")
    if not login_name and account is not None:
        login_name = account
    if not login_name:
        raise ConfigError(
            "no user given: pass --user, set SERVICENOW_USERNAME (or SN_USERNAME), "
            "or set 'user' in the config file"
        )

    bundle = ca_bundle or _config_text(config, "ca_bundle")
    if bundle is not None and not Path(bundle).expanduser().is_file():
        raise ConfigError(f"CA bundle {bundle} not found (--ca-bundle or 'ca_bundle')")

    connect_timeout = _config_number(config, "connect_timeout", 10)
    read_timeout = _config_number(config, "read_timeout", 60)
    page_size = _config_page_size(config)

    password, warnings = "", list[str]()
    if account is None:
        password, warnings = _resolve_password(
            config=config, environ=environ, prompt=prompt, user=login_name, base_url=base_url
        )
    connection = Connection(
        base_url=base_url,
        user=login_name,
        password=password,
        verify=str(Path(bundle).expanduser()) if bundle is not None else True,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        page_size=page_size,
        login=login or Login(),
    )
    return ResolvedConnection(connection=connection, warnings=tuple(warnings))
