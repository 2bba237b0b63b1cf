"""Writes a plan's changes through the ServiceNow Batch API, several per request.

The batch is built and its answer read here; the request itself goes out through the
``Instance`` (the only module that speaks HTTP), with its errors and counters. A
refused batch API falls back to the instance's one-request-per-change writes.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import requests

from snowcheck.errors import InstanceError
from snowcheck.instance import (
    CREATED_FIELDS,
    RETRIED_STATUSES,
    Instance,
    _is_transient,
    _retry_delay,
    _Transient,
    _unanswered,
)
from snowcheck.plan import Action, Change
from snowcheck.records import ISSUE_TABLE

# The instance's logger: batch writes are the instance's writes, and log files and
# filters name them so.
log = logging.getLogger("snowcheck.instance")

BATCH_PATH = "/api/now/v1/batch"
BATCH_REFUSED = frozenset({400, 403, 404, 405})
"""Statuses of the batch endpoint that mean "no batch API here": write one by one instead."""
BATCH_OVERHEAD = 100
"""The batch envelope's own bytes, counted against ``batch_bytes``."""
NO_RESOURCE = "does not represent any resource"


@dataclass(eq=False)
class _Item:
    """One change on its way through the Batch API."""

    index: int
    """Its position in the plan: the batch item id, and the order of the result."""
    change: Change
    tries: int = 0
    unknown: bool = False
    """An earlier attempt may have been executed: a create must be looked up first."""


def _fake_response(status: int, headers: Sequence[tuple[str, str]], content: bytes) -> Any:
    """A batch item's answer as a requests.Response, to reuse the single-request errors."""
    response = requests.Response()
    response.status_code = status
    response.headers.update(dict(headers))
    response._content = content
    return response


def _not_routed(status: int, content: bytes) -> bool:
    """Whether a batch item was refused because the batch API cannot route it."""
    if status not in (400, 404):
        return False
    try:
        body = json.loads(content)
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return isinstance(message, str) and NO_RESOURCE in message.lower()


class BatchWriter:
    """The Batch API write-back of one ``Instance``, which it reads its caps and retries from.

    Made once per instance: once the batch API is refused, later writes go one by one.
    """

    def __init__(self, instance: Instance) -> None:
        self._instance = instance
        self.refused = False
        """The instance refused the batch API: write one request per change from now on."""

    def write(
        self, changes: Sequence[Change], on_change: Callable[[Change], None] | None
    ) -> tuple[list[Change], list[Change], InstanceError | None]:
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
            if self.refused:
                rest = list(queue)
                applied, _, error = self._instance._write_singly(
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

    def _take_batch(self, queue: deque[_Item]) -> list[_Item]:
        """The next changes in order, within the item and byte caps (at least one)."""
        batch: list[_Item] = []
        size = BATCH_OVERHEAD
        while queue and len(batch) < self._instance.batch_items:
            item = queue[0]
            cost = len(json.dumps(self._batch_request(item))) + 1
            if batch and size + cost > self._instance.batch_bytes:
                break
            batch.append(queue.popleft())
            size += cost
        return batch

    def _batch_request(self, item: _Item) -> dict[str, Any]:
        change = item.change
        url = f"/api/now/table/{ISSUE_TABLE}"
        if change.action is Action.CREATE:
            method = "POST"
        else:
            method = "PATCH"
            url += f"/{change.sys_id}"
        query = urlencode(
            {
                "sysparm_display_value": "false",
                "sysparm_exclude_reference_link": "true",
                "sysparm_fields": ",".join(CREATED_FIELDS),
            }
        )
        body = json.dumps(dict(change.payload)).encode()
        return {
            "id": str(item.index),
            "method": method,
            "url": f"{url}?{query}",
            "headers": [
                {"name": "Content-Type", "value": "application/json"},
                {"name": "Accept", "value": "application/json"},
            ],
            "body": base64.b64encode(body).decode("ascii"),
        }

    def _skip_found_creates(
        self,
        batch: list[_Item],
        written: dict[int, Change],
        on_change: Callable[[Change], None] | None,
    ) -> list[_Item]:
        """Look up the creates whose earlier attempt was lost; drop those already written."""
        unknown = [item for item in batch if item.unknown and item.change.action is Action.CREATE]
        if not unknown:
            return batch
        found: dict[tuple[str, str], dict[str, Any]] = {}
        by_source: dict[str, set[str]] = {}
        for item in unknown:
            source = item.change.payload.get("source", "")
            by_source.setdefault(source, set()).add(item.change.message)
        for source, messages in by_source.items():
            for message, rows in self._instance._open_issues(source, messages).items():
                newest = max(rows, key=lambda r: (str(r.get("sys_updated_on", "")), r["sys_id"]))
                found[(source, message)] = newest
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
        on_change: Callable[[Change], None] | None,
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
        payload = {
            "batch_request_id": uuid.uuid4().hex,
            "rest_requests": [self._batch_request(item) for item in batch],
        }
        try:
            answer = self._post_batch(json.dumps(payload), doing=doing)
        except InstanceError as exc:
            if exc.status in BATCH_REFUSED:
                log.info("the batch API was refused (HTTP %s): one request per change", exc.status)
                self.refused = True
                return batch
            if exc.status is not None and 200 <= exc.status < 300 and "hibernat" not in str(exc):
                # A 2xx whose body is not the JSON expected: the batch may have run.
                return self._lost(batch, exc, failures, doing=doing)
            failures[batch[0].index] = exc
            return batch
        except (_Transient, requests.RequestException) as exc:
            creates = any(item.change.action is Action.CREATE for item in batch)
            if not _is_transient(exc) or (creates and _unanswered(exc)):
                # Not retried; nor a batch of creates that timed out waiting for its answer:
                # the instance may still save them after any look-up made now.
                tries = max(item.tries for item in batch) + 1
                error = self._instance._failure(exc, table=ISSUE_TABLE, doing=doing, tries=tries)
                failures[batch[0].index] = error
                return batch
            return self._lost(batch, exc, failures, doing=doing)
        if answer is None:
            return self._lost(batch, None, failures, doing=doing)

        serviced, unserviced = answer
        retry: list[_Item] = []
        delay: float | None = None
        for item in batch:
            entry = serviced.get(str(item.index))
            if entry is None:
                if str(item.index) not in unserviced:
                    item.unknown = True  # neither serviced nor unserviced: assume the worst
                retry.append(item)
                continue
            status, headers, content = entry
            if 200 <= status < 300:
                change = self._batch_result(item, content)
                written[item.index] = change
                if on_change is not None:
                    on_change(change)
            elif status in RETRIED_STATUSES:
                item.unknown = True
                item.tries += 1
                if item.tries >= self._instance.attempts:
                    failures[item.index] = self._item_error(item, status, headers, content)
                else:
                    retry.append(item)
                    asked = _retry_delay(
                        _fake_response(status, headers, content), self._instance._clock()
                    )
                    delay = max(delay or 0.0, asked if asked is not None else 0.0)
            elif _not_routed(status, content):
                log.info("the batch API cannot route table requests: one request per change")
                self.refused = True
                retry.append(item)
            else:
                failures[item.index] = self._item_error(item, status, headers, content)
        if retry and not self.refused and not serviced.keys() & {str(i.index) for i in batch}:
            # Nothing was serviced: count a try, so a stuck instance cannot loop forever.
            for item in retry:
                item.tries += 1
            if max(item.tries for item in retry) >= self._instance.attempts:
                return self._lost(retry, None, failures, doing=doing, counted=True)
        if delay is not None:
            self._instance._sleep(
                min(self._instance.max_wait, delay) if delay else self._pause(retry)
            )
        return retry

    def _pause(self, items: Sequence[_Item]) -> float:
        tries = max((item.tries for item in items), default=1)
        return float(min(self._instance.max_wait, 2 ** max(0, tries - 1)))

    def _lost(
        self,
        batch: list[_Item],
        exc: BaseException | None,
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
        if tries >= self._instance.attempts:
            if isinstance(exc, InstanceError):
                error = exc
            elif exc is not None:
                error = self._instance._failure(exc, table=ISSUE_TABLE, doing=doing, tries=tries)
            else:
                error = self._instance._error(
                    f"the batch API on {self._instance._host} serviced none of "
                    f"{len(batch)} changes after {tries} attempts: try again later",
                    table=ISSUE_TABLE,
                )
            failures[batch[0].index] = error
            return batch
        delay = exc.delay if isinstance(exc, _Transient) and exc.delay is not None else None
        wait = min(self._instance.max_wait, delay) if delay is not None else self._pause(batch)
        log.warning(
            "%s on %s failed (%s), attempt %d of %d; retrying in %.1f s",
            doing,
            self._instance._host,
            self._instance._scrub(
                str(exc) if isinstance(exc, _Transient | InstanceError) else type(exc).__name__
            ),
            tries,
            self._instance.attempts,
            wait,
        )
        self._instance._sleep(wait)
        return batch

    def _post_batch(
        self, body: str, *, doing: str
    ) -> tuple[dict[str, tuple[int, list[tuple[str, str]], bytes]], set[str]] | None:
        """One POST to the batch API: (serviced by id, unserviced ids), None if malformed."""
        answer = self._instance._post(BATCH_PATH, body, table=ISSUE_TABLE, doing=doing)
        serviced_list = answer.get("serviced_requests")
        unserviced_list = answer.get("unserviced_requests", [])
        if not isinstance(serviced_list, list) or not isinstance(unserviced_list, list):
            log.warning("%s: the batch answer lacks serviced_requests", self._instance._host)
            return None
        serviced: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}
        for entry in serviced_list:
            if not isinstance(entry, dict) or not isinstance(entry.get("status_code"), int):
                continue
            try:
                content = base64.b64decode(str(entry.get("body") or ""), validate=True)
            except ValueError:
                content = b""
            headers = [
                (str(h.get("name", "")), str(h.get("value", "")))
                for h in entry.get("headers") or []
                if isinstance(h, dict)
            ]
            serviced[str(entry.get("id"))] = (entry["status_code"], headers, content)
        return serviced, {str(item) for item in unserviced_list}

    def _batch_result(self, item: _Item, content: bytes) -> Change:
        if item.change.action is not Action.CREATE:
            return item.change
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        result = body.get("result") if isinstance(body, dict) else None
        sys_id = result.get("sys_id") if isinstance(result, dict) else None
        return replace(item.change, sys_id=str(sys_id) if sys_id else None)

    def _item_error(
        self, item: _Item, status: int, headers: list[tuple[str, str]], content: bytes
    ) -> InstanceError:
        change = item.change
        if change.action is Action.CREATE:
            doing = f"creating an {ISSUE_TABLE} record"
        else:
            doing = f"updating {ISSUE_TABLE} record {change.sys_id}"
        response = _fake_response(status, headers, content)
        if status in RETRIED_STATUSES:
            return self._instance._failure(
                _Transient(status, None, self._instance._reason(response)),
                table=ISSUE_TABLE,
                doing=doing,
                tries=item.tries,
            )
        return self._instance._http_error(response, table=ISSUE_TABLE, doing=doing)
