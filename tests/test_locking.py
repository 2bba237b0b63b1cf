"""The per-instance lock: a second process is refused while the first holds it, and the path."""

from __future__ import annotations

import os
import select
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from snowcheck.errors import ConfigError, SnowcheckError
from snowcheck.locking import InstanceLock, LockHeld, default_lock_path, lock_name

ROOT = Path(__file__).resolve().parent.parent

# Takes the lock, says so, and holds it until its stdin closes.
HOLDER = """
import sys
from snowcheck.locking import InstanceLock
with InstanceLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
print("released", flush=True)
"""


def _read_line(process: subprocess.Popen[str], timeout: float = 10.0) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the holder process did not answer"
    return process.stdout.readline().strip()


@contextmanager
def held_elsewhere(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A second Python process holding the lock for the duration of the block."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert _read_line(process) == "held"
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            assert _read_line(process) == "released"
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()


def test_second_process_is_refused_while_the_first_holds_then_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "dev12345.service-now.com.lock"
    with held_elsewhere(path) as holder:
        with pytest.raises(LockHeld) as caught, InstanceLock(str(path)):
            pytest.fail("the lock was taken twice")
        assert caught.value.holder == str(holder.pid)
        assert str(caught.value) == (
            f"another snowcheck run (process {holder.pid}) holds {path}; skipping this run"
        )
        # The loser did not blank the holder's PID.
        assert path.read_text(encoding="ascii") == f"{holder.pid}\n"
    with InstanceLock(str(path)):
        assert path.read_text(encoding="ascii") == f"{os.getpid()}\n"


def test_lock_held_is_a_snowcheck_error_that_exits_zero() -> None:
    error = LockHeld("/tmp/x.lock", "")
    assert isinstance(error, SnowcheckError)
    assert error.exit_code == 0
    assert (
        str(error) == "another snowcheck run (another process) holds /tmp/x.lock; skipping this run"
    )


def test_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    path = str(tmp_path / "a.lock")
    with pytest.raises(RuntimeError, match="boom"), InstanceLock(path):
        raise RuntimeError("boom")
    # flock conflicts between two opens even in one process, so this proves the release.
    with InstanceLock(path):
        pass


def test_two_locks_in_one_process_conflict(tmp_path: Path) -> None:
    path = str(tmp_path / "a.lock")
    with InstanceLock(path), pytest.raises(LockHeld), InstanceLock(path):
        pass


def test_a_longer_pid_is_overwritten_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    path.write_text("99999999999\n", encoding="ascii")
    with InstanceLock(str(path)):
        assert path.read_text(encoding="ascii") == f"{os.getpid()}\n"


def test_missing_folders_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "snowcheck" / "a.lock"
    with InstanceLock(str(path)):
        pass
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "snowcheck").stat().st_mode) == 0o700
    assert path.exists()


def test_unwritable_folder_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="ascii")
    expected = r"^cannot (create the lock folder|open lock file) "
    with pytest.raises(ConfigError, match=expected), InstanceLock(str(blocker / "a.lock")):
        pass


@pytest.mark.parametrize(
    ("instance", "name"),
    [
        ("https://dev12345.service-now.com", "dev12345.service-now.com.lock"),
        ("https://dev12345.service-now.com/", "dev12345.service-now.com.lock"),
        ("https://Dev12345.Service-Now.com:443", "dev12345.service-now.com.lock"),
        ("https://acme.example.com:8443", "acme.example.com_8443.lock"),
        ("http://127.0.0.1:8080", "127.0.0.1_8080.lock"),
        ("http://localhost", "localhost.lock"),
        ("http://[::1]:8080", "__1_8080.lock"),
        ("dev12345.service-now.com", "dev12345.service-now.com.lock"),
    ],
)
def test_lock_name_is_the_host_in_safe_characters(instance: str, name: str) -> None:
    assert lock_name(instance) == name


@pytest.mark.parametrize("instance", ["", "https://", "https://:8080"])
def test_lock_name_needs_a_host(instance: str) -> None:
    with pytest.raises(ConfigError, match="cannot derive a lock file name"):
        lock_name(instance)


def test_default_lock_path_uses_xdg_state_home() -> None:
    environ = {"XDG_STATE_HOME": "/var/lib", "HOME": "/home/ops"}
    assert default_lock_path("http://127.0.0.1:8080", environ) == (
        "/var/lib/snowcheck/127.0.0.1_8080.lock"
    )


@pytest.mark.parametrize("xdg", [None, "", "relative/state"])
def test_default_lock_path_falls_back_to_local_state(xdg: str | None) -> None:
    environ = {"HOME": "/home/ops"}
    if xdg is not None:
        environ["XDG_STATE_HOME"] = xdg
    assert default_lock_path("https://dev12345.service-now.com", environ) == (
        "/home/ops/.local/state/snowcheck/dev12345.service-now.com.lock"
    )
