"""The HTTP adapter against `responses` mocks: paging, retries, writes, errors and secrets."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NameResolutionError

from snowcheck.errors import InstanceError, PartialWrite
from snowcheck.plan import Action, Change, Plan
from snowcheck.servicenow import errors
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection
from snowcheck.servicenow.session import Session as _Session
from snowcheck.writeback import WriteBack

SECRET = "s3cret-Pa55word"
TOKEN = base64.b64encode(f"checker:{SECRET}".encode()).decode()
BASE = "https://dev1.service-now.com"
API = f"{BASE}/api/now/table"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
DATE = "Wed, 01 May 2024 11:58:20 GMT"
HIBERNATING = (
    "<html><head><title>Instance Hibernating page</title></head>"
    "<body>Your instance is hibernating.</body></html>"
)


class Sleeps(list[float]):
    """Records the delays asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make(sleeps: Sleeps) -> Callable[..., Instance]:
    def build(page_size: int = 2, base_url: str = BASE, **options: Any) -> Instance:
        connection = Connection(
            base_url=base_url,
            user="checker",
            password=SECRET,
            connect_timeout=4,
            read_timeout=30,
            page_size=page_size,
        )
        options.setdefault("sleep", sleeps)
        options.setdefault("clock", lambda: NOW)
        return Instance(connection, **options)

    return build


def params(call: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True))


def rows(*ids: str) -> list[dict[str, str]]:
    return [{"sys_id": sys_id, "name": f"n{sys_id}"} for sys_id in ids]


def paged(
    pages: dict[int, list[dict[str, str]]], total: int | None, date: str | None = DATE
) -> Callable[[Any], tuple[int, dict[str, str], str]]:
    """A callback answering each sysparm_offset with its page."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        offset = int(dict(parse_qsl(urlsplit(request.url).query))["sysparm_offset"])
        headers = {"Content-Type": "application/json"}
        if total is not None:
            headers["X-Total-Count"] = str(total)
        if date:
            headers["Date"] = date
        return 200, headers, json.dumps({"result": pages.get(offset, [])})

    return answer


# -- reading -------------------------------------------------------------------------------


def test_fetch_pages_by_offset_with_exact_parameters(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    pages = {0: rows("a", "b"), 2: rows("c", "d"), 4: rows("e")}
    mock.add_callback("GET", f"{API}/sys_user_role", callback=paged(pages, 5))
    instance = make()
    seen: list[tuple[str, int, int | None]] = []
    instance.progress = lambda table, count, total: seen.append((table, count, total))

    found = instance.fetch("sys_user_role", "nameINmid_server,soap_script", ["sys_id", "name"])

    assert [row["sys_id"] for row in found] == ["a", "b", "c", "d", "e"]
    assert [params(call)["sysparm_offset"] for call in mock.calls] == ["0", "2", "4"]
    assert params(mock.calls[0]) == {
        "sysparm_query": "nameINmid_server,soap_script^ORDERBYsys_id",
        "sysparm_limit": "2",
        "sysparm_offset": "0",
        "sysparm_display_value": "false",
        "sysparm_exclude_reference_link": "true",
        "sysparm_fields": "sys_id,name",
    }
    assert seen == [("sys_user_role", 2, 5), ("sys_user_role", 4, 5), ("sys_user_role", 5, 5)]
    assert mock.calls[0].request.req_kwargs["timeout"] == (4, 30)
    assert (instance.now, instance.clock_source) == (
        datetime(2024, 5, 1, 11, 58, 20, tzinfo=UTC),
        "instance",
    )
    assert instance.requests_made == 3
    assert instance.bytes_received == sum(len(call.response.content) for call in mock.calls)
    assert instance.bytes_sent == sum(len(call.request.url) for call in mock.calls)


def test_short_acl_page_does_not_stop_the_read_when_the_total_says_more(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    # sysparm_limit applies before ACLs: page 1 lost a row, yet rows remain at offset 2.
    pages = {0: rows("a"), 2: rows("c", "d"), 4: []}
    mock.add_callback("GET", f"{API}/sysevent", callback=paged(pages, 6))
    found = make().fetch("sysevent", "", ["sys_id"])
    assert [row["sys_id"] for row in found] == ["a", "c", "d"]
    assert [params(call)["sysparm_offset"] for call in mock.calls] == ["0", "2", "4"]
    assert params(mock.calls[0])["sysparm_query"] == "ORDERBYsys_id"


def test_without_a_total_a_short_page_ends_the_read(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    mock.add_callback("GET", f"{API}/ecc_agent", callback=paged({0: rows("a", "b")}, None))
    assert len(make().fetch("ecc_agent", "status=Down", ["sys_id"])) == 2
    assert len(mock.calls) == 2  # the full first page needs a second, empty one to end


def test_empty_table_is_one_request(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    mock.add_callback("GET", f"{API}/ecc_agent", callback=paged({}, 0))
    assert make().fetch("ecc_agent", "status=Down", ["sys_id"]) == []
    assert len(mock.calls) == 1


def test_a_table_moving_under_the_read_is_deduplicated_with_a_warning(
    mock: responses.RequestsMock, make: Callable[..., Instance], caplog: pytest.LogCaptureFixture
) -> None:
    totals = iter([4, 5, 5])

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        offset = int(dict(parse_qsl(urlsplit(request.url).query))["sysparm_offset"])
        page = {0: rows("a", "b"), 2: rows("b", "c"), 4: rows("d")}[offset]
        headers = {"X-Total-Count": str(next(totals)), "Content-Type": "application/json"}
        return 200, headers, json.dumps({"result": page})

    mock.add_callback("GET", f"{API}/ecc_agent_issue", callback=answer)
    with caplog.at_level(logging.WARNING, logger="snowcheck.instance"):
        found = make().fetch("ecc_agent_issue", "", ["sys_id"])
    assert [row["sys_id"] for row in found] == ["a", "b", "c", "d"]
    text = caplog.text
    assert "changed while being read" in text and "came back twice" in text


def test_no_date_header_falls_back_to_the_local_clock(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    mock.add_callback("GET", f"{API}/sys_user_role", callback=paged({}, 0, date=None))
    instance = make()
    instance.fetch("sys_user_role", "", ["sys_id"])
    assert (instance.now, instance.clock_source) == (NOW, "local")


def test_http_loopback_instance_goes_without_tls(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    mock.add_callback("GET", "http://127.0.0.1:8080/api/now/table/ecc_agent", callback=paged({}, 0))
    make(base_url="http://127.0.0.1:8080").fetch("ecc_agent", "", ["sys_id"])
    assert mock.calls[0].request.url.startswith("http://127.0.0.1:8080/api/now/table/ecc_agent?")


# -- retries -------------------------------------------------------------------------------


def test_gateway_error_is_retried_with_backoff_then_succeeds(
    mock: responses.RequestsMock, make: Callable[..., Instance], sleeps: Sleeps
) -> None:
    mock.add("GET", f"{API}/ecc_agent", status=503, body="busy")
    mock.add("GET", f"{API}/ecc_agent", status=502, body="busy")
    mock.add("GET", f"{API}/ecc_agent", json={"result": rows("a")}, headers={"X-Total-Count": "1"})
    assert len(make().fetch("ecc_agent", "", ["sys_id"])) == 1
    assert len(mock.calls) == 3
    assert len(sleeps) == 2
    assert 1 <= sleeps[0] <= 2 and 2 <= sleeps[1] <= 3  # exponential, with up to 1 s of jitter


def test_retry_after_is_honoured_and_capped(
    mock: responses.RequestsMock, make: Callable[..., Instance], sleeps: Sleeps
) -> None:
    mock.add("GET", f"{API}/sysevent", status=429, headers={"Retry-After": "7"}, json={})
    mock.add("GET", f"{API}/sysevent", status=429, headers={"Retry-After": "3600"}, json={})
    mock.add("GET", f"{API}/sysevent", json={"result": []}, headers={"X-Total-Count": "0"})
    make().fetch("sysevent", "", ["sys_id"])
    assert sleeps == [7.0, 60.0]


def test_rate_limit_reset_epoch_is_honoured(
    mock: responses.RequestsMock, make: Callable[..., Instance], sleeps: Sleeps
) -> None:
    reset = str(int((NOW + timedelta(seconds=12)).timestamp()))
    mock.add("GET", f"{API}/sysevent", status=429, headers={"X-RateLimit-Reset": reset}, json={})
    mock.add("GET", f"{API}/sysevent", json={"result": []}, headers={"X-Total-Count": "0"})
    make().fetch("sysevent", "", ["sys_id"])
    assert sleeps == [12.0]


def test_retry_after_as_a_date(
    mock: responses.RequestsMock, make: Callable[..., Instance], sleeps: Sleeps
) -> None:
    mock.add(
        "GET",
        f"{API}/sysevent",
        status=503,
        headers={"Retry-After": "Wed, 01 May 2024 12:00:05 GMT"},
        body="",
    )
    mock.add("GET", f"{API}/sysevent", json={"result": []}, headers={"X-Total-Count": "0"})
    make().fetch("sysevent", "", ["sys_id"])
    assert sleeps == [5.0]


def test_connection_errors_and_timeouts_are_retried(
    mock: responses.RequestsMock, make: Callable[..., Instance], sleeps: Sleeps
) -> None:
    mock.add("GET", f"{API}/ecc_agent", body=requests.ConnectionError("connection reset"))
    mock.add("GET", f"{API}/ecc_agent", body=requests.exceptions.ReadTimeout("slow"))
    mock.add("GET", f"{API}/ecc_agent", json={"result": []}, headers={"X-Total-Count": "0"})
    assert make().fetch("ecc_agent", "", ["sys_id"]) == []
    assert len(sleeps) == 2


# -- errors --------------------------------------------------------------------------------


def _dns_error() -> requests.ConnectionError:
    reason = NameResolutionError(
        "dev1.service-now.com",
        None,
        socket.gaierror(-2, "Name or service not known"),  # type: ignore[arg-type]
    )
    return requests.ConnectionError(MaxRetryError(None, "/api", reason))  # type: ignore[arg-type]


def _error_body(message: str, detail: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


ERROR_CASES: list[tuple[str, str, dict[str, Any], int | None, list[str], int]] = [
    # id, table, answer (responses.add kwargs), status, fragments of the message, calls
    (
        "401",
        "sys_user_role",
        {"status": 401, "json": _error_body("User Not Authenticated", "Required to provide Auth")},
        401,
        [
            "authentication as checker failed",
            "dev1.service-now.com",
            "check the user name and password",
        ],
        1,
    ),
    (
        "403 sysevent",
        "sysevent",
        {"status": 403, "json": _error_body("Operation Failed", "ACL Exception")},
        403,
        ["read access to sysevent denied (HTTP 403", "such as admin"],
        1,
    ),
    (
        "403 ecc_agent_config",
        "ecc_agent_config",
        {"status": 403, "json": _error_body("Operation Failed")},
        403,
        [
            "read access to ecc_agent_config denied",
            "such as admin, or a custom role granting it (not mid_server)",
        ],
        1,
    ),
    (
        "404",
        "ecc_agent",
        {"status": 404, "json": _error_body("No Record found", "Record doesn't exist or ACL")},
        404,
        ["ecc_agent could not be read (HTTP 404: No Record found", "ACL"],
        1,
    ),
    (
        "400 invalid table",
        "ecc_agent",
        {"status": 400, "json": _error_body("Invalid table ecc_agent")},
        400,
        ["table ecc_agent does not exist", "Invalid table ecc_agent"],
        1,
    ),
    (
        "429 after retries",
        "sysevent",
        {"status": 429, "json": _error_body("Rate limit exceeded")},
        429,
        ["rate limited by dev1.service-now.com", "after 3 attempts", "Rate limit exceeded"],
        3,
    ),
    (
        "503 after retries",
        "sysevent",
        {"status": 503, "body": "Service Unavailable"},
        503,
        ["dev1.service-now.com is unavailable (HTTP 503) reading sysevent, after 3 attempts"],
        3,
    ),
    (
        "500",
        "sysevent",
        {"status": 500, "json": _error_body("Internal error")},
        500,
        ["failed reading sysevent (HTTP 500: Internal error)"],
        1,
    ),
    (
        "hibernating",
        "sys_user_role",
        {"status": 200, "body": HIBERNATING, "content_type": "text/html"},
        200,
        ["is hibernating", "wake it"],
        1,
    ),
    (
        "other html",
        "sys_user_role",
        {"status": 200, "body": "<html>Sign in</html>", "content_type": "text/html"},
        200,
        ["answered reading sys_user_role with text/html instead of JSON"],
        1,
    ),
    (
        "truncated json",
        "sysevent",
        {"status": 200, "body": '{"result": [{"sys_id": "a"', "content_type": "application/json"},
        200,
        ["malformed or truncated JSON"],
        1,
    ),
    (
        "error in a 200",
        "sysevent",
        {"status": 200, "json": _error_body("Something broke", "details")},
        200,
        ["reported an error reading sysevent", "Something broke: details"],
        1,
    ),
    (
        "result not a list",
        "sysevent",
        {"status": 200, "json": {"result": {"sys_id": "a"}}},
        200,
        ["'result' is not a list of records"],
        1,
    ),
    (
        "read timeout",
        "sysevent",
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        None,
        ["no answer from dev1.service-now.com within 30 s reading sysevent", "read_timeout"],
        3,
    ),
    (
        "connect timeout",
        "sysevent",
        {"body": requests.exceptions.ConnectTimeout("connect timed out")},
        None,
        ["cannot connect to dev1.service-now.com: timed out after 4 s", "after 3 attempts"],
        3,
    ),
    (
        "refused",
        "sysevent",
        {"body": requests.ConnectionError("Connection refused")},
        None,
        ["cannot connect to dev1.service-now.com (after 3 attempts)"],
        3,
    ),
    (
        "dns",
        "sysevent",
        {"body": _dns_error()},
        None,
        ["cannot resolve host dev1.service-now.com", "--instance"],
        1,
    ),
    (
        "tls",
        "sysevent",
        {
            "body": requests.exceptions.SSLError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
            )
        },
        None,
        [
            "TLS connection to dev1.service-now.com failed (certificate verify failed)",
            "--ca-bundle",
            "REQUESTS_CA_BUNDLE",
        ],
        1,
    ),
]


@pytest.mark.parametrize(
    ("table", "answer", "status", "fragments", "calls"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_are_one_line_instance_errors(
    mock: responses.RequestsMock,
    make: Callable[..., Instance],
    caplog: pytest.LogCaptureFixture,
    table: str,
    answer: dict[str, Any],
    status: int | None,
    fragments: list[str],
    calls: int,
) -> None:
    mock.add("GET", f"{API}/{table}", **answer)
    instance = make(attempts=3)
    with caplog.at_level(logging.DEBUG), pytest.raises(InstanceError) as caught:
        instance.fetch(table, "name=x", ["sys_id"])
    error = caught.value
    message = str(error)
    assert isinstance(error, InstanceError) and not isinstance(error, PartialWrite)
    assert (error.table, error.status) == (table, status)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert len(mock.calls) == calls
    _assert_no_secret(message, caplog, instance)


def _assert_no_secret(text: str, caplog: pytest.LogCaptureFixture, instance: Instance) -> None:
    for secret in (SECRET, TOKEN):
        assert secret not in text
        assert secret not in repr(instance)
        for record in caplog.records:
            assert secret not in record.getMessage()


def test_debug_log_names_method_url_and_status_and_no_secret(
    mock: responses.RequestsMock, make: Callable[..., Instance], caplog: pytest.LogCaptureFixture
) -> None:
    mock.add("GET", f"{API}/sysevent", status=503, body="")
    mock.add("GET", f"{API}/sysevent", json={"result": []}, headers={"X-Total-Count": "0"})
    instance = make()
    with caplog.at_level(logging.DEBUG):
        instance.fetch("sysevent", "parm1=x", ["sys_id"])
    mine = [r.getMessage() for r in caplog.records if r.name == "snowcheck.instance"]
    assert any(
        m.startswith(f"GET {API}/sysevent?") and m.endswith("-> 503 (0 bytes)") for m in mine
    )
    assert any("retrying" in m for m in mine)
    headers = mock.calls[0].request.headers
    assert headers["Authorization"] == f"Basic {TOKEN}"  # really sent, never logged
    assert headers["User-Agent"].startswith("snowcheck/")
    assert headers["Accept"] == "application/json"
    _assert_no_secret("", caplog, instance)


def test_explicit_ca_bundle_beats_requests_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/ca.pem")
    session = _Session()
    assert session.merge_environment_settings(BASE, {}, None, None, None)["verify"] == "/env/ca.pem"
    session.verify = "/cli/ca.pem"
    assert session.merge_environment_settings(BASE, {}, None, None, None)["verify"] == "/cli/ca.pem"


def test_session_trusts_the_environment(make: Callable[..., Instance]) -> None:
    assert make().session.trust_env


# -- writing -------------------------------------------------------------------------------

ISSUE = f"{API}/ecc_agent_issue"


def _change(action: Action, message: str, sys_id: str | None) -> Change:
    payload = {
        Action.RESOLVE: {"state": "resolved"},
        Action.UPDATE: {
            "count": "3",
            "last_detected": "2024-05-01 12:00:00",
            "sys_domain": "global",
        },
        Action.CREATE: {
            "message": message,
            "source": "MIDUserConnectivity",
            "state": "new",
            "count": "1",
            "last_detected": "2024-05-01 12:00:00",
            "sys_domain": "global",
            "mid_server": "",
        },
    }[action]
    return Change(
        action=action,
        message=message,
        sys_id=sys_id,
        state_before=None if sys_id is None else "new",
        count_before=None if sys_id is None else 2,
        state="resolved" if action is Action.RESOLVE else "new",
        count=1 if sys_id is None else 3,
        payload=payload,
    )


def _plan(*changes: Change) -> Plan:
    return Plan(changes=changes, open_issues=2)


def test_apply_patches_and_posts_in_order(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    resolve = _change(Action.RESOLVE, "old", "a1")
    update = _change(Action.UPDATE, "kept", "b2")
    create = _change(Action.CREATE, "new one", None)
    mock.add("PATCH", f"{ISSUE}/a1", json={"result": {"sys_id": "a1"}})
    mock.add("PATCH", f"{ISSUE}/b2", json={"result": {"sys_id": "b2"}})
    mock.add("POST", ISSUE, status=201, json={"result": {"sys_id": "c3"}})
    mock.add("GET", ISSUE, json={"result": [{"sys_id": "c3", "message": "new one"}]})
    told: list[Change] = []

    applied = WriteBack(make(), batch=False).apply(
        _plan(resolve, update, create), on_change=told.append
    )

    assert [(c.request.method, urlsplit(c.request.url).path) for c in mock.calls] == [
        ("PATCH", "/api/now/table/ecc_agent_issue/a1"),
        ("PATCH", "/api/now/table/ecc_agent_issue/b2"),
        ("POST", "/api/now/table/ecc_agent_issue"),
        ("GET", "/api/now/table/ecc_agent_issue"),  # read back: no duplicate
    ]
    assert params(mock.calls[3])["sysparm_query"] == (
        "source=MIDUserConnectivity^state!=resolved^mid_serverISEMPTY^messageINnew one"
        "^ORDERBYsys_id"
    )
    assert json.loads(mock.calls[0].request.body) == {"state": "resolved"}
    assert json.loads(mock.calls[1].request.body) == dict(update.payload)
    assert json.loads(mock.calls[2].request.body) == dict(create.payload)
    assert params(mock.calls[0]) == {
        "sysparm_display_value": "false",
        "sysparm_exclude_reference_link": "true",
        "sysparm_fields": "sys_id,message,source,state,count,sys_updated_on",
    }
    assert applied == (resolve, update, replace(create, sys_id="c3"))
    assert told == list(applied)


def test_patch_is_retried(
    mock: responses.RequestsMock, make: Callable[..., Instance], sleeps: Sleeps
) -> None:
    mock.add("PATCH", f"{ISSUE}/a1", status=504, body="")
    mock.add("PATCH", f"{ISSUE}/a1", json={"result": {"sys_id": "a1"}})
    WriteBack(make(), batch=False).apply(_plan(_change(Action.RESOLVE, "old", "a1")))
    assert [c.request.method for c in mock.calls] == ["PATCH", "PATCH"]
    assert len(sleeps) == 1


def test_failed_create_found_on_reread_is_not_posted_again(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    create = _change(Action.CREATE, "User a^b is down, badly", None)
    mock.add("POST", ISSUE, body=requests.exceptions.ConnectionError("connection reset"))
    mock.add(
        "GET",
        ISSUE,
        json={"result": [{"sys_id": "made1", "sys_updated_on": "2024-05-01 12:00:00"}]},
        headers={"X-Total-Count": "1"},
    )
    applied = WriteBack(make(), batch=False).apply(_plan(create))
    assert [c.request.method for c in mock.calls] == ["POST", "GET", "GET"]  # then read back
    assert params(mock.calls[1])["sysparm_query"] == (
        "source=MIDUserConnectivity^message=User a^^b is down, badly^state!=resolved"
        "^mid_serverISEMPTY^ORDERBYsys_id"
    )
    assert applied[0].sys_id == "made1"


def test_create_timed_out_waiting_for_its_answer_is_not_sent_again(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    # The instance may still save it after any look-up made now: stop, the next run converges.
    mock.add("POST", ISSUE, body=requests.exceptions.ReadTimeout("no answer"))
    with pytest.raises(PartialWrite) as caught:
        WriteBack(make(), batch=False).apply(_plan(_change(Action.CREATE, "msg", None)))
    assert [c.request.method for c in mock.calls] == ["POST"]
    assert "read timeout" in str(caught.value)
    assert "running the check again converges" in str(caught.value)


def test_failed_create_not_found_on_reread_is_posted_again(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    create = _change(Action.CREATE, "msg", None)
    mock.add("POST", ISSUE, status=503, body="")
    mock.add("GET", ISSUE, json={"result": []}, headers={"X-Total-Count": "0"})
    mock.add("POST", ISSUE, status=201, json={"result": {"sys_id": "new9"}})
    applied = WriteBack(make(), batch=False).apply(_plan(create))
    assert [c.request.method for c in mock.calls] == ["POST", "GET", "POST", "GET"]
    assert applied[0].sys_id == "new9"


def test_create_refused_is_not_retried(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    mock.add("POST", ISSUE, status=403, json=_error_body("Operation Failed"))
    with pytest.raises(PartialWrite) as caught:
        WriteBack(make(), batch=False).apply(_plan(_change(Action.CREATE, "msg", None)))
    assert "write access to ecc_agent_issue denied" in str(caught.value)
    assert len(mock.calls) == 1


def test_apply_stops_part_way_with_partial_write(
    mock: responses.RequestsMock, make: Callable[..., Instance], caplog: pytest.LogCaptureFixture
) -> None:
    first = _change(Action.RESOLVE, "one", "a1")
    second = _change(Action.UPDATE, "two", "b2")
    third = _change(Action.CREATE, "three", None)
    mock.add("PATCH", f"{ISSUE}/a1", json={"result": {"sys_id": "a1"}})
    mock.add("PATCH", f"{ISSUE}/b2", status=404, json=_error_body("No Record found"))
    instance = WriteBack(make(), batch=False)
    with caplog.at_level(logging.DEBUG), pytest.raises(PartialWrite) as caught:
        instance.apply(_plan(first, second, third))
    error = caught.value
    assert error.applied == (first,)
    assert error.not_applied == (second, third)
    assert (error.table, error.status) == ("ecc_agent_issue", 404)
    message = str(error)
    assert "\n" not in message
    assert message.startswith("wrote 1 of 3 changes to ecc_agent_issue")
    assert "2 not applied" in message and "converges" in message
    assert "record b2" in message
    assert len(mock.calls) == 2
    _assert_no_secret(message, caplog, instance)


def test_write_errors_never_show_the_password(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    # Even if the instance echoes it back, the secret is scrubbed from the message.
    mock.add("PATCH", f"{ISSUE}/a1", status=400, json=_error_body(f"bad value {SECRET}", TOKEN))
    with pytest.raises(PartialWrite) as caught:
        WriteBack(make(), batch=False).apply(_plan(_change(Action.RESOLVE, "one", "a1")))
    assert SECRET not in str(caught.value) and TOKEN not in str(caught.value)


def _batch_answer(request: Any) -> tuple[int, dict[str, str], str]:
    """Every item answered as an instance whose batch API cannot route table URLs."""
    items = json.loads(request.body)["rest_requests"]
    refused = base64.b64encode(
        json.dumps({"error": {"message": "Requested URI does not represent any resource"}}).encode()
    ).decode()
    serviced = [
        {"id": item["id"], "status_code": 400, "headers": [], "body": refused} for item in items
    ]
    return 200, {}, json.dumps({"serviced_requests": serviced, "unserviced_requests": []})


def test_batch_items_the_instance_cannot_route_go_one_by_one(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    mock.add_callback("POST", f"{BASE}/api/now/v1/batch", callback=_batch_answer)
    mock.add("PATCH", f"{ISSUE}/a1", json={"result": {"sys_id": "a1"}})
    mock.add("PATCH", f"{ISSUE}/b2", json={"result": {"sys_id": "b2"}})
    instance = make()
    applied = WriteBack(instance).apply(
        _plan(_change(Action.RESOLVE, "one", "a1"), _change(Action.UPDATE, "two", "b2"))
    )
    assert [(c.request.method, urlsplit(c.request.url).path) for c in mock.calls] == [
        ("POST", "/api/now/v1/batch"),
        ("PATCH", "/api/now/table/ecc_agent_issue/a1"),
        ("PATCH", "/api/now/table/ecc_agent_issue/b2"),
    ]
    sent = json.loads(mock.calls[0].request.body)
    assert sent["rest_requests"][0] == {
        "id": "0",
        "method": "PATCH",
        "url": "/api/now/table/ecc_agent_issue/a1?sysparm_display_value=false"
        "&sysparm_exclude_reference_link=true"
        "&sysparm_fields=sys_id%2Cmessage%2Csource%2Cstate%2Ccount%2Csys_updated_on",
        "headers": [
            {"name": "Content-Type", "value": "application/json"},
            {"name": "Accept", "value": "application/json"},
        ],
        "body": base64.b64encode(b'{"state": "resolved"}').decode(),
    }
    assert len(applied) == 2
    assert instance.requests_made == 3


def test_a_batch_endpoint_answering_401_is_not_a_refusal(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    mock.add(
        "POST", f"{BASE}/api/now/v1/batch", status=401, json=_error_body("User Not Authenticated")
    )
    with pytest.raises(PartialWrite) as caught:
        WriteBack(make()).apply(_plan(_change(Action.RESOLVE, "one", "a1")))
    assert "authentication as checker failed" in str(caught.value)
    assert len(mock.calls) == 1


ERROR_KINDS: dict[str, type[InstanceError]] = {
    "401": errors.AuthFailed,
    "403 sysevent": errors.AccessDenied,
    "403 ecc_agent_config": errors.AccessDenied,
    "404": errors.NotFound,
    "400 invalid table": errors.Rejected,
    "429 after retries": errors.RateLimited,
    "503 after retries": errors.Unavailable,
    "500": errors.ServerError,
    "hibernating": errors.InstanceHibernating,
    "other html": errors.NotJson,
    "truncated json": errors.NotJson,
    "error in a 200": errors.BadAnswer,
    "result not a list": InstanceError,
    "read timeout": errors.ReadTimedOut,
    "connect timeout": errors.Unreachable,
    "refused": errors.Unreachable,
    "dns": errors.UnknownHost,
    "tls": errors.TlsFailed,
}


def test_every_error_case_has_its_kind() -> None:
    assert [case[0] for case in ERROR_CASES] == list(ERROR_KINDS)


@pytest.mark.parametrize(
    ("kind", "table", "answer"),
    [(ERROR_KINDS[case[0]], case[1], case[2]) for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_carry_their_kind_as_a_type(
    mock: responses.RequestsMock,
    make: Callable[..., Instance],
    kind: type[InstanceError],
    table: str,
    answer: dict[str, Any],
) -> None:
    mock.add("GET", f"{API}/{table}", **answer)
    with pytest.raises(InstanceError) as caught:
        make(attempts=3).fetch(table, "name=x", ["sys_id"])
    assert type(caught.value) is kind


def test_each_check_takes_now_from_its_own_answers(
    mock: responses.RequestsMock, make: Callable[..., Instance]
) -> None:
    later = "Wed, 01 May 2024 12:30:00 GMT"
    for date in (DATE, DATE, later):
        mock.add("GET", f"{API}/ecc_agent", json={"result": []}, headers={"Date": date})
    instance = make()
    instance.fetch("ecc_agent", "", ["sys_id"])
    instance.fetch("ecc_agent", "", ["sys_id"])
    assert instance.now == datetime(2024, 5, 1, 11, 58, 20, tzinfo=UTC)
    instance.restart_clock()  # what pull_snapshot does first: one check, one "now"
    instance.fetch("ecc_agent", "", ["sys_id"])
    assert instance.now == datetime(2024, 5, 1, 12, 30, 0, tzinfo=UTC)
