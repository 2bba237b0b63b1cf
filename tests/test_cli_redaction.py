"""Redaction through the CLI: short passwords never garble nor echo; one redactor everywhere."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from cli_support import runner

from snowcheck.emulator import Emulator, Scenario
from snowcheck.redact import REDACTED

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"
USER = "mid.checker"
API = re.compile(r"https://acme\.service-now\.com/api/now/table/\w+")


run = runner(width=400)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SERVICENOW_INSTANCE", "SERVICENOW_USERNAME", "SERVICENOW_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SN_HOST", "SN_USERNAME", "SN_PASSWORD", "SNOWCHECK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def emulator_for(password: str, **access: Any) -> Emulator:
    document = json.loads(DEMO.read_text())
    document["users"] = {USER: {"password": password, **access}}
    return Emulator(Scenario.from_dict(document))


@pytest.fixture
def short_password(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "admin")
    with emulator_for("admin", deny_read=["sysevent"]) as emulator:
        yield emulator


def test_a_short_password_does_not_garble_the_terminal_or_the_log(
    short_password: Emulator, tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    argv = ("check", "--instance", short_password.url, "--user", USER, "--log-file", str(log))
    code, _, err = run(*argv)
    assert code == 1
    said = "a role that can read sysevent, such as admin, or a custom role granting it"
    assert said in err
    assert said in log.read_text()
    assert "***" not in err + log.read_text()
    assert REDACTED not in err + log.read_text()


def test_a_one_letter_password_leaves_the_log_file_readable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "e")
    log = tmp_path / "run.log"
    with emulator_for("e") as emulator:
        argv = ("check", "--instance", emulator.url, "--user", USER, "--log-file", str(log))
        code, out, err = run(*argv)
    assert code == 0, err
    text = log.read_text()
    assert "check of http://127.0.0.1" in text and " started (window " in text
    assert REDACTED not in text + out + err


def _echoing(status: int, detail: str) -> dict[str, Any]:
    return {"error": {"message": "Failure", "detail": detail}, "status": "failure"}


@pytest.mark.parametrize(
    ("password", "detail"),
    [
        pytest.param("admin", "bad password admin for mid.checker", id="short-raw"),
        pytest.param("a b!c", "wrong a%20b%21c", id="short-url-encoded"),
        pytest.param("hunter22", "wrong passwordhunter22", id="long-run-into-a-word"),
    ],
)
def test_an_error_that_could_echo_an_unmaskable_password_is_reduced_to_its_status_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, password: str, detail: str
) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", password)
    log = tmp_path / "run.log"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("GET", API, status=400, json=_echoing(400, detail))
        argv = ("check", "--instance", "acme.service-now.com", "--user", USER)
        code, out, err = run(*argv, "--log-file", str(log), "--format", "nagios")
    assert code == 3  # UNKNOWN
    for text in (out, err, log.read_text()):
        assert "Failure" not in text and detail.split()[0] not in text
    said = re.compile(r"the instance rejected the request reading \w+ \(HTTP 400\): this is")
    assert said.search(out)
    assert said.search(log.read_text())


def test_a_maskable_echo_keeps_the_instance_words_the_same_on_terminal_and_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVICENOW_PASSWORD", "hunter22")
    log = tmp_path / "run.log"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("GET", API, status=400, json=_echoing(400, "bad password hunter22"))
        code, _, err = run(
            "check", "--instance", "acme.service-now.com", "--user", USER, "--log-file", str(log)
        )
    assert code == 1
    said = f"(HTTP 400: Failure: bad password {REDACTED})"
    assert said in err
    (line,) = [line for line in log.read_text().splitlines() if "ERROR" in line]
    last = err.strip().splitlines()[-1]
    assert line.split(" ERROR ", 1)[1] == last.removeprefix("snowcheck: error: ")


@pytest.mark.parametrize("output", ["table", "json", "nagios"])
def test_a_password_that_is_also_data_is_masked_in_every_output(
    monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    """The checking account's password is a MID user's name: every output hides it alike."""
    monkeypatch.setenv("SERVICENOW_PASSWORD", "mid.east")
    with emulator_for("mid.east") as emulator:
        code, out, err = run(
            "check", "--instance", emulator.url, "--user", USER, "--format", output, "--debug", "2"
        )
    assert code in (0, 2), err  # nagios: CRITICAL
    assert "mid.east" not in out + err
    assert f"User {REDACTED} associated with 3 down MID Servers" in out
    if output == "json":
        document = json.loads(out)
        assert any(finding["user"] == REDACTED for finding in document["findings"])
