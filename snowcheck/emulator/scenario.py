"""Scenarios: the rows, users, ACLs, faults and batch settings an emulated instance starts with.

A scenario is a JSON document in the snapshot format::

    {
      "now": "2026-11-25 10:00:00",            # optional: freezes the clock (UTC)
      "tables": {"sys_user": [{"sys_id": "...", "user_name": "mid1", ...}], ...},
      "users": {"admin": {"password": "admin", "deny_read": ["sysevent"],
                          "deny_write": [], "acl_empty": [], "acl_hide": {}}},
      "faults": [{"kind": "status", "status": 503, "times": 1}],
      "batch": {"enabled": true, "refuse_status": 400, "max_requests": null},
      "references": {"table.field": "target_table"},
      "auth": {...}                            # optional: OAuth, API keys, policies (auth.py)
    }

Rows are given as the Table API returns them: string values (numbers and booleans are turned
into strings), references as a sys_id or `{"link", "value"}`. Any value written as a relative
time (`-30m`, `-5h`, `-2d`, `-90s`, `+1h`) becomes `YYYY-MM-DD HH:MM:SS`, counted from the
scenario's `now`, or from the real clock when the scenario is loaded. A table listed under
`tables` is known even with no rows. Without `users`, the credentials are `admin` / `admin`.
Other top-level keys (snapshot metadata) are ignored.

Per-user ACLs: `deny_read` tables answer 403 to reads, `deny_write` tables 403 to writes,
`acl_empty` tables read as empty (no error), and `acl_hide` maps a table to an encoded query
whose rows are removed from each page after the limit, as row-level ACLs do (short pages,
same `X-Total-Count`).

Per-user authentication (see auth.py): `auth` lists the methods the user may use (`basic`,
`oauth`, `api-key`, `mtls`; all by default), and `certificate` is the common name of the
TLS client certificate mapped to the user.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from snowcheck.emulator.auth import AuthConfig, AuthConfigError, methods_from
from snowcheck.emulator.clock import format_time, parse_time
from snowcheck.emulator.faults import Fault
from snowcheck.emulator.store import to_text, valid_name

DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "admin"

_RELATIVE = re.compile(r"([+-])(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScenarioError(ValueError):
    """A scenario file or document is malformed."""


@dataclass(frozen=True)
class UserAccess:
    """One user's password and table ACLs."""

    password: str
    deny_read: frozenset[str] = frozenset()
    deny_write: frozenset[str] = frozenset()
    acl_empty: frozenset[str] = frozenset()
    acl_hide: Mapping[str, str] = field(default_factory=dict)
    """Table -> encoded query of the rows a row-level ACL hides from this user."""
    methods: frozenset[str] | None = None
    """The authentication methods this user may use (None: every one)."""
    certificate: str | None = None
    """The common name of the TLS client certificate that logs in as this user."""


@dataclass(frozen=True)
class BatchConfig:
    """How `POST /api/now/v1/batch` behaves."""

    enabled: bool = True
    """False: the endpoint is refused, as on an instance without the batch API."""
    refuse_status: int = 400
    """The status of a refused batch request (400 or 404)."""
    max_requests: int | None = None
    """Requests serviced per batch; the rest are listed in `unserviced_requests`."""

    def __post_init__(self) -> None:
        if self.refuse_status not in (400, 404):
            raise ScenarioError("batch 'refuse_status' must be 400 or 404")
        if self.max_requests is not None and self.max_requests < 0:
            raise ScenarioError("batch 'max_requests' cannot be negative")

    @classmethod
    def from_dict(cls, spec: object) -> BatchConfig:
        """Build from JSON: `{"enabled", "refuse_status", "max_requests"}`, all optional."""
        if not isinstance(spec, dict):
            raise ScenarioError("'batch' must be an object")
        unknown = set(spec) - {"enabled", "refuse_status", "max_requests"}
        if unknown:
            raise ScenarioError(f"batch: unknown key(s) {sorted(unknown)}")
        enabled = spec.get("enabled", True)
        refuse_status = spec.get("refuse_status", 400)
        max_requests = spec.get("max_requests")
        if not isinstance(enabled, bool):
            raise ScenarioError("batch 'enabled' must be true or false")
        if not isinstance(refuse_status, int) or not isinstance(max_requests, int | None):
            raise ScenarioError("batch 'refuse_status' and 'max_requests' must be integers")
        return cls(enabled, refuse_status, max_requests)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def resolve_relative(value: str, anchor: datetime) -> str:
    """Turn a relative time (`-30m`, `+1h`, ...) into an absolute one; other values unchanged."""
    match = _RELATIVE.fullmatch(value)
    if match is None:
        return value
    seconds = int(match[2]) * _UNIT_SECONDS[match[3]]
    return format_time(anchor + timedelta(seconds=seconds if match[1] == "+" else -seconds))


def _strings(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ScenarioError(f"{where} must be a list of table names")
    return frozenset(value)


def _user(name: str, spec: object) -> UserAccess:
    where = f"users.{name}"
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where} must be an object with a 'password'")
    known = {"password", "deny_read", "deny_write", "acl_empty", "acl_hide", "auth", "certificate"}
    unknown = set(spec) - known
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}")
    password = spec.get("password")
    if not isinstance(password, str):
        raise ScenarioError(f"{where}.password must be a string")
    hide = spec.get("acl_hide", {})
    if not isinstance(hide, dict) or not all(isinstance(q, str) for q in hide.values()):
        raise ScenarioError(f"{where}.acl_hide must map table names to encoded queries")
    certificate = spec.get("certificate")
    if not isinstance(certificate, str | None):
        raise ScenarioError(f"{where}.certificate must be a certificate's common name")
    try:
        methods = methods_from(spec["auth"], f"{where}.auth") if "auth" in spec else None
    except AuthConfigError as error:
        raise ScenarioError(str(error)) from error
    return UserAccess(
        password=password,
        deny_read=_strings(spec.get("deny_read", []), f"{where}.deny_read"),
        deny_write=_strings(spec.get("deny_write", []), f"{where}.deny_write"),
        acl_empty=_strings(spec.get("acl_empty", []), f"{where}.acl_empty"),
        acl_hide=dict(hide),
        methods=methods,
        certificate=certificate,
    )


def _rows(table: str, rows: object, anchor: datetime) -> tuple[dict[str, str], ...]:
    if not valid_name(table):
        raise ScenarioError(f"invalid table name {table!r}")
    if not isinstance(rows, list):
        raise ScenarioError(f"tables.{table} must be a list of rows")
    result: list[dict[str, str]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ScenarioError(f"tables.{table}[{index}] must be an object")
        converted: dict[str, str] = {}
        for name, value in row.items():
            if "." in name:
                continue  # dot-walked values in a snapshot are derived, not stored
            if not valid_name(name):
                raise ScenarioError(f"tables.{table}[{index}]: invalid field name {name!r}")
            try:
                text = to_text(value)
            except ValueError as error:
                raise ScenarioError(f"tables.{table}[{index}].{name}: {error}") from error
            converted[name] = resolve_relative(text, anchor)
        result.append(converted)
    return tuple(result)


def _references(spec: object) -> dict[tuple[str, str], str]:
    if not isinstance(spec, dict):
        raise ScenarioError("'references' must map 'table.field' to a table name")
    result: dict[tuple[str, str], str] = {}
    for key, target in spec.items():
        table, _, name = key.partition(".")
        if not (valid_name(table) and valid_name(name)) or not isinstance(target, str):
            raise ScenarioError(f"references: bad entry {key!r}: {target!r}")
        result[(table, name)] = target
    return result


@dataclass(frozen=True)
class Scenario:
    """What an emulated instance starts with; build with `load`, `from_dict` or `empty`."""

    tables: Mapping[str, tuple[dict[str, str], ...]] = field(default_factory=dict)
    """Rows per table, relative times already resolved."""
    users: Mapping[str, UserAccess] = field(
        default_factory=lambda: {DEFAULT_USER: UserAccess(DEFAULT_PASSWORD)}
    )
    now: datetime | None = None
    """The frozen instant of the instance's clock, or None for the real clock."""
    faults: tuple[Fault, ...] = ()
    batch: BatchConfig = BatchConfig()
    references: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """Reference fields beyond the standard ones: (table, field) -> target table."""
    auth: AuthConfig = field(default_factory=AuthConfig)
    """OAuth clients, API keys and per-table access policies (none by default)."""

    @classmethod
    def empty(cls) -> Scenario:
        """No rows, the default credentials, the real clock."""
        return cls()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scenario:
        """Read a scenario JSON file."""
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as error:
            raise ScenarioError(f"cannot read scenario {os.fspath(path)}: {error}") from error
        except json.JSONDecodeError as error:
            raise ScenarioError(f"scenario {os.fspath(path)} is not JSON: {error}") from error
        try:
            return cls.from_dict(data)
        except ScenarioError as error:
            raise ScenarioError(f"scenario {os.fspath(path)}: {error}") from error

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, clock_now: datetime | None = None) -> Scenario:
        """Build a scenario from its JSON form (see the module docstring).

        `clock_now` is the instant relative times count from when the scenario has no `now`
        (default: the real clock, now).
        """
        if not isinstance(data, Mapping):
            raise ScenarioError("a scenario must be a JSON object")
        now: datetime | None = None
        if data.get("now") is not None:
            if not isinstance(data["now"], str):
                raise ScenarioError("'now' must be a string 'YYYY-MM-DD HH:MM:SS'")
            try:
                now = parse_time(data["now"])
            except ValueError as error:
                raise ScenarioError(f"bad 'now' {data['now']!r}: {error}") from error
        anchor = now or clock_now or datetime.now(UTC).replace(microsecond=0)

        tables_spec = data.get("tables", {})
        if not isinstance(tables_spec, dict):
            raise ScenarioError("'tables' must map table names to lists of rows")
        tables = {name: _rows(name, rows, anchor) for name, rows in tables_spec.items()}

        users_spec = data.get("users")
        if users_spec is None:
            users = {DEFAULT_USER: UserAccess(DEFAULT_PASSWORD)}
        elif isinstance(users_spec, dict) and users_spec:
            users = {name: _user(name, spec) for name, spec in users_spec.items()}
        else:
            raise ScenarioError("'users' must map at least one user name to its settings")

        faults_spec = data.get("faults", [])
        if not isinstance(faults_spec, list):
            raise ScenarioError("'faults' must be a list")
        try:
            faults = tuple(Fault.from_dict(spec) for spec in faults_spec)
        except ValueError as error:
            raise ScenarioError(f"faults: {error}") from error

        try:
            auth = AuthConfig.from_dict(data.get("auth", {}))
        except AuthConfigError as error:
            raise ScenarioError(str(error)) from error

        return cls(
            tables=tables,
            users=users,
            now=now,
            faults=faults,
            batch=BatchConfig.from_dict(data.get("batch", {})),
            references=_references(data.get("references", {})),
            auth=auth,
        )
