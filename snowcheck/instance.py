"""The only module that speaks HTTP: reads tables and writes issues through pysnow, carefully.

pysnow builds URLs and parameters and sends through our ``requests.Session``; this
adapter adds what it lacks: paging by offset with ``X-Total-Count``, retries with
backoff (``Retry-After``, ``X-RateLimit-Reset``), timeouts, a JSON check on every
answer (a hibernating developer instance answers 200 with HTML), PATCH instead of
GET+PUT, writes grouped through the Batch API (``snowcheck.batch`` builds the batches
and reads their answers), creates that are never duplicated by a retry nor by a
concurrent run, and one-line errors that name the cause and the fix. The password and
the Authorization header never appear in an error, a log line or a repr.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar

import pysnow
import requests
import tenacity

from snowcheck import __version__
from snowcheck.connection import Connection
from snowcheck.errors import InstanceError, PartialWrite
from snowcheck.plan import Action, Change, Plan
from snowcheck.query import and_, chunk_in, eq
from snowcheck.records import ISSUE_TABLE
from snowcheck.redact import Redactor

log = logging.getLogger("snowcheck.instance")

Progress = Callable[[str, int, int | None], None]
"""Called after each page with (table, rows so far, total rows or None)."""

T = TypeVar("T")

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_ATTEMPTS = 5
DEFAULT_MAX_WAIT = 60.0
"""Longest single wait between attempts, whatever Retry-After asks for."""

# Fields read back after a create or looked up before retrying one.
CREATED_FIELDS = ("sys_id", "message", "source", "state", "count", "sys_updated_on")
READ_BACK_FIELDS = ("sys_id", "message", "state", "count", "sys_created_on", "sys_updated_on")
READ_BACK_BUDGET = 4000
"""URL-encoded characters of one IN list of messages read back after creates."""

DEFAULT_BATCH_ITEMS = 100
"""Changes per batch: a batch runs as one transaction on the instance, keep it short."""
DEFAULT_BATCH_BYTES = 1_000_000
"""Bytes of JSON per batch request, well under the instance's request size limit."""

_SPACES = re.compile(r"\s+")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _read_roles(table: str) -> str:
    """The roles to suggest when the account may not read (or write) ``table``."""
    # Not mid_server: a checking account holding it would itself be reported as a MID
    # Server user that is not associated with a MID Server.
    return "admin, or a custom role granting it (not mid_server)"


class _Transient(Exception):
    """An answer worth retrying (429 or a gateway error), with the wait the instance asked for."""

    def __init__(self, status: int, delay: float | None, reason: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.delay = delay
        self.reason = reason


def _count(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class _Session(requests.Session):
    """A Session whose explicit CA bundle beats REQUESTS_CA_BUNDLE.

    requests lets REQUESTS_CA_BUNDLE override ``Session.verify`` when a request does
    not pass ``verify`` itself (pysnow never does); --ca-bundle must win over the
    environment, so an explicit bundle is passed down as the request's own.
    """

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if verify is None and self.verify is not True:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def _one_line(text: str, limit: int = 200) -> str:
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _servicenow_reason(response: requests.Response) -> str:
    """The error body's ``error.message``/``error.detail`` as one short line, or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [
        str(error[key]) for key in ("message", "detail") if isinstance(error.get(key), str | int)
    ]
    return _one_line(": ".join(part for part in parts if part))


def _retry_delay(response: requests.Response, now: datetime) -> float | None:
    """Seconds the instance asked us to wait: Retry-After (seconds or date), X-RateLimit-Reset."""
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after:
        if retry_after.isdigit():
            return float(retry_after)
        try:
            when = parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds())
    reset = response.headers.get("X-RateLimit-Reset", "").strip()
    if reset:
        try:
            return max(0.0, float(reset) - now.timestamp())
        except ValueError:
            return None
    return None


def _is_name_resolution(exc: BaseException) -> bool:
    """Whether a connection error is a DNS failure (permanent for our purpose: a typo)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if type(current).__name__ == "NameResolutionError":
            return True
        text = str(current)
        if "Failed to resolve" in text or "Name or service not known" in text:
            return True
        for nested in (*current.args, getattr(current, "reason", None), current.__cause__):
            if isinstance(nested, BaseException):
                pending.append(nested)
    return False


def _unanswered(exc: BaseException) -> bool:
    """The instance got the request but did not answer in time: it may still be writing it."""
    return isinstance(exc, requests.exceptions.ReadTimeout)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _Transient):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.ConnectionError):
        return not _is_name_resolution(exc)
    return isinstance(exc, requests.Timeout | requests.exceptions.ChunkedEncodingError)


class Instance:
    """One ServiceNow instance, read and written over the Table API.

    ``sleep`` and ``clock`` are injectable so tests never wait and can fix the time;
    ``progress`` is told about each page read. Counters (``requests_made``,
    ``bytes_received``, ``bytes_sent``) add up every attempt, retries included.
    ``batch``, ``batch_items`` and ``batch_bytes`` choose how ``apply`` writes: through
    the Batch API, at most that many changes and bytes per request. Reads may run in
    several threads at once (``pull_snapshot`` does): counters and the clock are locked.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        progress: Progress | None = None,
        batch: bool = True,
        batch_items: int = DEFAULT_BATCH_ITEMS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if batch_items < 1 or batch_bytes < 1:
            raise ValueError("batch_items and batch_bytes must be at least 1")
        self.batch = batch
        """Write through the Batch API (falls back to single requests when refused)."""
        self.batch_items = batch_items
        self.batch_bytes = batch_bytes
        self.duplicates_resolved: list[Change] = []
        """Duplicates of our creates (made by a concurrent run) resolved by the last apply."""
        self.connection = connection
        self.attempts = attempts
        self.max_wait = max_wait
        self.progress = progress
        self._stopped = threading.Event()
        self._sleep = sleep if sleep is not None else self._stopped.wait
        self._clock = clock
        self._lock = threading.Lock()
        self._progress_lock = threading.Lock()
        self._backoff = tenacity.wait_exponential_jitter(multiplier=1, max=max_wait, jitter=1)
        self._redactor = Redactor.for_login(connection.user, connection.password)

        self.requests_made = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.now: datetime | None = None
        """The instance's clock: the Date header of the first successful answer."""
        self.clock_source = "instance"
        """"instance" (Date header) or "local" (no usable Date header: the local clock)."""

        session = _Session()
        session.auth = (connection.user, connection.password)
        session.verify = connection.verify
        session.trust_env = True  # HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE
        self._session = session
        self._client = pysnow.Client(
            host=connection.host, use_ssl=connection.use_ssl, session=session
        )
        # pysnow sets "User-Agent: pysnow"; say who is calling, for the instance's logs.
        session.headers["User-Agent"] = f"snowcheck/{__version__} (pysnow)"

        # Imported here, not at the top: snowcheck.batch builds on this module.
        from snowcheck.batch import BatchWriter

        self._batches = BatchWriter(self)

    def __repr__(self) -> str:
        return f"Instance({self.connection.base_url!r}, user={self.connection.user!r})"

    def __enter__(self) -> Instance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- reading -----------------------------------------------------------------------

    def fetch(self, table: str, query: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of ``table`` matching ``query`` (an encoded query), with only ``fields``.

        Pages by offset in sys_id order until the offset passes ``X-Total-Count`` (a
        page can be short because of ACLs while more rows exist), or, without that
        header, until a short page. Rows seen twice (the table moved under us) are
        kept once, by sys_id.
        """
        ordered = and_(query, "ORDERBYsys_id")
        page_size = self.connection.page_size
        keyed: dict[str, dict[str, Any]] = {}
        unkeyed: list[dict[str, Any]] = []
        total: int | None = None
        duplicates = 0
        offset = 0
        while True:
            self._check_stopped(table)
            rows, page_total = self._read_page(table, ordered, fields, offset)
            if page_total is not None and total is not None and page_total != total:
                log.warning(
                    "%s changed while being read (X-Total-Count %d, then %d): "
                    "rows were added or removed meanwhile",
                    table,
                    total,
                    page_total,
                )
            total = page_total if page_total is not None else total
            fresh = 0
            for row in rows:
                sys_id = row.get("sys_id")
                if isinstance(sys_id, str) and sys_id:
                    if sys_id in keyed:
                        duplicates += 1
                        continue
                    keyed[sys_id] = row
                else:
                    unkeyed.append(row)
                fresh += 1
            offset += page_size
            if self.progress is not None:
                with self._progress_lock:  # reads may run in several threads; callbacks not
                    self.progress(table, len(keyed) + len(unkeyed), total)
            if page_total is not None:
                if offset >= page_total:
                    break
            elif len(rows) < page_size:
                break
            elif fresh == 0:
                log.warning("%s: a full page of rows already read; stopping there", table)
                break
        if duplicates:
            log.warning(
                "%s: %d rows came back twice while paging (the table changed); kept once each",
                table,
                duplicates,
            )
        return [*keyed.values(), *unkeyed]

    def _read_page(
        self, table: str, query: str, fields: Sequence[str], offset: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        def send(resource: Any) -> Any:
            return resource.get(
                query=query, fields=list(fields), limit=self.connection.page_size, offset=offset
            )

        doing = f"reading {table}"
        response, body = self._call(send, table=table, doing=doing, params={})
        result = body.get("result")
        if not isinstance(result, list) or not all(isinstance(row, dict) for row in result):
            raise self._error(
                f"unexpected answer {doing} on {self._host}: 'result' is not a list of records",
                table=table,
                status=response.status_code,
            )
        total_header = response.headers.get("X-Total-Count", "").strip()
        total = int(total_header) if total_header.isdigit() else None
        return result, total

    # -- writing -----------------------------------------------------------------------

    def apply(
        self, plan: Plan, *, on_change: Callable[[Change], None] | None = None
    ) -> tuple[Change, ...]:
        """Write the plan's changes in order; return them (a create with its new sys_id).

        Changes go through the Batch API, several per request, unless it is turned off
        or the instance refuses it (then one request per change, see ``snowcheck.batch``).
        Then the open issues of the messages just created are read back, and duplicates
        left by a concurrent run are resolved (see ``_duplicates``).

        A failure raises PartialWrite, which lists what was written and what was not;
        the plan is built from the instance's state, so a new check converges.
        """
        changes = plan.changes
        applied, not_applied, error = self._write_all(changes, on_change)
        created = [c for c in applied if c.action is Action.CREATE and c.sys_id]
        settle_error: InstanceError | None = None
        unsettled: list[Change] = []
        if created:
            try:
                duplicates = self._duplicates(created)
            except InstanceError as exc:
                settle_error = exc
            else:
                self.duplicates_resolved, unsettled, settle_error = self._write_all(
                    duplicates, None
                )
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

    def _write_all(
        self, changes: Sequence[Change], on_change: Callable[[Change], None] | None
    ) -> tuple[list[Change], list[Change], InstanceError | None]:
        """Write ``changes``: (applied, not applied, the first error), both lists in plan order."""
        if not changes:
            return [], [], None
        if self.batch and not self._batches.refused:
            return self._batches.write(changes, on_change)
        return self._write_singly([(change, False) for change in changes], on_change)

    def _write_singly(
        self,
        changes: Sequence[tuple[Change, bool]],
        on_change: Callable[[Change], None] | None,
    ) -> tuple[list[Change], list[Change], InstanceError | None]:
        """One request per change, stopping at the first failure.

        Each change comes with whether an earlier attempt may have written it (a create
        is then looked up before it is sent).
        """
        applied: list[Change] = []
        for position, (change, unknown) in enumerate(changes):
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
            record = self.create_issue(payload, look_up_first=unknown)
            return replace(change, sys_id=str(record.get("sys_id", "")) or None)
        if not change.sys_id:
            raise InstanceError(
                f"cannot {change.action} an issue without sys_id ({change.message!r})",
                table=ISSUE_TABLE,
            )
        self.patch(ISSUE_TABLE, change.sys_id, payload)
        return change

    def patch(self, table: str, sys_id: str, body: Mapping[str, str]) -> dict[str, Any]:
        """Set ``body``'s fields on one record (PATCH: one request, only those fields)."""
        data = json.dumps(dict(body))

        def send(resource: Any) -> Any:
            return resource.request("PATCH", path_append=f"/{sys_id}", data=data)

        doing = f"updating {table} record {sys_id}"
        _, body_json = self._call(send, table=table, doing=doing, params=self._write_params())
        return self._record(body_json, table=table, doing=doing)

    def create_issue(
        self, payload: Mapping[str, str], *, look_up_first: bool = False
    ) -> dict[str, Any]:
        """POST one ecc_agent_issue; a retry first looks the issue up, so never a duplicate.

        A failed POST may still have created the record (the answer was lost). Before
        each retry the open issues with this source and message are read again; if the
        record is there it is the result, else the POST is sent again. ``look_up_first``
        does that before the first POST too: an earlier attempt (in a batch) was lost.
        """
        data = dict(payload)
        doing = f"creating an {ISSUE_TABLE} record"
        tries = 0

        def attempt() -> dict[str, Any]:
            nonlocal tries
            tries += 1
            if tries > 1 or look_up_first:
                existing = self._find_created(data)
                if existing is not None:
                    log.info("%s: the failed create had been written: %s", ISSUE_TABLE, existing)
                    return existing
            _, body = self._send(
                lambda resource: resource.create(data),
                table=ISSUE_TABLE,
                doing=doing,
                params=self._write_params(),
            )
            return self._record(body, table=ISSUE_TABLE, doing=doing)

        # A create that timed out waiting for its answer is not sent again in this run: the
        # instance may save it after any look-up we could make now. The next check reads
        # the table and converges (an update if it was saved, a create if not).
        return self._retrying(
            attempt,
            table=ISSUE_TABLE,
            doing=doing,
            tries=lambda: tries,
            retry_if=lambda exc: _is_transient(exc) and not _unanswered(exc),
        )

    def _find_created(self, payload: Mapping[str, str]) -> dict[str, Any] | None:
        query = and_(
            eq("source", payload.get("source", "")),
            eq("message", payload.get("message", "")),
            "state!=resolved",
            "mid_serverISEMPTY",
        )
        found = self.fetch(ISSUE_TABLE, query, CREATED_FIELDS)
        if not found:
            return None
        return max(found, key=lambda row: (str(row.get("sys_updated_on", "")), row["sys_id"]))

    def _open_issues(self, source: str, messages: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The open issues (mid_server empty) of ``source`` with these messages, by message.

        One query per chunk of messages, not one per message.
        """
        found: dict[str, list[dict[str, Any]]] = {}
        wanted = set(messages)
        opened = and_(eq("source", source), "state!=resolved", "mid_serverISEMPTY")
        for chunk in chunk_in("message", wanted, READ_BACK_BUDGET):
            for row in self.fetch(ISSUE_TABLE, and_(opened, chunk), READ_BACK_FIELDS):
                message = row.get("message")
                # The database may compare case-insensitively: keep exact matches only.
                if isinstance(message, str) and message in wanted:
                    found.setdefault(message, []).append(row)
        return found

    def _duplicates(self, created: Sequence[Change]) -> list[Change]:
        """Resolves for the open duplicates of the issues just created.

        Two runs without the lock may both find no open issue for a message and both
        create one. After its creates, each run reads back the open issues of those
        messages; where a message has several, the keeper is the earliest
        (sys_created_on, then sys_id) and every other one is resolved. Every run picks
        the same keeper from what it sees, and the earliest record of all is never
        resolved; the run that reads last sees every record and resolves all but that
        one, so exactly one stays open. (Resolving only one's own record is not enough:
        records created in the same second tie on sys_created_on, and a run that read
        back before the other created keeps its own whatever the sys_ids say.) Every
        record seen here appeared after this run's pull, which found none open.
        """
        messages: dict[str, set[str]] = {}
        for change in created:
            messages.setdefault(change.payload.get("source", ""), set()).add(change.message)
        resolves: list[Change] = []
        for source, wanted in sorted(messages.items()):
            for message, rows in sorted(self._open_issues(source, wanted).items()):
                if len(rows) < 2:
                    continue
                rows.sort(key=lambda r: (str(r.get("sys_created_on", "")), str(r["sys_id"])))
                keeper, *others = rows
                log.warning(
                    "%d open %s records share the message %r (a concurrent run created one): "
                    "keeping %s, the earliest, and resolving %s",
                    len(rows),
                    ISSUE_TABLE,
                    message,
                    keeper["sys_id"],
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

    def _write_params(self) -> dict[str, Any]:
        # pysnow sends its GET parameters on every request; a write needs none of them.
        return {
            "sysparm_query": None,
            "sysparm_limit": None,
            "sysparm_offset": None,
            "sysparm_fields": ",".join(CREATED_FIELDS),
        }

    def _record(self, body: dict[str, Any], *, table: str, doing: str) -> dict[str, Any]:
        result = body.get("result")
        if not isinstance(result, dict):
            raise self._error(
                f"unexpected answer {doing} on {self._host}: 'result' is not a record",
                table=table,
            )
        return result

    # -- one exchange, retried -----------------------------------------------------------

    @property
    def _host(self) -> str:
        return self.connection.host

    def _call(
        self,
        send: Callable[[Any], Any],
        *,
        table: str,
        doing: str,
        params: Mapping[str, Any],
    ) -> tuple[requests.Response, dict[str, Any]]:
        """One request (GET or PATCH), retried on transient failures."""
        tries = 0

        def attempt() -> tuple[requests.Response, dict[str, Any]]:
            nonlocal tries
            tries += 1
            return self._send(send, table=table, doing=doing, params=params)

        return self._retrying(attempt, table=table, doing=doing, tries=lambda: tries)

    def _retrying(
        self,
        attempt: Callable[[], T],
        *,
        table: str,
        doing: str,
        tries: Callable[[], int],
        retry_if: Callable[[BaseException], bool] = _is_transient,
    ) -> T:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(retry_if),
            sleep=lambda seconds: self._pause_unless_stopped(seconds, table),
            before_sleep=lambda state: self._log_retry(state, doing),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except (_Transient, requests.RequestException) as exc:
            raise self._failure(exc, table=table, doing=doing, tries=tries()) from exc

    def stop_reads(self) -> None:
        """Make reads running in other threads give up at their next page or retry.

        For a pull whose other read failed: the error is already known, and nothing will
        be written, so there is no point in waiting out their retries. Reads stay stopped:
        read again through a new Instance.
        """
        self._stopped.set()

    def _check_stopped(self, table: str) -> None:
        if self._stopped.is_set():
            raise InstanceError(
                f"reading {table} abandoned: another read of this check failed", table=table
            )

    def _pause_unless_stopped(self, seconds: float, table: str) -> None:
        self._sleep(seconds)  # by default, a wait that stop_reads ends early
        self._check_stopped(table)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Transient) and exc.delay is not None:
            return min(self.max_wait, exc.delay)
        return float(self._backoff(state))

    def _log_retry(self, state: tenacity.RetryCallState, doing: str) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s on %s failed (%s), attempt %d of %d; retrying in %.1f s",
            doing,
            self._host,
            self._scrub(type(exc).__name__ if not isinstance(exc, _Transient) else str(exc)),
            state.attempt_number,
            self.attempts,
            wait,
        )

    def _send(
        self,
        send: Callable[[Any], Any],
        *,
        table: str,
        doing: str,
        params: Mapping[str, Any],
    ) -> tuple[requests.Response, dict[str, Any]]:
        """Send one request through a fresh pysnow resource; check and decode the answer."""
        resource = self._client.resource(
            api_path=f"/table/{table}",
            timeout=(self.connection.connect_timeout, self.connection.read_timeout),
        )
        # pysnow sends Python booleans ("False"); the Table API documents lowercase.
        resource.parameters.add_custom(
            {
                "sysparm_display_value": "false",
                "sysparm_exclude_reference_link": "true",
                "sysparm_suppress_pagination_header": None,
                "sysparm_view": None,
                **params,
            }
        )
        with self._lock:
            self.requests_made += 1
        try:
            answer = send(resource)
        except pysnow.exceptions.InvalidUsage as exc:
            raise self._error(f"invalid request {doing}: {exc}", table=table) from None
        # pysnow's Response raises before reading an error body; we need the body and
        # the headers, so take the requests.Response it wraps (pysnow 0.7.17 is frozen).
        response: requests.Response = answer._response
        return response, self._decode(response, table=table, doing=doing)

    def _post(self, path: str, body: str, *, table: str, doing: str) -> dict[str, Any]:
        """One JSON POST to ``path`` (not a table: pysnow cannot), checked and decoded; no retry."""
        with self._lock:
            self.requests_made += 1
        response = self._session.post(
            f"{self.connection.base_url}{path}",
            data=body.encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=(self.connection.connect_timeout, self.connection.read_timeout),
        )
        return self._decode(response, table=table, doing=doing)

    def _decode(self, response: requests.Response, *, table: str, doing: str) -> dict[str, Any]:
        content = response.content or b""
        request = response.request
        sent = len(request.url or "") + len(request.body or b"")
        with self._lock:
            self.bytes_received += len(content)
            self.bytes_sent += sent
        status = response.status_code
        log.debug("%s %s -> %d (%d bytes)", request.method, request.url, status, len(content))
        if status in RETRIED_STATUSES:
            # Retry-After is honoured on 503 too, where servers also send it.
            delay = _retry_delay(response, self._clock())
            raise _Transient(status, delay, self._reason(response))
        if status >= 400:
            raise self._http_error(response, table=table, doing=doing)
        if 200 <= status < 300:
            self._note_clock(response)
        try:
            body = json.loads(content)
        except ValueError:
            raise self._not_json(response, table=table, doing=doing) from None
        if not isinstance(body, dict):
            raise self._error(
                f"unexpected answer {doing} on {self._host}: JSON but not an object",
                table=table,
                status=status,
            )
        if "result" not in body and isinstance(body.get("error"), dict):
            reason = self._reason(response)
            said = f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
            raise self._error(
                f"the instance reported an error {doing} ({said})",
                table=table,
                status=status,
            )
        return body

    def _note_clock(self, response: requests.Response) -> None:
        with self._lock:
            if self.now is not None:
                return
            header = response.headers.get("Date")
            try:
                when = parsedate_to_datetime(header) if header else None
            except (TypeError, ValueError):
                when = None
            if when is None:
                self.now = self._clock().astimezone(UTC)
                self.clock_source = "local"
                log.warning("%s sent no usable Date header: using the local clock", self._host)
                return
            self.now = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
            self.clock_source = "instance"

    # -- errors --------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return self._redactor(text)

    def _reason(self, response: requests.Response) -> str:
        """The instance's words for an error, or '' (the status line alone) if they could
        echo a secret that cannot be masked, such as a password of under six characters."""
        return self._redactor.echo_safe(_servicenow_reason(response))

    def _error(self, message: str, *, table: str, status: int | None = None) -> InstanceError:
        return InstanceError(self._scrub(message), table=table, status=status)

    def _not_json(self, response: requests.Response, *, table: str, doing: str) -> InstanceError:
        status = response.status_code
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        text = (response.content or b"")[:20000].decode("utf-8", "replace").lower()
        if "hibernat" in text:
            return self._error(
                f"the instance {self._host} is hibernating (HTTP {status} with its "
                "'Instance Hibernating' page instead of JSON): wake it from the developer "
                "portal (developer.servicenow.com) and run again",
                table=table,
                status=status,
            )
        if kind.endswith("json"):
            return self._error(
                f"the answer {doing} on {self._host} was malformed or truncated JSON "
                f"({len(response.content or b'')} bytes): run again; if it persists, lower "
                "page_size in the config file",
                table=table,
                status=status,
            )
        shown = kind or "no content type"
        return self._error(
            f"{self._host} answered {doing} with {shown} instead of JSON (HTTP {status}): "
            "check that --instance is the instance's address and that no proxy or login "
            "page intercepts REST calls",
            table=table,
            status=status,
        )

    def _http_error(self, response: requests.Response, *, table: str, doing: str) -> InstanceError:
        status = response.status_code
        reason = self._reason(response)
        said = f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
        user = self.connection.user
        reading = doing.startswith("reading")
        if status == 401:
            message = (
                f"authentication as {user} failed at {self._host} ({said}): check the user "
                "name and password, and that the account may use basic authentication"
            )
        elif status == 403:
            access = "read" if reading else "write"
            message = (
                f"{access} access to {table} denied ({said}): grant {user} a role that can "
                f"{access} {table}, such as {_read_roles(table)}"
            )
        elif status == 404 and reading:
            message = (
                f"{table} could not be read ({said}): the table does not exist on this "
                f"instance or an ACL hides it from {user}; check the account's roles"
            )
        elif status == 404:
            message = (
                f"{doing} failed ({said}): the record was deleted or is hidden from {user}; "
                "run the check again"
            )
        elif status == 400 and "invalid table" in reason.lower():
            message = (
                f"table {table} does not exist on {self._host} ({said}): check the "
                "instance's release and plugins"
            )
        elif status == 400:
            message = (
                f"the instance rejected the request {doing} ({said}): this is unexpected; "
                "please report it with the instance's release"
            )
        else:
            message = f"{self._host} failed {doing} ({said}): try again later"
        return self._error(message, table=table, status=status)

    def _failure(self, exc: BaseException, *, table: str, doing: str, tries: int) -> InstanceError:
        """The one-line error for a failure that retries did not cure (or must not retry)."""
        host = self._host
        after = f"after {tries} attempt{'s' if tries != 1 else ''}"
        if isinstance(exc, _Transient):
            said = f"HTTP {exc.status}: {exc.reason}" if exc.reason else f"HTTP {exc.status}"
            if exc.status == 429:
                message = (
                    f"rate limited by {host} {doing} ({said}) {after}: wait a few minutes and "
                    f"run again, or raise the REST rate limit for {self.connection.user}"
                )
            else:
                message = (
                    f"{host} is unavailable ({said}) {doing}, {after}: the instance is down, "
                    "restarting or overloaded; try again later"
                )
            return self._error(message, table=table, status=exc.status)
        if isinstance(exc, requests.exceptions.SSLError):
            verify_failed = "certificate verify failed" in str(exc).lower()
            detail = " (certificate verify failed)" if verify_failed else ""
            message = (
                f"TLS connection to {host} failed{detail}: if a proxy or private CA signs its "
                "certificate, pass --ca-bundle FILE or set REQUESTS_CA_BUNDLE"
            )
        elif isinstance(exc, requests.exceptions.ConnectTimeout):
            message = (
                f"cannot connect to {host}: timed out after {self.connection.connect_timeout:g} s "
                f"({after}); check --instance, the network and any proxy (HTTPS_PROXY, NO_PROXY)"
            )
        elif isinstance(exc, requests.exceptions.ProxyError):
            message = (
                f"the proxy refused the connection to {host} ({after}): check HTTPS_PROXY "
                "and NO_PROXY"
            )
        elif isinstance(exc, requests.ConnectionError) and _is_name_resolution(exc):
            hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            message = (
                f"cannot resolve host {hostname}: check --instance (or SERVICENOW_INSTANCE) "
                "and your DNS"
            )
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            message = (
                f"no answer from {host} within {self.connection.read_timeout:g} s {doing} "
                f"(read timeout, {after}): the instance is slow; raise read_timeout or lower "
                "page_size in the config file"
            )
        elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
            message = f"the connection to {host} broke {doing} ({after}): try again"
        elif isinstance(exc, requests.ConnectionError):
            message = (
                f"cannot connect to {host} ({after}): check --instance, the network and any "
                "proxy (HTTPS_PROXY, NO_PROXY)"
            )
        else:
            message = f"request to {host} failed {doing}: {type(exc).__name__} ({after})"
        return self._error(message, table=table)
