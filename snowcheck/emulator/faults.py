"""Fault injection for `/api/` requests: a constant latency, then a queue of one-shot faults.

Each request first waits `latency` seconds, then takes the first queued fault that matches
it (method, and a substring of the request target: path and query string as sent). A fault
is used `times` times, then leaves the queue. Kinds:

- `status`: answer `status` with a JSON error body; 429 adds `Retry-After: retry_after` and
  the `X-RateLimit-*` headers.
- `reset`: close the connection without answering.
- `truncate`: announce the full `Content-Length`, send half the body, close.
- `hibernate`: 200 with the HTML page of a hibernating developer instance.
- `slow`: wait `seconds` before answering normally (client read timeouts).

Faults apply to whole HTTP requests; one with `batch_item: true` applies instead to the
requests carried inside `POST /api/now/v1/batch` (only `status` makes sense there).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from http import HTTPStatus
from typing import Any

FAULT_KINDS = ("status", "reset", "truncate", "hibernate", "slow")

_FIELDS = ("kind", "times", "method", "path", "status", "retry_after", "seconds", "batch_item")

HIBERNATE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
    b"<title>Instance Hibernating page</title></head>\n"
    b"<body><h1>This developer instance is hibernating</h1>"
    b"<p>Sign in to the developer portal to wake it up, then try again.</p></body></html>\n"
)

_ERROR_TEXT = {
    429: ("Rate limit exceeded", "Too many requests for this user; retry later"),
    500: ("Internal Server Error", "The instance could not process the request"),
    502: ("Bad Gateway", "The load balancer got no valid answer from the instance node"),
    503: ("Service Unavailable", "The instance is not available; it may be restarting"),
    504: ("Gateway Timeout", "The instance node did not answer in time"),
}


@dataclass(frozen=True)
class Fault:
    """One queued fault; see the module docstring for the kinds."""

    kind: str
    times: int = 1
    """How many matching requests it hits before leaving the queue."""
    method: str | None = None
    """Only requests with this method (any, if None)."""
    path: str | None = None
    """Only requests whose target (path and query string) contains this (any, if None)."""
    status: int | None = None
    """For `status`: the HTTP status to answer (429, 500, 502, 503, 504, ...)."""
    retry_after: int = 1
    """For a 429: the `Retry-After` seconds."""
    seconds: float = 0.0
    """For `slow`: how long to wait before answering."""
    batch_item: bool = False
    """Apply to the requests inside a batch instead of whole HTTP requests."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        for name in ("method", "path"):
            if not isinstance(getattr(self, name), str | None):
                raise ValueError(f"a fault's {name!r} must be a string")
        if not isinstance(self.batch_item, bool):
            raise ValueError("a fault's 'batch_item' must be true or false")
        if self.times < 1:
            raise ValueError("a fault's 'times' must be at least 1")
        if self.kind == "status" and (self.status is None or not 400 <= self.status <= 599):
            raise ValueError("a 'status' fault needs a 'status' between 400 and 599")
        if self.kind == "slow" and self.seconds <= 0:
            raise ValueError("a 'slow' fault needs 'seconds' > 0")
        if self.retry_after < 0:
            raise ValueError("'retry_after' cannot be negative")

    @classmethod
    def from_dict(cls, spec: object) -> Fault:
        """Build a fault from its JSON form (the dataclass fields; `kind` required)."""
        if not isinstance(spec, dict):
            raise ValueError(f"a fault must be a JSON object, got {spec!r}")
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}; expected {_FIELDS}")
        if "kind" not in spec:
            raise ValueError("a fault needs a 'kind'")
        try:
            return cls(**spec)
        except TypeError as error:
            raise ValueError(f"bad fault {spec!r}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    def matches(self, method: str, target: str, *, batch_item: bool) -> bool:
        """Whether this fault applies to a request."""
        if self.batch_item != batch_item:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path in target


def error_body(status: int) -> dict[str, Any]:
    """The instance's JSON error body for an injected status."""
    message, detail = _ERROR_TEXT.get(status, (HTTPStatus(status).phrase, None))
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


def status_headers(fault: Fault, now: datetime) -> list[tuple[str, str]]:
    """Extra headers for an injected status (the rate-limit ones for a 429)."""
    if fault.status != 429:
        return []
    reset = int(now.timestamp()) + fault.retry_after
    return [
        ("Retry-After", str(fault.retry_after)),
        ("X-RateLimit-Limit", "100"),
        ("X-RateLimit-Reset", str(reset)),
        ("X-RateLimit-Rule", "0" * 32),
    ]


class Faults:
    """The latency and fault queue of one emulator; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._latency = 0.0

    @property
    def latency(self) -> float:
        """Seconds every `/api/` request waits before being served."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._latency = float(seconds)

    def add(
        self,
        kind: str,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        retry_after: int = 1,
        seconds: float = 0.0,
        batch_item: bool = False,
    ) -> Fault:
        """Queue a fault (see the module docstring); returns it."""
        fault = Fault(kind, times, method, path, status, retry_after, seconds, batch_item)
        self.add_fault(fault)
        return fault

    def add_fault(self, fault: Fault) -> None:
        """Queue an already built fault."""
        with self._lock:
            self._queue.append(fault)

    def load(self, spec: object) -> list[Fault]:
        """Queue faults from JSON: one fault, a list of faults, or
        `{"faults": [...], "latency": seconds}` (both keys optional). Returns those queued.
        """
        latency: float | None = None
        if isinstance(spec, dict) and "kind" not in spec:
            unknown = set(spec) - {"faults", "latency"}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(unknown)}; expected faults, latency")
            if "latency" in spec:
                if not isinstance(spec["latency"], int | float):
                    raise ValueError("'latency' must be a number of seconds")
                latency = float(spec["latency"])
            items = spec.get("faults", [])
        else:
            items = spec if isinstance(spec, list) else [spec]
        if not isinstance(items, list):
            raise ValueError("'faults' must be a list")
        faults = [Fault.from_dict(item) for item in items]
        if latency is not None:
            self.latency = latency
        with self._lock:
            self._queue.extend(faults)
        return faults

    def clear(self) -> None:
        """Drop every queued fault and the latency."""
        with self._lock:
            self._queue.clear()
            self._latency = 0.0

    def pending(self) -> list[Fault]:
        """The faults still queued, with the uses they have left."""
        with self._lock:
            return list(self._queue)

    def take(self, method: str, target: str, *, batch_item: bool = False) -> Fault | None:
        """Use up one application of the first queued fault matching a request."""
        with self._lock:
            for index, fault in enumerate(self._queue):
                if fault.matches(method, target, batch_item=batch_item):
                    if fault.times > 1:
                        self._queue[index] = replace(fault, times=fault.times - 1)
                    else:
                        del self._queue[index]
                    return fault
        return None
