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
    """HTTP 401, or a refused OAuth grant: the credentials were refused."""

    challenges: str | None = None
    """The 401's ``WWW-Authenticate`` header: the schemes the instance accepts (or None)."""


class GrantRefused(AuthFailed):
    """``/oauth_token.do`` refused the OAuth grant (its message lists the likely causes)."""


_REFUSED_HINTS = {
    "basic": "check the user name and password, and that the account may use basic authentication",
    "oauth-password": "the OAuth token was refused twice: check that the table's REST API "
    "access policy accepts OAuth and that the user is active",
    "oauth-client-credentials": "the OAuth token was refused twice: check that the table's "
    "REST API access policy accepts OAuth and the OAuth entity's application user",
    "api-key": "check the API key (SERVICENOW_API_KEY), its header (api_key_header), that its "
    "REST API Key record is active and not expired, and the access policy",
    "mtls": "check that the client certificate (client_cert) is mapped to an active user "
    "and that the access policy accepts certificates",
}


def refused_hint(method: str) -> str:
    """What to check when the instance answers 401, by the ``auth`` method in use."""
    return _REFUSED_HINTS.get(method, _REFUSED_HINTS["basic"])


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


_HANDSHAKE_REFUSED = ("alert", "eof occurred in violation of protocol", "unexpected eof")
"""What an SSLError says when the server ended the handshake: often for want of (or over) a
client certificate."""


def tls_failure(text: str, host: str, client_cert: str | None) -> str:
    """The one-line message for a failed TLS handshake, from the SSLError's text."""
    said = text.lower()
    if "certificate verify failed" not in said and any(m in said for m in _HANDSHAKE_REFUSED):
        if client_cert is None:
            return (
                f"TLS handshake with {host} failed: the server ended it, as the instance or a "
                "load balancer in front of it does when it demands a client certificate: give "
                "one with --client-cert FILE --client-key FILE (or client_cert and client_key "
                "in the config file)"
            )
        return (
            f"TLS handshake with {host} failed: the server ended it after snowcheck sent the "
            f"client certificate {client_cert}: check that a CA the instance trusts signed it "
            "and that it has not expired"
        )
    detail = " (certificate verify failed)" if "certificate verify failed" in said else ""
    return (
        f"TLS connection to {host} failed{detail}: if a proxy or private CA signs its "
        "certificate, pass --ca-bundle FILE or set REQUESTS_CA_BUNDLE"
    )
