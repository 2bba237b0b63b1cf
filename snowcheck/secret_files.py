"""Reading a secret from a file: one trailing newline dropped, a warning if others may read it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from snowcheck.errors import ConfigError

_Data = TypeVar("_Data", str, bytes)


def _read(
    path: str, noun: str, origin: str | None, read: Callable[[Path], _Data]
) -> tuple[_Data, str, list[str]]:
    """What ``read`` returns for ``path``, the file's label for messages, and the warnings."""
    where = Path(path).expanduser()
    label = f"{noun} {where}" if origin is None else f"{noun} {where} ({origin})"
    try:
        data = read(where)
        mode = where.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{label} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read {label}: {reason}") from None
    warnings = []
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(
            f"{noun} {where} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):o}): run chmod 600 {where}"
        )
    return data, label, warnings


def read_secret_text(path: str, noun: str, origin: str) -> tuple[str, list[str]]:
    """The UTF-8 secret in ``path`` and the warnings; ``noun`` names the file ("password file")."""
    text, label, warnings = _read(path, noun, origin, lambda where: where.read_text("utf-8"))
    # read_text has already turned each \r\n (and lone \r) into \n.
    text = text.removesuffix("\n")
    if not text:
        raise ConfigError(f"{label} is empty")
    return text, warnings


def read_secret_bytes(path: str, noun: str) -> tuple[bytes, list[str]]:
    """The secret bytes in ``path`` (a trailing \\r\\n or \\n dropped) and the warnings."""
    data, label, warnings = _read(path, noun, None, Path.read_bytes)
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise ConfigError(f"{label} is empty")
    return data, warnings
