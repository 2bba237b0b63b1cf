"""``snowcheck explain USER``: read a snapshot or pull live, explain one user, print it."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.cli import check_settings, select_profile
from snowcheck.errors import ConfigError
from snowcheck.explain import explain
from snowcheck.render import Glyphs, Terminal, Trimmed
from snowcheck.render_explain import explanation_json, explanation_view


def _offline(args: argparse.Namespace, terminal: Terminal) -> Outcome:
    settings = check_settings(args, {}, terminal)
    return assess(
        load_snapshot(args.snapshot),
        instance=args.snapshot,
        window=settings.window,
        source=settings.source,
        messages=settings.messages,
    )


def _live(args: argparse.Namespace, terminal: Terminal) -> Outcome:
    """A dry-run check of the instance: the same reads as ``check``, nothing written."""
    from snowcheck.connection import config_path, load_config_file, resolve_connection
    from snowcheck.instance import Instance
    from snowcheck.run import live_check

    path = config_path(args.config, os.environ)
    profile = select_profile(load_config_file(path) if path else {}, args.profile)
    settings = check_settings(args, profile, terminal)
    prompt = getpass.getpass if sys.stdin is not None and sys.stdin.isatty() else None
    resolved = resolve_connection(
        instance=args.instance,
        user=args.user,
        ca_bundle=args.ca_bundle,
        config=profile,
        environ=os.environ,
        prompt=prompt,
    )
    for warning in resolved.warnings:
        terminal.warn(warning)
    with Instance(resolved.connection) as instance:
        checked = live_check(instance, settings, apply=False, force=False, warn=terminal.warn)
    return checked.outcome


def run_explain(args: argparse.Namespace, terminal: Terminal) -> int:
    if args.snapshot and (args.profile or args.instance):
        raise ConfigError(
            "--snapshot reads a file: it cannot be combined with --instance or --profile"
        )
    outcome = _offline(args, terminal) if args.snapshot else _live(args, terminal)
    for warning in outcome.plan.warnings:
        terminal.warn(warning)
    explanation = explain(outcome, args.subject)
    if args.format == "json":
        terminal.out.file.write(json.dumps(explanation_json(explanation), indent=2) + "\n")
        terminal.out.file.flush()
    else:
        marks = Glyphs.for_console(terminal.out)
        terminal.out.print(Trimmed(explanation_view(explanation, marks)))
    return 0
