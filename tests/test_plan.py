"""The plan of SPEC section 4: findings diffed against open issues, a case per lifecycle bullet."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from factories import (
    FAILED,
    INSIDE,
    LOGIN,
    NOW,
    NOW_TEXT,
    SOURCE,
    issue_row,
    issues,
    one_user,
    reference,
)

from snowcheck.errors import UnsafePlan
from snowcheck.plan import (
    Action,
    Change,
    Plan,
    build_plan,
    concurrent_create_survivor,
    most_recently_updated,
)
from snowcheck.records import ISSUE_TABLE, Inventory
from snowcheck.rules import Finding

EAST = (
    "Login authentication failure for User mid.east associated with 1 down MID Server. "
    "Check password on MID server."
)
WEST = (
    "User mid.west is associated with 1 down MID Server. No login attempts within reporting period."
)
GHOST = (
    "User ghost is associated with 1 down MID Server. No login attempts within reporting period."
)


def finding(message: str, domain: str = "global", user: str = "mid.east") -> Finding:
    return Finding(rule="auth_failed_down", user=user, message=message, domain=domain)


def plan_of(
    findings: list[Finding], *rows: dict[str, Any], source: str = SOURCE, now: datetime = NOW
) -> Plan:
    return build_plan(findings, issues(*rows), source=source, now=now)


def summary(plan: Plan) -> list[tuple[str, str | None, str]]:
    return [(change.action.value, change.sys_id, change.message) for change in plan.changes]


# ---------------------------------------------------------------------------
# Update: a finding with an open issue.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [pytest.param("new", id="new-stays-new"), pytest.param("acknowledged", id="ack-stays-ack")],
)
def test_update_increments_count_and_keeps_state(state: str) -> None:
    plan = plan_of(
        [finding(EAST, domain="acme")],
        issue_row(EAST, state=state, count="4", domain="global", record="i1"),
    )
    (change,) = plan.changes
    assert change == Change(
        action=Action.UPDATE,
        message=EAST,
        sys_id="i1",
        state_before=state,
        count_before=4,
        state=state,
        count=5,
        payload={},
    )
    assert dict(change.payload) == {
        "count": "5",
        "last_detected": NOW_TEXT,
        "sys_domain": "acme",
    }


def test_update_of_an_issue_with_an_empty_count() -> None:
    (change,) = plan_of([finding(EAST)], issue_row(EAST, count="", record="i1")).changes
    assert (change.count_before, change.count, change.payload["count"]) == (0, 1, "1")


@pytest.mark.parametrize(
    ("now", "text"),
    [
        pytest.param(NOW, "2026-11-25 12:00:00", id="utc"),
        pytest.param(
            datetime(2026, 11, 25, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-25 12:00:00",
            id="plus-two-hours-written-as-utc",
        ),
        pytest.param(
            NOW.replace(microsecond=999_999), "2026-11-25 12:00:00", id="microseconds-dropped"
        ),
    ],
)
def test_last_detected_is_now_formatted(now: datetime, text: str) -> None:
    update = plan_of([finding(EAST)], issue_row(EAST, record="i1"), now=now).changes[0]
    create = plan_of([finding(WEST)], now=now).changes[0]
    assert update.payload["last_detected"] == text
    assert create.payload["last_detected"] == text


# ---------------------------------------------------------------------------
# Create: a finding without an open issue.
# ---------------------------------------------------------------------------


def test_create_writes_the_whole_record() -> None:
    (change,) = plan_of([finding(EAST, domain="acme")]).changes
    assert (change.action, change.sys_id, change.state_before, change.count_before) == (
        Action.CREATE,
        None,
        None,
        None,
    )
    assert (change.state, change.count) == ("new", 1)
    assert dict(change.payload) == {
        "message": EAST,
        "source": "MIDUserConnectivity",
        "state": "new",
        "count": "1",
        "last_detected": NOW_TEXT,
        "sys_domain": "acme",
        "mid_server": "",
    }


def test_resolved_issue_is_never_reopened() -> None:
    plan = plan_of([finding(EAST)], issue_row(EAST, state="resolved", count="9", record="old"))
    assert summary(plan) == [("create", None, EAST)]
    assert plan.open_issues == 0


def test_open_issue_wins_over_a_resolved_one() -> None:
    plan = plan_of(
        [finding(EAST)],
        issue_row(EAST, state="resolved", record="old", updated_on="2026-11-25 11:00:00"),
        issue_row(EAST, state="acknowledged", record="open", updated_on="2026-11-20 11:00:00"),
    )
    assert summary(plan) == [("update", "open", EAST)]
    assert plan.warnings == ()


def test_one_change_per_message() -> None:
    plan = plan_of([finding(EAST), finding(EAST)])
    assert summary(plan) == [("create", None, EAST)]


# ---------------------------------------------------------------------------
# Resolve: an open issue of our source that no finding matches.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["new", "acknowledged"])
def test_resolve_sends_only_the_state(state: str) -> None:
    (change,) = plan_of([], issue_row(GHOST, state=state, count="7", record="g")).changes
    assert (change.action, change.sys_id, change.message) == (Action.RESOLVE, "g", GHOST)
    assert (change.state_before, change.count_before, change.state, change.count) == (
        state,
        7,
        "resolved",
        7,
    )
    assert dict(change.payload) == {"state": "resolved"}


# ---------------------------------------------------------------------------
# Issues the plan never touches.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(issue_row(GHOST, source="ECCQueueMonitor"), id="other-source"),
        pytest.param(issue_row(GHOST, source=""), id="source-empty"),
        pytest.param(issue_row(GHOST, mid_server="m1"), id="with-mid_server"),
        pytest.param(
            issue_row(GHOST, mid_server=reference("ecc_agent", "m1", link=True)),
            id="with-mid_server-link",
        ),
        pytest.param(issue_row(GHOST, state="resolved"), id="resolved"),
        pytest.param(issue_row(GHOST, state="RESOLVED"), id="resolved-other-case"),
        pytest.param(issue_row(GHOST, state="resolved "), id="resolved-trailing-space"),
        pytest.param(issue_row(GHOST, state=""), id="empty-state"),
        pytest.param(issue_row("", state="new"), id="empty-message"),
    ],
)
def test_issues_left_alone(row: dict[str, Any]) -> None:
    plan = plan_of([], row)
    assert plan.changes == ()
    assert plan.open_issues == 0


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(issue_row(EAST, source="ECCQueueMonitor", record="x"), id="other-source"),
        pytest.param(issue_row(EAST, mid_server="m1", record="x"), id="with-mid_server"),
    ],
)
def test_finding_matching_only_an_untouchable_issue_creates(row: dict[str, Any]) -> None:
    assert summary(plan_of([finding(EAST)], row)) == [("create", None, EAST)]


def test_issue_with_empty_mid_server_link_is_ours() -> None:
    row = issue_row(GHOST, mid_server={"link": "", "value": ""}, record="g")
    assert summary(plan_of([], row)) == [("resolve", "g", GHOST)]


# ---------------------------------------------------------------------------
# Duplicates: several open issues share one message.
# ---------------------------------------------------------------------------


def test_duplicates_update_the_most_recently_updated_and_warn() -> None:
    plan = plan_of(
        [finding(EAST)],
        issue_row(EAST, record="older", count="3", updated_on="2026-11-25 08:00:00"),
        issue_row(EAST, record="newest", count="1", updated_on="2026-11-25 10:00:00"),
        issue_row(EAST, record="oldest", count="8", updated_on="2026-11-24 23:00:00"),
    )
    assert summary(plan) == [("update", "newest", EAST)]
    assert plan.changes[0].count == 2
    assert plan.open_issues == 3
    (warning,) = plan.warnings
    for sys_id in ("newest", "older", "oldest"):
        assert sys_id in warning
    assert EAST in warning


def test_duplicates_without_a_finding_are_all_resolved() -> None:
    plan = plan_of(
        [],
        issue_row(GHOST, record="a", updated_on="2026-11-25 08:00:00"),
        issue_row(GHOST, record="b", updated_on="2026-11-25 09:00:00"),
    )
    assert summary(plan) == [("resolve", "a", GHOST), ("resolve", "b", GHOST)]


# ---------------------------------------------------------------------------
# Order and source.
# ---------------------------------------------------------------------------


def test_order_is_resolve_update_create() -> None:
    plan = plan_of(
        [finding("Z create"), finding("A update"), finding("M create")],
        issue_row("A update", record="u"),
        issue_row("B resolve", record="r2"),
        issue_row("A resolve", record="r1"),
    )
    assert summary(plan) == [
        ("resolve", "r1", "A resolve"),
        ("resolve", "r2", "B resolve"),
        ("update", "u", "A update"),
        ("create", None, "M create"),
        ("create", None, "Z create"),
    ]
    assert [c.sys_id for c in plan.of(Action.RESOLVE)] == ["r1", "r2"]
    assert [c.message for c in plan.of(Action.CREATE)] == ["M create", "Z create"]


def test_custom_source() -> None:
    plan = plan_of(
        [finding(EAST)],
        issue_row(EAST, source=SOURCE, record="default-source"),
        issue_row(EAST, source="MyCheck", record="mine", count="2"),
        issue_row(GHOST, source=SOURCE, record="default-ghost"),
        source="MyCheck",
    )
    assert summary(plan) == [("update", "mine", EAST)]
    created = plan_of([finding(WEST)], source="MyCheck").changes[0]
    assert created.payload["source"] == "MyCheck"


# ---------------------------------------------------------------------------
# Safety: a plan that resolves everything while no MID user was seen.
# ---------------------------------------------------------------------------


def unsafe_plan() -> Plan:
    return plan_of([], issue_row(GHOST, record="g1"), issue_row(WEST, record="g2"))


@pytest.mark.parametrize(
    ("plan", "saw_mid_users", "force", "refused"),
    [
        pytest.param(unsafe_plan(), False, False, True, id="resolves-all-saw-nobody"),
        pytest.param(unsafe_plan(), False, True, False, id="resolves-all-forced"),
        pytest.param(unsafe_plan(), True, False, False, id="resolves-all-saw-mid-users"),
        pytest.param(plan_of([]), False, False, False, id="nothing-open"),
        pytest.param(
            plan_of([finding(EAST)], issue_row(EAST, record="e")),
            False,
            False,
            False,
            id="nothing-resolved",
        ),
        pytest.param(
            plan_of([finding(EAST)], issue_row(EAST, record="e"), issue_row(GHOST, record="g")),
            False,
            False,
            False,
            id="resolves-some",
        ),
        pytest.param(
            plan_of([], issue_row(GHOST, record="a"), issue_row(GHOST, record="b")),
            False,
            False,
            True,
            id="resolves-all-duplicates",
        ),
    ],
)
def test_raise_if_unsafe(plan: Plan, saw_mid_users: bool, force: bool, refused: bool) -> None:
    if refused:
        with pytest.raises(UnsafePlan, match="--force"):
            plan.raise_if_unsafe(saw_mid_users=saw_mid_users, force=force)
    else:
        plan.raise_if_unsafe(saw_mid_users=saw_mid_users, force=force)


# ---------------------------------------------------------------------------
# Lifecycle over several runs, with the instance's writes simulated on raw rows.
# ---------------------------------------------------------------------------


def apply(plan: Plan, rows: list[dict[str, Any]], updated_on: str) -> None:
    """Write the plan to the raw rows the way the Table API would (POST / PATCH)."""
    by_id = {row["sys_id"]: row for row in rows}
    for change in plan.changes:
        if change.action is Action.CREATE:
            created = {
                **change.payload,
                "sys_id": f"new{len(rows)}",
                "sys_updated_on": updated_on,
            }
            rows.append(created)
            by_id[created["sys_id"]] = created
        else:
            assert change.sys_id is not None
            by_id[change.sys_id].update(change.payload, sys_updated_on=updated_on)


def run(instance_events: list[tuple[str, str]], rows: list[dict[str, Any]]) -> Plan:
    instance = one_user("mid.east", down=1, events=instance_events)
    evaluation = instance.evaluate()
    plan = build_plan(
        evaluation.findings,
        Inventory.from_tables({ISSUE_TABLE: rows}).issues,
        source=SOURCE,
        now=NOW,
    )
    apply(plan, rows, NOW_TEXT)
    return plan


def test_lifecycle_create_update_acknowledge_resolve_and_create_again() -> None:
    rows: list[dict[str, Any]] = []
    failing = [(FAILED, INSIDE)]

    first = run(failing, rows)
    assert summary(first) == [("create", None, EAST)]
    assert (rows[0]["state"], rows[0]["count"]) == ("new", "1")

    second = run(failing, rows)
    assert summary(second) == [("update", "new0", EAST)]
    assert (rows[0]["state"], rows[0]["count"]) == ("new", "2")

    rows[0]["state"] = "acknowledged"  # an administrator looked at it
    third = run(failing, rows)
    assert summary(third) == [("update", "new0", EAST)]
    assert (rows[0]["state"], rows[0]["count"]) == ("acknowledged", "3")

    fixed = run([(FAILED, "2026-11-25 11:00:00"), (LOGIN, INSIDE)], rows)
    assert summary(fixed) == [("resolve", "new0", EAST)]
    assert (rows[0]["state"], rows[0]["count"]) == ("resolved", "3")

    again = run(failing, rows)
    assert summary(again) == [("create", None, EAST)]
    assert [(row["sys_id"], row["state"]) for row in rows] == [
        ("new0", "resolved"),
        ("new1", "new"),
    ]


# Which duplicate survives ---------------------------------------------------------------------


def test_the_plan_updates_the_most_recently_updated_of_duplicates() -> None:
    older = issue_row("dup", updated_on="2026-11-25 07:00:00", record="a-older")
    newer = issue_row("dup", updated_on="2026-11-25 08:00:00", record="b-newer")
    issues = Inventory.from_tables({ISSUE_TABLE: [newer, older]}).issues
    finding = Finding(rule="r", user="u", message="dup", domain="global")
    plan = build_plan([finding], issues, source=SOURCE, now=NOW)
    assert [c.sys_id for c in plan.of(Action.UPDATE)] == ["b-newer"]
    assert (
        most_recently_updated(
            [("2026-11-25 07:00:00", "a-older"), ("2026-11-25 08:00:00", "b-newer")]
        )
        == "b-newer"
    )


def test_settling_concurrent_creates_keeps_the_earliest_created_whatever_was_updated() -> None:
    # The same two copies: settling keeps the one created first, which the plan would not.
    created = [("2026-11-25 10:00:01", "b-newer"), ("2026-11-25 10:00:00", "a-older")]
    assert concurrent_create_survivor(created) == "a-older"
    updated = [("2026-11-25 10:00:00", "a-older"), ("2026-11-25 10:00:05", "b-newer")]
    assert most_recently_updated(updated) == "b-newer"
    # A tie on the second goes to the smaller sys_id, so every run keeps the same copy.
    tie = [("2026-11-25 10:00:00", "zzzz"), ("2026-11-25 10:00:00", "aaaa")]
    assert concurrent_create_survivor(tie) == concurrent_create_survivor(reversed(tie)) == "aaaa"


# ---------------------------------------------------------------------------
# Issues are matched as the instance's database compares (fidelity/README.md).
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(EAST.replace("mid.east", "MID.East"), id="name-other-case"),
        pytest.param(EAST.upper(), id="all-upper-case"),
        pytest.param(EAST + " ", id="trailing-space"),
        pytest.param(EAST + "   ", id="trailing-spaces"),
    ],
)
def test_an_issue_differing_in_case_or_trailing_spaces_is_updated_and_kept_as_stored(
    stored: str,
) -> None:
    plan = plan_of([finding(EAST)], issue_row(stored, state="acknowledged", count="5", record="i"))
    assert summary(plan) == [("update", "i", stored)]
    assert (plan.changes[0].state, plan.changes[0].count) == ("acknowledged", 6)
    assert "message" not in plan.changes[0].payload


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(" " + EAST, id="leading-space"),
        pytest.param(EAST + "\t", id="trailing-tab"),
        pytest.param(EAST + "\n", id="trailing-newline"),
        pytest.param(EAST.replace("mid.east", "mid.éast"), id="accent"),
    ],
)
def test_other_differences_make_another_issue(stored: str) -> None:
    plan = plan_of([finding(EAST)], issue_row(stored, record="i"))
    assert summary(plan) == [("resolve", "i", stored), ("create", None, EAST)]


@pytest.mark.parametrize(
    "source", ["miduserconnectivity", "MIDUSERCONNECTIVITY", "MIDUserConnectivity "]
)
def test_source_is_compared_as_the_database_does(source: str) -> None:
    assert summary(plan_of([], issue_row(GHOST, source=source, record="g"))) == [
        ("resolve", "g", GHOST)
    ]
    assert summary(plan_of([finding(GHOST)], issue_row(GHOST, source=source, record="g"))) == [
        ("update", "g", GHOST)
    ]


@pytest.mark.parametrize("state", ["New", "ACKNOWLEDGED", "new ", "pending"])
def test_any_non_empty_state_but_resolved_is_open(state: str) -> None:
    plan = plan_of([finding(EAST)], issue_row(EAST, state=state, count="2", record="i"))
    assert [(c.action, c.state, c.count) for c in plan.changes] == [(Action.UPDATE, state, 3)]


def test_an_issue_with_an_empty_state_is_never_touched_and_the_finding_gets_a_new_one() -> None:
    plan = plan_of([finding(EAST)], issue_row(EAST, state="", record="e"))
    assert summary(plan) == [("create", None, EAST)]
    assert plan.open_issues == 0


def test_findings_equal_under_the_database_comparison_are_one_issue_counted_once() -> None:
    upper = EAST.replace("mid.east", "MID.EAST")
    findings = [finding(upper, domain="acme", user="MID.EAST"), finding(EAST, user="mid.east")]
    created = plan_of(findings)
    assert summary(created) == [("create", None, upper)]
    assert created.changes[0].payload["sys_domain"] == "acme"  # the first finding's
    updated = plan_of(findings, issue_row(EAST, count="3", record="i"))
    assert summary(updated) == [("update", "i", EAST)]
    assert updated.changes[0].count == 4


def test_duplicates_differing_in_spelling_are_one_identity() -> None:
    plan = plan_of(
        [finding(EAST)],
        issue_row(EAST.upper(), record="older", updated_on="2026-11-25 08:00:00"),
        issue_row(EAST + " ", record="newest", updated_on="2026-11-25 10:00:00"),
    )
    assert summary(plan) == [("update", "newest", EAST + " ")]
    assert len(plan.warnings) == 1
