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

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import stat
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from snowcheck.errors import ConfigError, DataError, SnowcheckError
from snowcheck.messages import TEMPLATE_SETS
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.records import (
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
    ROLE_TABLE,
    TABLES,
    USER_ROLE_TABLE,
    USER_TABLE,
)
from snowcheck.rules import AUTHZ_FAILED, USERNAME_PARAM

KEY_BYTES = 32
"""Length of a random key, and the shortest key file that draws no warning."""
CORE_LENGTH = 16
"""Letters in a pseudonym: 26**16 values, so two names never share one in practice."""
BEST_EFFORT = (
    "Redaction is best effort: user names, MID Server names, hosts and IP addresses were "
    "replaced by pseudonyms and unknown fields dropped; review the file before sharing it."
)
METHOD = "HMAC-SHA256 pseudonyms; letter case and trailing spaces kept"

_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_UNBIASED = 256 - 256 % len(_ALPHABET)
_SECRET_WORDS = ("password", "passwd", "secret", "token", "cookie", "credential", "key")

_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
_IPV6 = r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:.])"
_IP = re.compile(f"{_IPV4}|{_IPV6}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>/?#]+")


class PseudonymCollision(SnowcheckError):
    """Two different names drew the same pseudonym; another key will separate them."""


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


def new_key() -> bytes:
    """A random key for one redaction, which is then not kept."""
    return secrets.token_bytes(KEY_BYTES)


def read_key_file(path: str) -> tuple[bytes, list[str]]:
    """The key held in ``path`` (one trailing newline dropped) and the warnings about it.

    Warns, as for password files, when group or others may read the file (whoever holds
    the key can test guessed names against the pseudonyms), and when the key is short.
    """
    where = Path(path).expanduser()
    try:
        key = where.read_bytes()
        mode = where.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"redaction key file {where} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read redaction key file {where}: {exc.strerror}") from None
    if key.endswith(b"\r\n"):
        key = key[:-2]
    elif key.endswith(b"\n"):
        key = key[:-1]
    if not key:
        raise ConfigError(f"redaction key file {where} is empty")
    warnings = []
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(
            f"redaction key file {where} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):o}): run chmod 600 {where}"
        )
    if len(key) < KEY_BYTES:
        warnings.append(
            f"redaction key file {where} holds {len(key)} bytes; use at least {KEY_BYTES} "
            f"random bytes (head -c {KEY_BYTES} /dev/urandom > {where})"
        )
    return key, warnings


def _folded(name: str) -> str:
    """The name as the instance's database compares it."""
    return name.rstrip(" ").lower()


class Pseudonymiser:
    """Keyed pseudonyms, one kind of name at a time; same key, same pseudonyms."""

    def __init__(self, key: bytes | None = None) -> None:
        self.random_key = key is None
        """True when no key was given: the pseudonyms cannot be linked to another file's."""
        self._key = new_key() if key is None else key
        self._issued: dict[tuple[str, str], str] = {}

    def _digest(self, purpose: str, text: str, counter: int = 0) -> bytes:
        message = f"{purpose}\x00{counter}\x00{text}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _letters(self, purpose: str, text: str, length: int) -> str:
        letters: list[str] = []
        counter = 0
        while len(letters) < length:
            for byte in self._digest(purpose, text, counter):
                if byte < _UNBIASED and len(letters) < length:
                    letters.append(_ALPHABET[byte % len(_ALPHABET)])
            counter += 1
        return "".join(letters)

    def _case_mask(self, purpose: str, stripped: str, length: int) -> list[bool]:
        if stripped == stripped.lower():
            return [False] * length
        if stripped.isascii():
            # ASCII lowercases letter by letter, so the capitals' places tell the variants apart.
            return [char.isupper() for char in stripped] + [False] * (length - len(stripped))
        bits = b"".join(
            self._digest(f"{purpose}-case", stripped, counter)
            for counter in range(-(-length // 256))
        )
        mask = [bool(bits[i // 8] >> (i % 8) & 1) for i in range(length)]
        mask[0] = True  # never the mask of the all-lowercase spelling
        return mask

    def _check(self, kind: str, pseudonym: str, original: str) -> str:
        known = self._issued.setdefault((kind, pseudonym), original)
        if known != original:
            raise PseudonymCollision(
                f"two {kind} names drew the same pseudonym: redact again with another key"
            )
        return pseudonym

    def _name(self, kind: str, prefix: str, name: str) -> str:
        stripped = name.rstrip(" ")
        if not stripped:
            return name  # empty, or only spaces: nothing to hide, and it must stay empty
        trailing = name[len(stripped) :]
        folded = stripped.lower()
        core = self._letters(kind, folded, max(CORE_LENGTH, len(folded)))
        mask = self._case_mask(kind, stripped, len(core))
        cased = "".join(
            char.upper() if upper else char for char, upper in zip(core, mask, strict=True)
        )
        return self._check(kind, prefix + cased + trailing, name)

    def user(self, name: str) -> str:
        """A user name's pseudonym: letters, the name's case pattern, its trailing spaces."""
        return self._name("user", "", name)

    def mid_server(self, name: str) -> str:
        """A MID Server name's pseudonym, ``mid-`` then letters, compared like a user name's."""
        return self._name("mid", "mid-", name)

    def host(self, name: str) -> str:
        """A host name's pseudonym under ``.invalid``; host names ignore case."""
        folded = name.strip().lower().rstrip(".")
        if not folded:
            return name
        return self._check(
            "host", f"host-{self._letters('host', folded, CORE_LENGTH)}.invalid", folded
        )

    def address(self, text: str) -> str:
        """An IP address's pseudonym (``ip-`` then letters); one address, one pseudonym."""
        try:
            canonical = str(ipaddress.ip_address(text.split("%")[0]))
        except ValueError:
            canonical = text
        return self._check("ip", f"ip-{self._letters('ip', canonical, CORE_LENGTH)}", canonical)

    def opaque(self, value: str) -> str:
        """A value this module cannot read (a config value, an event's parm2): one token."""
        if value == "":
            return value
        return self._check("value", f"redacted-{self._letters('value', value, CORE_LENGTH)}", value)

    def url(self, text: str) -> str:
        """``text`` with the host of its URL replaced by the host's pseudonym."""
        parts = urlsplit(text)
        if not parts.hostname:
            return text
        netloc = self.host(parts.hostname)
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def addresses_in(self, text: str) -> str:
        """``text`` with every IP address in it replaced."""
        return _IP.sub(
            lambda match: (
                self.address(match.group()) if _is_address(match.group()) else match.group()
            ),
            text,
        )


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
    },
    USER_TABLE: {"user_name": USER, "active": KEEP, "locked_out": KEEP},
    CONFIG_TABLE: {"ecc_agent": KEEP, "param_name": KEEP, "value": "config value"},
    MID_TABLE: {
        "name": MID,
        "status": KEEP,
        "last_refreshed": KEEP,
        "host_name": HOST,
        "ip_address": ADDRESS,
    },
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
    return any(word in name.lower() for word in _SECRET_WORDS)


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
        folded = _folded(value).strip()
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
        for match in _URL.finditer(text):
            host = urlsplit(match.group()).hostname
            if host:
                self.learn(HOST, host)

    @staticmethod
    def _names_user(row: Mapping[str, Any]) -> bool:
        param = row.get("param_name")
        return isinstance(param, str) and _folded(param) == USERNAME_PARAM

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
        if isinstance(name, str) and _folded(name) == AUTHZ_FAILED:
            return self.names.addresses_in(value)  # the missing roles, kept for the notes
        addresses = [m.group() for m in _IP.finditer(value) if _is_address(m.group())]
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
        if isinstance(source, str) and _folded(source) == _folded(self.source):
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
        unknown = sorted(set(tables) - set(TABLES))
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
                return self.search(_URL.sub(lambda m: self.names.url(m.group()), value))[0]
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
        if field == "now":
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
