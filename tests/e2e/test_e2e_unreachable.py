"""Failing fast where waiting cannot help: a refused loopback port, a name that does not
resolve, a proxy that is not there. One line, exit 1, in well under the 17 seconds five
attempts would take. Each case runs the real CLI process.

Name resolution fails inside the process (``socket.getaddrinfo`` refuses every name), so
no query leaves the machine whatever its resolver; the proxy cases prove, too, that the
instance's name is left to the proxy.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support import USER, clean_env

pytestmark = pytest.mark.e2e

NO_DNS = """\
import ipaddress, socket
real = socket.getaddrinfo
def addresses_only(host, *args, **kwargs):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
    return real(host, *args, **kwargs)
socket.getaddrinfo = addresses_only
from snowcheck.cli import main
raise SystemExit(main())
"""
"""Runs snowcheck with no name resolution at all: only IP addresses connect."""


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def check(
    instance: str, tmp_path: Path, **environ: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``snowcheck check`` against ``instance``, timed; no name resolves."""
    env = clean_env(tmp_path)
    env.pop("NO_PROXY")
    env.update(environ)
    argv = [sys.executable, "-c", NO_DNS, "check", "--instance", instance, "--user", USER]
    started = time.monotonic()
    done = subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    return done, time.monotonic() - started


def test_a_refused_loopback_port_fails_at_once(tmp_path: Path) -> None:
    port = free_port()
    done, seconds = check(f"http://127.0.0.1:{port}", tmp_path)
    assert seconds < 2, seconds
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"snowcheck: error: cannot connect to 127.0.0.1:{port}: connection refused (nothing "
        "listens there): check --instance (or SERVICENOW_INSTANCE)\n"
    )


def test_a_name_that_does_not_resolve_fails_at_once(tmp_path: Path) -> None:
    done, seconds = check("https://snowcheck-test.invalid", tmp_path)
    assert seconds < 2, seconds
    assert done.returncode == 1
    assert done.stderr == (
        "snowcheck: error: cannot resolve host snowcheck-test.invalid: check --instance "
        "(or SERVICENOW_INSTANCE) and your DNS\n"
    )


@pytest.mark.parametrize(
    ("instance", "variables", "used"),
    [
        pytest.param(
            "https://dev12345.service-now.com",
            {"HTTPS_PROXY": "http://{proxy}", "HTTP_PROXY": "http://127.0.0.1:1"},
            "HTTPS_PROXY",
            id="HTTPS_PROXY",
        ),
        pytest.param(
            "https://dev12345.service-now.com",
            {"https_proxy": "http://{proxy}", "HTTPS_PROXY": "http://127.0.0.1:1"},
            "https_proxy",  # the lowercase one wins, in requests as in urllib
            id="https_proxy",
        ),
        pytest.param(
            "http://127.0.0.1:8",  # http:// is allowed for loopback only
            {"HTTP_PROXY": "http://{proxy}", "HTTPS_PROXY": "http://127.0.0.1:1"},
            "HTTP_PROXY",
            id="HTTP_PROXY",
        ),
        pytest.param(
            "https://dev12345.service-now.com",
            {"ALL_PROXY": "http://proxy-user:proxy-pw@{proxy}"},
            "ALL_PROXY",
            id="ALL_PROXY-with-credentials",
        ),
    ],
)
def test_a_refused_proxy_fails_at_once_naming_the_variable_used(
    tmp_path: Path, instance: str, variables: dict[str, str], used: str
) -> None:
    proxy = f"127.0.0.1:{free_port()}"
    environ = {name: value.format(proxy=proxy) for name, value in variables.items()}
    done, seconds = check(instance, tmp_path, **environ)
    assert seconds < 2, seconds
    assert done.returncode == 1
    assert done.stderr == (
        f"snowcheck: error: cannot connect to proxy http://{proxy} (from {used}): connection "
        f"refused; check {used} and NO_PROXY\n"
    )
    assert "proxy-pw" not in done.stderr


def test_a_proxy_whose_name_does_not_resolve_fails_at_once(tmp_path: Path) -> None:
    done, seconds = check(
        "https://dev12345.service-now.com", tmp_path, HTTPS_PROXY="http://proxy.invalid:3128"
    )
    assert seconds < 2, seconds
    assert done.returncode == 1
    assert done.stderr == (
        "snowcheck: error: cannot resolve the host of proxy http://proxy.invalid:3128 (from "
        "HTTPS_PROXY): check HTTPS_PROXY\n"
    )
