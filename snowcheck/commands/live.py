"""One check against a live instance: pull, assess, and (only when asked and safe) apply.

Shared by ``check`` and ``demo``: the order that keeps an instance safe lives here,
every read, then the plan, then its safety check, then the writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from snowcheck import interrupts
from snowcheck.check import Outcome, assess
from snowcheck.errors import PartialWrite, UnsafePlan
from snowcheck.guards import (
    DEFAULT_MAX_CHANGES,
    raise_if_rows_hidden,
    raise_if_short_window_resolves,
    raise_if_too_many,
    short_window_warning,
)
from snowcheck.interrupts import Interrupted, signal_name
from snowcheck.plan import Action, Change, Plan
from snowcheck.pull import pull_snapshot
from snowcheck.records import ISSUE_TABLE, TABLES
from snowcheck.servicenow.instance import Instance
from snowcheck.settings import CheckSettings, WriteSettings
from snowcheck.writeback import WriteBack

log = logging.getLogger("snowcheck")


@dataclass(frozen=True)
class Checked:
    """What a live check produced; ``applied`` is None for a dry run."""

    outcome: Outcome
    applied: tuple[Change, ...] | None


class WriteInterrupted(Interrupted):
    """SIGINT or SIGTERM during the write-back: what was written, and what was not."""

    def __init__(
        self,
        signum: int,
        *,
        outcome: Outcome,
        applied: tuple[Change, ...],
        not_applied: tuple[Change, ...],
    ) -> None:
        total = len(outcome.plan.changes)
        if not_applied:
            done = (
                f"wrote {len(applied)} of {total} changes to {ISSUE_TABLE}, "
                f"{len(not_applied)} not written; running the check again converges"
            )
        else:
            done = f"all {len(applied)} changes were written to {ISSUE_TABLE}"
        super().__init__(
            signum, f"interrupted by {signal_name(signum)} during the write-back: {done}"
        )
        self.outcome = outcome
        self.applied = applied
        self.not_applied = not_applied


def live_check(
    instance: Instance,
    settings: CheckSettings,
    *,
    apply: bool,
    force: bool,
    warn: Callable[[str], None],
    on_change: Callable[[Change], None] | None = None,
    write: WriteSettings | None = None,
    max_changes: int = DEFAULT_MAX_CHANGES,
) -> Checked:
    """Pull everything, plan, and apply only after every read completed and the plan is safe.

    On SIGINT or SIGTERM (see `snowcheck.interrupts`) the reads stop at once; during the
    write-back the write in flight completes and `WriteInterrupted` says what was written.
    """
    with interrupts.on_signal(instance.stop_reads):
        return _live_check(
            instance,
            settings,
            apply=apply,
            force=force,
            warn=warn,
            on_change=on_change,
            write=write,
            max_changes=max_changes,
        )


def _live_check(
    instance: Instance,
    settings: CheckSettings,
    *,
    apply: bool,
    force: bool,
    warn: Callable[[str], None],
    on_change: Callable[[Change], None] | None,
    write: WriteSettings | None,
    max_changes: int,
) -> Checked:
    base_url = instance.connection.base_url
    log.info(
        "check of %s started (window %s, source %s)", base_url, settings.window, settings.source
    )
    instance.take_filtered()  # only this pull's reads count
    snapshot = pull_snapshot(
        instance,
        window=settings.window,
        source=settings.source,
        concurrency=settings.concurrency,
        advisories=settings.advisories,
    )
    if snapshot.clock_source == "local":
        warn("the instance sent no usable Date header: using the local clock as 'now'")
    outcome = assess(
        snapshot,
        instance=base_url,
        window=settings.window,
        source=settings.source,
        messages=settings.messages,
        advisories=settings.advisories,
    )
    for warning in outcome.plan.warnings:
        warn(warning)
    plan = outcome.plan
    log.info(
        "%d findings; plan: %d create, %d update, %d resolve (%d requests so far)",
        len(outcome.evaluation.findings),
        len(plan.of(Action.CREATE)),
        len(plan.of(Action.UPDATE)),
        len(plan.of(Action.RESOLVE)),
        instance.requests_made,
    )
    if not apply:
        return Checked(outcome, None)
    plan.raise_if_unsafe(saw_mid_users=outcome.evaluation.saw_mid_users, force=force)
    raise_if_too_many(plan, max_changes=max_changes, force=force)
    filtered = [table for table in instance.take_filtered() if table in TABLES]
    try:
        raise_if_rows_hidden(outcome.inventory, filtered=filtered, force=force)
    except UnsafePlan as exc:
        if plan.changes:
            raise
        # Nothing to write: applying the empty plan is a dry run, but the sign stays worth saying.
        warn(f"the plan is empty, so nothing is written; but {exc}")
    short_window = short_window_warning(settings.window)
    if short_window:
        warn(short_window)
    raise_if_short_window_resolves(plan, window=settings.window, force=force)
    write = write or WriteSettings()
    writer = WriteBack(
        instance,
        batch=write.batch,
        batch_items=write.batch_items,
        concurrency=settings.concurrency,
        stop_requested=interrupts.requested,
    )
    applied = _write_back(writer, plan, outcome, on_change)
    log.info("applied %d changes to ecc_agent_issue", len(applied))
    return Checked(outcome, applied)


def _write_back(
    writer: WriteBack, plan: Plan, outcome: Outcome, on_change: Callable[[Change], None] | None
) -> tuple[Change, ...]:
    """Apply the plan; a signal meanwhile ends it after the write in flight."""
    with interrupts.writing():
        try:
            applied = writer.apply(plan, on_change=on_change)
            not_applied: tuple[Change, ...] = ()
        except PartialWrite as exc:
            if interrupts.received() is None:
                raise
            applied = tuple(c for c in exc.applied if isinstance(c, Change))
            not_applied = tuple(c for c in exc.not_applied if isinstance(c, Change))
    signum = interrupts.received()
    if signum is None:
        return applied
    for change in applied:
        log.info(
            "written before %s: %s %s %s (state %s, count %s): %s",
            signal_name(signum),
            change.action.value,
            ISSUE_TABLE,
            change.sys_id or "(new)",
            change.state,
            change.count,
            change.message,
        )
    raise WriteInterrupted(signum, outcome=outcome, applied=applied, not_applied=not_applied)
