"""The apply guards, case by case: plan size, hidden rows, a short window; --force overrides."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import NOW, SOURCE, FakeInstance, issue_row, issues, one_user

from snowcheck.errors import UnsafePlan
from snowcheck.guards import (
    DEFAULT_MAX_CHANGES,
    raise_if_rows_hidden,
    raise_if_short_window_resolves,
    raise_if_too_many,
    short_window_warning,
)
from snowcheck.plan import Plan, build_plan
from snowcheck.records import TABLES
from snowcheck.rules import Finding


def _plan(creates: int = 0, resolves: int = 0) -> Plan:
    """A plan of ``creates`` new issues and ``resolves`` open issues nobody is found for."""
    findings = [
        Finding(rule="x", user=f"u{i}", message=f"new {i}", domain="global") for i in range(creates)
    ]
    open_issues = issues(*(issue_row(f"old {i}") for i in range(resolves)))
    return build_plan(findings, open_issues, source=SOURCE, now=NOW)


# -- --max-changes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("creates", "resolves", "max_changes", "force", "refused"),
    [
        pytest.param(0, 0, DEFAULT_MAX_CHANGES, False, False, id="empty"),
        pytest.param(500, 0, DEFAULT_MAX_CHANGES, False, False, id="at-the-default"),
        pytest.param(400, 101, DEFAULT_MAX_CHANGES, False, True, id="over-the-default"),
        pytest.param(501, 0, DEFAULT_MAX_CHANGES, True, False, id="over-but-forced"),
        pytest.param(3, 0, 2, False, True, id="over-a-small-limit"),
        pytest.param(2, 0, 2, False, False, id="at-a-small-limit"),
        pytest.param(900, 0, 0, False, False, id="zero-is-no-limit"),
    ],
)
def test_max_changes(
    creates: int, resolves: int, max_changes: int, force: bool, refused: bool
) -> None:
    plan = _plan(creates, resolves)
    if not refused:
        raise_if_too_many(plan, max_changes=max_changes, force=force)
        return
    with pytest.raises(UnsafePlan) as raised:
        raise_if_too_many(plan, max_changes=max_changes, force=force)
    text = str(raised.value)
    assert "\n" not in text
    assert f"refusing to apply {len(plan.changes):,} changes, more than --max-changes" in text
    assert "nothing was written" in text and "--force" in text


def test_max_changes_names_the_plan_counts() -> None:
    with pytest.raises(UnsafePlan, match=r"\(0 resolve, 0 update, 501 create\)"):
        raise_if_too_many(_plan(501), force=False)


def test_max_changes_below_zero_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        raise_if_too_many(_plan(1), max_changes=-1, force=False)


# -- rows that must exist but are invisible ---------------------------------------------------


def _configured_but_no_grants() -> FakeInstance:
    """Two MID users named by ecc_agent_config; their mid_server grants hidden."""
    instance = FakeInstance().user("mid.east", roles=()).user("mid.west", roles=())
    return instance.mids("mid.east", down=1).mids("mid.west", up=1)


def _configured_but_no_role() -> FakeInstance:
    instance = FakeInstance(roles=("soap_script",)).user("mid.east", roles=())
    return instance.mids("mid.east", down=1)


@pytest.mark.parametrize(
    ("instance", "filtered", "says"),
    [
        pytest.param(one_user("mid.east", down=1), (), None, id="grants-visible"),
        pytest.param(FakeInstance(), (), None, id="nothing-configured-no-grants"),
        pytest.param(FakeInstance().user("old.mid"), (), None, id="grants-without-configuration"),
        pytest.param(
            _configured_but_no_grants(),
            (),
            "ecc_agent_config names 2 MID users but no grant of mid_server is visible in "
            "sys_user_has_role, which means an ACL hides its rows; grant the checking account "
            "the admin role, or a custom role with a read ACL on sys_user_has_role, or pass "
            "--force",
            id="configured-no-grants",
        ),
        pytest.param(
            _configured_but_no_role(),
            (),
            "ecc_agent_config names 1 MID user but no mid_server role is visible in sys_user_role",
            id="configured-no-role",
        ),
        pytest.param(
            one_user("mid.east", down=1),
            ("ecc_agent_issue",),
            "the instance counted more ecc_agent_issue rows (X-Total-Count) than it returned, "
            "so an ACL hides some of them; grant the checking account the admin role, or a "
            "custom role with a read ACL on ecc_agent_issue, or pass --force",
            id="issues-filtered",
        ),
        pytest.param(
            one_user("mid.east", down=1),
            ("ecc_agent_issue", "sys_user_has_role"),
            "more sys_user_has_role and ecc_agent_issue rows",
            id="two-tables-filtered-in-pull-order",
        ),
    ],
)
def test_rows_hidden(instance: FakeInstance, filtered: tuple[str, ...], says: str | None) -> None:
    inventory = instance.inventory()
    raise_if_rows_hidden(inventory, filtered=filtered, force=True)  # --force always overrides
    if says is None:
        raise_if_rows_hidden(inventory, filtered=filtered, force=False)
        return
    with pytest.raises(UnsafePlan) as raised:
        raise_if_rows_hidden(inventory, filtered=filtered, force=False)
    assert says in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("table", TABLES)
def test_any_filtered_table_is_named(table: str) -> None:
    with pytest.raises(UnsafePlan, match=f"more {table} rows"):
        raise_if_rows_hidden(one_user().inventory(), filtered={table}, force=False)


def test_a_filtered_name_that_is_not_a_table_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="incident"):
        raise_if_rows_hidden(one_user().inventory(), filtered={"incident"}, force=False)


# -- a window shorter than the default ------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "resolves", "force", "refused"),
    [
        pytest.param(timedelta(hours=4), 3, False, False, id="default-window"),
        pytest.param(timedelta(hours=8), 3, False, False, id="longer-window"),
        pytest.param(timedelta(minutes=5), 0, False, False, id="short-nothing-resolved"),
        pytest.param(timedelta(minutes=5), 1, False, True, id="short-resolves-one"),
        pytest.param(timedelta(hours=3, minutes=59), 2, False, True, id="just-under"),
        pytest.param(timedelta(minutes=5), 3, True, False, id="short-but-forced"),
    ],
)
def test_short_window(window: timedelta, resolves: int, force: bool, refused: bool) -> None:
    plan = _plan(creates=1, resolves=resolves)
    if not refused:
        raise_if_short_window_resolves(plan, window=window, force=force)
        return
    with pytest.raises(UnsafePlan) as raised:
        raise_if_short_window_resolves(plan, window=window, force=force)
    noun = "issue" if resolves == 1 else "issues"
    assert f"refusing to resolve {resolves} open {noun} with a window of" in str(raised.value)
    assert "shorter than the default 4h" in str(raised.value)


@pytest.mark.parametrize(
    ("window", "shown"),
    [
        (timedelta(hours=4), None),
        (timedelta(hours=5), None),
        (timedelta(minutes=5), "the window 5m is shorter than the default 4h"),
        (timedelta(seconds=90), "the window 1m30s is shorter"),
        (timedelta(milliseconds=300), "the window 300ms is shorter"),
    ],
)
def test_short_window_warning(window: timedelta, shown: str | None) -> None:
    warning = short_window_warning(window)
    if shown is None:
        assert warning is None
    else:
        assert warning is not None and warning.startswith(shown)
        assert "resolves the open issues of users whose failures fell outside it" in warning
