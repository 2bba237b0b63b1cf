"""``snowcheck check``: one instance, a snapshot, or every profile; the outputs, even on failure."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.commands.live import WriteInterrupted, live_check
from snowcheck.crash import OutputClosed
from snowcheck.errors import ConfigError, PartialWrite, SnowcheckError
from snowcheck.interrupts import Interrupted, signal_name, threads_leave_signals
from snowcheck.locking import InstanceLock, LockHeld, default_lock_path
from snowcheck.output.monitoring import (
    nagios_report,
    open_log_file,
    prometheus_text,
    read_last_success,
    write_textfile_atomically,
)
from snowcheck.output.report import Terminal, change_json, to_json
from snowcheck.plan import Change
from snowcheck.planfile import write_plan
from snowcheck.prompt import password_prompt
from snowcheck.records import ISSUE_TABLE
from snowcheck.redact import Redactor
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import secrets_of
from snowcheck.settings import (
    CheckOptions,
    check_settings,
    load_file,
    resolve_connection,
    select_profile,
    write_settings,
)

log = logging.getLogger("snowcheck.check")

FILE_ONLY = "file_only"
"""A log record with this attribute set goes to the log file, not to the terminal."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_FINDINGS = 3


def terminal_prompt() -> Callable[[str], str] | None:
    """A password prompt, only when stdin is a terminal (Ctrl-D and Ctrl-C there: one line)."""
    return password_prompt()


@dataclass
class RunRecord:
    """What one run got to, for the outputs written even when it fails."""

    started: float = field(default_factory=time.monotonic)
    instance_url: str = ""
    outcome: Outcome | None = None
    applied: tuple[Change, ...] | None = None
    requests: int = 0
    redactor: Redactor = field(default_factory=Redactor)
    """The terminal's: one redactor for the terminal, the log file and the errors."""
    note: str | None = None
    """Said of an --all-profiles run: the profile ran dry (apply = false)."""

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _progress(terminal: Terminal) -> contextlib.AbstractContextManager[Any]:
    """A rich progress bar on stderr, only on a terminal and never in quiet mode."""
    if terminal.quiet or not terminal.err.is_terminal:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=terminal.err,
        transient=True,
    )
    return _leaving_signals(progress)


@contextlib.contextmanager
def _leaving_signals(progress: Any) -> Iterator[Any]:
    """The progress bar, whose refresh thread leaves Ctrl-C to the main thread."""
    with threads_leave_signals():
        progress.start()
    try:
        yield progress
    finally:
        progress.stop()


def _progress_callback(bar: Any) -> Callable[[str, int, int | None], None] | None:
    if bar is None:
        return None
    tasks: dict[str, Any] = {}

    def update(table: str, done: int, total: int | None) -> None:
        if table not in tasks:
            tasks[table] = bar.add_task(f"reading {table}", total=total)
        bar.update(tasks[table], completed=done, total=total)

    return update


def warner(prefix: str = "") -> Callable[[str], None]:
    """Warnings through the "snowcheck" logger: the terminal shows them (unless --quiet),
    and the log file keeps them, --quiet or not."""

    def warn(message: str) -> None:
        log.warning("%s%s", prefix, message)

    return warn


def live_outcome(
    options: CheckOptions,
    terminal: Terminal,
    record: RunRecord,
    profile: Mapping[str, Any],
    profile_name: str | None,
    prompt: Callable[[str], str] | None,
    *,
    warn: Callable[[str], None],
    dry_if_refused: bool = False,
) -> Outcome:
    """One live check of a profile's instance (and its apply, if asked and allowed)."""
    settings = check_settings(options.rules, profile, warn)
    write = write_settings(profile)
    apply = options.apply
    if apply and not write.allowed:
        if not dry_if_refused:
            raise ConfigError(
                f"profile {profile_name!r} does not allow --apply (apply = false in the config)"
            )
        apply = False
        record.note = "dry run: the profile does not allow --apply (apply = false)"
        log.info("profile %s: %s", profile_name, record.note)
    resolved = resolve_connection(options.connection, profile, prompt=prompt)
    for warning in resolved.warnings:
        warn(warning)
    connection = resolved.connection
    record.instance_url = connection.base_url
    record.redactor.add_login(connection.user, connection.password)
    for secret in secrets_of(connection):
        record.redactor.add(secret)

    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if apply and not options.no_lock:
        lock = InstanceLock(options.lock_file or default_lock_path(connection.base_url, os.environ))
    most = options.max_changes if options.max_changes is not None else write.max_changes
    with (
        lock,
        _progress(terminal) as bar,
        Instance(connection, progress=_progress_callback(bar)) as instance,
    ):
        try:
            checked = live_check(
                instance,
                settings,
                apply=apply,
                force=options.force,
                warn=warn,
                write=write,
                max_changes=most,
            )
        except PartialWrite as exc:
            record.applied = tuple(c for c in exc.applied if isinstance(c, Change))
            terminal.partial_write(exc)
            raise
        except WriteInterrupted as exc:
            record.outcome = exc.outcome
            record.applied = exc.applied
            raise
        finally:
            record.requests = instance.requests_made
    record.outcome = checked.outcome
    record.applied = checked.applied
    if options.out:
        write_plan(options.out, checked.outcome)
    return checked.outcome


def _offline(options: CheckOptions, record: RunRecord, warn: Callable[[str], None]) -> Outcome:
    if options.apply:
        raise ConfigError("--apply needs a live instance: a snapshot file cannot be written back")
    if options.out:
        raise ConfigError("--out saves a plan to apply to a live instance, not to a snapshot")
    assert options.snapshot is not None
    settings = check_settings(options.rules, {}, warn)
    snapshot = load_snapshot(options.snapshot)
    # From here on the run has an instance: the snapshot, named by its file.
    record.instance_url = Path(options.snapshot).name
    outcome = assess(
        snapshot,
        instance=options.snapshot,
        window=settings.window,
        source=settings.source,
        messages=settings.messages,
        advisories=settings.advisories,
    )
    for warning in outcome.plan.warnings:
        warn(warning)
    record.outcome = outcome
    return outcome


@contextlib.contextmanager
def log_file(path: str | None, redactor: Redactor) -> Iterator[None]:
    """Append the run's log lines to ``path`` (if given), redacted, for the ``with`` block.

    A run skipped because another holds the lock is logged at INFO: it is not an error.
    """
    if not path:
        yield
        return
    handler = open_log_file(path, redactor=redactor)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    except LockHeld as exc:
        log.info("%s", exc)
        raise
    except SnowcheckError as exc:
        # To the file only: the terminal says it once, as the error line.
        log.error("%s", exc, extra={FILE_ONLY: True})
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def _write_prometheus(options: CheckOptions, record: RunRecord, *, success: bool) -> None:
    """The textfile, written only once the run knows its instance (the connection resolved,
    or the snapshot read): before that there is no label to write, and the old file stays."""
    path = options.output.prometheus_textfile
    assert path is not None
    instance = record.instance_url
    if not instance:
        log.info("no instance known yet: %s left as it was", path)
        return
    text = prometheus_text(
        record.outcome,
        success=success,
        elapsed=record.elapsed,
        requests=record.requests,
        applied_changes=record.applied,
        instance=instance,
        now=time.time(),
        previous_success=read_last_success(path, instance),
    )
    write_textfile_atomically(path, text)


def run_check(options: CheckOptions, terminal: Terminal) -> int:
    """``snowcheck check`` of one instance or snapshot (``--all-profiles``: commands.fleet)."""
    where = options.connection
    if options.snapshot and (where.profile or where.instance):
        raise ConfigError(
            "--snapshot reads a file: it cannot be combined with --instance or --profile"
        )
    if options.out and options.apply:
        raise ConfigError("--out saves a plan to apply later: it cannot be combined with --apply")
    record = RunRecord(redactor=terminal.redactor)
    warn = warner()
    try:
        with log_file(options.output.log_file, record.redactor):
            if options.snapshot:
                outcome = _offline(options, record, warn)
            else:
                file_config = load_file(where.config, os.environ)
                profile = select_profile(file_config, where.profile)
                prompt = terminal_prompt()
                outcome = live_outcome(
                    options, terminal, record, profile, where.profile, prompt, warn=warn
                )
    except SnowcheckError as exc:
        if isinstance(exc, LockHeld):
            terminal.info(str(exc))
            return EXIT_OK
        if options.output.prometheus_textfile:
            with contextlib.suppress(SnowcheckError):
                _write_prometheus(options, record, success=False)
        if options.output.format == "nagios":
            text, code = nagios_report(
                None,
                error=record.redactor(str(exc)),
                elapsed=record.elapsed,
                applied=False,
            )
            terminal.out.file.write(text)
            return exc.exit_code if isinstance(exc, Interrupted) else code
        if options.output.format == "json" and isinstance(exc, WriteInterrupted):
            _interrupted_json(terminal, exc)
        raise
    if options.output.prometheus_textfile:
        _write_prometheus(options, record, success=True)
    try:
        return _finish(options, terminal, outcome, record=record)
    except OutputClosed:
        if record.applied:
            terminal.error(
                "standard output was closed before the report, but the write-back was made: "
                f"{len(record.applied)} changes written to {ISSUE_TABLE}"
            )
        raise


def _interrupted_json(terminal: Terminal, exc: WriteInterrupted) -> None:
    """The JSON document of a write-back stopped by a signal: ``changes`` lists what was written."""
    document = to_json(exc.outcome, applied=exc.applied)
    document["interrupted"] = signal_name(exc.signum)
    document["not_applied"] = [change_json(change) for change in exc.not_applied]
    terminal.out.file.write(json.dumps(document, indent=2) + "\n")


def _finish(
    options: CheckOptions, terminal: Terminal, outcome: Outcome, *, record: RunRecord
) -> int:
    output = options.output
    applied = record.applied
    if output.format == "nagios":
        text, code = nagios_report(outcome, elapsed=record.elapsed, applied=applied is not None)
        terminal.out.file.write(text)
        return code
    if output.format == "json":
        if output.debug:
            terminal.debug(outcome, output.debug)
        terminal.json(outcome, applied=applied)
    elif output.format_given or not output.quiet:
        terminal.report(
            outcome,
            applied=applied,
            debug=output.debug,
            wide=output.wide,
            show_all=options.show_all,
        )
    if output.detailed_exitcode and outcome.evaluation.findings:
        return EXIT_FINDINGS
    return EXIT_OK
