"""The doctor's lines about logging in: the method, the OAuth token's expiry, and on a 401
the schemes the instance advertises with the ``auth`` setting that would use each."""

from __future__ import annotations

from datetime import UTC, datetime

from snowcheck.commands.doctor_reads import FAIL, OK, WARN, Line
from snowcheck.errors import InstanceError
from snowcheck.servicenow.auth import OAuth
from snowcheck.servicenow.challenges import advertised_schemes, describe
from snowcheck.servicenow.errors import AuthFailed, GrantRefused, refused_hint
from snowcheck.servicenow.instance import Instance

_FIX = {
    "basic": "check user and password (SERVICENOW_USERNAME, SERVICENOW_PASSWORD or the config "
    "file), and that the account may use basic authentication",
    "oauth-password": "check SERVICENOW_CLIENT_ID, SERVICENOW_CLIENT_SECRET, the user and "
    "password, and that the table's access policy accepts OAuth",
    "oauth-client-credentials": "check SERVICENOW_CLIENT_ID, SERVICENOW_CLIENT_SECRET, the "
    "OAuth entity's application user, and that the access policy accepts OAuth",
}


def refused(instance: Instance, exc: InstanceError, said: str) -> list[Line]:
    """The lines for a first read refused with 401 (or a refused OAuth grant)."""
    connection = instance.connection
    method = connection.login.method
    if isinstance(exc, GrantRefused):
        lines = [Line(FAIL, "credentials", said)]
    else:
        detail = f"{connection.base_url} refused {connection.user} (auth {method}, HTTP 401)"
        lines = [Line(FAIL, "credentials", detail, _FIX.get(method, refused_hint(method)))]
    challenges = exc.challenges if isinstance(exc, AuthFailed) else None
    for line in describe(advertised_schemes(challenges)):
        lines.append(Line(WARN, "the instance accepts", line))
    return lines


def _until(expires: datetime) -> str:
    seconds = (expires - datetime.now(UTC)).total_seconds()
    if seconds < 120:
        return f"{max(0, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def accepted(instance: Instance) -> list[Line]:
    """The lines after the first read succeeded: who, how, and the token's expiry."""
    connection = instance.connection
    method = connection.login.method
    lines = [Line(OK, "credentials", f"{connection.user} accepted (auth {method})")]
    auth = instance.session.auth
    if isinstance(auth, OAuth):
        expires = auth.token_expires_at
        if expires is not None:
            when = expires.strftime("%Y-%m-%d %H:%M:%S UTC")
            lines.append(
                Line(
                    OK,
                    "OAuth token",
                    f"expires {when} (in {_until(expires)}); refreshed 60 s before",
                )
            )
        lines += [Line(WARN, "token cache", warning) for warning in auth.warnings]
    if connection.login.client_cert is not None:
        lines.append(Line(OK, "client certificate", f"{connection.login.client_cert} sent"))
    return lines
