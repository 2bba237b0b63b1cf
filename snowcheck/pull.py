"""Pull one snapshot of the tables a check reads, in two round trips when every table fits a page.

Round one: every read that needs no earlier answer, all at once.

1. ``sys_user_has_role``: the grants of the roles named ``mid_server``, ``soap`` and
   ``soap_script`` (``role.nameIN...``: the database compares the names), dot-walking
   to the role's name and the holders' user records. The ``sys_user_role`` rows the
   rules need (sys_id, name) come from the grants' ``role`` and ``role.name``.
2. ``ecc_agent_config``: every ``mid.instance.username`` association.
3. ``ecc_agent``: every MID Server with the advisories (the rules pick the Down ones
   themselves, as the database compares ``status``), else only ``status=Down``.
4. ``ecc_agent_issue``: the open issues of our source, and of ``InstanceClone`` with
   the advisories (the plan and the message choice look at our source only).
5. ``sys_properties`` (advisories only): ``mid.buildstamp`` and ``mid.version.override``.
   Never fails the pull: read access denied leaves the table out, with the reason.

The instance's ``now`` is the Date header of round one's first answer;
``since = now - window - 60 s`` bounds the events of round two.

Round two: the reads that need names from round one, side by side.

6. ``sys_user``: configured user names not already known from 1, by chunks of names.
7. ``sysevent``: the login events of the window for the users the rules ask about
   (``rules.event_candidates``: they need no user row beyond the holders'), by chunks.

At most ``concurrency`` requests are in flight at once (default 6: round one goes out
at once). A read of several pages reads its first page, which tells the total
(``X-Total-Count``), then its remaining pages at once under the same bound. Fail-closed
all the same: the first read to fail cancels those not yet started, stops those running
at their next page or retry, and the pull raises, so nothing is written. Concurrency
changes when requests are sent, not which: the request formula holds whatever
``concurrency`` is.

Requests, with P the page size and, for each query, T its number of matching rows
(``X-Total-Count``, counted before ACLs), A = 1 with the advisories and 0 without::

    pages(T) = max(1, ceil(T / P))
    R = pages(T_grants) + pages(T_associations) + pages(T_mids) + pages(T_open_issues)
      + A                                                         # round one: 1 to 5
      + sum over name chunks c of pages(T_users(c))               # round two: 6
      + sum over candidate chunks c of pages(T_events(c))         #            7

Sequential rounds, with C = ``concurrency``, when no read is throttled by C (at least
as many slots as requests in each wave)::

    rounds = 1 + [any read of round one has more than one page]
           + (1 + [any read of round two has more than one page]  if round two has a read)

so 2 when every table fits one page (1 when round two has nothing to ask), and at
most 4 otherwise. With fewer slots than requests, a wave of N requests takes
ceil(N / C) rounds instead of one.

Name chunks pack sorted names into IN lists of at most ``QUERY_BUDGET`` URL-encoded
characters, about ceil(sum(len(encoded name) + 3) / QUERY_BUDGET) of them; none when
every configured user is a role holder (6) or when no user is a candidate (7). With
every table under P rows and at most one chunk each, a check makes 5 to 7 requests
(4 to 6 without the advisories). Retries add one request each.

Applying a plan of C changes through the Batch API adds ceil(C / batch_items) requests
(more when ``batch_bytes`` or the instance's own per-batch limit cuts a batch short):
the batches of updates and resolves go out at once under the same bound, then the
creates' batches, then, when it created issues, one read-back query per chunk of
created messages (duplicates found then cost one more batch). Without the Batch API:
one request per change. A create whose answer was lost costs a look-up read before it
is sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from snowcheck.advisories import CLONE_SOURCE, VERSION_PROPERTIES
from snowcheck.errors import InstanceError
from snowcheck.read_pool import ReadPool, wait_for_first_failure
from snowcheck.records import (
    ALL_MID_SERVERS,
    CLONE_ISSUES,
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
    PROPERTIES,
    PROPERTY_TABLE,
    ROLE_TABLE,
    USER_ROLE_TABLE,
    USER_TABLE,
    Inventory,
    Snapshot,
    format_time,
)
from snowcheck.rules import LOGIN_EVENTS, MID_ROLE, event_candidates, window_start
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.query import and_, chunk_in, eq, in_

log = logging.getLogger("snowcheck.instance")

ROLE_NAMES = (MID_ROLE, "soap", "soap_script")
"""The roles whose holders the rules look at: mid_server contains soap, which has soap_script."""
QUERY_BUDGET = 4000
"""URL-encoded characters allowed for one IN list of names; keeps URLs well under 8 KB."""

ROLE_FIELDS = ("sys_id", "name")
USER_FIELDS = ("sys_id", "user_name", "active", "sys_domain", "locked_out", "password_needs_reset")
GRANT_FIELDS = (
    "sys_id",
    "user",
    "role",
    "role.name",
    *(f"user.{field}" for field in USER_FIELDS[1:]),
)
CONFIG_FIELDS = ("sys_id", "ecc_agent", "param_name", "value", "sys_domain")
MID_FIELDS = ("sys_id", "name", "status", "last_refreshed")
ALL_MID_FIELDS = (*MID_FIELDS, "user_name", "validated", "version")
"""Every MID Server's fields, for the advisories."""
PROPERTY_FIELDS = ("name", "value")
EVENT_FIELDS = ("sys_id", "name", "parm1", "parm2", "sys_created_on")
ISSUE_FIELDS = (
    "sys_id",
    "message",
    "source",
    "state",
    "count",
    "last_detected",
    "mid_server",
    "sys_domain",
    "sys_updated_on",
)
DENIED = frozenset({401, 403})
"""Statuses meaning "no read access to this table" for the optional sys_properties read."""

DEFAULT_CONCURRENCY = 6
"""Requests in flight at once: round one (five reads) goes out at once. An instance
limits concurrent transactions per user; ``--concurrency`` lowers it."""

Rows = list[dict[str, Any]]
T = TypeVar("T")


def _settle(futures: Sequence[Future[Any]]) -> None:
    """Wait for ``futures``; on the first failure cancel the rest and raise it."""
    done, pending = wait_for_first_failure(futures)
    failed = [future for future in futures if future in done and future.exception() is not None]
    if failed:
        for future in pending:
            future.cancel()
        error = failed[0].exception()
        assert error is not None
        raise error


def _each(pool: Executor | None, read: Callable[[str], T], queries: Iterable[str]) -> list[T]:
    """``read`` each query, concurrently on ``pool`` if any; results in the queries' order."""
    if pool is None:
        return [read(query) for query in queries]
    futures = [pool.submit(read, query) for query in queries]
    _settle(futures)
    return [future.result() for future in futures]


def _text(value: Any) -> str:
    if isinstance(value, dict):  # a reference left as {link, value}
        value = value.get("value", "")
    return value if isinstance(value, str) else ""


def read_roles(instance: Instance) -> Rows:
    """The mid_server, soap and soap_script roles (``snowcheck doctor``; the pull takes
    them from the grants)."""
    return instance.fetch(ROLE_TABLE, in_("name", ROLE_NAMES), ROLE_FIELDS)


@dataclass(frozen=True)
class Holders:
    """Read 1: the grants, the roles they name and the holders' user records."""

    roles: Rows
    grants: Rows
    users: Rows


def read_role_holders(instance: Instance) -> Holders:
    """Read 1: the grants of ROLE_NAMES and, from their dot-walked fields, roles and users.

    A grant whose user fields came back empty (a dangling reference, or fields hidden
    by an ACL) gives no user row. The query matched on ``role.name``: a grant whose
    role name came back empty means an ACL hides it, and the pull fails (the holders
    could not be told apart).
    """
    grants: Rows = []
    roles: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    for row in instance.fetch(USER_ROLE_TABLE, in_("role.name", ROLE_NAMES), GRANT_FIELDS):
        user_id = _text(row.get("user"))
        role_id = _text(row.get("role"))
        grants.append({"sys_id": row.get("sys_id", ""), "user": user_id, "role": row.get("role")})
        role_name = _text(row.get("role.name"))
        if role_id and not role_name:
            # The query matched on role.name, so it exists: an ACL hides it from us.
            raise InstanceError(
                f"{USER_ROLE_TABLE} record {_text(row.get('sys_id'))}: its role's name came "
                f"back empty (read access to {ROLE_TABLE}.name denied?): grant the checking "
                f"account read access to {ROLE_TABLE}",
                table=ROLE_TABLE,
            )
        if role_id:
            roles.setdefault(role_id, {"sys_id": role_id, "name": role_name})
        user_name = _text(row.get("user.user_name"))
        if not user_id or not user_name or row.get("user.active") not in ("true", "false"):
            continue
        user: dict[str, Any] = {"sys_id": user_id, "user_name": user_name}
        for name in USER_FIELDS[2:]:
            if f"user.{name}" in row:
                user[name] = _text(row[f"user.{name}"])
        user["active"] = row["user.active"]
        users.setdefault(user_id, user)
    ordered_roles = sorted(roles.values(), key=lambda role: str(role["sys_id"]))
    return Holders(ordered_roles, grants, list(users.values()))


def read_associations(instance: Instance) -> Rows:
    """Read 2: every mid.instance.username association row."""
    return instance.fetch(CONFIG_TABLE, eq("param_name", "mid.instance.username"), CONFIG_FIELDS)


def read_down_mids(instance: Instance) -> Rows:
    """Read 3 without the advisories: the MID Servers whose status is Down."""
    return instance.fetch(MID_TABLE, eq("status", "Down"), MID_FIELDS)


def read_all_mids(instance: Instance) -> Rows:
    """Read 3 with the advisories: every MID Server, whatever its status."""
    return instance.fetch(MID_TABLE, "", ALL_MID_FIELDS)


def read_open_issues(instance: Instance, source: str, *, clones: bool = False) -> Rows:
    """Read 4: the open ecc_agent_issue records of ``source`` (and of InstanceClone)."""
    sources = in_("source", (source, CLONE_SOURCE)) if clones else eq("source", source)
    return instance.fetch(ISSUE_TABLE, and_(sources, "state!=resolved"), ISSUE_FIELDS)


def read_properties(instance: Instance) -> tuple[Rows | None, str | None]:
    """Read 5: the MID Server version properties, or (None, why) when they cannot be read.

    Only the advisories need them: no read access never fails the pull.
    """
    try:
        rows = instance.fetch(PROPERTY_TABLE, in_("name", VERSION_PROPERTIES), PROPERTY_FIELDS)
    except InstanceError as exc:
        if exc.status not in DENIED:
            raise
        return None, f"read access to {PROPERTY_TABLE} denied (HTTP {exc.status})"
    if rows and not any(_text(row.get("name")) for row in rows):
        return None, f"the {PROPERTY_TABLE} rows came back without their names (hidden by ACLs)"
    return rows, None


def read_users(
    instance: Instance, user_names: Iterable[str], *, budget: int, pool: Executor | None = None
) -> Rows:
    """Read 6: the sys_user rows of ``user_names``, one query per chunk of names."""
    users: dict[str, dict[str, Any]] = {}
    chunks = chunk_in("user_name", user_names, budget)
    for rows in _each(pool, lambda names: instance.fetch(USER_TABLE, names, USER_FIELDS), chunks):
        for row in rows:
            users.setdefault(_text(row.get("sys_id")), row)
    return list(users.values())


def read_events(
    instance: Instance,
    user_names: Iterable[str],
    *,
    since: datetime,
    budget: int,
    pool: Executor | None = None,
) -> Rows:
    """Read 7: login events after ``since`` about ``user_names``, one query per chunk.

    No upper bound, as the job's own query: an event dated after ``now`` counts.
    """
    window = and_(in_("name", LOGIN_EVENTS), f"sys_created_on>{format_time(since)}")
    events: dict[str, dict[str, Any]] = {}
    unkeyed: Rows = []
    chunks = chunk_in("parm1", user_names, budget)
    fetched = _each(
        pool, lambda names: instance.fetch(EVENT_TABLE, and_(window, names), EVENT_FIELDS), chunks
    )
    for rows in fetched:
        for row in rows:
            sys_id = _text(row.get("sys_id"))
            # The database may match names case-insensitively: one event can answer two chunks.
            if sys_id:
                events.setdefault(sys_id, row)
            else:
                unkeyed.append(row)
    return [*events.values(), *unkeyed]


@dataclass
class RoundOne:
    """What round one read."""

    holders: Holders
    associations: Rows
    mids: Rows
    issues: Rows
    properties: Rows | None = None
    why_unread: dict[str, str] = field(default_factory=dict)


def _round_one(
    instance: Instance, pool: Executor | None, source: str, advisories: bool
) -> RoundOne:
    """Reads 1 to 5: none needs another's answer, so all go out at once."""
    reads: dict[str, Callable[[], Any]] = {
        "holders": lambda: read_role_holders(instance),
        "associations": lambda: read_associations(instance),
        "mids": lambda: read_all_mids(instance) if advisories else read_down_mids(instance),
        "issues": lambda: read_open_issues(instance, source, clones=advisories),
    }
    if advisories:
        reads["properties"] = lambda: read_properties(instance)
    if pool is None:
        done = {name: read() for name, read in reads.items()}
    else:
        futures = {name: pool.submit(read) for name, read in reads.items()}
        _settle(list(futures.values()))
        done = {name: future.result() for name, future in futures.items()}
    properties, why = done.pop("properties", (None, None))
    return RoundOne(
        **done, properties=properties, why_unread={PROPERTIES: why} if why is not None else {}
    )


def pull_snapshot(
    instance: Instance,
    *,
    window: timedelta,
    source: str,
    budget: int = QUERY_BUDGET,
    concurrency: int = DEFAULT_CONCURRENCY,
    advisories: bool = True,
) -> Snapshot:
    """Read everything one check needs; any failure raises, so nothing is written after it.

    ``advisories`` adds the advisories' extra reads (see the module docstring).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    instance.limit_requests(concurrency)
    instance.restart_clock()  # this check's "now": the first answer of this pull
    # Threads wait for work; requests in flight are bounded by the instance (see above).
    # Daemon threads: reads abandoned on Ctrl-C or SIGTERM never hold up the exit.
    pool = ReadPool(8, "snowcheck-read") if concurrency > 1 else None
    failed = True
    try:
        first = _round_one(instance, pool, source, advisories)
        if instance.now is None:
            raise InstanceError(
                "the instance's clock is unknown: no answer was read", table=USER_ROLE_TABLE
            )
        now = instance.now
        tables = _round_two(instance, pool, first, window_start(now, window), budget)
        failed = False
    finally:
        if pool is not None:
            if failed:
                # Reads still running give up at their next page or retry; none is waited for.
                instance.stop_reads()
            pool.shutdown(wait=not failed, cancel_futures=True)
    extra: set[str] = set()
    if advisories:
        extra = {ALL_MID_SERVERS, CLONE_ISSUES}
        if first.properties is not None:
            tables[PROPERTY_TABLE] = first.properties
            extra.add(PROPERTIES)
    return Snapshot(
        now=now,
        tables=tables,
        clock_source=instance.clock_source,
        extra_reads=frozenset(extra),
        why_unread=dict(first.why_unread),
    )


def _round_two(
    instance: Instance, pool: Executor | None, first: RoundOne, since: datetime, budget: int
) -> dict[str, Rows]:
    """Reads 6 and 7, side by side: the users named only by configuration, the events."""
    holders = first.holders.users
    tables: dict[str, Rows] = {
        ROLE_TABLE: first.holders.roles,
        USER_ROLE_TABLE: first.holders.grants,
        USER_TABLE: holders,
        CONFIG_TABLE: first.associations,
        MID_TABLE: first.mids,
    }
    # The candidates come from holders, associations and MID Servers: no user row read here.
    candidates = event_candidates(Inventory.from_tables(tables))
    known = {row["user_name"] for row in holders}
    configured = {_text(row.get("value")) for row in first.associations}
    wanted = sorted(configured - known)
    if pool is None:
        fetched = read_users(instance, wanted, budget=budget)
        events = read_events(instance, candidates, since=since, budget=budget)
    else:
        users_read = pool.submit(read_users, instance, wanted, budget=budget, pool=pool)
        events_read = pool.submit(
            read_events, instance, candidates, since=since, budget=budget, pool=pool
        )
        _settle([users_read, events_read])
        fetched, events = users_read.result(), events_read.result()
    holder_ids = {row["sys_id"] for row in holders}
    tables[USER_TABLE] = holders + [
        row for row in fetched if _text(row.get("sys_id")) not in holder_ids
    ]
    tables[EVENT_TABLE] = events
    tables[ISSUE_TABLE] = first.issues
    return tables
