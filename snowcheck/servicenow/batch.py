"""The Batch API (``POST /api/now/v1/batch``): several Table API requests in one, on the wire.

Builds each request of a batch, sends the batch through the exchange, and reads its
answer back into per-request statuses, headers and bodies. What to do with each of
them (retry, look up, fall back to single requests) is the write-back's business.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from snowcheck.errors import InstanceError
from snowcheck.servicenow.exchange import (
    RETRIED_STATUSES,
    Exchange,
    Transient,
    is_transient,
    retry_delay,
    unanswered,
)

log = logging.getLogger("snowcheck.instance")

BATCH_PATH = "/api/now/v1/batch"
BATCH_REFUSED = frozenset({400, 403, 404, 405})
"""Statuses of the batch endpoint that mean "no batch API here": write one by one instead."""
BATCH_OVERHEAD = 100
"""The batch envelope's own bytes, counted against a batch's byte cap."""
NO_RESOURCE = "does not represent any resource"


@dataclass(frozen=True)
class ItemAnswer:
    """The instance's answer to one request of a batch."""

    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class BatchAnswer:
    """Which requests of a batch were serviced (with their answers) and which were not."""

    serviced: Mapping[str, ItemAnswer]
    unserviced: frozenset[str]


class BatchNotAnswered(Exception):
    """A batch request got no usable answer (no connection, a gateway error, a timeout).

    The instance may or may not have run it. ``retryable``: worth sending again;
    ``may_run_later``: it timed out waiting for the answer, so the instance may still
    save it after any look-up made now; ``delay``: the wait the instance asked for.
    """

    def __init__(self, cause: BaseException, exchange: Exchange, *, table: str, doing: str) -> None:
        self.cause = cause
        self.retryable = is_transient(cause)
        self.may_run_later = unanswered(cause)
        self.delay = cause.delay if isinstance(cause, Transient) else None
        self.what = str(cause) if isinstance(cause, Transient) else type(cause).__name__
        self._exchange = exchange
        self._table = table
        self._doing = doing
        super().__init__(self.what)

    def error(self, tries: int) -> InstanceError:
        """The one-line error, had ``tries`` attempts all ended so."""
        return self._exchange.failure(self.cause, table=self._table, doing=self._doing, tries=tries)


def table_request(
    request_id: str,
    table: str,
    payload: Mapping[str, str],
    *,
    sys_id: str | None,
    fields: Sequence[str],
) -> dict[str, Any]:
    """One batch request: a POST to ``table`` (no ``sys_id``), else a PATCH of that record."""
    url = f"/api/now/table/{table}"
    if sys_id is None:
        method = "POST"
    else:
        method = "PATCH"
        url += f"/{sys_id}"
    query = urlencode(
        {
            "sysparm_display_value": "false",
            "sysparm_exclude_reference_link": "true",
            "sysparm_fields": ",".join(fields),
        }
    )
    body = json.dumps(dict(payload)).encode()
    return {
        "id": request_id,
        "method": method,
        "url": f"{url}?{query}",
        "headers": [
            {"name": "Content-Type", "value": "application/json"},
            {"name": "Accept", "value": "application/json"},
        ],
        "body": base64.b64encode(body).decode("ascii"),
    }


def request_size(request: Mapping[str, Any]) -> int:
    """Bytes one request adds to a batch's JSON."""
    return len(json.dumps(request)) + 1


def post_batch(
    exchange: Exchange, batch: Sequence[Mapping[str, Any]], *, table: str, doing: str
) -> BatchAnswer | None:
    """One POST to the batch API (not retried here); None when its answer is malformed.

    Raises BatchNotAnswered without a usable answer, InstanceError for an error answer.
    """
    payload = {"batch_request_id": uuid.uuid4().hex, "rest_requests": list(batch)}
    try:
        answer = exchange.post(BATCH_PATH, json.dumps(payload), table=table, doing=doing)
    except (Transient, requests.RequestException) as exc:
        raise BatchNotAnswered(exc, exchange, table=table, doing=doing) from exc
    serviced_list = answer.get("serviced_requests")
    unserviced_list = answer.get("unserviced_requests", [])
    if not isinstance(serviced_list, list) or not isinstance(unserviced_list, list):
        log.warning("%s: the batch answer lacks serviced_requests", exchange.connection.host)
        return None
    serviced: dict[str, ItemAnswer] = {}
    for entry in serviced_list:
        if not isinstance(entry, dict) or not isinstance(entry.get("status_code"), int):
            continue
        try:
            content = base64.b64decode(str(entry.get("body") or ""), validate=True)
        except ValueError:
            content = b""
        headers = {
            str(h.get("name", "")): str(h.get("value", ""))
            for h in entry.get("headers") or []
            if isinstance(h, dict)
        }
        serviced[str(entry.get("id"))] = ItemAnswer(entry["status_code"], headers, content)
    return BatchAnswer(serviced, frozenset(str(item) for item in unserviced_list))


def not_routed(answer: ItemAnswer) -> bool:
    """Whether a batch item was refused because the batch API cannot route it."""
    if answer.status not in (400, 404):
        return False
    try:
        body = json.loads(answer.content)
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return isinstance(message, str) and NO_RESOURCE in message.lower()


def created_sys_id(answer: ItemAnswer) -> str | None:
    """The sys_id in a serviced create's answer, if any."""
    try:
        body = json.loads(answer.content)
    except ValueError:
        body = None
    result = body.get("result") if isinstance(body, dict) else None
    sys_id = result.get("sys_id") if isinstance(result, dict) else None
    return str(sys_id) if sys_id else None


def asked_delay(exchange: Exchange, answer: ItemAnswer) -> float | None:
    """The wait a batch item's answer asked for (Retry-After, X-RateLimit-Reset)."""
    return retry_delay(answer.headers, exchange.local_clock())


def item_error(
    exchange: Exchange, answer: ItemAnswer, *, table: str, doing: str, tries: int
) -> InstanceError:
    """The one-line error of a failed batch item, as if it had been sent alone."""
    reason = exchange.reason(answer.content)
    if answer.status in RETRIED_STATUSES:
        transient = Transient(answer.status, None, reason)
        return exchange.failure(transient, table=table, doing=doing, tries=tries)
    return exchange.http_error(answer.status, reason, table=table, doing=doing)
