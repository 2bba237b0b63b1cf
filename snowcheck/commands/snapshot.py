"""``snowcheck snapshot``: capture what a check reads, as the file ``check --snapshot`` reads.

The capture makes exactly the reads of a live check (a dry run's: same filters, same
window, same requests) and writes the rows as the pull kept them, so that
``check --snapshot`` on the file finds what a live check found at that moment. A
``"manifest"`` says what was captured: snowcheck's version, the instance and its clock,
the window, the source, rows per table, requests made, and whether the file is redacted.

Fail-closed: the file is written only after every read completed, through a temporary
file in the same folder renamed over it, so a failed capture leaves no file behind.
Only the fields the check reads are requested, so no password, token or cookie is in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

from snowcheck import __version__
from snowcheck.commands.check import terminal_prompt
from snowcheck.commands.live import live_check
from snowcheck.errors import ConfigError
from snowcheck.output.report import Terminal
from snowcheck.pseudonymise import pseudonymise
from snowcheck.pseudonyms import read_key_file
from snowcheck.records import Snapshot, format_time
from snowcheck.rules import Window
from snowcheck.servicenow.instance import Instance
from snowcheck.settings import (
    CheckSettings,
    SnapshotOptions,
    check_settings,
    load_file,
    resolve_connection,
    select_profile,
)


def snapshot_document(
    snapshot: Snapshot, *, instance: str, settings: CheckSettings, requests: int
) -> dict[str, Any]:
    """The snapshot file's document: ``{"now", "tables", "extra_reads", "why_unread", "manifest"}``.

    ``extra_reads`` and ``why_unread`` (the advisories' reads made, and why one is missing)
    only when there are any.
    """
    tables = {table: [dict(row) for row in rows] for table, rows in snapshot.tables.items()}
    since = Window(snapshot.now, settings.window).since
    document: dict[str, Any] = {"now": format_time(snapshot.now), "tables": tables}
    if snapshot.extra_reads:
        document["extra_reads"] = sorted(snapshot.extra_reads)
    if snapshot.why_unread:
        document["why_unread"] = dict(snapshot.why_unread)
    document["manifest"] = {
        "snowcheck": __version__,
        "instance": instance,
        "captured_at": format_time(snapshot.now),
        "clock_source": snapshot.clock_source,
        "window_seconds": int(settings.window.total_seconds()),
        "since": format_time(since),
        "source": settings.source,
        "rows": {table: len(rows) for table, rows in tables.items()},
        "requests": requests,
        "redacted": False,
    }
    return document


def capture(
    instance: Instance, settings: CheckSettings, *, warn: Callable[[str], None]
) -> tuple[dict[str, Any], Snapshot]:
    """Every read of one check, as a snapshot document; any failed read raises.

    The reads are a dry-run check's own (``live_check``), so whatever the pull reads, the
    capture holds, and the findings and plan of the check come with the same warnings.
    """
    snapshot = live_check(instance, settings, apply=False, force=False, warn=warn).outcome.snapshot
    document = snapshot_document(
        snapshot,
        instance=instance.connection.base_url,
        settings=settings,
        requests=instance.requests_made,
    )
    return document, snapshot


def redacted(
    document: dict[str, Any], *, key_file: str | None, source: str, terminal: Terminal
) -> dict[str, Any]:
    """The document pseudonymised (``pseudonymise``); every warning goes to stderr."""
    key = None
    if key_file:
        key, key_warnings = read_key_file(key_file)
        for warning in key_warnings:
            terminal.warn(warning)
    instance = document["manifest"]["instance"]
    redaction = pseudonymise(document, key, instance=instance, source=source)
    for warning in redaction.warnings:
        terminal.warn(warning)
    result = redaction.document
    result["manifest"]["instance"] = redaction.instance
    return result


def write_atomically(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` via a temporary file in its folder , or raise."""
    folder = os.path.dirname(os.path.abspath(path))
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=folder, prefix=".snowcheck-", suffix=".tmp", delete=False
        ) as handle:
            temporary = handle.name
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def run_snapshot(options: SnapshotOptions, terminal: Terminal) -> int:
    """``snowcheck snapshot``: 0 when the file (or stdout) holds the whole capture."""
    where = options.connection
    profile = select_profile(load_file(where.config, os.environ), where.profile)
    settings = check_settings(options.rules, profile, terminal.warn)
    resolved = resolve_connection(where, profile, prompt=terminal_prompt())
    for warning in resolved.warnings:
        terminal.warn(warning)
    with Instance(resolved.connection) as instance:
        document, _ = capture(instance, settings, warn=terminal.warn)
    if options.redact or options.redact_key_file:
        document = redacted(
            document, key_file=options.redact_key_file, source=settings.source, terminal=terminal
        )
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    if options.output is None or options.output == "-":
        terminal.out.file.write(text)
        terminal.out.file.flush()
    else:
        write_atomically(options.output, text)
        manifest = document["manifest"]
        rows = sum(manifest["rows"].values())
        terminal.info(
            f"wrote {options.output}: {rows} rows of {len(manifest['rows'])} tables, "
            f"{manifest['requests']} requests, instance clock {manifest['captured_at']}"
            + (", redacted" if manifest["redacted"] else "")
        )
    return 0
