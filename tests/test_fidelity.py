"""The fidelity cases: on each case file's snapshot, the CLI plans exactly its expected changes.

Each case runs as its README says:
``snowcheck check --snapshot FILE --format json --window W --messages M``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fidelity import CASE_NAMES, COPIES, SHARED, case, changes

from snowcheck.cli import main
from snowcheck.compare import fold


def _run(document: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document["snapshot"]), encoding="utf-8")
    argv = ["check", "--snapshot", str(snapshot), "--format", "json"]
    argv += ["--window", document["window"], "--messages", document["messages"]]
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
    document = case(name)
    planned = _run(document, tmp_path, capsys)
    assert changes(planned["changes"]) == changes(document["expected_changes"]), document["about"]

    # The domain written is the one of the finding behind the change (same issue identity).
    domains = {fold(finding["message"]): finding["domain"] for finding in planned["findings"]}
    for change in document["expected_changes"]:
        if "sys_domain" in change:
            assert domains[fold(change["message"])] == change["sys_domain"], change["message"]


def test_a_case_through_the_installed_command(tmp_path: Path) -> None:
    """The same check through ``python -m snowcheck``, as cron would run it."""
    document = case("case-config-vs-user")
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document["snapshot"]), encoding="utf-8")
    argv = ["check", "--snapshot", str(snapshot), "--format", "json"]
    argv += ["--window", document["window"], "--messages", document["messages"]]
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
    planned = json.loads(done.stdout)["changes"]
    assert changes(planned) == changes(document["expected_changes"])
