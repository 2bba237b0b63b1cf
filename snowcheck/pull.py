"""Pull one snapshot of the seven tables a check reads, in as few requests as careful allows.

The reads, in order:

1. ``sys_user_role``: the mid_server and soap_script roles. Its answer's Date header
   is the instance's ``now``; ``since = now - window - 60 s``.
2. ``sys_user_has_role``: who holds those roles, dot-walking to the holders' user
   records, so that the role holders' ``sys_user`` rows come in the same pass.
3. ``ecc_agent_config``: every ``mid.instance.username`` association.
4. ``ecc_agent``: the MID Servers that are Down.
5. ``sys_user``: configured user names not already known from 2, by chunks of names.
6. ``sysevent``: the login events of the window for the users the rules ask about
   (``rules.event_candidates``), one query per chunk of names, not one per user.
7. ``ecc_agent_issue``: the open issues of our source.

Reads 2, 3, 4 and 7 depend on nothing but read 1: they run concurrently, at most
``concurrency`` requests at once (default 4), and so do the chunks of read 5 and then
those of read 6. Fail-closed all the same: the first read to fail cancels those not yet
started, stops those running at their next page or retry, and the pull raises, so
nothing is written. Concurrency changes when requests are sent, not which: the formula
below holds whatever ``concurrency`` is.

Requests made by one check, with P the page size and, for each query, T its number of
matching rows (``X-Total-Count``, counted before ACLs)::

    pages(T) = max(1, ceil(T / P))
    R = pages(T_roles)                                            # 1
      + pages(T_grants)            (0 if no role was found)       # 2
      + pages(T_associations)                                     # 3
      + pages(T_down_mids)                                        # 4
      + sum over name chunks c of pages(T_users(c))               # 5
      + sum over candidate chunks c of pages(T_events(c))         # 6
      + pages(T_open_issues)                                      # 7

Name chunks pack sorted names into IN lists of at most ``QUERY_BUDGET`` URL-encoded
characters, so their number is about ceil(sum(len(encoded name) + 3) / QUERY_BUDGET);
there are none when every configured user is a role holder (5) or when no user is a
candidate (6). With every table under P rows and at most one chunk each, a check makes
5 to 7 requests. Retries add one request each.

Applying a plan of C changes through the Batch API adds ceil(C / batch_items) requests
(more when ``batch_bytes`` or the instance's own per-batch limit cuts a batch short), and,
when it created issues, one read-back query per chunk of created messages (duplicates
found then cost one more batch). Without the Batch API: one request per change. A create
whose answer was lost costs a look-up read before it is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any, TypeVar

from snowcheck.errors import InstanceError
from snowcheck.records import (
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
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

ROLE_NAMES = (MID_ROLE, "soap_script")
QUERY_BUDGET = 4000
"""URL-encoded characters allowed for one IN list of names; keeps URLs well under 8 KB."""

ROLE_FIELDS = ("sys_id", "name")
USER_FIELDS = ("sys_id", "user_name", "active", "sys_domain", "locked_out")
GRANT_FIELDS = ("sys_id", "user", "role", *(f"user.{field}" for field in USER_FIELDS[1:]))
CONFIG_FIELDS = ("sys_id", "ecc_agent", "param_name", "value", "sys_domain")
MID_FIELDS = ("sys_id", "name", "status", "last_refreshed")
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

DEFAULT_CONCURRENCY = 4
"""Requests in flight at once during a pull; an instance limits concurrent transactions per user."""

Rows = list[dict[str, Any]]
T = TypeVar("T")


def _settle(futures: Sequence[Future[Any]]) -> None:
    """Wait for ``futures``; on the first failure cancel the rest and raise it."""
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
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


def read_roles(instance: Instance) -> Rows:
    """Read 1: the mid_server and soap_script roles."""
    return instance.fetch(ROLE_TABLE, in_("name", ROLE_NAMES), ROLE_FIELDS)


def _text(value: Any) -> str:
    if isinstance(value, dict):  # a reference left as {link, value}
        value = value.get("value", "")
    return value if isinstance(value, str) else ""


def read_role_holders(instance: Instance, roles: Sequence[dict[str, Any]]) -> tuple[Rows, Rows]:
    """Read 2: the grants of ``roles`` and, from their dot-walked fields, the holders' users.

    A grant whose user fields came back empty (a dangling reference, or fields hidden
    by an ACL) gives no user row.
    """
    role_ids = sorted({_text(role.get("sys_id")) for role in roles} - {""})
    if not role_ids:
        return [], []
    grants: Rows = []
    users: dict[str, dict[str, Any]] = {}
    for row in instance.fetch(USER_ROLE_TABLE, in_("role", role_ids), GRANT_FIELDS):
        user_id = _text(row.get("user"))
        grants.append({"sys_id": row.get("sys_id", ""), "user": user_id, "role": row.get("role")})
        user_name = _text(row.get("user.user_name"))
        if not user_id or not user_name or row.get("user.active") not in ("true", "false"):
            continue
        user: dict[str, Any] = {"sys_id": user_id, "user_name": user_name}
        for field in USER_FIELDS[2:]:
            if f"user.{field}" in row:
                user[field] = _text(row[f"user.{field}"])
        user["active"] = row["user.active"]
        users.setdefault(user_id, user)
    return grants, list(users.values())


def read_associations(instance: Instance) -> Rows:
    """Read 3: every mid.instance.username association row."""
    return instance.fetch(CONFIG_TABLE, eq("param_name", "mid.instance.username"), CONFIG_FIELDS)


def read_down_mids(instance: Instance) -> Rows:
    """Read 4: the MID Servers whose status is Down."""
    return instance.fetch(MID_TABLE, eq("status", "Down"), MID_FIELDS)


def read_users(
    instance: Instance, user_names: Iterable[str], *, budget: int, pool: Executor | None = None
) -> Rows:
    """Read 5: the sys_user rows of ``user_names``, one query per chunk of names."""
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
    now: datetime,
    budget: int,
    pool: Executor | None = None,
) -> Rows:
    """Read 6: login events after ``since`` about ``user_names``, one query per chunk.

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


def read_open_issues(instance: Instance, source: str) -> Rows:
    """Read 7: the open ecc_agent_issue records of ``source``."""
    return instance.fetch(ISSUE_TABLE, and_(eq("source", source), "state!=resolved"), ISSUE_FIELDS)


def pull_snapshot(
    instance: Instance,
    *,
    window: timedelta,
    source: str,
    budget: int = QUERY_BUDGET,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Snapshot:
    """Read everything one check needs; any failure raises, so nothing is written after it."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    instance.restart_clock()  # this check's "now": the first answer of this pull
    roles = read_roles(instance)
    if instance.now is None:
        raise InstanceError("the instance's clock is unknown: no answer was read", table=ROLE_TABLE)
    now = instance.now
    since = window_start(now, window)

    pool = ThreadPoolExecutor(concurrency, "snowcheck-read") if concurrency > 1 else None
    failed = True
    try:
        tables = _pull_after_roles(instance, pool, roles, source, since, now, budget)
        failed = False
    finally:
        if pool is not None:
            if failed:
                # Reads still running give up at their next page or retry; none is waited for.
                instance.stop_reads()
            pool.shutdown(wait=not failed, cancel_futures=True)
    return Snapshot(now=now, tables=tables, clock_source=instance.clock_source)


def _pull_after_roles(
    instance: Instance,
    pool: Executor | None,
    roles: Rows,
    source: str,
    since: datetime,
    now: datetime,
    budget: int,
) -> dict[str, Rows]:
    """Reads 2 to 7: the four independent ones at once, then users, then events."""
    if pool is None:
        grants, holders = read_role_holders(instance, roles)
        associations = read_associations(instance)
        down_mids = read_down_mids(instance)
        issues = read_open_issues(instance, source)
    else:
        holders_read = pool.submit(read_role_holders, instance, roles)
        associations_read = pool.submit(read_associations, instance)
        down_mids_read = pool.submit(read_down_mids, instance)
        issues_read = pool.submit(read_open_issues, instance, source)
        _settle([holders_read, associations_read, down_mids_read, issues_read])
        grants, holders = holders_read.result()
        associations = associations_read.result()
        down_mids = down_mids_read.result()
        issues = issues_read.result()

    known = {row["user_name"] for row in holders}
    configured = {_text(row.get("value")) for row in associations}
    fetched = read_users(instance, sorted(configured - known), budget=budget, pool=pool)
    holder_ids = {row["sys_id"] for row in holders}
    users = holders + [row for row in fetched if _text(row.get("sys_id")) not in holder_ids]

    tables: dict[str, Rows] = {
        ROLE_TABLE: roles,
        USER_ROLE_TABLE: grants,
        USER_TABLE: users,
        CONFIG_TABLE: associations,
        MID_TABLE: down_mids,
    }
    candidates = event_candidates(Inventory.from_tables(tables))
    tables[EVENT_TABLE] = read_events(
        instance, candidates, since=since, now=now, budget=budget, pool=pool
    )
    tables[ISSUE_TABLE] = issues
    return tables
