"""One exchange with the instance: send, decode, classify failures into typed errors, the clock.

Every answer is counted (requests, bytes), checked for JSON (a hibernating developer
instance answers 200 with HTML), and turned into a one-line error naming the cause and
the fix when it is not what the API documents. The instance's clock comes from the
``Date`` header of the answers. Secrets never appear in an error or a log line.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pysnow
import requests

from snowcheck.errors import InstanceError
from snowcheck.redact import redact
from snowcheck.servicenow import errors
from snowcheck.servicenow.auth import AuthError, TokenEndpointError, WriteUnauthorized
from snowcheck.servicenow.session import Connection, Session, secrets_of, table_client
from snowcheck.servicenow.unreachable import (
    is_name_resolution,
    not_connected,
    proxy_in_use,
    waiting_cannot_help,
)

log = logging.getLogger("snowcheck.instance")

RETRIED_STATUSES = frozenset({429, 502, 503, 504})

_SPACES = re.compile(r"\s+")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Transient(Exception):
    """An answer worth retrying (429 or a gateway error), with the wait the instance asked for."""

    def __init__(self, status: int, delay: float | None, reason: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.delay = delay
        self.reason = reason


def one_line(text: str, limit: int = 200) -> str:
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def servicenow_reason(content: bytes) -> str:
    """The error body's ``error.message``/``error.detail`` as one short line, or ''."""
    try:
        body = json.loads(content)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [
        str(error[key]) for key in ("message", "detail") if isinstance(error.get(key), str | int)
    ]
    return one_line(": ".join(part for part in parts if part))


def retry_delay(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the instance asked us to wait: Retry-After (seconds or date), X-RateLimit-Reset."""
    retry_after = headers.get("Retry-After", "").strip()
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
    reset = headers.get("X-RateLimit-Reset", "").strip()
    if reset:
        try:
            return max(0.0, float(reset) - now.timestamp())
        except ValueError:
            return None
    return None


def unanswered(exc: BaseException) -> bool:
    """The instance got the request but did not answer in time: it may still be writing it."""
    return isinstance(exc, requests.exceptions.ReadTimeout)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, Transient):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.ConnectionError):
        return not waiting_cannot_help(exc)
    return isinstance(exc, requests.Timeout | requests.exceptions.ChunkedEncodingError)


class Clock:
    """The instance's clock: the Date header of the first successful answer since ``restart``."""

    def __init__(self, host: str, local: Callable[[], datetime]) -> None:
        self.host = host
        self.local = local
        self.now: datetime | None = None
        self.source = "instance"
        """"instance" (Date header) or "local" (no usable Date header: the local clock)."""
        self._lock = threading.Lock()

    def restart(self) -> None:
        """Forget the time read so far: the next answer sets it (one check, one "now")."""
        with self._lock:
            self.now = None

    def note(self, headers: Mapping[str, str]) -> None:
        with self._lock:
            if self.now is not None:
                return
            header = headers.get("Date")
            try:
                when = parsedate_to_datetime(header) if header else None
            except (TypeError, ValueError):
                when = None
            if when is None:
                self.now = self.local().astimezone(UTC)
                self.source = "local"
                log.warning("%s sent no usable Date header: using the local clock", self.host)
                return
            self.now = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
            self.source = "instance"


class Exchange:
    """Sends one request at a time (several threads may share it) and decodes its answer.

    Counters (``requests_made``, ``bytes_received``, ``bytes_sent``) add up every
    attempt, retries included.
    """

    def __init__(
        self, connection: Connection, session: Session, local_clock: Callable[[], datetime]
    ) -> None:
        self.connection = connection
        self.session = session
        self.local_clock = local_clock
        self.clock = Clock(connection.host, local_clock)
        self.secrets = secrets_of(connection)
        self.requests_made = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._client = table_client(connection, session)

    def scrub(self, text: str) -> str:
        # OAuth tokens change during a run: ask the session's auth for those it holds now.
        return redact(text, secrets_of(self.connection, self.session.auth), mask="***")

    def login_failed(self, exc: AuthError, *, table: str) -> InstanceError:
        """The one-line error for a failed login (a refused token grant, a write's 401)."""
        status = exc.status if isinstance(exc, TokenEndpointError) else 401
        if status is None:
            return self.error(str(exc), table=table, kind=errors.BadAnswer)
        if status != 401:
            return self.error(str(exc), table=table, status=status, kind=errors.ServerError)
        kind = errors.AuthFailed if isinstance(exc, WriteUnauthorized) else errors.GrantRefused
        return self.error(str(exc), table=table, status=status, kind=kind)

    def error(
        self,
        message: str,
        *,
        table: str | None,
        status: int | None = None,
        kind: type[InstanceError] = InstanceError,
    ) -> InstanceError:
        return kind(self.scrub(message), table=table, status=status)

    def send(
        self,
        send: Callable[[Any], Any],
        *,
        table: str,
        doing: str,
        params: Mapping[str, Any],
    ) -> tuple[requests.Response, dict[str, Any]]:
        """Send one Table API request through a fresh pysnow resource; check and decode it."""
        resource = self._client.resource(
            api_path=f"/table/{table}", timeout=self.connection.timeouts
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
        self._count_request()
        try:
            answer = send(resource)
        except pysnow.exceptions.InvalidUsage as exc:
            raise self.error(f"invalid request {doing}: {exc}", table=table) from None
        except AuthError as exc:
            raise self.login_failed(exc, table=table) from None
        # pysnow's Response raises before reading an error body; we need the body and
        # the headers, so take the requests.Response it wraps (pysnow 0.7.17 is frozen).
        response: requests.Response = answer._response
        return response, self.decode(response, table=table, doing=doing)

    def post(self, path: str, body: str, *, table: str, doing: str) -> dict[str, Any]:
        """One JSON POST to ``path`` (not a table: pysnow cannot), checked and decoded."""
        self._count_request()
        try:
            response = self.session.post(
                f"{self.connection.base_url}{path}",
                data=body.encode(),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=self.connection.timeouts,
            )
        except AuthError as exc:
            raise self.login_failed(exc, table=table) from None
        return self.decode(response, table=table, doing=doing)

    def _count_request(self) -> None:
        with self._lock:
            self.requests_made += 1

    def decode(self, response: requests.Response, *, table: str, doing: str) -> dict[str, Any]:
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
            delay = retry_delay(response.headers, self.local_clock())
            raise Transient(status, delay, servicenow_reason(content))
        if status >= 400:
            error = self.http_error(status, servicenow_reason(content), table=table, doing=doing)
            if isinstance(error, errors.AuthFailed):
                error.challenges = response.headers.get("WWW-Authenticate")
            raise error
        if 200 <= status < 300:
            self.clock.note(response.headers)
        try:
            body = json.loads(content)
        except ValueError:
            raise self.not_json(response, table=table, doing=doing) from None
        if not isinstance(body, dict):
            raise self.error(
                f"unexpected answer {doing} on {self.connection.host}: JSON but not an object",
                table=table,
                status=status,
                kind=errors.BadAnswer,
            )
        if "result" not in body and isinstance(body.get("error"), dict):
            reason = servicenow_reason(content)
            raise self.error(
                f"the instance reported an error {doing} (HTTP {status}: {reason})",
                table=table,
                status=status,
                kind=errors.BadAnswer,
            )
        return body

    def not_json(self, response: requests.Response, *, table: str, doing: str) -> InstanceError:
        host = self.connection.host
        status = response.status_code
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        text = (response.content or b"")[:20000].decode("utf-8", "replace").lower()
        if "hibernat" in text:
            return self.error(
                f"the instance {host} is hibernating (HTTP {status} with its "
                "'Instance Hibernating' page instead of JSON): wake it from the developer "
                "portal (developer.servicenow.com) and run again",
                table=table,
                status=status,
                kind=errors.InstanceHibernating,
            )
        if kind.endswith("json"):
            return self.error(
                f"the answer {doing} on {host} was malformed or truncated JSON "
                f"({len(response.content or b'')} bytes): run again; if it persists, lower "
                "page_size in the config file",
                table=table,
                status=status,
                kind=errors.NotJson,
            )
        shown = kind or "no content type"
        return self.error(
            f"{host} answered {doing} with {shown} instead of JSON (HTTP {status}): "
            "check that --instance is the instance's address and that no proxy or login "
            "page intercepts REST calls",
            table=table,
            status=status,
            kind=errors.NotJson,
        )

    def http_error(self, status: int, reason: str, *, table: str, doing: str) -> InstanceError:
        """The one-line error for an HTTP error status that is not retried."""
        host = self.connection.host
        said = f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
        user = self.connection.user
        reading = doing.startswith("reading")
        kind: type[InstanceError]
        if status == 401:
            kind = errors.AuthFailed
            message = (
                f"authentication as {user} failed at {host} ({said}): "
                f"{errors.refused_hint(self.connection.login.method)}"
            )
        elif status == 403:
            kind = errors.AccessDenied
            access = "read" if reading else "write"
            # Not mid_server: a checking account holding it would itself be reported as a
            # MID Server user that is not associated with a MID Server.
            message = (
                f"{access} access to {table} denied ({said}): grant {user} a role that can "
                f"{access} {table}, such as admin, or a custom role granting it (not mid_server)"
            )
        elif status == 404 and reading:
            kind = errors.NotFound
            message = (
                f"{table} could not be read ({said}): the table does not exist on this "
                f"instance or an ACL hides it from {user}; check the account's roles"
            )
        elif status == 404:
            kind = errors.NotFound
            message = (
                f"{doing} failed ({said}): the record was deleted or is hidden from {user}; "
                "run the check again"
            )
        elif status == 400 and "invalid table" in reason.lower():
            kind = errors.Rejected
            message = (
                f"table {table} does not exist on {host} ({said}): check the "
                "instance's release and plugins"
            )
        elif status == 400:
            kind = errors.Rejected
            message = (
                f"the instance rejected the request {doing} ({said}): this is unexpected; "
                "please report it with the instance's release"
            )
        else:
            kind = errors.ServerError
            message = f"{host} failed {doing} ({said}): try again later"
        return self.error(message, table=table, status=status, kind=kind)

    def failure(self, exc: BaseException, *, table: str, doing: str, tries: int) -> InstanceError:
        """The one-line error for a failure that retries did not cure (or must not retry)."""
        return failure(self, exc, table=table, doing=doing, tries=tries)


def failure(
    exchange: Exchange, exc: BaseException, *, table: str, doing: str, tries: int
) -> InstanceError:
    """The one-line error for a failure that retries did not cure (or must not retry)."""
    connection = exchange.connection
    host = connection.host
    after = f"after {tries} attempt{'s' if tries != 1 else ''}"
    if isinstance(exc, Transient):
        said = f"HTTP {exc.status}: {exc.reason}" if exc.reason else f"HTTP {exc.status}"
        if exc.status == 429:
            message = (
                f"rate limited by {host} {doing} ({said}) {after}: wait a few minutes and "
                f"run again, or raise the REST rate limit for {connection.user}"
            )
            return exchange.error(message, table=table, status=429, kind=errors.RateLimited)
        message = (
            f"{host} is unavailable ({said}) {doing}, {after}: the instance is down, "
            "restarting or overloaded; try again later"
        )
        return exchange.error(message, table=table, status=exc.status, kind=errors.Unavailable)
    kind: type[InstanceError] = errors.Unreachable
    at_once = not_connected(exc, base_url=connection.base_url, host=host)
    if at_once is not None:
        kind = errors.UnknownHost if is_name_resolution(exc) else errors.ConnectionRefused
        message = at_once
    elif isinstance(exc, requests.exceptions.SSLError):
        kind = errors.TlsFailed
        message = errors.tls_failure(str(exc), host, connection.login.client_cert)
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        message = (
            f"cannot connect to {host}: timed out after {connection.connect_timeout:g} s "
            f"({after}); check --instance, the network and any proxy (HTTPS_PROXY, NO_PROXY)"
        )
    elif isinstance(exc, requests.exceptions.ProxyError):
        proxy = proxy_in_use(connection.base_url)
        address, variable = proxy if proxy else ("", "HTTPS_PROXY")
        named = f"the proxy {address} (from {variable})" if proxy else "the proxy"
        message = (
            f"{named} refused the connection to {host} ({after}): check {variable} and NO_PROXY"
        )
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        kind = errors.ReadTimedOut
        message = (
            f"no answer from {host} within {connection.read_timeout:g} s {doing} "
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
        if connection.use_ssl and connection.login.client_cert is None and "reset" in str(exc):
            # Under TLS 1.3 a server refuses a missing client certificate after the handshake.
            message += "; a reset right after TLS may also mean the instance demands a client "
            message += "certificate (--client-cert FILE --client-key FILE)"
    else:
        kind = InstanceError
        message = f"request to {host} failed {doing}: {type(exc).__name__} ({after})"
    return exchange.error(message, table=table, kind=kind)
