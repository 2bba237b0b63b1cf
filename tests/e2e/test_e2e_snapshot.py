"""``snowcheck snapshot`` against the emulator: the capture a check reads back offline.

A snapshot checked offline must say what a live check says at that moment (findings and
plan), after exactly the same requests; redacted, it still gives the same plan with the
names mapped and holds no original name, host or address; a failed read leaves no file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pseudonymise import scenarios

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.commands.live import live_check
from snowcheck.commands.snapshot import capture
from snowcheck.emulator import Emulator
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import Connection
from snowcheck.settings import CheckSettings

from .support import (
    PASSWORD,
    USER,
    InProcess,
    add_event,
    assert_clean_failure,
    control,
    demo_data,
    start,
)

pytestmark = pytest.mark.e2e

ADDRESS = "10.20.30.40"
SOURCE = "MIDUserConnectivity"


def _snapshot(cli: InProcess, emu: Emulator, path: Path, *args: str) -> Any:
    result = cli.main(["snapshot", "--instance", emu.url, "--user", USER, "-o", str(path), *args])
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return result


def _in_process(emu: Emulator, path: Path, **user: Any) -> tuple[Outcome, Outcome]:
    """A live dry run, and the offline check of a capture taken just before it."""
    settings_ = CheckSettings(window=timedelta(hours=4), source=SOURCE, messages="auto")
    connection = Connection(base_url=emu.url, user=USER, password=PASSWORD, verify=True)
    with Instance(connection) as instance:
        captured, _ = capture(instance, settings_, warn=lambda _: None)
        live = live_check(instance, settings_, apply=False, force=False, warn=lambda _: None)
    path.write_text(json.dumps(captured), encoding="utf-8")
    offline = assess(
        load_snapshot(str(path)),
        instance=emu.url,
        window=settings_.window,
        source=SOURCE,
        messages="auto",
    )
    return live.outcome, offline


def _offline(cli: InProcess, path: Path, *args: str) -> dict[str, Any]:
    result = cli.main(["check", "--snapshot", str(path), "--format", "json", *args])
    assert result.code == 0, result.err
    return result.json


def _requests(emu: Emulator) -> list[tuple[str, str, str]]:
    return sorted((entry.method, entry.path, entry.query) for entry in emu.log)


def test_a_snapshot_checked_offline_agrees_with_a_live_check(
    emu: Emulator, cli: InProcess, tmp_path: Path
) -> None:
    path = tmp_path / "capture.json"
    emu.clear_log()
    _snapshot(cli, emu, path)
    captured = _requests(emu)
    emu.clear_log()
    live = cli(emu, "--format", "json")
    assert live.code == 0, live.err
    # Exactly the reads of a check: same tables, filters, fields and window.
    assert captured == _requests(emu)
    assert all(method == "GET" for method, _, _ in captured)

    offline = _offline(cli, path)
    for key in ("now", "since", "window_seconds", "source", "findings", "changes"):
        assert offline[key] == live.json[key], key
    assert live.json["findings"]  # the demo has something to find

    document = json.loads(path.read_text(encoding="utf-8"))
    manifest = document["manifest"]
    assert manifest["instance"] == emu.url
    assert manifest["captured_at"] == document["now"] == live.json["now"]
    assert manifest["since"] == live.json["since"]
    assert manifest["window_seconds"] == 4 * 3600
    assert manifest["source"] == "MIDUserConnectivity"
    assert manifest["requests"] == len(captured)
    assert manifest["rows"] == {table: len(rows) for table, rows in document["tables"].items()}
    assert manifest["redacted"] is False
    assert manifest["snowcheck"]
    # load_snapshot accepts the manifest and reads the tables as written.
    assert load_snapshot(str(path)).tables == document["tables"]


def test_the_window_and_source_of_the_capture_are_the_checks(
    emu: Emulator, cli: InProcess, tmp_path: Path
) -> None:
    path = tmp_path / "capture.json"
    emu.clear_log()
    _snapshot(cli, emu, path, "--window", "5m")
    captured = _requests(emu)
    emu.clear_log()
    live = cli(emu, "--format", "json", "--window", "5m")
    assert captured == _requests(emu)
    offline = _offline(cli, path, "--window", "5m")
    assert (offline["findings"], offline["changes"]) == (
        live.json["findings"],
        live.json["changes"],
    )
    manifest = json.loads(path.read_text(encoding="utf-8"))["manifest"]
    assert manifest["window_seconds"] == 300


def test_without_output_the_snapshot_goes_to_stdout(emu: Emulator, cli: InProcess) -> None:
    result = cli.main(["snapshot", "--instance", emu.url, "--user", USER])
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert set(document) >= {"now", "tables", "manifest"}


def test_no_password_token_or_cookie_is_in_a_snapshot(
    emu: Emulator, cli: InProcess, tmp_path: Path
) -> None:
    plain, redacted = tmp_path / "plain.json", tmp_path / "redacted.json"
    _snapshot(cli, emu, plain)
    _snapshot(cli, emu, redacted, "--redact")
    for path in (plain, redacted):
        text = path.read_text(encoding="utf-8")
        assert PASSWORD.lower() not in text.lower()
        assert "Basic " not in text and "Bearer " not in text
        # No field that could hold one (messages may say "check password"; a flag such as
        # password_needs_reset holds true or false, nothing secret).
        for key, value in _fields(json.loads(text)):
            for word in ("password", "authorization", "cookie", "token", "session", "secret"):
                if word in key.lower():
                    assert value in ("true", "false", ""), (path.name, key)


def _fields(value: Any) -> list[tuple[str, Any]]:
    """Every (key, value) pair, at any depth."""
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in ((key, item), *_fields(item))]
    if isinstance(value, list):
        return [pair for item in value for pair in _fields(item)]
    return []


def _names(document: dict[str, Any]) -> set[str]:
    """Every user name, MID Server name and address the unredacted capture holds."""
    tables = document["tables"]
    names = {row["user_name"] for row in tables["sys_user"]}
    names |= {row["name"] for row in tables["ecc_agent"]}
    names |= {row["value"] for row in tables["ecc_agent_config"]}
    names |= {row["parm1"] for row in tables["sysevent"]}
    names |= {row["parm2"] for row in tables["sysevent"] if re.fullmatch(r"[\d.]+", row["parm2"])}
    return {name for name in names if name}


def test_redacted_snapshot_gives_the_same_plan_and_holds_no_original_name(
    emu: Emulator, cli: InProcess, tmp_path: Path
) -> None:
    add_event(emu, "login.failed", "mid.west", parm2=ADDRESS)
    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    plain, redacted = tmp_path / "plain.json", tmp_path / "redacted.json"
    _snapshot(cli, emu, plain)
    result = _snapshot(cli, emu, redacted, "--redact-key-file", str(key))
    assert "warning: redaction key" not in result.err

    original = json.loads(plain.read_text(encoding="utf-8"))
    text = redacted.read_text(encoding="utf-8")
    names = _names(original)
    assert {"mid.west", "mid-west-1", ADDRESS} <= names
    for name in (*names, "127.0.0.1", emu.url):
        assert name.lower() not in text.lower(), name
    manifest = json.loads(text)["manifest"]
    assert manifest["redacted"] is True
    assert manifest["redaction"]["key"] == "given"
    assert manifest["requests"] == json.loads(plain.read_text())["manifest"]["requests"]

    before, after = _offline(cli, plain), _offline(cli, redacted)
    # The same findings and plan with names mapped: rules, actions, states and counts agree.
    assert Counter(f["rule"] for f in after["findings"]) == Counter(
        f["rule"] for f in before["findings"]
    )

    def plan(document: dict[str, Any]) -> Counter[tuple[Any, ...]]:
        fields = ("action", "state", "count", "state_before", "count_before")
        return Counter(
            (*(c[field] for field in fields), c["sys_id"] if c["action"] != "create" else None)
            for c in document["changes"]
        )

    assert plan(after) == plan(before)
    # The same key gives the same pseudonyms: a second capture is identical.
    again = tmp_path / "again.json"
    _snapshot(cli, emu, again, "--redact-key-file", str(key))
    assert json.loads(again.read_text())["tables"] == json.loads(text)["tables"]


def test_a_failed_read_leaves_no_file(emu: Emulator, cli: InProcess, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    old = folder / "capture.json"
    old.write_text("earlier capture\n", encoding="utf-8")
    new = folder / "new.json"
    control(emu, "POST", "faults", {"kind": "status", "status": 403, "path": "/table/sysevent"})
    for path in (new, old):
        result = cli.main(["snapshot", "--instance", emu.url, "--user", USER, "-o", str(path)])
        assert_clean_failure(result, contains="sysevent")
        control(emu, "POST", "faults", {"kind": "status", "status": 403, "path": "/table/sysevent"})
    assert sorted(p.name for p in folder.iterdir()) == ["capture.json"]
    assert old.read_text(encoding="utf-8") == "earlier capture\n"


# -- randomized scenarios ------------------------------------------------------------------------


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    document=scenarios(),
    messages=st.sampled_from(["docs", "auto"]),
    window=st.sampled_from([timedelta(hours=4), timedelta(minutes=5)]),
)
def test_on_random_instances_a_snapshot_checked_offline_agrees_with_a_live_check(
    document: dict[str, Any], messages: str, window: timedelta, tmp_path: Path
) -> None:
    emu = start(document)
    settings_ = CheckSettings(window=window, source="MIDUserConnectivity", messages=messages)
    connection = Connection(base_url=emu.url, user=USER, password=PASSWORD, verify=True)
    try:
        with Instance(connection) as instance:
            captured, _ = capture(instance, settings_, warn=lambda _: None)
            requests = instance.requests_made
            live = live_check(instance, settings_, apply=False, force=False, warn=lambda _: None)
            assert instance.requests_made == 2 * requests == 2 * captured["manifest"]["requests"]
    finally:
        emu.stop()
    path = tmp_path / "random.json"
    path.write_text(json.dumps(captured), encoding="utf-8")
    offline = assess(
        load_snapshot(str(path)),
        instance=connection.base_url,
        window=window,
        source="MIDUserConnectivity",
        messages=messages,
    )
    assert offline.evaluation.findings == live.outcome.evaluation.findings
    assert offline.advice == live.outcome.advice
    assert offline.plan.changes == live.outcome.plan.changes
    payloads = [dict(change.payload) for change in offline.plan.changes]
    assert payloads == [dict(change.payload) for change in live.outcome.plan.changes]


def test_redaction_warnings_go_to_stderr(emu: Emulator, cli: InProcess, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"short")
    key.chmod(0o644)
    path = tmp_path / "redacted.json"
    result = _snapshot(cli, emu, path, "--redact-key-file", str(key))
    assert "readable by group or others" in result.err
    assert "holds 5 bytes" in result.err
    assert "short" not in path.read_text(encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8"))["manifest"]["redacted"] is True


def test_the_advisories_offline_are_the_live_ones(emu: Emulator, tmp_path: Path) -> None:
    live, offline = _in_process(emu, tmp_path / "capture.json")
    assert live.advice is not None and live.advice.advisories  # the demo shows some
    assert offline.advice == live.advice
    assert offline.evaluation.findings == live.evaluation.findings


def test_an_extra_read_denied_is_captured_with_its_reason(tmp_path: Path) -> None:
    data = demo_data()
    data["users"] = {USER: {"password": PASSWORD, "deny_read": ["sys_properties"]}}
    emu = start(data)
    try:
        live, offline = _in_process(emu, tmp_path / "capture.json")
    finally:
        emu.stop()
    document = json.loads((tmp_path / "capture.json").read_text(encoding="utf-8"))
    assert "sys_properties" in document["why_unread"]["sys_properties"]
    assert "403" in document["why_unread"]["sys_properties"]
    assert offline.advice == live.advice
    assert live.advice is not None and live.advice.skipped
