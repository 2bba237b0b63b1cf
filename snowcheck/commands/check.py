"""``snowcheck check``: one instance, a snapshot, or every profile; the outputs, even on failure."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.commands.live import WriteInterrupted, live_check
from snowcheck.crash import OutputClosed
from snowcheck.errors import ConfigError, PartialWrite, SnowcheckError
from snowcheck.interrupts import Interrupted, signal_name, threads_leave_signals
from snowcheck.locking import InstanceLock, LockHeld, default_lock_path
from snowcheck.output.monitoring import (
    RedactingFilter,
    nagios_report,
    open_log_file,
    prometheus_text,
    read_last_success,
    write_textfile_atomically,
)
from snowcheck.output.report import Terminal, change_json, to_json
from snowcheck.plan import Change
from snowcheck.prompt import password_prompt
from snowcheck.records import ISSUE_TABLE
from snowcheck.redact import redact
from snowcheck.servicenow.instance import Instance
from snowcheck.servicenow.session import secrets_of
from snowcheck.settings import (
    CheckOptions,
    ConnectionOptions,
    check_settings,
    load_file,
    profile_names,
    resolve_connection,
    select_profile,
    write_settings,
)

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
    secrets: tuple[str, ...] = ()
    log_handler: logging.Handler | None = None

    def add_secret(self, secret: str) -> None:
        """Hide ``secret`` from the outputs, the log file included (opened before it was known)."""
        self.secrets = (*self.secrets, secret)
        for log_filter in self.log_handler.filters if self.log_handler else ():
            if isinstance(log_filter, RedactingFilter):
                log_filter.add(secret)

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


def _live(
    options: CheckOptions,
    terminal: Terminal,
    record: RunRecord,
    profile: Mapping[str, Any],
    profile_name: str | None,
    prompt: Callable[[str], str] | None,
) -> Outcome:
    settings = check_settings(options.rules, profile, terminal.warn)
    write = write_settings(profile)
    if options.apply and not write.allowed:
        raise ConfigError(
            f"profile {profile_name!r} does not allow --apply (apply = false in the config)"
        )
    resolved = resolve_connection(options.connection, profile, prompt=prompt)
    for warning in resolved.warnings:
        terminal.warn(warning)
    connection = resolved.connection
    record.instance_url = connection.base_url
    for secret in secrets_of(connection):
        record.add_secret(secret)

    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if options.apply and not options.no_lock:
        lock = InstanceLock(options.lock_file or default_lock_path(connection.base_url, os.environ))
    with (
        lock,
        _progress(terminal) as bar,
        Instance(connection, progress=_progress_callback(bar)) as instance,
    ):
        try:
            checked = live_check(
                instance,
                settings,
                apply=options.apply,
                force=options.force,
                warn=terminal.warn,
                write=write,
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
    return checked.outcome


def _offline(options: CheckOptions, terminal: Terminal) -> Outcome:
    if options.apply:
        raise ConfigError("--apply needs a live instance: a snapshot file cannot be written back")
    assert options.snapshot is not None
    settings = check_settings(options.rules, {}, terminal.warn)
    outcome = assess(
        load_snapshot(options.snapshot),
        instance=options.snapshot,
        window=settings.window,
        source=settings.source,
        messages=settings.messages,
        advisories=settings.advisories,
    )
    for warning in outcome.plan.warnings:
        terminal.warn(warning)
    return outcome


@contextlib.contextmanager
def _log_file(path: str | None, record: RunRecord) -> Iterator[None]:
    if not path:
        yield
        return
    handler = open_log_file(path, secrets=record.secrets)
    record.log_handler = handler
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    except SnowcheckError as exc:
        # To the file only: the terminal says it once, as the error line.
        log = logging.getLogger("snowcheck")
        handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (exc,), None))
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def _write_prometheus(options: CheckOptions, record: RunRecord, *, success: bool) -> None:
    path = options.output.prometheus_textfile
    assert path is not None
    given = options.connection.instance or options.connection.profile
    instance = record.instance_url or str(given or "unknown")
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
    """``snowcheck check``: its exit status (errors it cannot report itself are raised)."""
    if options.all_profiles:
        return run_all_profiles(options, terminal)
    where = options.connection
    if options.snapshot and (where.profile or where.instance):
        raise ConfigError(
            "--snapshot reads a file: it cannot be combined with --instance or --profile"
        )
    record = RunRecord()
    try:
        with _log_file(options.output.log_file, record):
            if options.snapshot:
                outcome = _offline(options, terminal)
                record.outcome = outcome  # the textfile's findings and advisories
            else:
                file_config = load_file(where.config, os.environ)
                profile = select_profile(file_config, where.profile)
                prompt = terminal_prompt()
                outcome = _live(options, terminal, record, profile, where.profile, prompt)
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
                error=redact(str(exc), record.secrets),
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
        terminal.report(outcome, applied=applied, debug=output.debug, wide=output.wide)
    if output.detailed_exitcode and outcome.evaluation.findings:
        return EXIT_FINDINGS
    return EXIT_OK


# Several profiles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileResult:
    name: str
    instance: str
    outcome: Outcome | None
    applied: bool
    error: str | None
    code: int


def _run_profile(options: CheckOptions, name: str, file_config: Mapping[str, Any]) -> ProfileResult:
    quiet = Terminal(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True)
    record = RunRecord()
    where = replace(options.connection, instance=None, user=None)
    profile_options = replace(options, connection=where)
    try:
        profile = select_profile(file_config, name)
        # No prompt: prompts from several threads would interleave; passwords come from
        # the environment or password files here.
        outcome = _live(profile_options, quiet, record, profile, name, None)
    except SnowcheckError as exc:
        if isinstance(exc, LockHeld):
            return ProfileResult(name, record.instance_url, None, False, str(exc), EXIT_OK)
        message = redact(str(exc), record.secrets)
        return ProfileResult(name, record.instance_url, None, False, message, exc.exit_code)
    return ProfileResult(name, record.instance_url, outcome, record.applied is not None, None, 0)


def run_all_profiles(options: CheckOptions, terminal: Terminal) -> int:
    where: ConnectionOptions = options.connection
    if options.snapshot or where.instance or where.profile:
        raise ConfigError("--all-profiles takes its instances from the config file's profiles")
    file_config = load_file(where.config, os.environ)
    names = profile_names(file_config)
    if not names:
        raise ConfigError("--all-profiles needs [instances.NAME] tables in the config file")
    with ThreadPoolExecutor(max_workers=min(4, len(names))) as pool:
        with threads_leave_signals():  # the main thread takes Ctrl-C
            running = pool.map(lambda name: _run_profile(options, name, file_config), names)
        results = list(running)
    terminal.profiles(results)
    if any(result.error and result.code for result in results):
        return EXIT_FAILED
    detailed = options.output.detailed_exitcode
    if detailed and any(r.outcome and r.outcome.evaluation.findings for r in results):
        return EXIT_FINDINGS
    return EXIT_OK
