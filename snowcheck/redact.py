"""Redaction of secrets from any text snowcheck prints, logs or raises.

One place, so the instance adapter's errors and the log file hide the same
forms of a secret: as typed, URL-encoded (a logged URL or form body), and with
its whitespace collapsed (an error message flattened to one line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"

# The header's value up to the end of the line or of a quoted string; a backslash ends it
# too, so the escaped "\r\n" of a logged bytes repr is not swallowed.
_AUTHORIZATION = re.compile(
    r"""(?P<name>authorization['"]?\s*[:=]\s*['"]?)(?P<value>[^'"\\\r\n,}]+)""",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


def forms(secret: str) -> tuple[str, ...]:
    """Every form in which ``secret`` may appear in text."""
    collapsed = _SPACES.sub(" ", secret).strip()
    candidates = (secret, quote(secret, safe=""), quote_plus(secret, safe=""), collapsed)
    return tuple(form for form in candidates if form)


def redact(text: str, secrets: Iterable[str] = (), *, mask: str = REDACTED) -> str:
    """``text`` with every Authorization header value and every form of every secret masked."""
    text = _AUTHORIZATION.sub(lambda match: match.group("name") + mask, text)
    every = {form for secret in secrets if secret for form in forms(secret)}
    for form in sorted(every, key=len, reverse=True):
        text = text.replace(form, mask)
    return text
