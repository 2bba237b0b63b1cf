"""The parsers of ``snowcheck snapshot`` and ``snowcheck watch``, and their typed options.

``snowcheck.cli`` passes in the arguments every command shares (instance, credentials, the
check's options) as a ``Shared``: it imports this module, never the reverse, and stays short.
As there, each command's module is imported only when that command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snowcheck.output.report import Terminal
from snowcheck.settings import ConnectionOptions, RuleOptions, SnapshotOptions, WatchOptions


@dataclass(frozen=True)
class Shared:
    """The command line's shared arguments, and how they become typed options."""

    connection_arguments: Callable[..., None]
    """``(parser, account="--user")``: instance, account, config, profile, TLS, auth."""
    check_arguments: Callable[[argparse.ArgumentParser], None]
    connection_options: Callable[[argparse.Namespace], ConnectionOptions]
    rule_options: Callable[[argparse.Namespace], RuleOptions]


SNAPSHOT_DESCRIPTION = (
    "Make exactly the reads of a check and write them, with a manifest, as a snapshot file: "
    "check --snapshot on it finds what a live check finds now. Nothing is written if any "
    "read fails."
)

WATCH_DESCRIPTION = (
    "Re-run the check with a 5-minute window (unless --window) every interval until no "
    "finding remains, for the users named with --user or at all. Nothing is written "
    "unless --apply."
)

WATCH_EPILOG = """\
The account comes from --login, SERVICENOW_USERNAME or the config file: in watch,
--user names a MID user to follow.

exit status:
  0 no finding left (of the followed users); 1 a round could not complete;
  2 usage or configuration error; 3 the timeout passed with findings left.

examples:
  snowcheck watch --instance dev12345 --user mid.west
  snowcheck watch --user mid.west --apply --interval 1m --timeout 1h
  snowcheck watch --format json > rounds.jsonl
"""


def snapshot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    parser.add_argument(
        "--redact",
        action="store_true",
        help="replace user names, MID Server names, hosts and addresses by keyed pseudonyms",
    )
    parser.add_argument(
        "--redact-key-file",
        metavar="FILE",
        help="the pseudonyms' key (same key, same pseudonyms across files); implies --redact",
    )


def snapshot_options(
    args: argparse.Namespace, connection: ConnectionOptions, rules: RuleOptions
) -> SnapshotOptions:
    return SnapshotOptions(
        connection=connection,
        rules=rules,
        output=args.output,
        redact=args.redact,
        redact_key_file=args.redact_key_file,
    )


def watch_arguments(parser: argparse.ArgumentParser) -> None:
    following = parser.add_argument_group("following")
    following.add_argument(
        "--user",
        dest="watch_users",
        metavar="NAME",
        action="append",
        default=[],
        help="a MID user to follow (repeatable); default: every finding",
    )
    following.add_argument(
        "--interval", default="30s", help="time between rounds: 30s (default), 0.5s, 2m"
    )
    following.add_argument(
        "--timeout", default="30m", help="give up (exit 3) after this long: 30m (default), 2h"
    )
    writing = parser.add_argument_group("writing back")
    writing.add_argument(
        "--apply",
        action="store_true",
        help="write each round's plan; with --user only the changes naming those users",
    )
    writing.add_argument(
        "--force",
        action="store_true",
        help="without --user, let a window shorter than 4h resolve issues",
    )
    writing.add_argument("--lock-file", metavar="PATH", help="lock held while a round applies")
    writing.add_argument(
        "--no-lock", action="store_true", help="apply without taking the per-instance lock"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table (a live view on a terminal, one line per round otherwise) or json "
        "(one JSON object per round)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no rounds and no warnings, only the exit status (and an error); --format json "
        "still writes its rounds",
    )


def watch_options(
    args: argparse.Namespace, connection: ConnectionOptions, rules: RuleOptions
) -> WatchOptions:
    return WatchOptions(
        connection=connection,
        rules=rules,
        format=args.format,
        quiet=args.quiet,
        interval=args.interval,
        timeout=args.timeout,
        users=tuple(args.watch_users),
        apply=args.apply,
        force=args.force,
        lock_file=args.lock_file,
        no_lock=args.no_lock,
    )


def add_snapshot_parser(commands: Any, shared: Shared, *, epilog: str) -> None:
    """``snowcheck snapshot`` on argparse's subparsers ``commands``."""
    snapshot = commands.add_parser(
        "snapshot",
        help="capture what a check reads, as the file check --snapshot reads",
        description=SNAPSHOT_DESCRIPTION,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shared.connection_arguments(snapshot)
    shared.check_arguments(snapshot)
    snapshot_arguments(snapshot)

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        connection, rules = shared.connection_options(args), shared.rule_options(args)
        from snowcheck.commands.snapshot import run_snapshot

        return run_snapshot(snapshot_options(args, connection, rules), terminal)

    snapshot.set_defaults(run=run)


def add_watch_parser(commands: Any, shared: Shared) -> None:
    """``snowcheck watch`` on argparse's subparsers ``commands``; its account is ``--login``."""
    watch = commands.add_parser(
        "watch",
        help="re-run the check every interval until no finding remains (follow a fix)",
        description=WATCH_DESCRIPTION,
        epilog=WATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shared.connection_arguments(watch, account="--login")
    shared.check_arguments(watch)
    watch_arguments(watch)

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        connection, rules = shared.connection_options(args), shared.rule_options(args)
        from snowcheck.commands.watch import run_watch

        return run_watch(watch_options(args, connection, rules), terminal)

    watch.set_defaults(run=run)
