"""One check against a live instance: pull, assess, and (only when asked and safe) apply.

Shared by ``check`` and ``demo``: the order that keeps an instance safe lives here,
every read, then the plan, then its safety check, then the writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from snowcheck.check import Outcome, assess
from snowcheck.plan import Action, Change
from snowcheck.pull import pull_snapshot
from snowcheck.servicenow.instance import Instance
from snowcheck.settings import CheckSettings, WriteSettings
from snowcheck.writeback import WriteBack

log = logging.getLogger("snowcheck")


@dataclass(frozen=True)
class Checked:
    """What a live check produced; ``applied`` is None for a dry run."""

    outcome: Outcome
    applied: tuple[Change, ...] | None


def live_check(
    instance: Instance,
    settings: CheckSettings,
    *,
    apply: bool,
    force: bool,
    warn: Callable[[str], None],
    on_change: Callable[[Change], None] | None = None,
    write: WriteSettings | None = None,
) -> Checked:
    """Pull everything, plan, and apply only after every read completed and the plan is safe."""
    base_url = instance.connection.base_url
    log.info(
        "check of %s started (window %s, source %s)", base_url, settings.window, settings.source
    )
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
    write = write or WriteSettings()
    writer = WriteBack(
        instance,
        batch=write.batch,
        batch_items=write.batch_items,
        concurrency=settings.concurrency,
    )
    applied = writer.apply(plan, on_change=on_change)
    log.info("applied %d changes to ecc_agent_issue", len(applied))
    return Checked(outcome, applied)
