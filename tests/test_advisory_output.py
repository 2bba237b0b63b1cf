"""The advisories shown: the report's section, the summary, --debug 1, JSON, Nagios, Prometheus,
explain and the demo's brief list; and never in the plan.

Each advisory of the bundled snapshot is checked by id in every output; expected values are
literals, never derived from the code under test.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from snowcheck.advisories import Advice, Advisory, Severity
from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.cli import main
from snowcheck.output.advisory_view import advisories_brief
from snowcheck.output.monitoring import nagios_report, prometheus_text
from snowcheck.output.report import Terminal
from snowcheck.output.text import UNICODE

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"
STAMP = "zurich-07-01-2025__patch2-10-08-2025_10-15-2025_1203"
OLD_STAMP = "yokohama-12-18-2024__patch5-06-18-2025_06-26-2025_0611"

EXPECTED = [
    {
        "id": "mid_user_mismatch",
        "severity": "warning",
        "subject": "mid-emea-2",
        "detail": "logged in as mid.emea.old, but mid.instance.username is mid.emea",
    },
    {
        "id": "user_locked_out",
        "severity": "error",
        "subject": "mid.dr",
        "detail": "locked out; configured on mid-dr-1, mid-dr-2",
    },
    {
        "id": "password_needs_reset",
        "severity": "error",
        "subject": "mid.west",
        "detail": "password needs reset; configured on mid-west-1",
    },
    {
        "id": "user_inactive",
        "severity": "error",
        "subject": "mid.lab",
        "detail": "inactive; configured on mid-lab-1",
    },
    {
        "id": "shared_mid_user",
        "severity": "info",
        "subject": "mid.east",
        "detail": "configured on 3 MID Servers: mid-east-1, mid-east-2, mid-east-3",
    },
    {
        "id": "heartbeat_overdue",
        "severity": "warning",
        "subject": "mid-spare-1",
        "detail": "status Up, last refreshed 40 minutes ago (2026-11-25 11:20:00)",
    },
    {
        "id": "not_validated",
        "severity": "warning",
        "subject": "mid-ok-1",
        "detail": "validated is false",
    },
    {
        "id": "version_mismatch",
        "severity": "warning",
        "subject": "mid-prod-2",
        "detail": f"version {OLD_STAMP}, the instance's mid.buildstamp is {STAMP}",
    },
    {
        "id": "clone_credentials",
        "severity": "warning",
        "subject": "mid-prod-1",
        "detail": "Instance clone: MID Server mid-prod-1 still holds the clone source's "
        "credentials.",
    },
]
IDS = [item["id"] for item in EXPECTED]


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


def run(*argv: str, width: int = 80) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), terminal=Terminal(stdout=out, stderr=err, width=width))
    return Run(code, out.getvalue(), err.getvalue())


def outcome_of(path: Path, *, advisories: bool = True) -> Outcome:
    return assess(
        load_snapshot(str(path)),
        instance="https://dev12345.service-now.com",
        window=timedelta(hours=4),
        source="MIDUserConnectivity",
        messages="docs",
        advisories=advisories,
    )


def edited(tmp_path: Path, edit: Any) -> Path:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    edit(document)
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def old_snapshot(document: dict[str, Any]) -> None:
    """As a snapshot from before the advisories: no extra reads, no sys_properties."""
    document.pop("extra_reads")
    document["tables"].pop("sys_properties")


def no_findings(document: dict[str, Any]) -> None:
    """No rule fires (every MID Server Up, nobody holds a role); the advisories remain."""
    tables = document["tables"]
    for mid in tables["ecc_agent"]:
        mid["status"] = "Up"
        mid["last_refreshed"] = "2026-11-25 11:58:00"
    tables["sys_user_has_role"] = []


def flat(text: str) -> str:
    """The text with its line breaks as single spaces: a wrapped sentence reads whole again."""
    return " ".join(text.split())


# The plan is the job's alone -----------------------------------------------------------------


def test_the_plan_is_the_same_with_and_without_advisories() -> None:
    advised = outcome_of(EXAMPLE)
    plain = outcome_of(EXAMPLE, advisories=False)
    assert advised.advice is not None and len(advised.advice.advisories) == 9
    assert plain.advice is None
    assert advised.plan == plain.plan
    assert advised.evaluation.findings == plain.evaluation.findings
    details = {advisory.detail for advisory in advised.advice.advisories}
    assert not details & {change.message for change in advised.plan.changes}


def test_no_advisories_changes_nothing_but_the_advisories_in_json() -> None:
    advised = run("check", "--snapshot", str(EXAMPLE), "--format", "json").json()
    plain = run("check", "--snapshot", str(EXAMPLE), "--format", "json", "--no-advisories").json()
    assert plain["advisories"] == []
    assert {**advised, "advisories": []} == plain


# JSON ----------------------------------------------------------------------------------------


def test_json_lists_each_advisory_with_id_severity_subject_detail() -> None:
    document = run("check", "--snapshot", str(EXAMPLE), "--format", "json").json()
    assert document["schema_version"] == 1
    assert document["advisories"] == EXPECTED


def test_json_of_an_old_snapshot_has_no_advisories(tmp_path: Path) -> None:
    path = edited(tmp_path, old_snapshot)
    document = run("check", "--snapshot", str(path), "--format", "json").json()
    assert document["advisories"] == []
    assert len(document["findings"]) == 10


# The report ----------------------------------------------------------------------------------


def test_report_shows_each_advisory_after_the_findings_with_its_hint() -> None:
    result = run("check", "--snapshot", str(EXAMPLE))
    assert result.code == 0
    text = result.out
    findings, rest = text.split("\nAdvisories (9) · never written to ecc_agent_issue\n")
    advisories, _ = rest.split("\nPlan (dry run)")
    assert "Findings (10)" in findings
    for number, item in enumerate(EXPECTED, 1):
        head = f"{number:>2} {item['id']} · {item['severity']} · {item['subject']}"
        assert head in advisories.splitlines()
        assert item["detail"] in flat(advisories)
    assert "hint: Set mid.instance.username in the MID Server's config.xml" in flat(advisories)
    assert "hint: Re-enter the MID Server credentials of this instance" in flat(advisories)
    assert advisories.count("hint:") == 9
    for line in text.splitlines():
        assert len(line) <= 80, line


def test_a_hint_shows_once_under_the_advisories_of_its_id(tmp_path: Path) -> None:
    def two_unvalidated(document: dict[str, Any]) -> None:
        for mid in document["tables"]["ecc_agent"]:
            if mid["name"] == "mid-east-1":
                mid["validated"] = "False "

    text = run("check", "--snapshot", str(edited(tmp_path, two_unvalidated))).out
    section = text.split("Advisories (10)")[1].split("Plan (dry run)")[0]
    assert " 7 not_validated · warning · mid-east-1" in section
    assert " 8 not_validated · warning · mid-ok-1" in section
    assert flat(section).count("hint: Validate the MID Server") == 1
    # ... and it stands under the last of them.
    assert flat(section).index("hint: Validate") > flat(section).index("mid-ok-1")


def test_summary_counts_the_advisories_and_breaks_between_its_parts() -> None:
    narrow = run("check", "--snapshot", str(EXAMPLE)).out.splitlines()
    assert narrow[-2:] == [
        "10 findings · 9 advisories · plan: 8 create, 2 update, 1 resolve ·",
        "dry run, nothing written",
    ]
    wide = run("check", "--snapshot", str(EXAMPLE), width=120).out.splitlines()
    assert wide[-1] == (
        "10 findings · 9 advisories · plan: 8 create, 2 update, 1 resolve · "
        "dry run, nothing written"
    )


def test_no_advisories_shows_no_section_and_no_count() -> None:
    text = run("check", "--snapshot", str(EXAMPLE), "--no-advisories", width=120).out
    assert "Advisories" not in text
    assert text.splitlines()[-1] == (
        "10 findings · plan: 8 create, 2 update, 1 resolve · dry run, nothing written"
    )


def test_old_snapshot_says_none_checked_and_debug_1_says_why(tmp_path: Path) -> None:
    path = str(edited(tmp_path, old_snapshot))
    plain = run("check", "--snapshot", path).out
    assert "Advisories: none checked · --debug 1 says why" in plain.splitlines()
    assert "advisories" not in plain.splitlines()[-1]
    debug = run("check", "--snapshot", path, "--debug", "1").out
    block = flat(debug.split("\nAdvisories\n")[1].split("Findings (10)")[0])
    for advisory in IDS:
        assert f"- {advisory}" in block
    assert (
        "note: mid_user_mismatch skipped: only the Down MID Servers were read "
        "(a snapshot from before advisories)" in block
    )
    assert (
        "note: version_mismatch skipped: only the Down MID Servers were read (a snapshot "
        "from before advisories); sys_properties was not read (no read access, or an older "
        "snapshot)" in block
    )
    assert (
        "note: clone_credentials skipped: the InstanceClone issues were not read "
        "(an older snapshot)" in block
    )
    for line in debug.splitlines():
        assert len(line) <= 80, line


def test_debug_1_counts_each_advisory_and_names_one_skipped(tmp_path: Path) -> None:
    def without_properties(document: dict[str, Any]) -> None:
        document["tables"].pop("sys_properties")
        document["extra_reads"].remove("sys_properties")

    debug = run("check", "--snapshot", str(edited(tmp_path, without_properties)), "--debug", "1")
    block = debug.out.split("\nAdvisories\n")[1].split("\nFindings")[0]
    assert "  1 mid_user_mismatch" in block.splitlines()
    assert "  - version_mismatch" in block.splitlines()
    assert "note: version_mismatch skipped: sys_properties was not read" in flat(block)
    section = debug.out.split("Advisories (8)")[1]
    assert "skipped: 1 not checked (version_mismatch): --debug 1 says why" in flat(section)


# Nagios --------------------------------------------------------------------------------------


def test_nagios_counts_and_lists_the_advisories_beside_the_findings() -> None:
    text, code = nagios_report(outcome_of(EXAMPLE), elapsed=0.5, applied=False)
    first, *rest = text.splitlines()
    assert code == 2
    assert ", 9 advisories, plan: 8 create, 2 update, 1 resolve | " in first
    assert " advisories=9;;;0 " in first
    assert rest[10:] == [
        f"advisory {item['id']} ({item['severity']}) {item['subject']}: {item['detail']}"
        for item in EXPECTED
    ]


def test_nagios_warning_when_there_is_no_finding_but_advisories(tmp_path: Path) -> None:
    outcome = outcome_of(edited(tmp_path, no_findings))
    assert outcome.evaluation.findings == ()
    text, code = nagios_report(outcome, elapsed=0.5, applied=False)
    first, *rest = text.splitlines()
    assert code == 1
    # No finding, no heartbeat overdue any more: the eight other advisories remain.
    assert first.startswith(
        "SNOWCHECK WARNING - 0 findings (0 on down MID Servers, 0 configuration), "
        "8 advisories, plan: "
    )
    assert " advisories=8;;;0 " in first
    assert [line.split()[1] for line in rest] == [
        "mid_user_mismatch",
        "user_locked_out",
        "password_needs_reset",
        "user_inactive",
        "shared_mid_user",
        "not_validated",
        "version_mismatch",
        "clone_credentials",
    ]


def test_nagios_ok_with_no_finding_and_no_advisory(tmp_path: Path) -> None:
    outcome = replace(outcome_of(edited(tmp_path, no_findings)), advice=Advice(()))
    text, code = nagios_report(outcome, elapsed=0.5, applied=False)
    assert code == 0
    assert text.startswith(
        "SNOWCHECK OK - 0 findings (0 on down MID Servers, 0 configuration), 0 advisories, "
    )
    assert " advisories=0;;;0 " in text
    assert len(text.splitlines()) == 1


def test_nagios_without_advisories_says_nothing_of_them() -> None:
    text, _ = nagios_report(outcome_of(EXAMPLE, advisories=False), elapsed=0.5, applied=False)
    assert "advisor" not in text


def test_nagios_advisory_lines_are_inert() -> None:
    hostile = Advisory("not_validated", Severity.WARNING, "mid|x\x1b[2J", "validated is a|b\nc")
    outcome = replace(outcome_of(EXAMPLE), advice=Advice((hostile,)))
    text, _ = nagios_report(outcome, elapsed=0.5, applied=False)
    assert text.splitlines()[-1] == (
        "advisory not_validated (warning) mid/x\\x1b[2J: validated is a/b\\nc"
    )


# Prometheus ----------------------------------------------------------------------------------


def advisory_samples(text: str) -> dict[str, str]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("snowcheck_advisories{"):
            labels, value = line.split("} ")
            samples[labels.split('id="')[1].rstrip('"')] = value
    return samples


def prometheus(outcome: Outcome | None) -> str:
    return prometheus_text(
        outcome,
        success=outcome is not None,
        elapsed=1.0,
        requests=3,
        applied_changes=None,
        instance="https://dev12345.service-now.com",
        now=1795608000.0,
    )


def test_prometheus_counts_every_advisory_id() -> None:
    text = prometheus(outcome_of(EXAMPLE))
    assert "# TYPE snowcheck_advisories gauge" in text
    assert advisory_samples(text) == dict.fromkeys(IDS, "1")
    assert (
        'snowcheck_advisories{instance="https://dev12345.service-now.com",'
        'id="mid_user_mismatch"} 1' in text.splitlines()
    )


def test_prometheus_writes_zero_for_an_id_checked_and_none_for_one_skipped(
    tmp_path: Path,
) -> None:
    def fixed_and_unread(document: dict[str, Any]) -> None:
        for mid in document["tables"]["ecc_agent"]:
            mid["validated"] = "true"
        document["tables"].pop("sys_properties")
        document["extra_reads"].remove("sys_properties")

    samples = advisory_samples(prometheus(outcome_of(edited(tmp_path, fixed_and_unread))))
    assert samples["not_validated"] == "0"
    assert "version_mismatch" not in samples
    assert len(samples) == 8


def test_prometheus_without_advisories_or_outcome_has_no_samples(tmp_path: Path) -> None:
    assert advisory_samples(prometheus(outcome_of(EXAMPLE, advisories=False))) == {}
    assert advisory_samples(prometheus(outcome_of(edited(tmp_path, old_snapshot)))) == {}
    assert advisory_samples(prometheus(None)) == {}


def test_prometheus_textfile_of_a_snapshot_check_holds_its_advisories(tmp_path: Path) -> None:
    path = tmp_path / "snowcheck.prom"
    result = run("check", "--snapshot", str(EXAMPLE), "--prometheus-textfile", str(path))
    assert result.code == 0
    text = path.read_text(encoding="utf-8")
    assert advisory_samples(text) == dict.fromkeys(IDS, "1")
    assert 'snowcheck_findings{instance="unknown",rule="auth_failed_down"} 2' in text


# explain -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("mid.prod", ["version_mismatch", "clone_credentials"]),  # its MID Servers
        ("mid.emea", ["mid_user_mismatch"]),  # configured on mid-emea-2
        ("mid.east", ["shared_mid_user"]),
        ("mid.dr", ["user_locked_out"]),
        ("mid.west", ["password_needs_reset"]),
        ("mid.lab", ["user_inactive"]),
        ("mid.ok", ["not_validated"]),
        ("alice.employee", []),
        ("svc.reports", []),
    ],
)
def test_explain_lists_the_advisories_about_the_user_and_its_mid_servers(
    user: str, expected: list[str]
) -> None:
    document = run("explain", user, "--snapshot", str(EXAMPLE), "--format", "json").json()
    assert [item["id"] for item in document["advisories"]] == expected
    for item in document["advisories"]:
        assert item == next(entry for entry in EXPECTED if entry["id"] == item["id"])
    text = run("explain", user, "--snapshot", str(EXAMPLE)).out
    if expected:
        assert f"Advisories ({len(expected)}) · never written to ecc_agent_issue" in text
        for advisory in expected:
            assert f"  {advisory} · " in text
    else:
        assert "Advisories: none" in text.splitlines()


def test_explain_without_advisories_shows_none_of_them() -> None:
    argv = ("explain", "mid.prod", "--snapshot", str(EXAMPLE), "--no-advisories")
    assert run(*argv, "--format", "json").json()["advisories"] == []
    assert "Advisories" not in run(*argv).out


# The demo's brief list -----------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 40])
def test_brief_list_wraps_between_advisories_only(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    console.print(advisories_brief(outcome_of(EXAMPLE).advice, UNICODE))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Advisories (9) · never written")
    listed = [line for line in lines if line.startswith("  ")]
    items = [item.strip() for line in listed for item in line.split(",") if item.strip()]
    assert items == [f"{entry['id']} {entry['subject']}" for entry in EXPECTED]
    assert all(len(line) <= width for line in lines)
    assert len(listed) == {80: 5, 40: 9}[width]


def test_brief_list_is_empty_without_advisories() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    console.print(advisories_brief(None, UNICODE))
    console.print(advisories_brief(Advice(()), UNICODE))
    assert out.getvalue().strip() == ""


def test_the_brief_report_lists_the_advisories_without_their_hints() -> None:
    """The demo off a terminal: one packed list, under its 150-line budget."""
    out = io.StringIO()
    terminal = Terminal(stdout=out, stderr=io.StringIO(), width=80)
    terminal.report(outcome_of(EXAMPLE), applied=None, brief=True)
    text = out.getvalue()
    listed = text.split("Advisories (9) · never written to ecc_agent_issue\n")[1]
    listed = listed.split("\n\n")[0]
    assert listed.splitlines() == [
        "  mid_user_mismatch mid-emea-2, user_locked_out mid.dr,",
        "  password_needs_reset mid.west, user_inactive mid.lab,",
        "  shared_mid_user mid.east, heartbeat_overdue mid-spare-1,",
        "  not_validated mid-ok-1, version_mismatch mid-prod-2,",
        "  clone_credentials mid-prod-1",
    ]
    assert "hint: Set mid.instance.username" not in text
    assert all(len(line) <= 80 for line in text.splitlines())


# The setting ---------------------------------------------------------------------------------


def test_the_advisories_setting_command_line_over_config_and_typed() -> None:
    from snowcheck.errors import ConfigError
    from snowcheck.settings import RuleOptions, check_settings

    def warn(message: str) -> None:
        raise AssertionError(message)

    assert check_settings(RuleOptions(), {}, warn).advisories is True
    assert check_settings(RuleOptions(), {"advisories": False}, warn).advisories is False
    assert check_settings(RuleOptions(advisories=False), {"advisories": True}, warn).advisories is (
        False
    )
    with pytest.raises(ConfigError, match="advisories must be true or false"):
        check_settings(RuleOptions(), {"advisories": "no"}, warn)


def test_report_prints_advisory_data_literally() -> None:
    hostile = Advisory("not_validated", Severity.WARNING, "[bold]mid\x1b[2J", "validated is [red]x")
    out = io.StringIO()
    terminal = Terminal(stdout=out, stderr=io.StringIO(), width=80)
    terminal.report(replace(outcome_of(EXAMPLE), advice=Advice((hostile,))), applied=None)
    text = out.getvalue()
    assert " 1 not_validated · warning · [bold]mid\\x1b[2J" in text.splitlines()
    assert "   validated is [red]x" in text.splitlines()
    assert "\x1b" not in text


# Live, against the emulator ------------------------------------------------------------------


def _apply_live(monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[Any, list[dict[str, str]]]:
    """``check --apply --format json`` on an emulator holding the bundled snapshot."""
    from snowcheck.emulator import Emulator, Scenario

    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["users"] = {"checker": {"password": "advice-pass"}}
    monkeypatch.setenv("SERVICENOW_PASSWORD", "advice-pass")
    monkeypatch.delenv("SNOWCHECK_CONFIG", raising=False)
    with Emulator(Scenario.from_dict(document)) as emu:
        argv = ["check", "--instance", emu.url, "--user", "checker", "--apply", "--no-lock"]
        result = run(*argv, "--format", "json", *extra)
        assert result.code == 0, result.err
        return result.json(), list(emu.rows("ecc_agent_issue"))


def test_live_apply_shows_the_advisories_and_writes_only_the_jobs_issues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    advised, issues = _apply_live(monkeypatch)
    plain, plain_issues = _apply_live(monkeypatch, "--no-advisories")
    assert advised["advisories"] == EXPECTED
    assert plain["advisories"] == []

    def written(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
        return sorted((r["source"], r["state"], r["count"], r["message"]) for r in rows)

    # The same issues, to the letter, with and without the advisories; none of them is one.
    assert written(issues) == written(plain_issues)
    details = {item["detail"] for item in EXPECTED}
    held = json.loads(EXAMPLE.read_text(encoding="utf-8"))["tables"]["ecc_agent_issue"]

    def advisory_rows(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
        return [
            (r["sys_id"], r["source"], r["state"], r["count"])
            for r in rows
            if r["message"] in details
        ]

    # Only the clone issue the snapshot already held, untouched.
    assert advisory_rows(issues) == advisory_rows(held)
    assert len(advisory_rows(held)) == 1

    def changes(document: Any) -> list[tuple[str, str, int, str]]:
        return [(c["action"], c["state"], c["count"], c["message"]) for c in document["changes"]]

    assert changes(advised) == changes(plain)
