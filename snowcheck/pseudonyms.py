"""Keyed-HMAC pseudonyms for names: the same name, the same pseudonym; case and spaces kept."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from snowcheck.errors import SnowcheckError
from snowcheck.secret_files import read_secret_bytes

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
SECRET_WORDS = ("password", "passwd", "secret", "token", "cookie", "credential", "key")

_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
_IPV6 = r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:.])"
IP_PATTERN = re.compile(f"{_IPV4}|{_IPV6}")
URL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>/?#]+")


class PseudonymCollision(SnowcheckError):
    """Two different names drew the same pseudonym; another key will separate them."""


def is_address(text: str) -> bool:
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
    key, warnings = read_secret_bytes(path, "redaction key file")
    if len(key) < KEY_BYTES:
        warnings.append(
            f"redaction key file {where} holds {len(key)} bytes; use at least {KEY_BYTES} "
            f"random bytes (head -c {KEY_BYTES} /dev/urandom > {where})"
        )
    return key, warnings


def fold_name(name: str) -> str:
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
        return IP_PATTERN.sub(
            lambda match: (
                self.address(match.group()) if is_address(match.group()) else match.group()
            ),
            text,
        )
