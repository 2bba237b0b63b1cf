"""The rule set of SPEC section 3 as tables of cases: who fires, with which exact message.

Expected messages are literals copied by hand from SPEC section 3 and the seed,
never built with the templates under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import (
    AUTHZ,
    FAILED,
    INSIDE,
    LOGIN,
    MID_ROLES,
    NOW,
    OUTSIDE,
    FakeInstance,
    finding_of,
    one_user,
    rules_of,
    sys_id,
)

from snowcheck.errors import ConfigError
from snowcheck.messages import DOCS, KINGSTON
from snowcheck.rules import RULES, Window, event_candidates, parse_window

USER = "mid.east"

# ---------------------------------------------------------------------------
# The message of every rule: both template sets, n = 1 and n = 3.
# ---------------------------------------------------------------------------

DOWN_SCENARIO = {
    "auth_failed_down": FAILED,
    "authz_failed_down": AUTHZ,
    "no_login_down": None,
}
UNASSOCIATED_SCENARIO = {
    "auth_failed_unassociated": FAILED,
    "authz_failed_unassociated": AUTHZ,
    "no_login_unassociated": None,
    "connected_unassociated": LOGIN,
}

MESSAGES = [
    # docs: the seed's wording, one space between sentences.
    (
        "auth_failed_down",
        "docs",
        1,
        "Login authentication failure for User mid.east associated with 1 down MID Server. "
        "Check password on MID server.",
    ),
    (
        "auth_failed_down",
        "docs",
        3,
        "Login authentication failure for User mid.east associated with 3 down MID Servers. "
        "Check password on MID servers.",
    ),
    (
        "authz_failed_down",
        "docs",
        1,
        "Login authorization failure for User mid.east associated with 1 down MID Server. "
        "Re-assign mid_server role to grant all required roles.",
    ),
    (
        "authz_failed_down",
        "docs",
        3,
        "Login authorization failure for User mid.east associated with 3 down MID Servers. "
        "Re-assign mid_server role to grant all required roles.",
    ),
    (
        "no_login_down",
        "docs",
        1,
        "User mid.east is associated with 1 down MID Server. "
        "No login attempts within reporting period.",
    ),
    (
        "no_login_down",
        "docs",
        3,
        "User mid.east is associated with 3 down MID Servers. "
        "No login attempts within reporting period.",
    ),
    (
        "auth_failed_unassociated",
        "docs",
        0,
        "Login authentication failure for User mid.east with mid_server role "
        "not associated with a MID Server.",
    ),
    (
        "authz_failed_unassociated",
        "docs",
        0,
        "Login authorization failure for User mid.east with mid_server role "
        "not associated with a MID Server.",
    ),
    (
        "no_login_unassociated",
        "docs",
        0,
        "User mid.east with mid_server role is not associated with a MID Server. "
        "No login attempts within reporting period.",
    ),
    (
        "connected_unassociated",
        "docs",
        0,
        "User mid.east with mid_server role successfully connected but not associated with "
        "a MID Server. The mid_server role should be reserved for MID Server use only.",
    ),
    # kingston: two spaces between sentences, no "is" before "associated with n down".
    (
        "auth_failed_down",
        "kingston",
        1,
        "Login authentication failure for User mid.east associated with 1 down MID Server.  "
        "Check password on MID server.",
    ),
    (
        "auth_failed_down",
        "kingston",
        3,
        "Login authentication failure for User mid.east associated with 3 down MID Servers.  "
        "Check password on MID servers.",
    ),
    (
        "authz_failed_down",
        "kingston",
        1,
        "Login authorization failure for User mid.east associated with 1 down MID Server.  "
        "Re-assign mid_server role to grant all required roles.",
    ),
    (
        "authz_failed_down",
        "kingston",
        3,
        "Login authorization failure for User mid.east associated with 3 down MID Servers.  "
        "Re-assign mid_server role to grant all required roles.",
    ),
    (
        "no_login_down",
        "kingston",
        1,
        "User mid.east associated with 1 down MID Server.  "
        "No login attempts within reporting period.",
    ),
    (
        "no_login_down",
        "kingston",
        3,
        "User mid.east associated with 3 down MID Servers.  "
        "No login attempts within reporting period.",
    ),
    (
        "auth_failed_unassociated",
        "kingston",
        0,
        "Login authentication failure for User mid.east with mid_server role "
        "not associated with a MID Server.",
    ),
    (
        "authz_failed_unassociated",
        "kingston",
        0,
        "Login authorization failure for User mid.east with mid_server role "
        "not associated with a MID Server.",
    ),
    (
        "no_login_unassociated",
        "kingston",
        0,
        "User mid.east with mid_server role not associated with a MID Server.  "
        "No login attempts within reporting period.",
    ),
    (
        "connected_unassociated",
        "kingston",
        0,
        "User mid.east with mid_server role successfully connected but is not associated with "
        "a MID Server.  The mid_server role should be reserved for MID Server use only.",
    ),
]
TEMPLATE_SETS = {"docs": DOCS, "kingston": KINGSTON}


def test_message_table_covers_every_rule_in_both_sets() -> None:
    covered = {(rule, name) for rule, name, _, _ in MESSAGES}
    assert covered == {(rule.id, name) for rule in RULES for name in TEMPLATE_SETS}
    assert {rule.id for rule in RULES} == set(DOWN_SCENARIO) | set(UNASSOCIATED_SCENARIO)


@pytest.mark.parametrize(
    ("rule", "template_set", "n", "expected"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}-n{row[2]}") for row in MESSAGES],
)
def test_message_of_each_rule(rule: str, template_set: str, n: int, expected: str) -> None:
    if rule in DOWN_SCENARIO:
        last = DOWN_SCENARIO[rule]
        instance = one_user(USER, down=n, events=[(last, INSIDE)] if last else [])
    else:
        last = UNASSOCIATED_SCENARIO[rule]
        instance = one_user(USER, events=[(last, INSIDE)] if last else [])
    evaluation = instance.evaluate(templates=TEMPLATE_SETS[template_set])
    finding = finding_of(evaluation, USER)
    assert finding.rule == rule
    assert finding.message == expected


def test_n_counts_only_association_rows_whose_mid_is_down() -> None:
    instance = one_user(USER, down=2, up=1, events=[(FAILED, INSIDE)])
    instance.mid("paused-1", "Paused").associate(USER, "paused-1")
    finding = finding_of(instance.evaluate(), USER)
    assert finding.message == (
        "Login authentication failure for User mid.east associated with 2 down MID Servers. "
        "Check password on MID servers."
    )
    assert finding.down_mid_servers == ("mid.east-down-1", "mid.east-down-2")


# ---------------------------------------------------------------------------
# Who x last attempt: every row of the SPEC section 3 table, and the gaps between them.
# ---------------------------------------------------------------------------

WHO = {
    "down": {"down": 1},
    "role-not-configured": {},
    "configured-on-up-mid": {"up": 1},
    "no-role-not-configured": {"roles": ()},
}
LAST = {"login": LOGIN, "login.failed": FAILED, "login.authorization.failed": AUTHZ, "none": None}
MATRIX = {
    ("down", "login"): None,
    ("down", "login.failed"): "auth_failed_down",
    ("down", "login.authorization.failed"): "authz_failed_down",
    ("down", "none"): "no_login_down",
    ("role-not-configured", "login"): "connected_unassociated",
    ("role-not-configured", "login.failed"): "auth_failed_unassociated",
    ("role-not-configured", "login.authorization.failed"): "authz_failed_unassociated",
    ("role-not-configured", "none"): "no_login_unassociated",
    ("configured-on-up-mid", "login"): None,
    ("configured-on-up-mid", "login.failed"): None,
    ("configured-on-up-mid", "login.authorization.failed"): None,
    ("configured-on-up-mid", "none"): None,
    ("no-role-not-configured", "login"): None,
    ("no-role-not-configured", "login.failed"): None,
    ("no-role-not-configured", "login.authorization.failed"): None,
    ("no-role-not-configured", "none"): None,
}


@pytest.mark.parametrize(
    ("who", "last", "expected"),
    [
        pytest.param(who, last, rule, id=f"{who}-last-{last}-{rule or 'no-finding'}")
        for (who, last), rule in MATRIX.items()
    ],
)
def test_who_and_last_attempt_pick_the_rule(who: str, last: str, expected: str | None) -> None:
    kind = LAST[last]
    instance = one_user(USER, events=[(kind, INSIDE)] if kind else [], **WHO[who])
    assert rules_of(instance.evaluate(), USER) == ([expected] if expected else [])


def test_every_rule_has_a_matrix_cell() -> None:
    assert {rule.id for rule in RULES} == {rule for rule in MATRIX.values() if rule}


# ---------------------------------------------------------------------------
# Pass / fail cases per rule.
# ---------------------------------------------------------------------------


def case(rule: str, verdict: str, what: str, instance: FakeInstance, fired: list[str]) -> Any:
    """One row of the pass/fail table; the id reads rule:fires|silent:situation."""
    return pytest.param(instance, fired, id=f"{rule}:{verdict}:{what}")


def down_with(**kw: Any) -> FakeInstance:
    return one_user(USER, down=1, **kw)


RULE_CASES = [
    # auth_failed_down
    case(
        "auth_failed_down",
        "fires",
        "n1",
        down_with(events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    case(
        "auth_failed_down",
        "fires",
        "n3",
        one_user(USER, down=3, events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    case(
        "auth_failed_down",
        "fires",
        "inactive-user",
        down_with(active=False, events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    case(
        "auth_failed_down",
        "fires",
        "role-less-user",
        down_with(roles=(), events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    case(
        "auth_failed_down",
        "fires",
        "inactive-role-less-user",
        down_with(roles=(), active=False, events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    case(
        "auth_failed_down",
        "fires",
        "user-not-in-sys_user",
        down_with(in_sys_user=False, events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    case(
        "auth_failed_down",
        "fires",
        "locked-out-user",
        down_with(locked_out=True, events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    case(
        "auth_failed_down",
        "silent",
        "mid-up",
        one_user(USER, up=1, events=[(FAILED, INSIDE)]),
        [],
    ),
    case(
        "auth_failed_down",
        "silent",
        "newer-login",
        down_with(events=[(FAILED, "2026-11-25 11:00:00"), (LOGIN, "2026-11-25 11:30:00")]),
        [],
    ),
    case(
        "auth_failed_down",
        "silent",
        "failure-outside-window",
        down_with(events=[(FAILED, OUTSIDE)]),
        ["no_login_down"],
    ),
    case(
        "auth_failed_down",
        "silent",
        "failure-of-another-user",
        down_with().event(FAILED, "mid.west"),
        ["no_login_down"],
    ),
    # auth_failed_unassociated
    case(
        "auth_failed_unassociated",
        "fires",
        "role-user",
        one_user(USER, events=[(FAILED, INSIDE)]),
        ["auth_failed_unassociated"],
    ),
    case(
        "auth_failed_unassociated",
        "fires",
        "mid_server-row-only",
        one_user(USER, roles=("mid_server",), events=[(FAILED, INSIDE)]),
        ["auth_failed_unassociated"],
    ),
    case(
        "auth_failed_unassociated",
        "silent",
        "inactive-role-user",
        one_user(USER, active=False, events=[(FAILED, INSIDE)]),
        [],
    ),
    case(
        "auth_failed_unassociated",
        "silent",
        "soap_script-without-mid_server",
        one_user(USER, roles=("soap_script", "soap"), events=[(FAILED, INSIDE)]),
        [],
    ),
    case(
        "auth_failed_unassociated",
        "silent",
        "configured-on-up-mid",
        one_user(USER, up=1, events=[(FAILED, INSIDE)]),
        [],
    ),
    case(
        "auth_failed_unassociated",
        "silent",
        "configured-without-ecc_agent",
        one_user(USER, events=[(FAILED, INSIDE)]).associate(USER, None),
        [],
    ),
    case(
        "auth_failed_unassociated",
        "silent",
        "down-user",
        down_with(events=[(FAILED, INSIDE)]),
        ["auth_failed_down"],
    ),
    # authz_failed_down
    case(
        "authz_failed_down",
        "fires",
        "n1",
        down_with(events=[(AUTHZ, INSIDE)]),
        ["authz_failed_down"],
    ),
    case(
        "authz_failed_down",
        "fires",
        "n3",
        one_user(USER, down=3, events=[(AUTHZ, INSIDE)]),
        ["authz_failed_down"],
    ),
    case(
        "authz_failed_down",
        "fires",
        "inactive-user",
        down_with(active=False, events=[(AUTHZ, INSIDE)]),
        ["authz_failed_down"],
    ),
    case(
        "authz_failed_down",
        "fires",
        "role-less-user",
        down_with(roles=(), events=[(AUTHZ, INSIDE)]),
        ["authz_failed_down"],
    ),
    case(
        "authz_failed_down",
        "fires",
        "user-not-in-sys_user",
        down_with(in_sys_user=False, events=[(AUTHZ, INSIDE)]),
        ["authz_failed_down"],
    ),
    case(
        "authz_failed_down",
        "silent",
        "newer-login",
        down_with(events=[(AUTHZ, "2026-11-25 11:00:00"), (LOGIN, "2026-11-25 11:30:00")]),
        [],
    ),
    case(
        "authz_failed_down",
        "silent",
        "failure-outside-window",
        down_with(events=[(AUTHZ, OUTSIDE)]),
        ["no_login_down"],
    ),
    case(
        "authz_failed_down",
        "silent",
        "mid-up",
        one_user(USER, up=1, events=[(AUTHZ, INSIDE)]),
        [],
    ),
    # authz_failed_unassociated
    case(
        "authz_failed_unassociated",
        "fires",
        "role-user",
        one_user(USER, events=[(AUTHZ, INSIDE)]),
        ["authz_failed_unassociated"],
    ),
    case(
        "authz_failed_unassociated",
        "silent",
        "inactive-role-user",
        one_user(USER, active=False, events=[(AUTHZ, INSIDE)]),
        [],
    ),
    case(
        "authz_failed_unassociated",
        "silent",
        "configured-on-up-mid",
        one_user(USER, up=1, events=[(AUTHZ, INSIDE)]),
        [],
    ),
    case(
        "authz_failed_unassociated",
        "silent",
        "no-mid_server-role",
        one_user(USER, roles=("soap_script",), events=[(AUTHZ, INSIDE)]),
        [],
    ),
    # no_login_down
    case("no_login_down", "fires", "no-events", down_with(), ["no_login_down"]),
    case(
        "no_login_down",
        "fires",
        "inactive-role-less-user",
        down_with(active=False, roles=()),
        ["no_login_down"],
    ),
    case(
        "no_login_down",
        "fires",
        "user-not-in-sys_user",
        down_with(in_sys_user=False),
        ["no_login_down"],
    ),
    case(
        "no_login_down",
        "fires",
        "only-other-event-names",
        down_with(events=[("session.established", INSIDE), ("logout", INSIDE)]),
        ["no_login_down"],
    ),
    case(
        "no_login_down",
        "fires",
        "event-just-before-since",
        down_with(events=[(LOGIN, "2026-11-25 07:59:00")]),
        ["no_login_down"],
    ),
    # The event window has no upper bound, and parm1 is compared as the database does.
    case(
        "no_login_down",
        "silent",
        "login-after-now",
        down_with(events=[(LOGIN, "2026-11-25 12:00:01")]),
        [],
    ),
    case(
        "no_login_down",
        "silent",
        "parm1-other-case",
        down_with().event(LOGIN, "Mid.East"),
        [],
    ),
    case(
        "no_login_down",
        "silent",
        "parm1-with-trailing-space",
        down_with().event(LOGIN, "mid.east "),
        [],
    ),
    case(
        "no_login_down",
        "fires",
        "parm1-with-leading-space",
        down_with().event(LOGIN, " mid.east"),
        ["no_login_down"],
    ),
    case(
        "no_login_down",
        "fires",
        "newest-event-name-other-case",
        down_with(events=[(FAILED, "2026-11-25 11:00:00"), ("Login", INSIDE)]),
        ["no_login_down"],
    ),
    case(
        "no_login_down",
        "silent",
        "login-in-window",
        down_with(events=[(LOGIN, INSIDE)]),
        [],
    ),
    case("no_login_down", "silent", "mid-up", one_user(USER, up=1), []),
    # no_login_unassociated
    case(
        "no_login_unassociated",
        "fires",
        "no-events",
        one_user(USER),
        ["no_login_unassociated"],
    ),
    case(
        "no_login_unassociated",
        "fires",
        "only-other-event-names",
        one_user(USER, events=[("session.established", INSIDE)]),
        ["no_login_unassociated"],
    ),
    case(
        "no_login_unassociated",
        "fires",
        "login-outside-window",
        one_user(USER, events=[(LOGIN, OUTSIDE)]),
        ["no_login_unassociated"],
    ),
    case(
        "no_login_unassociated",
        "fires",
        "password-param-is-not-an-association",
        one_user(USER).mid("m1").associate(USER, "m1", param_name="mid.instance.password"),
        ["no_login_unassociated"],
    ),
    case(
        "no_login_unassociated",
        "silent",
        "inactive-role-user",
        one_user(USER, active=False),
        [],
    ),
    case(
        "no_login_unassociated",
        "silent",
        "no-mid_server-role",
        one_user(USER, roles=("soap_script",)),
        [],
    ),
    case("no_login_unassociated", "silent", "configured-on-up-mid", one_user(USER, up=1), []),
    # connected_unassociated
    case(
        "connected_unassociated",
        "fires",
        "login-in-window",
        one_user(USER, events=[(LOGIN, INSIDE)]),
        ["connected_unassociated"],
    ),
    case(
        "connected_unassociated",
        "silent",
        "down-user-login",
        down_with(events=[(LOGIN, INSIDE)]),
        [],
    ),
    case(
        "connected_unassociated",
        "silent",
        "configured-on-up-mid",
        one_user(USER, up=1, events=[(LOGIN, INSIDE)]),
        [],
    ),
    case(
        "connected_unassociated",
        "silent",
        "inactive-role-user",
        one_user(USER, active=False, events=[(LOGIN, INSIDE)]),
        [],
    ),
    case(
        "connected_unassociated",
        "silent",
        "newer-failure",
        one_user(USER, events=[(LOGIN, "2026-11-25 11:00:00"), (FAILED, "2026-11-25 11:30:00")]),
        ["auth_failed_unassociated"],
    ),
]


@pytest.mark.parametrize(("instance", "fired"), RULE_CASES)
def test_rule_cases(instance: FakeInstance, fired: list[str]) -> None:
    assert rules_of(instance.evaluate(), USER) == fired


def test_every_rule_has_pass_and_fail_cases() -> None:
    ids = [param.id for param in RULE_CASES]
    for rule in RULES:
        assert any(i.startswith(f"{rule.id}:fires:") for i in ids), rule.id
        assert any(i.startswith(f"{rule.id}:silent:") for i in ids), rule.id


# ---------------------------------------------------------------------------
# The last attempt: newest event wins; a tie goes to the failure.
# ---------------------------------------------------------------------------

EARLY, LATE = "2026-11-25 11:00:00", "2026-11-25 11:30:00"


@pytest.mark.parametrize(
    ("events", "down", "expected"),
    [
        pytest.param([(FAILED, EARLY), (LOGIN, LATE)], 1, None, id="down-failure-then-login"),
        pytest.param(
            [(LOGIN, EARLY), (FAILED, LATE)], 1, "auth_failed_down", id="down-login-then-failure"
        ),
        pytest.param(
            [(LOGIN, LATE), (FAILED, EARLY)], 1, None, id="down-newest-login-listed-first"
        ),
        pytest.param(
            [(FAILED, EARLY), (AUTHZ, LATE)], 1, "authz_failed_down", id="down-authn-then-authz"
        ),
        pytest.param(
            [(AUTHZ, EARLY), (FAILED, LATE)], 1, "auth_failed_down", id="down-authz-then-authn"
        ),
        pytest.param([(AUTHZ, EARLY), (LOGIN, LATE)], 1, None, id="down-authz-then-login"),
        pytest.param(
            [(FAILED, OUTSIDE), (LOGIN, INSIDE)], 1, None, id="down-old-failure-out-of-window"
        ),
        pytest.param(
            [(LOGIN, "2026-11-25 12:00:01"), (FAILED, INSIDE)],
            1,
            None,
            id="down-future-login-counts",
        ),
        pytest.param(
            [(LOGIN, INSIDE), (FAILED, "2026-11-26 12:00:00")],
            1,
            "auth_failed_down",
            id="down-failure-a-day-ahead-counts",
        ),
        pytest.param(
            [(FAILED, EARLY), (LOGIN, LATE)],
            0,
            "connected_unassociated",
            id="unassoc-failure-then-login",
        ),
        pytest.param(
            [(LOGIN, EARLY), (AUTHZ, LATE)],
            0,
            "authz_failed_unassociated",
            id="unassoc-login-then-authz",
        ),
        # Same second: the failure wins so that a tie never hides a problem.
        pytest.param([(LOGIN, LATE), (FAILED, LATE)], 1, "auth_failed_down", id="tie-login-failed"),
        pytest.param([(FAILED, LATE), (LOGIN, LATE)], 1, "auth_failed_down", id="tie-failed-login"),
        pytest.param([(LOGIN, LATE), (AUTHZ, LATE)], 1, "authz_failed_down", id="tie-login-authz"),
        pytest.param([(AUTHZ, LATE), (LOGIN, LATE)], 1, "authz_failed_down", id="tie-authz-login"),
        pytest.param([(AUTHZ, LATE), (FAILED, LATE)], 1, "auth_failed_down", id="tie-authz-failed"),
        pytest.param([(FAILED, LATE), (AUTHZ, LATE)], 1, "auth_failed_down", id="tie-failed-authz"),
        pytest.param(
            [(LOGIN, LATE), (FAILED, LATE)],
            0,
            "auth_failed_unassociated",
            id="tie-unassoc-login-failed",
        ),
    ],
)
def test_newest_event_is_the_last_attempt(
    events: list[tuple[str, str]], down: int, expected: str | None
) -> None:
    evaluation = one_user(USER, down=down, events=events).evaluate()
    assert rules_of(evaluation, USER) == ([expected] if expected else [])


def test_last_attempt_is_the_newest_event_record() -> None:
    instance = one_user(USER, down=1).event(LOGIN, USER, EARLY).event(FAILED, USER, LATE)
    evaluation = instance.evaluate()
    last = evaluation.last_attempts[USER]
    assert last is not None
    assert (last.name, last.created_on) == (FAILED, datetime(2026, 11, 25, 11, 30, tzinfo=UTC))


# ---------------------------------------------------------------------------
# The window: events in (now - W - 60 s, now] count.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "since"),
    [
        pytest.param(timedelta(hours=4), datetime(2026, 11, 25, 7, 59, tzinfo=UTC), id="4h"),
        pytest.param(timedelta(minutes=5), datetime(2026, 11, 25, 11, 54, tzinfo=UTC), id="5m"),
        pytest.param(
            timedelta(seconds=90), datetime(2026, 11, 25, 11, 57, 30, tzinfo=UTC), id="90s"
        ),
    ],
)
def test_since_is_now_minus_window_minus_one_minute(window: timedelta, since: datetime) -> None:
    assert Window(now=NOW, length=window).since == since
    assert one_user(USER).evaluate(window=window).window.since == since


@pytest.mark.parametrize(
    ("window", "created_on", "inside"),
    [
        pytest.param(timedelta(hours=4), "2026-11-25 07:58:59", False, id="4h-before-since"),
        pytest.param(timedelta(hours=4), "2026-11-25 07:59:00", False, id="4h-exactly-since"),
        pytest.param(timedelta(hours=4), "2026-11-25 07:59:01", True, id="4h-since-plus-1s"),
        pytest.param(timedelta(hours=4), "2026-11-25 08:00:00", True, id="4h-in-the-margin"),
        pytest.param(timedelta(hours=4), "2026-11-25 11:59:59", True, id="4h-now-minus-1s"),
        pytest.param(timedelta(hours=4), "2026-11-25 12:00:00", True, id="4h-exactly-now"),
        # No upper bound: the job's query has none.
        pytest.param(timedelta(hours=4), "2026-11-25 12:00:01", True, id="4h-now-plus-1s"),
        pytest.param(timedelta(hours=4), "2026-12-25 12:00:00", True, id="4h-a-month-after-now"),
        pytest.param(timedelta(minutes=5), "2026-11-25 11:30:00", False, id="5m-long-before"),
        pytest.param(timedelta(minutes=5), "2026-11-25 11:54:00", False, id="5m-exactly-since"),
        pytest.param(timedelta(minutes=5), "2026-11-25 11:54:01", True, id="5m-since-plus-1s"),
        pytest.param(timedelta(minutes=5), "2026-11-25 11:55:00", True, id="5m-in-the-margin"),
        pytest.param(timedelta(minutes=5), "2026-11-25 12:00:00", True, id="5m-exactly-now"),
        pytest.param(timedelta(minutes=5), "2026-11-25 12:00:01", True, id="5m-now-plus-1s"),
    ],
)
def test_window_bounds(window: timedelta, created_on: str, inside: bool) -> None:
    for down, when_in, when_out in (
        (1, "auth_failed_down", "no_login_down"),
        (0, "auth_failed_unassociated", "no_login_unassociated"),
    ):
        evaluation = one_user(USER, down=down, events=[(FAILED, created_on)]).evaluate(
            window=window
        )
        assert rules_of(evaluation, USER) == [when_in if inside else when_out]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("4h", timedelta(hours=4), id="4h"),
        pytest.param("5m", timedelta(minutes=5), id="5m"),
        pytest.param("90s", timedelta(seconds=90), id="90s"),
        pytest.param("14400000ms", timedelta(hours=4), id="ms-4h"),
        pytest.param("300000ms", timedelta(minutes=5), id="ms-5m"),
        pytest.param("4h30m", timedelta(hours=4, minutes=30), id="compound"),
        pytest.param("1h1m1s500ms", timedelta(hours=1, minutes=1, seconds=1.5), id="every-unit"),
        pytest.param(" 5m ", timedelta(minutes=5), id="spaces-around"),
    ],
)
def test_parse_window(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("0", id="zero"),
        pytest.param("0m", id="zero-minutes"),
        pytest.param("abc", id="letters"),
        pytest.param("-5m", id="negative"),
        pytest.param("4d", id="unknown-unit"),
        pytest.param("1.5h", id="fraction"),
        pytest.param("30m4h", id="compound-out-of-order"),
        pytest.param("5m5m", id="unit-twice"),
        pytest.param("5 m", id="space-inside"),
        pytest.param("5", id="bare-number"),
        pytest.param("14400000", id="bare-milliseconds"),
    ],
)
def test_parse_window_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid window"):
        parse_window(text)


def test_a_bare_number_is_refused_with_the_unit_suggested() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_window("5")
    assert str(raised.value) == (
        "invalid window '5': give a unit, e.g. 5m for minutes, 5s, 5h, or 5ms for milliseconds"
    )


def test_parse_window_rejects_a_window_too_large_for_timedelta() -> None:
    with pytest.raises(ConfigError, match="invalid window"):
        parse_window("99999999999h")


def test_a_window_parse_window_accepts_can_be_evaluated() -> None:
    try:
        window = parse_window("20000000h")
    except ConfigError:
        return  # refusing it is fine too
    one_user(USER, down=1, events=[(FAILED, INSIDE)]).evaluate(window=window)


# ---------------------------------------------------------------------------
# Conditions the rules apply themselves, whatever rows the pull returned.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("Down", ["auth_failed_down"], id="Down"),
        # status = Down is decided by the database: case and trailing spaces aside.
        pytest.param("down", ["auth_failed_down"], id="down-lowercase"),
        pytest.param("DOWN", ["auth_failed_down"], id="DOWN-uppercase"),
        pytest.param("Down ", ["auth_failed_down"], id="Down-trailing-space"),
        pytest.param(" Down", [], id="Down-leading-space"),
        pytest.param("Down\t", [], id="Down-trailing-tab"),
        pytest.param("Up", [], id="Up"),
        pytest.param("Paused", [], id="Paused"),
        pytest.param("Upgrading", [], id="Upgrading"),
        pytest.param("", [], id="empty"),
    ],
)
def test_status_Down_is_down_as_the_database_compares(status: str, expected: list[str]) -> None:
    instance = one_user(USER, events=[(FAILED, INSIDE)]).mid("m1", status).associate(USER, "m1")
    assert rules_of(instance.evaluate(), USER) == expected


@pytest.mark.parametrize(
    ("param_name", "expected"),
    [
        pytest.param("mid.instance.username", ["auth_failed_down"], id="mid.instance.username"),
        pytest.param("mid.instance.password", ["auth_failed_unassociated"], id="password"),
        # param_name is compared by the database: case and trailing spaces aside.
        pytest.param("Mid.Instance.Username", ["auth_failed_down"], id="other-case"),
        pytest.param("mid.instance.username ", ["auth_failed_down"], id="trailing-space"),
        pytest.param(" mid.instance.username", ["auth_failed_unassociated"], id="leading-space"),
        pytest.param("url", ["auth_failed_unassociated"], id="url"),
    ],
)
def test_only_mid_instance_username_rows_associate(param_name: str, expected: list[str]) -> None:
    instance = (
        one_user(USER, events=[(FAILED, INSIDE)])
        .mid("m1")
        .associate(USER, "m1", param_name=param_name)
    )
    assert rules_of(instance.evaluate(), USER) == expected


@pytest.mark.parametrize(
    "name", ["login.failure", " login.failed", "session.established", "logout", ""]
)
def test_other_event_names_are_ignored(name: str) -> None:
    evaluation = one_user(USER, down=1, events=[(FAILED, EARLY), (name, LATE)]).evaluate()
    assert rules_of(evaluation, USER) == ["auth_failed_down"]
    assert evaluation.last_attempts[USER] is not None
    assert evaluation.last_attempts[USER].name == FAILED


@pytest.mark.parametrize("name", ["Login.Failed", "login.failed ", "LOGIN", "Login "])
def test_a_login_event_spelled_otherwise_is_the_newest_but_no_attempt(name: str) -> None:
    """The name filter is the database's; the kind is read exactly (fidelity README §2)."""
    evaluation = one_user(USER, down=1, events=[(FAILED, EARLY), (name, LATE)]).evaluate()
    assert rules_of(evaluation, USER) == ["no_login_down"]
    last = evaluation.last_attempts[USER]
    assert last is not None
    assert last.name == name


def test_a_spelling_otherwise_loses_a_tie_with_any_kind() -> None:
    evaluation = one_user(USER, down=1, events=[("LOGIN", LATE), (LOGIN, LATE)]).evaluate()
    assert rules_of(evaluation, USER) == []  # a down user who logged in


def test_a_row_value_names_a_holder_exactly_but_events_are_matched_as_the_database_does() -> None:
    instance = (
        FakeInstance()
        .user("Mid.East")
        .mids("mid.east", down=1)
        .event(LOGIN, "Mid.East", EARLY)
        .event(FAILED, "MID.EAST ", LATE)
        .event(AUTHZ, " mid.east", "2026-11-25 11:50:00")
    )
    evaluation = instance.evaluate()
    # mid.east is a down user with no sys_user row; Mid.East a role user of no MID Server.
    # Both have the failure naming MID.EAST as their last attempt; a leading space counts.
    assert rules_of(evaluation, "mid.east") == ["auth_failed_down"]
    assert rules_of(evaluation, "Mid.East") == ["auth_failed_unassociated"]
    assert rules_of(evaluation, " mid.east") == []
    assert finding_of(evaluation, "Mid.East").message == (
        "Login authentication failure for User Mid.East with mid_server role not associated "
        "with a MID Server."
    )
    assert finding_of(evaluation, "mid.east").notes == (
        "No sys_user record has this User ID.",
        "Connectivity of MID Server user mid.east cannot be detected by the instance.",
    )


def test_config_value_is_compared_exactly() -> None:
    instance = one_user(USER, events=[(FAILED, INSIDE)]).mids("MID.EAST", down=1)
    evaluation = instance.evaluate()
    # Two users under the exact comparison; one event for both under the database's.
    assert rules_of(evaluation, USER) == ["auth_failed_unassociated"]
    assert rules_of(evaluation, "MID.EAST") == ["auth_failed_down"]


# ---------------------------------------------------------------------------
# Down users: notes and down MID names.
# ---------------------------------------------------------------------------

SOAP_NOTE = "Connectivity of MID Server user mid.east cannot be detected by the instance."


@pytest.mark.parametrize(
    ("instance", "notes"),
    [
        pytest.param(down_with(), (), id="active-with-mid_server-rows"),
        pytest.param(down_with(roles=("mid_server",)), (), id="mid_server-row-only"),
        pytest.param(down_with(roles=("soap",)), (), id="soap-only"),
        pytest.param(down_with(roles=("soap_script",)), (), id="soap_script-only"),
        pytest.param(down_with(roles=()), (SOAP_NOTE,), id="no-roles"),
        pytest.param(down_with(roles=("itil",)), (SOAP_NOTE,), id="unrelated-role-only"),
        pytest.param(
            down_with(active=False),
            ("The user is inactive (active=false).",),
            id="inactive",
        ),
        pytest.param(down_with(locked_out=True), ("The user is locked out.",), id="locked-out"),
        pytest.param(
            down_with(active=False, locked_out=True, roles=()),
            (
                "The user is inactive (active=false).",
                "The user is locked out.",
                SOAP_NOTE,
            ),
            id="inactive-locked-out-role-less",
        ),
        pytest.param(
            down_with(in_sys_user=False),
            ("No sys_user record has this User ID.", SOAP_NOTE),
            id="no-sys_user-record",
        ),
        pytest.param(
            down_with().event(AUTHZ, USER, INSIDE, parm2="soap_query,mid_server"),
            ("Missing roles: soap_query, mid_server",),
            id="authz-missing-roles",
        ),
        pytest.param(
            down_with(roles=()).event(AUTHZ, USER, INSIDE, parm2=" soap_query , ,mid_server "),
            ("Missing roles: soap_query, mid_server", SOAP_NOTE),
            id="authz-missing-roles-spaces-and-soap-note",
        ),
        pytest.param(
            down_with().event(AUTHZ, USER, INSIDE, parm2=""),
            (),
            id="authz-empty-parm2",
        ),
        pytest.param(
            down_with().event(FAILED, USER, INSIDE, parm2="mid_server"),
            (),
            id="parm2-of-login.failed-ignored",
        ),
    ],
)
def test_down_user_notes(instance: FakeInstance, notes: tuple[str, ...]) -> None:
    assert finding_of(instance.evaluate(), USER).notes == notes


@pytest.mark.parametrize(
    ("instance", "notes"),
    [
        pytest.param(one_user(USER), (), id="no-login"),
        pytest.param(
            one_user(USER).event(AUTHZ, USER, INSIDE, parm2="soap_query"),
            ("Missing roles: soap_query",),
            id="authz-missing-roles",
        ),
        pytest.param(
            one_user(USER, roles=("mid_server",), locked_out=True),
            (),
            id="locked-out-not-noted",
        ),
    ],
)
def test_role_not_configured_user_notes(instance: FakeInstance, notes: tuple[str, ...]) -> None:
    finding = finding_of(instance.evaluate(), USER)
    assert finding.notes == notes
    assert finding.down_mid_servers == ()


def test_down_mid_names_are_listed_sorted() -> None:
    instance = (
        FakeInstance()
        .user(USER)
        .mid("zeta", "Down")
        .associate(USER, "zeta")
        .mid("alpha", "Down")
        .associate(USER, "alpha")
        .mid("up-one", "Up")
        .associate(USER, "up-one")
    )
    finding = finding_of(instance.evaluate(), USER)
    assert finding.down_mid_servers == ("alpha", "zeta")
    assert finding.message == (
        "User mid.east is associated with 2 down MID Servers. "
        "No login attempts within reporting period."
    )


# ---------------------------------------------------------------------------
# Role rows: inherited duplicates and {link, value} references.
# ---------------------------------------------------------------------------


def test_duplicate_role_rows_and_link_references() -> None:
    record = sys_id("sys_user", USER)
    instance = (
        FakeInstance()
        .user(USER, roles=(), link=True)
        .grant(record, "mid_server", link=True)
        .grant(record, "mid_server", link=True)
        .grant(record, "mid_server")
        .grant(record, "soap_script", link=True)
        .grant(record, "soap_script")
    )
    evaluation = instance.evaluate()
    assert evaluation.sets.role_users == frozenset({USER})
    assert rules_of(evaluation, USER) == ["no_login_unassociated"]


def test_association_rows_with_link_references() -> None:
    instance = (
        FakeInstance()
        .user(USER)
        .mid("m1")
        .associate(USER, "m1", link=True, domain="emea")
        .event(FAILED, USER)
    )
    evaluation = instance.evaluate()
    assert rules_of(evaluation, USER) == ["auth_failed_down"]
    assert finding_of(evaluation, USER).down_mid_servers == ("m1",)


def test_grant_of_a_role_not_pulled_is_ignored() -> None:
    instance = FakeInstance(roles=("soap_script",)).user(USER, roles=("mid_server",))
    assert instance.evaluate().findings == ()


# ---------------------------------------------------------------------------
# Domain of a finding.
# ---------------------------------------------------------------------------


def test_domain_is_the_users_sys_domain() -> None:
    instance = FakeInstance().user(USER, domain="acme").mids(USER, down=1, domain="emea")
    assert finding_of(instance.evaluate(), USER).domain == "acme"


@pytest.mark.parametrize(
    "instance",
    [
        pytest.param(FakeInstance().user(USER, domain="acme", active=False), id="inactive"),
        pytest.param(FakeInstance().user(USER, domain="acme", roles=("soap",)), id="no-mid_server"),
        pytest.param(FakeInstance().user("MID.East", domain="acme"), id="spelled-otherwise"),
    ],
)
def test_a_down_user_outside_the_active_holders_gets_the_rows_domain(
    instance: FakeInstance,
) -> None:
    instance.mids(USER, down=1, domain="emea")
    assert finding_of(instance.evaluate(), USER).domain == "emea"


def test_rows_in_several_domains_give_the_lowest_sys_ids() -> None:
    instance = FakeInstance().mid("m1").mid("m2").mid("m3", "Up")
    instance.associate(USER, "m3", domain="up")  # not on a down MID Server
    instance.associate(USER, "m1", domain="first")
    instance.associate(USER, "m2", domain="second")
    rows = instance.tables["ecc_agent_config"]
    rows[0]["sys_id"], rows[1]["sys_id"], rows[2]["sys_id"] = "0", "2", "1"
    assert finding_of(instance.evaluate(), USER).domain == "second"


def test_domain_from_a_link_reference() -> None:
    instance = FakeInstance().user(USER, domain="d0main", link=True).mids(USER, down=1)
    assert finding_of(instance.evaluate(), USER).domain == "d0main"


def test_domain_of_a_role_not_configured_user() -> None:
    instance = FakeInstance().user(USER, domain="acme")
    assert finding_of(instance.evaluate(), USER).domain == "acme"


def test_domain_of_a_user_without_sys_user_is_the_association_rows() -> None:
    instance = FakeInstance().mids(USER, down=1, domain="emea")
    assert finding_of(instance.evaluate(), USER).domain == "emea"


def test_domain_prefers_the_row_of_a_down_mid() -> None:
    instance = FakeInstance().mid("up", "Up").associate(USER, "up", domain="apac")
    instance.mid("down", "Down").associate(USER, "down", domain="emea")
    assert finding_of(instance.evaluate(), USER).domain == "emea"


@pytest.mark.parametrize(
    "blank",
    [pytest.param("", id="empty-string"), pytest.param(None, id="null")],
)
def test_domain_falls_back_to_global(blank: str | None) -> None:
    instance = FakeInstance().user(USER).mids(USER, down=1)
    instance.tables["sys_user"][0]["sys_domain"] = blank
    assert finding_of(instance.evaluate(), USER).domain == "global"
    orphan = FakeInstance().mids(USER, down=1)
    orphan.tables["ecc_agent_config"][0]["sys_domain"] = blank
    assert finding_of(orphan.evaluate(), USER).domain == "global"
    del orphan.tables["ecc_agent_config"][0]["sys_domain"]
    assert finding_of(orphan.evaluate(), USER).domain == "global"


# ---------------------------------------------------------------------------
# Sets, candidates and ordering.
# ---------------------------------------------------------------------------


def crowd() -> FakeInstance:
    return (
        FakeInstance()
        .user("down.user")
        .mids("down.user", down=1)
        .mids("down.orphan", down=2)
        .user("down.inactive", roles=(), active=False)
        .mids("down.inactive", down=1)
        .user("role.user")
        .user("role.inactive", active=False)
        .user("up.user")
        .mids("up.user", up=1)
        .user("plain.user", roles=())
    )


def test_event_candidates_are_down_users_and_role_not_configured_users() -> None:
    inventory = crowd().inventory()
    assert inventory.events == ()
    assert event_candidates(inventory) == {
        "down.user",
        "down.orphan",
        "down.inactive",
        "role.user",
    }


def test_sets() -> None:
    sets = crowd().evaluate().sets
    assert sets.role_users == {"down.user", "role.user", "up.user"}
    assert sets.configured_users == {"down.user", "down.orphan", "down.inactive", "up.user"}
    assert sets.down_users == {"down.user", "down.orphan", "down.inactive"}
    assert dict(sets.down_counts) == {"down.user": 1, "down.orphan": 2, "down.inactive": 1}
    assert sets.role_not_configured == {"role.user"}


def test_findings_sorted_by_rule_order_then_user() -> None:
    instance = (
        crowd()
        .event(FAILED, "role.user")
        .event(AUTHZ, "down.user")
        .user("b.user", roles=MID_ROLES)
        .user("a.user", roles=MID_ROLES)
    )
    found = [(f.rule, f.user) for f in instance.evaluate().findings]
    assert found == [
        ("auth_failed_unassociated", "role.user"),
        ("authz_failed_down", "down.user"),
        ("no_login_down", "down.inactive"),
        ("no_login_down", "down.orphan"),
        ("no_login_unassociated", "a.user"),
        ("no_login_unassociated", "b.user"),
    ]


@pytest.mark.parametrize(
    ("instance", "saw"),
    [
        pytest.param(FakeInstance(), False, id="nothing"),
        pytest.param(FakeInstance().user("plain", roles=()), False, id="no-mid-user"),
        pytest.param(FakeInstance().user("role.user"), True, id="role-user"),
        pytest.param(FakeInstance().mids("cfg", up=1), True, id="configured-user"),
    ],
)
def test_saw_mid_users(instance: FakeInstance, saw: bool) -> None:
    assert instance.evaluate().saw_mid_users is saw


# ---------------------------------------------------------------------------
# Empty names name nobody; names are grouped exactly (fidelity README §3, §5).
# ---------------------------------------------------------------------------


def test_an_empty_user_name_names_nobody() -> None:
    instance = FakeInstance().user("").user("svc.named").event(FAILED, "")
    evaluation = instance.evaluate()
    assert [finding.user for finding in evaluation.findings] == ["svc.named"]
    assert "" not in evaluation.sets.role_users


def test_an_empty_value_names_nobody_and_counts_for_nobody() -> None:
    instance = FakeInstance().mid("m1").associate("", "m1").associate(USER, "m1")
    evaluation = instance.evaluate()
    assert [(finding.user, finding.rule) for finding in evaluation.findings] == [
        (USER, "no_login_down")
    ]
    assert dict(evaluation.sets.down_counts) == {USER: 1}
    assert evaluation.sets.configured_users == {USER}


def test_values_spelled_otherwise_are_two_down_users_with_their_own_n() -> None:
    instance = FakeInstance().mid("m1").mid("m2").mid("m3")
    instance.associate("mid.k", "m1").associate("MID.K", "m2").associate("MID.K", "m3")
    instance.associate("mid.j", "m1").associate("mid.j ", "m2")
    counts = instance.evaluate().sets.down_counts
    assert dict(counts) == {"mid.k": 1, "MID.K": 2, "mid.j": 1, "mid.j ": 1}


@pytest.mark.parametrize("role", ["MID_Server", "mid_server ", "MID_SERVER"])
def test_the_mid_server_role_is_found_as_the_database_does(role: str) -> None:
    instance = FakeInstance(roles=(role, "soap", "soap_script"))
    instance.tables["sys_user"].append(
        {"sys_id": "u1", "user_name": USER, "active": "true", "sys_domain": "global"}
    )
    instance.grant("u1", role)
    assert rules_of(instance.evaluate(), USER) == ["no_login_unassociated"]


def test_one_event_is_the_last_attempt_of_every_spelling_of_its_user() -> None:
    instance = FakeInstance().user("MID.Svc").mids("mid.svc", down=1).event(FAILED, "mid.svc")
    instance.mids("mid.svc ", down=1)
    evaluation = instance.evaluate()
    assert [(finding.rule, finding.user) for finding in evaluation.findings] == [
        ("auth_failed_down", "mid.svc"),
        ("auth_failed_down", "mid.svc "),
        ("auth_failed_unassociated", "MID.Svc"),
    ]
