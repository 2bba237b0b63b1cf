"""Table API reads and writes: paged reads by offset, PATCH of a record, a create never doubled."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from snowcheck.read_pool import ReadPool, wait_for_first_failure
from snowcheck.servicenow.exchange import Exchange, is_transient, unanswered
from snowcheck.servicenow.query import and_
from snowcheck.servicenow.retry import RetryPolicy

log = logging.getLogger("snowcheck.instance")

Progress = Callable[[str, int, int | None], None]
"""Called after each page with (table, rows so far, total rows or None)."""

Row = dict[str, Any]


class Tables:
    """Rows of any table, read page by page; single records patched or created."""

    def __init__(
        self, exchange: Exchange, retry: RetryPolicy, progress: Progress | None = None
    ) -> None:
        self.exchange = exchange
        self.retry = retry
        self.progress = progress
        self._progress_lock = threading.Lock()
        self.concurrency = 1
        """Pages of one read in flight at once (see ``limit``)."""
        self._slots = threading.BoundedSemaphore(1)

    def limit(self, concurrency: int) -> None:
        """At most ``concurrency`` page requests in flight at once, whatever the threads."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)

    def fetch(self, table: str, query: str, fields: Sequence[str]) -> list[Row]:
        """Every row of ``table`` matching ``query`` (an encoded query), with only ``fields``.

        Pages by offset in sys_id order until the offset passes ``X-Total-Count`` (a
        page can be short because of ACLs while more rows exist), or, without that
        header, until a short page. Once the first page told the total, the remaining
        pages are read at once (at most ``concurrency`` in flight). Rows seen twice (the
        table moved under us) are kept once, by sys_id.
        """
        pages = _Pages(table, self)
        ordered = and_(query, "ORDERBYsys_id")
        page_size = self.exchange.connection.page_size
        self.retry.check_stopped(table)
        rows, total = self._read_page(table, ordered, fields, 0)
        pages.add(rows, total)
        offset = page_size
        while pages.total is not None and offset < pages.total:
            offsets = range(offset, pages.total, page_size)
            for rows, page_total in self._read_pages(table, ordered, fields, offsets):
                pages.add(rows, page_total)
            offset = offsets[-1] + page_size
        if pages.total is None:  # no X-Total-Count: one page at a time, until a short one
            while len(rows) >= page_size:
                if pages.fresh == 0:
                    log.warning("%s: a full page of rows already read; stopping there", table)
                    break
                self.retry.check_stopped(table)
                rows, total = self._read_page(table, ordered, fields, offset)
                pages.add(rows, total)
                offset += page_size
        return pages.rows()

    def _read_pages(
        self, table: str, query: str, fields: Sequence[str], offsets: Sequence[int]
    ) -> list[tuple[list[Row], int | None]]:
        """The pages at ``offsets``, in that order; the first failure cancels the rest."""

        def read(offset: int) -> tuple[list[Row], int | None]:
            self.retry.check_stopped(table)
            return self._read_page(table, query, fields, offset)

        if self.concurrency == 1 or len(offsets) == 1:
            return [read(offset) for offset in offsets]
        # Daemon threads: a page abandoned on Ctrl-C or SIGTERM never holds up the exit.
        pool = ReadPool(min(self.concurrency, len(offsets)), f"snowcheck-{table}")
        futures = [pool.submit(read, offset) for offset in offsets]
        try:
            done, _ = wait_for_first_failure(futures)
            for future in futures:
                if future in done and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
        finally:
            # On failure, pages not started are dropped and those running are not waited for.
            pool.shutdown(wait=False, cancel_futures=True)

    def _read_page(
        self, table: str, query: str, fields: Sequence[str], offset: int
    ) -> tuple[list[Row], int | None]:
        page_size = self.exchange.connection.page_size

        def send(resource: Any) -> Any:
            return resource.get(query=query, fields=list(fields), limit=page_size, offset=offset)

        doing = f"reading {table}"

        def attempt() -> tuple[Any, dict[str, Any]]:
            with self._slots:
                return self.exchange.send(send, table=table, doing=doing, params={})

        response, body = self.retry.run(
            attempt,
            table=table,
            doing=doing,
        )
        result = body.get("result")
        if not isinstance(result, list) or not all(isinstance(row, dict) for row in result):
            raise self.exchange.error(
                f"unexpected answer {doing} on {self.exchange.connection.host}: "
                "'result' is not a list of records",
                table=table,
                status=response.status_code,
            )
        total_header = response.headers.get("X-Total-Count", "").strip()
        total = int(total_header) if total_header.isdigit() else None
        return result, total

    def patch(
        self, table: str, sys_id: str, body: Mapping[str, str], *, fields: Sequence[str]
    ) -> Row:
        """Set ``body``'s fields on one record (PATCH: one request, only those fields)."""
        data = json.dumps(dict(body))

        def send(resource: Any) -> Any:
            return resource.request("PATCH", path_append=f"/{sys_id}", data=data)

        doing = f"updating {table} record {sys_id}"
        _, answer = self.retry.run(
            lambda: self.exchange.send(send, table=table, doing=doing, params=_writing(fields)),
            table=table,
            doing=doing,
        )
        return self._record(answer, table=table, doing=doing)

    def create(
        self,
        table: str,
        payload: Mapping[str, str],
        *,
        fields: Sequence[str],
        find: Callable[[], Row | None],
        look_up_first: bool = False,
    ) -> Row:
        """POST one record; a retry first calls ``find``, so a lost create is never doubled.

        A failed POST may still have created the record (the answer was lost). Before
        each retry ``find`` looks for it; if found it is the result, else the POST is
        sent again. ``look_up_first`` does that before the first POST too: an earlier
        attempt (in a batch) was lost.
        """
        data = dict(payload)
        doing = f"creating an {table} record"
        tries = 0

        def attempt() -> Row:
            nonlocal tries
            tries += 1
            if tries > 1 or look_up_first:
                existing = find()
                if existing is not None:
                    log.info("%s: the failed create had been written: %s", table, existing)
                    return existing
            _, body = self.exchange.send(
                lambda resource: resource.create(data),
                table=table,
                doing=doing,
                params=_writing(fields),
            )
            return self._record(body, table=table, doing=doing)

        # A create that timed out waiting for its answer is not sent again in this run: the
        # instance may save it after any look-up we could make now. The next check reads
        # the table and converges (an update if it was saved, a create if not).
        return self.retry.run(
            attempt,
            table=table,
            doing=doing,
            retry_if=lambda exc: is_transient(exc) and not unanswered(exc),
        )

    def _record(self, body: dict[str, Any], *, table: str, doing: str) -> Row:
        result = body.get("result")
        if not isinstance(result, dict):
            raise self.exchange.error(
                f"unexpected answer {doing} on {self.exchange.connection.host}: "
                "'result' is not a record",
                table=table,
            )
        return result


class _Pages:
    """The rows of one read's pages so far: de-duplicated by sys_id, the total watched."""

    def __init__(self, table: str, tables: Tables) -> None:
        self.table = table
        self.tables = tables
        self.keyed: dict[str, Row] = {}
        self.unkeyed: list[Row] = []
        self.total: int | None = None
        self.duplicates = 0
        self.fresh = 0
        """Rows new to this read in the last page added."""

    def add(self, rows: list[Row], page_total: int | None) -> None:
        if page_total is not None and self.total is not None and page_total != self.total:
            log.warning(
                "%s changed while being read (X-Total-Count %d, then %d): "
                "rows were added or removed meanwhile",
                self.table,
                self.total,
                page_total,
            )
        self.total = page_total if page_total is not None else self.total
        self.fresh = 0
        for row in rows:
            sys_id = row.get("sys_id")
            if isinstance(sys_id, str) and sys_id:
                if sys_id in self.keyed:
                    self.duplicates += 1
                    continue
                self.keyed[sys_id] = row
            else:
                self.unkeyed.append(row)
            self.fresh += 1
        progress = self.tables.progress
        if progress is not None:
            with self.tables._progress_lock:  # reads may run in several threads; callbacks not
                progress(self.table, len(self.keyed) + len(self.unkeyed), self.total)

    def rows(self) -> list[Row]:
        if self.duplicates:
            log.warning(
                "%s: %d rows came back twice while paging (the table changed); kept once each",
                self.table,
                self.duplicates,
            )
        return [*self.keyed.values(), *self.unkeyed]


def _writing(fields: Sequence[str]) -> dict[str, Any]:
    # pysnow sends its GET parameters on every request; a write needs none of them.
    return {
        "sysparm_query": None,
        "sysparm_limit": None,
        "sysparm_offset": None,
        "sysparm_fields": ",".join(fields),
    }
