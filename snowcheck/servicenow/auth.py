"""How snowcheck logs in: requests `AuthBase` objects for Basic, OAuth and API keys.

Set one as `session.auth`. The OAuth ones get tokens from `/oauth_token.do` through the
same session (CA bundle, client certificate and proxies included), send them as
`Authorization: Bearer`, replace them 60 s before they expire (half-way through a shorter
lifetime), and once after a 401: a read is then sent again with the new token; a write
(POST, PATCH, PUT, DELETE) never is, so nothing is written twice: it raises
`WriteUnauthorized` instead. Mutual TLS needs no AuthBase: it is `session.cert`.

Errors are typed (`AuthError` and its subclasses) and their messages are one line that never
holds a secret; the layer above turns them into exit codes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from snowcheck.servicenow.token_cache import CacheKey, Token, TokenCache

TOKEN_PATH = "/oauth_token.do"
DEFAULT_API_KEY_HEADER = "x-sn-apikey"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
"""Requests never sent twice because of a token refresh."""

_CAUSES = {
    "password": (
        "a wrong client secret, a wrong user password, a locked-out or inactive user, or the "
        "password grant disabled on the instance (glide.oauth.inbound.ropc.grant_type.disabled)"
    ),
    "refresh_token": (
        "an expired or revoked refresh token, a wrong client secret, or a locked-out user"
    ),
    "client_credentials": (
        "a wrong client secret, no OAuth application user on the client's OAuth entity, or the "
        "grant not enabled on the instance "
        "(glide.oauth.inbound.client.credential.grant_type.enabled)"
    ),
}


class AuthError(Exception):
    """Logging in failed; the message is one line and holds no secret."""


class TokenRefused(AuthError):
    """`/oauth_token.do` answered `access_denied`: the instance names no cause, so the message
    lists the likely ones."""

    def __init__(self, grant: str, client_id: str, status: int) -> None:
        self.grant = grant
        self.client_id = client_id
        self.status = status
        super().__init__(
            f"the instance refused the OAuth {grant.replace('_', ' ')} grant for client "
            f"{client_id} (HTTP {status} access_denied); likely causes: {_CAUSES[grant]}; "
            "the instance's system log names the cause"
        )


class TokenEndpointError(AuthError):
    """`/oauth_token.do` gave no usable answer (another status, or not a token)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class WriteUnauthorized(AuthError):
    """A write got 401 with a bearer token; it was not sent again, so it happened at most once
    (on a 401, not at all)."""

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        super().__init__(
            f"the instance answered 401 to {method} {path} with an OAuth token; it was not "
            "sent again (a write is never repeated): the token may have been revoked, or the "
            "table's access policy may not accept OAuth"
        )


def _path(url: str | None) -> str:
    """The path of a URL, without the query (which could be long, never secret)."""
    return urlsplit(url or "").path or "/"


class Basic(HTTPBasicAuth):
    """Basic auth (`Authorization: Basic`), the instance's default."""

    method: ClassVar[str] = "basic"

    def __repr__(self) -> str:
        return f"Basic(user={self.username!r})"


class ApiKey(AuthBase):
    """An API key in a header (`x-sn-apikey` unless the instance's profile names another)."""

    method: ClassVar[str] = "api-key"

    def __init__(self, key: str, header: str = DEFAULT_API_KEY_HEADER) -> None:
        if not header.strip() or ":" in header:
            raise ValueError(f"not a header name: {header!r}")
        self.key = key
        self.header = header.strip()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.header] = self.key
        return request

    def __repr__(self) -> str:
        return f"ApiKey(header={self.header!r})"


class _NoAuth(AuthBase):
    """Sends a request as it is, overriding the session's auth (for token requests)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class OAuth(AuthBase):
    """Bearer tokens from `/oauth_token.do`: the grant-independent part.

    `session` sends the token requests (default: a plain `requests.Session`); pass the
    session this object is the auth of, so TLS settings and proxies apply. `cache`: a
    `TokenCache` to share tokens between runs, or None. `clock` gives seconds since the epoch.
    """

    method: ClassVar[str]
    grant: ClassVar[str]

    def __init__(
        self,
        instance_url: str,
        client_id: str,
        client_secret: str,
        *,
        user: str | None,
        session: requests.Session | None = None,
        cache: TokenCache | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.session = session
        self.cache = cache
        self.timeout = timeout
        self.clock = clock
        self.key = CacheKey(self.instance_url, client_id, user)
        self.warnings: list[str] = []
        """Problems with the token cache, for the caller to show (never a token)."""
        self.token_requests = 0
        """How many times `/oauth_token.do` was asked, in this run."""
        self._token: Token | None = None
        self._cache_read = False
        self._refused: str | None = None
        """The access token a write's 401 condemned, replaced before the next request."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(instance={self.instance_url!r}, client={self.client_id!r})"

    @property
    def token_expires_at(self) -> datetime | None:
        """When the current token expires (UTC), or None before the first one."""
        token = self._token
        if token is None:
            return None
        return datetime.fromtimestamp(token.expires_at, UTC)

    def secrets(self) -> tuple[str, ...]:
        """The client secret and the tokens held now: what a redactor must hide."""
        token = self._token
        held = (token.access_token, token.refresh_token or "") if token is not None else ()
        return tuple(secret for secret in (self.client_secret, *held) if secret)

    # -- requests --------------------------------------------------------------------------

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.current_token()
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        request.hooks["response"].append(self._on_response)
        return request

    def _on_response(self, response: requests.Response, **send: Any) -> requests.Response:
        """After a 401: a new token, then a read is sent once more; a write raises."""
        if response.status_code != 401:
            return response
        request = response.request
        sent = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        # Consume and release the refused answer before sending anything else.
        _ = response.content
        response.close()
        method = (request.method or "GET").upper()
        if method in WRITE_METHODS:
            with self._lock:
                self._refused = sent  # the next request gets a new token first
            raise WriteUnauthorized(method, _path(request.url))
        token = self.current_token(refused=sent)
        again = request.copy()
        again.headers["Authorization"] = f"Bearer {token.access_token}"
        again.hooks["response"] = [h for h in again.hooks["response"] if h != self._on_response]
        adapter = response.connection
        retried: requests.Response = adapter.send(again, **send)
        retried.history.append(response)
        retried.request = again
        return retried

    # -- tokens ----------------------------------------------------------------------------

    def current_token(self, *, refused: str | None = None) -> Token:
        """A token fit to send now: the one held, the cached one, or a new one.

        `refused`: an access token the instance just refused; it is replaced unless another
        thread already did.
        """
        with self._lock:
            token = self._token
            if token is None and not self._cache_read:
                token = self._from_cache()
            now = self.clock()
            unusable = (refused, self._refused)
            if token is not None and token.fresh(now) and token.access_token not in unusable:
                self._token = token
                return token
            token = self._renew(token)
            self._token = token
            self._refused = None
            if self.cache is not None:
                self._warn(self.cache.save(self.key, token))
            return token

    def _from_cache(self) -> Token | None:
        self._cache_read = True
        if self.cache is None:
            return None
        token, warning = self.cache.load(self.key)
        self._warn(warning)
        return token

    def _warn(self, warning: str | None) -> None:
        if warning is not None and warning not in self.warnings:
            self.warnings.append(warning)

    def _renew(self, previous: Token | None) -> Token:
        """A new token (the grant decides how); `previous` is the stale or refused one."""
        raise NotImplementedError

    def _request_token(self, grant: str, form: Mapping[str, str]) -> Token:
        """POST one grant to `/oauth_token.do`, form-encoded, and read the token."""
        body = {
            "grant_type": grant,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            **form,
        }
        self.token_requests += 1
        issued = self.clock()
        with contextlib.ExitStack() as stack:
            session = self.session
            if session is None:
                session = stack.enter_context(requests.Session())
            response = session.post(
                self.instance_url + TOKEN_PATH,
                data=body,
                # Explicit: the session may carry pysnow's JSON Content-Type, which the
                # instance refuses here.
                headers={
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                auth=_NoAuth(),
                timeout=self.timeout,
            )
            stack.enter_context(response)
            status = response.status_code
            try:
                answer = response.json()
            except ValueError:
                answer = None
        if status in (400, 401) and isinstance(answer, dict) and "error" in answer:
            raise TokenRefused(grant, self.client_id, status)
        if status != 200:
            raise TokenEndpointError(
                f"{TOKEN_PATH} answered HTTP {status} to the OAuth {grant.replace('_', ' ')} grant",
                status=status,
            )
        access = answer.get("access_token") if isinstance(answer, dict) else None
        expires_in = answer.get("expires_in") if isinstance(answer, dict) else None
        refresh = answer.get("refresh_token") if isinstance(answer, dict) else None
        if (
            not isinstance(access, str)
            or not access
            or isinstance(expires_in, bool)
            or not isinstance(expires_in, int | float | str)
            or not isinstance(refresh, str | None)
        ):
            raise TokenEndpointError(f"{TOKEN_PATH} answered 200 without a usable token")
        try:
            lifetime = max(0.0, float(expires_in))
        except ValueError:
            raise TokenEndpointError(f"{TOKEN_PATH} answered a bad expires_in") from None
        return Token(access, issued + lifetime, lifetime, refresh or None)


class OAuthPassword(OAuth):
    """The OAuth password grant, renewed with the refresh grant (a new password grant if the
    refresh token is refused: expired and revoked ones look the same)."""

    method: ClassVar[str] = "oauth-password"
    grant: ClassVar[str] = "password"

    def __init__(
        self,
        instance_url: str,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        *,
        session: requests.Session | None = None,
        cache: TokenCache | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            instance_url,
            client_id,
            client_secret,
            user=username,
            session=session,
            cache=cache,
            timeout=timeout,
            clock=clock,
        )
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, user={self.username!r})"

    def _renew(self, previous: Token | None) -> Token:
        if previous is not None and previous.refresh_token:
            try:
                token = self._request_token(
                    "refresh_token", {"refresh_token": previous.refresh_token}
                )
            except TokenRefused:
                pass
            else:
                # The instance keeps the refresh token; keep it if the answer left it out.
                if token.refresh_token is None:
                    token = Token(
                        token.access_token,
                        token.expires_at,
                        token.lifetime,
                        previous.refresh_token,
                    )
                return token
        form = {"username": self.username, "password": self.password}
        return self._request_token("password", form)


class OAuthClientCredentials(OAuth):
    """The OAuth client-credentials grant (Washington DC and later); the token acts as the
    OAuth entity's application user. There is no refresh token: renewing asks again."""

    method: ClassVar[str] = "oauth-client-credentials"
    grant: ClassVar[str] = "client_credentials"

    def __init__(
        self,
        instance_url: str,
        client_id: str,
        client_secret: str,
        *,
        session: requests.Session | None = None,
        cache: TokenCache | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            instance_url,
            client_id,
            client_secret,
            user=None,
            session=session,
            cache=cache,
            timeout=timeout,
            clock=clock,
        )

    def _renew(self, previous: Token | None) -> Token:
        return self._request_token("client_credentials", {})
