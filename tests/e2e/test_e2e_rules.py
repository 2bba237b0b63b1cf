"""A dry run over real HTTP against the demo scenario: every rule fires, nothing is written."""

from __future__ import annotations

import pytest

from snowcheck.emulator import Emulator

from .support import SOURCE, InProcess, issues, now_text

pytestmark = pytest.mark.e2e

RULES = (
    "auth_failed_down",
    "auth_failed_unassociated",
    "authz_failed_down",
    "authz_failed_unassociated",
    "no_login_down",
    "no_login_unassociated",
    "connected_unassociated",
)

# rule -> (user, message) the demo scenario must produce, singular and plural forms included.
EXPECTED = {
    ("auth_failed_down", "mid.east"): (
        "Login authentication failure for User mid.east associated with 3 down MID Servers. "
        "Check password on MID servers."
    ),
    ("auth_failed_down", "mid.west"): (
        "Login authentication failure for User mid.west associated with 1 down MID Server. "
        "Check password on MID server."
    ),
    ("auth_failed_unassociated", "svc.integration"): (
        "Login authentication failure for User svc.integration with mid_server role not "
        "associated with a MID Server."
    ),
    ("authz_failed_down", "mid.apac"): (
        "Login authorization failure for User mid.apac associated with 1 down MID Server. "
        "Re-assign mid_server role to grant all required roles."
    ),
    ("authz_failed_down", "mid.emea"): (
        "Login authorization failure for User mid.emea associated with 2 down MID Servers. "
        "Re-assign mid_server role to grant all required roles."
    ),
    ("authz_failed_unassociated", "svc.reports"): (
        "Login authorization failure for User svc.reports with mid_server role not associated "
        "with a MID Server."
    ),
    ("no_login_down", "mid.dr"): (
        "User mid.dr is associated with 2 down MID Servers. No login attempts within reporting "
        "period."
    ),
    ("no_login_down", "mid.lab"): (
        "User mid.lab is associated with 1 down MID Server. No login attempts within reporting "
        "period."
    ),
    ("no_login_unassociated", "old.mid.account"): (
        "User old.mid.account with mid_server role is not associated with a MID Server. No "
        "login attempts within reporting period."
    ),
    ("connected_unassociated", "admin.jane"): (
        "User admin.jane with mid_server role successfully connected but not associated with a "
        "MID Server. The mid_server role should be reserved for MID Server use only."
    ),
}


def test_dry_run_fires_every_rule_and_writes_nothing(emu: Emulator, cli: InProcess) -> None:
    before = issues(emu)
    result = cli(emu, "--format", "json")
    assert result.code == 0, result.err
    document = result.json

    assert document["schema_version"] == 1
    assert document["applied"] is False
    assert document["instance"] == emu.url
    assert document["source"] == SOURCE
    assert document["window_seconds"] == 4 * 3600
    assert document["now"] == now_text(emu)  # the instance's clock, from its Date header

    findings = {(f["rule"], f["user"]): f for f in document["findings"]}
    assert {rule for rule, _ in findings} == set(RULES)
    assert {key: f["message"] for key, f in findings.items()} == EXPECTED
    # Singular and plural forms both occur for every rule about down MID Servers.
    assert findings[("auth_failed_down", "mid.west")]["down_mid_servers"] == ["mid-west-1"]
    assert sorted(findings[("auth_failed_down", "mid.east")]["down_mid_servers"]) == [
        "mid-east-1",
        "mid-east-2",
        "mid-east-3",
    ]
    assert len(findings[("no_login_down", "mid.dr")]["down_mid_servers"]) == 2
    assert len(findings[("authz_failed_down", "mid.emea")]["down_mid_servers"]) == 2
    assert findings[("auth_failed_down", "mid.west")]["domain"] == "acme"

    # The plan is described but not applied.
    actions = [change["action"] for change in document["changes"]]
    assert actions == sorted(actions, key=["resolve", "update", "create"].index)
    assert actions.count("create") == 8
    assert actions.count("update") == 2
    assert actions.count("resolve") == 1
    for change in document["changes"]:
        if change["action"] == "create":
            assert change["sys_id"] is None
            assert (change["state"], change["count"]) == ("new", 1)
            assert (change["state_before"], change["count_before"]) == (None, None)

    # A dry run writes nothing: the issue table is exactly as it was, and no write was sent.
    assert issues(emu) == before
    assert all(entry.method == "GET" for entry in emu.log)
