"""No connection at all: which failures waiting cannot help, and the proxy a request went through.

A host name that does not resolve, or a connection refused by a loopback address (the
instance's or the proxy's: nothing listens there, and nothing in between will start
it), fails at once; elsewhere a refused connection may be a node restarting behind a
load balancer, and is retried like a timeout. The causes are read from the exception's
chain (``socket.gaierror``, ``ConnectionRefusedError`` under urllib3's errors), never
from its text. With a proxy from the environment, the error names the variable that
set it, as requests chose it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception under it: arguments, urllib3's ``reason``, causes."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = (*current.args, getattr(current, "reason", None), current.__cause__)
        pending.extend(item for item in nested if isinstance(item, BaseException))


def is_name_resolution(exc: BaseException) -> bool:
    """Whether a connection error is a DNS failure (permanent for our purpose: a typo)."""
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror | NameResolutionError):
            return True
        text = str(cause)
        if "Failed to resolve" in text or "Name or service not known" in text:
            return True
    return False


def connecting_to(exc: BaseException) -> str | None:
    """The host a failed connection was opened to (the instance's or the proxy's), if known."""
    for cause in causes(exc):
        if isinstance(cause, NewConnectionError):  # NameResolutionError is one too
            host = getattr(cause.conn, "host", None)
            if isinstance(host, str):
                return host
    return None


def refused_by(exc: BaseException) -> str | None:
    """The host that refused the connection (the instance's or the proxy's), if one did."""
    if not any(isinstance(cause, ConnectionRefusedError) for cause in causes(exc)):
        return None
    return connecting_to(exc)


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def waiting_cannot_help(exc: BaseException) -> bool:
    """A DNS failure, or a connection refused by a loopback address: not worth a retry."""
    if not isinstance(exc, requests.ConnectionError):
        return False
    if is_name_resolution(exc):
        return True
    host = refused_by(exc)
    return host is not None and is_loopback(host)


def proxy_in_use(url: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The proxy requests takes from the environment for ``url``, and the variable naming it.

    The proxy is shown without any user name or password it holds. None without a proxy
    (none set, or ``NO_PROXY`` names the host).
    """
    environ = os.environ if environ is None else environ
    proxies = requests.utils.get_environ_proxies(url)
    proxy = requests.utils.select_proxy(url, proxies)
    if not proxy:
        return None
    parts = urlsplit(url)
    keys = (f"{parts.scheme}://{parts.hostname}", parts.scheme, f"all://{parts.hostname}", "all")
    key = next((key for key in keys if proxies.get(key) == proxy), parts.scheme)
    wanted = f"{key}_proxy"
    names = [name for name in environ if name.lower() == wanted and environ[name]]
    # urllib lets a name ending in lowercase "_proxy" win over HTTPS_PROXY.
    preferred = [name for name in names if name.endswith("_proxy")]
    variable = (preferred or names or [wanted.upper()])[-1]
    shown = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return f"{shown.scheme}://{shown.netloc.rpartition('@')[2]}", variable


def not_connected(exc: BaseException, *, base_url: str, host: str) -> str | None:
    """The one-line message of a failure waiting cannot help (`waiting_cannot_help`), else None."""
    if not waiting_cannot_help(exc):
        return None
    proxy = proxy_in_use(base_url)
    through_proxy = proxy is not None and connecting_to(exc) == urlsplit(proxy[0]).hostname
    if is_name_resolution(exc):
        if proxy is not None and through_proxy:
            address, variable = proxy
            return f"cannot resolve the host of proxy {address} (from {variable}): check {variable}"
        hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return (
            f"cannot resolve host {hostname}: check --instance (or SERVICENOW_INSTANCE) "
            "and your DNS"
        )
    if proxy is not None and through_proxy:
        address, variable = proxy
        return (
            f"cannot connect to proxy {address} (from {variable}): connection refused; "
            f"check {variable} and NO_PROXY"
        )
    return (
        f"cannot connect to {host}: connection refused (nothing listens there): check "
        "--instance (or SERVICENOW_INSTANCE)"
    )
