"""Pseudonymise a snapshot for sharing: names become keyed-HMAC pseudonyms that compare as before.

A snapshot names user accounts, MID Servers, hosts and IP addresses. For a vendor or a
support case those are replaced by pseudonyms, HMAC-SHA256 under a key: the same name
gets the same pseudonym throughout a file and, with the same key, across files.

Every comparison the check makes must come out as before, both the instance's kind
(ignoring letter case and trailing U+0020 spaces) and the exact kind made in memory. So
a user name's pseudonym is built from three parts:

- letters derived from the HMAC of the name as the instance compares it,
  ``rstrip(" ").lower()``: names equal that way get the same lowercase letters;
- the name's own letter case laid over those letters: position by position for an
  ASCII name (``mid.svc`` gives ``sqgcjwmliufvycbc`` and ``MID.Svc`` ``SQGcJwmliufvycbc``
  under one key: capitals where the name has them), from a second HMAC for any other
  name whose lowercase differs from itself;
- the name's own trailing spaces, appended.

Two names then compare equal (either way) exactly when their pseudonyms do. Role names,
event names, states, counts, times, domains and sys_ids are kept; fields this module
does not know are dropped (a password, token or cookie included), since it cannot tell
what they hold. Issue messages are parsed with the message templates to find the user
name in them; a message that matches none is searched for known names instead and
reported. Redaction is best effort: the file should be reviewed before it is shared.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from snowcheck.errors import DataError
from snowcheck.messages import TEMPLATE_SETS
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.pseudonyms import (
    BEST_EFFORT,
    IP_PATTERN,
    METHOD,
    SECRET_WORDS,
    URL_PATTERN,
    Pseudonymiser,
    fold_name,
    is_address,
)
from snowcheck.records import (
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
    OPTIONAL_TABLES,
    PROPERTY_TABLE,
    ROLE_TABLE,
    TABLES,
    USER_ROLE_TABLE,
    USER_TABLE,
)
from snowcheck.rules import AUTHZ_FAILED, USERNAME_PARAM


@dataclass(frozen=True)
class Redaction:
    """A pseudonymised snapshot document and what the redaction could not vouch for."""

    document: dict[str, Any]
    """``{"now", "tables", "manifest"}``: the manifest holds ``manifest`` below."""
    warnings: tuple[str, ...]
    """One line each: dropped fields, messages where no name could be found, and such."""
    manifest: Mapping[str, Any]
    """The manifest fragment: ``{"redacted": true, "redaction": {...}}``."""
    instance: str | None
    """The pseudonymised ``instance`` given, for the manifest; None when none was given."""


# What each field holds, so that it is kept, pseudonymised or handled specially.
KEEP, USER, MID, HOST, ADDRESS = "keep", "user", "mid", "host", "address"
_REFERENCE_DISPLAY = {"user": USER, "ecc_agent": MID, "mid_server": MID}
_COMMON = {
    "sys_id": KEEP,
    "sys_created_on": KEEP,
    "sys_updated_on": KEEP,
    "sys_domain": KEEP,
    "sys_mod_count": KEEP,
}
FIELDS: Mapping[str, Mapping[str, str]] = {
    ROLE_TABLE: {"name": KEEP},
    USER_ROLE_TABLE: {
        "user": KEEP,
        "role": KEEP,
        "user.user_name": USER,
        "user.active": KEEP,
        "user.locked_out": KEEP,
        "user.sys_domain": KEEP,
        "user.sys_id": KEEP,
        "user.password_needs_reset": KEEP,
    },
    USER_TABLE: {
        "user_name": USER,
        "active": KEEP,
        "locked_out": KEEP,
        "password_needs_reset": KEEP,
    },
    CONFIG_TABLE: {"ecc_agent": KEEP, "param_name": KEEP, "value": "config value"},
    MID_TABLE: {
        "name": MID,
        "status": KEEP,
        "last_refreshed": KEEP,
        "host_name": HOST,
        "ip_address": ADDRESS,
        "user_name": USER,
        "validated": KEEP,
        "version": KEEP,
    },
    PROPERTY_TABLE: {"name": KEEP, "value": KEEP},
    EVENT_TABLE: {"name": KEEP, "parm1": USER, "parm2": "parm2"},
    ISSUE_TABLE: {
        "message": "message",
        "source": KEEP,
        "state": KEEP,
        "count": KEEP,
        "last_detected": KEEP,
        "mid_server": KEEP,
    },
}
"""The fields kept in each table (besides sys_id, dates and domain); every other is dropped."""


def _looks_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def _sys_id(row: Mapping[str, Any]) -> str:
    value = row.get("sys_id", "")
    return value if isinstance(value, str) else ""


class _Redactor:
    """One pass over one document; collects the names first so messages can be searched."""

    def __init__(self, names: Pseudonymiser, source: str) -> None:
        self.names = names
        self.source = source
        self.known: dict[str, str] = {}
        """Folded name -> kind, for searching messages that match no template."""
        self.warnings: list[str] = []
        self.dropped: Counter[tuple[str, str]] = Counter()
        self._search: tuple[int, re.Pattern[str] | None] | None = None
        """The known names as one pattern, and how many names it was built from."""

    # -- names ---------------------------------------------------------------------------

    def pseudonym(self, kind: str, value: str) -> str:
        if kind == USER:
            return self.names.user(value)
        if kind == MID:
            return self.names.mid_server(value)
        if kind == HOST:
            return self.names.host(value)
        return self.names.address(value)

    def learn(self, kind: str, value: str) -> None:
        folded = fold_name(value).strip()
        if folded and (kind == USER or folded not in self.known):
            self.known[folded] = kind

    def collect(self, tables: Mapping[str, Any]) -> None:
        for table, rows in tables.items():
            for row in rows:
                for field, kind in FIELDS.get(table, {}).items():
                    value = row.get(field)
                    if isinstance(value, Mapping):
                        value = value.get("display_value")
                    if kind in (USER, MID, HOST) and isinstance(value, str):
                        self.learn(kind, value)
                    if kind == "config value" and isinstance(value, str) and self._names_user(row):
                        self.learn(USER, value)
                for field, kind in _REFERENCE_DISPLAY.items():
                    value = row.get(field)
                    if isinstance(value, Mapping) and isinstance(value.get("display_value"), str):
                        self.learn(kind, value["display_value"])
                    if isinstance(value, Mapping) and isinstance(value.get("link"), str):
                        self._learn_hosts(value["link"])
        for row in tables.get(ISSUE_TABLE, ()):
            message = row.get("message")
            if isinstance(message, str):
                parsed = _parse(message)
                if parsed is not None:
                    self.learn(USER, message[parsed[0] : parsed[1]])

    def _learn_hosts(self, text: str) -> None:
        for match in URL_PATTERN.finditer(text):
            host = urlsplit(match.group()).hostname
            if host:
                self.learn(HOST, host)

    @staticmethod
    def _names_user(row: Mapping[str, Any]) -> bool:
        param = row.get("param_name")
        return isinstance(param, str) and fold_name(param) == USERNAME_PARAM

    # -- values --------------------------------------------------------------------------

    def text(self, kind: str, value: Any, table: str, row: Mapping[str, Any], field: str) -> Any:
        """A name field: a string, a null, or a {value, display_value, link} object."""
        if value is None:
            return None
        if isinstance(value, str):
            return self.pseudonym(kind, value)
        if isinstance(value, Mapping):
            return self.reference(value, {"value": kind, "display_value": kind}, table, row, field)
        raise DataError(
            table, _sys_id(row), field, f"should be a string, got {type(value).__name__}"
        )

    def reference(
        self,
        value: Mapping[str, Any],
        kinds: Mapping[str, str],
        table: str,
        row: Mapping[str, Any],
        field: str,
    ) -> dict[str, Any]:
        """A reference object: its sys_id kept, its link's host and display value replaced."""
        result: dict[str, Any] = {}
        for key, item in value.items():
            kind = kinds.get(key, KEEP)
            if key == "link" and isinstance(item, str):
                result[key] = self.names.url(item)
            elif key not in ("value", "display_value"):
                self.dropped[(table, f"{field}.{key}")] += 1
            elif kind == KEEP or not isinstance(item, str):
                result[key] = item
            else:
                result[key] = self.pseudonym(kind, item)
        return result

    def kept(self, value: Any, table: str, row: Mapping[str, Any], field: str) -> Any:
        if isinstance(value, Mapping):
            display = _REFERENCE_DISPLAY.get(field, KEEP)
            return self.reference(value, {"display_value": display}, table, row, field)
        return value

    def config_value(self, value: Any, row: Mapping[str, Any]) -> Any:
        if self._names_user(row):
            return self.text(USER, value, CONFIG_TABLE, row, "value")
        param = row.get("param_name")
        if isinstance(param, str) and _looks_secret(param):
            self.warnings.append(
                f"{CONFIG_TABLE} record {_sys_id(row) or '(no sys_id)'}: the value of "
                f"{param!r} looks secret and was emptied"
            )
            return ""
        return self.names.opaque(value) if isinstance(value, str) else value

    def parm2(self, value: Any, row: Mapping[str, Any]) -> Any:
        if not isinstance(value, str):
            return value
        name = row.get("name")
        if isinstance(name, str) and fold_name(name) == AUTHZ_FAILED:
            return self.names.addresses_in(value)  # the missing roles, kept for the notes
        addresses = [m.group() for m in IP_PATTERN.finditer(value) if is_address(m.group())]
        rest = value
        for address in addresses:
            rest = rest.replace(address, "")
        if rest.strip(" ,;") == "":
            return self.names.addresses_in(value)  # one address, or a list of them
        return self.names.opaque(value)

    def message(self, value: Any, row: Mapping[str, Any]) -> Any:
        if not isinstance(value, str) or value == "":
            return value
        parsed = _parse(value)
        if parsed is not None:
            start, end = parsed
            return value[:start] + self.names.user(value[start:end]) + value[end:]
        searched, found = self.search(value)
        source = row.get("source")
        if isinstance(source, str) and fold_name(source) == fold_name(self.source):
            where = f"{ISSUE_TABLE} record {_sys_id(row) or '(no sys_id)'}"
            if found:
                self.warnings.append(
                    f"{where}: the message matches no message template; the names in it were "
                    "found by search, review it"
                )
            else:
                self.warnings.append(
                    f"{where}: the message matches no message template and no user name was "
                    "found in it; review it"
                )
        return searched

    def search(self, text: str) -> tuple[str, int]:
        """Replace every known name, host and address in free text; returns the count."""
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            found = match.group()
            kind = self.known.get(found.lower(), USER)
            return self.pseudonym(kind, found)

        if self._search is None or self._search[0] != len(self.known):
            names = sorted(self.known, key=len, reverse=True)
            pattern = re.compile(
                r"(?<![\w.-])(?:" + "|".join(map(re.escape, names)) + r")(?![\w]|[.-]\w)",
                re.IGNORECASE,
            )
            self._search = (len(self.known), pattern if names else None)
        if self._search[1] is not None:
            text = self._search[1].sub(replace, text)
        addresses = self.names.addresses_in(text)
        count += addresses != text
        return addresses, count

    # -- rows ----------------------------------------------------------------------------

    def row(self, table: str, row: Any) -> dict[str, Any]:
        if not isinstance(row, Mapping):
            raise DataError(table, "", "(row)", f"is a {type(row).__name__}, not an object")
        fields = {**_COMMON, **FIELDS[table]}
        handlers: dict[str, Callable[[Any], Any]] = {
            KEEP: lambda v: v,
            "config value": lambda v: self.config_value(v, row),
            "parm2": lambda v: self.parm2(v, row),
            "message": lambda v: self.message(v, row),
        }
        result: dict[str, Any] = {}
        for field, value in row.items():
            kind = fields.get(field)
            if kind is None:
                self.dropped[(table, field)] += 1
            elif kind == KEEP:
                result[field] = self.kept(value, table, row, field)
            elif kind in handlers:
                result[field] = handlers[kind](value)
            else:
                result[field] = self.text(kind, value, table, row, field)
        return result

    def tables(self, tables: Any) -> dict[str, list[dict[str, Any]]]:
        if not isinstance(tables, Mapping):
            raise DataError("snapshot", "", "tables", "should be an object of table name to rows")
        unknown = sorted(set(tables) - {*TABLES, *OPTIONAL_TABLES})
        if unknown:
            raise DataError("snapshot", "", "tables", f"names unknown tables {', '.join(unknown)}")
        for table, rows in tables.items():
            if not isinstance(rows, list):
                raise DataError(table, "", "(table)", "should be a list of rows")
            for row in rows:
                if not isinstance(row, Mapping):
                    raise DataError(table, "", "(row)", f"is a {type(row).__name__}, not an object")
        self.collect(tables)
        return {table: [self.row(table, row) for row in rows] for table, rows in tables.items()}

    def manifest(self, manifest: Any) -> dict[str, Any]:
        """A manifest already present: its URLs and known names replaced in every string."""

        def clean(value: Any) -> Any:
            if isinstance(value, str):
                return self.search(URL_PATTERN.sub(lambda m: self.names.url(m.group()), value))[0]
            if isinstance(value, Mapping):
                return {key: clean(item) for key, item in value.items()}
            if isinstance(value, list):
                return [clean(item) for item in value]
            return value

        return clean(manifest) if isinstance(manifest, Mapping) else {}


def _parse(message: str) -> tuple[int, int] | None:
    """Where the user name stands in an issue message, by the templates of every release.

    Exact wording first; then ignoring case and trailing spaces, as the instance matches an
    issue to a finding.
    """
    for flags, text in ((re.DOTALL, message), (re.DOTALL | re.IGNORECASE, message.rstrip(" "))):
        for templates in TEMPLATE_SETS.values():
            for template in templates.templates.values():
                for pattern in template.patterns():
                    # An empty name, too: a user_name of "" gives "User  is ...".
                    either = pattern.pattern.replace("(?P<user>.+)", "(?P<user>.*)")
                    match = re.fullmatch(either, text, flags)
                    if match:
                        return match.span("user")
    return None


def _instance_host(names: Pseudonymiser, instance: str) -> str:
    if "://" in instance:
        return names.url(instance)
    return names.host(instance)


def pseudonymise(
    document: Mapping[str, Any],
    key: bytes | None = None,
    *,
    instance: str | None = None,
    source: str = DEFAULT_SOURCE,
) -> Redaction:
    """A pseudonymised copy of a snapshot document ``{"now", "tables"[, "manifest"]}``.

    ``key`` is the HMAC key (random when None, and then not kept); ``instance`` the
    instance's URL or host, whose pseudonym the result carries for the manifest;
    ``source`` the issue source whose messages must hold a user name. The input is not
    changed. Raises DataError on a document that is not a snapshot.
    """
    return redact_with(Pseudonymiser(key), document, instance=instance, source=source)


def redact_with(
    names: Pseudonymiser,
    document: Mapping[str, Any],
    *,
    instance: str | None = None,
    source: str = DEFAULT_SOURCE,
) -> Redaction:
    """As ``pseudonymise``, with a given ``Pseudonymiser`` (to redact several files alike)."""
    if not isinstance(document, Mapping):
        raise DataError("snapshot", "", "(file)", "should be a JSON object")
    redactor = _Redactor(names, source)
    if instance:
        host = urlsplit(instance).hostname if "://" in instance else instance
        if host:
            redactor.learn(HOST, host)
    tables = redactor.tables(document.get("tables"))
    fragment: dict[str, Any] = {
        "redacted": True,
        "redaction": {
            "method": METHOD,
            "key": "random, not kept" if names.random_key else "given",
            "note": BEST_EFFORT,
        },
    }
    result: dict[str, Any] = {}
    for field, value in document.items():
        if field in ("now", "extra_reads", "why_unread"):  # snowcheck's own words
            result[field] = value
        elif field == "tables":
            result[field] = tables
        elif field != "manifest":
            redactor.dropped[("snapshot", field)] += 1
    result["manifest"] = {**redactor.manifest(document.get("manifest")), **fragment}
    warnings = list(redactor.warnings)
    for (table, field), count in sorted(redactor.dropped.items()):
        rows = f"{count} row{'s' if count != 1 else ''}"
        where = "the document" if table == "snapshot" else f"{table} ({rows})"
        warnings.append(f"dropped field {field!r} of {where}: it is not known to be safe")
    return Redaction(
        document=result,
        warnings=tuple(warnings),
        manifest=fragment,
        instance=_instance_host(names, instance) if instance else None,
    )
