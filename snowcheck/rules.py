"""The rule set of the MIDUserConnectivity check (SPEC section 3): inventory in, findings out.

Every condition is applied here (active, status Down, param_name, event
names, the time bound), so the result is right whatever rows the pull
returned: server-side filters only make the pull cheaper.

Values are compared as the instance compares them (fidelity/README.md): what the
job asks its database (role and param names, status, event names and parm1) through
``compare``, what it decides in memory (a row's value against a user_name, grouping
rows by value, the kind of the newest event) exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from snowcheck import compare
from snowcheck.errors import ConfigError, SnowcheckError
from snowcheck.messages import DOCS, TemplateSet
from snowcheck.records import Event, Inventory, MidConfig, User

MID_ROLE = "mid_server"
SOAP_ROLES = frozenset({"soap_script", "soap", MID_ROLE})
"""Holding any of these grants soap_script: mid_server contains soap, which contains soap_script."""
USERNAME_PARAM = "mid.instance.username"
DOWN = "Down"
LOGIN = "login"
LOGIN_FAILED = "login.failed"
AUTHZ_FAILED = "login.authorization.failed"
LOGIN_EVENTS = (LOGIN, LOGIN_FAILED, AUTHZ_FAILED)

DEFAULT_WINDOW = timedelta(hours=4)
HEARTBEAT = timedelta(minutes=5)
SCHEDULING_MARGIN = timedelta(seconds=60)
"""The job's one-minute margin: since = now - window - 60 s."""


class Who(Enum):
    """Which users a rule speaks of."""

    DOWN = "down user"
    """Named by at least one mid.instance.username row whose MID Server is Down."""
    UNASSOCIATED = "role-not-configured user"
    """Active, holds mid_server, named by no mid.instance.username row."""


@dataclass(frozen=True)
class Rule:
    """One row of the seed's table: who, their last login attempt, and the rule's id."""

    id: str
    who: Who
    last_attempt: str | None
    """The event name of the last attempt in the window; None for no attempt."""
    description: str


RULES: tuple[Rule, ...] = (
    Rule(
        "auth_failed_down",
        Who.DOWN,
        LOGIN_FAILED,
        "A user of down MID Servers failed authentication: wrong password in config.xml.",
    ),
    Rule(
        "auth_failed_unassociated",
        Who.UNASSOCIATED,
        LOGIN_FAILED,
        "A mid_server user of no MID Server failed authentication.",
    ),
    Rule(
        "authz_failed_down",
        Who.DOWN,
        AUTHZ_FAILED,
        "A user of down MID Servers failed authorization: roles missing.",
    ),
    Rule(
        "authz_failed_unassociated",
        Who.UNASSOCIATED,
        AUTHZ_FAILED,
        "A mid_server user of no MID Server failed authorization.",
    ),
    Rule(
        "no_login_down",
        Who.DOWN,
        None,
        "A user of down MID Servers made no login attempt: network or service down.",
    ),
    Rule(
        "no_login_unassociated",
        Who.UNASSOCIATED,
        None,
        "A mid_server user of no MID Server made no login attempt: configuration.",
    ),
    Rule(
        "connected_unassociated",
        Who.UNASSOCIATED,
        LOGIN,
        "A mid_server user of no MID Server logged in: the role is used outside a MID Server.",
    ),
)
"""A down user whose last attempt is a successful login gets no finding."""

_RULE_BY_CASE = {(rule.who, rule.last_attempt): rule for rule in RULES}

# Two events in the same second: the failure wins, so a problem is never hidden by a tie.
_TIE_ORDER = {LOGIN: 0, AUTHZ_FAILED: 1, LOGIN_FAILED: 2}


@dataclass(frozen=True)
class Finding:
    """One rule that fired for one user; its message is the issue's identity."""

    rule: str
    user: str
    message: str
    domain: str
    down_mid_servers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    """The reporting period: events after since count, however far after now (the job's
    query has no upper bound, so an event dated in the future is the newest)."""

    now: datetime
    length: timedelta

    @property
    def since(self) -> datetime:
        return window_start(self.now, self.length)

    def holds(self, moment: datetime) -> bool:
        return self.since < moment


def window_start(now: datetime, length: timedelta) -> datetime:
    """``now - length - 60 s``; one line, not an OverflowError, when no date can hold it."""
    try:
        return now - length - SCHEDULING_MARGIN
    except OverflowError:
        raise SnowcheckError(
            f"the reporting window ({length} and a minute's margin) before now "
            f"({now.replace(tzinfo=None).isoformat(' ')}) would start before the year 1: "
            "check the instance's or snapshot's 'now', or give a shorter --window"
        ) from None


_WINDOW = re.compile(r"\s*([0-9]+)\s*(ms|h|m|s)?\s*")
MAX_WINDOW = timedelta(days=31)
"""sysevent keeps about a week; a longer window only hides typos (and overflows dates)."""


def parse_window(text: str) -> timedelta:
    """``4h``, ``5m``, ``90s``, or bare milliseconds as the job's checkConnectivity(ms) takes."""
    match = _WINDOW.fullmatch(text)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"invalid window {text!r}: give a positive duration such as 4h, 5m, 90s, "
            "or milliseconds such as 14400000"
        )
    amount, unit = int(match.group(1)), match.group(2) or "ms"
    seconds = amount * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[unit]
    if seconds > MAX_WINDOW.total_seconds():
        raise ConfigError(
            f"invalid window {text!r}: at most {MAX_WINDOW.days} days (sysevent keeps about a week)"
        )
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Condition:
    """One condition evaluated for one user, for --debug 2."""

    name: str
    result: str


@dataclass(frozen=True)
class UserTrace:
    """Every condition evaluated for one user and the rule it led to."""

    user: str
    conditions: tuple[Condition, ...]
    rule: str | None


@dataclass(frozen=True)
class Sets:
    """The named sets of SPEC section 3."""

    role_users: frozenset[str]
    """Active users holding mid_server."""
    configured_users: frozenset[str]
    """Every value of a mid.instance.username row, whatever its MID Server."""
    down_mids: Mapping[str, str]
    """sys_id to name of each MID Server whose status is Down."""
    down_counts: Mapping[str, int]
    """Down user to n, the association rows naming them whose MID Server is Down."""
    down_mid_names: Mapping[str, tuple[str, ...]]
    role_not_configured: frozenset[str]

    @property
    def down_users(self) -> frozenset[str]:
        return frozenset(self.down_counts)

    @property
    def candidates(self) -> frozenset[str]:
        return self.down_users | self.role_not_configured


@dataclass(frozen=True)
class Evaluation:
    """What the rules saw and concluded."""

    window: Window
    templates: TemplateSet
    sets: Sets
    last_attempts: Mapping[str, Event | None]
    findings: tuple[Finding, ...]
    traces: tuple[UserTrace, ...] = field(default=())

    @property
    def saw_mid_users(self) -> bool:
        return bool(self.sets.role_users or self.sets.configured_users)


class _Index:
    """Lookups over one inventory: users by name, role names by user, association rows."""

    def __init__(self, inventory: Inventory) -> None:
        # Role names are picked by a query (name=mid_server): kept as the database sees them.
        role_names = {role.sys_id: compare.fold(role.name) for role in inventory.roles if role.name}
        self.roles_of: dict[str, set[str]] = {}
        for link in inventory.user_roles:
            name = role_names.get(link.role)
            if name is not None:
                self.roles_of.setdefault(link.user, set()).add(name)
        self.users_by_name: dict[str, User] = {}
        for user in inventory.users:
            if not user.user_name:
                continue  # an empty user_name names nobody
            # Two records with one user_name: prefer the active one, as a login would.
            known = self.users_by_name.get(user.user_name)
            if known is None or (user.active and not known.active):
                self.users_by_name[user.user_name] = user
        self.holders_by_name: dict[str, User] = {}
        """Active mid_server holders by their exact user_name (lowest sys_id on a clash)."""
        for user in sorted(inventory.users, key=lambda user: user.sys_id):
            if user.user_name and user.active and self.holds(user, (MID_ROLE,)):
                self.holders_by_name.setdefault(user.user_name, user)
        # An empty value names nobody.
        self.associations: list[MidConfig] = [
            row
            for row in inventory.configs
            if compare.equal(row.param_name, USERNAME_PARAM) and row.value
        ]

    def holds(self, user: User | None, roles: Iterable[str]) -> bool:
        wanted = {compare.fold(role) for role in roles}
        return user is not None and not self.roles_of.get(user.sys_id, set()).isdisjoint(wanted)


def _sets(inventory: Inventory, index: _Index) -> Sets:
    role_users = frozenset(index.holders_by_name)
    configured = frozenset(row.value for row in index.associations)
    down_mids = {
        mid.sys_id: mid.name for mid in inventory.mid_servers if compare.equal(mid.status, DOWN)
    }
    counts: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    for row in index.associations:
        if row.ecc_agent in down_mids:
            counts[row.value] = counts.get(row.value, 0) + 1
            names.setdefault(row.value, []).append(down_mids[row.ecc_agent])
    return Sets(
        role_users=role_users,
        configured_users=configured,
        down_mids=down_mids,
        down_counts=counts,
        down_mid_names={user: tuple(sorted(mids)) for user, mids in names.items()},
        role_not_configured=role_users - configured,
    )


def event_candidates(inventory: Inventory) -> set[str]:
    """User names whose login events the rules read: down users and role-not-configured users.

    Events and issues of ``inventory`` are ignored, so the client can call this
    before it pulls events, to ask only for these users' events.
    """
    return set(_sets(inventory, _Index(inventory)).candidates)


def _tie_rank(event: Event) -> int:
    """In one second the failure wins; a name that is no kind (``Login``) ranks lowest."""
    return _TIE_ORDER.get(event.name, -1)


def kind(event: Event | None) -> str | None:
    """The kind of a last attempt, read exactly: ``Login`` or ``login.failed `` is none."""
    if event is None or event.name not in _TIE_ORDER:
        return None
    return event.name


def _last_attempts(
    events: Iterable[Event], users: frozenset[str], window: Window
) -> dict[str, Event | None]:
    """Each user's newest login event: name and parm1 compared as the database does.

    One event can be the last attempt of several users (``mid.svc`` and ``MID.Svc``).
    """
    last: dict[str, Event | None] = dict.fromkeys(users)
    spellings: dict[str, list[str]] = {}
    for user in users:
        spellings.setdefault(compare.fold(user), []).append(user)
    for event in events:
        if not compare.one_of(event.name, LOGIN_EVENTS) or not event.parm1:
            continue
        if not window.holds(event.created_on):
            continue
        for user in spellings.get(compare.fold(event.parm1), ()):
            known = last[user]
            if known is None or (event.created_on, _tie_rank(event)) > (
                known.created_on,
                _tie_rank(known),
            ):
                last[user] = event
    return last


def _domain(user_name: str, index: _Index, sets: Sets) -> str:
    """The holder's domain for an active mid_server holder (by exact name), else the row's."""
    holder = index.holders_by_name.get(user_name)
    if holder is not None:
        return holder.sys_domain
    for row in sorted(index.associations, key=lambda row: row.sys_id):
        if row.value == user_name and row.ecc_agent in sets.down_mids:
            return row.sys_domain
    return "global"


def _notes(
    user_name: str, user: User | None, last: Event | None, down: bool, index: _Index
) -> tuple[str, ...]:
    notes: list[str] = []
    if last is not None and kind(last) == AUTHZ_FAILED and last.parm2.strip():
        missing = ", ".join(role.strip() for role in last.parm2.split(",") if role.strip())
        notes.append(f"Missing roles: {missing}")
    if down:
        if user is None:
            notes.append("No sys_user record has this User ID.")
        else:
            if not user.active:
                notes.append("The user is inactive (active=false).")
            if user.locked_out:
                notes.append("The user is locked out.")
        if not index.holds(user, SOAP_ROLES):
            notes.append(
                f"Connectivity of MID Server user {user_name} cannot be detected by the instance."
            )
    return tuple(notes)


def _describe(event: Event | None) -> str:
    if event is None:
        return "none in window"
    return f"{event.name} at {event.created_on:%Y-%m-%d %H:%M:%S}"


def evaluate(
    inventory: Inventory,
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    templates: TemplateSet = DOCS,
) -> Evaluation:
    """Run every rule over the inventory; findings come sorted by rule order, then user."""
    index = _Index(inventory)
    sets = _sets(inventory, index)
    span = Window(now=now, length=window)
    last_attempts = _last_attempts(inventory.events, sets.candidates, span)
    rule_order = {rule.id: position for position, rule in enumerate(RULES)}

    findings: list[Finding] = []
    traces: list[UserTrace] = []
    watched = sets.candidates | sets.role_users | sets.configured_users
    for user_name in sorted(watched):
        user = index.users_by_name.get(user_name)
        n = sets.down_counts.get(user_name, 0)
        who = (
            Who.DOWN
            if n >= 1
            else Who.UNASSOCIATED
            if user_name in sets.role_not_configured
            else None
        )
        last = last_attempts.get(user_name)
        rule = _RULE_BY_CASE.get((who, kind(last))) if who else None
        conditions = (
            Condition("in sys_user", "yes" if user else "no"),
            Condition("active", "n/a" if user is None else str(user.active).lower()),
            Condition("holds mid_server", "yes" if index.holds(user, (MID_ROLE,)) else "no"),
            Condition("holds soap_script", "yes" if index.holds(user, SOAP_ROLES) else "no"),
            Condition(
                "configured (mid.instance.username)",
                "yes" if user_name in sets.configured_users else "no",
            ),
            Condition("down MID Servers (n)", str(n)),
            Condition("kind", who.value if who else "not watched"),
            Condition("last attempt", _describe(last) if who else "not read"),
        )
        traces.append(UserTrace(user_name, conditions, rule.id if rule else None))
        if rule is None or who is None:
            continue
        findings.append(
            Finding(
                rule=rule.id,
                user=user_name,
                message=templates.render(rule.id, user_name, n),
                domain=_domain(user_name, index, sets),
                down_mid_servers=sets.down_mid_names.get(user_name, ()),
                notes=_notes(user_name, user, last, who is Who.DOWN, index),
            )
        )
    findings.sort(key=lambda f: (rule_order[f.rule], f.user))
    return Evaluation(
        window=span,
        templates=templates,
        sets=sets,
        last_attempts=last_attempts,
        findings=tuple(findings),
        traces=tuple(traces),
    )
