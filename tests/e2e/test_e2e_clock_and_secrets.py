"""The instance's clock is 'now' (not the local one), and secrets never reach any output."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from .support import PASSWORD, USER, InProcess, demo_data, open_ours, start

pytestmark = pytest.mark.e2e


def test_now_is_the_instance_clock(cli: InProcess) -> None:
    """An instance whose clock is years from ours: the window, the events and
    last_detected all follow the instance's Date header."""
    data = demo_data()
    data["now"] = "2024-02-29 23:59:30"  # relative times in the scenario count from here
    emu = start(data)
    try:
        result = cli(emu, "--apply", "--format", "json")
        assert result.code == 0, result.err
        document = result.json
        assert document["now"] == "2024-02-29 23:59:30"
        assert document["since"] == "2024-02-29 19:58:30"  # now - 4 h - 60 s
        assert len(document["findings"]) == 10  # the same events fall inside the window
        assert {row["last_detected"] for row in open_ours(emu)} == {"2024-02-29 23:59:30"}
    finally:
        emu.stop()


@pytest.mark.parametrize("password", [PASSWORD, "Wrong-Pa55word-e2e"], ids=["ok", "refused"])
def test_no_secret_in_output_or_log_file(cli: InProcess, tmp_path: Path, password: str) -> None:
    emu = start()
    try:
        log = tmp_path / "snowcheck.log"
        result = cli(
            emu,
            "--apply",
            "--debug",
            "2",
            "--log-file",
            str(log),
            "--prometheus-textfile",
            str(tmp_path / "metrics.prom"),
            password=password,
        )
        assert result.code == (0 if password == PASSWORD else 1), result.err
        texts = {
            "stdout": result.out,
            "stderr": result.err,
            "log file": log.read_text(encoding="utf-8"),
            "metrics": (tmp_path / "metrics.prom").read_text(encoding="utf-8"),
        }
        assert texts["log file"]
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        for where, text in texts.items():
            assert password not in text, where
            assert token not in text, where
    finally:
        emu.stop()
