"""``snowcheck explain USER``: everything behind one user's finding, or its absence, as a value.

Pure: it reads the outcome of a check (records, evaluation, plan) and never
prints; ``render_explain`` shows it and the command prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from snowcheck.advisories import Advisory
from snowcheck.check import Outcome
from snowcheck.errors import ConfigError
from snowcheck.plan import Action, Change
from snowcheck.records import Event, Issue, MidServer, User
from snowcheck.remedies import hint
from snowcheck.rules import (
    LOGIN,
    LOGIN_EVENTS,
    MID_ROLE,
    RULES,
    USERNAME_PARAM,
    Condition,
    Finding,
)

SHOWN_ROLES = (MID_ROLE, "soap_script", "soap")
"""The roles that matter to the check: mid_server, and soap_script or a role containing it."""


@dataclass(frozen=True)
class Explanation:
    """One user as the check saw them, and what the check concluded."""

    user: str
    now: datetime
    since: datetime
    record: User | None
    """The user's sys_user row; None when no row has this User ID."""
    roles: tuple[str, ...]
    """The roles of SHOWN_ROLES the user holds."""
    mid_servers: tuple[MidServer, ...]
    """MID Servers whose mid.instance.username names the user."""
    events: tuple[Event, ...]
    """The user's login events inside the window, newest first."""
    conditions: tuple[Condition, ...]
    last_attempt: Event | None
    """The attempt the rules read: the user's last login event in the window."""
    rule: str | None
    reason: str
    """Why the rule fires, or why none does."""
    finding: Finding | None
    issue: Issue | None
    """The open issue with the finding's message (or, with no finding, the one resolved)."""
    change: Change | None
    """What the plan does to that issue: create, update or resolve; None if nothing."""
    advisories: tuple[Advisory, ...] | None = None
    """The advisories about the user or its MID Servers; None when they were not computed."""

    @property
    def hint(self) -> str:
        return hint(self.rule) if self.rule else ""


def _reason(rule: str | None, record: User | None, kind: str, last: Event | None) -> str:
    if rule is not None:
        description = next(r.description for r in RULES if r.id == rule)
        return f"{rule} fires: {description}"
    if kind == "down user" and last is not None and last.name == LOGIN:
        return (
            "no rule fires: the last attempt in the window is a successful login, "
            "so the MID Server's user is not the problem"
        )
    if record is not None and not record.active:
        return (
            "no rule fires: the user is inactive and no MID Server that is Down names it "
            "(only active users with mid_server are watched)"
        )
    return (
        "no rule fires: no MID Server that is Down names the user, and the user is not an "
        "active holder of mid_server without a MID Server"
    )


def explain(outcome: Outcome, user: str) -> Explanation:
    """Gather what the check read and concluded about ``user``; ConfigError if no table knows it."""
    inventory = outcome.inventory
    evaluation = outcome.evaluation
    window = evaluation.window
    records = [u for u in inventory.users if u.user_name == user]
    record = next((u for u in records if u.active), records[0] if records else None)
    configs = [c for c in inventory.configs if c.param_name == USERNAME_PARAM and c.value == user]
    all_events = [e for e in inventory.events if e.parm1 == user]
    trace = next((t for t in evaluation.traces if t.user == user), None)
    if record is None and not configs and not all_events and trace is None:
        raise ConfigError(
            f"no user {user!r} in sys_user, mid.instance.username or the login events"
        )

    role_names = {role.sys_id: role.name for role in inventory.roles}
    held = {
        role_names.get(link.role, "")
        for link in inventory.user_roles
        if record is not None and link.user == record.sys_id
    }
    by_id = {mid.sys_id: mid for mid in inventory.mid_servers}
    mids = tuple(
        sorted((by_id[c.ecc_agent] for c in configs if c.ecc_agent in by_id), key=lambda m: m.name)
    )
    events = tuple(
        sorted(
            (e for e in all_events if e.name in LOGIN_EVENTS and window.holds(e.created_on)),
            key=lambda e: e.created_on,
            reverse=True,
        )
    )
    conditions = trace.conditions if trace else ()
    kind = next((c.result for c in conditions if c.name == "kind"), "not watched")
    rule = trace.rule if trace else None
    finding = next((f for f in evaluation.findings if f.user == user), None)
    change, issue = _issue_and_change(outcome, user, finding)
    return Explanation(
        user=user,
        now=window.now,
        since=window.since,
        record=record,
        roles=tuple(role for role in SHOWN_ROLES if role in held),
        mid_servers=mids,
        events=events,
        conditions=conditions,
        last_attempt=evaluation.last_attempts.get(user),
        rule=rule,
        reason=_reason(rule, record, kind, evaluation.last_attempts.get(user)),
        finding=finding,
        issue=issue,
        change=change,
        advisories=None
        if outcome.advice is None
        else outcome.advice.about(user, (mid.name or mid.sys_id for mid in mids)),
    )


def _issue_and_change(
    outcome: Outcome, user: str, finding: Finding | None
) -> tuple[Change | None, Issue | None]:
    """The plan's change for the finding's message; with no finding, a resolve naming the user."""
    changes = outcome.plan.changes
    if finding is not None:
        change = next((c for c in changes if c.message == finding.message), None)
        message = finding.message
    else:
        # The seed's messages all name the user as "User <name> ".
        change = next(
            (c for c in changes if c.action is Action.RESOLVE and f"User {user} " in c.message),
            None,
        )
        if change is None:
            return None, None
        message = change.message
    open_issues = [
        issue
        for issue in outcome.inventory.issues
        if issue.message == message
        and issue.source == outcome.source
        and issue.is_open
        and issue.mid_server == ""
    ]
    issue = next(
        (i for i in open_issues if change is not None and i.sys_id == change.sys_id),
        open_issues[0] if open_issues else None,
    )
    return change, issue
