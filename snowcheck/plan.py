"""The plan: findings diffed against the open issues of our source, as create/update/resolve values.

The plan is a value. It never prints and never writes; ``render`` shows it and
``instance`` applies it, in the plan's order (resolve, update, create).

Which issues are ours and open, and which one a finding updates, are conditions of the
job's queries: they are compared as the database compares (``compare``), so an issue
whose message differs from a finding's only in case or trailing spaces is that
finding's issue, and an issue with an empty state or message is never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from snowcheck import compare
from snowcheck.errors import UnsafePlan
from snowcheck.records import Issue, format_time
from snowcheck.rules import Finding

DEFAULT_SOURCE = "MIDUserConnectivity"


class Action(StrEnum):
    """What a change does to ecc_agent_issue; the order of the members is the order of the plan."""

    RESOLVE = "resolve"
    UPDATE = "update"
    CREATE = "create"


_ORDER = {action: index for index, action in enumerate(Action)}


@dataclass(frozen=True)
class Change:
    """One write to ecc_agent_issue."""

    action: Action
    message: str
    sys_id: str | None
    """The issue written; None for a create."""
    state_before: str | None
    count_before: int | None
    state: str
    """The record's state after the change."""
    count: int
    """The record's count after the change."""
    payload: Mapping[str, str] = field(compare=False)
    """The fields sent: the whole record for a create, only what changes otherwise."""


@dataclass(frozen=True)
class Plan:
    """The ordered changes of one check, with the warnings met while planning."""

    changes: tuple[Change, ...]
    open_issues: int
    """Open issues of our source (mid_server empty) the plan was diffed against."""
    warnings: tuple[str, ...] = ()

    def of(self, action: Action) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.action is action)

    def raise_if_unsafe(self, *, saw_mid_users: bool, force: bool) -> None:
        """Refuse to resolve every open issue when the pull saw no MID user at all.

        That picture (no role users, no configured users) is what missing read
        access on sys_user_has_role or ecc_agent_config looks like.
        """
        resolves = len(self.of(Action.RESOLVE))
        if force or saw_mid_users or resolves == 0 or resolves < self.open_issues:
            return
        raise UnsafePlan(
            f"refusing to resolve all {resolves} open issues: the pull saw no user with the "
            "mid_server role and no mid.instance.username configuration, which usually means "
            "missing read access on sys_user_has_role or ecc_agent_config; check the account's "
            "roles, or pass --force if the instance really has no MID Server users"
        )


def _newest_first(issue: Issue) -> tuple[str, str]:
    updated = issue.updated_on or issue.last_detected
    return (format_time(updated) if updated else "", issue.sys_id)


def ours_and_open(issue: Issue, source: str) -> bool:
    """Whether the plan may touch ``issue``: our source, no MID Server, open, with a message."""
    return (
        compare.equal(issue.source, source)
        and issue.mid_server == ""
        and issue.is_open
        and issue.message != ""
    )


def build_plan(
    findings: Iterable[Finding], issues: Iterable[Issue], *, source: str, now: datetime
) -> Plan:
    """Diff findings against the issues: update the matched, create the new, resolve the rest."""
    detected = format_time(now)
    open_by_message: dict[str, list[Issue]] = {}
    for issue in issues:
        if ours_and_open(issue, source):
            open_by_message.setdefault(compare.fold(issue.message), []).append(issue)

    warnings: list[str] = []
    kept: dict[str, Issue] = {}
    for message, same in open_by_message.items():
        same.sort(key=_newest_first, reverse=True)
        kept[message] = same[0]
        if len(same) > 1:
            others = ", ".join(issue.sys_id for issue in same[1:])
            warnings.append(
                f"{len(same)} open issues share the message {same[0].message!r}: updating "
                f"{same[0].sys_id} (most recently updated), leaving {others} as they are"
            )

    changes: list[Change] = []
    found: set[str] = set()
    for finding in findings:
        # Findings equal under the database's comparison (mid.k, MID.K) are one issue,
        # counted once: the first in the findings' order speaks for them.
        if compare.fold(finding.message) in found:
            continue
        found.add(compare.fold(finding.message))
        match = kept.get(compare.fold(finding.message))
        if match is None:
            changes.append(
                Change(
                    action=Action.CREATE,
                    message=finding.message,
                    sys_id=None,
                    state_before=None,
                    count_before=None,
                    state="new",
                    count=1,
                    payload={
                        "message": finding.message,
                        "source": source,
                        "state": "new",
                        "count": "1",
                        "last_detected": detected,
                        "sys_domain": finding.domain,
                        "mid_server": "",
                    },
                )
            )
        else:
            changes.append(
                Change(
                    action=Action.UPDATE,
                    message=match.message,  # an update keeps the stored text
                    sys_id=match.sys_id,
                    state_before=match.state,
                    count_before=match.count,
                    state=match.state,
                    count=match.count + 1,
                    payload={
                        "count": str(match.count + 1),
                        "last_detected": detected,
                        "sys_domain": finding.domain,
                    },
                )
            )

    for message, same in open_by_message.items():
        if message in found:
            continue
        for issue in same:
            changes.append(
                Change(
                    action=Action.RESOLVE,
                    message=issue.message,
                    sys_id=issue.sys_id,
                    state_before=issue.state,
                    count_before=issue.count,
                    state="resolved",
                    count=issue.count,
                    payload={"state": "resolved"},
                )
            )

    changes.sort(key=lambda change: (_ORDER[change.action], change.message, change.sys_id or ""))
    open_count = sum(len(same) for same in open_by_message.values())
    return Plan(changes=tuple(changes), open_issues=open_count, warnings=tuple(warnings))


def most_recently_updated(copies: Iterable[tuple[str, str]]) -> str:
    """The sys_id of the open issue to update among several with one message (SPEC section 4).

    ``copies`` are (sys_updated_on, sys_id) pairs; the latest update wins, ties going to
    the larger sys_id, as ``build_plan`` picks (``_newest_first``). A create whose answer
    was lost is found the same way.
    """
    return max(copies)[1]


def concurrent_create_survivor(copies: Iterable[tuple[str, str]]) -> str:
    """The sys_id that stays open when concurrent runs created the same issue twice.

    ``copies`` are (sys_created_on, sys_id) pairs of the open issues sharing a message
    right after this run's creates; the earliest created survives, ties going to the
    smaller sys_id, and every other copy is resolved.

    Why not SPEC section 4's "most recently updated" (``most_recently_updated``)? Runs
    settle at different moments and each sees a different set of copies; they must
    still all keep the same one, without talking to each other. The earliest record of
    all is the same in every view that holds it and is never resolved by anyone, and
    the run that reads back last sees every copy, so exactly one stays open. "Most
    recently updated" moves: a later run's own create, or an update made while
    settling, would make each run keep a different copy and resolve the other's.
    """
    return min(copies)[1]
