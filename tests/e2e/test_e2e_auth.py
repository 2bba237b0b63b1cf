"""Logging in the way hardened instances require, end to end over HTTPS through the CLI.

The emulator serves HTTPS with a trustme CA (tests/fixtures/tls.py) and speaks OAuth, API keys
and mutual TLS; snowcheck runs in-process with secrets in the environment or in files, never
on the command line.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from fixtures.tls import CLIENT_COMMON_NAME, TlsFiles

from snowcheck.cli import main
from snowcheck.emulator import Emulator, Scenario, TlsConfig
from snowcheck.output.report import Terminal
from snowcheck.writeback import WriteBack

from .support import (
    PASSWORD,
    USER,
    InProcess,
    Result,
    by_message,
    demo_data,
    error_text,
    open_ours,
    reference,
    summary,
)

CLIENT_ID = "snowcheck-e2e-client"
CLIENT_SECRET = "e2e-Cl1ent-S3cret-value"
API_KEY = "e2e-Api-K3y-value-0042"
APP_USER = "app.user"
SECRETS = (PASSWORD, CLIENT_SECRET, API_KEY)
TOKEN_PATH = "/oauth_token.do"

_SCRUBBED = ("SERVICENOW_", "SN_", "SNOWCHECK_", "REQUESTS_CA_BUNDLE", "CURL_CA")

# The environment each method needs; the password is there for basic and oauth-password.
ENVIRONMENTS: dict[str, dict[str, str]] = {
    "basic": {"SERVICENOW_PASSWORD": PASSWORD},
    "oauth-password": {
        "SERVICENOW_PASSWORD": PASSWORD,
        "SERVICENOW_CLIENT_ID": CLIENT_ID,
        "SERVICENOW_CLIENT_SECRET": CLIENT_SECRET,
    },
    "oauth-client-credentials": {
        "SERVICENOW_CLIENT_ID": CLIENT_ID,
        "SERVICENOW_CLIENT_SECRET": CLIENT_SECRET,
    },
    "api-key": {"SERVICENOW_API_KEY": API_KEY},
    "mtls": {},
}
ACTS_AS = {
    "basic": USER,
    "oauth-password": USER,
    "oauth-client-credentials": APP_USER,
    "api-key": USER,
    "mtls": APP_USER,
}


def scenario(**auth: Any) -> dict[str, Any]:
    """The demo scenario with a user, an application user mapped to the client certificate,
    an API key and an OAuth client allowed every grant."""
    document = demo_data()
    document["users"] = {
        USER: {"password": PASSWORD},
        APP_USER: {"password": "app-Unused-Passw0rd", "certificate": CLIENT_COMMON_NAME},
    }
    grants = ["password", "refresh_token", "client_credentials"]
    client = {"secret": CLIENT_SECRET, "grants": grants, "application_user": APP_USER}
    document["auth"] = {
        "api_keys": {API_KEY: USER},
        "oauth": {"clients": {CLIENT_ID: client}},
        **auth,
    }
    return document


@pytest.fixture
def make_https(tls_files: TlsFiles) -> Iterator[Callable[..., Emulator]]:
    """Start HTTPS emulators (client certificates optional unless asked), clocks frozen."""
    started: list[Emulator] = []

    def make(client_cert: str = "optional", **auth: Any) -> Emulator:
        tls = TlsConfig(tls_files.server_cert, tls_files.server_key, tls_files.ca_file, client_cert)
        emulator = Emulator(Scenario.from_dict(scenario(**auth)), tls=tls).start()
        emulator.clock.freeze(emulator.clock.now())
        started.append(emulator)
        return emulator

    yield make
    # A failed pull does not wait for its other reads (they give up at their next page or
    # retry): let them end against a live emulator, not a stopped one in a later test.
    for thread in threading.enumerate():
        if thread.name.startswith("snowcheck-read"):
            thread.join(timeout=30)
    for emulator in started:
        emulator.stop()


@pytest.fixture
def https(make_https: Callable[..., Emulator]) -> Emulator:
    return make_https()


class Runner:
    """``snowcheck.cli.main`` in this process, with exactly the environment given."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tls: TlsFiles) -> None:
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.tls = tls
        self.state = tmp_path / "state"

    def __call__(
        self,
        emulator: Emulator,
        command: str,
        method: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        ca_bundle: Path | None = None,
        auth_flag: bool = True,
        certificate: bool | None = None,
    ) -> Result:
        """``snowcheck COMMAND --instance URL [--auth METHOD] --ca-bundle CA [--user USER]
        [--client-cert FILE --client-key FILE] ARGS``, with METHOD's secrets in ``env``."""
        argv = [command, "--instance", emulator.url]
        argv += ["--auth", method] if auth_flag else []
        argv += ["--ca-bundle", str(ca_bundle or self.tls.ca_file)]
        if ACTS_AS[method] == USER:
            argv += ["--user", USER]
        if method == "mtls" if certificate is None else certificate:
            argv += ["--client-cert", str(self.tls.client_cert)]
            argv += ["--client-key", str(self.tls.client_key)]
        argv += list(args)
        for secret in SECRETS:
            assert secret not in " ".join(argv)
        for name in list(os.environ):
            if name.startswith(_SCRUBBED) or name.lower().endswith("_proxy"):
                self.monkeypatch.delenv(name, raising=False)
        for name, value in (ENVIRONMENTS[method] if env is None else env).items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.setenv("XDG_STATE_HOME", str(self.state))
        self.monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, terminal=Terminal(stdout=out, stderr=err, width=200))
        return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tls_files: TlsFiles) -> Runner:
    return Runner(monkeypatch, tmp_path, tls_files)


def api_requests(emulator: Emulator) -> list[tuple[str, str, int | None, str | None]]:
    return [(e.method, e.path, e.status, e.user) for e in emulator.log]


def token_requests(emulator: Emulator) -> int:
    return sum(e.path == TOKEN_PATH for e in emulator.log)


METHODS = list(ENVIRONMENTS)


# -- each method -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_each_method_checks_and_applies_over_https(
    run: Runner, make_https: Callable[..., Emulator], cli: InProcess, method: str
) -> None:
    emulator = make_https()
    result = run(emulator, "check", method, "--apply", "--format", "json")
    assert result.code == 0, result.err
    assert summary(emulator) == reference(cli)
    by_message(open_ours(emulator))  # no duplicate open issue
    table_requests = [entry for entry in emulator.log if entry.path.startswith("/api/")]
    assert table_requests and {entry.user for entry in table_requests} == {ACTS_AS[method]}
    assert {entry.status for entry in table_requests} <= {200, 201}
    oauth = method.startswith("oauth")
    assert (token_requests(emulator) == 1) is oauth


@pytest.mark.parametrize("method", METHODS)
def test_doctor_names_the_method_and_the_token_expiry(
    run: Runner, https: Emulator, method: str
) -> None:
    result = run(https, "doctor", method)
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert f"(auth {method})" in lines[0]
    credentials = next(line for line in lines if line.startswith("OK    credentials:"))
    assert f"accepted (auth {method})" in credentials
    token = [line for line in lines if "OAuth token: expires " in line]
    assert len(token) == (1 if method.startswith("oauth") else 0)
    if token:
        assert "(in 30 min)" in token[0]


def test_doctor_lists_the_schemes_a_401_advertises(
    run: Runner, make_https: Callable[..., Emulator]
) -> None:
    emulator = make_https(tables={"sys_user_role": ["oauth", "mtls"]})
    result = run(emulator, "doctor", "basic")
    assert result.code == 1
    lines = result.out.splitlines()
    assert any(
        line.startswith("FAIL  credentials:") and "(auth basic, HTTP 401)" in line for line in lines
    )
    assert [line for line in lines if "the instance accepts" in line] == [
        "WARN  the instance accepts: BEARER: auth = oauth-password or oauth-client-credentials",
        "WARN  the instance accepts: CERTIFICATE: auth = mtls",
    ]
    # With a method the policy accepts, the same instance passes.
    assert run(emulator, "doctor", "oauth-client-credentials").code == 0


def test_secrets_come_from_files_and_ansible_names(
    run: Runner, https: Emulator, tmp_path: Path
) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    secret_file.chmod(0o600)
    env = {"SN_GRANT_TYPE": "client_credentials", "SN_CLIENT_ID": CLIENT_ID}
    env["SERVICENOW_CLIENT_SECRET_FILE"] = str(secret_file)
    result = run(https, "check", "oauth-client-credentials", env=env, auth_flag=False)
    assert result.code == 0, result.err
    assert {e.user for e in https.log if e.path.startswith("/api/")} == {APP_USER}
    assert https.oauth.issued["client_credentials"] == 1


def test_a_profile_holds_the_method_and_its_secret_files(
    run: Runner, https: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "api.key").write_text(API_KEY + "\n")
    (tmp_path / "api.key").chmod(0o600)
    config = tmp_path / "snowcheck.toml"
    config.write_text(
        f'[instances.keyed]\ninstance = "{https.url}"\nauth = "api-key"\n'
        'api_key_file = "api.key"\napi_key_header = "x-sn-apikey"\n'
    )
    result = run(
        https,
        "check",
        "api-key",
        "--config",
        str(config),
        "--profile",
        "keyed",
        env={},
        auth_flag=False,
    )
    assert result.code == 0, result.err
    assert {e.user for e in https.log if e.path.startswith("/api/")} == {USER}


# -- tokens over time --------------------------------------------------------------------------


def test_a_token_expiring_mid_run_is_refreshed_and_no_write_is_sent_twice(
    run: Runner, make_https: Callable[..., Emulator], cli: InProcess
) -> None:
    emulator = make_https()
    # Tokens live 2 s (expires_in 1: replaced half-way, after 0.5 s); every answer takes
    # 0.2 s, so the run (over 1 s) outlives its first token.
    emulator.oauth.access_lifetime = 2.0
    emulator.latency = 0.2
    result = run(emulator, "check", "oauth-password", "--apply", "--no-token-cache")
    assert result.code == 0, result.err
    assert emulator.oauth.issued["password"] == 1
    assert emulator.oauth.issued["refresh_token"] >= 1
    assert all(entry.status != 401 for entry in emulator.log)
    writes = [e for e in emulator.log if e.method in ("POST", "PATCH") and e.path != TOKEN_PATH]
    assert writes
    assert summary(emulator) == reference(cli)
    by_message(open_ours(emulator))


def test_a_token_the_instance_expired_is_replaced_and_the_read_sent_again(
    run: Runner, https: Emulator
) -> None:
    assert run(https, "check", "oauth-password").code == 0
    https.oauth.expire_access_tokens()  # the cached token is now refused
    https.clear_log()
    result = run(https, "check", "oauth-password", "--concurrency", "1")
    assert result.code == 0, result.err
    first = https.log[0].path
    assert first.startswith("/api/now/table/")
    assert [(e.method, e.path, e.status) for e in https.log][:3] == [
        ("GET", first, 401),
        ("POST", TOKEN_PATH, 200),
        ("GET", first, 200),
    ]
    assert token_requests(https) == 1
    assert https.oauth.issued == {"password": 1, "refresh_token": 1, "client_credentials": 0}


def test_a_write_refused_with_401_is_not_sent_again(
    run: Runner, https: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = WriteBack.apply

    def revoke_first(self: WriteBack, *args: Any, **kwargs: Any) -> Any:
        https.oauth.expire_access_tokens()  # revoked between the reads and the first write
        return original(self, *args, **kwargs)

    monkeypatch.setattr(WriteBack, "apply", revoke_first)
    before = summary(https)
    result = run(https, "check", "oauth-client-credentials", "--apply")
    assert result.code == 1
    assert "was not sent again" in error_text(result)
    assert "Traceback" not in result.err
    writes = [e for e in https.log if e.path.startswith("/api/") and e.method != "GET"]
    assert [e.status for e in writes] == [401]
    assert summary(https) == before


def test_a_revoked_refresh_token_is_one_line_and_exit_1(run: Runner, https: Emulator) -> None:
    assert run(https, "check", "oauth-password").code == 0
    https.oauth.revoke_refresh_tokens()
    https.oauth.expire_access_tokens()
    https.oauth.disabled_grants = frozenset({"password"})
    https.clear_log()
    result = run(https, "check", "oauth-password", "--apply", "--concurrency", "1")
    assert result.code == 1
    message = error_text(result)
    assert "access_denied" in message and "likely causes" in message
    assert len([line for line in result.err.splitlines() if line.strip()]) == 1
    assert "Traceback" not in result.err
    for secret in SECRETS:
        assert secret not in result.out + result.err
    # Not retried: one refresh, one password grant, then nothing more.
    # Not retried: the refresh grant, the password grant, then nothing more.
    first = https.log[0].path
    assert first.startswith("/api/now/table/")
    assert [(e.method, e.path, e.status) for e in https.log] == [
        ("GET", first, 401),
        ("POST", TOKEN_PATH, 401),
        ("POST", TOKEN_PATH, 401),
    ]


def test_the_token_cache_is_0600_and_serves_the_next_run(run: Runner, https: Emulator) -> None:
    for _ in range(3):
        assert run(https, "check", "oauth-client-credentials").code == 0
    assert https.oauth.issued["client_credentials"] == 1
    cache = run.state / "snowcheck" / "oauth-tokens.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    text = cache.read_text()
    assert CLIENT_SECRET not in text and PASSWORD not in text
    assert len(json.loads(text)["tokens"]) == 1


def test_no_token_cache_leaves_no_file(run: Runner, https: Emulator) -> None:
    for _ in range(2):
        assert run(https, "check", "oauth-client-credentials", "--no-token-cache").code == 0
    assert https.oauth.issued["client_credentials"] == 2
    assert not (run.state / "snowcheck" / "oauth-tokens.json").exists()


def test_a_cache_others_may_read_is_ignored_with_a_warning(run: Runner, https: Emulator) -> None:
    assert run(https, "check", "oauth-client-credentials").code == 0
    cache = run.state / "snowcheck" / "oauth-tokens.json"
    cache.chmod(0o644)
    result = run(https, "doctor", "oauth-client-credentials")
    assert result.code == 0, result.out
    assert "WARN  token cache: ignoring the token cache" in result.out
    assert https.oauth.issued["client_credentials"] == 2  # asked again, not read from the cache
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600  # rewritten


# -- TLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["basic", "oauth-password"])
def test_a_tls_verification_failure_names_the_ca_bundle_fix(
    run: Runner, https: Emulator, method: str
) -> None:
    result = run(https, "check", method, ca_bundle=run.tls.other_ca_file)
    assert result.code == 1
    message = error_text(result)
    assert "certificate verify failed" in message and "--ca-bundle FILE" in message
    assert "Traceback" not in result.err
    assert https.log == [] or all(e.path != "/api/now/table/sys_user_role" for e in https.log)


def test_a_missing_client_certificate_is_named(
    run: Runner, make_https: Callable[..., Emulator]
) -> None:
    emulator = make_https("required")
    result = run(emulator, "check", "oauth-password")
    assert result.code == 1
    message = error_text(result)
    assert "client certificate" in message and "--client-cert FILE" in message
    assert "Traceback" not in result.err
    # With the certificate, the same login goes through the load balancer.
    certified = run(
        emulator,
        "check",
        "oauth-password",
        "--client-cert",
        str(run.tls.client_cert),
        "--client-key",
        str(run.tls.client_key),
    )
    assert certified.code == 0, certified.err
    assert {e.user for e in emulator.log if e.path.startswith("/api/")} == {USER}


def test_mtls_without_a_certificate_is_a_configuration_error(run: Runner, https: Emulator) -> None:
    result = run(https, "doctor", "mtls", certificate=False)
    assert result.code == 1
    assert "auth mtls needs a client certificate" in result.out
    assert https.log == []


def test_the_emulator_command_serves_https(tls_files: TlsFiles, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "snowcheck", "emulator", "--port", str(port)]
    command += ["--tls-cert", str(tls_files.server_cert), "--tls-key", str(tls_files.server_key)]
    command += ["--client-ca", str(tls_files.ca_file), "--client-cert", "required"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert server.stdout is not None
        assert f"https://127.0.0.1:{port}" in server.stdout.readline()
        url = f"https://127.0.0.1:{port}/api/now/table/sys_user_role"
        session = requests.Session()
        session.trust_env = False
        session.verify = str(tls_files.ca_file)
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, auth=("admin", "admin"), timeout=10)
        session.cert = (str(tls_files.client_cert), str(tls_files.client_key))
        assert session.get(url, auth=("admin", "admin"), timeout=10).status_code in (200, 401)
    finally:
        server.kill()
        server.communicate(timeout=10)
