"""The fidelity case files (shared/fidelity/README.md) and how their plans are compared.

They are read from ``shared/fidelity/`` beside the clone when it is there
(``SNOWCHECK_FIDELITY_DIR`` points elsewhere), else from the copies in
``tests/fidelity_cases/``, so the tests run from a clean clone alone.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COPIES = Path(__file__).resolve().parent / "fidelity_cases"
SHARED = Path(os.environ.get("SNOWCHECK_FIDELITY_DIR") or ROOT.parent / "shared" / "fidelity")
CASES = SHARED if SHARED.is_dir() else COPIES

CASE_NAMES = sorted(path.stem for path in COPIES.glob("*.json"))
CHANGE_FIELDS = ("action", "sys_id", "message", "state", "count")
"""What a plan's change is compared on (sys_domain is the finding's, compared apart)."""


def case(name: str) -> dict[str, Any]:
    """One case file: about, decision, window, messages, snapshot, expected_changes."""
    document: dict[str, Any] = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    return document


def changes(listed: Iterable[Mapping[str, Any]]) -> Counter[tuple[tuple[str, Any], ...]]:
    """Changes as a multiset of their compared fields (a create's missing sys_id is None)."""
    return Counter(
        tuple((field, change.get(field)) for field in CHANGE_FIELDS) for change in listed
    )
