"""Writes a plan's changes through the Batch API, several per request, item by item.

The wire format lives in ``snowcheck.servicenow.batch``; this module decides which
changes go in which batch, which items to send again, when a lost create must be
looked up first, and when to give up. A refused Batch API falls back to the
write-back's one-request-per-change writes. Waits follow the instance's one retry
policy.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from snowcheck.errors import InstanceError
from snowcheck.plan import Action, Change
from snowcheck.records import ISSUE_TABLE
from snowcheck.servicenow.batch import (
    BATCH_OVERHEAD,
    BATCH_REFUSED,
    BatchNotAnswered,
    asked_delay,
    created_sys_id,
    item_error,
    not_routed,
    request_size,
    table_request,
)
from snowcheck.servicenow.errors import BatchUnserviced, InstanceHibernating
from snowcheck.servicenow.exchange import RETRIED_STATUSES
from snowcheck.servicenow.instance import Instance

log = logging.getLogger("snowcheck.instance")

CREATED_FIELDS = ("sys_id", "message", "source", "state", "count", "sys_updated_on")
"""Fields read back after a create or looked up before retrying one."""

OnChange = Callable[[Change], None]
Written = tuple[list[Change], list[Change], InstanceError | None]
"""(applied, not applied, the first error), both lists in plan order."""
WriteSingly = Callable[[Sequence[tuple[Change, bool]], OnChange | None], Written]
LostCreates = Callable[[Sequence[Change]], Mapping[tuple[str, str], Mapping[str, Any]]]
StopRequested = Callable[[], bool]
"""Whether the run was asked to stop (Ctrl-C, SIGTERM): asked before each write starts."""


class WritesStopped(InstanceError):
    """No further write was started: the run was asked to stop (Ctrl-C, SIGTERM)."""

    def __init__(self) -> None:
        super().__init__("the run was asked to stop", table=ISSUE_TABLE)


def never() -> bool:
    return False


@dataclass(eq=False)
class _Item:
    """One change on its way through the Batch API."""

    index: int
    """Its position in the plan: the batch item id, and the order of the result."""
    change: Change
    tries: int = 0
    unknown: bool = False
    """An earlier attempt may have been executed: a create must be looked up first."""


def _doing(change: Change) -> str:
    if change.action is Action.CREATE:
        return f"creating an {ISSUE_TABLE} record"
    return f"updating {ISSUE_TABLE} record {change.sys_id}"


class BatchWriter:
    """The Batch API write-back to one instance.

    ``write_singly`` writes one request per change (the fallback); ``lost_creates``
    finds the issues that creates whose answer was lost may have written.
    """

    def __init__(
        self,
        instance: Instance,
        *,
        write_singly: WriteSingly,
        lost_creates: LostCreates,
        batch_items: int,
        batch_bytes: int,
        stop_requested: StopRequested = never,
    ) -> None:
        self.instance = instance
        self.stop_requested = stop_requested
        self.retry = instance.retry
        self.batch_items = batch_items
        self.batch_bytes = batch_bytes
        self._write_singly = write_singly
        self._lost_creates = lost_creates
        self.refused = False
        """The instance refused the batch API: write one request per change from now on."""

    def write(self, changes: Sequence[Change], on_change: OnChange | None) -> Written:
        """Write ``changes`` through ``POST /api/now/v1/batch``, in plan order.

        Each batch holds at most ``batch_items`` changes and ``batch_bytes`` bytes of JSON.
        Per item: a 2xx is written; ``unserviced_requests`` are sent again in the next
        batch; 429 and gateway errors (502-504) are retried up to ``attempts`` times; any
        other status is a failure, and no further batch is sent once one failed (the
        items already in that batch have been executed by the instance and are reported).

        Refusal: when the batch endpoint itself answers 400, 403, 404 or 405, or an item
        answers 400 or 404 with "Requested URI does not represent any resource" (the
        batch API cannot route table URLs), those changes and the rest of the run go one
        request per change, as without the Batch API. A 404 "No Record found" item is a
        real failure (the record is gone), not a refusal.

        A create whose outcome is unknown (the batch answer was lost, or the item got a
        gateway error) is never sent blindly again: its message is looked up first.
        """
        items = [_Item(index, change) for index, change in enumerate(changes)]
        queue: deque[_Item] = deque(items)
        written: dict[int, Change] = {}
        failures: dict[int, InstanceError] = {}
        while queue and not failures:
            if self.stop_requested():
                failures[queue[0].index] = WritesStopped()
                break
            if self.refused:
                rest = list(queue)
                applied, _, error = self._write_singly(
                    [(item.change, item.unknown) for item in rest], on_change
                )
                for item, change in zip(rest, applied, strict=False):
                    written[item.index] = change
                if error is not None:
                    failures[rest[len(applied)].index] = error
                queue.clear()
                break
            batch = self._take_batch(queue)
            try:
                batch = self._skip_found_creates(batch, written, on_change)
            except InstanceError as exc:
                failures[batch[0].index] = exc
                queue.extendleft(reversed(batch))
                break
            if not batch:
                continue
            retry = self._send_batch(batch, written, failures, on_change)
            queue.extendleft(reversed(retry))
        first_error = failures[min(failures)] if failures else None
        applied = [written[index] for index in sorted(written)]
        not_applied = [item.change for item in items if item.index not in written]
        if first_error is not None and len(failures) > 1:
            first_error = InstanceError(
                f"{first_error} (and {len(failures) - 1} more changes failed)",
                table=first_error.table,
                status=first_error.status,
            )
        return applied, not_applied, first_error

    def _request(self, item: _Item) -> dict[str, Any]:
        change = item.change
        sys_id = None if change.action is Action.CREATE else change.sys_id
        return table_request(
            str(item.index), ISSUE_TABLE, change.payload, sys_id=sys_id, fields=CREATED_FIELDS
        )

    def _take_batch(self, queue: deque[_Item]) -> list[_Item]:
        """The next changes in order, within the item and byte caps (at least one)."""
        batch: list[_Item] = []
        size = BATCH_OVERHEAD
        while queue and len(batch) < self.batch_items:
            cost = request_size(self._request(queue[0]))
            if batch and size + cost > self.batch_bytes:
                break
            batch.append(queue.popleft())
            size += cost
        return batch

    def _skip_found_creates(
        self, batch: list[_Item], written: dict[int, Change], on_change: OnChange | None
    ) -> list[_Item]:
        """Look up the creates whose earlier attempt was lost; drop those already written."""
        unknown = [item for item in batch if item.unknown and item.change.action is Action.CREATE]
        if not unknown:
            return batch
        found = self._lost_creates([item.change for item in unknown])
        kept: list[_Item] = []
        for item in batch:
            key = (item.change.payload.get("source", ""), item.change.message)
            record = found.get(key) if item in unknown else None
            if record is None:
                kept.append(item)
                continue
            log.info("%s: the lost create had been written: %s", ISSUE_TABLE, record["sys_id"])
            change = replace(item.change, sys_id=str(record["sys_id"]))
            written[item.index] = change
            if on_change is not None:
                on_change(change)
        return kept

    def _send_batch(
        self,
        batch: list[_Item],
        written: dict[int, Change],
        failures: dict[int, InstanceError],
        on_change: OnChange | None,
    ) -> list[_Item]:
        """Send one batch; record what was written or failed; return the items to send again."""
        for item in batch:
            if item.change.action is not Action.CREATE and not item.change.sys_id:
                failures[item.index] = InstanceError(
                    f"cannot {item.change.action} an issue without sys_id "
                    f"({item.change.message!r})",
                    table=ISSUE_TABLE,
                )
                return batch
        doing = f"writing {len(batch)} {ISSUE_TABLE} changes through the batch API"
        requests = [self._request(item) for item in batch]
        try:
            answer = self.instance.post_batch(requests, table=ISSUE_TABLE, doing=doing)
        except BatchNotAnswered as exc:
            creates = any(item.change.action is Action.CREATE for item in batch)
            if not exc.retryable or (creates and exc.may_run_later):
                # Not retried; nor a batch of creates that timed out waiting for its answer:
                # the instance may still save them after any look-up made now.
                failures[batch[0].index] = exc.error(max(item.tries for item in batch) + 1)
                return batch
            return self._lost(batch, exc, failures, doing=doing)
        except InstanceError as exc:
            if exc.status in BATCH_REFUSED:
                log.info("the batch API was refused (HTTP %s): one request per change", exc.status)
                self.refused = True
                return batch
            answered = exc.status is not None and 200 <= exc.status < 300
            if answered and not isinstance(exc, InstanceHibernating):
                # A 2xx whose body is not the JSON expected: the batch may have run.
                return self._lost(batch, exc, failures, doing=doing)
            failures[batch[0].index] = exc
            return batch
        if answer is None:
            return self._lost(batch, None, failures, doing=doing)

        retry: list[_Item] = []
        delay: float | None = None
        for item in batch:
            entry = answer.serviced.get(str(item.index))
            if entry is None:
                if str(item.index) not in answer.unserviced:
                    item.unknown = True  # neither serviced nor unserviced: assume the worst
                retry.append(item)
                continue
            if 200 <= entry.status < 300:
                change = item.change
                if change.action is Action.CREATE:
                    change = replace(change, sys_id=created_sys_id(entry))
                written[item.index] = change
                if on_change is not None:
                    on_change(change)
            elif entry.status in RETRIED_STATUSES:
                item.unknown = True
                item.tries += 1
                if item.tries >= self.retry.attempts:
                    failures[item.index] = self._item_error(item, entry)
                else:
                    retry.append(item)
                    asked = asked_delay(self.instance.exchange, entry)
                    delay = max(delay or 0.0, asked if asked is not None else 0.0)
            elif not_routed(entry):
                log.info("the batch API cannot route table requests: one request per change")
                self.refused = True
                retry.append(item)
            else:
                failures[item.index] = self._item_error(item, entry)
        serviced_here = answer.serviced.keys() & {str(i.index) for i in batch}
        if retry and not self.refused and not serviced_here:
            # Nothing was serviced: count a try, so a stuck instance cannot loop forever.
            for item in retry:
                item.tries += 1
            if max(item.tries for item in retry) >= self.retry.attempts:
                return self._lost(retry, None, failures, doing=doing, counted=True)
        if delay is not None:
            tries = max((item.tries for item in retry), default=1)
            self.retry.sleep(self.retry.backoff(tries, delay or None))
        return retry

    def _item_error(self, item: _Item, entry: Any) -> InstanceError:
        return item_error(
            self.instance.exchange,
            entry,
            table=ISSUE_TABLE,
            doing=_doing(item.change),
            tries=item.tries,
        )

    def _lost(
        self,
        batch: list[_Item],
        exc: BatchNotAnswered | InstanceError | None,
        failures: dict[int, InstanceError],
        *,
        doing: str,
        counted: bool = False,
    ) -> list[_Item]:
        """The batch's outcome is unknown: retry it (creates looked up first) or give up."""
        for item in batch:
            item.unknown = True
            if not counted:
                item.tries += 1
        tries = max(item.tries for item in batch)
        if tries >= self.retry.attempts:
            if isinstance(exc, InstanceError):
                error = exc
            elif exc is not None:
                error = exc.error(tries)
            else:
                error = self.instance.exchange.error(
                    f"the batch API on {self.instance.connection.host} serviced none of "
                    f"{len(batch)} changes after {tries} attempts: try again later",
                    table=ISSUE_TABLE,
                    kind=BatchUnserviced,
                )
            failures[batch[0].index] = error
            return batch
        asked = exc.delay if isinstance(exc, BatchNotAnswered) else None
        wait = self.retry.backoff(tries, asked)
        if isinstance(exc, BatchNotAnswered):
            what = exc.what
        else:
            what = str(exc) if exc is not None else "no usable answer"
        self.retry.log_retry(doing, what, tries, wait)
        self.retry.sleep(wait)
        return batch
