"""One ServiceNow instance: the session, the exchange, the retry policy and the tables, together.

pysnow builds URLs and parameters and sends through our ``requests.Session``; the
modules beside this one add what it lacks (paging, retries, JSON checks, typed errors,
the Batch API). The password and the Authorization header never appear in an error, a
log line or a repr.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from snowcheck.servicenow.batch import BatchAnswer, post_batch
from snowcheck.servicenow.exchange import Exchange, utc_now
from snowcheck.servicenow.retry import DEFAULT_ATTEMPTS, DEFAULT_MAX_WAIT, RetryPolicy
from snowcheck.servicenow.session import Connection, open_session
from snowcheck.servicenow.tables import Progress, Row, Tables


class Instance:
    """One ServiceNow instance, read and written over the Table API and the Batch API.

    ``sleep`` and ``clock`` are injectable so tests never wait and can fix the time;
    ``progress`` is told about each page read. Reads may run in several threads at once
    (``pull_snapshot`` does): counters and the clock are locked.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
    ) -> None:
        self.connection = connection
        self.session = open_session(connection)
        self.exchange = Exchange(connection, self.session, clock)
        self.retry = RetryPolicy(self.exchange, attempts=attempts, max_wait=max_wait, sleep=sleep)
        self.tables = Tables(self.exchange, self.retry, progress)

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
        self.session.close()

    # -- what callers read -------------------------------------------------------------------

    @property
    def now(self) -> datetime | None:
        """The instance's clock: the Date header of the first answer since ``restart_clock``."""
        return self.exchange.clock.now

    @property
    def clock_source(self) -> str:
        """ "instance" (Date header) or "local" (no usable Date header: the local clock)."""
        return self.exchange.clock.source

    def restart_clock(self) -> None:
        """Take "now" afresh from the next answer (each check through one Instance has its own)."""
        self.exchange.clock.restart()

    @property
    def requests_made(self) -> int:
        return self.exchange.requests_made

    @property
    def bytes_received(self) -> int:
        return self.exchange.bytes_received

    @property
    def bytes_sent(self) -> int:
        return self.exchange.bytes_sent

    @property
    def progress(self) -> Progress | None:
        return self.tables.progress

    @progress.setter
    def progress(self, value: Progress | None) -> None:
        self.tables.progress = value

    @property
    def attempts(self) -> int:
        return self.retry.attempts

    @property
    def concurrency(self) -> int:
        """Read requests in flight at once (see ``limit_requests``)."""
        return self.tables.concurrency

    def limit_requests(self, concurrency: int) -> None:
        """Send at most ``concurrency`` read requests at once, however many threads read.

        The remaining pages of a paged read then go out at once, up to that bound.
        """
        self.tables.limit(concurrency)

    def stop_reads(self) -> None:
        """Make reads running in other threads give up at their next page or retry.

        For a pull whose other read failed: the error is already known, and nothing will
        be written, so there is no point in waiting out their retries. Reads stay stopped:
        read again through a new Instance.
        """
        self.retry.stop()

    # -- requests ----------------------------------------------------------------------------

    def fetch(self, table: str, query: str, fields: Sequence[str]) -> list[Row]:
        """Every row of ``table`` matching ``query``, with only ``fields`` (see Tables.fetch)."""
        return self.tables.fetch(table, query, fields)

    def patch(
        self, table: str, sys_id: str, body: Mapping[str, str], *, fields: Sequence[str] = ()
    ) -> Row:
        """Set ``body``'s fields on one record (PATCH: one request, only those fields)."""
        return self.tables.patch(table, sys_id, body, fields=fields or ("sys_id",))

    def create(
        self,
        table: str,
        payload: Mapping[str, str],
        *,
        fields: Sequence[str],
        find: Callable[[], Row | None],
        look_up_first: bool = False,
    ) -> Row:
        """POST one record, never twice (see Tables.create)."""
        return self.tables.create(
            table, payload, fields=fields, find=find, look_up_first=look_up_first
        )

    def post_batch(
        self, batch: Sequence[Mapping[str, Any]], *, table: str, doing: str
    ) -> BatchAnswer | None:
        """One Batch API request, not retried (the caller retries per item; see post_batch)."""
        return post_batch(self.exchange, batch, table=table, doing=doing)
