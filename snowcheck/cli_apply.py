"""``snowcheck apply PLAN``'s command line, and the plan options ``check`` shares with it.

Kept beside ``snowcheck.cli`` (which registers it in PARSERS) to keep that module short;
it builds the command's typed options and imports the command only when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from snowcheck.output.report import Terminal
from snowcheck.settings import ApplyOptions, ConnectionOptions


def _changes_limit(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not a whole number of changes: {text!r} (0: no limit)")
    return int(text)


def max_changes_argument(group: Any) -> None:
    group.add_argument(
        "--max-changes",
        type=_changes_limit,
        metavar="N",
        help="apply at most N changes without --force (default 500, or the profile's "
        "max_changes; 0: no limit)",
    )


def plan_arguments(writing: Any, output: Any) -> None:
    """``check``'s --max-changes and --out (argument groups "writing back"), and --all."""
    max_changes_argument(writing)
    writing.add_argument(
        "--out",
        metavar="PLAN",
        help="save the plan, with the state of every issue it touches, for snowcheck apply PLAN",
    )
    output.add_argument(
        "--all",
        action="store_true",
        dest="show_all",
        help="show every finding and change (default: the first 50, and a count of the rest)",
    )


def apply_parser(
    commands: Any,
    connection_arguments: Callable[[argparse.ArgumentParser], None],
    connection_options: Callable[[argparse.Namespace], ConnectionOptions],
    connection_help: str,
) -> None:
    """``snowcheck apply PLAN``'s parser; the connection options are the cli's own."""
    apply = commands.add_parser(
        "apply",
        help="write a plan saved by check --out, if nothing changed since",
        description="Apply exactly the plan that check --out PLAN saved. The issues it\n"
        "touches are read again first: a plan made stale by any change to them (state,\n"
        "count, sys_updated_on), or made for another instance, is refused, and nothing\n"
        "is written (exit 1).",
        epilog=connection_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument("plan", metavar="PLAN", help="the plan file written by check --out")
    connection_arguments(apply)
    apply.add_argument("--force", action="store_true", help="apply a plan above --max-changes")
    max_changes_argument(apply)
    apply.add_argument("--lock-file", metavar="PATH", help="lock held while applying")
    apply.add_argument("--no-lock", action="store_true", help="apply without the instance lock")
    apply.add_argument("--quiet", action="store_true", help="print nothing on success")
    apply.add_argument("--log-file", metavar="PATH", help="append timestamped log lines here")

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        from snowcheck.commands.apply import run_apply

        options = ApplyOptions(
            plan=args.plan,
            connection=connection_options(args),
            force=args.force,
            max_changes=args.max_changes,
            lock_file=args.lock_file,
            no_lock=args.no_lock,
            quiet=args.quiet,
            log_file=args.log_file,
        )
        return run_apply(options, terminal)

    apply.set_defaults(run=run)
