"""Typed settings, built once from the command line, the environment and the config file.

The command line's own values arrive as the frozen ``*Options`` below (``snowcheck.cli``
builds them); the config file is read once into a ``ConfigFile`` whose keys are checked
against ``CONFIG_KEYS`` (an unknown key is an error naming the closest known one); the
settings a command works with (``CheckSettings``, ``WriteSettings``, the connection)
are merged from both, command line first, then the environment, then the file.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from snowcheck.connection import ResolvedConnection, config_path, load_config_file
from snowcheck.connection import resolve_connection as _resolve_connection
from snowcheck.credentials import ACCOUNTS, LoginOptions, resolve_login
from snowcheck.errors import ConfigError
from snowcheck.guards import DEFAULT_MAX_CHANGES
from snowcheck.messages import CHOICES
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.pull import DEFAULT_CONCURRENCY
from snowcheck.rules import DEFAULT_WINDOW, HEARTBEAT, parse_window
from snowcheck.writeback import DEFAULT_BATCH_ITEMS

CONFIG_KEYS: Mapping[str, type | tuple[type, ...]] = {
    "instance": str,  # short name, host name or URL
    "user": str,
    "password_env": str,  # the environment variable holding the password
    "password_file": str,  # relative to the config file
    "ca_bundle": str,  # relative to the config file
    "connect_timeout": (int, float),  # seconds
    "read_timeout": (int, float),  # seconds
    "page_size": int,  # rows per page read
    "window": (str, int),  # 4h, 5m, 90s, or milliseconds
    "messages": str,  # docs, kingston or auto
    "source": str,  # the issue source written and matched
    "concurrency": int,  # reads in flight at once
    "advisories": bool,  # false: skip the advisories' extra reads
    "apply": bool,  # false: this profile refuses --apply
    "batch": bool,  # write through the Batch API
    "batch_size": int,  # changes per batch request
    "max_changes": int,  # the largest plan --apply writes without --force (0: no limit)
    "auth": str,  # basic, oauth-password, oauth-client-credentials, api-key or mtls
    "client_id": str,  # the OAuth client id
    "client_secret_file": str,  # relative to the config file
    "api_key_file": str,  # relative to the config file
    "api_key_header": str,  # the API key's header (default x-sn-apikey)
    "client_cert": str,  # a PEM client certificate, relative to the config file
    "client_key": str,  # its private key, relative to the config file
    "token_cache": bool,  # false: no OAuth token kept between runs
}
"""Every key a config file may hold, at the top or in [instances.NAME], with its TOML type."""

PROFILES = "instances"


# The command line ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionOptions:
    """Where and who, as given on the command line (None: not given)."""

    instance: str | None = None
    user: str | None = None
    config: str | None = None
    profile: str | None = None
    ca_bundle: str | None = None
    login: LoginOptions = field(default_factory=LoginOptions)
    """--auth, --client-cert, --client-key, --no-token-cache."""


@dataclass(frozen=True)
class RuleOptions:
    """The check's own options, as given on the command line (None: not given)."""

    window: str | None = None
    source: str | None = None
    messages: str | None = None
    concurrency: int | None = None
    advisories: bool | None = None
    """False: ``--no-advisories``."""


@dataclass(frozen=True)
class OutputOptions:
    """How ``check`` reports."""

    format: str = "table"
    """table, json or nagios."""
    format_given: bool = False
    """--format was given (it prints even under --quiet)."""
    debug: int = 0
    detailed_exitcode: bool = False
    quiet: bool = False
    log_file: str | None = None
    prometheus_textfile: str | None = None
    wide: bool = False
    """--wide: the sys_id of each change in the plan."""


@dataclass(frozen=True)
class CheckOptions:
    """``snowcheck check``'s command line."""

    connection: ConnectionOptions
    rules: RuleOptions
    output: OutputOptions
    snapshot: str | None = None
    all_profiles: bool = False
    apply: bool = False
    force: bool = False
    lock_file: str | None = None
    no_lock: bool = False
    max_changes: int | None = None
    """--max-changes (None: the profile's ``max_changes``, else the default)."""
    show_all: bool = False
    """--all: every finding in the table report, not only the first ones."""
    out: str | None = None
    """--out PLAN: write the plan, with the before-state of its issues, for ``apply``."""


@dataclass(frozen=True)
class ApplyOptions:
    """``snowcheck apply PLAN``'s command line."""

    plan: str
    connection: ConnectionOptions
    force: bool = False
    max_changes: int | None = None
    lock_file: str | None = None
    no_lock: bool = False
    quiet: bool = False
    log_file: str | None = None


@dataclass(frozen=True)
class DoctorOptions:
    """``snowcheck doctor``'s command line."""

    connection: ConnectionOptions
    rules: RuleOptions


@dataclass(frozen=True)
class ExplainOptions:
    """``snowcheck explain USER``'s command line."""

    subject: str
    connection: ConnectionOptions
    rules: RuleOptions
    snapshot: str | None = None
    format: str = "table"
    """table or json."""


@dataclass(frozen=True)
class DemoOptions:
    """``snowcheck demo``'s command line."""

    scenario: str | None = None


@dataclass(frozen=True)
class EmulatorOptions:
    """``snowcheck emulator``'s command line."""

    scenario: str | None = None
    port: int = 8080
    latency: float = 0.0
    tls_cert: str | None = None
    """Serve HTTPS with this certificate (and tls_key)."""
    tls_key: str | None = None
    client_ca: str | None = None
    client_cert: str = "none"
    """none, optional or required: whether to ask for a client certificate."""


@dataclass(frozen=True)
class SnapshotOptions:
    """``snowcheck snapshot``'s command line."""

    connection: ConnectionOptions
    rules: RuleOptions
    output: str | None = None
    """The file to write; None: stdout."""
    redact: bool = False
    redact_key_file: str | None = None
    """The pseudonyms' HMAC key (implies ``redact``); None: a random key, not kept."""


@dataclass(frozen=True)
class WatchOptions:
    """``snowcheck watch``'s command line."""

    connection: ConnectionOptions
    rules: RuleOptions
    format: str = "table"
    """table (a live view on a terminal, one line per round otherwise) or json (JSON Lines)."""
    quiet: bool = False
    """No rounds (unless json), no warnings: the exit status says it."""
    interval: str = "30s"
    timeout: str = "30m"
    users: tuple[str, ...] = ()
    """The MID users followed (--user, repeatable); empty: every finding."""
    apply: bool = False
    force: bool = False
    lock_file: str | None = None
    no_lock: bool = False


# The settings commands work with ------------------------------------------------------------


@dataclass(frozen=True)
class CheckSettings:
    """The check's own settings once command line, environment and file are merged."""

    window: timedelta
    source: str
    messages: str
    concurrency: int = DEFAULT_CONCURRENCY
    """Reads in flight at once during the pull (``--concurrency``, ``concurrency``)."""
    advisories: bool = True
    """Make the advisories' extra reads (``--no-advisories``, ``advisories``)."""


@dataclass(frozen=True)
class WriteSettings:
    """How ``--apply`` writes, from the config file."""

    batch: bool = True
    """Write through the Batch API (falls back to single requests when refused)."""
    batch_items: int = DEFAULT_BATCH_ITEMS
    """Changes per batch request (``batch_size``)."""
    allowed: bool = True
    """False: the profile refuses --apply (``apply = false``)."""
    max_changes: int = DEFAULT_MAX_CHANGES
    """The largest plan written without --force (``max_changes``; 0: no limit)."""


# The config file -----------------------------------------------------------------------------


def _unknown_key(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(CONFIG_KEYS)}"
    return ConfigError(f"unknown key {key!r} in {where}: {hint}")


def check_keys(document: Mapping[str, Any]) -> None:
    """Refuse a key snowcheck does not read, naming the closest known one."""
    for key in document:
        if key != PROFILES and key not in CONFIG_KEYS:
            raise _unknown_key(key, "the config file's top level")
    profiles = document.get(PROFILES, {})
    if not isinstance(profiles, Mapping):
        return  # profile_names says what is wrong
    for name, table in profiles.items():
        if not isinstance(table, Mapping):
            continue  # select_profile says what is wrong
        for key in table:
            if key not in CONFIG_KEYS:
                raise _unknown_key(key, f"[instances.{name}]")


_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def _has_type(value: Any, expected: type | tuple[type, ...]) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    # TOML's true is a Python bool, which is also an int: only bool accepts it.
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


def check_types(document: Mapping[str, Any]) -> None:
    """Refuse a value of the wrong type (``apply = "false"``, ``apply = 0``), naming the key."""
    profiles = document.get(PROFILES, {})
    tables: list[tuple[str, Mapping[str, Any]]] = [("the config file's top level", document)]
    if isinstance(profiles, Mapping):
        tables += [
            (f"[instances.{name}]", table)
            for name, table in profiles.items()
            if isinstance(table, Mapping)
        ]
    for where, table in tables:
        for key, value in table.items():
            expected = CONFIG_KEYS.get(key)
            if expected is None or _has_type(value, expected):
                continue
            kinds = expected if isinstance(expected, tuple) else (expected,)
            wanted = " or ".join(_TYPE_NAMES.get(kind, kind.__name__) for kind in kinds)
            raise ConfigError(f"config key {key!r} in {where} must be {wanted}, got {value!r}")


def load_file(config: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The config file (--config, else SNOWCHECK_CONFIG, else none: {}), keys and types checked."""
    path = config_path(config, environ)
    document = load_config_file(path) if path else {}
    check_keys(document)
    check_types(document)
    return document


def profile_names(file_config: Mapping[str, Any]) -> list[str]:
    instances = file_config.get(PROFILES, {})
    if not isinstance(instances, Mapping):
        raise ConfigError("'instances' in the config file must be a table of [instances.NAME]")
    return list(instances)


def select_profile(file_config: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """The top-level settings overlaid with those of [instances.NAME]."""
    merged = {key: value for key, value in file_config.items() if key != PROFILES}
    if name is None:
        return merged
    names = profile_names(file_config)
    if name not in names:
        known = ", ".join(names) or "none"
        raise ConfigError(f"no profile {name!r} in the config file (profiles: {known})")
    profile = file_config[PROFILES][name]
    if not isinstance(profile, Mapping):
        raise ConfigError(f"[instances.{name}] in the config file must be a table")
    merged.update(profile)
    return merged


# Merging -------------------------------------------------------------------------------------


def check_settings(
    cli: RuleOptions, profile: Mapping[str, Any], warn: Callable[[str], None]
) -> CheckSettings:
    """The check's settings, command line first; warns of a window under the heartbeat."""

    def pick(given: Any, key: str, default: Any) -> Any:
        return given if given is not None else profile.get(key, default)

    window_text = pick(cli.window, "window", None)
    window = parse_window(str(window_text)) if window_text is not None else DEFAULT_WINDOW
    if window < HEARTBEAT:
        warn(
            f"window {window} is shorter than the MID Server heartbeat interval "
            "(5 minutes): MID Servers may look down or silent when they are not"
        )
    messages = str(pick(cli.messages, "messages", "docs"))
    if messages not in CHOICES:
        raise ConfigError(f"unknown message set {messages!r}: choose one of {', '.join(CHOICES)}")
    source = str(pick(cli.source, "source", DEFAULT_SOURCE))
    if not source.strip():
        raise ConfigError("the issue source cannot be empty (--source or 'source' in the config)")
    concurrency = pick(cli.concurrency, "concurrency", DEFAULT_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(
            "concurrency must be a whole number of at least 1 "
            "(--concurrency or 'concurrency' in the config)"
        )
    advisories = pick(cli.advisories, "advisories", True)
    if not isinstance(advisories, bool):
        raise ConfigError("advisories must be true or false ('advisories' in the config)")
    return CheckSettings(
        window=window,
        source=source,
        messages=messages,
        concurrency=concurrency,
        advisories=advisories,
    )


def write_settings(profile: Mapping[str, Any]) -> WriteSettings:
    """How apply writes: 'batch' (true/false), 'batch_size', and whether 'apply' allows it."""
    batch = profile.get("batch", True)
    if not isinstance(batch, bool):
        raise ConfigError("config key 'batch' must be true or false")
    size = profile.get("batch_size", DEFAULT_BATCH_ITEMS)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError("config key 'batch_size' must be a positive whole number")
    allowed = profile.get("apply", True)
    if not isinstance(allowed, bool):
        raise ConfigError(f"config key 'apply' must be true or false, got {allowed!r}")
    most = profile.get("max_changes", DEFAULT_MAX_CHANGES)
    if isinstance(most, bool) or not isinstance(most, int) or most < 0:
        raise ConfigError("config key 'max_changes' must be a whole number, 0 for no limit")
    return WriteSettings(batch=batch, batch_items=size, allowed=allowed, max_changes=most)


OVERRIDING_ENVIRONMENT = (
    "SERVICENOW_INSTANCE",
    "SN_HOST",
    "SERVICENOW_USERNAME",
    "SN_USERNAME",
    "SERVICENOW_PASSWORD",
    "SERVICENOW_PASSWORD_FILE",
    "SN_PASSWORD",
    "SN_CLIENT_ID",
    "SN_CLIENT_SECRET",
    "SN_API_KEY",
    "SN_GRANT_TYPE",
)
"""Variables that choose the instance or the credentials. An explicit profile ignores them;
so does any other SERVICENOW_* variable (an auth method's secrets)."""


def profile_environment(
    environ: Mapping[str, str], profile: Mapping[str, Any], name: str
) -> tuple[dict[str, str], list[str]]:
    """``environ`` without the variables that would override profile ``name``, and a warning
    naming each one that was set: the profile alone says where and who."""
    keep = profile.get("password_env")
    kept: dict[str, str] = {}
    warnings = []
    for variable, value in environ.items():
        overriding = variable in OVERRIDING_ENVIRONMENT or variable.startswith("SERVICENOW_")
        if overriding and variable != keep and value:
            warnings.append(
                f"ignoring {variable}: profile {name!r} takes the instance and credentials "
                "from the config file only"
            )
            continue
        kept[variable] = value
    return kept, warnings


def resolve_connection(
    cli: ConnectionOptions,
    profile: Mapping[str, Any],
    *,
    prompt: Callable[[str], str] | None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedConnection:
    """The connection: command line, then environment, then the file (see snowcheck.connection
    and, for the ``auth`` method and its secrets, snowcheck.credentials).

    With a profile named (--profile, or each of --all-profiles) the environment no longer
    chooses the instance or the credentials: the profile does, and each variable set that
    would have overridden it is named in a warning.
    """
    environ = os.environ if environ is None else environ
    ignored: list[str] = []
    if cli.profile is not None:
        environ, ignored = profile_environment(environ, profile, cli.profile)
    login = resolve_login(cli.login, profile, environ=environ, prompt=prompt)
    resolved = _resolve_connection(
        instance=cli.instance,
        user=cli.user,
        ca_bundle=cli.ca_bundle,
        config=profile,
        environ=environ,
        prompt=prompt,
        login=login.login,
        account=ACCOUNTS.get(login.login.method),
    )
    return replace(resolved, warnings=(*ignored, *login.warnings, *resolved.warnings))
