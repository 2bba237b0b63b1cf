"""Which connection failures are retried, read from the exception's causes; the proxy in use."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from snowcheck.servicenow import errors
from snowcheck.servicenow.exchange import is_transient
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection
from snowcheck.servicenow.unreachable import proxy_in_use

URL = "https://dev1.service-now.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _failed_connection(host: str, cause: OSError) -> requests.ConnectionError:
    """What requests raises when opening a connection to ``host`` failed with ``cause``."""
    conn = SimpleNamespace(host=host)
    reason: NewConnectionError
    if isinstance(cause, socket.gaierror):
        reason = NameResolutionError(host, conn, cause)  # type: ignore[arg-type]
    else:
        reason = NewConnectionError(conn, f"Failed to establish a new connection: {cause}")  # type: ignore[arg-type]
    reason.__cause__ = cause
    return requests.ConnectionError(MaxRetryError(None, "/api", reason))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


def _refused(host: str) -> requests.ConnectionError:
    return _failed_connection(host, ConnectionRefusedError(111, "Connection refused"))


FAILURES: dict[str, tuple[BaseException, bool]] = {
    # id: (the failure, whether it is retried)
    "refused-loopback": (_refused("127.0.0.1"), False),
    "refused-ipv6-loopback": (_refused("::1"), False),
    "refused-localhost": (_refused("localhost"), False),
    # Behind a load balancer a refused connection can be a node restarting: retried.
    "refused-elsewhere": (_refused("10.1.2.3"), True),
    "dns": (
        _failed_connection("dev1.x.com", socket.gaierror(-2, "Name or service not known")),
        False,
    ),
    "no-route": (_failed_connection("10.1.2.3", OSError(113, "No route to host")), True),
    "connect-timeout": (requests.exceptions.ConnectTimeout("timed out"), True),
    "read-timeout": (requests.exceptions.ReadTimeout("timed out"), True),
}


@pytest.mark.parametrize(("failure", "retried"), FAILURES.values(), ids=FAILURES.keys())
def test_waiting_cannot_help_a_dns_failure_or_a_refused_loopback_port(
    failure: BaseException, retried: bool
) -> None:
    assert is_transient(failure) is retried


def test_a_refused_loopback_port_is_tried_once(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = Connection(base_url=f"http://127.0.0.1:{free_port()}", user="u", password="pw")
    instance = Instance(connection, sleep=lambda seconds: pytest.fail("no retry expected"))
    with pytest.raises(errors.ConnectionRefused) as caught:
        instance.fetch("sys_user_role", "name=mid_server", ["sys_id"])
    assert instance.requests_made == 1
    assert "connection refused (nothing listens there)" in str(caught.value)


LOOPBACK = "http://127.0.0.1:8080"
PROXIES: dict[str, tuple[dict[str, str], str, tuple[str, str] | None]] = {
    # id: (the environment, the instance's URL, the proxy in use and its variable)
    "none": ({}, URL, None),
    "https": ({"HTTPS_PROXY": "http://p:3"}, URL, ("http://p:3", "HTTPS_PROXY")),
    "http-url-only-https-proxy": ({"HTTPS_PROXY": "http://p:3"}, LOOPBACK, None),
    "http": (
        {"HTTP_PROXY": "http://q:8", "HTTPS_PROXY": "http://p:3"},
        LOOPBACK,
        ("http://q:8", "HTTP_PROXY"),
    ),
    "lowercase-wins": (
        {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"},
        URL,
        ("http://low:1", "https_proxy"),
    ),
    "all": ({"ALL_PROXY": "socks5://s:1080"}, URL, ("socks5://s:1080", "ALL_PROXY")),
    "credentials-hidden": (
        {"HTTPS_PROXY": "http://user:secret@p:3"},
        URL,
        ("http://p:3", "HTTPS_PROXY"),
    ),
    "no-scheme": ({"HTTPS_PROXY": "p:3"}, URL, ("http://p:3", "HTTPS_PROXY")),
    "no-proxy": ({"HTTPS_PROXY": "http://p:3", "NO_PROXY": "service-now.com"}, URL, None),
}


@pytest.mark.parametrize(("variables", "url", "found"), PROXIES.values(), ids=PROXIES.keys())
def test_the_proxy_in_use_and_the_variable_naming_it(
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    url: str,
    found: tuple[str, str] | None,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert proxy_in_use(url) == found
