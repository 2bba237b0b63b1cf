"""``snowcheck check --all-profiles``: every profile of the config file, each on its own.

Each profile takes its instance and credentials from the profile alone, holds its own
instance's lock, and runs dry (with a note) when the profile does not allow --apply.
Every output of a single check has a fleet form: the summary table, one JSON document,
one Nagios status line with per-profile perfdata, one Prometheus textfile with a series
per instance, and the log file. The exit status is the worst of the profiles'.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from snowcheck.check import Outcome
from snowcheck.commands.check import (
    EXIT_FINDINGS,
    EXIT_OK,
    FILE_ONLY,
    RunRecord,
    live_outcome,
    log_file,
    warner,
)
from snowcheck.errors import ConfigError, SnowcheckError
from snowcheck.interrupts import threads_leave_signals
from snowcheck.locking import LockHeld
from snowcheck.output.monitoring import (
    PrometheusRun,
    nagios_fleet_report,
    nagios_report,
    prometheus_fleet_text,
    read_last_success,
    write_textfile_atomically,
)
from snowcheck.output.report import Terminal, to_json
from snowcheck.plan import Change
from snowcheck.redact import Redactor
from snowcheck.settings import CheckOptions, load_file, profile_names, select_profile

FLEET_THREADS = 4

log = logging.getLogger("snowcheck.fleet")


@dataclass(frozen=True)
class ProfileResult:
    name: str
    instance: str
    outcome: Outcome | None
    applied: bool
    error: str | None
    code: int
    changes: tuple[Change, ...] | None = None
    """The changes written (None: a dry run)."""
    note: str | None = None
    elapsed: float = 0.0
    requests: int = 0


def _run_profile(
    options: CheckOptions, name: str, file_config: Mapping[str, Any], redactor: Redactor
) -> ProfileResult:
    quiet = Terminal(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True, redactor=redactor)
    record = RunRecord(redactor=redactor)
    where = replace(options.connection, instance=None, user=None, profile=name)
    profile_options = replace(options, connection=where)
    warn = warner(f"profile {name}: ")
    try:
        profile = select_profile(file_config, name)
        # No prompt: prompts from several threads would interleave; passwords come from
        # the profile's password_env or password_file.
        outcome = live_outcome(
            profile_options, quiet, record, profile, name, None, warn=warn, dry_if_refused=True
        )
    except SnowcheckError as exc:
        held = isinstance(exc, LockHeld)
        code = EXIT_OK if held else exc.exit_code
        message = redactor(str(exc))
        # To the log file only: the summary (or, under --quiet, an error line) says it.
        level = logging.INFO if held else logging.ERROR
        log.log(level, "profile %s: %s", name, message, extra={FILE_ONLY: True})
        return ProfileResult(
            name,
            record.instance_url,
            None,
            False,
            message,
            code,
            note=record.note,
            elapsed=record.elapsed,
            requests=record.requests,
        )
    code = EXIT_FINDINGS if options.output.detailed_exitcode and outcome.evaluation.findings else 0
    return ProfileResult(
        name,
        record.instance_url,
        outcome,
        record.applied is not None,
        None,
        code,
        changes=record.applied,
        note=record.note,
        elapsed=record.elapsed,
        requests=record.requests,
    )


def _worst(codes: Sequence[int]) -> int:
    """Failures (1, 2) before findings (3) before success: the highest failure if any."""
    failures = [code for code in codes if code in (1, 2)]
    if failures:
        return max(failures)
    return EXIT_FINDINGS if EXIT_FINDINGS in codes else EXIT_OK


def run_fleet(options: CheckOptions, terminal: Terminal) -> int:
    where = options.connection
    if options.snapshot or where.instance or where.profile:
        raise ConfigError("--all-profiles takes its instances from the config file's profiles")
    if options.lock_file:
        raise ConfigError(
            "--lock-file names one lock, but --all-profiles locks each instance on its own: "
            "drop --lock-file (each profile uses its instance's default lock)"
        )
    if options.out:
        raise ConfigError("--out saves the plan of one instance: use --profile NAME")
    started = time.monotonic()
    with log_file(options.output.log_file, terminal.redactor):
        file_config = load_file(where.config, os.environ)
        names = profile_names(file_config)
        if not names:
            raise ConfigError("--all-profiles needs [instances.NAME] tables in the config file")
        with ThreadPoolExecutor(max_workers=min(FLEET_THREADS, len(names))) as pool:
            with threads_leave_signals():  # the main thread takes Ctrl-C
                running = pool.map(
                    lambda name: _run_profile(options, name, file_config, terminal.redactor),
                    names,
                )
            results = list(running)
    if options.output.prometheus_textfile:
        _write_prometheus(options.output.prometheus_textfile, results)
    output = options.output
    if output.format == "nagios":
        reports = [(r.name, *_nagios(r)) for r in results]
        text, code = nagios_fleet_report(reports, elapsed=time.monotonic() - started)
        terminal.out.file.write(text)
        return code
    if output.format == "json":
        terminal.out.file.write(json.dumps(fleet_json(results), indent=2) + "\n")
        terminal.out.file.flush()
    elif output.format_given or not output.quiet:
        terminal.profiles(results)
        for result in results:
            if result.note:
                terminal.info(f"profile {result.name}: {result.note}")
    else:
        # --quiet: as for one check, nothing on success and one line per failure (cron mail).
        for result in results:
            if result.error and result.code:
                terminal.error(f"profile {result.name}: {result.error}")
    return _worst([result.code for result in results])


def _nagios(result: ProfileResult) -> tuple[str, int]:
    return nagios_report(
        result.outcome, error=result.error, elapsed=result.elapsed, applied=result.applied
    )


def fleet_json(results: Sequence[ProfileResult]) -> dict[str, Any]:
    """``{"profiles": [{"profile", "instance", "exit", "document" or "error"}]}``."""
    profiles: list[dict[str, Any]] = []
    for result in results:
        entry: dict[str, Any] = {
            "profile": result.name,
            "instance": result.instance or None,
            "exit": result.code,
        }
        if result.outcome is not None:
            entry["document"] = to_json(result.outcome, applied=result.changes)
        else:
            entry["error"] = result.error
        if result.note:
            entry["note"] = result.note
        profiles.append(entry)
    return {"profiles": profiles}


def _write_prometheus(path: str, results: Sequence[ProfileResult]) -> None:
    """One textfile, a series per instance; a profile whose instance is unknown has none."""
    runs = [
        PrometheusRun(
            result.outcome,
            success=result.error is None,
            elapsed=result.elapsed,
            requests=result.requests,
            applied_changes=result.changes,
            instance=result.instance,
            previous_success=read_last_success(path, result.instance),
        )
        for result in results
        if result.instance
    ]
    if runs:
        write_textfile_atomically(path, prometheus_fleet_text(runs, now=time.time()))
