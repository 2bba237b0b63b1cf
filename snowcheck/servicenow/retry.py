"""The one retry policy of every request, batches included: tenacity's jittered backoff.

A wait the instance asks for (Retry-After, X-RateLimit-Reset) is honoured up to
``max_wait``; otherwise the wait grows exponentially with up to a second of jitter.
Waits end early when the reads are stopped (another read of the same pull failed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import requests
import tenacity

from snowcheck.errors import InstanceError
from snowcheck.servicenow.errors import ReadsStopped
from snowcheck.servicenow.exchange import Exchange, Transient, is_transient

log = logging.getLogger("snowcheck.instance")

T = TypeVar("T")

DEFAULT_ATTEMPTS = 5
DEFAULT_MAX_WAIT = 60.0
"""Longest single wait between attempts, whatever Retry-After asks for."""


class RetryPolicy:
    """How often and how long to retry a transient failure; ``sleep`` is injectable for tests."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.exchange = exchange
        self.attempts = attempts
        self.max_wait = max_wait
        self._stopped = threading.Event()
        self.sleep = sleep if sleep is not None else self._stopped.wait
        """Waits for the given seconds; by default a wait that ``stop`` ends early."""
        self._backoff = tenacity.wait_exponential_jitter(multiplier=1, max=max_wait, jitter=1)

    def stop(self) -> None:
        """Make reads give up at their next page or retry; they stay stopped."""
        self._stopped.set()

    def check_stopped(self, table: str) -> None:
        if self._stopped.is_set():
            raise ReadsStopped(
                f"reading {table} abandoned: another read of this check failed", table=table
            )

    def backoff(self, attempt: int, asked: float | None = None) -> float:
        """The wait after failed attempt number ``attempt``: as asked (capped), else backoff."""
        if asked is not None:
            return min(self.max_wait, asked)
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = max(1, attempt)
        return float(self._backoff(state))

    def log_retry(self, doing: str, what: str, attempt: int, wait: float) -> None:
        log.warning(
            "%s on %s failed (%s), attempt %d of %d; retrying in %.1f s",
            doing,
            self.exchange.connection.host,
            self.exchange.scrub(what),
            attempt,
            self.attempts,
            wait,
        )

    def run(
        self,
        attempt: Callable[[], T],
        *,
        table: str,
        doing: str,
        retry_if: Callable[[BaseException], bool] = is_transient,
    ) -> T:
        """Call ``attempt`` until it succeeds, fails for good, or the attempts run out.

        A failure that retries did not cure becomes the exchange's one-line error.
        """
        tries = 0

        def counted() -> T:
            nonlocal tries
            tries += 1
            return attempt()

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(retry_if),
            sleep=lambda seconds: self._pause(seconds, table),
            before_sleep=lambda state: self._log(state, doing),
            reraise=True,
        )
        try:
            return retrying(counted)
        except (Transient, requests.RequestException) as exc:
            raise self.exchange.failure(exc, table=table, doing=doing, tries=tries) from exc

    def _pause(self, seconds: float, table: str) -> None:
        self.sleep(seconds)
        self.check_stopped(table)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, Transient) and exc.delay is not None:
            return min(self.max_wait, exc.delay)
        return float(self._backoff(state))

    def _log(self, state: tenacity.RetryCallState, doing: str) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        what = str(exc) if isinstance(exc, Transient | InstanceError) else type(exc).__name__
        self.log_retry(doing, what, state.attempt_number, wait)
