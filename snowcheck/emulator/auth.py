"""How the emulated instance knows who is calling: Basic, OAuth bearer tokens, API keys, mTLS.

By default only Basic auth is configured and a 401 says `WWW-Authenticate: BASIC
realm="Service-now"`, as on an instance without a REST API access policy. A scenario's
`auth` section and per-user keys add the rest (see scenario.py)::

    "auth": {
      "tables": {"ecc_agent_issue": ["oauth"]},      # a REST API access policy per table
      "api_key_header": "x-sn-apikey",
      "api_keys": {"KEY": "user_name"},
      "oauth": {"clients": {"CLIENT_ID": {"secret": "...",
                                          "grants": ["password", "refresh_token",
                                                     "client_credentials"],
                                          "application_user": "user_name"}},
                "access_lifetime": 1800, "refresh_lifetime": 8640000}
    }

Methods are named `basic`, `oauth` (a bearer token from `/oauth_token.do`), `api-key` and
`mtls` (a verified TLS client certificate whose common name a user's `certificate` names).
A user's `auth` list and a table's list both limit the methods accepted; a refused request
gets 401 with one `WWW-Authenticate` header per scheme the table (or the user) accepts, as
an access policy does with "advertise all auth schemes". `BASIC` and `BEARER` are the
instance's documented spellings; `APIKEY` and `CERTIFICATE` are the emulator's.

`/oauth_token.do` takes form-encoded password, refresh_token and client_credentials grants,
answers the same access token while it is valid, keeps the refresh token on a refresh, and
answers every failure with the instance's one 401 body. Token lifetimes follow the real
(monotonic) clock, not the scenario's frozen one; control endpoints expire and revoke them.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

METHODS = ("basic", "oauth", "api-key", "mtls")
"""Every authentication method the emulator knows, in the order challenges list them."""

CHALLENGES = {
    "basic": 'BASIC realm="Service-now"',
    "oauth": 'BEARER realm="Service-now"',
    "api-key": 'APIKEY realm="Service-now"',
    "mtls": 'CERTIFICATE realm="Service-now"',
}
"""The `WWW-Authenticate` value advertising each method."""

ACCESS_DENIED: dict[str, str] = {"error_description": "access_denied", "error": "server_error"}
"""The body of every failed `/oauth_token.do` request (HTTP 401)."""

GRANTS = ("password", "refresh_token", "client_credentials")
DEFAULT_GRANTS = frozenset({"password", "refresh_token"})
DEFAULT_ACCESS_LIFETIME = 1800.0
DEFAULT_REFRESH_LIFETIME = 100 * 86400.0
DEFAULT_API_KEY_HEADER = "x-sn-apikey"
TOKEN_PATH = "/oauth_token.do"


class AuthConfigError(ValueError):
    """The `auth` section of a scenario is malformed."""


def methods_from(value: object, where: str) -> frozenset[str]:
    """A JSON list of method names, checked."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AuthConfigError(f"{where} must be a list of methods from {list(METHODS)}")
    unknown = set(value) - set(METHODS)
    if unknown:
        raise AuthConfigError(f"{where}: unknown method(s) {sorted(unknown)}; use {METHODS}")
    return frozenset(value)


@dataclass(frozen=True)
class OAuthClient:
    """One OAuth application registry entry (an OAuth entity) of the instance."""

    secret: str
    grants: frozenset[str] = DEFAULT_GRANTS
    """The grants this client may use."""
    application_user: str | None = None
    """The user a client-credentials token acts as; without one, that grant is refused."""


@dataclass(frozen=True)
class AuthConfig:
    """The instance's authentication set-up beyond Basic auth (empty by default)."""

    tables: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Table -> the methods its access policy accepts (a table not listed accepts all)."""
    api_key_header: str = DEFAULT_API_KEY_HEADER
    api_keys: Mapping[str, str] = field(default_factory=dict)
    """API key -> the user it authenticates."""
    clients: Mapping[str, OAuthClient] = field(default_factory=dict)
    """Client id -> OAuth client."""
    access_lifetime: float = DEFAULT_ACCESS_LIFETIME
    refresh_lifetime: float = DEFAULT_REFRESH_LIFETIME

    @classmethod
    def from_dict(cls, spec: object) -> AuthConfig:
        """Build from a scenario's `auth` section (see the module docstring)."""
        if not isinstance(spec, dict):
            raise AuthConfigError("'auth' must be an object")
        unknown = set(spec) - {"tables", "api_key_header", "api_keys", "oauth"}
        if unknown:
            raise AuthConfigError(f"auth: unknown key(s) {sorted(unknown)}")
        tables_spec = spec.get("tables", {})
        if not isinstance(tables_spec, dict):
            raise AuthConfigError("auth.tables must map table names to lists of methods")
        tables = {
            table: methods_from(methods, f"auth.tables.{table}")
            for table, methods in tables_spec.items()
        }
        header = spec.get("api_key_header", DEFAULT_API_KEY_HEADER)
        if not isinstance(header, str) or not header.strip() or ":" in header:
            raise AuthConfigError("auth.api_key_header must be a header name")
        keys = spec.get("api_keys", {})
        if not isinstance(keys, dict) or not all(
            isinstance(key, str) and isinstance(user, str) for key, user in keys.items()
        ):
            raise AuthConfigError("auth.api_keys must map API keys to user names")
        oauth = spec.get("oauth", {})
        if not isinstance(oauth, dict):
            raise AuthConfigError("auth.oauth must be an object")
        unknown = set(oauth) - {"clients", "access_lifetime", "refresh_lifetime"}
        if unknown:
            raise AuthConfigError(f"auth.oauth: unknown key(s) {sorted(unknown)}")
        clients_spec = oauth.get("clients", {})
        if not isinstance(clients_spec, dict):
            raise AuthConfigError("auth.oauth.clients must map client ids to clients")
        clients = {cid: _client(cid, client) for cid, client in clients_spec.items()}
        lifetimes = [oauth.get(name, default) for name, default in _LIFETIMES]
        if not all(isinstance(v, int | float) and v > 0 for v in lifetimes):
            raise AuthConfigError("auth.oauth lifetimes must be positive numbers of seconds")
        return cls(
            tables=tables,
            api_key_header=header.strip(),
            api_keys=dict(keys),
            clients=clients,
            access_lifetime=float(lifetimes[0]),
            refresh_lifetime=float(lifetimes[1]),
        )


_LIFETIMES = (
    ("access_lifetime", DEFAULT_ACCESS_LIFETIME),
    ("refresh_lifetime", DEFAULT_REFRESH_LIFETIME),
)


def _client(client_id: str, spec: object) -> OAuthClient:
    where = f"auth.oauth.clients.{client_id}"
    if not isinstance(spec, dict) or not isinstance(spec.get("secret"), str):
        raise AuthConfigError(f"{where} must be an object with a 'secret'")
    unknown = set(spec) - {"secret", "grants", "application_user"}
    if unknown:
        raise AuthConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    grants = spec.get("grants", sorted(DEFAULT_GRANTS))
    if not isinstance(grants, list) or not set(grants) <= set(GRANTS):
        raise AuthConfigError(f"{where}.grants must be a list from {list(GRANTS)}")
    app_user = spec.get("application_user")
    if not isinstance(app_user, str | None):
        raise AuthConfigError(f"{where}.application_user must be a user name")
    return OAuthClient(spec["secret"], frozenset(grants), app_user)


def challenge_headers(methods: frozenset[str] | None) -> list[tuple[str, str]]:
    """One `WWW-Authenticate` header per accepted method; Basic's alone when unrestricted."""
    accepted = [m for m in METHODS if m in methods] if methods is not None else ["basic"]
    return [("WWW-Authenticate", CHALLENGES[method]) for method in accepted]


@dataclass
class _Token:
    user: str
    client_id: str
    expires_at: float
    refresh_token: str | None = None


@dataclass(frozen=True)
class TokenAnswer:
    """What `/oauth_token.do` answers: the status, the JSON body, and whose token it is."""

    status: int
    payload: dict[str, Any]
    user: str | None = None


def _denied() -> TokenAnswer:
    return TokenAnswer(401, dict(ACCESS_DENIED))


class OAuthServer:
    """Issues, checks, expires and revokes OAuth tokens; thread-safe."""

    def __init__(
        self,
        config: AuthConfig,
        check_password: Callable[[str, str], bool],
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = dict(config.clients)
        self.access_lifetime = config.access_lifetime
        self.refresh_lifetime = config.refresh_lifetime
        self._check_password = check_password
        self._now = now
        self._lock = threading.Lock()
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._current: dict[tuple[str, str, str], str] = {}
        """(client id, user, grant family) -> the access token handed out last."""
        self.issued = dict.fromkeys(GRANTS, 0)
        """Successful token requests per grant."""
        self.disabled_grants: frozenset[str] = frozenset()
        """Grants switched off instance-wide (as `glide.oauth.inbound.ropc.grant_type.disabled`
        does for the password grant)."""

    # -- /oauth_token.do ----------------------------------------------------------------------

    def token_request(self, content_type: str | None, body: bytes) -> TokenAnswer:
        """Serve one `POST /oauth_token.do` (form-encoded, like the instance; JSON fails)."""
        if (content_type or "").split(";")[0].strip().lower() != (
            "application/x-www-form-urlencoded"
        ):
            return _denied()
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return _denied()
        grant = form.get("grant_type", "")
        client = self.clients.get(form.get("client_id", ""))
        if (
            client is None
            or grant not in client.grants
            or grant in self.disabled_grants
            or not hmac.compare_digest(
                client.secret.encode(), form.get("client_secret", "").encode()
            )
        ):
            return _denied()
        client_id = form["client_id"]
        with self._lock:
            if grant == "password":
                user = form.get("username", "")
                if not self._check_password(user, form.get("password", "")):
                    return _denied()
                return self._issue(grant, client_id, user, refresh=None)
            if grant == "refresh_token":
                held = self._refresh.get(form.get("refresh_token", ""))
                if held is None or held.client_id != client_id or self._expired(held):
                    return _denied()
                return self._issue(grant, client_id, held.user, refresh=form["refresh_token"])
            if client.application_user is None:
                return _denied()
            return self._issue(grant, client_id, client.application_user, refresh=None)

    def _expired(self, token: _Token) -> bool:
        return self._now() >= token.expires_at

    def _issue(self, grant: str, client_id: str, user: str, *, refresh: str | None) -> TokenAnswer:
        """A token answer; the caller holds the lock."""
        family = "application" if grant == "client_credentials" else "user"
        key = (client_id, user, family)
        now = self._now()
        current = self._access.get(self._current.get(key, ""))
        if grant == "refresh_token" or current is None or self._expired(current):
            access = secrets.token_urlsafe(64)
            current = _Token(user, client_id, now + self.access_lifetime)
            self._access[access] = current
            self._current[key] = access
        else:
            access = self._current[key]
        payload: dict[str, Any] = {"access_token": access}
        if family == "user":
            if refresh is None:
                refresh = current.refresh_token
                held = self._refresh.get(refresh or "")
                if held is None or self._expired(held):
                    refresh = secrets.token_urlsafe(64)
                    self._refresh[refresh] = _Token(user, client_id, now + self.refresh_lifetime)
            current.refresh_token = refresh
            payload.update(scope="useraccount", refresh_token=refresh)
        else:
            payload["scope"] = ""
        # The instance reports one second less than the lifetime left (1799 for 1800).
        remaining = current.expires_at - now
        payload.update(token_type="Bearer", expires_in=max(0, round(remaining) - 1))
        self.issued[grant] += 1
        return TokenAnswer(200, payload, user)

    # -- bearer tokens -----------------------------------------------------------------------

    def bearer_user(self, access_token: str) -> str | None:
        """The user a valid access token acts as, or None."""
        with self._lock:
            token = self._access.get(access_token)
            if token is None or self._expired(token):
                return None
            return token.user

    # -- control -----------------------------------------------------------------------------

    def expire_access_tokens(self) -> int:
        """Make every access token expired now, as if its lifetime ran out; returns the count."""
        with self._lock:
            now = self._now()
            live = [t for t in self._access.values() if t.expires_at > now]
            for token in live:
                token.expires_at = now
            return len(live)

    def revoke_refresh_tokens(self) -> int:
        """Revoke every refresh token (the admin deleted them); returns the count."""
        with self._lock:
            count = len(self._refresh)
            self._refresh.clear()
            return count

    def state(self) -> dict[str, Any]:
        """Lifetimes, tokens issued per grant, and how many are valid now (no token values)."""
        with self._lock:
            now = self._now()
            return {
                "access_lifetime": self.access_lifetime,
                "refresh_lifetime": self.refresh_lifetime,
                "issued": dict(self.issued),
                "disabled_grants": sorted(self.disabled_grants),
                "valid_access_tokens": sum(t.expires_at > now for t in self._access.values()),
                "valid_refresh_tokens": sum(t.expires_at > now for t in self._refresh.values()),
            }

    def control(self, payload: object) -> dict[str, Any]:
        """Apply `{"access_lifetime", "refresh_lifetime", "disabled_grants",
        "expire_access_tokens", "revoke_refresh_tokens"}` (all optional); returns the state."""
        allowed = {
            "disabled_grants",
            "access_lifetime",
            "refresh_lifetime",
            "expire_access_tokens",
            "revoke_refresh_tokens",
        }
        if not isinstance(payload, dict) or not set(payload) <= allowed:
            raise ValueError(f"expected an object with keys from {sorted(allowed)}")
        for name in ("access_lifetime", "refresh_lifetime"):
            if name in payload:
                value = payload[name]
                if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                    raise ValueError(f"{name} must be a positive number of seconds")
                setattr(self, name, float(value))
        if "disabled_grants" in payload:
            grants = payload["disabled_grants"]
            if not isinstance(grants, list) or not set(grants) <= set(GRANTS):
                raise ValueError(f"disabled_grants must be a list from {list(GRANTS)}")
            self.disabled_grants = frozenset(grants)
        if payload.get("expire_access_tokens"):
            self.expire_access_tokens()
        if payload.get("revoke_refresh_tokens"):
            self.revoke_refresh_tokens()
        return self.state()


@dataclass(frozen=True)
class Identity:
    """Who a request proved to be, and how."""

    user: str
    method: str


def common_name(peer_certificate: Mapping[str, Any] | None) -> str | None:
    """The subject common name of a verified peer certificate (`SSLSocket.getpeercert()`)."""
    for rdn in (peer_certificate or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def accepted(*limits: frozenset[str] | None) -> frozenset[str] | None:
    """The methods every limit allows (None: no limit at all)."""
    given = [limit for limit in limits if limit is not None]
    if not given:
        return None
    result = frozenset(METHODS)
    for limit in given:
        result &= limit
    return result


def restricted(methods: frozenset[str] | None, method: str) -> bool:
    """Whether `method` is outside an accepted set (None accepts everything)."""
    return methods is not None and method not in methods
