"""The emulated Table, Stats and Batch APIs: one authenticated request in, one response out.

No sockets here (see server.py): the batch API runs its inner requests through the same
routing, and tests can call `TableApi.handle` directly.

Behaviour kept from a real instance: every value is a string; unknown fields are dropped
from `sysparm_fields`, from queries (see query.py) and from the bodies of writes;
`sysparm_limit` defaults to 10000 and is applied before row-level ACLs; the `Link` header
has `first`, `prev` (even on the first page, with a negative offset), `next` while rows
remain, and `last`. Not emulated: `sysparm_display_value=true|all` (values always come
back as with `false`), `sysparm_view`, XML, and `sysparm_query_no_domain` (there are no
domains: `sys_domain` is a plain string).

Authentication (Basic, OAuth bearer tokens, API keys, client certificates) and
`/oauth_token.do` are described in auth.py.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from snowcheck.emulator.auth import (
    TOKEN_PATH,
    AuthConfig,
    Identity,
    OAuthServer,
    accepted,
    challenge_headers,
    restricted,
)
from snowcheck.emulator.clock import Clock
from snowcheck.emulator.faults import Faults, error_body, status_headers
from snowcheck.emulator.query import Condition, Query, parse
from snowcheck.emulator.scenario import BatchConfig, UserAccess
from snowcheck.emulator.store import Page, Store

JSON_TYPE = "application/json;charset=UTF-8"
DEFAULT_LIMIT = 10000

_TABLE = re.compile(r"/api/now/(?:v[12]/)?table/(?P<table>[^/]+)(?:/(?P<sys_id>[^/]+))?/?")
_STATS = re.compile(r"/api/now/(?:v1/)?stats/(?P<table>[^/]+)/?")
_BATCH = re.compile(r"/api/now/(?:v1/)?batch/?")

NO_RESOURCE = "Requested URI does not represent any resource"
_ACL_DETAIL = "Failed API level ACL Validation"


@dataclass(frozen=True)
class ApiRequest:
    """One request to the API, as received (the Authorization header kept apart)."""

    method: str
    path: str
    query: str = ""
    """The raw query string, without `?`."""
    body: bytes = b""
    authorization: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """The other headers, names in lower case (API keys, Content-Type)."""
    client_cert: str | None = None
    """The common name of the verified TLS client certificate, if any."""


@dataclass(frozen=True)
class InnerCall:
    """A request serviced inside a batch, for the request log."""

    method: str
    path: str
    query: str
    status: int
    bytes_in: int
    bytes_out: int
    fault: str | None


@dataclass
class ApiResponse:
    """The status, headers (Content-Type included) and body to send back."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    user: str | None = None
    """The authenticated user name (for the log), if any."""
    ignored: tuple[str, ...] = ()
    """Query conditions dropped as unknown (for the log)."""
    inner: list[InnerCall] = field(default_factory=list)
    """The requests serviced inside a batch (for the log)."""


def json_response(
    status: int, payload: object, headers: Sequence[tuple[str, str]] = ()
) -> ApiResponse:
    """A JSON response, encoded compactly in UTF-8 like an instance's."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return ApiResponse(status, body, [("Content-Type", JSON_TYPE), *headers])


def error_response(
    status: int, message: str, detail: str | None, headers: Sequence[tuple[str, str]] = ()
) -> ApiResponse:
    """The instance's error shape: `{"error": {"message", "detail"}, "status": "failure"}`."""
    payload = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return json_response(status, payload, headers)


def unauthenticated(methods: frozenset[str] | None = None) -> ApiResponse:
    """401 for missing or wrong credentials (an instance does not tell them apart).

    `WWW-Authenticate` advertises each of `methods`, or Basic alone when not restricted.
    """
    return error_response(
        401,
        "User Not Authenticated",
        "Required to provide Auth information",
        challenge_headers(methods),
    )


def _table_of(path: str) -> str | None:
    """The table a Table or Stats API path names, if any."""
    match = _TABLE.fullmatch(path) or _STATS.fullmatch(path)
    return unquote(match["table"]) if match else None


def _flag(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "").strip().lower() == "true"


def _number(params: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    try:
        value = int(params.get(name, ""))
    except ValueError:
        return default
    return value if value >= minimum else default


def _field_list(params: Mapping[str, str]) -> list[str] | None:
    raw = params.get("sysparm_fields", "")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    return names or None


class TableApi:
    """Routes authenticated requests to the Table, Stats and Batch APIs of one store."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        users: Mapping[str, UserAccess],
        faults: Faults,
        *,
        base_url: str,
        batch: BatchConfig | None = None,
        auth: AuthConfig | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.users = dict(users)
        self.faults = faults
        self.base_url = base_url
        """The URL reference links and Link headers start with (`http://127.0.0.1:PORT`)."""
        self.batch = batch or BatchConfig()
        self.auth = auth or AuthConfig()
        self.oauth = OAuthServer(self.auth, self._password_ok)

    # -- entry point -------------------------------------------------------------------------

    def _password_ok(self, name: str, password: str) -> bool:
        access = self.users.get(name)
        return access is not None and hmac.compare_digest(
            access.password.encode(), password.encode()
        )

    def identify(self, request: ApiRequest) -> Identity | None:
        """Who the request's credentials prove, and by which method; None if nobody.

        The Authorization header wins, then the API key header, then the client certificate.
        """
        if request.authorization:
            scheme, _, value = request.authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                user = self.oauth.bearer_user(value.strip())
                return Identity(user, "oauth") if user is not None and user in self.users else None
            user = self.authenticate(request.authorization)
            return Identity(user, "basic") if user is not None else None
        api_key = request.headers.get(self.auth.api_key_header.lower())
        if api_key is not None:
            user = self.auth.api_keys.get(api_key.strip())
            return Identity(user, "api-key") if user is not None and user in self.users else None
        if request.client_cert is not None:
            for name, access in self.users.items():
                if access.certificate is not None and access.certificate == request.client_cert:
                    return Identity(name, "mtls")
        return None

    def authenticate(self, authorization: str | None) -> str | None:
        """The user name Basic credentials prove, or None."""
        if not authorization:
            return None
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, separator, password = decoded.partition(":")
        if not separator or not self._password_ok(name, password):
            return None
        return name

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Authenticate and serve one `/api/` request (or one `/oauth_token.do` request)."""
        if request.path.rstrip("/") == TOKEN_PATH:
            return self._token(request)
        table = _table_of(request.path)
        table_methods = self.auth.tables.get(table) if table is not None else None
        identity = self.identify(request)
        if identity is None:
            return unauthenticated(table_methods)
        user_methods = self.users[identity.user].methods
        if restricted(user_methods, identity.method):
            return unauthenticated(accepted(user_methods, table_methods))
        response = self._route(identity.user, request, in_batch=False, via=identity.method)
        response.user = identity.user
        return response

    def _token(self, request: ApiRequest) -> ApiResponse:
        if request.method.upper() != "POST":
            return error_response(405, "Method not Supported", "The token endpoint takes POST")
        answer = self.oauth.token_request(request.headers.get("content-type"), request.body)
        response = json_response(answer.status, answer.payload)
        response.user = answer.user
        return response

    def _route(
        self, user: str, request: ApiRequest, *, in_batch: bool, via: str = "basic"
    ) -> ApiResponse:
        access = self.users[user]
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        method = request.method.upper()
        table_methods = self.auth.tables.get(_table_of(request.path) or "")
        if restricted(table_methods, via):
            return unauthenticated(table_methods)
        if match := _TABLE.fullmatch(request.path):
            table = unquote(match["table"])
            sys_id = unquote(match["sys_id"]) if match["sys_id"] is not None else None
            if not self.store.is_table(table):
                return error_response(400, f"Invalid table {table}", None)
            if sys_id is None:
                if method == "GET":
                    return self._list(access, table, request.path, request.query, params)
                if method == "POST":
                    return self._create(access, table, params, request.body)
            elif method == "GET":
                return self._read(access, table, sys_id, params)
            elif method in ("PATCH", "PUT"):
                return self._update(access, table, sys_id, params, request.body)
            elif method == "DELETE":
                return self._delete(access, table, sys_id)
            return error_response(405, "Method not Supported", f"{method} is not supported here")
        if match := _STATS.fullmatch(request.path):
            if method != "GET":
                return error_response(405, "Method not Supported", f"{method} is not supported")
            return self._stats(access, unquote(match["table"]), params)
        if _BATCH.fullmatch(request.path) and not in_batch:
            return self._batch(user, request, via)
        return error_response(400, NO_RESOURCE, None)

    # -- Table API ---------------------------------------------------------------------------

    def _reference_targets(self, table: str, names: Sequence[str]) -> list[tuple[int, str]]:
        """(position, target table) of each requested field that is a reference."""
        targets: list[tuple[int, str]] = []
        for position, name in enumerate(names):
            owner = table
            *hops, last = name.split(".")
            for hop in hops:
                owner = self.store.reference_target(owner, hop) or owner
            target = self.store.reference_target(owner, last)
            if target is not None:
                targets.append((position, target))
        return targets

    def _render(
        self, table: str, names: Sequence[str], rows: Sequence[Sequence[str]], exclude: bool
    ) -> list[dict[str, Any]]:
        """Rows as the Table API returns them; references as `{link, value}` unless excluded."""
        targets = [] if exclude else self._reference_targets(table, names)
        if not targets:
            return [dict(zip(names, row, strict=True)) for row in rows]
        prefix = f"{self.base_url}/api/now/table/"
        rendered: list[dict[str, Any]] = []
        for row in rows:
            record: dict[str, Any] = dict(zip(names, row, strict=True))
            for position, target in targets:
                value = row[position]
                if value:
                    record[names[position]] = {"link": f"{prefix}{target}/{value}", "value": value}
            rendered.append(record)
        return rendered

    def _record(
        self, table: str, row: Mapping[str, str], params: Mapping[str, str]
    ) -> dict[str, Any]:
        """One stored row rendered with `sysparm_fields` and `sysparm_exclude_reference_link`."""
        names = _field_list(params)
        kept: tuple[str, ...] = tuple(row)
        values: Sequence[str] = tuple(row.values())
        if names is not None:
            this_row = Query(groups=(((Condition("sys_id", "=", row["sys_id"]),),),))
            page = self.store.select(table, this_row, names, limit=1, offset=0, count=False)
            kept, values = page.fields, page.rows[0]
        exclude = _flag(params, "sysparm_exclude_reference_link")
        return self._render(table, kept, [values], exclude)[0]

    def _link_header(
        self, path: str, query: str, limit: int, offset: int, total: int | None, full: bool
    ) -> str:
        kept = [
            (name, value)
            for name, value in parse_qsl(query, keep_blank_values=True)
            if name not in ("sysparm_limit", "sysparm_offset")
        ]

        def link(at: int, rel: str) -> str:
            pairs = [*kept, ("sysparm_limit", str(limit)), ("sysparm_offset", str(at))]
            return f'<{self.base_url}{path}?{urlencode(pairs, quote_via=quote)}>;rel="{rel}"'

        # Like an instance: `prev` even on the first page (a negative offset), `next` while
        # rows remain, `last` at the start of the last page.
        links = [link(0, "first"), link(offset - limit, "prev")]
        if (total is not None and offset + limit < total) or (total is None and full):
            links.append(link(offset + limit, "next"))
        if total is not None:
            links.append(link(max(0, (total - 1) // limit * limit), "last"))
        return ",".join(links)

    def _list(
        self,
        access: UserAccess,
        table: str,
        path: str,
        query: str,
        params: Mapping[str, str],
    ) -> ApiResponse:
        if table in access.deny_read:
            return error_response(403, "User Not Authorized", _ACL_DETAIL)
        limit = _number(params, "sysparm_limit", DEFAULT_LIMIT, 1)
        offset = _number(params, "sysparm_offset", 0, 0)
        no_count = _flag(params, "sysparm_no_count")
        paginate = not _flag(params, "sysparm_suppress_pagination_header")
        names = _field_list(params)
        if table in access.acl_empty:
            kept = names if names is not None else self.store.fields(table)
            page = Page(tuple(kept), [], 0, 0, ())
        else:
            hide = access.acl_hide.get(table)
            page = self.store.select(
                table,
                parse(params.get("sysparm_query", "")),
                names,
                limit=limit,
                offset=offset,
                count=not no_count or paginate,
                hide=parse(hide) if hide else None,
            )
        result = self._render(
            table, page.fields, page.rows, _flag(params, "sysparm_exclude_reference_link")
        )
        headers: list[tuple[str, str]] = []
        if not no_count and page.total is not None:
            headers.append(("X-Total-Count", str(page.total)))
        if paginate:
            full = len(page.rows) + page.hidden >= limit
            total = None if no_count else page.total
            headers.append(("Link", self._link_header(path, query, limit, offset, total, full)))
        response = json_response(200, {"result": result}, headers)
        response.ignored = page.ignored
        return response

    def _read(
        self, access: UserAccess, table: str, sys_id: str, params: Mapping[str, str]
    ) -> ApiResponse:
        if table in access.deny_read:
            return error_response(403, "User Not Authorized", _ACL_DETAIL)
        row = None if table in access.acl_empty else self.store.get(table, sys_id)
        if row is None:
            return _no_record()
        return json_response(200, {"result": self._record(table, row, params)})

    def _payload(self, body: bytes) -> dict[str, Any] | ApiResponse:
        try:
            payload = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return error_response(
                400, "Exception while reading request", "The payload is not a valid JSON object"
            )
        return payload

    def _create(
        self, access: UserAccess, table: str, params: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        if table in access.deny_write:
            return error_response(403, "User Not Authorized", _ACL_DETAIL)
        payload = self._payload(body)
        if isinstance(payload, ApiResponse):
            return payload
        try:
            row = self.store.insert(table, payload)
        except ValueError as error:
            return error_response(400, "Operation Failed", str(error))
        location = f"{self.base_url}/api/now/table/{table}/{row['sys_id']}"
        return json_response(
            201, {"result": self._record(table, row, params)}, [("Location", location)]
        )

    def _update(
        self,
        access: UserAccess,
        table: str,
        sys_id: str,
        params: Mapping[str, str],
        body: bytes,
    ) -> ApiResponse:
        if table in access.deny_write:
            return error_response(403, "User Not Authorized", _ACL_DETAIL)
        if self.store.get(table, sys_id) is None:
            return _no_record()
        payload = self._payload(body)
        if isinstance(payload, ApiResponse):
            return payload
        try:
            row = self.store.update(table, sys_id, payload)
        except ValueError as error:
            return error_response(400, "Operation Failed", str(error))
        if row is None:
            return _no_record()
        return json_response(200, {"result": self._record(table, row, params)})

    def _delete(self, access: UserAccess, table: str, sys_id: str) -> ApiResponse:
        if table in access.deny_write:
            return error_response(403, "User Not Authorized", _ACL_DETAIL)
        if not self.store.delete(table, sys_id):
            return _no_record()
        return ApiResponse(204)

    # -- Stats API ---------------------------------------------------------------------------

    def _stats(self, access: UserAccess, table: str, params: Mapping[str, str]) -> ApiResponse:
        if not self.store.is_table(table):
            return error_response(400, f"Invalid table {table}", None)
        if table in access.deny_read:
            return error_response(403, "User Not Authorized", _ACL_DETAIL)
        stats: dict[str, Any] = {}
        if _flag(params, "sysparm_count"):
            count = 0
            if table not in access.acl_empty:
                count = self.store.count(table, parse(params.get("sysparm_query", "")))
            stats["count"] = str(count)
        return json_response(200, {"result": {"stats": stats}})

    # -- Batch API ---------------------------------------------------------------------------

    def _batch(self, user: str, request: ApiRequest, via: str) -> ApiResponse:
        config = self.batch
        if not config.enabled:
            return error_response(config.refuse_status, NO_RESOURCE, None)
        if request.method.upper() != "POST":
            return error_response(405, "Method not Supported", "The batch API takes POST")
        try:
            payload = json.loads(request.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        items = payload.get("rest_requests") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or not isinstance(items, list):
            return error_response(
                400, "Exception while reading request", "Expected a JSON object with rest_requests"
            )
        serviced: list[dict[str, Any]] = []
        unserviced: list[str] = []
        inner_calls: list[InnerCall] = []
        for position, item in enumerate(items):
            item_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            if config.max_requests is not None and position >= config.max_requests:
                unserviced.append(item_id)
                continue
            started = time.perf_counter()
            method, target, body, response, fault = self._batch_item(user, item, via)
            elapsed = round((time.perf_counter() - started) * 1000)
            serviced.append(
                {
                    "id": item_id,
                    "status_code": response.status,
                    "status_text": HTTPStatus(response.status).phrase,
                    "headers": [{"name": n, "value": v} for n, v in response.headers],
                    "body": base64.b64encode(response.body).decode("ascii"),
                    "execution_time": elapsed,
                }
            )
            path, _, query = target.partition("?")
            inner_calls.append(
                InnerCall(
                    method, path, query, response.status, len(body), len(response.body), fault
                )
            )
        result = json_response(
            200,
            {
                "batch_request_id": payload.get("batch_request_id"),
                "serviced_requests": serviced,
                "unserviced_requests": unserviced,
            },
        )
        result.inner = inner_calls
        return result

    def _batch_item(
        self, user: str, item: object, via: str
    ) -> tuple[str, str, bytes, ApiResponse, str | None]:
        """Serve one batch item: (method, target, body, response, injected fault kind)."""
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            response = error_response(400, "Bad batch request", "Each item needs a url")
            return "", "", b"", response, None
        method = str(item.get("method", "GET")).upper()
        target = item["url"]
        try:
            body = base64.b64decode(item.get("body") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            response = error_response(400, "Bad batch request", "The body is not base64")
            return method, target, b"", response, None
        fault = self.faults.take(method, target, batch_item=True)
        if fault is not None and fault.kind == "status" and fault.status is not None:
            headers = status_headers(fault, self.clock.now())
            response = json_response(fault.status, error_body(fault.status), headers)
            return method, target, body, response, fault.kind
        parts = urlsplit(target)
        inner = ApiRequest(method, parts.path, parts.query, body)
        return method, target, body, self._route(user, inner, in_batch=True, via=via), None


def _no_record() -> ApiResponse:
    return error_response(
        404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
    )
