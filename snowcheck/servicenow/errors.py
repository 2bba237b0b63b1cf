"""The kinds of failure the ServiceNow layer reports, each a type: no words to match in texts.

Every one is an ``InstanceError`` (with the table and HTTP status), so callers that only
need "the instance failed" catch that; callers that must tell kinds apart (the doctor,
the batch write-back) test the type.
"""

from __future__ import annotations

from snowcheck.errors import InstanceError


class InstanceHibernating(InstanceError):
    """A developer instance answered with its "Instance Hibernating" page instead of JSON."""


class NotJson(InstanceError):
    """The answer was not the Table API's JSON (a login page, a proxy, a truncated body)."""


class BadAnswer(InstanceError):
    """JSON, but not the shape the API documents (no 'result', an error object)."""


class AuthFailed(InstanceError):
    """HTTP 401: the credentials were refused."""


class AccessDenied(InstanceError):
    """HTTP 403: the account may not read (or write) the table."""


class NotFound(InstanceError):
    """HTTP 404: the table, or the record, is absent or hidden by an ACL."""


class Rejected(InstanceError):
    """HTTP 400: the instance rejected the request (an unknown table among others)."""


class ServerError(InstanceError):
    """Another HTTP error status, not retried."""


class RateLimited(InstanceError):
    """HTTP 429, still after every attempt."""


class Unavailable(InstanceError):
    """A gateway error (502, 503, 504), still after every attempt."""


class Unreachable(InstanceError):
    """No HTTP answer at all: DNS, connection refused or timed out, proxy, TLS, broken stream."""


class UnknownHost(Unreachable):
    """The host name (the instance's or the proxy's) does not resolve: not retried."""


class ConnectionRefused(Unreachable):
    """A loopback address (the instance's or the proxy's) refused the connection: not retried."""


class TlsFailed(Unreachable):
    """The TLS handshake failed (often an unknown CA)."""


class ReadTimedOut(Unreachable):
    """Connected, but no answer within the read timeout."""


class ReadsStopped(InstanceError):
    """A read given up because another read of the same pull failed."""


class BatchUnserviced(InstanceError):
    """The Batch API serviced none of a batch's requests, after every attempt."""
