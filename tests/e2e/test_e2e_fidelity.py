"""The fidelity cases over real HTTP: the emulator filters as the instance's database does.

Each case's snapshot is served by the emulator; the live check, whose server-side filters
(``status=Down``, ``parm1IN...``, ``source=...^state!=resolved``) now see ``DOWN``, ``MID.X``
or ``miduserconnectivity`` rows as an instance would, plans the case's expected changes.
Applied, a second check plans only count updates.
"""

from __future__ import annotations

from typing import Any

import pytest
from fidelity import CASE_NAMES, case, changes

from snowcheck.emulator import Emulator

from .support import InProcess, start

pytestmark = pytest.mark.e2e


def _check(cli: InProcess, emu: Emulator, document: dict[str, Any], *extra: str) -> Any:
    result = cli(
        emu,
        "--format",
        "json",
        "--window",
        document["window"],
        "--messages",
        document["messages"],
        "--no-lock",
        *extra,
    )
    assert result.code == 0, result.err
    return result.json


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_against_the_emulator(name: str, cli: InProcess) -> None:
    document = case(name)
    emu = start(document["snapshot"])
    try:
        planned = _check(cli, emu, document)["changes"]
        assert changes(planned) == changes(document["expected_changes"]), document["about"]

        # --force: two cases hold no MID user at all, which the safety check questions.
        _check(cli, emu, document, "--apply", "--force")
        again = _check(cli, emu, document)["changes"]
        assert {change["action"] for change in again} <= {"update"}
        written = [
            change for change in document["expected_changes"] if change["action"] != "resolve"
        ]
        assert len(again) == len(written)
    finally:
        emu.stop()
