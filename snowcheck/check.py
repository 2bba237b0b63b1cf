"""One check, from a snapshot to findings and a plan; no network, no printing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from snowcheck.advisories import Advice, advise
from snowcheck.errors import ConfigError, DataError, SnapshotError
from snowcheck.messages import choose
from snowcheck.plan import Plan, build_plan, ours_and_open
from snowcheck.records import (
    EXTRA_READS,
    OPTIONAL_TABLES,
    PROPERTIES,
    PROPERTY_TABLE,
    TABLES,
    Inventory,
    Snapshot,
    parse_time,
)
from snowcheck.rules import Evaluation, evaluate


@dataclass(frozen=True)
class Outcome:
    """Everything one check produced, for rendering and applying."""

    instance: str
    """The instance URL, or the snapshot file, the check read."""
    source: str
    snapshot: Snapshot
    inventory: Inventory
    evaluation: Evaluation
    plan: Plan
    advice: Advice | None = None
    """The advisories beside the job's findings; None when they were not asked for
    (``--no-advisories``). Never written to ecc_agent_issue."""


def assess(
    snapshot: Snapshot,
    *,
    instance: str,
    window: timedelta,
    source: str,
    messages: str,
    advisories: bool = True,
) -> Outcome:
    """Convert the snapshot's rows, run the rules and diff the findings against open issues."""
    inventory = Inventory.from_tables(snapshot.tables)
    open_messages = [issue.message for issue in inventory.issues if ours_and_open(issue, source)]
    templates = choose(messages, open_messages)
    evaluation = evaluate(inventory, now=snapshot.now, window=window, templates=templates)
    plan = build_plan(evaluation.findings, inventory.issues, source=source, now=snapshot.now)
    advice = None
    if advisories:
        # The pull says why an extra read it tried is missing (an HTTP 403, say).
        advice = advise(
            inventory,
            now=snapshot.now,
            extra_reads=snapshot.extra_reads,
            why_unread=snapshot.why_unread,
        )
    return Outcome(instance, source, snapshot, inventory, evaluation, plan, advice)


def load_snapshot(path: str) -> Snapshot:
    """Read a snapshot file: {"now": "YYYY-MM-DD HH:MM:SS", "tables": {table: [rows]}}.

    Every one of the seven tables must be there (an empty list when it has no rows): a
    missing table would read as an empty one and clear every user. The rows are
    checked here, so any content error is a SnapshotError (exit 2).

    Optional for the advisories: a ``sys_properties`` table, and ``"extra_reads"``, the list
    of EXTRA_READS the tables hold (``all_mid_servers``: ecc_agent rows of every status;
    ``clone_issues``: open InstanceClone issues too). A snapshot without them still loads;
    the advisories that need them are skipped. ``"why_unread"``: why an extra read the
    capture tried is missing (an HTTP 403, say), as the live check said it.
    """
    try:
        # utf-8-sig: editors on Windows (and PowerShell's Out-File) start the file with a BOM.
        document: Any = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"snapshot file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read snapshot file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError("snapshot", path, "(file)", f"is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise SnapshotError("snapshot", path, "(file)", "should be a JSON object")
    now = document.get("now")
    if now is None:
        raise SnapshotError("snapshot", path, "now", "is missing: give YYYY-MM-DD HH:MM:SS (UTC)")
    if not isinstance(now, str):
        raise SnapshotError("snapshot", path, "now", f"should be YYYY-MM-DD HH:MM:SS, got {now!r}")
    try:
        moment = parse_time(now)
    except ValueError:
        raise SnapshotError(
            "snapshot", path, "now", f"should be YYYY-MM-DD HH:MM:SS, got {now!r}"
        ) from None
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise SnapshotError("snapshot", path, "tables", "should be an object of table name to rows")
    unknown = sorted(set(tables) - set(TABLES) - set(OPTIONAL_TABLES))
    if unknown:
        raise SnapshotError(
            "snapshot", path, "tables", f"names unknown tables {', '.join(unknown)}"
        )
    missing = [table for table in TABLES if table not in tables]
    if missing:
        raise SnapshotError(
            "snapshot",
            path,
            "tables",
            f"lacks {', '.join(missing)}: a snapshot holds all seven tables the check reads "
            "(an empty list for a table without rows)",
        )
    try:
        Inventory.from_tables(tables)
    except DataError as exc:
        raise SnapshotError(exc.table, exc.sys_id, exc.field, exc.problem) from None
    return Snapshot(
        now=moment,
        tables=tables,
        clock_source="snapshot",
        extra_reads=_extra_reads(document, path),
        why_unread=_why_unread(document, path),
    )


def _why_unread(document: dict[str, Any], path: str) -> dict[str, str]:
    """Why an extra read the capture tried is missing (``snowcheck snapshot`` writes it)."""
    why = document.get("why_unread", {})
    if not isinstance(why, dict) or not all(isinstance(text, str) for text in why.values()):
        raise DataError("snapshot", path, "why_unread", "should be an object of read to reason")
    unknown = sorted(set(why) - set(EXTRA_READS))
    if unknown:
        raise DataError("snapshot", path, "why_unread", f"names unknown reads {', '.join(unknown)}")
    return dict(why)


def _extra_reads(document: dict[str, Any], path: str) -> frozenset[str]:
    listed = document.get("extra_reads", [])
    if not isinstance(listed, list) or not all(isinstance(read, str) for read in listed):
        raise SnapshotError("snapshot", path, "extra_reads", "should be a list of names")
    unknown = sorted(set(listed) - set(EXTRA_READS))
    if unknown:
        raise SnapshotError(
            "snapshot", path, "extra_reads", f"names unknown reads {', '.join(unknown)}"
        )
    # A sys_properties table in the file is itself the sign that it was read.
    found = {PROPERTIES} if PROPERTY_TABLE in document["tables"] else set()
    return frozenset(listed) | found
