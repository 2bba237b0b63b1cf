"""The emulator's HTTP side: a threaded server on 127.0.0.1, faults, the request log, control.

`/api/...` and `/oauth_token.do` requests go through latency and the fault queue, then to
`TableApi`. With an `ssl.SSLContext` the server speaks HTTPS (the handshake runs in the
connection's own thread); a verified client certificate's common name reaches `TableApi`.
`/__emulator/...` control endpoints (no auth; loopback clients only) steer a running
emulator from another process:

- `GET /__emulator/faults`: `{"latency": s, "faults": [fault, ...]}` (what is left).
- `POST /__emulator/faults`: queue faults: one fault object, a list of them, or
  `{"faults": [...], "latency": s}`. `DELETE /__emulator/faults` clears faults and latency.
- `GET /__emulator/log`: `[{"method", "path", "query", "status", "bytes_in", "bytes_out",
  "user", "fault", "batch", "ignored", "started", "ended"}, ...]`; `DELETE` clears it.
  Headers, and so the Authorization header, are never recorded. `started` and `ended`
  (monotonic seconds) bound each request: `sequential_rounds` counts round trips from them.
- `GET /__emulator/tables/{t}`: every stored row of `t`, raw. `POST /__emulator/tables/{t}`
  with `{"rows": [...], "replace": true|false}` (or a bare list: add) replaces the rows or
  adds them (a known sys_id updates that row); relative times are resolved.
- `GET /__emulator/batch`: the batch settings; `POST` replaces them with
  `{"enabled": bool, "refuse_status": 400|404, "max_requests": n|null}` (keys optional).
- `GET /__emulator/oauth`: token lifetimes, tokens issued per grant, grants switched off and
  how many tokens are valid (never a token value). `POST` with `{"access_lifetime": s,
  "refresh_lifetime": s, "disabled_grants": ["password", ...], "expire_access_tokens": true,
  "revoke_refresh_tokens": true}` (keys optional).
- `GET /__emulator/clock`: `{"now", "frozen"}`; `POST` with `{"now": "YYYY-MM-DD HH:MM:SS"}`
  freezes it, `{"now": null}` follows the real clock again, `{"advance": seconds}` moves it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from snowcheck.emulator.api import (
    NO_RESOURCE,
    ApiRequest,
    ApiResponse,
    TableApi,
    error_response,
    json_response,
)
from snowcheck.emulator.auth import TOKEN_PATH, common_name
from snowcheck.emulator.clock import Clock, format_time, http_date, parse_time
from snowcheck.emulator.faults import HIBERNATE_PAGE, Faults, error_body, status_headers
from snowcheck.emulator.scenario import BatchConfig, resolve_relative
from snowcheck.emulator.store import Store

LOOPBACK = "127.0.0.1"
_HANDSHAKE_SECONDS = 10.0

# What an instance adds to every API answer; harmless, and clients see the real shape.
_API_HEADERS = (
    ("Cache-Control", "no-cache,no-store,must-revalidate,max-age=-1"),
    ("Pragma", "no-store,no-cache"),
    ("Expires", "0"),
)


@dataclass(frozen=True)
class LogEntry:
    """One `/api/` request as served (or one request inside a batch)."""

    method: str
    path: str
    query: dict[str, str]
    """The decoded query parameters (the last value of a repeated one)."""
    status: int | None
    """None when the connection was reset without an answer."""
    bytes_in: int
    """Request body bytes."""
    bytes_out: int
    """Response body bytes sent (half the body for a `truncate` fault)."""
    user: str | None
    fault: str | None
    """The kind of injected fault, if any."""
    batch: bool = False
    """Served inside a `POST /api/now/v1/batch`."""
    ignored: tuple[str, ...] = ()
    """Query conditions dropped because they name unknown fields."""
    started: float = 0.0
    """When the request arrived (``time.monotonic()``, before latency and faults)."""
    ended: float = 0.0
    """When its answer was ready to send (``time.monotonic()``)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        entry = asdict(self)
        entry["ignored"] = list(self.ignored)
        return entry


def sequential_rounds(entries: Sequence[LogEntry]) -> int:
    """Round trips a client waited for: the longest chain of requests each sent after the
    previous one's answer (``started`` after ``ended``). Requests carried in a batch are
    not round trips of their own."""
    timed = sorted((e.started, e.ended) for e in entries if not e.batch)
    depth: list[int] = []
    for index, (started, _) in enumerate(timed):
        before = [depth[i] for i in range(index) if timed[i][1] <= started]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


class RequestLog:
    """The emulator's request log; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def append(self, entry: LogEntry) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._entries.clear()


@dataclass
class App:
    """What request handlers need: the API, its storage, clock, faults and log."""

    api: TableApi
    store: Store
    clock: Clock
    faults: Faults
    log: RequestLog
    stopping: threading.Event


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to 127.0.0.1 only."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, app: App, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        super().__init__((LOOPBACK, port), _Handler)

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (killed, or timed out), or failed the TLS handshake (an
        untrusted CA, no client certificate), is normal here: no traceback for it."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | ssl.SSLError):
            return
        super().handle_error(request, client_address)


def _query_dict(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ServiceNow"
    sys_version = ""

    @property
    def app(self) -> App:
        return cast(EmulatorHTTPServer, self.server).app

    def setup(self) -> None:
        context = cast(EmulatorHTTPServer, self.server).ssl_context
        if context is not None:
            raw = self.request
            raw.settimeout(_HANDSHAKE_SECONDS)
            self.request = context.wrap_socket(raw, server_side=True)
            self.request.settimeout(None)
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (about 40 ms per response).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            # socketserver closes the raw socket it accepted, not the TLS one wrapping it.
            if isinstance(self.request, ssl.SSLSocket):
                self.request.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log records what matters."""

    def version_string(self) -> str:
        """The `Server` header, as an instance sends it."""
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header comes from the emulator's clock, frozen or not."""
        return http_date(self.app.clock.now())

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # -- plumbing ----------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            body = self._read_body()
            parts = urlsplit(self.path)
            if parts.path.startswith("/__emulator/"):
                self._send(self._control(parts.path, body))
            elif parts.path.startswith("/api/") or parts.path.rstrip("/") == TOKEN_PATH:
                self._api(parts.path, parts.query, body)
            else:
                self._send(error_response(400, NO_RESOURCE, None))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as error:  # an emulator bug: answer like a failing instance, loudly
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send(error_response(500, "Emulator failure", repr(error)))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: ApiResponse, *, api: bool = False, truncate: bool = False) -> None:
        """Write a response (only half the body when truncating, then close)."""
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if api:
            for name, value in _API_HEADERS:
                self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        body = response.body[: len(response.body) // 2] if truncate else response.body
        self.wfile.write(body)
        if truncate:
            self.close_connection = True

    def _reset(self) -> None:
        """Drop the connection with a TCP reset, answering nothing."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    # -- /api/ -------------------------------------------------------------------------------

    def _api(self, path: str, query: str, body: bytes) -> None:
        self._started = time.monotonic()
        app = self.app
        method = self.command
        if app.faults.latency > 0:
            app.stopping.wait(app.faults.latency)
        fault = app.faults.take(method, self.path)
        kind = fault.kind if fault is not None else None
        if kind == "reset":
            self._record(LogEntry(method, path, _query_dict(query), None, len(body), 0, None, kind))
            self._reset()
            return
        if fault is not None and kind == "status" and fault.status is not None:
            headers = status_headers(fault, app.clock.now())
            response = json_response(fault.status, error_body(fault.status), headers)
        elif kind == "hibernate":
            html = [("Content-Type", "text/html;charset=UTF-8")]
            response = ApiResponse(200, HIBERNATE_PAGE, html)
        else:
            if fault is not None and kind == "slow":
                app.stopping.wait(fault.seconds)
            request = ApiRequest(
                method,
                path,
                query,
                body,
                self.headers.get("Authorization"),
                {name.lower(): value for name, value in self.headers.items()},
                self._client_cert(),
            )
            response = app.api.handle(request)
        truncate = kind == "truncate"
        # Logged before answering, so a client that reads the log next finds this request.
        entry = LogEntry(
            method,
            path,
            _query_dict(query),
            response.status,
            len(body),
            len(response.body) // 2 if truncate else len(response.body),
            response.user,
            kind,
            ignored=response.ignored,
        )
        self._record(entry, response)
        self._send(response, api=True, truncate=truncate)

    def _client_cert(self) -> str | None:
        """The common name of the client's verified certificate, if it sent one."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        return common_name(self.connection.getpeercert())

    def _record(self, entry: LogEntry, response: ApiResponse | None = None) -> None:
        """Log a request, then the requests it carried inside a batch."""
        log = self.app.log
        started = getattr(self, "_started", None)
        ended = time.monotonic()
        entry = replace(entry, started=ended if started is None else started, ended=ended)
        log.append(entry)
        for inner in response.inner if response is not None else ():
            query = _query_dict(inner.query)
            log.append(
                LogEntry(
                    inner.method,
                    inner.path,
                    query,
                    inner.status,
                    inner.bytes_in,
                    inner.bytes_out,
                    entry.user,
                    inner.fault,
                    batch=True,
                    started=entry.started,
                    ended=entry.ended,
                )
            )

    # -- /__emulator/ ------------------------------------------------------------------------

    def _control(self, path: str, body: bytes) -> ApiResponse:
        if self.client_address[0] not in (LOOPBACK, "::1"):
            return error_response(
                403, "Forbidden", "Control endpoints answer loopback clients only"
            )
        try:
            payload: Any = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return error_response(400, "Bad control request", f"body is not JSON: {error}")
        method = self.command
        routes: dict[tuple[str, str], Callable[[Any], ApiResponse]] = {
            ("GET", "/__emulator/faults"): self._get_faults,
            ("POST", "/__emulator/faults"): self._post_faults,
            ("DELETE", "/__emulator/faults"): self._delete_faults,
            ("GET", "/__emulator/log"): self._get_log,
            ("DELETE", "/__emulator/log"): self._delete_log,
            ("GET", "/__emulator/batch"): self._get_batch,
            ("POST", "/__emulator/batch"): self._post_batch,
            ("GET", "/__emulator/clock"): self._get_clock,
            ("POST", "/__emulator/clock"): self._post_clock,
            ("GET", "/__emulator/oauth"): self._get_oauth,
            ("POST", "/__emulator/oauth"): self._post_oauth,
        }
        handler = routes.get((method, path.rstrip("/")))
        try:
            if handler is not None:
                return handler(payload)
            if path.startswith("/__emulator/tables/"):
                table = path.removeprefix("/__emulator/tables/").strip("/")
                if method == "GET":
                    return self._get_table(table)
                if method == "POST":
                    return self._post_table(table, payload)
        except ValueError as error:
            return error_response(400, "Bad control request", str(error))
        return error_response(404, "Unknown control endpoint", f"{method} {path}")

    def _get_faults(self, payload: Any) -> ApiResponse:
        faults = self.app.faults
        pending = [fault.to_dict() for fault in faults.pending()]
        return json_response(200, {"latency": faults.latency, "faults": pending})

    def _post_faults(self, payload: Any) -> ApiResponse:
        added = self.app.faults.load(payload)
        return json_response(200, {"added": [fault.to_dict() for fault in added]})

    def _delete_faults(self, payload: Any) -> ApiResponse:
        self.app.faults.clear()
        return json_response(200, {"cleared": True})

    def _get_log(self, payload: Any) -> ApiResponse:
        return json_response(200, [entry.to_dict() for entry in self.app.log.entries()])

    def _delete_log(self, payload: Any) -> ApiResponse:
        self.app.log.clear()
        return json_response(200, {"cleared": True})

    def _get_batch(self, payload: Any) -> ApiResponse:
        return json_response(200, self.app.api.batch.to_dict())

    def _post_batch(self, payload: Any) -> ApiResponse:
        self.app.api.batch = BatchConfig.from_dict(payload)
        return self._get_batch(None)

    def _get_oauth(self, payload: Any) -> ApiResponse:
        return json_response(200, self.app.api.oauth.state())

    def _post_oauth(self, payload: Any) -> ApiResponse:
        return json_response(200, self.app.api.oauth.control(payload))

    def _clock_state(self) -> ApiResponse:
        clock = self.app.clock
        return json_response(200, {"now": format_time(clock.now()), "frozen": clock.frozen})

    def _get_clock(self, payload: Any) -> ApiResponse:
        return self._clock_state()

    def _post_clock(self, payload: Any) -> ApiResponse:
        if not isinstance(payload, dict) or not set(payload) <= {"now", "advance"}:
            raise ValueError('expected {"now": "YYYY-MM-DD HH:MM:SS" | null} or {"advance": s}')
        clock = self.app.clock
        if "now" in payload:
            if payload["now"] is None:
                clock.unfreeze()
            else:
                clock.freeze(parse_time(str(payload["now"])))
        if "advance" in payload:
            clock.advance(float(payload["advance"]))
        return self._clock_state()

    def _get_table(self, table: str) -> ApiResponse:
        if not self.app.store.is_table(table):
            return error_response(404, "Unknown table", table)
        return json_response(200, self.app.store.rows(table))

    def _post_table(self, table: str, payload: Any) -> ApiResponse:
        if isinstance(payload, list):
            rows, replace = payload, False
        elif isinstance(payload, dict) and isinstance(payload.get("rows"), list):
            rows, replace = payload["rows"], bool(payload.get("replace", False))
        else:
            raise ValueError('expected {"rows": [...], "replace": true|false} or a list of rows')
        if not all(isinstance(row, dict) for row in rows):
            raise ValueError("every row must be a JSON object")
        now = self.app.clock.now()
        resolved = [
            {name: resolve_relative(v, now) if isinstance(v, str) else v for name, v in r.items()}
            for r in rows
        ]
        written = self.app.store.put_rows(table, resolved, replace=replace)
        return json_response(200, {"written": written})
