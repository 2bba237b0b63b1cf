"""``snowcheck watch`` against the emulator: rounds until the fix lands, the timeout, a fault.

The fix is made mid-watch the way an operator's would reach the instance: over the
emulator's control endpoints, from the watch's sleep between rounds (injected, so that
the fix lands at a known round and the tests do not wait out real intervals).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from snowcheck.commands import watch
from snowcheck.commands.watch import named_user, parse_duration
from snowcheck.emulator import Emulator
from snowcheck.errors import ConfigError
from snowcheck.locking import InstanceLock
from snowcheck.servicenow.instance import Instance

from .support import (
    USER,
    InProcess,
    Result,
    assert_clean_failure,
    control,
    issues,
    mid_id,
    now_text,
)

pytestmark = pytest.mark.e2e

FOLLOWED = "mid.west"
FOLLOWED_MID = "mid-west-1"


def fix(emu: Emulator) -> None:
    """mid.west's password fixed: its MID Server is Up and it logged in (over HTTP)."""
    control(
        emu, "POST", "tables/ecc_agent", [{"sys_id": mid_id(emu, FOLLOWED_MID), "status": "Up"}]
    )
    event = {"name": "login", "parm1": FOLLOWED, "parm2": "", "sys_created_on": "-0s"}
    control(emu, "POST", "tables/sysevent", [event])


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Record the watch's sleeps instead of sleeping."""
    recorded: list[float] = []
    defaults = watch.run_watch.__kwdefaults__
    assert defaults is not None and "sleep" in defaults
    monkeypatch.setitem(defaults, "sleep", recorded.append)
    yield recorded


def sleep_then(monkeypatch: pytest.MonkeyPatch, action: Callable[[int], None]) -> list[float]:
    """The watch's sleep replaced: ``action(round_just_done)`` runs instead of waiting."""
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        action(len(recorded))

    defaults = watch.run_watch.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "sleep", sleep)
    return recorded


def run(cli: InProcess, emu: Emulator, *args: str) -> Result:
    return cli.main(["watch", "--instance", emu.url, "--login", USER, *args])


def rounds(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.out.splitlines() if line.strip()]


def test_watch_ends_with_exit_0_when_the_fix_lands_mid_watch(
    emu: Emulator, cli: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = issues(emu)
    waited = sleep_then(monkeypatch, lambda done: fix(emu) if done == 2 else None)
    result = run(cli, emu, "--user", FOLLOWED, "--interval", "7s", "--format", "json")
    assert result.code == 0, result.err
    lines = rounds(result)
    assert [line["round"] for line in lines] == [1, 2, 3]
    assert waited == [7.0, 7.0]
    assert {f["user"] for f in lines[0]["findings"]} == {FOLLOWED}
    assert lines[1]["findings"] == lines[0]["findings"]
    assert lines[1]["changes"] == {"appeared": [], "resolved": []}
    assert lines[2]["findings"] == []
    assert lines[2]["changes"]["resolved"] == lines[1]["findings"]
    assert all(line["now"] == now_text(emu) and line["written"] is None for line in lines)
    assert issues(emu) == before  # without --apply nothing is written
    assert "clear: no finding left for mid.west" in result.err


def test_watch_lines_off_a_terminal(
    emu: Emulator, cli: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleep_then(monkeypatch, lambda done: fix(emu))
    result = run(cli, emu, "--user", FOLLOWED)
    assert result.code == 0, result.err
    now = now_text(emu)
    assert result.out.splitlines() == [
        f"round 1 {now}: 1 left (mid.west)",
        f"round 2 {now}: 0 left; 1 resolved (mid.west)",
    ]


def test_watch_exits_3_when_the_timeout_passes_with_findings_left(
    emu: Emulator, cli: InProcess
) -> None:
    # Real sleeps, short ones: the timeout is measured on the monotonic clock.
    result = run(cli, emu, "--interval", "0.2s", "--timeout", "0.5s", "--format", "json")
    assert result.code == 3, result.err
    lines = rounds(result)
    assert 3 <= len(lines) <= 5
    assert all(line["findings"] for line in lines)
    assert "timeout after 0.5s" in result.err


def test_watch_exits_1_when_a_round_cannot_complete(
    emu: Emulator, cli: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    defaults = Instance.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "sleep", waits.append)
    before = issues(emu)
    sleep_then(
        monkeypatch,
        lambda done: control(
            emu, "POST", "faults", {"kind": "status", "status": 503, "times": 100}
        ),
    )
    result = run(cli, emu, "--user", FOLLOWED, "--apply", "--no-lock", "--format", "json")
    assert_clean_failure(result, contains="503")
    assert len(rounds(result)) == 1  # round 1 ran; round 2 met the fault on every retry
    assert waits  # its reads were retried before it gave up
    after = issues(emu)
    # Round 1 wrote mid.west's changes; the failed round wrote nothing more.
    assert [row for row in after if FOLLOWED not in row["message"]] == [
        row for row in before if FOLLOWED not in row["message"]
    ]


def test_apply_with_user_writes_each_round_once_and_only_that_users_changes(
    emu: Emulator, cli: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = issues(emu)
    others = [row for row in before if FOLLOWED not in row["message"]]
    emu.clear_log()
    sleep_then(monkeypatch, lambda done: fix(emu) if done == 3 else None)
    result = run(cli, emu, "--user", FOLLOWED, "--apply", "--no-lock", "--format", "json")
    assert result.code == 0, result.err
    lines = rounds(result)
    assert len(lines) == 4
    for line in lines:
        assert line["written"]
        assert {named_user(change["message"]) for change in line["written"]} == {FOLLOWED}
    # With a 5-minute window mid.west's failed login lies outside: its issue becomes "no
    # login", updated each round until the fix lands, then resolved.
    assert [[c["action"] for c in line["written"]] for line in lines] == [
        ["resolve", "create"],
        ["update"],
        ["update"],
        ["resolve"],
    ]
    # One write request per round (the Batch API): each round's plan written once.
    writes = [entry for entry in emu.log if entry.method != "GET" and not entry.batch]
    assert [entry.path for entry in writes] == ["/api/now/v1/batch"] * 4
    items = [entry for entry in emu.log if entry.batch]
    assert len(items) == sum(len(line["written"]) for line in lines)
    assert [row for row in issues(emu) if FOLLOWED not in row["message"]] == others
    followed = sorted(
        (row["message"][:5], row["state"], row["count"])
        for row in issues(emu)
        if FOLLOWED in row["message"]
    )
    assert followed == [("Login", "resolved", "2"), ("User ", "resolved", "3")]


def test_apply_without_user_asks_force_to_resolve_with_a_short_window(
    emu: Emulator, cli: InProcess, sleeps: list[float]
) -> None:
    before = issues(emu)
    result = run(cli, emu, "--apply", "--no-lock")
    assert_clean_failure(result, contains="--force")
    assert issues(emu) == before
    assert not sleeps


def test_apply_writes_under_the_instance_lock(
    emu: Emulator, cli: InProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A round that finds the lock held (a cron run applying) writes nothing; the next does."""
    lock = InstanceLock(str(tmp_path / "watch.lock"))
    lock.__enter__()
    sleep_then(monkeypatch, lambda done: lock.__exit__(None, None, None))
    before = issues(emu)
    args = ("--user", FOLLOWED, "--apply", "--lock-file", str(tmp_path / "watch.lock"))
    result = run(cli, emu, *args, "--timeout", "1s", "--format", "json")
    lines = rounds(result)
    assert lines[0]["written"] is None
    assert "round 1 writes nothing" in result.err
    assert lines[1]["written"]
    assert issues(emu) != before


@pytest.mark.parametrize("option", ["--interval", "--timeout"])
@pytest.mark.parametrize("value", ["0", "soon", "-1s"])
def test_a_bad_duration_is_a_usage_error(
    emu: Emulator, cli: InProcess, option: str, value: str
) -> None:
    result = run(cli, emu, f"{option}={value}")
    assert result.code == 2
    assert option in result.err
    assert not emu.log  # refused before any request


def test_durations() -> None:
    assert parse_duration("30s", "--interval") == 30
    assert parse_duration("0.2s", "--interval") == pytest.approx(0.2)
    assert parse_duration("5m", "--timeout") == 300
    assert parse_duration("2", "--interval") == 2
    with pytest.raises(ConfigError):
        parse_duration("5d", "--timeout")


def test_quiet_says_it_with_the_exit_status_only(
    emu: Emulator, cli: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleep_then(monkeypatch, lambda done: fix(emu))
    result = run(cli, emu, "--user", FOLLOWED, "--quiet", "--window", "1m")
    assert (result.code, result.out, result.err) == (0, "", "")


def test_a_write_that_fails_ends_the_watch_with_exit_1(
    emu: Emulator, cli: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = Instance.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "sleep", lambda seconds: None)
    sleeps = sleep_then(monkeypatch, lambda done: None)
    control(emu, "POST", "faults", {"kind": "status", "status": 503, "method": "POST", "times": 99})
    result = run(cli, emu, "--user", FOLLOWED, "--apply", "--no-lock")
    assert_clean_failure(result, contains="ecc_agent_issue")
    assert "Write-back stopped part-way" in result.err
    assert not sleeps  # no second round after a failed write


def test_following_a_name_the_check_never_read_warns(emu: Emulator, cli: InProcess) -> None:
    result = run(cli, emu, "--user", "mid.wset", "--format", "json")
    assert result.code == 0  # nothing names it, so it is clear at once: hence the warning
    assert "mid.wset is neither a mid_server role holder" in result.err
    assert "mid.west is neither" not in run(cli, emu, "--user", "MID.West", "--timeout", "0.1s").err
