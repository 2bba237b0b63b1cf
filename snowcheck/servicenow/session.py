"""Where an instance is and how we log in: the connection, the requests session, TLS, proxies.

Authentication is a ``requests.auth.AuthBase`` chosen in ``auth_for``: the one place a
new method (OAuth, API key, mutual TLS) plugs in. The password never appears in a repr.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pysnow
import requests
from requests.auth import AuthBase, HTTPBasicAuth

from snowcheck import __version__


@dataclass(frozen=True)
class Connection:
    """Everything needed to talk to one instance; its repr never shows the password."""

    base_url: str
    """scheme://host[:port], no trailing slash, e.g. https://dev12345.service-now.com."""
    user: str
    password: str = field(repr=False)
    verify: bool | str = True
    """True (system CAs, or REQUESTS_CA_BUNDLE via requests), or the path of a CA bundle."""
    connect_timeout: float = 10
    read_timeout: float = 60
    page_size: int = 10000
    """sysparm_limit of each page read."""

    @property
    def host(self) -> str:
        """host[:port] of base_url, as pysnow wants it (no scheme)."""
        return self.base_url.split("://", 1)[1]

    @property
    def use_ssl(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts, as requests takes them."""
        return (self.connect_timeout, self.read_timeout)


class Session(requests.Session):
    """A Session whose explicit CA bundle beats REQUESTS_CA_BUNDLE.

    requests lets REQUESTS_CA_BUNDLE override ``Session.verify`` when a request does
    not pass ``verify`` itself (pysnow never does); --ca-bundle must win over the
    environment, so an explicit bundle is passed down as the request's own.
    """

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if verify is None and self.verify is not True:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def auth_for(connection: Connection) -> AuthBase:
    """How requests authenticate: Basic today; new methods return their own AuthBase here."""
    return HTTPBasicAuth(connection.user, connection.password)


def secrets_of(connection: Connection) -> tuple[str, ...]:
    """What must never appear in a text we emit: the password and the Basic token."""
    token = base64.b64encode(f"{connection.user}:{connection.password}".encode()).decode("ascii")
    return tuple(secret for secret in (connection.password, token) if len(secret) >= 4)


def open_session(connection: Connection) -> Session:
    """A session that authenticates, verifies TLS and honours HTTPS_PROXY and NO_PROXY."""
    session = Session()
    session.auth = auth_for(connection)
    session.verify = connection.verify
    session.trust_env = True  # HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE
    return session


def table_client(connection: Connection, session: Session) -> Any:
    """The pysnow client that builds Table API requests and sends them through ``session``."""
    client = pysnow.Client(host=connection.host, use_ssl=connection.use_ssl, session=session)
    # pysnow sets "User-Agent: pysnow"; say who is calling, for the instance's logs.
    session.headers["User-Agent"] = f"snowcheck/{__version__} (pysnow)"
    return client
