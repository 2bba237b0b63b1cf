"""The password never leaks: not in argv, logs, error text, JSON, reprs or the emulator's log.

The live checks run the CLI in-process against the bundled emulator on 127.0.0.1; the
error cases craft answers with `responses`, some of which echo the password back.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
import responses

from snowcheck.cli import build_parser, main
from snowcheck.connection import resolve_connection
from snowcheck.emulator import Emulator, Scenario
from snowcheck.errors import InstanceError
from snowcheck.output.report import Terminal
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.retry import RetryPolicy
from snowcheck.servicenow.session import Connection, Login

DEMO = Path(__file__).resolve().parent.parent / "config" / "examples" / "demo-scenario.json"
USER = "mid.checker"
PASSWORD = "Pa$$ w0rd/+%&=x^y"
"""Spaces, URL-special and query-special characters: its encoded forms differ from it."""
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def forms(password: str = PASSWORD, user: str = USER) -> tuple[str, ...]:
    """Every way the password could show up in text."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (password, quote(password, safe=""), quote_plus(password, safe=""), token)


def assert_clean(text: str, password: str = PASSWORD, user: str = USER) -> None:
    for form in forms(password, user):
        assert form not in text, f"{form!r} leaked into: {text!r}"
    assert not re.search(r"Basic [A-Za-z0-9+/=]{8,}", text), text


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def run(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), terminal=Terminal(stdout=out, stderr=err, width=300))
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "SERVICENOW_INSTANCE",
        "SERVICENOW_USERNAME",
        "SERVICENOW_PASSWORD_FILE",
        "SN_HOST",
        "SN_USERNAME",
        "SN_PASSWORD",
        "SNOWCHECK_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SERVICENOW_PASSWORD", PASSWORD)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    document = json.loads(DEMO.read_text())
    document["users"] = {USER: {"password": PASSWORD}}
    with Emulator(Scenario.from_dict(document)) as emu:
        yield emu


# -- argv --------------------------------------------------------------------------------------


def _option_strings(parser: Any) -> Iterator[str]:
    for action in parser._actions:
        yield from action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield from _option_strings(subparser)


def test_no_command_line_option_takes_a_password() -> None:
    options = set(_option_strings(build_parser()))
    assert "--instance" in options
    assert not [option for option in options if "pass" in option.lower()]


@pytest.mark.parametrize("flag", ["--password", "--pass", "--passwd", "-p"])
def test_a_password_flag_is_rejected_as_usage_error(
    env: None, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--instance", "http://127.0.0.1:9", "--user", USER, flag, "hunter22"])
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


# -- live runs: logs, output, the emulator's log ---------------------------------------------


@pytest.mark.parametrize("output", ["table", "json", "nagios"])
def test_a_live_applied_check_at_full_debug_leaks_nothing(
    env: None,
    emulator: Emulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    output: str,
) -> None:
    log_file = tmp_path / "snowcheck.log"
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "requests", "snowcheck"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        result = run(
            "check",
            "--instance",
            emulator.url,
            "--user",
            USER,
            "--apply",
            "--debug",
            "2",
            "--format",
            output,
            "--log-file",
            str(log_file),
        )
    finally:
        for name in ("urllib3", "urllib3.connectionpool", "requests", "snowcheck"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert result.code in (0, 1, 2), result.err  # nagios: WARNING/CRITICAL are fine
    assert "Traceback" not in result.err
    # The run really talked HTTP and logged at DEBUG, urllib3 included.
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert any(
        r.name == "snowcheck.instance" and r.levelno == logging.DEBUG for r in caplog.records
    )
    assert len(emulator.log) >= 5
    assert_clean(result.out)
    assert_clean(result.err)
    assert_clean(caplog.text)
    for record in caplog.records:
        assert_clean(record.getMessage())
    assert not re.search(r"authorization['\"]?\s*[:=]", caplog.text, re.IGNORECASE)
    assert_clean(log_file.read_text())
    assert_clean(json.dumps([entry.to_dict() for entry in emulator.log]))
    assert all(entry.user == USER for entry in emulator.log)


def test_the_emulator_control_log_endpoint_holds_no_credentials(
    env: None, emulator: Emulator
) -> None:
    assert run("check", "--instance", emulator.url, "--user", USER).code == 0
    answer = requests.get(f"{emulator.url}/__emulator/log", timeout=5)
    assert answer.status_code == 200
    assert answer.json()
    assert_clean(answer.text)


def test_wrong_password_error_names_the_user_not_the_password(
    env: None, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = "Wr0ng pass^word%"
    monkeypatch.setenv("SERVICENOW_PASSWORD", wrong)
    log_file = tmp_path / "run.log"
    result = run("check", "--instance", emulator.url, "--user", USER, "--log-file", str(log_file))
    assert result.code == 1
    assert "authentication as mid.checker failed" in result.err
    for text in (result.out, result.err, log_file.read_text()):
        assert_clean(text, wrong)
        assert_clean(text)


def test_permission_error_from_the_emulator_leaks_nothing(env: None, tmp_path: Path) -> None:
    document = json.loads(DEMO.read_text())
    document["users"] = {USER: {"password": PASSWORD, "deny_read": ["sysevent"]}}
    with Emulator(Scenario.from_dict(document)) as emu:
        result = run("check", "--instance", emu.url, "--user", USER, "--format", "nagios")
    assert result.code == 3  # UNKNOWN
    assert "read access to sysevent denied" in result.out
    assert_clean(result.out + result.err)


def test_connection_refused_error_leaks_nothing(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RetryPolicy, "_wait", lambda self, state: 0.0)  # retry without waiting
    with Emulator() as emu:
        url = emu.url
    result = run("check", "--instance", url, "--user", USER, "--config", "/dev/null")
    assert result.code == 1
    assert "cannot connect to" in result.err
    assert "Traceback" not in result.err
    assert_clean(result.out + result.err)


# -- reprs -------------------------------------------------------------------------------------


def test_reprs_of_connection_and_instance_hide_the_password() -> None:
    connection = Connection(base_url="https://acme.service-now.com", user=USER, password=PASSWORD)
    with Instance(connection) as instance:
        for text in (repr(connection), str(connection), repr(instance), str(instance)):
            assert_clean(text)
        assert_clean(repr(vars(instance).get("connection")))


# -- error text with the password echoed back in odd places ---------------------------------

API = "https://acme.service-now.com/api/now/table/sys_user_role"


def _instance(password: str = PASSWORD) -> Instance:
    connection = Connection(base_url="https://acme.service-now.com", user=USER, password=password)
    return Instance(connection, attempts=2, sleep=lambda _: None)


def _body(detail: str) -> dict[str, Any]:
    return {"error": {"message": "Failure", "detail": detail}, "status": "failure"}


ECHOES = {
    "raw": f"bad password {PASSWORD} for {USER}",
    "token": f"Authorization: Basic {TOKEN}",
    "url-encoded": f"GET /login?user={USER}&password={quote_plus(PASSWORD)}",
    "percent-encoded": f"credential {quote(PASSWORD, safe='')} rejected",
    "at-start": f"{PASSWORD}",
    "json-escaped": json.dumps({"password": PASSWORD}),
}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500, 502, 503])
@pytest.mark.parametrize("where", ["raw", "token", "at-start", "json-escaped"])
def test_error_bodies_echoing_the_password_do_not_leak_it(
    status: int, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as mock, _instance() as instance:
        mock.add("GET", API, status=status, json=_body(ECHOES[where]))
        with pytest.raises(InstanceError) as caught:
            instance.fetch("sys_user_role", "name=mid_server", ["sys_id"])
    assert_clean(str(caught.value))
    assert_clean(caplog.text)


@pytest.mark.parametrize("where", ["url-encoded", "percent-encoded"])
def test_error_bodies_echoing_the_encoded_password_do_not_leak_it(where: str) -> None:
    with responses.RequestsMock() as mock, _instance() as instance:
        mock.add("GET", API, status=500, json=_body(ECHOES[where]))
        with pytest.raises(InstanceError) as caught:
            instance.fetch("sys_user_role", "name=mid_server", ["sys_id"])
    assert_clean(str(caught.value))


@pytest.mark.parametrize("password", ["tab\tin it", "two  spaces", "new\nline"])
def test_a_password_with_odd_whitespace_echoed_by_the_instance_does_not_leak(
    password: str,
) -> None:
    with responses.RequestsMock() as mock, _instance(password) as instance:
        mock.add("GET", API, status=500, json=_body(f"rejected {password} for {USER}"))
        with pytest.raises(InstanceError) as caught:
            instance.fetch("sys_user_role", "name=mid_server", ["sys_id"])
    collapsed = re.sub(r"\s+", " ", password)
    assert collapsed not in str(caught.value)


def test_the_log_file_redacts_the_encoded_password_of_an_echoed_error(
    env: None, tmp_path: Path
) -> None:
    log_file = tmp_path / "run.log"
    echoed = _body(f"GET /login?password={quote_plus(PASSWORD)}")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        # Every read of the first round meets the error.
        mock.add(
            "GET", re.compile(rf"{re.escape(API.rsplit('/', 1)[0])}/.*"), status=500, json=echoed
        )
        result = run(
            "check",
            "--instance",
            "acme.service-now.com",
            "--user",
            USER,
            "--log-file",
            str(log_file),
        )
    assert result.code == 1
    assert "HTTP 500" in log_file.read_text()
    assert_clean(log_file.read_text())


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectionError(f"Max retries exceeded (password={PASSWORD})"),
        requests.exceptions.ReadTimeout(f"read timed out for {TOKEN}"),
        requests.exceptions.ChunkedEncodingError(f"broken: {PASSWORD}"),
        requests.exceptions.SSLError(f"cert verify failed {PASSWORD}"),
    ],
    ids=["connection", "timeout", "chunked", "ssl"],
)
def test_transport_errors_carrying_the_password_do_not_leak_it(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked = responses.RequestsMock(assert_all_requests_are_fired=False)
    with mocked as mock, _instance() as instance:
        mock.add("GET", API, body=exc)
        mock.add("GET", API, body=exc)
        with pytest.raises(InstanceError) as caught:
            instance.fetch("sys_user_role", "name=mid_server", ["sys_id"])
    assert_clean(str(caught.value))
    assert_clean(caplog.text)


def test_a_failed_write_leaks_nothing_in_the_partial_write_error(
    env: None, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.faults.add("status", status=500, method="POST", times=10)
    emulator.faults.add("status", status=500, method="PATCH", times=10)
    log_file = tmp_path / "run.log"
    result = run(
        "check", "--instance", emulator.url, "--user", USER, "--apply", "--log-file", str(log_file)
    )
    assert result.code == 1
    assert "Traceback" not in result.err
    assert_clean(result.out + result.err + log_file.read_text())


# -- password files and plain http -------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o677])
def test_a_password_file_readable_by_group_or_others_gets_a_warning(
    env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: int
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(mode)
    monkeypatch.delenv("SERVICENOW_PASSWORD")
    resolved = resolve_connection(
        instance="http://127.0.0.1:9",
        user=USER,
        ca_bundle=None,
        config={},
        environ={"SERVICENOW_PASSWORD_FILE": str(secret)},
        prompt=None,
    )
    assert resolved.connection.password == PASSWORD
    (warning,) = resolved.warnings
    assert "readable by group or others" in warning
    assert f"chmod 600 {secret}" in warning
    assert_clean(warning)


def test_a_loose_password_file_named_in_the_config_file_gets_a_warning_too(
    env: None, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    secret.chmod(0o604)
    config = tmp_path / "snowcheck.toml"
    config.write_text(f'instance = "{emulator.url}"\nuser = "{USER}"\npassword_file = "pw"\n')
    monkeypatch.delenv("SERVICENOW_PASSWORD")
    result = run("check", "--config", str(config))
    assert result.code == 0, result.err
    flat = " ".join(result.err.split())
    assert "readable by group or others" in flat
    assert "chmod 600" in flat
    assert_clean(result.out + result.err)


def test_the_cli_prints_the_password_file_warning_and_a_private_file_gets_none(
    env: None, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    monkeypatch.delenv("SERVICENOW_PASSWORD")
    monkeypatch.setenv("SERVICENOW_PASSWORD_FILE", str(secret))
    secret.chmod(0o644)
    loose = run("check", "--instance", emulator.url, "--user", USER)
    assert loose.code == 0, loose.err
    assert "readable by group or others" in loose.err
    secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
    private = run("check", "--instance", emulator.url, "--user", USER)
    assert private.code == 0, private.err
    assert "readable by group or others" not in private.err
    assert_clean(loose.out + loose.err + private.out + private.err)


@pytest.mark.parametrize(
    "instance",
    [
        "http://acme.service-now.com",
        "http://example.com:8080/",
        "http://10.0.0.5",
        "http://192.168.1.1:80",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.example",
        "HTTP://ACME.SERVICE-NOW.COM",
        "http://[2001:db8::1]:8080",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_before_any_request(
    env: None, instance: str, tmp_path: Path
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")  # never used; any other call would fail loudly
        result = run("check", "--instance", instance, "--user", USER, "--apply")
        assert len(mock.calls) == 0
    assert result.code == 2
    assert "https is required" in result.err
    assert_clean(result.out + result.err)


def test_plain_http_to_loopback_is_allowed(env: None, emulator: Emulator) -> None:
    result = run(
        "check", "--instance", emulator.url.replace("127.0.0.1", "localhost"), "--user", USER
    )
    assert result.code == 0, result.err


def test_credentials_in_the_instance_url_are_refused_without_echoing_them(env: None) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        result = run(
            "check", "--instance", f"https://{USER}:{quote(PASSWORD, safe='')}@acme.service-now.com"
        )
        assert len(mock.calls) == 0
    assert result.code == 2
    assert "must not hold credentials" in result.err
    assert_clean(result.out + result.err)


def test_a_running_check_has_no_password_in_its_argv(env: None, emulator: Emulator) -> None:
    """What `ps` shows of a running check: the command line only, never the password."""
    emulator.latency = 0.2
    command = [
        sys.executable,
        "-m",
        "snowcheck",
        "check",
        "--instance",
        emulator.url,
        "--user",
        USER,
        "--quiet",
    ]
    child = subprocess.Popen(
        command, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen: list[bytes] = []
    try:
        while child.poll() is None:
            with contextlib.suppress(OSError):
                seen.append(Path(f"/proc/{child.pid}/cmdline").read_bytes())
            time.sleep(0.05)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert any(b"snowcheck" in line for line in seen)
    for line in seen:
        assert_clean(line.decode("utf-8", "replace").replace("\0", " "))
    assert_clean(out.decode() + err.decode())


# -- OAuth and API keys: client secrets, tokens and keys never leak -----------------------------

CLIENT_ID = "leak-test-client"
CLIENT_SECRET = "Cl1ent s3cret/+%&=value"
API_KEY = "Api k3y/+%&=value-0042"
TOKEN_URL = "https://example.service-now.com/oauth_token.do"
ROLES_URL = "https://example.service-now.com/api/now/table/sys_user_role"


def _assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (PASSWORD, CLIENT_SECRET, API_KEY, *secrets):
        for form in (secret, quote(secret, safe=""), quote_plus(secret, safe="")):
            assert form not in text, f"{form!r} leaked into: {text!r}"
    assert not re.search(r"Bearer [A-Za-z0-9_\-]{8,}", text), text


@pytest.fixture
def oauth_emulator() -> Iterator[Emulator]:
    document = json.loads(DEMO.read_text())
    document["users"] = {USER: {"password": PASSWORD}, "app.user": {"password": "app-pw-0001"}}
    grants = ["password", "refresh_token", "client_credentials"]
    client = {"secret": CLIENT_SECRET, "grants": grants, "application_user": "app.user"}
    document["auth"] = {"api_keys": {API_KEY: USER}, "oauth": {"clients": {CLIENT_ID: client}}}
    with Emulator(Scenario.from_dict(document)) as emu:
        yield emu


@pytest.mark.parametrize("method", ["oauth-password", "oauth-client-credentials", "api-key"])
def test_a_live_applied_check_with_each_method_leaks_no_secret_nor_token(
    env: None,
    oauth_emulator: Emulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
) -> None:
    monkeypatch.setenv("SERVICENOW_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SERVICENOW_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SERVICENOW_API_KEY", API_KEY)
    log_file = tmp_path / "snowcheck.log"
    caplog.set_level(logging.DEBUG)
    outputs = []
    for output in ("table", "json", "nagios"):
        argv = ["check", "--instance", oauth_emulator.url, "--user", USER, "--auth", method]
        argv += ["--apply", "--debug", "2", "--format", output, "--log-file", str(log_file)]
        result = run(*argv)
        assert result.code in (0, 1, 2), result.err
        assert "Traceback" not in result.err
        outputs += [result.out, result.err]
    # Doctor too, and a failing run: the instance expires the token and refuses the grant.
    outputs.append(
        run("doctor", "--instance", oauth_emulator.url, "--user", USER, "--auth", method).out
    )
    cache = tmp_path / "state" / "snowcheck" / "oauth-tokens.json"
    tokens: list[str] = []
    if method.startswith("oauth"):
        for entry in json.loads(cache.read_text())["tokens"].values():
            tokens += [entry["access_token"], entry["refresh_token"] or entry["access_token"]]
        assert tokens
        oauth_emulator.oauth.expire_access_tokens()
        oauth_emulator.oauth.revoke_refresh_tokens()
        oauth_emulator.oauth.disabled_grants = frozenset({"password", "client_credentials"})
        argv = ["check", "--instance", oauth_emulator.url, "--user", USER, "--auth", method]
        failed = run(*argv, "--format", "json", "--log-file", str(log_file))
        assert failed.code == 1 and "access_denied" in failed.out + failed.err
        outputs += [failed.out, failed.err]
    for text in (*outputs, caplog.text, log_file.read_text()):
        _assert_no_secret(text, *tokens)
    _assert_no_secret(json.dumps([entry.to_dict() for entry in oauth_emulator.log]), *tokens)
    control = requests.get(f"{oauth_emulator.url}/__emulator/log", timeout=5).text
    _assert_no_secret(control, *tokens)


def _login_instance(method: str) -> Instance:
    login = Login(
        method=method,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_key=API_KEY,
        token_cache=False,
    )
    connection = Connection(
        base_url="https://example.service-now.com", user=USER, password=PASSWORD, login=login
    )
    return Instance(connection, attempts=2, sleep=lambda _: None)


@pytest.mark.parametrize("method", ["oauth-password", "oauth-client-credentials", "api-key"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_error_bodies_echoing_a_token_or_key_do_not_leak_it(method: str, status: int) -> None:
    token = "AccessT0ken_value-0123456789"
    refresh = "RefreshT0ken_value-0123456789"
    answer = {"access_token": token, "refresh_token": refresh, "expires_in": 1799}
    oauth = method.startswith("oauth")
    # Tokens are secrets only once the instance issued them (an API key login has none).
    echoed = f"{token} {refresh} {CLIENT_SECRET} {API_KEY} Bearer {token}" if oauth else API_KEY
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(TOKEN_URL, json=answer)
        mock.get(ROLES_URL, status=status, json={"error": {"message": echoed, "detail": echoed}})
        with _login_instance(method) as instance, pytest.raises(InstanceError) as raised:
            instance.fetch("sys_user_role", "", ("sys_id",))
    _assert_no_secret(str(raised.value), *((token, refresh) if oauth else ()))


@pytest.mark.parametrize("method", ["oauth-password", "oauth-client-credentials"])
def test_a_refused_grant_names_the_client_but_no_secret(method: str) -> None:
    denied = {"error_description": "access_denied", "error": "server_error"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(TOKEN_URL, status=401, json=denied)
        with _login_instance(method) as instance, pytest.raises(InstanceError) as raised:
            instance.fetch("sys_user_role", "", ("sys_id",))
        token_posts = [call for call in mock.calls if call.request.url == TOKEN_URL]
    message = str(raised.value)
    assert raised.value.status == 401 and "\n" not in message
    assert CLIENT_ID in message and "likely causes" in message
    assert len(token_posts) == 1  # a refused grant is never retried
    _assert_no_secret(message)


def test_reprs_of_a_login_hide_its_secrets() -> None:
    with _login_instance("oauth-password") as instance:
        texts = [repr(instance.connection), repr(instance.session.auth), repr(instance)]
    with _login_instance("api-key") as instance:
        texts += [repr(instance.connection), repr(instance.session.auth)]
    for text in texts:
        _assert_no_secret(text)
