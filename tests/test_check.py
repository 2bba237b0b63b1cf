"""The offline check: the bundled example snapshot end to end, and every way a snapshot is bad."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import issue_row, one_user

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.errors import ConfigError, DataError, SnapshotError
from snowcheck.messages import DOCS, KINGSTON
from snowcheck.records import TABLES
from snowcheck.rules import RULES

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"
SOURCE = "MIDUserConnectivity"


def check(path: Path = EXAMPLE, messages: str = "docs", source: str = SOURCE) -> Outcome:
    return assess(
        load_snapshot(str(path)),
        instance=str(path),
        window=timedelta(hours=4),
        source=source,
        messages=messages,
    )


def test_example_snapshot_loads() -> None:
    snapshot = load_snapshot(str(EXAMPLE))
    assert snapshot.now == datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert snapshot.clock_source == "snapshot"
    assert len(snapshot.tables["sys_user"]) == 14


def test_example_fires_every_rule() -> None:
    findings = check().evaluation.findings
    assert {finding.rule for finding in findings} == {rule.id for rule in RULES}
    assert [(finding.rule, finding.user) for finding in findings] == [
        ("auth_failed_down", "mid.east"),
        ("auth_failed_down", "mid.west"),
        ("auth_failed_unassociated", "svc.integration"),
        ("authz_failed_down", "mid.apac"),
        ("authz_failed_down", "mid.emea"),
        ("authz_failed_unassociated", "svc.reports"),
        ("no_login_down", "mid.dr"),
        ("no_login_down", "mid.lab"),
        ("no_login_unassociated", "old.mid.account"),
        ("connected_unassociated", "admin.jane"),
    ]


@pytest.mark.parametrize(
    ("user", "message", "domain", "mids", "notes"),
    [
        pytest.param(
            "mid.east",
            "Login authentication failure for User mid.east associated with 3 down MID Servers. "
            "Check password on MID servers.",
            "global",
            ("mid-east-1", "mid-east-2", "mid-east-3"),
            (),
            id="mid.east-newer-failure-over-login",
        ),
        pytest.param(
            "mid.west",
            "Login authentication failure for User mid.west associated with 1 down MID Server. "
            "Check password on MID server.",
            "acme",
            ("mid-west-1",),
            (),
            id="mid.west-domain-acme",
        ),
        pytest.param(
            "mid.apac",
            "Login authorization failure for User mid.apac associated with 1 down MID Server. "
            "Re-assign mid_server role to grant all required roles.",
            "global",
            ("mid-apac-1",),
            ("Missing roles: soap_query, mid_server",),
            id="mid.apac-missing-roles",
        ),
        pytest.param(
            "mid.dr",
            "User mid.dr is associated with 2 down MID Servers. "
            "No login attempts within reporting period.",
            "global",
            ("mid-dr-1", "mid-dr-2"),
            ("The user is locked out.",),
            id="mid.dr-failure-before-window",
        ),
        pytest.param(
            "mid.lab",
            "User mid.lab is associated with 1 down MID Server. "
            "No login attempts within reporting period.",
            "global",
            ("mid-lab-1",),
            (
                "The user is inactive (active=false).",
                "Connectivity of MID Server user mid.lab cannot be detected by the instance.",
            ),
            id="mid.lab-inactive-role-less",
        ),
        pytest.param(
            "old.mid.account",
            "User old.mid.account with mid_server role is not associated with a MID Server. "
            "No login attempts within reporting period.",
            "global",
            (),
            (),
            id="old.mid.account-other-event-name",
        ),
        pytest.param(
            "admin.jane",
            "User admin.jane with mid_server role successfully connected but not associated "
            "with a MID Server. The mid_server role should be reserved for MID Server use only.",
            "global",
            (),
            (),
            id="admin.jane-connected",
        ),
    ],
)
def test_example_findings(
    user: str, message: str, domain: str, mids: tuple[str, ...], notes: tuple[str, ...]
) -> None:
    (finding,) = [f for f in check().evaluation.findings if f.user == user]
    assert (finding.message, finding.domain, finding.down_mid_servers, finding.notes) == (
        message,
        domain,
        mids,
        notes,
    )


def test_example_plan() -> None:
    plan = check().plan
    assert [(c.action.value, c.sys_id, c.state_before, c.state, c.count) for c in plan.changes][
        :3
    ] == [
        ("resolve", "b8fdce28f0f639e72d2cde4cf107324f", "new", "resolved", 7),
        ("update", "7ecbe55bbb92ca57e5bcc140792da69e", "new", "new", 3),
        ("update", "b7bd34b5f85a0e6703b09d3e90ea8748", "acknowledged", "acknowledged", 6),
    ]
    creates = [c for c in plan.changes if c.action.value == "create"]
    assert len(creates) == 8
    # mid.east's matching issue is resolved: never reopened, a new one is created.
    assert (
        "Login authentication failure for User mid.east associated with 3 down MID Servers. "
        "Check password on MID servers."
    ) in {c.message for c in creates}
    touched = {c.sys_id for c in plan.changes}
    assert "f159425b610237366c026f350d8d42ce" not in touched  # another source
    assert "e2d38e2a612e2521a1e074b1264172b6" not in touched  # has a mid_server
    assert "2e96a6bfce078d34d7d0403e26006e3a" not in touched  # resolved
    assert plan.open_issues == 3
    assert plan.warnings == ()


@pytest.mark.parametrize(
    ("messages", "chosen"),
    [
        pytest.param("docs", DOCS, id="docs"),
        pytest.param("kingston", KINGSTON, id="kingston"),
        pytest.param("auto", DOCS, id="auto-docs-issues-open"),
    ],
)
def test_example_template_choice(messages: str, chosen: object) -> None:
    assert check(messages=messages).evaluation.templates is chosen


def snapshot_file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_auto_follows_open_issues_of_our_source_only(tmp_path: Path) -> None:
    kingston = (
        "User mid.east associated with 1 down MID Server.  No login attempts within reporting "
        "period."
    )
    tables = one_user("mid.east", down=1).tables
    tables["ecc_agent_issue"] = [issue_row(kingston, source="Other", record="other")]
    path = snapshot_file(tmp_path, {"now": "2026-11-25 12:00:00", "tables": tables})
    assert check(path, messages="auto").evaluation.templates is DOCS
    tables["ecc_agent_issue"] = [issue_row(kingston, record="ours", count="4")]
    path = snapshot_file(tmp_path, {"now": "2026-11-25 12:00:00", "tables": tables})
    outcome = check(path, messages="auto")
    assert outcome.evaluation.templates is KINGSTON
    assert [(c.action.value, c.sys_id, c.count) for c in outcome.plan.changes] == [
        ("update", "ours", 5)
    ]


def test_custom_source_changes_what_is_ours() -> None:
    plan = check(source="ECCQueueMonitor").plan
    resolved = [c.sys_id for c in plan.changes if c.action.value == "resolve"]
    assert resolved == ["f159425b610237366c026f350d8d42ce"]
    assert len([c for c in plan.changes if c.action.value == "create"]) == 10


# ---------------------------------------------------------------------------
# Bad snapshot files.
# ---------------------------------------------------------------------------


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_snapshot(str(tmp_path / "nope.json"))


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read snapshot file"):
        load_snapshot(str(tmp_path))


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        pytest.param("{not json", "(file)", "is not valid JSON", id="invalid-json"),
        pytest.param("", "(file)", "is not valid JSON", id="empty-file"),
        pytest.param("[]", "(file)", "should be a JSON object", id="array"),
        pytest.param('{"tables": {}}', "now", "is missing", id="missing-now"),
        pytest.param(
            '{"now": 5, "tables": {}}',
            "now",
            "should be YYYY-MM-DD HH:MM:SS, got 5",
            id="now-not-a-string",
        ),
        pytest.param(
            '{"now": "2026-11-25T12:00:00Z", "tables": {}}',
            "now",
            "should be YYYY-MM-DD HH:MM:SS, got '2026-11-25T12:00:00Z'",
            id="now-iso",
        ),
        pytest.param(
            '{"now": "2026-11-25 12:00:00"}', "tables", "should be an object", id="no-tables"
        ),
        pytest.param(
            '{"now": "2026-11-25 12:00:00", "tables": []}',
            "tables",
            "should be an object",
            id="tables-a-list",
        ),
        pytest.param(
            '{"now": "2026-11-25 12:00:00", "tables": {"sys_users": [], "incident": []}}',
            "tables",
            "names unknown tables incident, sys_users",
            id="unknown-tables",
        ),
    ],
)
def test_bad_snapshot_is_a_data_error(tmp_path: Path, text: str, field: str, says: str) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as raised:
        load_snapshot(str(path))
    assert (raised.value.table, raised.value.sys_id, raised.value.field) == (
        "snapshot",
        str(path),
        field,
    )
    assert says in str(raised.value)


def test_not_utf8_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_bytes(b'{"now": "\xff"}')
    with pytest.raises(DataError, match="is not valid JSON"):
        load_snapshot(str(path))


def test_bad_row_in_snapshot_is_refused_when_loaded(tmp_path: Path) -> None:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["tables"]["sysevent"][0]["sys_created_on"] = "yesterday"
    with pytest.raises(SnapshotError) as raised:
        load_snapshot(str(snapshot_file(tmp_path, document)))
    assert raised.value.exit_code == 2
    assert str(raised.value).startswith("sysevent record 5636ec92a2676eeb459a4dca57456970:")


def test_empty_tables_are_allowed(tmp_path: Path) -> None:
    tables: dict[str, list[Any]] = {table: [] for table in TABLES}
    path = snapshot_file(tmp_path, {"now": "2026-11-25 12:00:00", "tables": tables})
    outcome = check(path)
    assert outcome.evaluation.findings == ()
    assert outcome.plan.changes == ()


@pytest.mark.parametrize("missing", TABLES)
def test_a_missing_table_is_named(tmp_path: Path, missing: str) -> None:
    tables: dict[str, list[Any]] = {table: [] for table in TABLES if table != missing}
    path = snapshot_file(tmp_path, {"now": "2026-11-25 12:00:00", "tables": tables})
    with pytest.raises(SnapshotError, match=f"field 'tables' lacks {missing}: "):
        load_snapshot(str(path))
