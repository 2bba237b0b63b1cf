"""Where an instance is and how we log in: the connection, the requests session, TLS, proxies.

Authentication is a ``requests.auth.AuthBase`` chosen in ``auth_for``: the one place a
new method plugs in (Basic, OAuth, API key; mutual TLS is the session's client
certificate). No password, client secret, API key or token ever appears in a repr.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pysnow
import requests
from requests.auth import AuthBase

from snowcheck import __version__
from snowcheck.servicenow.auth import (
    DEFAULT_API_KEY_HEADER,
    ApiKey,
    Basic,
    OAuth,
    OAuthClientCredentials,
    OAuthPassword,
)
from snowcheck.servicenow.token_cache import TokenCache

AUTH_METHODS = ("basic", "oauth-password", "oauth-client-credentials", "api-key", "mtls")
"""Every value of the ``auth`` setting, the default first."""


@dataclass(frozen=True)
class Login:
    """How to log in beyond user and password: the ``auth`` method and what it needs."""

    method: str = "basic"
    """One of AUTH_METHODS."""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    api_key_header: str = DEFAULT_API_KEY_HEADER
    client_cert: str | None = None
    """A PEM client certificate (any method: a load balancer may demand one)."""
    client_key: str | None = None
    """Its private key (unencrypted: requests cannot use a password-protected one)."""
    token_cache: bool = True
    """Keep OAuth tokens between runs in the user's state folder."""


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
    login: Login = field(default_factory=Login)
    """The ``auth`` method and its secrets (Basic with user and password by default)."""

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


class CertificateOnly(AuthBase):
    """Mutual TLS: the client certificate logs in, no header does (and no ~/.netrc)."""

    method = "mtls"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request

    def __repr__(self) -> str:
        return "CertificateOnly()"


def auth_for(connection: Connection, session: requests.Session | None = None) -> AuthBase:
    """How requests authenticate, by ``connection.login.method``.

    OAuth tokens are asked for through ``session`` (the one this auth goes on), so the CA
    bundle, client certificate and proxies apply to ``/oauth_token.do`` too.
    """
    login = connection.login
    if login.method == "api-key":
        return ApiKey(login.api_key, login.api_key_header)
    if login.method == "mtls":
        return CertificateOnly()
    if login.method in ("oauth-password", "oauth-client-credentials"):
        cache = TokenCache() if login.token_cache else None
        common: dict[str, Any] = {
            "session": session,
            "cache": cache,
            "timeout": connection.read_timeout,
        }
        if login.method == "oauth-password":
            return OAuthPassword(
                connection.base_url,
                login.client_id,
                login.client_secret,
                connection.user,
                connection.password,
                **common,
            )
        return OAuthClientCredentials(
            connection.base_url, login.client_id, login.client_secret, **common
        )
    return Basic(connection.user, connection.password)


def secrets_of(connection: Connection, auth: object = None) -> tuple[str, ...]:
    """What must never appear in a text we emit: the password, the Basic token, the client
    secret, the API key, and the OAuth tokens ``auth`` holds now."""
    token = base64.b64encode(f"{connection.user}:{connection.password}".encode()).decode("ascii")
    login = connection.login
    held = auth.secrets() if isinstance(auth, OAuth) else ()
    candidates = (connection.password, token, login.client_secret, login.api_key, *held)
    return tuple(secret for secret in candidates if len(secret) >= 4)


def open_session(connection: Connection) -> Session:
    """A session that authenticates, verifies TLS and honours HTTPS_PROXY and NO_PROXY."""
    session = Session()
    session.auth = auth_for(connection, session)
    session.verify = connection.verify
    login = connection.login
    if login.client_cert is not None:
        session.cert = (
            (login.client_cert, login.client_key) if login.client_key else login.client_cert
        )
    session.trust_env = True  # HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE
    return session


def table_client(connection: Connection, session: Session) -> Any:
    """The pysnow client that builds Table API requests and sends them through ``session``."""
    client = pysnow.Client(host=connection.host, use_ssl=connection.use_ssl, session=session)
    # pysnow sets "User-Agent: pysnow"; say who is calling, for the instance's logs.
    session.headers["User-Agent"] = f"snowcheck/{__version__} (pysnow)"
    return client
