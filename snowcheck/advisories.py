"""Advisories: causes of MID Server trouble that the rows show but the instance's job never reports.

Pure, like the rules: typed records in, advisories out. Advisories are never written to
ecc_agent_issue: the write-back stays exactly the job's. Each advisory needs some of the
extra reads (``records.EXTRA_READS``); when one is missing (no read access, or a snapshot
from before the advisories) the advisories needing it are skipped, and ``Advice.notes``
says which and why, for ``--debug 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from snowcheck.records import (
    ALL_MID_SERVERS,
    CLONE_ISSUES,
    PROPERTIES,
    Inventory,
    Issue,
    MidServer,
    Snapshot,
    User,
)
from snowcheck.rules import USERNAME_PARAM

HEARTBEAT_LIMIT = timedelta(minutes=15)
"""Three missed 5-minute heartbeats: by then the instance's monitor marks a MID Server Down."""
SHARED_LIMIT = 3
"""MID Servers on one user from which one wrong config.xml is worth a warning."""
BUILDSTAMP = "mid.buildstamp"
VERSION_OVERRIDE = "mid.version.override"
VERSION_PROPERTIES = (BUILDSTAMP, VERSION_OVERRIDE)
CLONE_SOURCE = "InstanceClone"

WHY_UNREAD: Mapping[str, str] = {
    ALL_MID_SERVERS: "only the Down MID Servers were read (a snapshot from before advisories)",
    PROPERTIES: "sys_properties was not read (no read access, or an older snapshot)",
    CLONE_ISSUES: "the InstanceClone issues were not read (an older snapshot)",
}
"""Why an extra read is missing, when the caller knows no better."""


def _same(a: str, b: str) -> bool:
    """Equal as the instance's database compares: trailing spaces dropped, case ignored.

    The MID Server dashboard compares user names this way. Kept private here so this
    module stands alone; a shared comparison module may replace it.
    """
    return _key(a) == _key(b)


def _key(value: str) -> str:
    return value.rstrip(" ").lower()


class Severity(StrEnum):
    """How soon an advisory hurts."""

    ERROR = "error"
    """The MID Server cannot log in while this lasts."""
    WARNING = "warning"
    """Likely a cause, or soon one."""
    INFO = "info"
    """A risk, not yet a fault."""


@dataclass(frozen=True)
class Advisory:
    """One advisory about one subject; only id, severity, subject and detail are shown."""

    id: str
    severity: Severity
    subject: str
    """The user or MID Server it is about, spelled as the instance holds it."""
    detail: str
    users: tuple[str, ...] = ()
    """The user names it concerns, for ``explain USER``."""
    mid_servers: tuple[str, ...] = ()
    """The names of the MID Servers it concerns, for ``explain USER``."""


@dataclass(frozen=True)
class Skipped:
    """An advisory not computed, and why."""

    advisory: str
    reason: str

    def __str__(self) -> str:
        return f"{self.advisory} skipped: {self.reason}"


@dataclass(frozen=True)
class Advice:
    """The advisories of one check, and what could not be checked."""

    advisories: tuple[Advisory, ...]
    skipped: tuple[Skipped, ...] = ()
    partial: tuple[str, ...] = ()
    """Advisories computed without some records, whose rows lack the field they need."""

    @property
    def notes(self) -> tuple[str, ...]:
        """One line per skipped or partial advisory, for ``--debug 1``."""
        return (*(str(skip) for skip in self.skipped), *self.partial)

    def count(self, advisory: str) -> int:
        return sum(1 for item in self.advisories if item.id == advisory)

    def about(self, user: str, mid_servers: Iterable[str] = ()) -> tuple[Advisory, ...]:
        """The advisories about ``user`` (database comparison) or any of ``mid_servers``."""
        names = set(mid_servers)
        return tuple(
            item
            for item in self.advisories
            if any(_same(user, name) for name in item.users) or names & set(item.mid_servers)
        )


class Unavailable(Exception):
    """Raised by a check whose data is present but unusable (a property missing)."""


@dataclass(frozen=True)
class Hit:
    """What a check found, before the table gives it its id and severity."""

    subject: str
    detail: str
    users: tuple[str, ...] = ()
    mid_servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Served:
    """One configured user (names equal under the database comparison) and its MID Servers."""

    name: str
    """The first spelling, in sorted order, of the mid.instance.username values."""
    spellings: tuple[str, ...]
    mid_servers: tuple[str, ...]
    """Names of the MID Servers it is configured on, sorted."""
    user: User | None
    """Its sys_user record: the exact spelling first, else one equal under the comparison."""


@dataclass(frozen=True)
class Facts:
    """What the checks read, indexed once."""

    now: datetime
    mid_servers: tuple[MidServer, ...]
    """Every MID Server read, sorted by name."""
    configured: Mapping[str, tuple[str, ...]]
    """MID Server sys_id to its mid.instance.username values."""
    served: tuple[Served, ...]
    """Configured users of known MID Servers, sorted by name."""
    properties: Mapping[str, str]
    """sys_properties values by lowercased name."""
    issues: tuple[Issue, ...]

    @classmethod
    def of(cls, inventory: Inventory, now: datetime) -> Facts:
        mids = {mid.sys_id: mid for mid in inventory.mid_servers}
        configured: dict[str, list[str]] = {}
        for row in inventory.configs:
            # Empty names name nobody (fidelity section 5); param_name as the database compares.
            if row.value and row.ecc_agent in mids and _same(row.param_name, USERNAME_PARAM):
                configured.setdefault(row.ecc_agent, []).append(row.value)
        users: dict[str, list[User]] = {}
        for user in inventory.users:
            users.setdefault(_key(user.user_name), []).append(user)
        by_key: dict[str, dict[str, set[str]]] = {}
        for agent, values in configured.items():
            for value in values:
                entry = by_key.setdefault(_key(value), {"spellings": set(), "mids": set()})
                entry["spellings"].add(value)
                entry["mids"].add(agent)
        served = tuple(
            sorted(
                (
                    Served(
                        name=min(entry["spellings"]),
                        spellings=tuple(sorted(entry["spellings"])),
                        mid_servers=tuple(
                            sorted(_mid_name(mids[agent]) for agent in entry["mids"])
                        ),
                        user=_find_user(users, sorted(entry["spellings"])),
                    )
                    for entry in by_key.values()
                ),
                key=lambda item: item.name,
            )
        )
        return cls(
            now=now,
            mid_servers=tuple(sorted(mids.values(), key=lambda mid: (_mid_name(mid), mid.sys_id))),
            configured={agent: tuple(values) for agent, values in configured.items()},
            served=served,
            properties={prop.name.lower(): prop.value for prop in inventory.properties},
            issues=inventory.issues,
        )

    def lacking(self, record_field: str) -> tuple[str, ...]:
        """The records (MID Server or user names) whose rows lack ``record_field``."""
        if record_field == "sys_user.password_needs_reset":
            return tuple(
                item.name
                for item in self.served
                if item.user is not None and item.user.password_needs_reset is None
            )
        value_of: Callable[[MidServer], str | None] = {
            "ecc_agent.user_name": lambda mid: mid.user_name,
            "ecc_agent.validated": lambda mid: mid.validated,
            "ecc_agent.version": lambda mid: mid.version,
        }[record_field]
        return tuple(_mid_name(mid) for mid in self.mid_servers if value_of(mid) is None)


def _mid_name(mid: MidServer) -> str:
    return mid.name or mid.sys_id


def _find_user(users: Mapping[str, list[User]], spellings: list[str]) -> User | None:
    """The record a login as these spellings reaches: exact name first, active first."""
    candidates = sorted(
        users.get(_key(spellings[0]), []),
        key=lambda user: (user.user_name not in spellings, not user.active, user.user_name),
    )
    return candidates[0] if candidates else None


# -- the checks: one small function per advisory ---------------------------------------------


def _mid_user_mismatch(facts: Facts) -> Iterator[Hit]:
    for mid in facts.mid_servers:
        configured = facts.configured.get(mid.sys_id, ())
        logged_in = mid.user_name or ""
        if not configured or not logged_in.strip():
            continue  # nothing configured, or the MID Server never logged in
        if any(_same(logged_in, value) for value in configured):
            continue
        yield Hit(
            subject=_mid_name(mid),
            detail=f"logged in as {logged_in}, but mid.instance.username is "
            f"{', '.join(sorted(set(configured)))}",
            users=(logged_in, *sorted(set(configured))),
            mid_servers=(_mid_name(mid),),
        )


def _user_flag(flag: Callable[[User], bool | None], words: str) -> Callable[[Facts], Iterator[Hit]]:
    def check(facts: Facts) -> Iterator[Hit]:
        for item in facts.served:
            if item.user is not None and flag(item.user):
                yield Hit(
                    subject=item.name,
                    detail=f"{words}; configured on {', '.join(item.mid_servers)}",
                    users=item.spellings,
                    mid_servers=item.mid_servers,
                )

    return check


def _shared_mid_user(facts: Facts) -> Iterator[Hit]:
    for item in facts.served:
        if len(item.mid_servers) >= SHARED_LIMIT:
            yield Hit(
                subject=item.name,
                detail=f"configured on {len(item.mid_servers)} MID Servers: "
                f"{', '.join(item.mid_servers)}",
                users=item.spellings,
                mid_servers=item.mid_servers,
            )


def _heartbeat_overdue(facts: Facts) -> Iterator[Hit]:
    for mid in facts.mid_servers:
        if not _same(mid.status, "Up") or mid.last_refreshed is None:
            continue
        age = facts.now - mid.last_refreshed
        if age > HEARTBEAT_LIMIT:
            yield Hit(
                subject=_mid_name(mid),
                detail=f"status Up, last refreshed {int(age.total_seconds() // 60)} minutes ago "
                f"({mid.last_refreshed:%Y-%m-%d %H:%M:%S})",
                mid_servers=(_mid_name(mid),),
            )


def _not_validated(facts: Facts) -> Iterator[Hit]:
    for mid in facts.mid_servers:
        if mid.validated is not None and not _same(mid.validated, "true"):
            yield Hit(
                subject=_mid_name(mid),
                detail=f"validated is {mid.validated or '(empty)'}",
                mid_servers=(_mid_name(mid),),
            )


def _expected_version(facts: Facts) -> tuple[str, str]:
    """The version the instance expects, and the property it comes from."""
    override = facts.properties.get(VERSION_OVERRIDE, "").strip()
    if override:
        return override, VERSION_OVERRIDE
    buildstamp = facts.properties.get(BUILDSTAMP, "").strip()
    if buildstamp:
        return buildstamp, BUILDSTAMP
    raise Unavailable(f"the instance has no {BUILDSTAMP} property (or it is empty)")


def _version_mismatch(facts: Facts) -> Iterator[Hit]:
    expected, source = _expected_version(facts)
    for mid in facts.mid_servers:
        # Build stamps hold no spaces: surrounding ones are noise, not another version.
        version = (mid.version or "").strip()
        if version and version != expected:
            yield Hit(
                subject=_mid_name(mid),
                detail=f"version {version}, the instance's {source} is {expected}",
                mid_servers=(_mid_name(mid),),
            )


def _is_open(issue: Issue) -> bool:
    # As the database compares state!=resolved: an empty state is neither open nor resolved.
    return issue.state.rstrip(" ") != "" and not _same(issue.state, "resolved")


def _clone_credentials(facts: Facts) -> Iterator[Hit]:
    names = {mid.sys_id: _mid_name(mid) for mid in facts.mid_servers}
    for issue in sorted(facts.issues, key=lambda issue: (issue.message, issue.sys_id)):
        if _same(issue.source, CLONE_SOURCE) and _is_open(issue):
            mid = names.get(issue.mid_server, issue.mid_server)
            yield Hit(
                subject=mid or "instance",
                detail=issue.message,
                mid_servers=(mid,) if mid else (),
            )


@dataclass(frozen=True)
class AdvisoryRule:
    """One advisory: its id, severity, the reads and fields it needs, its hint and its check."""

    id: str
    severity: Severity
    description: str
    hint: str
    """The corrective action, shown once under the advisories of this id."""
    check: Callable[[Facts], Iterator[Hit]]
    needs: frozenset[str] = frozenset({ALL_MID_SERVERS})
    """The extra reads (records.EXTRA_READS) without which it is skipped."""
    fields: tuple[str, ...] = ()
    """``table.field`` values a record must hold to be checked; without them it is noted."""


ADVISORIES: tuple[AdvisoryRule, ...] = (
    AdvisoryRule(
        "mid_user_mismatch",
        Severity.WARNING,
        "A MID Server logged in as another user than its mid.instance.username "
        "(compared ignoring case and trailing spaces, as the MID Server dashboard does).",
        "Set mid.instance.username in the MID Server's config.xml to the user it should "
        "use, and restart the MID Server.",
        _mid_user_mismatch,
        fields=("ecc_agent.user_name",),
    ),
    AdvisoryRule(
        "user_locked_out",
        Severity.ERROR,
        "The configured user of a MID Server (up or down) is locked out.",
        "Unlock the user (sys_user: Locked out), then fix the password in config.xml of "
        "every MID Server it serves before the next attempt locks it again.",
        _user_flag(lambda user: user.locked_out, "locked out"),
    ),
    AdvisoryRule(
        "password_needs_reset",
        Severity.ERROR,
        "The configured user of a MID Server (up or down) must reset its password.",
        "Clear Password needs reset on the user: a MID Server cannot change its password.",
        _user_flag(lambda user: user.password_needs_reset, "password needs reset"),
        fields=("sys_user.password_needs_reset",),
    ),
    AdvisoryRule(
        "user_inactive",
        Severity.ERROR,
        "The configured user of a MID Server (up or down) is inactive.",
        "Make the user active again, or configure the MID Servers with an active user.",
        _user_flag(lambda user: not user.active, "inactive"),
    ),
    AdvisoryRule(
        "shared_mid_user",
        Severity.INFO,
        f"One user is configured on {SHARED_LIMIT} or more MID Servers.",
        "One wrong password in any of their config.xml files locks the user out for all: "
        "give each MID Server (or each small group) its own user.",
        _shared_mid_user,
    ),
    AdvisoryRule(
        "heartbeat_overdue",
        Severity.WARNING,
        f"A MID Server is Up but not refreshed for over {HEARTBEAT_LIMIT.seconds // 60} minutes "
        "(three missed heartbeats): the instance's monitor should have marked it Down.",
        "Check the MID Server's host and service, and that the instance's MID Server "
        "monitor job is running.",
        _heartbeat_overdue,
    ),
    AdvisoryRule(
        "not_validated",
        Severity.WARNING,
        "A MID Server is not validated.",
        "Validate the MID Server (MID Server > Servers, Related Links: Validate).",
        _not_validated,
        fields=("ecc_agent.validated",),
    ),
    AdvisoryRule(
        "version_mismatch",
        Severity.WARNING,
        f"A MID Server's version is not the instance's ({VERSION_OVERRIDE} when set, "
        f"else {BUILDSTAMP}).",
        "Let the MID Server upgrade itself (check its auto-upgrade and the upgrade history), "
        "or clear a stale mid.version.override.",
        _version_mismatch,
        needs=frozenset({ALL_MID_SERVERS, PROPERTIES}),
        fields=("ecc_agent.version",),
    ),
    AdvisoryRule(
        "clone_credentials",
        Severity.WARNING,
        "An open ecc_agent_issue of source InstanceClone: a clone left the source "
        "instance's MID Server credentials behind.",
        "Re-enter the MID Server credentials of this instance and resolve the clone issue.",
        _clone_credentials,
        needs=frozenset({CLONE_ISSUES}),
    ),
)

_ORDER = {rule.id: position for position, rule in enumerate(ADVISORIES)}
HINTS: Mapping[str, str] = {rule.id: rule.hint for rule in ADVISORIES}


def advise(
    inventory: Inventory,
    *,
    now: datetime,
    extra_reads: Iterable[str],
    why_unread: Mapping[str, str] | None = None,
) -> Advice:
    """Run every advisory whose reads were made; the rest are skipped with a reason.

    ``extra_reads`` names the reads (records.EXTRA_READS) the inventory holds;
    ``why_unread`` may say better than WHY_UNREAD why one is missing (an HTTP 403, say).
    """
    reads = set(extra_reads)
    reasons = {**WHY_UNREAD, **(why_unread or {})}
    facts = Facts.of(inventory, now)
    advisories: list[Advisory] = []
    skipped: list[Skipped] = []
    partial: list[str] = []
    for rule in ADVISORIES:
        missing = sorted(rule.needs - reads)
        if missing:
            skipped.append(Skipped(rule.id, "; ".join(reasons[read] for read in missing)))
            continue
        try:
            hits = list(rule.check(facts))
        except Unavailable as reason:
            skipped.append(Skipped(rule.id, str(reason)))
            continue
        advisories.extend(
            Advisory(rule.id, rule.severity, hit.subject, hit.detail, hit.users, hit.mid_servers)
            for hit in hits
        )
        for record_field in rule.fields:
            lacking = facts.lacking(record_field)
            if lacking:
                partial.append(
                    f"{rule.id} not checked for {', '.join(lacking)}: "
                    f"their rows have no {record_field}"
                )
    advisories.sort(key=lambda item: (_ORDER[item.id], item.subject))
    return Advice(tuple(advisories), tuple(skipped), tuple(partial))


def advise_snapshot(snapshot: Snapshot, inventory: Inventory | None = None) -> Advice:
    """The advice on a pulled or loaded snapshot (its inventory, if already converted)."""
    return advise(
        inventory if inventory is not None else Inventory.from_tables(snapshot.tables),
        now=snapshot.now,
        extra_reads=snapshot.extra_reads,
    )
