"""One run per instance at a time: an flock on a per-instance file, so cron runs never overlap.

Two overlapping runs would read the same open issues and both create the
same new ones; the second run is skipped instead (exit 0: not a failure).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from snowcheck.errors import ConfigError, SnowcheckError


class LockHeld(SnowcheckError):
    """Another run holds the instance's lock; this run did nothing."""

    exit_code = 0

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        """The PID the holder wrote into the lock file, or "" when unknown."""
        who = f"process {holder}" if holder else "another process"
        super().__init__(f"another snowcheck run ({who}) holds {path}; skipping this run")


class InstanceLock:
    """An exclusive, non-blocking flock on ``path``, held for the ``with`` block.

    The kernel drops the lock when the process ends, however it ends, so a
    crashed run never leaves a stale lock. The file itself stays in place:
    deleting it would let two runs lock two different files of the same name.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> InstanceLock:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this InstanceLock")
        _make_folders(Path(self.path).parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockHeld(self.path, holder) from None
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        # Only the holder rewrites the file, so a loser never blanks the holder's PID.
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # The PID is for humans; the lock is what matters.
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _make_folders(folder: Path) -> None:
    """Create the missing folders down to ``folder``, each private to the user (0700)."""
    missing: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the lock folder {path}: {exc.strerror or exc}"
            ) from None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def lock_name(instance_url: str) -> str:
    """The lock file's name for an instance: its host, and its port when not the default."""
    url = instance_url if "//" in instance_url else f"https://{instance_url}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host:
        raise ConfigError(f"cannot derive a lock file name from the instance {instance_url!r}")
    name = host if port in (None, _DEFAULT_PORTS.get(parts.scheme)) else f"{host}_{port}"
    # Leading dots would hide the file, and a name of dots would mean a folder.
    return _UNSAFE.sub("_", name).lstrip(".") + ".lock"


def default_lock_path(instance_url: str, environ: Mapping[str, str]) -> str:
    """``$XDG_STATE_HOME/snowcheck/<host>.lock``, or under ``~/.local/state`` without it.

    One lock per instance host and per user: profiles that name the same
    instance share it, since they would write the same issues.
    """
    state = environ.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative value is invalid and to be ignored.
    if not os.path.isabs(state):
        home = environ.get("HOME") or str(Path.home())
        state = os.path.join(home, ".local", "state")
    return os.path.join(state, "snowcheck", lock_name(instance_url))
