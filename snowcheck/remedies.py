"""The corrective action for each rule, in the seed's words: what to check, and where."""

from __future__ import annotations

from collections.abc import Mapping

HINTS: Mapping[str, str] = {
    "auth_failed_down": "fix mid.instance.password in config.xml, then restart the MID service",
    "auth_failed_unassociated": (
        "fix the password where it is used; a MID user belongs in config.xml"
    ),
    "authz_failed_down": "re-assign the mid_server role to grant all required roles",
    "authz_failed_unassociated": "re-assign mid_server; name the user in its MID's config.xml",
    "no_login_down": "check the MID service and the network path from the MID Server host",
    "no_login_unassociated": "name the user in its MID Server's config.xml, or remove mid_server",
    "connected_unassociated": "remove the mid_server role: it is reserved for MID Server use",
}
"""Rule id to a one-line hint; each fits 80 columns after the report's indent."""


def hint(rule: str) -> str:
    return HINTS.get(rule, "")
