"""The fidelity cases: on each case file's snapshot, the CLI plans exactly its expected changes.

The case files come from ``shared/fidelity/`` beside the clone (``SNOWCHECK_FIDELITY_DIR``
to point elsewhere) when it is there, else from the copies in ``tests/fidelity_cases/``,
so the tests run from a clean clone alone. Each case runs as its README says:
``snowcheck check --snapshot FILE --format json --window W --messages M``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from snowcheck.cli import main
from snowcheck.compare import fold

ROOT = Path(__file__).resolve().parent.parent
COPIES = Path(__file__).resolve().parent / "fidelity_cases"
SHARED = Path(os.environ.get("SNOWCHECK_FIDELITY_DIR") or ROOT.parent / "shared" / "fidelity")
CASES = SHARED if SHARED.is_dir() else COPIES

CASE_NAMES = sorted(path.stem for path in COPIES.glob("*.json"))
CHANGE_FIELDS = ("action", "sys_id", "message", "state", "count")


def _case(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    return document


def _run(case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(case["snapshot"]), encoding="utf-8")
    argv = ["check", "--snapshot", str(snapshot), "--format", "json"]
    argv += ["--window", case["window"], "--messages", case["messages"]]
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(autouse=True)
def _no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the environment changes the check (a config file, a source)."""
    for name in list(os.environ):
        if name.startswith(("SNOWCHECK_", "SERVICENOW_", "SN_")):
            monkeypatch.delenv(name)


def test_there_are_twenty_one_cases() -> None:
    assert len(CASE_NAMES) == 21


def test_the_copies_are_the_shared_cases() -> None:
    """The copies in tests/ are byte for byte the shared ones, README included."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not here: the copies are all there is")
    shared = {path.name: path.read_bytes() for path in SHARED.iterdir() if path.is_file()}
    copies = {path.name: path.read_bytes() for path in COPIES.iterdir() if path.is_file()}
    assert sorted(copies) == sorted(shared)
    for name, content in shared.items():
        assert copies[name] == content, f"tests/fidelity_cases/{name} differs from {SHARED}"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = _case(name)
    document = _run(case, tmp_path, capsys)

    planned = Counter(
        tuple((field, change[field]) for field in CHANGE_FIELDS) for change in document["changes"]
    )
    expected = Counter(
        tuple((field, change.get(field)) for field in CHANGE_FIELDS)
        for change in case["expected_changes"]
    )
    assert planned == expected, case["about"]

    # The domain written is the one of the finding behind the change (same issue identity).
    domains = {fold(finding["message"]): finding["domain"] for finding in document["findings"]}
    for change in case["expected_changes"]:
        if "sys_domain" in change:
            assert domains[fold(change["message"])] == change["sys_domain"], change["message"]


def test_a_case_through_the_installed_command(tmp_path: Path) -> None:
    """The same check through ``python -m snowcheck``, as cron would run it."""
    case = _case("case-config-vs-user")
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(case["snapshot"]), encoding="utf-8")
    argv = ["check", "--snapshot", str(snapshot), "--format", "json"]
    argv += ["--window", case["window"], "--messages", case["messages"]]
    env = {name: value for name, value in os.environ.items() if not name.startswith("SNOWCHECK_")}
    done = subprocess.run(
        [sys.executable, "-m", "snowcheck", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    messages = sorted(change["message"] for change in json.loads(done.stdout)["changes"])
    assert messages == sorted(change["message"] for change in case["expected_changes"])
