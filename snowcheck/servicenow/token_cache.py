"""OAuth tokens kept between runs (cron) in a 0600 file in the user's state folder.

One JSON file holds every cached token, keyed by instance, client id and user. A file that
is not the user's own, that others may read, or that is not what we wrote is ignored: the
caller gets a warning to show (never a token) and fetches a new token, which replaces it.
Writes go to a 0600 temporary file renamed over the old one, so a reader never sees half.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

FILE_NAME = "oauth-tokens.json"
_FORMAT = 1


def default_path() -> Path:
    """`oauth-tokens.json` in the user's state folder (platformdirs: `~/.local/state/snowcheck`
    on Linux, honouring XDG_STATE_HOME)."""
    return platformdirs.user_state_path("snowcheck") / FILE_NAME


@dataclass(frozen=True)
class Token:
    """An OAuth access token, with its refresh token when the grant gives one."""

    access_token: str = field(repr=False)
    expires_at: float
    """When it expires, in seconds since the epoch (the client's clock)."""
    lifetime: float
    """The `expires_in` it was issued with, in seconds."""
    refresh_token: str | None = field(default=None, repr=False)

    def refresh_at(self) -> float:
        """When to replace it: 60 s before it expires, or half-way when that is sooner."""
        return self.expires_at - min(60.0, self.lifetime / 2)

    def fresh(self, now: float) -> bool:
        """Whether it may still be sent at `now` without refreshing first."""
        return now < self.refresh_at()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (secrets included: only for the 0600 cache file)."""
        return {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "lifetime": self.lifetime,
            "refresh_token": self.refresh_token,
        }

    @classmethod
    def from_dict(cls, data: object) -> Token:
        """Read the JSON form; ValueError if it is not one."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        access, refresh = data.get("access_token"), data.get("refresh_token")
        expires_at, lifetime = data.get("expires_at"), data.get("lifetime")
        if not isinstance(access, str) or not access or not isinstance(refresh, str | None):
            raise ValueError("bad token strings")
        return cls(access, _seconds(expires_at), _seconds(lifetime), refresh)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("bad token time")
    return float(value)


@dataclass(frozen=True)
class CacheKey:
    """What a cached token belongs to."""

    instance: str
    """The instance URL, e.g. `https://example.service-now.com`."""
    client_id: str
    user: str | None
    """The user of a password grant; None for a client-credentials token."""

    def text(self) -> str:
        """The key inside the cache file."""
        instance = self.instance.strip().rstrip("/").lower()
        return json.dumps([instance, self.client_id, self.user])


class TokenCache:
    """The token cache file; every method returns a warning (a str) or None, never raises
    for a bad or unreadable file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def _read(self) -> tuple[dict[str, Any], str | None]:
        """The cached entries, and a warning if the file had to be ignored."""
        try:
            descriptor = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return {}, None
        except OSError as error:
            return {}, f"ignoring the token cache {self.path}: {error.strerror or error}"
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return {}, f"ignoring the token cache {self.path}: not a regular file"
            if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
                return {}, f"ignoring the token cache {self.path}: it belongs to another user"
            if info.st_mode & 0o077:
                mode = stat.filemode(info.st_mode)
                return {}, (
                    f"ignoring the token cache {self.path}: others may read it ({mode}); "
                    "it must be readable by its owner only (chmod 600)"
                )
            raw = handle.read()
        try:
            document = json.loads(raw.decode("utf-8"))
            tokens = document["tokens"]
            if document.get("format") != _FORMAT or not isinstance(tokens, dict):
                raise ValueError("unknown format")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            return {}, f"ignoring the token cache {self.path}: it is corrupt"
        return tokens, None

    def load(self, key: CacheKey) -> tuple[Token | None, str | None]:
        """The token cached for `key` (None if there is none), and a warning if any."""
        tokens, warning = self._read()
        entry = tokens.get(key.text())
        if entry is None:
            return None, warning
        try:
            return Token.from_dict(entry), warning
        except ValueError:
            return None, f"ignoring the token cache {self.path}: it is corrupt"

    def save(self, key: CacheKey, token: Token | None) -> str | None:
        """Store (or, with None, forget) the token for `key`; returns a warning on failure."""
        tokens, _ = self._read()  # an unusable file is replaced, its warning already given
        if token is None:
            if tokens.pop(key.text(), None) is None:
                return None
        else:
            tokens[key.text()] = token.to_dict()
        document = {"format": _FORMAT, "tokens": tokens}
        try:
            self._write(json.dumps(document, indent=1).encode("utf-8"))
        except OSError as error:
            return f"cannot write the token cache {self.path}: {error.strerror or error}"
        return None

    def _write(self, data: bytes) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600 before anything is written into it.
        descriptor, temporary = tempfile.mkstemp(prefix=".tokens-", dir=folder)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
