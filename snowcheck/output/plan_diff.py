"""The plan as a diff, as `terraform plan` shows one: `+ create`, `~ update`, `- resolve`."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snowcheck.output.text import Glyphs, data
from snowcheck.plan import Action, Change
from snowcheck.rules import Finding

SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.RESOLVE: "-"}
SIDE_BY_SIDE = 110
"""From this width on, a change's message stands beside its head line."""
STYLE = {Action.CREATE: "bold red", Action.UPDATE: "yellow", Action.RESOLVE: "green"}


def change_head(change: Change, marks: Glyphs) -> Text:
    """``~ update   new  count 2 → 3``: the action, then state and count before → after."""
    head = Text(f"{SIGN[change.action]} {change.action.value:<9}", style=STYLE[change.action])
    if change.state_before is None or change.state_before == change.state:
        head.append_text(data(change.state))
    else:
        head.append_text(data(change.state_before))
        head.append(f" {marks.arrow} ")
        head.append_text(data(change.state))
    if change.count_before is None or change.count_before == change.count:
        head.append(f"  count {change.count}")
    else:
        head.append(f"  count {change.count_before} {marks.arrow} {change.count}")
    return head


def change_view(change: Change, marks: Glyphs, *, wide: bool) -> RenderableType:
    """The head line, then the whole message (and, with ``wide``, the sys_id) beneath it."""
    body = Table.grid()
    body.add_column(width=4)
    body.add_column(ratio=1, overflow="fold")
    body.add_row("", data(change.message))
    if wide:
        body.add_row("", Text.assemble(("sys_id ", "dim"), data(change.sys_id or "(new)")))
    return Group(change_head(change, marks), body)


def plan_view(
    changes: Sequence[Change],
    marks: Glyphs,
    *,
    applied: bool,
    wide: bool = False,
    width: int = 80,
) -> RenderableType:
    """Each change's head line with its message beneath, or, from ``SIDE_BY_SIDE`` columns
    on, beside it."""
    title = "Changes applied" if applied else "Plan (dry run)"
    if not changes:
        return Text.assemble((f"{title}: ", "bold"), ("nothing to change", "green"), "\n")
    count = f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
    parts: list[RenderableType] = [Text(f"{title}: {count}", style="bold")]
    if width >= SIDE_BY_SIDE:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")
        for change in changes:
            message = data(change.message)
            if wide:
                message.append_text(Text.assemble("\n", ("sys_id ", "dim")))
                message.append_text(data(change.sys_id or "(new)"))
            grid.add_row(change_head(change, marks), message)
        parts.append(grid)
    else:
        parts.extend(change_view(change, marks, wide=wide) for change in changes)
    parts.append(Text())
    return Group(*parts)


def plan_brief(
    changes: Sequence[Change], marks: Glyphs, findings: Sequence[Finding], *, applied: bool
) -> RenderableType:
    """One line per change, naming the finding's user: for when the messages stand just above."""
    title = "Changes applied" if applied else "Plan (dry run)"
    if not changes:
        return Text.assemble((f"{title}: ", "bold"), ("nothing to change", "green"), "\n")
    users = {finding.message: finding.user for finding in findings}
    heads = [change_head(change, marks) for change in changes]
    width = max(len(head) for head in heads) + 2
    parts: list[RenderableType] = [Text(title, style="bold")]
    for change, head in zip(changes, heads, strict=True):
        user = users.get(change.message)
        if user is None:
            # No finding has this message any more: show it whole, beneath.
            parts.append(change_view(change, marks, wide=False))
            continue
        head.pad_right(width - len(head))
        head.append_text(data(user, "bold"))
        parts.append(head)
    parts.append(Text())
    return Group(*parts)
