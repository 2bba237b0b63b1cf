"""check --out PLAN, then snowcheck apply PLAN: exactly that plan, or nothing if it went stale."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from cli_support import runner, writes

from snowcheck.emulator import Emulator
from snowcheck.locking import default_lock_path

run = runner(width=200)


def plan(demo: Emulator, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "plan.json"
    code, _, err = run("check", "--instance", demo.url, "--user", "admin", "--out", str(path))
    assert code == 0, err
    assert writes(demo) == []
    return path, json.loads(path.read_text())


def apply(demo: Emulator, path: Path, *more: str) -> tuple[int, str, str]:
    demo.clear_log()
    return run("apply", str(path), "--instance", demo.url, "--user", "admin", *more)


def test_the_plan_holds_the_before_state_of_every_issue_it_touches(
    demo: Emulator, tmp_path: Path
) -> None:
    _, document = plan(demo, tmp_path)
    assert document["instance"] == demo.url
    assert document["source"] == "MIDUserConnectivity"
    touched = [c["sys_id"] for c in document["changes"] if c["action"] != "create"]
    assert touched and set(touched) == set(document["before"])
    rows = {row["sys_id"]: row for row in demo.rows("ecc_agent_issue")}
    for sys_id, before in document["before"].items():
        assert before == {
            "state": rows[sys_id]["state"],
            "count": str(rows[sys_id]["count"]),
            "sys_updated_on": rows[sys_id]["sys_updated_on"],
        }
    creates = [c for c in document["changes"] if c["action"] == "create"]
    assert all(c["payload"]["message"] == c["message"] for c in creates)


def test_apply_writes_exactly_the_plan(demo: Emulator, tmp_path: Path) -> None:
    path, document = plan(demo, tmp_path)
    code, out, err = apply(demo, path)
    assert code == 0, err
    assert "applied 11 changes to ecc_agent_issue" in out
    patched = {entry.path.rsplit("/", 1)[-1] for entry in writes(demo) if entry.method == "PATCH"}
    batched = any(entry.path.endswith("/batch") for entry in writes(demo))
    assert batched or patched == set(document["before"])
    # The same check now finds nothing more to create.
    code, out, _ = run("check", "--instance", demo.url, "--user", "admin", "--format", "json")
    actions = [change["action"] for change in json.loads(out)["changes"]]
    assert "create" not in actions and "resolve" not in actions


def test_a_stale_plan_is_refused_and_nothing_is_written(demo: Emulator, tmp_path: Path) -> None:
    path, _ = plan(demo, tmp_path)
    # Meanwhile the cron run applies its own plan: the issues the saved plan touches change.
    code, _, err = run("check", "--instance", demo.url, "--user", "admin", "--apply")
    assert code == 0, err
    after_cron = demo.rows("ecc_agent_issue")
    code, out, err = apply(demo, path)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "refusing a stale plan: issue " in err and "changed since the plan was made" in err
    assert "nothing was written" in err
    assert writes(demo) == []
    assert demo.rows("ecc_agent_issue") == after_cron


def test_a_tampered_plan_file_is_a_usage_error(demo: Emulator, tmp_path: Path) -> None:
    path, document = plan(demo, tmp_path)
    document["before"] = {}
    path.write_text(json.dumps(document))
    code, _, err = apply(demo, path)
    assert code == 2
    assert "lacks the before-state of issue" in err
    assert writes(demo) == []


def test_a_plan_for_another_instance_is_refused(demo: Emulator, tmp_path: Path) -> None:
    path, document = plan(demo, tmp_path)
    document["instance"] = "https://elsewhere.service-now.com"
    path.write_text(json.dumps(document))
    code, _, err = apply(demo, path)
    assert code == 1
    assert "was made for https://elsewhere.service-now.com" in err
    assert writes(demo) == []


def test_apply_takes_the_same_guards(demo: Emulator, tmp_path: Path) -> None:
    path, _ = plan(demo, tmp_path)
    code, _, err = apply(demo, path, "--max-changes", "3")
    assert code == 1
    assert "more than --max-changes 3" in err
    assert writes(demo) == []
    code, _, err = apply(demo, path, "--max-changes", "3", "--force")
    assert code == 0, err


def test_out_with_apply_or_a_snapshot_is_a_usage_error(demo: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    code, _, err = run(
        "check", "--instance", demo.url, "--user", "admin", "--apply", "--out", str(path)
    )
    assert code == 2 and "--out" in err
    assert not path.exists()
    code, _, _ = apply(demo, tmp_path / "missing.json")
    assert code == 2


def test_apply_skips_while_another_run_holds_the_lock(demo: Emulator, tmp_path: Path) -> None:
    path, _ = plan(demo, tmp_path)
    lock = default_lock_path(demo.url, os.environ)
    Path(lock).parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, out, err = apply(demo, path)
    assert code == 0
    assert out == ""
    assert "error" not in err and "holds" in err
    assert writes(demo) == []
