"""Unattended outputs: Nagios text, the Prometheus textfile and its atomic write, the log file."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.errors import ConfigError
from snowcheck.output.monitoring import (
    nagios_report,
    open_log_file,
    prometheus_text,
    read_last_success,
    write_textfile_atomically,
)
from snowcheck.plan import Action
from snowcheck.redact import REDACTED, redact
from snowcheck.rules import RULES

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"
INSTANCE = "https://dev12345.service-now.com"
SOURCE = "MIDUserConnectivity"
HOSTILE = "evil|user\x1b[31m[bold red]x[/]"


def outcome_of(path: str | Path, *, advisories: bool = True) -> Outcome:
    return assess(
        load_snapshot(str(path)),
        instance=INSTANCE,
        window=timedelta(hours=4),
        source=SOURCE,
        messages="docs",
        advisories=advisories,
    )


def variant(tmp_path: Path, edit: Any, *, advisories: bool = True) -> Outcome:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    edit(document["tables"])
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return outcome_of(path, advisories=advisories)


def all_up(tables: dict[str, list[dict[str, Any]]]) -> None:
    for mid in tables["ecc_agent"]:
        mid["status"] = "Up"


def no_role_users(tables: dict[str, list[dict[str, Any]]]) -> None:
    all_up(tables)
    tables["sys_user_has_role"] = []


def hostile_user(tables: dict[str, list[dict[str, Any]]]) -> None:
    all_up(tables)
    for user in tables["sys_user"]:
        if user["user_name"] == "admin.jane":
            user["user_name"] = HOSTILE
    for event in tables["sysevent"]:
        if event["parm1"] == "admin.jane":
            event["parm1"] = HOSTILE


# Nagios --------------------------------------------------------------------------------------

# 'label'=value[UOM];[warn];[crit];[min];[max], the last fields optional.
PERF = re.compile(
    r"(?:'[^'=]+'|[^'= ]+)=-?\d+(?:\.\d+)?(?:s|ms|us|%|B|KB|MB|TB|c)?"
    r"(?:;[-\d.:~@]*){0,4}"
)
STATUS = re.compile(
    r"SNOWCHECK (?P<state>OK|WARNING|CRITICAL|UNKNOWN) - (?P<summary>[^|]+) \| (?P<perf>.+)"
)


def parse_nagios(text: str) -> tuple[str, str, dict[str, str], list[str]]:
    assert text.endswith("\n")
    first, *rest = text[:-1].split("\n")
    match = STATUS.fullmatch(first)
    assert match, first
    perf: dict[str, str] = {}
    for item in match.group("perf").split(" "):
        assert PERF.fullmatch(item), item
        label, value = item.split("=", 1)
        perf[label] = value
    for line in rest:
        assert "|" not in line, line
    return match.group("state"), match.group("summary"), perf, rest


def test_nagios_critical_when_a_finding_concerns_down_mid_servers() -> None:
    text, code = nagios_report(outcome_of(EXAMPLE), elapsed=1.2341, applied=False)
    state, summary, perf, rest = parse_nagios(text)
    assert (state, code) == ("CRITICAL", 2)
    assert summary == (
        "10 findings (6 on down MID Servers, 4 configuration), 9 advisories, "
        "plan: 8 create, 2 update, 1 resolve"
    )
    assert perf == {
        "auth_failed_down": "2;;;0",
        "auth_failed_unassociated": "1;;;0",
        "authz_failed_down": "2;;;0",
        "authz_failed_unassociated": "1;;;0",
        "no_login_down": "2;;;0",
        "no_login_unassociated": "1;;;0",
        "connected_unassociated": "1;;;0",
        "findings": "10;;;0",
        "advisories": "9;;;0",
        "changes": "11;;;0",
        "time": "1.234s;;;0",
    }
    assert len(rest) == 10 + 9
    assert rest[0].startswith("Login authentication failure for User mid.east")


def test_nagios_warning_when_only_role_not_configured_users(tmp_path: Path) -> None:
    text, code = nagios_report(variant(tmp_path, all_up), elapsed=0.5, applied=True)
    state, summary, perf, rest = parse_nagios(text)
    assert (state, code) == ("WARNING", 1)
    assert summary.startswith("4 findings (0 on down MID Servers, 4 configuration), ")
    assert ", applied: " in summary
    assert perf["auth_failed_down"] == "0;;;0"
    assert perf["connected_unassociated"] == "1;;;0"
    assert len([line for line in rest if not line.startswith("advisory ")]) == 4


def test_nagios_ok_without_findings_lists_every_rule_at_zero(tmp_path: Path) -> None:
    outcome = variant(tmp_path, no_role_users, advisories=False)
    text, code = nagios_report(outcome, elapsed=0.0, applied=False)
    state, summary, perf, rest = parse_nagios(text)
    assert (state, code) == ("OK", 0)
    assert summary.startswith("0 findings (0 on down MID Servers, 0 configuration), plan: ")
    assert rest == []
    assert {rule.id for rule in RULES} <= set(perf)
    assert all(perf[rule.id] == "0;;;0" for rule in RULES)
    assert perf["changes"] == f"{len(outcome.plan.changes)};;;0"


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        (
            "sys_user_has_role: HTTP 403 | grant the snc_read_only role",
            "sys_user_has_role: HTTP 403 / grant the snc_read_only role",
        ),
        ("first line\nsecond line", "first line"),
        ("", "the check produced no result"),
    ],
)
def test_nagios_unknown_when_the_check_could_not_run(error: str, summary: str) -> None:
    text, code = nagios_report(None, error=error, elapsed=3.0, applied=False)
    state, shown, perf, rest = parse_nagios(text)
    assert (state, code) == ("UNKNOWN", 3)
    assert shown == summary
    assert perf == {"time": "3.000s;;;0"}
    assert rest == []


def test_nagios_error_wins_over_an_outcome() -> None:
    text, code = nagios_report(
        outcome_of(EXAMPLE), error="write-back stopped part-way", elapsed=1.0, applied=True
    )
    assert code == 3
    assert text.startswith("SNOWCHECK UNKNOWN - write-back stopped part-way | ")


def test_nagios_makes_hostile_data_inert(tmp_path: Path) -> None:
    text, code = nagios_report(variant(tmp_path, hostile_user), elapsed=0.1, applied=False)
    _, _, perf, rest = parse_nagios(text)
    assert code == 1
    assert "\x1b" not in text
    (line,) = (line for line in rest if "successfully connected" in line)
    # The pipe would start perfdata; the escape is shown, not run; markup stays as typed.
    assert line.startswith("User evil/user\\x1b[31m[bold red]x[/] with mid_server role")
    assert set(perf) == {rule.id for rule in RULES} | {"findings", "advisories", "changes", "time"}


def test_nagios_error_text_is_inert() -> None:
    text, _ = nagios_report(None, error="bad \x1b[2J value | [red]x", elapsed=0.0, applied=False)
    assert text == "SNOWCHECK UNKNOWN - bad \\x1b[2J value / [red]x | time=0.000s;;;0\n"


# Prometheus ----------------------------------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(rf"({NAME})(?:\{{(.*)\}})? (\S+)")


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A strict reader of the text format: HELP and TYPE once, before a metric's samples."""
    assert text.endswith("\n")
    helps: set[str] = set()
    types: dict[str, str] = {}
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    finished: set[str] = set()
    current = ""
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert re.fullmatch(NAME, name) and name not in helps
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in helps and name not in types and name not in samples
            assert kind == "gauge"
            types[name] = kind
            if current:
                finished.add(current)
            current = name
            samples[name] = []
            continue
        match = SAMPLE.fullmatch(line)
        assert match, line
        name, labels_text, value = match.groups()
        assert name == current and name not in finished, f"{name} outside its block"
        labels: dict[str, str] = {}
        if labels_text:
            pairs = LABEL.findall(labels_text)
            assert ",".join(f'{k}="{v}"' for k, v in pairs) == labels_text, labels_text
            labels = {key: unescape(raw) for key, raw in pairs}
        samples[name].append((labels, float(value)))
    assert set(types) == helps
    return samples


def prometheus(outcome: Outcome | None, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "success": True,
        "elapsed": 2.5,
        "requests": 14,
        "applied_changes": None,
        "instance": INSTANCE,
        "now": 1795608000.0,
    }
    arguments.update(overrides)
    return prometheus_text(outcome, **arguments)


def test_prometheus_reports_a_successful_run() -> None:
    outcome = outcome_of(EXAMPLE)
    text = prometheus(outcome, applied_changes=outcome.plan.changes)
    metrics = parse_prometheus(text)
    findings = {labels["rule"]: value for labels, value in metrics["snowcheck_findings"]}
    assert list(findings) == [rule.id for rule in RULES]
    assert findings["auth_failed_down"] == 2
    assert sum(findings.values()) == 10
    # mid.west (new), old.mid.account (acknowledged) and ghost.mid (new); not the resolved one,
    # the other source, or the issue of a MID Server.
    assert metrics["snowcheck_open_issues"] == [
        ({"instance": INSTANCE, "state": "new"}, 2),
        ({"instance": INSTANCE, "state": "acknowledged"}, 1),
    ]
    applied = {labels["action"]: value for labels, value in metrics["snowcheck_changes_applied"]}
    assert applied == {"resolve": 1, "update": 2, "create": 8}
    assert metrics["snowcheck_last_success_timestamp_seconds"] == [
        ({"instance": INSTANCE}, 1795608000.0)
    ]
    assert metrics["snowcheck_last_run_success"] == [({"instance": INSTANCE}, 1)]
    assert metrics["snowcheck_run_duration_seconds"] == [({"instance": INSTANCE}, 2.5)]
    assert metrics["snowcheck_http_requests"] == [({"instance": INSTANCE}, 14)]


def test_prometheus_dry_run_applies_nothing_and_counts_zero_findings(tmp_path: Path) -> None:
    metrics = parse_prometheus(prometheus(variant(tmp_path, no_role_users)))
    assert [value for _, value in metrics["snowcheck_findings"]] == [0] * len(RULES)
    assert [labels["action"] for labels, _ in metrics["snowcheck_changes_applied"]] == [
        action.value for action in Action
    ]
    assert all(value == 0 for _, value in metrics["snowcheck_changes_applied"])


def test_prometheus_failed_run_keeps_the_previous_success_time() -> None:
    metrics = parse_prometheus(
        prometheus(None, success=False, requests=3, previous_success=1795600000.5)
    )
    assert metrics["snowcheck_findings"] == []
    assert metrics["snowcheck_open_issues"] == []
    assert metrics["snowcheck_last_run_success"] == [({"instance": INSTANCE}, 0)]
    assert metrics["snowcheck_last_success_timestamp_seconds"] == [
        ({"instance": INSTANCE}, 1795600000.5)
    ]


def test_prometheus_failed_run_without_history_writes_no_success_time() -> None:
    text = prometheus(None, success=False)
    assert "snowcheck_last_success_timestamp_seconds" not in text
    assert parse_prometheus(text)["snowcheck_last_run_success"][0][1] == 0


def test_prometheus_partial_write_counts_only_the_applied_changes() -> None:
    outcome = outcome_of(EXAMPLE)
    done = outcome.plan.changes[:2]
    metrics = parse_prometheus(prometheus(outcome, success=False, applied_changes=done))
    applied = {labels["action"]: value for labels, value in metrics["snowcheck_changes_applied"]}
    assert applied == {"resolve": 1, "update": 1, "create": 0}


def test_prometheus_escapes_label_values() -> None:
    instance = 'http://127.0.0.1:8080/a"b\\c\nd'
    text = prometheus(outcome_of(EXAMPLE), instance=instance)
    assert 'instance="http://127.0.0.1:8080/a\\"b\\\\c\\nd"' in text
    metrics = parse_prometheus(text)
    assert all(
        labels["instance"] == instance for samples in metrics.values() for labels, _ in samples
    )


def test_read_last_success_finds_the_instance_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "snowcheck.prom"
    assert read_last_success(str(path), INSTANCE) is None
    path.write_text(prometheus(outcome_of(EXAMPLE), now=1795608000.25), encoding="utf-8")
    assert read_last_success(str(path), INSTANCE) == 1795608000.25
    assert read_last_success(str(path), "https://other.service-now.com") is None


# The atomic write ----------------------------------------------------------------------------


def test_write_textfile_replaces_the_file_world_readable(tmp_path: Path) -> None:
    target = tmp_path / "snowcheck.prom"
    target.write_text("old\n", encoding="utf-8")
    write_textfile_atomically(str(target), "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["snowcheck.prom"]


def test_write_textfile_failure_leaves_the_target_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snowcheck.prom"
    target.write_text("old\n", encoding="utf-8")

    def refuse(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ConfigError) as caught:
        write_textfile_atomically(str(target), "new\n")
    assert str(caught.value) == f"cannot write {target}: No space left on device"
    assert target.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["snowcheck.prom"]


def test_write_textfile_into_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "snowcheck.prom"
    with pytest.raises(ConfigError, match=r"^cannot write .*missing/snowcheck\.prom: "):
        write_textfile_atomically(str(target), "x\n")


# The log file --------------------------------------------------------------------------------

PASSWORD = "s3cr/t p@ss"


@pytest.fixture
def log(tmp_path: Path) -> Any:
    path = tmp_path / "snowcheck.log"
    handler = open_log_file(str(path), secrets=[PASSWORD, ""])
    logger = logging.getLogger("snowcheck.test_monitoring")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    yield logger, handler, path
    logger.removeHandler(handler)
    handler.close()


def test_log_line_is_utc_timestamp_name_level_message(log: Any) -> None:
    _, handler, path = log
    record = logging.makeLogRecord(
        {
            "name": "snowcheck",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "checked %s",
            "args": ("dev12345",),
            "created": datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC).timestamp(),
        }
    )
    handler.handle(record)
    handler.flush()
    assert (
        path.read_text(encoding="utf-8") == "2026-11-25T12:00:00Z snowcheck INFO checked dev12345\n"
    )


def test_log_redacts_authorization_and_secrets(log: Any) -> None:
    logger, handler, path = log
    logger.info("send: b'GET / HTTP/1.1\\r\\nAuthorization: Basic dXNlcjpwYXNz\\r\\nAccept: */*'")
    logger.info("headers %s", {"Accept": "application/json", "Authorization": "Basic abc=="})
    logger.warning("login as %s with %s", "mid.checker", PASSWORD)
    logger.debug("url ?password=%s", "s3cr%2Ft%20p%40ss")
    logger.info("a user named evil\nFORGED 2026-01-01T00:00:00Z snowcheck INFO x")
    try:
        raise ValueError(f"bad password {PASSWORD}")
    except ValueError:
        logger.exception("failed")
    handler.flush()
    text = path.read_text(encoding="utf-8")
    assert "dXNlcjpwYXNz" not in text and "abc==" not in text
    assert PASSWORD not in text and "s3cr%2Ft" not in text
    assert f"Authorization: {REDACTED}\\r\\nAccept: */*" in text
    assert f"'Authorization': '{REDACTED}'" in text
    assert f"login as mid.checker with {REDACTED}" in text
    assert f"bad password {REDACTED}" in text
    assert "Traceback (most recent call last)" in text
    lines = text.splitlines()
    assert not any(line.startswith("FORGED") for line in lines)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ snowcheck\.test_monitoring \w+ .*", lines[0]
    )


def test_log_survives_a_bad_format_string(log: Any) -> None:
    logger, handler, path = log
    logger.info("count %d", "not a number", PASSWORD)
    handler.flush()
    text = path.read_text(encoding="utf-8")
    assert "count %d" in text and PASSWORD not in text


def test_open_log_file_in_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "snowcheck.log"
    with pytest.raises(ConfigError, match=r"^cannot open log file .*: No such file or directory$"):
        open_log_file(str(path))


def test_redact_matches_header_forms() -> None:
    assert redact("authorization=Bearer tok123") == f"authorization={REDACTED}"
    assert redact('{"Authorization": "Basic eA=="}') == f'{{"Authorization": "{REDACTED}"}}'
    assert redact("nothing here", ["x" * 0]) == "nothing here"
