"""Fault injection: each kind, matching, counts, latency, and the Python and JSON forms."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from snowcheck.emulator import Emulator, Fault, Faults


def users_url(emulator: Emulator) -> str:
    return f"{emulator.url}/api/now/table/sys_user"


def test_429_carries_retry_after_and_rate_limit_headers_then_clears(
    emulator: Emulator, session: requests.Session
) -> None:
    emulator.faults.add(kind="status", status=429, retry_after=7, times=2)
    for _ in range(2):
        response = session.get(users_url(emulator))
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        reset = int(response.headers["X-RateLimit-Reset"])
        assert reset == int(emulator.clock.now().timestamp()) + 7
        assert response.json()["status"] == "failure"
        assert "X-RateLimit-Limit" in response.headers
    assert session.get(users_url(emulator)).status_code == 200
    assert emulator.faults.pending() == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_have_an_error_body(
    emulator: Emulator, session: requests.Session, status: int
) -> None:
    emulator.faults.add("status", status=status)
    response = session.get(users_url(emulator))
    assert response.status_code == status
    error = response.json()
    assert error["status"] == "failure"
    assert error["error"]["message"]


def test_reset_closes_the_connection_without_an_answer(
    emulator: Emulator, session: requests.Session
) -> None:
    emulator.faults.add("reset")
    with pytest.raises(requests.ConnectionError):
        session.get(users_url(emulator))
    assert session.get(users_url(emulator)).status_code == 200
    assert emulator.log[0].status is None
    assert emulator.log[0].fault == "reset"


def test_truncate_sends_half_the_announced_body(
    emulator: Emulator, session: requests.Session
) -> None:
    emulator.faults.add("truncate")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        session.get(users_url(emulator))
    assert session.get(users_url(emulator)).status_code == 200


def test_hibernate_answers_200_with_an_html_page(
    emulator: Emulator, session: requests.Session
) -> None:
    emulator.faults.add("hibernate")
    response = session.get(users_url(emulator))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<title>Instance Hibernating page</title>" in response.text
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_slow_makes_a_client_read_timeout(emulator: Emulator, session: requests.Session) -> None:
    emulator.faults.add("slow", seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        session.get(users_url(emulator), timeout=0.2)


def test_faults_match_method_and_path(emulator: Emulator, session: requests.Session) -> None:
    emulator.faults.add("status", status=503, method="PATCH", path="ecc_agent_issue")
    emulator.faults.add("status", status=500, path="sysparm_offset=10")
    assert session.get(f"{emulator.url}/api/now/table/ecc_agent_issue").status_code == 200
    assert session.patch(f"{emulator.url}/api/now/table/sys_user/u1", json={}).status_code == 200
    patched = session.patch(f"{emulator.url}/api/now/table/ecc_agent_issue/i1", json={})
    assert patched.status_code == 503
    url = f"{emulator.url}/api/now/table/sysevent"
    assert session.get(url, params={"sysparm_offset": "0"}).status_code == 200
    assert session.get(url, params={"sysparm_offset": "10"}).status_code == 500


def test_faults_apply_before_authentication(emulator: Emulator) -> None:
    emulator.faults.add("status", status=503)
    assert requests.get(users_url(emulator), timeout=5).status_code == 503


def test_faults_only_touch_the_api(emulator: Emulator) -> None:
    emulator.faults.add("status", status=503)
    assert requests.get(f"{emulator.url}/__emulator/log", timeout=5).status_code == 200
    assert len(emulator.faults.pending()) == 1


def test_latency_delays_every_api_request(emulator: Emulator, session: requests.Session) -> None:
    emulator.latency = 0.05
    started = time.perf_counter()
    for _ in range(3):
        session.get(users_url(emulator))
    assert time.perf_counter() - started >= 0.15
    emulator.latency = 0


def test_faults_from_the_scenario(make_emulator: Any) -> None:
    emulator = make_emulator({"faults": [{"kind": "status", "status": 502, "times": 1}]})
    response = requests.get(users_url(emulator), auth=("admin", "admin"), timeout=5)
    assert response.status_code == 502


def test_json_form_round_trips_and_is_validated() -> None:
    faults = Faults()
    added = faults.load({"faults": [{"kind": "slow", "seconds": 2}], "latency": 0.1})
    assert added == [Fault("slow", seconds=2)]
    assert faults.latency == 0.1
    faults.load({"kind": "status", "status": 429, "retry_after": 3, "times": 2})
    faults.load([{"kind": "reset"}, {"kind": "hibernate", "path": "/sysevent"}])
    assert [Fault.from_dict(f.to_dict()) for f in faults.pending()] == faults.pending()
    assert faults.take("GET", "/api/now/table/sysevent") == Fault("slow", seconds=2)
    faults.clear()
    assert (faults.pending(), faults.latency) == ([], 0.0)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "status", "status": 200},
        {"kind": "slow"},
        {"kind": "reset", "times": 0},
        {"kind": "reset", "colour": "red"},
        {"status": 500},
        {"kind": "reset", "method": 5},
        "reset",
    ],
)
def test_bad_faults_are_refused(spec: object) -> None:
    with pytest.raises(ValueError):
        Faults().load(spec)
