"""The emulator tests' base scenario: a small instance with users, roles, MIDs and events."""

from __future__ import annotations

import copy
from typing import Any

PASSWORD = "s3cr3t-Pa55word"
NOW = "2026-11-25 10:00:00"
NOW_HTTP = "Wed, 25 Nov 2026 10:00:00 GMT"

BASE: dict[str, Any] = {
    "now": NOW,
    "tables": {
        "sys_user_role": [
            {"sys_id": "r_mid", "name": "mid_server"},
            {"sys_id": "r_soap", "name": "soap_script"},
        ],
        "sys_user": [
            {"sys_id": "u1", "user_name": "mid1", "active": "true", "locked_out": "false"},
            {"sys_id": "u2", "user_name": "mid2", "active": "false", "locked_out": "false"},
        ],
        "sys_user_has_role": [
            {"sys_id": "h1", "user": "u1", "role": "r_mid"},
            {"sys_id": "h2", "user": {"link": "https://x/u2", "value": "u2"}, "role": "r_mid"},
            {"sys_id": "h3", "user": "u1", "role": "r_soap"},
            {"sys_id": "h4", "user": "", "role": "r_soap"},
        ],
        "ecc_agent": [
            {"sys_id": "a1", "name": "MID A", "status": "Down"},
            {"sys_id": "a2", "name": "MID B", "status": "Up"},
        ],
        "ecc_agent_config": [
            {
                "sys_id": "c1",
                "ecc_agent": "a1",
                "param_name": "mid.instance.username",
                "value": "mid1",
            },
        ],
        "sysevent": [
            {
                "sys_id": f"e{n:02d}",
                "name": "login" if n % 2 else "login.failed",
                "parm1": "mid1",
                "sys_created_on": f"-{n}m",
            }
            for n in range(25)
        ],
        "ecc_agent_issue": [
            {
                "sys_id": "i1",
                "message": "User mid1 is associated with 1 down MID Server.",
                "source": "MIDUserConnectivity",
                "state": "acknowledged",
                "count": "3",
            },
        ],
    },
    "users": {
        "admin": {"password": PASSWORD},
        "reader": {"password": "reader-pw", "deny_write": ["ecc_agent_issue"]},
        "limited": {
            "password": "limited-pw",
            "deny_read": ["sysevent"],
            "acl_empty": ["ecc_agent"],
            "acl_hide": {"sys_user_has_role": "role=r_soap"},
        },
    },
}


def base_scenario() -> dict[str, Any]:
    """A fresh copy of the base scenario, for tests that change it."""
    return copy.deepcopy(BASE)
