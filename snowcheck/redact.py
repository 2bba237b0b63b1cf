"""Redaction of secrets from any text snowcheck prints, logs or raises: one ``Redactor``.

The terminal (diagnostics, the report, JSON, Nagios), the log file and the errors
of the ServiceNow layer all redact through a ``Redactor``, so they hide the same
things the same way:

- every ``Authorization`` header value;
- every secret of at least ``MIN_SECRET_LENGTH`` characters, and the Basic token of
  the login (base64 of ``user:password``), as typed, URL-encoded (a logged URL or
  form body), JSON-escaped, and with its whitespace collapsed (an error flattened
  to one line), only where it stands as a whole token: never inside a word.

A shorter secret cannot be masked without garbling words ("grant admin a role"), so
it is never masked: it is never echoed instead. Text from the instance that could
hold it (an error body) goes through ``Redactor.echo_safe``, which gives the status
line in its place whenever a secret would still show.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"

MIN_SECRET_LENGTH = 6
"""Shorter secrets are never masked (they would garble words), only kept from being echoed."""

# The header's value (an auth scheme, then its credentials) up to the end of the line or of
# a quoted string; a backslash ends it too, so the escaped "\r\n" of a logged bytes repr is
# not swallowed. The scheme must be one: prose ("failed authorization: roles missing") is
# not a header.
_SCHEMES = r"basic|bearer|digest|negotiate|ntlm|oauth|token|hawk|mutual|aws4-hmac-sha256"
_AUTHORIZATION = re.compile(
    rf"""(?P<name>authorization['"]?\s*[:=]\s*['"]?)(?P<value>(?:{_SCHEMES})\s[^'"\\\r\n,}}]+)""",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w")


def basic_token(user: str, password: str) -> str:
    """The credential part of a Basic Authorization header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def forms(secret: str) -> tuple[str, ...]:
    """Every form in which ``secret`` may appear in text."""
    candidates = (
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        _SPACES.sub(" ", secret).strip(),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    )
    return tuple(dict.fromkeys(form for form in candidates if form))


def _whole_token(form: str) -> str:
    """A pattern for ``form`` not run into a word: no word character just before or after."""
    before = r"(?<!\w)" if _WORD.match(form[0]) else ""
    after = r"(?!\w)" if _WORD.match(form[-1]) else ""
    return f"{before}{re.escape(form)}{after}"


class Redactor:
    """Masks the secrets it was given in any text; shared by the terminal, log and errors.

    Secrets may be added after it was handed out (the password is known only once the
    settings are resolved, after the log file opened); it is safe to use from threads.
    """

    def __init__(self, secrets: Iterable[str] = (), *, mask: str = REDACTED) -> None:
        self.mask = mask
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    @classmethod
    def for_login(cls, user: str, password: str) -> Redactor:
        """A redactor for one login: the password and its Basic token."""
        redactor = cls()
        redactor.add_login(user, password)
        return redactor

    def add(self, secret: str) -> None:
        """Hide ``secret`` too, from now on."""
        with self._lock:
            if not secret or secret in self._secrets:
                return
            self._secrets = (*self._secrets, secret)
            masked = [known for known in self._secrets if len(known) >= MIN_SECRET_LENGTH]
            every = {form for known in masked for form in forms(known)}
            ordered = sorted(every, key=len, reverse=True)  # the longest form wins
            self._pattern = re.compile("|".join(map(_whole_token, ordered))) if ordered else None

    def add_login(self, user: str, password: str) -> None:
        """Hide the password and the Basic token made of it."""
        self.add(password)
        if password:
            self.add(basic_token(user, password))

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def __call__(self, text: str) -> str:
        """``text`` with every Authorization value and every long secret's forms masked."""
        text = _AUTHORIZATION.sub(lambda match: match.group("name") + self.mask, text)
        pattern = self._pattern
        return pattern.sub(self.mask, text) if pattern is not None else text

    def shows_a_secret(self, text: str) -> bool:
        """Whether a form of any secret would still show in ``text`` once redacted."""
        redacted = self(text)
        return any(form in redacted for secret in self._secrets for form in forms(secret))

    def echo_safe(self, text: str, status_line: str = "") -> str:
        """``text`` redacted, or ``status_line`` when a secret would still show in it.

        For text from the instance that may echo what it was sent (an error body, a
        transport error): a password shorter than MIN_SECRET_LENGTH, or a longer one
        run into a word, cannot be masked, so the error is reduced to its status line.
        """
        return status_line if self.shows_a_secret(text) else self(text)


def redact(text: str, secrets: Iterable[str] = (), *, mask: str = REDACTED) -> str:
    """``text`` redacted by a ``Redactor`` of ``secrets`` (for one-off use)."""
    return Redactor(secrets, mask=mask)(text)
