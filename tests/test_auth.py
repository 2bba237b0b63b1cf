"""Logging in: Basic, API keys and OAuth as requests AuthBase objects.

First against `responses` (exact requests, an injected clock), then end to end against the
emulator over HTTPS with a trustme CA.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from fixtures.tls import CLIENT_COMMON_NAME, TlsFiles

from snowcheck.emulator import Emulator, Scenario, TlsConfig
from snowcheck.servicenow.auth import (
    ApiKey,
    AuthError,
    Basic,
    OAuth,
    OAuthClientCredentials,
    OAuthPassword,
    TokenEndpointError,
    TokenRefused,
    WriteUnauthorized,
)
from snowcheck.servicenow.token_cache import CacheKey, Token, TokenCache

INSTANCE = "https://example.service-now.com"
TOKEN_URL = f"{INSTANCE}/oauth_token.do"
TABLE_URL = f"{INSTANCE}/api/now/table/ecc_agent_issue"
CLIENT_ID = "client-id-0001"
CLIENT_SECRET = "Cl1ent-S3cret-value"
USER = "svc.snowcheck"
PASSWORD = "Us3r-Passw0rd-value"
API_KEY = "now-Api-K3y-value"
ACCESS_DENIED = {"error_description": "access_denied", "error": "server_error"}
SECRETS = (CLIENT_SECRET, PASSWORD, API_KEY)


class Clock:
    """A settable clock, in seconds since the epoch."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def token_answer(access: str, expires_in: int = 1799, refresh: str | None = "R1") -> Any:
    body: dict[str, Any] = {"scope": "useraccount", "token_type": "Bearer"}
    body.update(expires_in=expires_in, access_token=access)
    if refresh is not None:
        body["refresh_token"] = refresh
    return body


def form(call: Any) -> dict[str, str]:
    """The form a recorded token request sent."""
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    return {name: values[0] for name, values in parse_qs(call.request.body).items()}


def token_calls(mock: responses.RequestsMock) -> list[dict[str, str]]:
    return [form(call) for call in mock.calls if call.request.url == TOKEN_URL]


def api_calls(mock: responses.RequestsMock) -> list[tuple[str, str]]:
    """(method, bearer token) of each API request."""
    return [
        (str(call.request.method), str(call.request.headers.get("Authorization")))
        for call in mock.calls
        if call.request.url != TOKEN_URL
    ]


def password_session(clock: Clock, **kwargs: Any) -> tuple[requests.Session, OAuthPassword]:
    session = requests.Session()
    auth = OAuthPassword(
        INSTANCE, CLIENT_ID, CLIENT_SECRET, USER, PASSWORD, session=session, clock=clock, **kwargs
    )
    session.auth = auth
    return session, auth


# -- the password grant ------------------------------------------------------------------------


def test_the_password_grant_is_form_encoded_and_the_token_sent_as_bearer(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1"))
    mocked.get(TABLE_URL, json={"result": []})
    session, auth = password_session(clock)
    assert session.get(TABLE_URL).status_code == 200
    assert session.get(TABLE_URL).status_code == 200
    assert token_calls(mocked) == [
        {
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": USER,
            "password": PASSWORD,
        }
    ]
    assert api_calls(mocked) == [("GET", "Bearer A1"), ("GET", "Bearer A1")]
    # The token request itself carries no Authorization header.
    assert "Authorization" not in mocked.calls[0].request.headers
    assert auth.token_expires_at is not None
    assert auth.token_expires_at.timestamp() == clock.now + 1799
    assert auth.method == "oauth-password" and auth.token_requests == 1


def test_the_token_is_refreshed_60_s_before_it_expires(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1", refresh="R1"))
    mocked.post(TOKEN_URL, json=token_answer("A2", refresh="R1"))
    mocked.get(TABLE_URL, json={"result": []})
    session, _ = password_session(clock)
    session.get(TABLE_URL)
    clock.now += 1799 - 61
    session.get(TABLE_URL)
    clock.now += 2
    session.get(TABLE_URL)
    assert api_calls(mocked) == [("GET", "Bearer A1")] * 2 + [("GET", "Bearer A2")]
    refresh = token_calls(mocked)[1]
    assert refresh == {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": "R1",
    }


def test_a_short_lifetime_is_refreshed_half_way(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1", expires_in=100))
    mocked.post(TOKEN_URL, json=token_answer("A2", expires_in=100))
    mocked.get(TABLE_URL, json={"result": []})
    session, _ = password_session(clock)
    session.get(TABLE_URL)
    clock.now += 49
    session.get(TABLE_URL)
    clock.now += 1
    session.get(TABLE_URL)
    assert [token for _, token in api_calls(mocked)] == ["Bearer A1", "Bearer A1", "Bearer A2"]


def test_a_read_refused_with_401_is_sent_once_more_with_a_new_token(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1"))
    mocked.post(TOKEN_URL, json=token_answer("A2"))
    mocked.get(TABLE_URL, status=401, json={"error": {"message": "User Not Authenticated"}})
    mocked.get(TABLE_URL, json={"result": [{"sys_id": "x"}]})
    session, _ = password_session(clock)
    response = session.get(TABLE_URL, params={"sysparm_limit": "1"})
    assert response.status_code == 200
    assert response.json() == {"result": [{"sys_id": "x"}]}
    assert [r.status_code for r in response.history] == [401]
    assert api_calls(mocked) == [("GET", "Bearer A1"), ("GET", "Bearer A2")]
    assert mocked.calls[-1].request.url == f"{TABLE_URL}?sysparm_limit=1"
    assert [call["grant_type"] for call in token_calls(mocked)] == ["password", "refresh_token"]


def test_a_read_refused_twice_gives_up_with_the_401(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1"))
    mocked.post(TOKEN_URL, json=token_answer("A2"))
    mocked.get(TABLE_URL, status=401, json={})
    session, _ = password_session(clock)
    assert session.get(TABLE_URL).status_code == 401
    assert len(api_calls(mocked)) == 2
    assert len(token_calls(mocked)) == 2


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_a_write_refused_with_401_is_never_sent_twice(
    mocked: responses.RequestsMock, clock: Clock, method: str
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1"))
    mocked.post(TOKEN_URL, json=token_answer("A2"))
    mocked.add(method, f"{TABLE_URL}/abc", status=401, json={})
    mocked.add(method, f"{TABLE_URL}/abc", status=200, json={"result": {}})
    session, _ = password_session(clock)
    with pytest.raises(WriteUnauthorized) as raised:
        session.request(method, f"{TABLE_URL}/abc", params={"q": "1"}, json={"state": "x"})
    assert api_calls(mocked) == [(method, "Bearer A1")]
    assert raised.value.method == method
    assert raised.value.path == "/api/now/table/ecc_agent_issue/abc"
    assert str(raised.value).startswith(
        f"the instance answered 401 to {method} /api/now/table/ecc_agent_issue/abc "
    )
    assert isinstance(raised.value, AuthError)
    # The next request goes out with a new token, got before it is sent.
    assert session.request(method, f"{TABLE_URL}/abc").status_code == 200
    assert api_calls(mocked) == [(method, "Bearer A1"), (method, "Bearer A2")]


def test_a_refused_refresh_token_falls_back_to_the_password_grant(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1", refresh="R1"))
    mocked.post(TOKEN_URL, status=401, json=ACCESS_DENIED)
    mocked.post(TOKEN_URL, json=token_answer("A3", refresh="R3"))
    mocked.get(TABLE_URL, json={"result": []})
    session, _ = password_session(clock)
    session.get(TABLE_URL)
    clock.now += 1799
    session.get(TABLE_URL)
    grants = [call["grant_type"] for call in token_calls(mocked)]
    assert grants == ["password", "refresh_token", "password"]
    assert api_calls(mocked)[-1] == ("GET", "Bearer A3")


@pytest.mark.parametrize(
    ("make", "grant", "causes"),
    [
        (
            lambda s: OAuthPassword(INSTANCE, CLIENT_ID, CLIENT_SECRET, USER, PASSWORD, session=s),
            "password",
            ["client secret", "user password", "locked-out", "grant disabled"],
        ),
        (
            lambda s: OAuthClientCredentials(INSTANCE, CLIENT_ID, CLIENT_SECRET, session=s),
            "client credentials",
            ["client secret", "application user", "grant not enabled"],
        ),
    ],
)
def test_access_denied_is_one_line_listing_the_likely_causes(
    mocked: responses.RequestsMock,
    make: Callable[[requests.Session], OAuth],
    grant: str,
    causes: list[str],
) -> None:
    mocked.post(TOKEN_URL, status=401, json=ACCESS_DENIED)
    session = requests.Session()
    session.auth = make(session)
    with pytest.raises(TokenRefused) as raised:
        session.get(TABLE_URL)
    message = str(raised.value)
    assert message.startswith(
        f"the instance refused the OAuth {grant} grant for client {CLIENT_ID} "
        "(HTTP 401 access_denied); likely causes: "
    )
    assert all(cause in message for cause in causes), message
    assert "\n" not in message
    assert not any(secret in message for secret in SECRETS)
    assert raised.value.status == 401
    assert not api_calls(mocked)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (503, {"error": "down"}, "/oauth_token.do answered HTTP 503 to the OAuth password grant"),
        (200, "<html>hibernating</html>", "/oauth_token.do answered 200 without a usable token"),
        (200, {"token_type": "Bearer"}, "/oauth_token.do answered 200 without a usable token"),
        (200, {"access_token": "A", "expires_in": "soon"}, "/oauth_token.do answered a bad"),
    ],
)
def test_an_unusable_token_answer_is_a_typed_error(
    mocked: responses.RequestsMock, clock: Clock, status: int, body: Any, message: str
) -> None:
    if isinstance(body, str):
        mocked.post(TOKEN_URL, status=status, body=body, content_type="text/html")
    else:
        mocked.post(TOKEN_URL, status=status, json=body)
    session, _ = password_session(clock)
    with pytest.raises(TokenEndpointError, match=message):
        session.get(TABLE_URL)


# -- the client-credentials grant ------------------------------------------------------------


def test_client_credentials_ask_again_instead_of_refreshing(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    answer = {"access_token": "C1", "scope": "", "token_type": "Bearer", "expires_in": 1799}
    mocked.post(TOKEN_URL, json=answer)
    mocked.post(TOKEN_URL, json={**answer, "access_token": "C2"})
    mocked.get(TABLE_URL, json={"result": []})
    session = requests.Session()
    auth = OAuthClientCredentials(INSTANCE, CLIENT_ID, CLIENT_SECRET, session=session, clock=clock)
    session.auth = auth
    session.get(TABLE_URL)
    clock.now += 1740
    session.get(TABLE_URL)
    expected = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    expected["client_secret"] = CLIENT_SECRET
    assert token_calls(mocked) == [expected, expected]
    assert [token for _, token in api_calls(mocked)] == ["Bearer C1", "Bearer C2"]
    assert auth.method == "oauth-client-credentials"


# -- API keys and Basic -------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "X-Custom-Key"])
def test_an_api_key_goes_in_its_header(mocked: responses.RequestsMock, header: str | None) -> None:
    mocked.get(TABLE_URL, json={"result": []})
    auth = ApiKey(API_KEY) if header is None else ApiKey(API_KEY, header)
    requests.get(TABLE_URL, auth=auth)
    sent = mocked.calls[0].request.headers
    assert sent[header or "x-sn-apikey"] == API_KEY
    assert "Authorization" not in sent
    assert auth.method == "api-key"


@pytest.mark.parametrize("header", ["", "  ", "bad:name"])
def test_an_api_key_header_must_be_a_header_name(header: str) -> None:
    with pytest.raises(ValueError, match="not a header name"):
        ApiKey(API_KEY, header)


def test_basic_auth(mocked: responses.RequestsMock) -> None:
    mocked.get(TABLE_URL, json={"result": []})
    requests.get(TABLE_URL, auth=Basic(USER, PASSWORD))
    assert mocked.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert Basic.method == "basic"


def test_no_secret_in_any_repr(clock: Clock) -> None:
    objects: list[object] = [
        Basic(USER, PASSWORD),
        ApiKey(API_KEY),
        OAuthPassword(INSTANCE, CLIENT_ID, CLIENT_SECRET, USER, PASSWORD),
        OAuthClientCredentials(INSTANCE, CLIENT_ID, CLIENT_SECRET),
    ]
    for thing in objects:
        assert not any(secret in repr(thing) for secret in SECRETS), repr(thing)


# -- the token cache ----------------------------------------------------------------------


def test_a_cached_token_serves_the_next_run(
    mocked: responses.RequestsMock, clock: Clock, tmp_path: Path
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1", refresh="R1"))
    mocked.post(TOKEN_URL, json=token_answer("A2", refresh="R1"))
    mocked.get(TABLE_URL, json={"result": []})
    cache = TokenCache(tmp_path / "tokens.json")
    first, first_auth = password_session(clock, cache=cache)
    first.get(TABLE_URL)
    second, second_auth = password_session(clock, cache=TokenCache(cache.path))
    second.get(TABLE_URL)
    assert (first_auth.token_requests, second_auth.token_requests) == (1, 0)
    assert second_auth.warnings == []
    # A run after the token expired refreshes it with the cached refresh token.
    clock.now += 3600
    third, _ = password_session(clock, cache=TokenCache(cache.path))
    third.get(TABLE_URL)
    assert token_calls(mocked)[-1]["refresh_token"] == "R1"
    assert api_calls(mocked)[-1] == ("GET", "Bearer A2")
    key = CacheKey(INSTANCE, CLIENT_ID, USER)
    assert TokenCache(cache.path).load(key)[0] == Token("A2", clock.now + 1799, 1799.0, "R1")


def test_a_bad_cache_is_reported_and_replaced(
    mocked: responses.RequestsMock, clock: Clock, tmp_path: Path
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("A1"))
    mocked.get(TABLE_URL, json={"result": []})
    path = tmp_path / "tokens.json"
    path.write_text("{corrupt")
    path.chmod(0o600)
    session, auth = password_session(clock, cache=TokenCache(path))
    session.get(TABLE_URL)
    assert auth.warnings == [f"ignoring the token cache {path}: it is corrupt"]
    assert json.loads(path.read_text())["format"] == 1


# -- against the emulator, over HTTPS ------------------------------------------------------------

EMU_CLIENT = "emu-client"
EMU_SECRET = "emu-Cl1ent-secret"
EMU_PASSWORD = "emu-Us3r-password"
EMU_KEY = "emu-Api-K3y"


def emulator_scenario() -> dict[str, Any]:
    return {
        "tables": {"ecc_agent_issue": [{"sys_id": "i1", "state": "new", "message": "m"}]},
        "users": {
            USER: {"password": EMU_PASSWORD},
            "app.user": {"password": "unused-Passw0rd", "certificate": CLIENT_COMMON_NAME},
        },
        "auth": {
            "api_keys": {EMU_KEY: USER},
            "oauth": {
                "clients": {
                    EMU_CLIENT: {
                        "secret": EMU_SECRET,
                        "grants": ["password", "refresh_token", "client_credentials"],
                        "application_user": "app.user",
                    }
                }
            },
        },
    }


@pytest.fixture
def make_https(tls_files: TlsFiles) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(client_cert: str = "none") -> Emulator:
        tls = TlsConfig(tls_files.server_cert, tls_files.server_key, tls_files.ca_file, client_cert)
        started.append(Emulator(Scenario.from_dict(emulator_scenario()), tls=tls).start())
        return started[-1]

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def https(make_https: Callable[..., Emulator]) -> Emulator:
    return make_https()


def tls_session(tls_files: TlsFiles, cert: bool = False) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the test CA, not REQUESTS_CA_BUNDLE
    session.verify = str(tls_files.ca_file)
    if cert:
        session.cert = (str(tls_files.client_cert), str(tls_files.client_key))
    return session


def make_auth(method: str, emulator: Emulator, session: requests.Session, **kw: Any) -> Any:
    if method == "basic":
        return Basic(USER, EMU_PASSWORD)
    if method == "api-key":
        return ApiKey(EMU_KEY)
    if method == "oauth-password":
        return OAuthPassword(
            emulator.url, EMU_CLIENT, EMU_SECRET, USER, EMU_PASSWORD, session=session, **kw
        )
    return OAuthClientCredentials(emulator.url, EMU_CLIENT, EMU_SECRET, session=session, **kw)


def served(emulator: Emulator) -> list[tuple[str, str, int | None, str | None]]:
    return [(e.method, e.path, e.status, e.user) for e in emulator.log]


ISSUES = "/api/now/table/ecc_agent_issue"


@pytest.mark.parametrize(
    ("method", "user"),
    [
        ("basic", USER),
        ("api-key", USER),
        ("oauth-password", USER),
        ("oauth-client-credentials", "app.user"),
    ],
)
def test_each_method_logs_in_over_https(
    https: Emulator, tls_files: TlsFiles, method: str, user: str
) -> None:
    session = tls_session(tls_files)
    session.auth = make_auth(method, https, session)
    response = session.get(f"{https.url}{ISSUES}")
    assert response.status_code == 200
    assert response.json()["result"][0]["sys_id"] == "i1"
    assert https.log[-1].user == user


def test_mutual_tls_logs_in_with_the_certificate_alone(
    make_https: Callable[..., Emulator], tls_files: TlsFiles
) -> None:
    emulator = make_https("optional")
    response = tls_session(tls_files, cert=True).get(f"{emulator.url}{ISSUES}")
    assert response.status_code == 200
    assert emulator.log[-1].user == "app.user"


def test_oauth_through_a_load_balancer_demanding_a_client_certificate(
    make_https: Callable[..., Emulator], tls_files: TlsFiles
) -> None:
    emulator = make_https("required")
    session = tls_session(tls_files, cert=True)
    session.auth = make_auth("oauth-password", emulator, session)
    assert session.get(f"{emulator.url}{ISSUES}").status_code == 200
    bare = tls_session(tls_files)
    bare.auth = make_auth("oauth-password", emulator, bare)
    with pytest.raises(requests.exceptions.ConnectionError):
        bare.get(f"{emulator.url}{ISSUES}")


def test_a_token_expiring_mid_run_is_refreshed_and_the_read_sent_again(
    https: Emulator, tls_files: TlsFiles
) -> None:
    session = tls_session(tls_files)
    session.auth = make_auth("oauth-password", https, session)
    session.get(f"{https.url}{ISSUES}")
    https.oauth.expire_access_tokens()
    https.clear_log()
    assert session.get(f"{https.url}{ISSUES}").status_code == 200
    assert served(https) == [
        ("GET", ISSUES, 401, None),
        ("POST", "/oauth_token.do", 200, USER),
        ("GET", ISSUES, 200, USER),
    ]
    assert https.oauth.issued["refresh_token"] == 1


def test_a_token_expiring_mid_run_never_duplicates_a_write(
    https: Emulator, tls_files: TlsFiles
) -> None:
    session = tls_session(tls_files)
    session.auth = make_auth("oauth-client-credentials", https, session)
    target = f"{https.url}{ISSUES}"
    assert session.post(target, json={"message": "first"}).status_code == 201
    https.oauth.expire_access_tokens()
    with pytest.raises(WriteUnauthorized):
        session.post(target, json={"message": "second"})
    assert [row["message"] for row in https.rows("ecc_agent_issue")] == ["m", "first"]
    # The next write gets a new token first and goes through, once.
    assert session.post(target, json={"message": "third"}).status_code == 201
    assert [row["message"] for row in https.rows("ecc_agent_issue")] == ["m", "first", "third"]
    posts = [(m, p, s) for m, p, s, _ in served(https) if p == ISSUES]
    assert posts == [("POST", ISSUES, 201), ("POST", ISSUES, 401), ("POST", ISSUES, 201)]


def test_a_token_near_expiry_is_replaced_before_a_write(
    https: Emulator, tls_files: TlsFiles
) -> None:
    clock = Clock()
    session = tls_session(tls_files)
    session.auth = make_auth("oauth-password", https, session, clock=clock)
    session.get(f"{https.url}{ISSUES}")
    clock.now += 1799 - 59
    assert session.patch(f"{https.url}{ISSUES}/i1", json={"state": "x"}).status_code == 200
    statuses = [(m, p, s) for m, p, s, _ in served(https)]
    assert statuses == [
        ("POST", "/oauth_token.do", 200),
        ("GET", ISSUES, 200),
        ("POST", "/oauth_token.do", 200),
        ("PATCH", f"{ISSUES}/i1", 200),
    ]
    assert https.oauth.issued == {"password": 1, "refresh_token": 1, "client_credentials": 0}


def test_a_revoked_refresh_token_with_the_password_grant_off_is_one_line(
    https: Emulator, tls_files: TlsFiles
) -> None:
    session = tls_session(tls_files)
    session.auth = make_auth("oauth-password", https, session)
    session.get(f"{https.url}{ISSUES}")
    https.oauth.revoke_refresh_tokens()
    https.oauth.expire_access_tokens()
    https.oauth.disabled_grants = frozenset({"password"})
    with pytest.raises(TokenRefused) as raised:
        session.get(f"{https.url}{ISSUES}")
    assert raised.value.grant == "password"
    assert "\n" not in str(raised.value)
    assert not any(s in str(raised.value) for s in (EMU_SECRET, EMU_PASSWORD))


def test_a_revoked_refresh_token_falls_back_to_the_password(
    https: Emulator, tls_files: TlsFiles
) -> None:
    session = tls_session(tls_files)
    session.auth = make_auth("oauth-password", https, session)
    session.get(f"{https.url}{ISSUES}")
    https.oauth.revoke_refresh_tokens()
    https.oauth.expire_access_tokens()
    assert session.get(f"{https.url}{ISSUES}").status_code == 200
    assert https.oauth.issued == {"password": 2, "refresh_token": 0, "client_credentials": 0}


def test_the_cache_saves_a_token_request_per_run(
    https: Emulator, tls_files: TlsFiles, tmp_path: Path
) -> None:
    cache_path = tmp_path / "state" / "oauth-tokens.json"
    for _ in range(3):
        session = tls_session(tls_files)
        session.auth = make_auth("oauth-password", https, session, cache=TokenCache(cache_path))
        assert session.get(f"{https.url}{ISSUES}").status_code == 200
    assert https.oauth.issued["password"] == 1
    assert oct(cache_path.stat().st_mode & 0o777) == "0o600"
    assert EMU_SECRET not in cache_path.read_text() and EMU_PASSWORD not in cache_path.read_text()


def test_a_tls_verification_failure_reaches_the_token_request(
    https: Emulator, tls_files: TlsFiles
) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tls_files.other_ca_file)
    session.auth = make_auth("oauth-password", https, session)
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        session.get(f"{https.url}{ISSUES}")


def test_without_a_session_tokens_come_through_a_plain_one(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    answer = {"access_token": "C1", "scope": "", "token_type": "Bearer", "expires_in": 1799}
    mocked.post(TOKEN_URL, json=answer)
    mocked.get(TABLE_URL, json={"result": []})
    auth = OAuthClientCredentials(INSTANCE, CLIENT_ID, CLIENT_SECRET, clock=clock)
    assert requests.get(TABLE_URL, auth=auth).status_code == 200
    assert api_calls(mocked) == [("GET", "Bearer C1")]
