"""Template sets: choosing one by name or from the open issues, and rendering names literally."""

from __future__ import annotations

import pytest

from snowcheck.errors import ConfigError
from snowcheck.messages import DOCS, KINGSTON, Template, TemplateSet, choose
from snowcheck.rules import RULES

DOCS_NO_LOGIN = (
    "User mid.east is associated with 1 down MID Server. No login attempts within reporting period."
)
KINGSTON_NO_LOGIN = (
    "User mid.east associated with 1 down MID Server.  No login attempts within reporting period."
)
DOCS_CONNECTED = (
    "User admin.jane with mid_server role successfully connected but not associated with a "
    "MID Server. The mid_server role should be reserved for MID Server use only."
)
KINGSTON_CONNECTED = (
    "User admin.jane with mid_server role successfully connected but is not associated with a "
    "MID Server.  The mid_server role should be reserved for MID Server use only."
)
KINGSTON_AUTH_3 = (
    "Login authentication failure for User mid.west associated with 3 down MID Servers.  "
    "Check password on MID servers."
)
SHARED = (
    "Login authentication failure for User svc.integration with mid_server role not associated "
    "with a MID Server."
)
"""The same text in both sets: a single sentence, no spacing difference."""


@pytest.mark.parametrize("template_set", [DOCS, KINGSTON], ids=["docs", "kingston"])
def test_every_rule_has_a_template(template_set: TemplateSet) -> None:
    assert set(template_set.templates) == {rule.id for rule in RULES}


@pytest.mark.parametrize(
    ("name", "open_messages", "chosen"),
    [
        pytest.param("docs", [], DOCS, id="docs-by-name"),
        pytest.param("kingston", [], KINGSTON, id="kingston-by-name"),
        pytest.param("docs", [KINGSTON_NO_LOGIN], DOCS, id="name-beats-open-issues"),
        pytest.param("auto", [], DOCS, id="auto-no-issues"),
        pytest.param("auto", [KINGSTON_NO_LOGIN], KINGSTON, id="auto-kingston-issue"),
        pytest.param("auto", [DOCS_NO_LOGIN], DOCS, id="auto-docs-issue"),
        pytest.param(
            "auto",
            [KINGSTON_NO_LOGIN, KINGSTON_CONNECTED, DOCS_NO_LOGIN],
            KINGSTON,
            id="auto-kingston-majority",
        ),
        pytest.param(
            "auto",
            [DOCS_NO_LOGIN, DOCS_CONNECTED, KINGSTON_AUTH_3],
            DOCS,
            id="auto-docs-majority",
        ),
        pytest.param("auto", [KINGSTON_NO_LOGIN, DOCS_CONNECTED], DOCS, id="auto-tie"),
        pytest.param("auto", [SHARED], DOCS, id="auto-only-shared-wording"),
        pytest.param("auto", [SHARED, KINGSTON_AUTH_3], KINGSTON, id="auto-shared-plus-kingston"),
        pytest.param("auto", ["ECC queue is backing up"], DOCS, id="auto-unrelated-issue"),
    ],
)
def test_choose(name: str, open_messages: list[str], chosen: TemplateSet) -> None:
    assert choose(name, open_messages) is chosen


@pytest.mark.parametrize("name", ["", "Docs", "KINGSTON", "jakarta", "auto "])
def test_choose_unknown_name(name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        choose(name, [])
    assert str(raised.value) == (
        f"unknown message set {name!r}: choose one of docs, kingston, auto"
    )


@pytest.mark.parametrize(
    ("user", "n", "expected"),
    [
        pytest.param(
            "{n}",
            3,
            "User {n} is associated with 3 down MID Servers. "
            "No login attempts within reporting period.",
            id="user-named-{n}",
        ),
        pytest.param(
            "{user}",
            1,
            "User {user} is associated with 1 down MID Server. "
            "No login attempts within reporting period.",
            id="user-named-{user}",
        ),
        pytest.param(
            "a{0}b{}",
            1,
            "User a{0}b{} is associated with 1 down MID Server. "
            "No login attempts within reporting period.",
            id="format-braces",
        ),
        pytest.param(
            "[red]x",
            2,
            "User [red]x is associated with 2 down MID Servers. "
            "No login attempts within reporting period.",
            id="markup-like",
        ),
        pytest.param(
            "Mid East ",
            1,
            "User Mid East  is associated with 1 down MID Server. "
            "No login attempts within reporting period.",
            id="spaces-kept",
        ),
    ],
)
def test_render_keeps_user_name_literal(user: str, n: int, expected: str) -> None:
    assert DOCS.render("no_login_down", user, n) == expected


def test_singular_only_template_ignores_n() -> None:
    assert KINGSTON.render("connected_unassociated", "admin.jane", 3) == KINGSTON_CONNECTED


def test_plural_template_switches_on_n() -> None:
    template = Template("one {user}", "{n} {user}")
    assert [template.render("u", n) for n in (1, 2, 3, 0)] == ["one u", "2 u", "3 u", "0 u"]


@pytest.mark.parametrize(
    ("template_set", "message", "matches"),
    [
        pytest.param(DOCS, DOCS_NO_LOGIN, True, id="docs-docs"),
        pytest.param(DOCS, KINGSTON_NO_LOGIN, False, id="docs-kingston"),
        pytest.param(KINGSTON, KINGSTON_NO_LOGIN, True, id="kingston-kingston"),
        pytest.param(KINGSTON, DOCS_NO_LOGIN, False, id="kingston-docs"),
        pytest.param(DOCS, SHARED, True, id="docs-shared"),
        pytest.param(KINGSTON, SHARED, True, id="kingston-shared"),
        pytest.param(
            DOCS,
            "User a.(b)*+?[c]{2} is associated with 12 down MID Servers. "
            "No login attempts within reporting period.",
            True,
            id="regex-characters-in-name",
        ),
        # Compared as the instance's database compares an issue's message.
        pytest.param(DOCS, DOCS_NO_LOGIN + " ", True, id="trailing-space"),
        pytest.param(DOCS, DOCS_NO_LOGIN.upper(), True, id="other-case"),
        pytest.param(DOCS, " " + DOCS_NO_LOGIN, False, id="leading-space"),
        pytest.param(
            DOCS,
            "User mid.east is associated with many down MID Servers. "
            "No login attempts within reporting period.",
            False,
            id="n-not-a-number",
        ),
    ],
)
def test_matches(template_set: TemplateSet, message: str, matches: bool) -> None:
    assert template_set.matches(message) is matches
