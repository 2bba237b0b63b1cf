"""OAuth, API keys, access policies and HTTPS with client certificates, with plain requests."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from emulator_data import PASSWORD, base_scenario
from fixtures.tls import CLIENT_COMMON_NAME, TlsFiles

from snowcheck.emulator import Emulator, Scenario, ScenarioError, TlsConfig

CLIENT_ID = "snowcheck-client-0001"
CLIENT_SECRET = "client-S3cret-9931"
API_KEY = "now_apikey_4b1d6c0e8f"
ACCESS_DENIED = {"error_description": "access_denied", "error": "server_error"}
BASIC = 'BASIC realm="Service-now"'
BEARER = 'BEARER realm="Service-now"'
APIKEY = 'APIKEY realm="Service-now"'
FORM = "application/x-www-form-urlencoded"


def auth_scenario(**auth: Any) -> dict[str, Any]:
    """The base scenario with an OAuth client (every grant; acting as admin) and an API key."""
    data = base_scenario()
    data["auth"] = {
        "api_keys": {API_KEY: "reader"},
        "oauth": {
            "clients": {
                CLIENT_ID: {
                    "secret": CLIENT_SECRET,
                    "grants": ["password", "refresh_token", "client_credentials"],
                    "application_user": "admin",
                }
            }
        },
        **auth,
    }
    return data


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(auth_scenario())


def token(emulator: Emulator, **form: str) -> requests.Response:
    """POST /oauth_token.do, form-encoded, as every client does."""
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}
    return requests.post(f"{emulator.url}/oauth_token.do", data=body, timeout=5)


def password_grant(emulator: Emulator, user: str = "admin", password: str = PASSWORD) -> Any:
    response = token(emulator, grant_type="password", username=user, password=password)
    assert response.status_code == 200, response.text
    return response.json()


def get_users(emulator: Emulator, **headers: str) -> requests.Response:
    return requests.get(f"{emulator.url}/api/now/table/sys_user", headers=headers, timeout=5)


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def challenges(response: requests.Response) -> list[str]:
    """Every WWW-Authenticate header, separately (requests joins them with commas)."""
    return list(response.raw.headers.getlist("WWW-Authenticate"))


# -- /oauth_token.do ----------------------------------------------------------------------------


def test_password_grant_answers_like_an_instance_and_the_token_logs_in(emu: Emulator) -> None:
    answer = password_grant(emu)
    assert set(answer) == {"scope", "token_type", "expires_in", "refresh_token", "access_token"}
    assert answer["scope"] == "useraccount"
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 1799
    assert len(answer["access_token"]) == 86 and len(answer["refresh_token"]) == 86
    response = get_users(emu, **bearer(answer["access_token"]))
    assert response.status_code == 200
    assert [entry.user for entry in emu.log] == ["admin", "admin"]
    assert [entry.path for entry in emu.log] == ["/oauth_token.do", "/api/now/table/sys_user"]


def test_asking_again_while_valid_returns_the_same_token(emu: Emulator) -> None:
    first, second = password_grant(emu), password_grant(emu)
    assert second["access_token"] == first["access_token"]
    assert second["refresh_token"] == first["refresh_token"]
    assert password_grant(emu, "reader", "reader-pw")["access_token"] != first["access_token"]


def test_refresh_grant_gives_a_new_access_token_and_keeps_the_refresh_token(
    emu: Emulator,
) -> None:
    first = password_grant(emu)
    response = token(emu, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert response.status_code == 200
    refreshed = response.json()
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] == first["refresh_token"]
    assert refreshed["token_type"] == "Bearer"
    assert get_users(emu, **bearer(refreshed["access_token"])).status_code == 200


def test_client_credentials_grant_acts_as_the_application_user(emu: Emulator) -> None:
    response = token(emu, grant_type="client_credentials")
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"access_token", "scope", "token_type", "expires_in"}
    assert answer["scope"] == ""
    assert (
        token(emu, grant_type="client_credentials").json()["access_token"]
        == (answer["access_token"])
    )
    assert get_users(emu, **bearer(answer["access_token"])).status_code == 200
    assert emu.log[-1].user == "admin"


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "admin", "password": "wrong"},
        {"grant_type": "password", "username": "nobody", "password": PASSWORD},
        {"grant_type": "password", "client_secret": "wrong", "username": "admin"},
        {"grant_type": "password", "client_id": "unknown", "username": "admin"},
        {"grant_type": "refresh_token", "refresh_token": "not-issued"},
        {"grant_type": "implicit"},
        {},
    ],
)
def test_every_refusal_is_the_same_401(emu: Emulator, form: dict[str, str]) -> None:
    response = token(emu, **form)
    assert response.status_code == 401
    assert response.json() == ACCESS_DENIED


def test_a_json_body_is_refused(emu: Emulator) -> None:
    body = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    body["client_secret"] = CLIENT_SECRET
    response = requests.post(f"{emu.url}/oauth_token.do", json=body, timeout=5)
    assert response.status_code == 401
    assert response.json() == ACCESS_DENIED


def test_grants_a_client_is_not_given_are_refused(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(
        auth_scenario(oauth={"clients": {CLIENT_ID: {"secret": CLIENT_SECRET}}})
    )
    assert password_grant(emulator)["access_token"]
    # No client-credentials grant and no application user: refused like any other failure.
    response = token(emulator, grant_type="client_credentials")
    assert (response.status_code, response.json()) == (401, ACCESS_DENIED)


def test_client_credentials_without_an_application_user_is_refused(
    make_emulator: Callable[..., Emulator],
) -> None:
    client = {"secret": CLIENT_SECRET, "grants": ["client_credentials"]}
    emulator = make_emulator(auth_scenario(oauth={"clients": {CLIENT_ID: client}}))
    response = token(emulator, grant_type="client_credentials")
    assert (response.status_code, response.json()) == (401, ACCESS_DENIED)


# -- lifetimes, expiry and revocation ------------------------------------------------------------


def test_a_short_lifetime_expires_for_real(emu: Emulator) -> None:
    control = requests.post(f"{emu.url}/__emulator/oauth", json={"access_lifetime": 1}, timeout=5)
    assert control.json()["access_lifetime"] == 1
    answer = password_grant(emu)
    assert answer["expires_in"] == 0
    assert get_users(emu, **bearer(answer["access_token"])).status_code == 200
    time.sleep(1.1)
    response = get_users(emu, **bearer(answer["access_token"]))
    assert response.status_code == 401
    assert challenges(response) == [BASIC]
    assert password_grant(emu)["access_token"] != answer["access_token"]


def test_expired_tokens_are_refused_and_replaced(emu: Emulator) -> None:
    answer = password_grant(emu)
    state = requests.post(
        f"{emu.url}/__emulator/oauth", json={"expire_access_tokens": True}, timeout=5
    ).json()
    assert state["valid_access_tokens"] == 0
    assert get_users(emu, **bearer(answer["access_token"])).status_code == 401
    response = token(emu, grant_type="refresh_token", refresh_token=answer["refresh_token"])
    assert response.status_code == 200
    assert get_users(emu, **bearer(response.json()["access_token"])).status_code == 200


def test_a_revoked_refresh_token_is_refused(emu: Emulator) -> None:
    answer = password_grant(emu)
    requests.post(f"{emu.url}/__emulator/oauth", json={"revoke_refresh_tokens": True}, timeout=5)
    response = token(emu, grant_type="refresh_token", refresh_token=answer["refresh_token"])
    assert (response.status_code, response.json()) == (401, ACCESS_DENIED)
    # The access token lives on until it expires; a new password grant starts afresh.
    assert get_users(emu, **bearer(answer["access_token"])).status_code == 200
    assert password_grant(emu)["refresh_token"] != answer["refresh_token"]


def test_a_grant_switched_off_on_the_instance_is_refused(emu: Emulator) -> None:
    control = requests.post(
        f"{emu.url}/__emulator/oauth", json={"disabled_grants": ["password"]}, timeout=5
    )
    assert control.json()["disabled_grants"] == ["password"]
    response = token(emu, grant_type="password", username="admin", password=PASSWORD)
    assert (response.status_code, response.json()) == (401, ACCESS_DENIED)
    assert token(emu, grant_type="client_credentials").status_code == 200


def test_the_control_endpoint_counts_tokens_and_never_shows_them(emu: Emulator) -> None:
    answer = password_grant(emu)
    token(emu, grant_type="client_credentials")
    text = requests.get(f"{emu.url}/__emulator/oauth", timeout=5).text
    assert answer["access_token"] not in text and answer["refresh_token"] not in text
    state = requests.get(f"{emu.url}/__emulator/oauth", timeout=5).json()
    assert state["issued"] == {"password": 1, "refresh_token": 0, "client_credentials": 1}
    assert state["disabled_grants"] == []
    assert state["valid_access_tokens"] == 2
    assert state["valid_refresh_tokens"] == 1
    bad = requests.post(f"{emu.url}/__emulator/oauth", json={"access_lifetime": -1}, timeout=5)
    assert bad.status_code == 400


# -- API keys -------------------------------------------------------------------------------


def test_an_api_key_logs_in_as_its_user(emu: Emulator) -> None:
    assert get_users(emu, **{"x-sn-apikey": API_KEY}).status_code == 200
    assert emu.log[-1].user == "reader"
    assert get_users(emu, **{"x-sn-apikey": "wrong"}).status_code == 401


def test_the_api_key_header_name_is_configurable(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(auth_scenario(api_key_header="X-Custom-Key"))
    assert get_users(emulator, **{"X-Custom-Key": API_KEY}).status_code == 200
    assert get_users(emulator, **{"x-sn-apikey": API_KEY}).status_code == 401


# -- which methods a user or a table accepts ------------------------------------------------


def test_without_a_policy_only_basic_is_advertised(emu: Emulator) -> None:
    response = get_users(emu, Authorization="Bearer unknown")
    assert response.status_code == 401
    assert challenges(response) == [BASIC]


def test_a_user_limited_to_oauth_cannot_use_basic(make_emulator: Callable[..., Emulator]) -> None:
    data = auth_scenario()
    data["users"]["admin"]["auth"] = ["oauth"]
    emulator = make_emulator(data)
    response = get_users(emulator, Authorization=basic("admin", PASSWORD))
    assert response.status_code == 401
    assert challenges(response) == [BEARER]
    assert get_users(emulator, **bearer(password_grant(emulator)["access_token"])).ok


def test_a_table_policy_lists_every_scheme_it_accepts(
    make_emulator: Callable[..., Emulator],
) -> None:
    emulator = make_emulator(auth_scenario(tables={"sys_user": ["api-key", "oauth"]}))
    for headers in ({}, {"Authorization": basic("admin", PASSWORD)}):
        response = get_users(emulator, **headers)
        assert response.status_code == 401
        assert challenges(response) == [BEARER, APIKEY]
        assert response.headers["WWW-Authenticate"] == f"{BEARER}, {APIKEY}"
    assert get_users(emulator, **{"x-sn-apikey": API_KEY}).status_code == 200
    # Other tables are not covered by the policy.
    other = requests.get(
        f"{emulator.url}/api/now/table/ecc_agent", auth=("admin", PASSWORD), timeout=5
    )
    assert other.status_code == 200


def test_a_table_policy_holds_inside_a_batch(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(auth_scenario(tables={"sys_user": ["oauth"]}))
    items = [
        {"id": "1", "method": "GET", "url": "/api/now/table/sys_user"},
        {"id": "2", "method": "GET", "url": "/api/now/table/ecc_agent"},
    ]
    response = requests.post(
        f"{emulator.url}/api/now/v1/batch",
        json={"batch_request_id": "b", "rest_requests": items},
        auth=("admin", PASSWORD),
        timeout=5,
    )
    statuses = [item["status_code"] for item in response.json()["serviced_requests"]]
    assert statuses == [401, 200]


@pytest.mark.parametrize(
    "auth",
    [
        {"tables": {"sys_user": ["kerberos"]}},
        {"oauth": {"clients": {"c": {"secret": "s", "grants": ["implicit"]}}}},
        {"oauth": {"access_lifetime": 0}},
        {"api_key_header": "bad:name"},
        {"unknown": 1},
    ],
)
def test_bad_auth_sections_are_scenario_errors(auth: dict[str, Any]) -> None:
    data = base_scenario()
    data["auth"] = auth
    with pytest.raises(ScenarioError):
        Scenario.from_dict(data)


def test_a_bad_user_method_is_a_scenario_error() -> None:
    data = base_scenario()
    data["users"]["admin"]["auth"] = ["basic", "saml"]
    with pytest.raises(ScenarioError, match=r"users\.admin\.auth"):
        Scenario.from_dict(data)


# -- HTTPS ------------------------------------------------------------------------------------


@pytest.fixture
def make_https(tls_files: TlsFiles) -> Iterator[Callable[..., Emulator]]:
    """Start HTTPS emulators (client certificates: none, optional or required)."""
    started: list[Emulator] = []

    def make(client_cert: str = "none", data: dict[str, Any] | None = None) -> Emulator:
        tls = TlsConfig(
            tls_files.server_cert,
            tls_files.server_key,
            tls_files.ca_file if client_cert != "none" else None,
            client_cert,
        )
        scenario = Scenario.from_dict(data if data is not None else auth_scenario())
        started.append(Emulator(scenario, tls=tls).start())
        return started[-1]

    yield make
    for emulator in started:
        emulator.stop()


def test_https_with_the_test_ca(make_https: Callable[..., Emulator], tls_files: TlsFiles) -> None:
    emulator = make_https()
    assert emulator.url.startswith("https://127.0.0.1:")
    with requests.Session() as session:
        # Without this, REQUESTS_CA_BUNDLE from the environment would win over session.verify.
        session.trust_env = False
        session.verify = str(tls_files.ca_file)
        answer = session.post(
            f"{emulator.url}/oauth_token.do",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID},
            headers={"Content-Type": FORM},
            timeout=5,
        )
        assert answer.status_code == 401  # no secret
        response = session.get(f"{emulator.url}/api/now/table/ecc_agent", auth=("admin", PASSWORD))
        assert response.status_code == 200
        assert response.json()["result"]
        link = session.get(
            f"{emulator.url}/api/now/table/ecc_agent_config", auth=("admin", PASSWORD)
        ).json()["result"][0]["ecc_agent"]["link"]
        assert link.startswith(f"{emulator.url}/api/now/table/ecc_agent/")


def test_an_untrusted_certificate_fails_verification(
    make_https: Callable[..., Emulator], tls_files: TlsFiles
) -> None:
    emulator = make_https()
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(
            f"{emulator.url}/api/now/table/ecc_agent",
            verify=str(tls_files.other_ca_file),
            timeout=5,
        )
    # The emulator carries on serving after a failed handshake.
    ok = requests.get(
        f"{emulator.url}/api/now/table/ecc_agent",
        auth=("admin", PASSWORD),
        verify=str(tls_files.ca_file),
        timeout=5,
    )
    assert ok.status_code == 200


def test_a_required_client_certificate(
    make_https: Callable[..., Emulator], tls_files: TlsFiles
) -> None:
    emulator = make_https("required")

    def get(cert: tuple[str, str] | None) -> requests.Response:
        return requests.get(
            f"{emulator.url}/api/now/table/ecc_agent",
            auth=("admin", PASSWORD),
            verify=str(tls_files.ca_file),
            cert=cert,
            timeout=5,
        )

    with pytest.raises(requests.exceptions.ConnectionError):
        get(None)
    with pytest.raises(requests.exceptions.ConnectionError):
        get((str(tls_files.stranger_cert), str(tls_files.stranger_key)))
    assert get((str(tls_files.client_cert), str(tls_files.client_key))).status_code == 200
    # Basic auth still decides who the caller is: the certificate maps to no user here.
    assert emulator.log[-1].user == "admin"


def test_a_client_certificate_mapped_to_a_user_logs_in(
    make_https: Callable[..., Emulator], tls_files: TlsFiles
) -> None:
    data = auth_scenario(tables={"sys_user": ["mtls"]})
    data["users"]["reader"]["certificate"] = CLIENT_COMMON_NAME
    emulator = make_https("optional", data)
    target = f"{emulator.url}/api/now/table/sys_user"
    cert = (str(tls_files.client_cert), str(tls_files.client_key))
    response = requests.get(target, cert=cert, verify=str(tls_files.ca_file), timeout=5)
    assert response.status_code == 200
    assert emulator.log[-1].user == "reader"
    # Without the certificate, or with Basic auth instead, the policy refuses.
    bare = requests.get(target, verify=str(tls_files.ca_file), timeout=5)
    assert bare.status_code == 401
    assert challenges(bare) == ['CERTIFICATE realm="Service-now"']
    with_basic = requests.get(
        target, auth=("admin", PASSWORD), verify=str(tls_files.ca_file), timeout=5
    )
    assert with_basic.status_code == 401
