"""``snowcheck explain USER``: read a snapshot or pull live, explain one user, print it."""

from __future__ import annotations

import json
import os

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.commands.check import terminal_prompt
from snowcheck.commands.live import live_check
from snowcheck.errors import ConfigError
from snowcheck.explain import explain
from snowcheck.output.explain_view import explanation_json, explanation_view
from snowcheck.output.report import Terminal
from snowcheck.output.text import Glyphs, Trimmed
from snowcheck.servicenow.instance import Instance
from snowcheck.settings import (
    ExplainOptions,
    check_settings,
    load_file,
    resolve_connection,
    select_profile,
)


def _offline(options: ExplainOptions, terminal: Terminal) -> Outcome:
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
    for warning in outcome.plan.warnings:  # a live check says them itself
        terminal.warn(warning)
    return outcome


def _live(options: ExplainOptions, terminal: Terminal) -> Outcome:
    """A dry-run check of the instance: the same reads as ``check``, nothing written."""
    file_config = load_file(options.connection.config, os.environ)
    profile = select_profile(file_config, options.connection.profile)
    settings = check_settings(options.rules, profile, terminal.warn)
    resolved = resolve_connection(options.connection, profile, prompt=terminal_prompt())
    for warning in resolved.warnings:
        terminal.warn(warning)
    with Instance(resolved.connection) as instance:
        checked = live_check(instance, settings, apply=False, force=False, warn=terminal.warn)
    return checked.outcome


def run_explain(options: ExplainOptions, terminal: Terminal) -> int:
    if options.snapshot and (options.connection.profile or options.connection.instance):
        raise ConfigError(
            "--snapshot reads a file: it cannot be combined with --instance or --profile"
        )
    outcome = _offline(options, terminal) if options.snapshot else _live(options, terminal)
    explanation = explain(outcome, options.subject)
    if options.format == "json":
        terminal.out.file.write(json.dumps(explanation_json(explanation), indent=2) + "\n")
        terminal.out.file.flush()
    else:
        marks = Glyphs.for_console(terminal.out)
        terminal.out.print(Trimmed(explanation_view(explanation, marks)))
    return 0
