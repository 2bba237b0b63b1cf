"""Redaction of a snapshot: the check on the redacted file says what it said on the original.

The central property: for any scenario, checking the pseudonymised snapshot gives the
findings and the plan of the original with only the names mapped to their pseudonyms.
Then: no original name is left in the file, the key decides the pseudonyms, and what
redaction cannot vouch for is reported.
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import (
    AUTHZ,
    FAILED,
    INSIDE,
    LOGIN,
    MID_ROLES,
    NOW_TEXT,
    OUTSIDE,
    SOURCE,
    USERNAME_PARAM,
    FakeInstance,
    issue_row,
    sys_id,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import user_names

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.emulator import Scenario
from snowcheck.errors import ConfigError, DataError
from snowcheck.messages import DOCS, KINGSTON
from snowcheck.pseudonymise import (
    BEST_EFFORT,
    Pseudonymiser,
    pseudonymise,
)
from snowcheck.pseudonyms import read_key_file
from snowcheck.records import ISSUE_TABLE, Snapshot, format_time, parse_time
from snowcheck.rules import RULES, parse_window

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "examples" / "snapshot.json"
DEMO = ROOT / "config" / "examples" / "demo-scenario.json"
FIDELITY = sorted(Path("/work/shared/fidelity").glob("*.json"))
KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def _check(
    document: Mapping[str, Any], messages: str = "docs", window: timedelta = timedelta(hours=4)
) -> Outcome:
    snapshot = Snapshot(parse_time(document["now"]), document["tables"], "snapshot")
    return assess(snapshot, instance="snapshot", window=window, source=SOURCE, messages=messages)


def _findings(
    outcome: Outcome, user: Callable[[str], str], mid: Callable[[str], str]
) -> Counter[tuple[Any, ...]]:
    """The findings with names mapped, each message rendered for the mapped name."""
    evaluation = outcome.evaluation
    return Counter(
        (
            finding.rule,
            user(finding.user),
            evaluation.templates.render(
                finding.rule, user(finding.user), evaluation.sets.down_counts.get(finding.user, 1)
            ),
            finding.domain,
            tuple(sorted(map(mid, finding.down_mid_servers))),
            tuple(
                note.replace(f"user {finding.user} cannot", f"user {user(finding.user)} cannot")
                for note in finding.notes
            ),
        )
        for finding in evaluation.findings
    )


def _changes(outcome: Outcome, message: Callable[[str, str | None], str]) -> Counter[Any]:
    return Counter(
        (
            change.action,
            change.sys_id,
            message(change.message, change.sys_id),
            change.state_before,
            change.count_before,
            change.state,
            change.count,
            change.payload.get("sys_domain"),
        )
        for change in outcome.plan.changes
    )


def assert_commutes(
    document: Mapping[str, Any], *, messages: str = "docs", window: timedelta = timedelta(hours=4)
) -> None:
    """Checking the redacted document gives the original's findings and plan, names mapped."""
    original = copy.deepcopy(document)
    names = Pseudonymiser(KEY)
    redacted = pseudonymise(document, KEY).document
    assert document == original  # the input is left alone

    before = _check(document, messages, window)
    after = _check(redacted, messages, window)
    assert after.evaluation.templates.name == before.evaluation.templates.name
    identity = _findings(after, lambda name: name, lambda name: name)
    assert identity == _findings(before, names.user, names.mid_server)

    folded = Counter(f.message.rstrip(" ").lower() for f in before.evaluation.findings)
    if max(folded.values(), default=1) > 1:
        # Two findings whose messages the instance compares as equal (fidelity README,
        # section 4, "not decided"): which spelling is written first follows the order of
        # the users, and pseudonyms do not keep that order.
        return
    # Creates and updates carry a finding's message; a resolve, the stored message.
    mapped = {
        finding.message: after.evaluation.templates.render(
            finding.rule,
            names.user(finding.user),
            before.evaluation.sets.down_counts.get(finding.user, 1),
        )
        for finding in before.evaluation.findings
    }
    stored = {row["sys_id"]: row["message"] for row in redacted["tables"].get(ISSUE_TABLE, [])}

    def expected(message: str, record: str | None) -> str:
        return mapped[message] if message in mapped else stored[record or ""]

    assert _changes(after, lambda message, _: message) == _changes(before, expected)
    assert after.plan.open_issues == before.plan.open_issues
    assert len(after.plan.warnings) == len(before.plan.warnings)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for key, item in value.items() for s in (key, *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


# -- scenarios --------------------------------------------------------------------------------

STATUSES = ("Down", "Down", "Up", "DOWN", "Paused")
EVENT_NAMES = (LOGIN, FAILED, AUTHZ, AUTHZ, "Login", "login.failed ")
WHEN = (INSIDE, INSIDE, OUTSIDE, "2026-11-25 11:59:59", "2026-11-25 12:30:00")
ADDRESSES = ("", "10.1.2.3", "192.168.0.7, 10.0.0.9", "2001:db8::17", "fe80::1%eth0")
MISSING_ROLES = ("", "soap_script", "soap_query,mid_server")
RULE_IDS = tuple(rule.id for rule in RULES)


def _variants(name: str) -> list[str]:
    """A name and the spellings the instance confuses with it: case and trailing spaces."""
    return list(dict.fromkeys([name, name.upper(), name.title(), name + " ", name.lower() + "  "]))


@st.composite
def scenarios(draw: st.DrawFn, names: st.SearchStrategy[str] = user_names) -> dict[str, Any]:
    """A snapshot document: near-miss user names, MID Servers, events and open issues."""
    bases = draw(st.lists(names, min_size=1, max_size=3, unique=True), label="bases")
    spellings = [spelling for base in bases for spelling in _variants(base)]
    pick = st.sampled_from(spellings)
    instance = FakeInstance()
    for user_name in draw(st.lists(pick, max_size=4, unique=True), label="users"):
        instance.user(
            user_name,
            roles=draw(st.sampled_from([MID_ROLES, MID_ROLES, ("mid_server",), ("soap",), ()])),
            active=draw(st.booleans()),
            locked_out=draw(st.booleans()),
            domain=draw(st.sampled_from(["global", "acme"])),
            link=draw(st.booleans()),
        )
    mids = draw(
        st.lists(
            st.tuples(names.filter(bool), st.sampled_from(STATUSES)),
            max_size=4,
            unique_by=lambda mid: mid[0],
        ),
        label="mids",
    )
    for mid_name, status in mids:
        instance.mid(mid_name, status)
    mid_names = [mid_name for mid_name, _ in mids]
    for _ in range(draw(st.integers(0, 6))):
        instance.associate(
            draw(pick),
            draw(st.sampled_from([*mid_names, None])),
            param_name=draw(st.sampled_from([USERNAME_PARAM, USERNAME_PARAM, "url"])),
            domain=draw(st.sampled_from(["global", "acme"])),
            link=draw(st.booleans()),
        )
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.sampled_from(EVENT_NAMES))
        # A failed authorization carries the missing roles; the others, the client's address.
        parm2 = draw(st.sampled_from(MISSING_ROLES if name == AUTHZ else ADDRESSES))
        instance.event(name, draw(pick), draw(st.sampled_from(WHEN)), parm2=parm2)
    # Issues: some carry a message the check will find again (to be updated), others not.
    found = [
        f.message for f in _check({"now": NOW_TEXT, "tables": instance.tables}).evaluation.findings
    ]
    rows = []
    for index in range(draw(st.integers(0, 5))):
        templates = draw(st.sampled_from([DOCS, KINGSTON]))
        message = templates.render(
            draw(st.sampled_from(RULE_IDS)), draw(pick), draw(st.integers(1, 3))
        )
        message = draw(st.sampled_from([*found, *found, message]))
        message = draw(
            st.sampled_from(
                [message, message, message.upper(), message + " ", "ECC queue is backing up"]
            )
        )
        rows.append(
            issue_row(
                message,
                state=draw(st.sampled_from(["new", "acknowledged", "resolved"])),
                count=str(draw(st.integers(0, 4))),
                source=draw(st.sampled_from([SOURCE, SOURCE, "ECCQueueMonitor"])),
                mid_server=draw(st.sampled_from(["", "", sys_id("mid", "x")])),
                updated_on=draw(st.sampled_from(["2026-11-25 08:00:00", "2026-11-25 09:00:00"])),
                record=sys_id("issue", str(index)),
            )
        )
    instance.tables[ISSUE_TABLE] = rows
    return {"now": NOW_TEXT, "tables": instance.tables}


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    document=scenarios(),
    messages=st.sampled_from(["docs", "kingston", "auto"]),
    window=st.sampled_from([timedelta(hours=4), timedelta(minutes=5), timedelta(hours=24)]),
)
def test_checking_a_redacted_snapshot_gives_the_same_findings_and_plan(
    document: dict[str, Any], messages: str, window: timedelta
) -> None:
    assert_commutes(document, messages=messages, window=window)


# Names that stand out, so that finding one in the redacted file means it leaked.
distinct_names = st.from_regex(r"[a-z]{3,6}\.[a-z]{3,6}[0-9]", fullmatch=True)


@PROPERTY
@given(document=scenarios(distinct_names))
def test_no_original_name_host_or_address_is_left_in_a_redacted_file(
    document: dict[str, Any],
) -> None:
    tables = document["tables"]
    originals = {row["user_name"] for row in tables["sys_user"]}
    originals |= {row["parm1"] for row in tables["sysevent"]}
    originals |= {row["value"] for row in tables["ecc_agent_config"]}
    originals |= {row["name"] for row in tables["ecc_agent"]}
    originals |= {"example.service-now.com"}
    originals |= {part.strip() for text in ADDRESSES for part in text.split(",") if part}
    redacted = pseudonymise(document, KEY)
    text = json.dumps(redacted.document, ensure_ascii=False).lower()
    for original in originals:
        core = original.rstrip(" ").lower()
        assert core not in text, original


def test_the_example_snapshot_commutes_and_keeps_nothing_to_hide(tmp_path: Path) -> None:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for messages in ("docs", "kingston", "auto"):
        assert_commutes(document, messages=messages)
    redacted = pseudonymise(document, KEY, instance="https://acme.service-now.com")
    text = json.dumps(redacted.document)
    tables = document["tables"]
    names = [row["user_name"] for row in tables["sys_user"]]
    names += [row["name"] for row in tables["ecc_agent"]]
    names += ["ghost.mid", "example.service-now.com", "acme.service-now.com", "acme"]
    leaked = [name for name in names if name in text]
    # "acme" stays: it is a domain, and domains are kept.
    assert leaked == ["acme"]
    assert redacted.warnings == ()
    # check --snapshot reads the redacted file as it is.
    path = tmp_path / "redacted.json"
    path.write_text(json.dumps(redacted.document), encoding="utf-8")
    assert load_snapshot(str(path)).tables == redacted.document["tables"]
    assert redacted.instance is not None and "acme" not in redacted.instance
    assert redacted.instance.startswith("https://host-")


def test_the_demo_scenario_commutes() -> None:
    spec = json.loads(DEMO.read_text(encoding="utf-8"))
    scenario = Scenario.from_dict({**spec, "now": NOW_TEXT})
    document = {"now": NOW_TEXT, "tables": {t: list(rows) for t, rows in scenario.tables.items()}}
    assert_commutes(document, messages="auto")
    assert_commutes(document, messages="docs", window=timedelta(minutes=5))


@pytest.mark.skipif(not FIDELITY, reason="the shared fidelity cases are not on this machine")
@pytest.mark.parametrize("case", FIDELITY, ids=lambda path: path.stem)
def test_every_fidelity_case_commutes(case: Path) -> None:
    spec = json.loads(case.read_text(encoding="utf-8"))
    assert_commutes(
        spec["snapshot"], messages=spec["messages"], window=parse_window(spec["window"])
    )


# -- the pseudonyms -----------------------------------------------------------------------------

NEAR_MISSES = (
    "mid.svc",
    "MID.Svc",
    "MID.SVC",
    "mid.svc ",
    "mid.svc  ",
    "MID.Svc ",
    " mid.svc",
    "mid.svc\t",
    "mid.sv",
    "k",
    "K",
    "\u212a",  # KELVIN SIGN: lowercases to k
    "İx",
    "i̇x",
    "ß",
    "SS",
    "",
    " ",
    "  ",
)


@pytest.mark.parametrize("first", NEAR_MISSES)
@pytest.mark.parametrize("second", NEAR_MISSES)
def test_two_names_compare_as_their_pseudonyms_do(first: str, second: str) -> None:
    names = Pseudonymiser(KEY)
    one, two = names.user(first), names.user(second)

    def folded(name: str) -> str:
        return name.rstrip(" ").lower()

    assert (one == two) == (first == second)
    assert (folded(one) == folded(two)) == (folded(first) == folded(second))
    assert (one.lower() == two.lower()) == (first.lower() == second.lower())


def test_a_pseudonym_keeps_case_pattern_and_trailing_spaces() -> None:
    names = Pseudonymiser(KEY)
    plain = names.user("mid.svc")
    assert plain.isalpha() and plain.islower() and len(plain) == 16
    assert names.user("MID.Svc") == plain[:3].upper() + plain[3] + plain[4].upper() + plain[5:]
    assert names.user("mid.svc  ") == plain + "  "
    assert names.user("") == ""
    assert len(names.user("x" * 40)) == 40  # long names keep their length, so stay distinct
    long = "Ü" * 300  # beyond one digest of case bits
    assert names.user(long) != names.user(long.lower())
    assert names.user(long).lower() == names.user(long.lower())


def test_the_same_key_gives_the_same_file_and_another_key_other_pseudonyms() -> None:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    first = pseudonymise(document, KEY).document
    assert pseudonymise(document, KEY).document == first
    other = pseudonymise(document, OTHER_KEY).document
    assert other != first
    for original in ("mid.east", "old.mid.account"):
        assert Pseudonymiser(KEY).user(original) != Pseudonymiser(OTHER_KEY).user(original)
    assert Pseudonymiser(KEY).mid_server("mid-east-1") != Pseudonymiser(OTHER_KEY).mid_server(
        "mid-east-1"
    )
    # No key: a random one, so two redactions cannot be linked.
    assert pseudonymise(document).document != pseudonymise(document).document
    assert pseudonymise(document).manifest["redaction"]["key"] == "random, not kept"


def test_a_name_gets_one_pseudonym_in_every_table_and_message() -> None:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    tables = pseudonymise(document, KEY).document["tables"]
    mid_east = Pseudonymiser(KEY).user("mid.east")
    assert mid_east in [row["user_name"] for row in tables["sys_user"]]
    assert mid_east in [row["value"] for row in tables["ecc_agent_config"]]
    assert mid_east in [row["parm1"] for row in tables["sysevent"]]
    assert any(f"User {mid_east} associated" in row["message"] for row in tables[ISSUE_TABLE])


# -- what is dropped, replaced and reported -----------------------------------------------------


def _one_issue_document(message: str, **extra: Any) -> dict[str, Any]:
    row = issue_row(message, record=sys_id("issue", "1"))
    return {"now": NOW_TEXT, "tables": {ISSUE_TABLE: [{**row, **extra}]}}


def test_secrets_and_unknown_fields_are_dropped_and_reported() -> None:
    instance = FakeInstance().user("mid.east")
    instance.tables["sys_user"][0].update(
        {"user_password": "hunter2", "email": "jane@example.com", "name": "Jane Doe"}
    )
    instance.associate("s3cret-value", None, param_name="mid.instance.password")
    document = {
        "now": NOW_TEXT,
        "tables": instance.tables,
        "session_cookie": "glide_session_store=abc",
        "manifest": {"instance": "https://acme.service-now.com/", "requests": 6},
    }
    redaction = pseudonymise(document, KEY)
    text = json.dumps(redaction.document)
    for secret in (
        "hunter2",
        "jane@example.com",
        "Jane Doe",
        "s3cret-value",
        "glide_session",
        "acme",
    ):
        assert secret not in text
    assert set(redaction.document) == {"now", "tables", "manifest"}
    warnings = "\n".join(redaction.warnings)
    assert "'user_password' of sys_user (1 row)" in warnings
    assert "'email' of sys_user (1 row)" in warnings
    assert "'session_cookie' of the document" in warnings
    assert "'mid.instance.password' looks secret and was emptied" in warnings


def test_the_manifest_says_redaction_is_best_effort() -> None:
    document = {
        "now": NOW_TEXT,
        "tables": {},
        "manifest": {"instance": "https://acme.service-now.com", "requests": 6},
    }
    redaction = pseudonymise(document, KEY, instance="https://acme.service-now.com")
    manifest = redaction.document["manifest"]
    assert manifest["redacted"] is True
    assert manifest["redaction"]["note"] == BEST_EFFORT
    assert "review the file before sharing" in BEST_EFFORT
    assert manifest["requests"] == 6
    assert manifest["instance"] == redaction.instance
    assert redaction.manifest == {"redacted": True, "redaction": manifest["redaction"]}


@pytest.mark.parametrize(
    ("message", "reported"),
    [
        pytest.param(
            "User mid.east is associated with 1 down MID Server. No login attempts within "
            "reporting period.",
            None,
            id="a-template-message-is-parsed",
        ),
        pytest.param(
            "USER MID.EAST IS ASSOCIATED WITH 1 DOWN MID SERVER. NO LOGIN ATTEMPTS WITHIN "
            "REPORTING PERIOD.  ",
            None,
            id="case-and-trailing-spaces-as-the-instance-matches",
        ),
        pytest.param(
            "Custom note about mid.east written by hand",
            "found by search, review it",
            id="no-template-name-found-by-search",
        ),
        pytest.param(
            "Custom note about somebody",
            "no user name was found in it; review it",
            id="no-template-no-name",
        ),
    ],
)
def test_a_message_whose_name_cannot_be_found_is_reported(
    message: str, reported: str | None
) -> None:
    document = _one_issue_document(message)
    document["tables"]["sys_user"] = FakeInstance().user("mid.east").tables["sys_user"]
    redaction = pseudonymise(document, KEY)
    (row,) = redaction.document["tables"][ISSUE_TABLE]
    assert "mid.east" not in row["message"].lower()
    if reported is None:
        assert redaction.warnings == ()
        assert Pseudonymiser(KEY).user(message.split(" ")[1]) in row["message"]
    else:
        (warning,) = redaction.warnings
        assert warning.startswith(f"ecc_agent_issue record {sys_id('issue', '1')}: ")
        assert reported in warning
        assert "mid.east" not in warning and "somebody" not in warning


def test_messages_of_other_sources_are_searched_silently() -> None:
    document = _one_issue_document(
        "MID Server mid-east-1 queue backing up", source="ECCQueueMonitor"
    )
    document["tables"]["ecc_agent"] = FakeInstance().mid("mid-east-1").tables["ecc_agent"]
    redaction = pseudonymise(document, KEY)
    (row,) = redaction.document["tables"][ISSUE_TABLE]
    assert (
        row["message"]
        == f"MID Server {Pseudonymiser(KEY).mid_server('mid-east-1')} queue backing up"
    )
    assert redaction.warnings == ()


@pytest.mark.parametrize(
    ("name", "parm2", "kept"),
    [
        (AUTHZ, "soap_query,mid_server", True),
        (LOGIN, "", True),
        (LOGIN, "10.1.2.3", False),
        (FAILED, "2001:db8::17", False),
        (FAILED, "something 10.1.2.3 else", False),
    ],
)
def test_addresses_in_parm2_are_replaced_and_missing_roles_kept(
    name: str, parm2: str, kept: bool
) -> None:
    instance = FakeInstance().event(name, "mid.east", parm2=parm2)
    document = {"now": NOW_TEXT, "tables": instance.tables}
    (row,) = pseudonymise(document, KEY).document["tables"]["sysevent"]
    assert (row["parm2"] == parm2) is kept
    if not kept:
        assert "10.1.2.3" not in row["parm2"] and "2001" not in row["parm2"]
    assert row["name"] == name and row["sys_created_on"] == INSIDE


def test_a_mid_server_host_and_address_and_reference_display_values_are_replaced() -> None:
    mid = {
        "sys_id": sys_id("mid", "1"),
        "name": "mid-east-1",
        "status": "Down",
        "last_refreshed": format_time(parse_time(NOW_TEXT)),
        "host_name": "midhost01.corp.example",
        "ip_address": "10.20.30.40",
    }
    issue = issue_row(
        "ECC queue",
        mid_server={
            "link": "https://acme.service-now.com/x",
            "value": sys_id("mid", "1"),
            "display_value": "mid-east-1",
        },
    )
    document = {"now": NOW_TEXT, "tables": {"ecc_agent": [mid], ISSUE_TABLE: [issue]}}
    text = json.dumps(pseudonymise(document, KEY).document)
    for original in ("mid-east-1", "midhost01", "10.20.30.40", "acme"):
        assert original not in text
    assert sys_id("mid", "1") in text


def test_a_document_that_is_not_a_snapshot_is_a_data_error() -> None:
    with pytest.raises(DataError):
        pseudonymise({"now": NOW_TEXT, "tables": {"sys_users": []}}, KEY)
    with pytest.raises(DataError):
        pseudonymise(
            {"now": NOW_TEXT, "tables": {"sys_user": [{"user_name": 7, "sys_id": "x"}]}}, KEY
        )


# -- key files ----------------------------------------------------------------------------------


def test_a_key_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"x" * 32 + b"\n")
    path.chmod(0o600)
    assert read_key_file(str(path)) == (b"x" * 32, [])


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_key_file_others_may_read_or_a_short_key_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"short")
    path.chmod(0o644)
    key, warnings = read_key_file(str(path))
    assert key == b"short"
    assert "readable by group or others (mode 644): run chmod 600" in warnings[0]
    assert "holds 5 bytes" in warnings[1]


@pytest.mark.parametrize("content", [None, b"", b"\n"])
def test_a_missing_or_empty_key_file_is_a_config_error(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="redaction key file"):
        read_key_file(str(path))
