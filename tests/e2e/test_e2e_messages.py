"""An instance whose open issues use the older (kingston) wording: ``--messages auto``."""

from __future__ import annotations

import pytest

from .support import InProcess, by_message, demo_data, open_ours, start
from .test_e2e_rules import EXPECTED

pytestmark = pytest.mark.e2e

# The demo's open issues, as an older release words them (SPEC 3: two spaces between
# sentences, "User X associated" without "is", "... role not associated ...").
KINGSTON = {
    EXPECTED[("auth_failed_down", "mid.west")]: (
        "Login authentication failure for User mid.west associated with 1 down MID Server.  "
        "Check password on MID server."
    ),
    EXPECTED[("no_login_unassociated", "old.mid.account")]: (
        "User old.mid.account with mid_server role not associated with a MID Server.  "
        "No login attempts within reporting period."
    ),
    "User ghost.mid is associated with 1 down MID Server. No login attempts within "
    "reporting period.": (
        "User ghost.mid associated with 1 down MID Server.  No login attempts within "
        "reporting period."
    ),
}


def test_auto_matches_the_wording_on_the_instance(cli: InProcess) -> None:
    data = demo_data()
    for row in data["tables"]["ecc_agent_issue"]:
        row["message"] = KINGSTON.get(row["message"], row["message"])
    emu = start(data)
    try:
        first = cli(emu, "--apply", "--messages", "auto", "--format", "json")
        assert first.code == 0, first.err
        changes = first.json["changes"]
        updated = {c["message"]: c["count"] for c in changes if c["action"] == "update"}
        west, old, ghost = KINGSTON.values()
        assert updated == {west: 3, old: 6}  # matched, not duplicated in docs wording
        assert [c["message"] for c in changes if c["action"] == "resolve"] == [ghost]
        created = [c["message"] for c in changes if c["action"] == "create"]
        assert len(created) == 8
        assert "User mid.lab associated with 1 down MID Server.  No login attempts" in " ".join(
            created
        )
        assert not set(created) & set(EXPECTED.values()) - {
            EXPECTED[("auth_failed_unassociated", "svc.integration")],
            EXPECTED[("authz_failed_unassociated", "svc.reports")],
        }

        # The next run finds every issue again: updates only, one open issue per message.
        second = cli(emu, "--apply", "--messages", "auto", "--format", "json")
        assert second.code == 0, second.err
        assert {c["action"] for c in second.json["changes"]} == {"update"}
        assert len(by_message(open_ours(emu))) == 10
    finally:
        emu.stop()
