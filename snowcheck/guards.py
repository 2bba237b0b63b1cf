"""The fail-closed guards of an apply: pure checks of the plan and the pulled data.

Each guard raises ``UnsafePlan`` with one line saying why nothing is written and
how to proceed; ``force`` (``--force``) overrides every one of them. They sit
beside ``Plan.raise_if_unsafe`` (a plan resolving every open issue while no MID
user was seen) and, like it, never print and never touch the network.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from snowcheck.errors import UnsafePlan
from snowcheck.plan import Action, Plan
from snowcheck.records import CONFIG_TABLE, ROLE_TABLE, TABLES, USER_ROLE_TABLE, Inventory
from snowcheck.rules import DEFAULT_WINDOW, MID_ROLE, USERNAME_PARAM

DEFAULT_MAX_CHANGES = 500
"""The largest plan applied without --force; 0 means no limit."""

READ_ROLE = "admin"
"""The role that grants read access to every table the check reads (a custom role with a
read ACL on the table does too; mid_server does not belong on the checking account)."""


def read_access_advice(tables: Collection[str]) -> str:
    """How to make the rows of ``tables`` visible, naming the role that grants read access."""
    return (
        f"grant the checking account the {READ_ROLE} role, or a custom role with a read ACL "
        f"on {' and '.join(tables)}"
    )


def raise_if_too_many(plan: Plan, *, max_changes: int = DEFAULT_MAX_CHANGES, force: bool) -> None:
    """Refuse a plan of more than ``max_changes`` changes (0: no limit) without ``force``."""
    if max_changes < 0:
        raise ValueError("max_changes must be 0 (no limit) or more")
    size = len(plan.changes)
    if force or max_changes == 0 or size <= max_changes:
        return
    raise UnsafePlan(
        f"refusing to apply {size:,} changes, more than --max-changes {max_changes:,} "
        f"({_counts(plan)}): nothing was written; review the plan, then pass --force or a "
        "higher --max-changes (0 = no limit)"
    )


def raise_if_rows_hidden(
    inventory: Inventory, *, filtered: Collection[str] = (), force: bool
) -> None:
    """Refuse to apply when rows that must exist are invisible to the account.

    ``filtered`` names the tables whose read returned fewer rows than the instance
    counted (``X-Total-Count``): a row-level ACL removed the others. Apart from those,
    ``ecc_agent_config`` naming MID users while no grant of ``mid_server`` is visible
    means the grants (or the role itself) are hidden: the check would report every one
    of those users as having lost the role.
    """
    if force:
        return
    unknown = sorted(set(filtered) - set(TABLES))
    if unknown:
        raise ValueError(f"not a table the check reads: {', '.join(unknown)}")
    hidden = [table for table in TABLES if table in filtered]
    if hidden:
        raise UnsafePlan(
            f"refusing to apply: the instance counted more {' and '.join(hidden)} rows "
            f"(X-Total-Count) than it returned, so an ACL hides some of them; "
            f"{read_access_advice(hidden)}, or pass --force"
        )
    configured = {
        row.value for row in inventory.configs if row.param_name == USERNAME_PARAM and row.value
    }
    if not configured:
        return
    roles = {role.sys_id for role in inventory.roles if role.name == MID_ROLE}
    # The live pull takes the roles from the grants it reads: no role at all means that no
    # grant was visible; other roles without mid_server, that the role itself is hidden.
    if not roles and inventory.roles:
        table, seen = ROLE_TABLE, f"no {MID_ROLE} role is visible in {ROLE_TABLE}"
    elif not roles or not any(grant.role in roles for grant in inventory.user_roles):
        table, seen = USER_ROLE_TABLE, f"no grant of {MID_ROLE} is visible in {USER_ROLE_TABLE}"
    else:
        return
    users = "user" if len(configured) == 1 else "users"
    raise UnsafePlan(
        f"refusing to apply: {CONFIG_TABLE} names {len(configured)} MID {users} but {seen}, "
        f"which means an ACL hides its rows; {read_access_advice([table])}, or pass --force"
    )


def short_window_warning(window: timedelta) -> str | None:
    """What an apply with a window shorter than the default does to other users' issues."""
    if window >= DEFAULT_WINDOW:
        return None
    return (
        f"the window {_shown(window)} is shorter than the default {_shown(DEFAULT_WINDOW)}: "
        "an apply resolves the open issues of users whose failures fell outside it, and the "
        "next regular run creates them again"
    )


def raise_if_short_window_resolves(
    plan: Plan,
    *,
    window: timedelta,
    force: bool,
    advice: str = "follow a fix with snowcheck watch (or without --apply)",
) -> None:
    """Refuse an apply with a window shorter than the default that would resolve any issue.

    ``advice`` is how to proceed instead, before the closing "or pass --force".
    """
    resolves = len(plan.of(Action.RESOLVE))
    if force or window >= DEFAULT_WINDOW or resolves == 0:
        return
    noun = "issue" if resolves == 1 else "issues"
    raise UnsafePlan(
        f"refusing to resolve {resolves} open {noun} with a window of {_shown(window)}, shorter "
        f"than the default {_shown(DEFAULT_WINDOW)}: their users' failures may only lie "
        f"outside it; {advice}, or pass --force"
    )


def _counts(plan: Plan) -> str:
    return ", ".join(f"{len(plan.of(action))} {action.value}" for action in Action)


def _shown(window: timedelta) -> str:
    """A window as it is typed: 4h, 5m, 90s -> 1m30s, 4h30m, 300ms."""
    milliseconds = round(window.total_seconds() * 1000)
    if milliseconds % 1000:
        return f"{milliseconds}ms"
    seconds = milliseconds // 1000
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0s"
