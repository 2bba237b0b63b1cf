"""``snowcheck apply PLAN``: write exactly the plan ``check --out PLAN`` saved, or nothing.

Before writing, it re-reads every issue the plan touches and refuses the plan when one
changed (state, count, sys_updated_on), when an issue it would create is open already,
or when the instance is not the plan's. It takes the instance lock as ``check --apply``
does, and the same guards (--max-changes, --force).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from snowcheck.commands.check import log_file, terminal_prompt
from snowcheck.errors import ConfigError
from snowcheck.guards import raise_if_too_many
from snowcheck.locking import InstanceLock, LockHeld, default_lock_path
from snowcheck.output.report import Terminal
from snowcheck.plan import Action
from snowcheck.planfile import BEFORE_FIELDS, StalePlan, read_plan, stale_reason
from snowcheck.records import ISSUE_TABLE
from snowcheck.redact import Redactor
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.query import chunk_in
from snowcheck.settings import (
    ApplyOptions,
    load_file,
    resolve_connection,
    select_profile,
    write_settings,
)
from snowcheck.writeback import WriteBack

log = logging.getLogger("snowcheck.apply")

EXIT_OK = 0


def run_apply(options: ApplyOptions, terminal: Terminal) -> int:
    """Apply a saved plan after checking it is still the instance's; its exit status."""
    redactor: Redactor = terminal.redactor
    try:
        with log_file(options.log_file, redactor):
            return _apply(options, terminal)
    except LockHeld as exc:
        terminal.info(str(exc))  # another run is writing to this instance: not a failure
        return EXIT_OK


def _apply(options: ApplyOptions, terminal: Terminal) -> int:
    saved = read_plan(options.plan)
    where = options.connection
    profile = select_profile(load_file(where.config, os.environ), where.profile)
    write = write_settings(profile)
    if not write.allowed:
        raise ConfigError(
            f"profile {where.profile!r} does not allow writes (apply = false in the config)"
        )
    resolved = resolve_connection(where, profile, prompt=terminal_prompt())
    for warning in resolved.warnings:
        log.warning("%s", warning)
    connection = resolved.connection
    terminal.redactor.add_login(connection.user, connection.password)
    if connection.base_url != saved.instance:
        raise StalePlan(
            f"the plan {options.plan} was made for {saved.instance}, not {connection.base_url}: "
            "nothing was written"
        )
    most = options.max_changes if options.max_changes is not None else write.max_changes
    raise_if_too_many(saved.plan, max_changes=most, force=options.force)
    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if not options.no_lock:
        lock = InstanceLock(options.lock_file or default_lock_path(connection.base_url, os.environ))
    with lock, Instance(connection) as instance:
        writer = WriteBack(instance, batch=write.batch, batch_items=write.batch_items)
        touched = [change.sys_id for change in saved.plan.changes if change.sys_id]
        current: dict[str, dict[str, Any]] = {}
        fields = ("sys_id", *BEFORE_FIELDS)
        for chunk in chunk_in("sys_id", touched, 4000):
            for row in instance.fetch(ISSUE_TABLE, chunk, fields):
                current[str(row.get("sys_id"))] = row
        creates = [change.message for change in saved.plan.of(Action.CREATE)]
        opened = writer.open_issues(saved.source, creates) if creates else {}
        reason = stale_reason(saved, current, opened)
        if reason is not None:
            raise StalePlan(
                f"refusing a stale plan: {reason}; nothing was written: run check --out again"
            )
        applied = writer.apply(saved.plan)
    counts = ", ".join(
        f"{sum(change.action is action for change in applied)} {action.value}"
        for action in (Action.CREATE, Action.UPDATE, Action.RESOLVE)
    )
    log.info("applied %d changes of plan %s to %s", len(applied), options.plan, saved.instance)
    if not options.quiet:
        terminal.out.print(
            f"applied {len(applied)} changes to {ISSUE_TABLE} at {saved.instance}: {counts}",
            markup=False,
            highlight=False,
        )
    return EXIT_OK
