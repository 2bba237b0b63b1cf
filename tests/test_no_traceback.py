"""No traceback for any input: each case known to have printed one, run as a real process.

Each case ends with one ``snowcheck: error:`` line (or, for argparse usage errors, the
usage and one ``error:`` line; for a reader gone away, nothing) and a meaningful exit
status. The last-resort handler turns anything unforeseen into one line too.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import snowcheck.commands.check as check_command
import snowcheck.commands.demo as demo_module
from snowcheck.cli import main
from snowcheck.output.report import Terminal

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"
WRITE_FAILED = "snowcheck: error: cannot write to standard output: No space left on device"
BEFORE_YEAR_ONE = "would start before the year 1"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SERVICENOW_", "SN_"))}
    base.pop("SNOWCHECK_TRACEBACK", None)
    return {**base, **extra}


def snowcheck(
    *argv: str, stdout: Any = subprocess.PIPE, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "snowcheck", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=environ or env(),
        timeout=60,
        check=False,
    )


def snapshot(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> str:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def error_lines(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    text = done.stderr.decode()
    assert "Traceback" not in text and "Exception ignored" not in text, text
    return text.splitlines()


# Dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["table", "json"])
def test_snapshot_now_of_year_one_is_one_line(tmp_path: Path, output: str) -> None:
    path = snapshot(tmp_path, lambda d: d.update(now="0001-01-01 00:00:00"))
    done = snowcheck("check", "--snapshot", path, "--format", output)
    assert done.returncode == 1
    [line] = error_lines(done)
    assert line.startswith("snowcheck: error: the reporting window (4:00:00")
    assert "(0001-01-01 00:00:00)" in line and BEFORE_YEAR_ONE in line
    assert done.stdout == b""


def test_snapshot_now_of_year_one_in_nagios_format_is_unknown(tmp_path: Path) -> None:
    path = snapshot(tmp_path, lambda d: d.update(now="0001-01-01 00:00:00"))
    done = snowcheck("check", "--snapshot", path, "--format", "nagios")
    assert done.returncode == 3  # UNKNOWN
    assert done.stdout.decode().startswith("SNOWCHECK UNKNOWN - the reporting window")
    assert error_lines(done) == []


def test_window_too_large_for_a_date_is_one_line(tmp_path: Path) -> None:
    path = snapshot(tmp_path, lambda d: d.update(now="0001-01-10 00:00:00"))
    assert snowcheck("check", "--snapshot", path, "--window", "5m").returncode == 0
    done = snowcheck("check", "--snapshot", path, "--window", "744h")
    assert done.returncode == 1
    [line] = error_lines(done)
    assert line.startswith("snowcheck: error: the reporting window (31 days")
    assert BEFORE_YEAR_ONE in line


# The emulator's options ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--port", "99999", "argument --port: 99999 is not a port: give 1 to 65535"),
        ("--port", "-1", "argument --port: -1 is not a port"),
        ("--latency", "-1", "argument --latency: -1 is not a latency: give seconds from 0 to 600"),
        ("--latency", "inf", "argument --latency: inf is not a latency"),
        ("--latency", "nan", "argument --latency: nan is not a latency"),
    ],
)
def test_emulator_refuses_bad_options_before_serving(option: str, value: str, says: str) -> None:
    done = snowcheck("emulator", option, value)
    assert done.returncode == 2
    lines = error_lines(done)
    assert lines[0].startswith("usage: snowcheck emulator")
    assert lines[-1].startswith(f"snowcheck emulator: error: {says}")
    assert b"listening" not in done.stderr


# Standard output -------------------------------------------------------------------------

FULL = Path("/dev/full")


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--snapshot", str(EXAMPLE)],
        ["check", "--snapshot", str(EXAMPLE), "--format", "json"],
        ["check", "--snapshot", str(EXAMPLE), "--format", "nagios"],
        ["--version"],
        ["demo"],
    ],
    ids=["table", "json", "nagios", "version", "demo"],
)
def test_stdout_on_a_full_disk_is_one_line(argv: list[str]) -> None:
    with FULL.open("wb") as full:
        done = snowcheck(*argv, stdout=full)
    assert done.returncode == 1
    assert error_lines(done) == [WRITE_FAILED]


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--snapshot", str(EXAMPLE)],
        ["check", "--snapshot", str(EXAMPLE), "--format", "json"],
        ["check", "--snapshot", str(EXAMPLE), "--format", "nagios"],
        ["--version"],
        ["demo"],
    ],
    ids=["table", "json", "nagios", "version", "demo"],
)
def test_stdout_closed_early_ends_quietly(argv: list[str]) -> None:
    """As ``| head -1`` when the reader has gone before snowcheck writes: no error, exit 1.

    The read end is closed before the process starts, so the first write fails for certain
    (a real ``head`` may leave the pipe open until everything fits in its buffer).
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = snowcheck(*argv, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert error_lines(done) == []


def test_stdout_closed_after_the_first_line_through_a_shell_pipe() -> None:
    """The literal case: ``snowcheck demo | head -1``; demo writes long after head exits."""
    command = f'{sys.executable} -m snowcheck demo | head -1; echo "status ${{PIPESTATUS[0]}}"'
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, env=env(), timeout=60, check=False
    )
    lines = done.stdout.decode().splitlines()
    assert "snowcheck demo" in lines[0]
    assert lines[-1] in ("status 0", "status 1")  # 0 only if all fitted in the pipe buffer
    assert error_lines(done) == []


NAMES = {"mid.east": "mid.\u00e9ast\u6771", "mid.west": "mid.w\U0001f600st"}


@pytest.mark.parametrize("output", ["table", "json", "nagios"])
def test_non_ascii_user_names_on_an_ascii_only_stdout(tmp_path: Path, output: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for plain, fancy in NAMES.items():
        text = text.replace(f'"{plain}"', json.dumps(fancy)).replace(plain, fancy)
    path = tmp_path / "snapshot.json"
    path.write_text(text, encoding="utf-8")
    ascii_only = env(PYTHONIOENCODING="ascii", LC_ALL="C")
    done = snowcheck("check", "--snapshot", str(path), "--format", output, environ=ascii_only)
    assert done.returncode == (2 if output == "nagios" else 0)  # nagios: CRITICAL
    assert error_lines(done) == []
    out = done.stdout.decode("ascii")  # nothing but ASCII reached stdout
    if output == "json":
        users = {finding["user"] for finding in json.loads(out)["findings"]}
        assert set(NAMES.values()) <= users
    else:
        assert "mid.\\xe9ast\\u6771" in out and "mid.w\\U0001f600st" in out


def test_non_ascii_user_names_in_the_debug_view_on_ascii_only_stdio(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("mid.east", NAMES["mid.east"])
    path = tmp_path / "snapshot.json"
    path.write_text(text, encoding="utf-8")
    ascii_only = env(PYTHONIOENCODING="ascii", LC_ALL="C")
    done = snowcheck("check", "--snapshot", str(path), "--debug", "2", environ=ascii_only)
    assert done.returncode == 0
    assert error_lines(done) == []
    assert "mid.\\xe9ast\\u6771" in done.stdout.decode("ascii")


# The password prompt ---------------------------------------------------------------------


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def at_the_prompt(key: bytes) -> tuple[int, str]:
    """Run ``snowcheck check`` on a terminal, press ``key`` at the password prompt."""
    argv = [sys.executable, "-m", "snowcheck", "check"]
    argv += ["--instance", "http://127.0.0.1:9", "--user", "mid.checker"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execve(sys.executable, argv, env())
    seen = b""
    deadline = time.monotonic() + 30
    pressed = False
    while time.monotonic() < deadline:
        if not pressed and b"Password for" in seen:
            os.write(fd, key)
            pressed = True
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal: it has exited
            break
        if not chunk:
            break
        seen += chunk
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    text = ANSI.sub("", seen.decode(errors="replace")).replace("\r", "")
    return os.waitstatus_to_exitcode(status), text


def test_end_of_input_at_the_password_prompt_is_one_line() -> None:
    code, seen = at_the_prompt(b"\x04")  # Ctrl-D
    assert code == 2
    assert "Traceback" not in seen
    lines = [line for line in seen.splitlines() if line.strip()]
    assert lines[0] == "Password for mid.checker at http://127.0.0.1:9: "
    assert lines[1:] == ["snowcheck: error: no password given at the prompt (end of input)"]


def test_ctrl_c_at_the_password_prompt_starts_a_new_line_and_says_nothing_of_writes() -> None:
    code, seen = at_the_prompt(b"\x03")  # Ctrl-C
    assert code == 130
    assert "Traceback" not in seen and "written" not in seen
    lines = [line for line in seen.splitlines() if line.strip()]
    assert lines[1:] == ["snowcheck: error: interrupted at the password prompt"]


# The last resort -------------------------------------------------------------------------


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, terminal=Terminal(stdout=out, stderr=err, width=100))
    return code, out.getvalue(), err.getvalue()


def explode(*args: object, **kwargs: object) -> Any:
    raise ZeroDivisionError("something nobody foresaw\nsecond line")


@pytest.fixture
def broken_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unforeseen failure inside the check (the handler's input; no real one is known)."""
    monkeypatch.setattr(check_command, "assess", explode)
    monkeypatch.delenv("SNOWCHECK_TRACEBACK", raising=False)


@pytest.mark.usefixtures("broken_check")
def test_an_unexpected_exception_is_one_line_asking_for_a_report() -> None:
    code, out, err = run(["check", "--snapshot", str(EXAMPLE)])
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "snowcheck: error: unexpected ZeroDivisionError (something nobody foresaw): this is "
        "a bug in snowcheck; please report it with the traceback that --debug 2 shows"
    ]


@pytest.mark.usefixtures("broken_check")
def test_debug_2_shows_the_traceback_of_an_unexpected_exception() -> None:
    code, _, err = run(["check", "--snapshot", str(EXAMPLE), "--debug", "2"])
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert "in explode" in err
    assert err.splitlines()[-1].endswith("please report it with the traceback above")


@pytest.mark.usefixtures("broken_check")
def test_snowcheck_traceback_variable_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWCHECK_TRACEBACK", "1")
    code, _, err = run(["check", "--snapshot", str(EXAMPLE)])
    assert code == 1
    assert "Traceback (most recent call last):" in err and "ZeroDivisionError" in err


def test_a_command_without_debug_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_module, "_demo", explode)
    monkeypatch.delenv("SNOWCHECK_TRACEBACK", raising=False)
    code, _, err = run(["demo"])
    assert code == 1
    [line] = err.splitlines()
    assert line.endswith("the traceback that SNOWCHECK_TRACEBACK=1 shows")
