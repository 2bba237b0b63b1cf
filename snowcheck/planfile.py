"""A plan saved by ``check --out PLAN`` and applied later by ``snowcheck apply PLAN``.

The file holds the instance, the source, every change with the fields it writes, and the
before-state (state, count, sys_updated_on) of every issue the plan touches. ``apply``
re-reads those issues and refuses the plan when any of them changed, as a terraform
plan goes stale: it applies exactly what was reviewed, or nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snowcheck.check import Outcome
from snowcheck.errors import ConfigError, SnowcheckError
from snowcheck.plan import Action, Change, Plan
from snowcheck.records import format_time

PLAN_FORMAT = 1
"""The version of the plan file's layout."""

BEFORE_FIELDS = ("state", "count", "sys_updated_on")
"""What must not have changed on an issue between the plan and its apply."""


class StalePlan(SnowcheckError):
    """The instance changed since the plan was made: nothing was written (exit 1)."""


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from its file."""

    instance: str
    source: str
    plan: Plan
    before: Mapping[str, Mapping[str, str]]
    """sys_id -> the issue's state, count and sys_updated_on when the plan was made."""
    created: str
    """The instance's clock when the plan was made (YYYY-MM-DD HH:MM:SS)."""


def plan_document(outcome: Outcome) -> dict[str, Any]:
    """The plan file's JSON: the changes and the before-state of every issue they touch."""
    issues = {issue.sys_id: issue for issue in outcome.inventory.issues}
    before: dict[str, dict[str, str]] = {}
    for change in outcome.plan.changes:
        issue = issues.get(change.sys_id or "")
        if issue is not None:
            updated = issue.updated_on
            before[issue.sys_id] = {
                "state": issue.state,
                "count": str(issue.count),
                "sys_updated_on": format_time(updated) if updated else "",
            }
    return {
        "snowcheck_plan": PLAN_FORMAT,
        "instance": outcome.instance,
        "source": outcome.source,
        "created": format_time(outcome.evaluation.window.now),
        "open_issues": outcome.plan.open_issues,
        "changes": [
            {
                "action": change.action.value,
                "sys_id": change.sys_id,
                "message": change.message,
                "state_before": change.state_before,
                "count_before": change.count_before,
                "state": change.state,
                "count": change.count,
                "payload": dict(change.payload),
            }
            for change in outcome.plan.changes
        ],
        "before": before,
    }


def write_plan(path: str, outcome: Outcome) -> None:
    """Write the plan file (replaced whole: a reader never sees half of it)."""
    text = json.dumps(plan_document(outcome), indent=2, ensure_ascii=False) + "\n"
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        Path(temporary).write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"cannot write plan file {path}: {exc.strerror or exc}") from None


def _bad(path: str, problem: str) -> ConfigError:
    return ConfigError(f"plan file {path} {problem}: make it again with check --out")


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _change(path: str, item: Any) -> Change:
    if not isinstance(item, Mapping):
        raise _bad(path, "has a change that is not an object")
    try:
        action = Action(str(item.get("action")))
    except ValueError:
        raise _bad(path, f"has an unknown action {item.get('action')!r}") from None
    payload = item.get("payload")
    sys_id = item.get("sys_id")
    fine = (
        isinstance(payload, Mapping)
        and all(_text(key) and _text(value) for key, value in payload.items())
        and _text(item.get("message"))
        and _text(item.get("state"))
        and isinstance(item.get("count"), int)
        and (sys_id is None if action is Action.CREATE else _text(sys_id) and sys_id)
    )
    if not fine:
        raise _bad(path, f"has a malformed {action.value} change")
    assert isinstance(payload, Mapping)
    count_before = item.get("count_before")
    return Change(
        action=action,
        message=item["message"],
        sys_id=sys_id,
        state_before=item.get("state_before") if _text(item.get("state_before")) else None,
        count_before=count_before if isinstance(count_before, int) else None,
        state=item["state"],
        count=item["count"],
        payload=dict(payload),
    )


def read_plan(path: str) -> SavedPlan:
    """The plan in ``path``; a missing or malformed file is a one-line error (exit 2)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"plan file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read plan file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(path, "is not valid JSON") from None
    if not isinstance(document, dict) or document.get("snowcheck_plan") != PLAN_FORMAT:
        raise _bad(path, f"is not a snowcheck plan (format {PLAN_FORMAT})")
    changes = document.get("changes")
    before = document.get("before")
    if not isinstance(changes, list) or not isinstance(before, dict):
        raise _bad(path, "lacks its changes or their before-state")
    parsed = tuple(_change(path, item) for item in changes)
    for change in parsed:
        if change.sys_id is None:
            continue
        state = before.get(change.sys_id)
        if not isinstance(state, dict) or not all(_text(state.get(f)) for f in BEFORE_FIELDS):
            raise _bad(path, f"lacks the before-state of issue {change.sys_id}")
    if not (_text(document.get("instance")) and _text(document.get("source"))):
        raise _bad(path, "lacks its instance or source")
    open_issues = document.get("open_issues")
    return SavedPlan(
        instance=document["instance"],
        source=document["source"],
        plan=Plan(changes=parsed, open_issues=open_issues if isinstance(open_issues, int) else 0),
        before=before,
        created=str(document.get("created", "")),
    )


def stale_reason(
    saved: SavedPlan,
    current: Mapping[str, Mapping[str, Any]],
    open_messages: Iterable[str],
) -> str | None:
    """Why the plan no longer applies, or None.

    ``current``: the issues the plan touches as re-read now, by sys_id (a missing one was
    deleted); ``open_messages``: messages of the source's open issues now, for the creates.
    """
    for change in saved.plan.changes:
        if change.sys_id is None:
            continue
        row = current.get(change.sys_id)
        if row is None:
            return f"issue {change.sys_id} no longer exists"
        then = saved.before[change.sys_id]
        for field in BEFORE_FIELDS:
            now = str(row.get(field, ""))
            if field == "count" and now == "":
                now = "0"  # how the check reads an empty count
            if now != then[field]:
                return (
                    f"issue {change.sys_id} changed since the plan was made "
                    f"({field} {then[field]!r}, now {now!r})"
                )
    opened = set(open_messages)
    for change in saved.plan.of(Action.CREATE):
        if change.message in opened:
            return f"an open issue {change.message!r} was created since the plan was made"
    return None
