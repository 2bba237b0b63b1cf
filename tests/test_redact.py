"""The Redactor, case by case: whole tokens, encodings, short secrets never masked nor echoed."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from snowcheck.redact import REDACTED, Redactor, basic_token

LONG = "Pa$$ w0rd/+%&=x^y"
QUOTED = 'se"cr\\et'


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        pytest.param(
            [LONG], f"bad password {LONG} for x", f"bad password {REDACTED} for x", id="raw"
        ),
        pytest.param([LONG], f"?p={quote_plus(LONG)}&q", f"?p={REDACTED}&q", id="form-encoded"),
        pytest.param([LONG], f"/{quote(LONG, safe='')}/", f"/{REDACTED}/", id="url-encoded"),
        pytest.param(
            [QUOTED], json.dumps({"p": QUOTED}), f'{{"p": "{REDACTED}"}}', id="json-escaped"
        ),
        pytest.param(
            ["two  spaces\there"], "said two spaces here.", f"said {REDACTED}.", id="collapsed"
        ),
        pytest.param(["hunter22"], "hunter22", REDACTED, id="whole-text"),
        pytest.param(["hunter22"], "(hunter22)", f"({REDACTED})", id="in-brackets"),
        pytest.param(["hunter22"], "xhunter22 hunter22y", "xhunter22 hunter22y", id="inside-words"),
        pytest.param(["report"], "reporting reports", "reporting reports", id="common-word-inside"),
        pytest.param(
            ["admin"], "grant admin a role", "grant admin a role", id="short-never-masked"
        ),
        pytest.param(["e"], "the check ended", "the check ended", id="one-letter"),
        pytest.param(
            [], "Authorization: Basic dXNlcjpwYXNz", f"Authorization: {REDACTED}", id="header"
        ),
        pytest.param(
            [],
            "failed authorization: roles missing",
            "failed authorization: roles missing",
            id="prose-is-no-header",
        ),
        pytest.param(["abcdef", "abcdefgh"], "abcdefgh", REDACTED, id="longest-first"),
    ],
)
def test_redact(secrets: list[str], text: str, expected: str) -> None:
    assert Redactor(secrets)(text) == expected


def test_the_basic_token_of_a_short_password_is_masked() -> None:
    redactor = Redactor.for_login("mid.checker", "admin")
    token = basic_token("mid.checker", "admin")
    assert redactor(f"sent Basic {token} to admin") == f"sent Basic {REDACTED} to admin"


@pytest.mark.parametrize(
    ("password", "text", "safe"),
    [
        pytest.param("admin", "no such table", True, id="short-absent"),
        pytest.param("admin", "bad password admin", False, id="short-echoed"),
        pytest.param("admin", "bad password %61dmin", True, id="short-other-encoding-absent"),
        pytest.param("a b!c", "rejected a%20b%21c", False, id="short-url-encoded-echo"),
        pytest.param("hunter22", "bad password hunter22", True, id="long-whole-token-masked"),
        pytest.param("hunter22", "bad password xhunter22", False, id="long-inside-a-word"),
    ],
)
def test_echo_safe(password: str, text: str, safe: bool) -> None:
    redactor = Redactor.for_login("mid.checker", password)
    shown = redactor.echo_safe(text, "HTTP 500")
    assert shown == (redactor(text) if safe else "HTTP 500")
    assert password not in shown or password in "HTTP 500"


def test_secrets_added_later_are_masked_from_then_on() -> None:
    redactor = Redactor()
    assert redactor("key hunter22") == "key hunter22"
    redactor.add("hunter22")
    assert redactor("key hunter22") == f"key {REDACTED}"
    assert redactor.secrets == ("hunter22",)
