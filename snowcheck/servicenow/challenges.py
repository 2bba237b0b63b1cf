"""What a 401's `WWW-Authenticate` header advertises, and which snowcheck `auth` setting
would use each scheme (for doctor).

An instance sends `BASIC realm="Service-now"`; with a REST API access policy set to advertise
all its schemes, one header per scheme (`BEARER realm="Service-now"`, ...), which requests
joins with commas. Scheme names are case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SETTINGS_BY_SCHEME: dict[str, tuple[str, ...]] = {
    "basic": ("basic",),
    "bearer": ("oauth-password", "oauth-client-credentials"),
    "oauth": ("oauth-password", "oauth-client-credentials"),
    "apikey": ("api-key",),
    "api-key": ("api-key",),
    "x-sn-apikey": ("api-key",),
    "certificate": ("mtls",),
}
"""Lower-case scheme -> the `auth` settings that answer it. HMAC has none: snowcheck does
not sign requests."""

# A comma-separated item: a quoted string may hold commas, so match it whole.
_ITEM = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_SCHEME = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+(.*))?", re.DOTALL)


@dataclass(frozen=True)
class Scheme:
    """One authentication scheme a 401 advertised."""

    name: str
    """As the instance wrote it, e.g. `BEARER`."""
    parameters: str
    """What followed the name, e.g. `realm="Service-now"` (empty if nothing)."""
    settings: tuple[str, ...]
    """The snowcheck `auth` settings that would use it; empty if none can."""


def advertised_schemes(headers: str | Iterable[str] | None) -> tuple[Scheme, ...]:
    """The schemes in one or more `WWW-Authenticate` values, in order, each once."""
    if headers is None:
        return ()
    values = [headers] if isinstance(headers, str) else list(headers)
    schemes: list[Scheme] = []
    seen: set[str] = set()
    current: tuple[str, list[str]] | None = None

    def close() -> None:
        if current is not None and current[0].lower() not in seen:
            name, parameters = current
            seen.add(name.lower())
            settings = SETTINGS_BY_SCHEME.get(name.lower(), ())
            schemes.append(Scheme(name, ", ".join(parameters), settings))

    for value in values:
        for match in _ITEM.finditer(value):
            item = match.group().strip()
            if not item:
                continue
            head = _SCHEME.fullmatch(item)
            # `name=value` continues the previous challenge's parameters; a bare token (or a
            # token followed by parameters) starts a new challenge.
            starts = head is not None and not re.match(r"[^\s=]+\s*=", item)
            if starts and head is not None:
                close()
                current = (head.group(1), [head.group(2).strip()] if head.group(2) else [])
            elif current is not None:
                current[1].append(item)
    close()
    return tuple(schemes)


def describe(schemes: Iterable[Scheme]) -> list[str]:
    """One line per scheme for doctor, e.g. `BEARER: auth = oauth-password or
    oauth-client-credentials`."""
    lines = []
    for scheme in schemes:
        if scheme.settings:
            use = " or ".join(scheme.settings)
            lines.append(f"{scheme.name}: auth = {use}")
        else:
            lines.append(f"{scheme.name}: no snowcheck auth setting uses it")
    return lines
