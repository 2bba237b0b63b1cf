"""Write-back: apply a plan to ecc_agent_issue, report partial writes, settle duplicates.

Built on the ServiceNow layer, which sends; this module decides what to send, in which
order, and what a failure part-way means for the plan. Changes go through the Batch
API (``snowcheck.writeback_batch``) unless it is turned off or refused, then one
request per change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from snowcheck.errors import InstanceError, PartialWrite
from snowcheck.interrupts import threads_leave_signals
from snowcheck.plan import Action, Change, Plan, concurrent_create_survivor, most_recently_updated
from snowcheck.records import ISSUE_TABLE
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.query import and_, chunk_in, eq
from snowcheck.writeback_batch import (
    CREATED_FIELDS,
    BatchWriter,
    OnChange,
    StopRequested,
    WritesStopped,
    Written,
    never,
)

log = logging.getLogger("snowcheck.instance")

READ_BACK_FIELDS = ("sys_id", "message", "state", "count", "sys_created_on", "sys_updated_on")
READ_BACK_BUDGET = 4000
"""URL-encoded characters of one IN list of messages read back after creates."""

DEFAULT_BATCH_ITEMS = 100
"""Changes per batch: a batch runs as one transaction on the instance, keep it short."""
DEFAULT_BATCH_BYTES = 1_000_000
"""Bytes of JSON per batch request, well under the instance's request size limit."""


def _count(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _newest(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    keep = most_recently_updated((str(r.get("sys_updated_on", "")), r["sys_id"]) for r in rows)
    return next(row for row in rows if row["sys_id"] == keep)


class WriteBack:
    """The write-back of plans to one instance.

    ``batch``, ``batch_items`` and ``batch_bytes`` choose how ``apply`` writes: through
    the Batch API, at most that many changes and bytes per request. Once the instance
    refused the Batch API, later writes go one by one. ``stop_requested`` is asked before
    each write starts: once it says yes (Ctrl-C, SIGTERM), none does.
    """

    def __init__(
        self,
        instance: Instance,
        *,
        batch: bool = True,
        batch_items: int = DEFAULT_BATCH_ITEMS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        concurrency: int = 1,
        stop_requested: StopRequested = never,
    ) -> None:
        if batch_items < 1 or batch_bytes < 1:
            raise ValueError("batch_items and batch_bytes must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.instance = instance
        self.batch = batch
        self.batch_items = batch_items
        self.concurrency = concurrency
        """Batches of updates and resolves in flight at once."""
        self.stop_requested = stop_requested
        self.batches = BatchWriter(
            instance,
            write_singly=self.write_singly,
            lost_creates=self.lost_creates,
            batch_items=batch_items,
            batch_bytes=batch_bytes,
            stop_requested=stop_requested,
        )
        self.duplicates_resolved: list[Change] = []
        """Duplicates of our creates (made by a concurrent run) resolved by the last apply."""

    def apply(self, plan: Plan, *, on_change: OnChange | None = None) -> tuple[Change, ...]:
        """Write the plan's changes in order; return them (a create with its new sys_id).

        Then the open issues of the messages just created are read back, and duplicates
        left by a concurrent run are resolved (see ``duplicates``).

        A failure raises PartialWrite, which lists what was written and what was not;
        the plan is built from the instance's state, so a new check converges.
        """
        changes = plan.changes
        applied, not_applied, error = self.write_all(changes, on_change)
        created = [c for c in applied if c.action is Action.CREATE and c.sys_id]
        settle_error: InstanceError | None = None
        unsettled: list[Change] = []
        if created and not self.stop_requested():
            try:
                duplicates = self.duplicates(created)
            except InstanceError as exc:
                settle_error = exc
            else:
                self.duplicates_resolved, unsettled, settle_error = self.write_all(duplicates, None)
        if error is not None:
            total = len(changes)
            raise PartialWrite(
                f"wrote {len(applied)} of {total} changes to {ISSUE_TABLE}, then: {error}; "
                f"{len(not_applied)} not applied, running the check again converges",
                applied=tuple(applied),
                not_applied=tuple(not_applied),
                table=error.table,
                status=error.status,
            ) from error
        if settle_error is not None:
            raise PartialWrite(
                f"wrote all {len(applied)} changes to {ISSUE_TABLE}, then could not resolve "
                f"the duplicates a concurrent run created: {settle_error}; running the check "
                "again converges",
                applied=tuple(applied),
                not_applied=tuple(unsettled),
                table=settle_error.table,
                status=settle_error.status,
            ) from settle_error
        return tuple(applied)

    def write_all(self, changes: Sequence[Change], on_change: OnChange | None) -> Written:
        """Write ``changes``: (applied, not applied, the first error), both lists in plan order."""
        if not changes:
            return [], [], None
        if self.batch and not self.batches.refused:
            independent = [c for c in changes if c.action is not Action.CREATE]
            if self.concurrency > 1 and len(independent) > self.batch_items:
                return self._write_at_once(changes, independent, on_change)
            return self.batches.write(changes, on_change)
        return self.write_singly([(change, False) for change in changes], on_change)

    def _write_at_once(
        self, changes: Sequence[Change], independent: list[Change], on_change: OnChange | None
    ) -> Written:
        """Updates and resolves, a batch each, at most ``concurrency`` at once; then creates.

        Each touches its own record, so their order does not matter. Once one batch
        failed, no other is started and no create is sent; those running finish.
        """
        size = self.batch_items
        groups = [independent[start : start + size] for start in range(0, len(independent), size)]
        lock = threading.Lock()
        failed = threading.Event()

        def told(change: Change) -> None:
            if on_change is not None:
                with lock:  # callbacks are not thread-safe
                    on_change(change)

        def write(group: list[Change]) -> Written:
            if failed.is_set():
                return [], list(group), None
            written = self.batches.write(group, told)
            if written[2] is not None:
                failed.set()
            return written

        with ThreadPoolExecutor(min(self.concurrency, len(groups)), "snowcheck-write") as pool:
            with threads_leave_signals():  # the main thread notes Ctrl-C at once
                running = pool.map(write, groups)
            results = list(running)
        creates = [c for c in changes if c.action is Action.CREATE]
        if creates and not failed.is_set():
            results.append(self.batches.write(creates, on_change))
        else:
            results.append(([], creates, None))
        done: dict[int, Change] = {}
        left: set[int] = set()
        errors: dict[int, InstanceError] = {}
        position = {id(change): index for index, change in enumerate(changes)}
        for group, (applied, not_applied, error) in zip([*groups, creates], results, strict=True):
            skipped = {id(change) for change in not_applied}
            left |= {position[id(change)] for change in not_applied}
            sent = [change for change in group if id(change) not in skipped]
            for original, change in zip(sent, applied, strict=True):
                done[position[id(original)]] = change
            if error is not None:
                errors[min((position[id(c)] for c in not_applied), default=len(changes))] = error
        first = errors[min(errors)] if errors else None
        if first is not None and len(errors) > 1:
            first = InstanceError(
                f"{first} (and {len(errors) - 1} more batches failed)",
                table=first.table,
                status=first.status,
            )
        return (
            [done[index] for index in sorted(done)],
            [changes[index] for index in sorted(left)],
            first,
        )

    def write_singly(
        self, changes: Sequence[tuple[Change, bool]], on_change: OnChange | None
    ) -> Written:
        """One request per change, stopping at the first failure.

        Each change comes with whether an earlier attempt may have written it (a create
        is then looked up before it is sent).
        """
        applied: list[Change] = []
        for position, (change, unknown) in enumerate(changes):
            if self.stop_requested():
                return applied, [c for c, _ in changes[position:]], WritesStopped()
            try:
                written = self._write(change, unknown=unknown)
            except InstanceError as exc:
                return applied, [c for c, _ in changes[position:]], exc
            applied.append(written)
            if on_change is not None:
                on_change(written)
        return applied, [], None

    def _write(self, change: Change, *, unknown: bool = False) -> Change:
        payload = dict(change.payload)
        if change.action is Action.CREATE:
            record = self.instance.create(
                ISSUE_TABLE,
                payload,
                fields=CREATED_FIELDS,
                find=lambda: self._find_created(payload),
                look_up_first=unknown,
            )
            return replace(change, sys_id=str(record.get("sys_id", "")) or None)
        if not change.sys_id:
            raise InstanceError(
                f"cannot {change.action} an issue without sys_id ({change.message!r})",
                table=ISSUE_TABLE,
            )
        self.instance.patch(ISSUE_TABLE, change.sys_id, payload, fields=CREATED_FIELDS)
        return change

    def _find_created(self, payload: Mapping[str, str]) -> dict[str, Any] | None:
        query = and_(
            eq("source", payload.get("source", "")),
            eq("message", payload.get("message", "")),
            "state!=resolved",
            "mid_serverISEMPTY",
        )
        found = self.instance.fetch(ISSUE_TABLE, query, CREATED_FIELDS)
        return dict(_newest(found)) if found else None

    def open_issues(self, source: str, messages: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The open issues (mid_server empty) of ``source`` with these messages, by message.

        One query per chunk of messages, not one per message.
        """
        found: dict[str, list[dict[str, Any]]] = {}
        wanted = set(messages)
        opened = and_(eq("source", source), "state!=resolved", "mid_serverISEMPTY")
        for chunk in chunk_in("message", wanted, READ_BACK_BUDGET):
            for row in self.instance.fetch(ISSUE_TABLE, and_(opened, chunk), READ_BACK_FIELDS):
                message = row.get("message")
                # The database may compare case-insensitively: keep exact matches only.
                if isinstance(message, str) and message in wanted:
                    found.setdefault(message, []).append(row)
        return found

    def lost_creates(self, creates: Sequence[Change]) -> dict[tuple[str, str], Mapping[str, Any]]:
        """For creates whose answer was lost: the open issue each may have written, by key.

        The key is (source, message); the issue found is the most recently updated.
        """
        found: dict[tuple[str, str], Mapping[str, Any]] = {}
        by_source: dict[str, set[str]] = {}
        for change in creates:
            by_source.setdefault(change.payload.get("source", ""), set()).add(change.message)
        for source, messages in by_source.items():
            for message, rows in self.open_issues(source, messages).items():
                found[(source, message)] = _newest(rows)
        return found

    def duplicates(self, created: Sequence[Change]) -> list[Change]:
        """Resolves for the open duplicates of the issues just created.

        Two runs without the lock may both find no open issue for a message and both
        create one. After its creates, each run reads back the open issues of those
        messages; where a message has several, ``concurrent_create_survivor`` picks
        the one to keep (the earliest created) and every other one is resolved. Every
        record seen here appeared after this run's pull, which found none open.
        """
        messages: dict[str, set[str]] = {}
        for change in created:
            messages.setdefault(change.payload.get("source", ""), set()).add(change.message)
        resolves: list[Change] = []
        for source, wanted in sorted(messages.items()):
            for message, rows in sorted(self.open_issues(source, wanted).items()):
                if len(rows) < 2:
                    continue
                keep = concurrent_create_survivor(
                    (str(r.get("sys_created_on", "")), str(r["sys_id"])) for r in rows
                )
                others = sorted(
                    (r for r in rows if str(r["sys_id"]) != keep),
                    key=lambda r: (str(r.get("sys_created_on", "")), str(r["sys_id"])),
                )
                log.warning(
                    "%d open %s records share the message %r (a concurrent run created one): "
                    "keeping %s, the earliest, and resolving %s",
                    len(rows),
                    ISSUE_TABLE,
                    message,
                    keep,
                    ", ".join(str(row["sys_id"]) for row in others),
                )
                for row in others:
                    count = _count(row.get("count"))
                    resolves.append(
                        Change(
                            action=Action.RESOLVE,
                            message=message,
                            sys_id=str(row["sys_id"]),
                            state_before=str(row.get("state", "")) or None,
                            count_before=count,
                            state="resolved",
                            count=count if count is not None else 1,
                            payload={"state": "resolved"},
                        )
                    )
        return resolves
