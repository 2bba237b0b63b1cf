"""The command line: argparse, settings precedence and exit codes; the work happens elsewhere."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from snowcheck import __version__
from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.errors import ConfigError, PartialWrite, SnowcheckError
from snowcheck.messages import CHOICES
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.render import Terminal
from snowcheck.rules import DEFAULT_WINDOW, HEARTBEAT, parse_window

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3

DESCRIPTION = """\
Find out why ServiceNow MID Server users cannot log in or connect.

snowcheck re-implements, remotely, the instance's MIDUserConnectivity job: it
reads users, roles, MID Server configuration, MID Servers and recent login
events over the REST Table API, runs the job's rules locally, and shows what it
would change in the MID Server Issue table (ecc_agent_issue). Nothing is written
unless you pass --apply.
"""

CHECK_EPILOG = """\
instance and credentials:
  --instance or SERVICENOW_INSTANCE (or SN_HOST): a short name (dev12345), a host
  name, or a URL (http:// only for loopback addresses). --user or
  SERVICENOW_USERNAME (or SN_USERNAME). The password comes from SERVICENOW_PASSWORD
  (or SN_PASSWORD), SERVICENOW_PASSWORD_FILE, or a prompt on a terminal; never from
  the command line. A TOML file (--config or SNOWCHECK_CONFIG) may hold all of it;
  the command line beats the environment, which beats the file.

exit status:
  0 the check ran; 1 it could not complete (nothing written); 2 usage or
  configuration error; 3 with --detailed-exitcode, the check ran and found issues.

examples:
  snowcheck check --instance dev12345 --user mid.checker
  snowcheck check --snapshot capture.json --debug 2
  snowcheck check --instance acme.service-now.com --apply --format json
"""


@dataclass(frozen=True)
class CheckSettings:
    """The check's own settings once command line, environment and file are merged."""

    window: timedelta
    source: str
    messages: str


def _pick(cli: Any, file: Mapping[str, Any], key: str, default: Any) -> Any:
    if cli is not None:
        return cli
    return file.get(key, default)


def check_settings(args: argparse.Namespace, file: Mapping[str, Any]) -> CheckSettings:
    window_text = _pick(args.window, file, "window", None)
    window = parse_window(str(window_text)) if window_text is not None else DEFAULT_WINDOW
    messages = str(_pick(args.messages, file, "messages", "docs"))
    if messages not in CHOICES:
        raise ConfigError(f"unknown message set {messages!r}: choose one of {', '.join(CHOICES)}")
    source = str(_pick(args.source, file, "source", DEFAULT_SOURCE))
    if not source.strip():
        raise ConfigError("the issue source cannot be empty (--source or 'source' in the config)")
    return CheckSettings(window=window, source=source, messages=messages)


def _load_file_config(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    from snowcheck.connection import config_path, load_config_file

    path = config_path(args.config, environ)
    return load_config_file(path) if path else {}


def _prompt() -> Callable[[str], str] | None:
    return getpass.getpass if sys.stdin is not None and sys.stdin.isatty() else None


def run_check(args: argparse.Namespace, terminal: Terminal) -> int:
    environ = os.environ
    if args.snapshot and args.apply:
        raise ConfigError("--apply needs a live instance: a snapshot file cannot be written back")
    file_config = {} if args.snapshot else _load_file_config(args, environ)
    settings = check_settings(args, file_config)
    if settings.window < HEARTBEAT:
        terminal.warn(
            f"window {settings.window} is shorter than the MID Server heartbeat interval "
            "(5 minutes): MID Servers may look down or silent when they are not"
        )

    if args.snapshot:
        outcome = assess(
            load_snapshot(args.snapshot),
            instance=args.snapshot,
            window=settings.window,
            source=settings.source,
            messages=settings.messages,
        )
        return _finish(args, terminal, outcome, applied=False)

    from snowcheck.connection import resolve_connection
    from snowcheck.instance import Instance
    from snowcheck.pull import pull_snapshot

    resolved = resolve_connection(
        instance=args.instance,
        user=args.user,
        ca_bundle=args.ca_bundle,
        config=file_config,
        environ=environ,
        prompt=_prompt(),
    )
    for warning in resolved.warnings:
        terminal.warn(warning)
    connection = resolved.connection
    with Instance(connection) as instance:
        snapshot = pull_snapshot(instance, window=settings.window, source=settings.source)
        if snapshot.clock_source == "local":
            terminal.warn("the instance sent no Date header: using the local clock as 'now'")
        outcome = assess(
            snapshot,
            instance=connection.base_url,
            window=settings.window,
            source=settings.source,
            messages=settings.messages,
        )
        for warning in outcome.plan.warnings:
            terminal.warn(warning)
        if not args.apply:
            return _finish(args, terminal, outcome, applied=False)
        outcome.plan.raise_if_unsafe(
            saw_mid_users=outcome.evaluation.saw_mid_users, force=args.force
        )
        try:
            instance.apply(outcome.plan)
        except PartialWrite as exc:
            terminal.partial_write(exc)
            raise
    return _finish(args, terminal, outcome, applied=True)


def _finish(
    args: argparse.Namespace, terminal: Terminal, outcome: Outcome, *, applied: bool
) -> int:
    if args.format == "json":
        if args.debug:
            terminal.debug(outcome, args.debug)
        terminal.json(outcome, applied=applied)
    else:
        terminal.report(outcome, applied=applied, debug=args.debug)
    if args.detailed_exitcode and outcome.evaluation.findings:
        return EXIT_FINDINGS
    return EXIT_OK


def run_emulator(args: argparse.Namespace, terminal: Terminal) -> int:
    from snowcheck.emulator import serve

    serve(args.scenario, args.port, latency=args.latency)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snowcheck",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"snowcheck {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="run the MIDUserConnectivity check (a dry run unless --apply)",
        description="Run the MIDUserConnectivity rules against an instance or a snapshot file, "
        "and show the findings and what would change in ecc_agent_issue.",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = check.add_argument_group("what to check")
    target.add_argument("--instance", help="instance: short name, host name or URL")
    target.add_argument("--user", help="user name for Basic auth")
    target.add_argument("--config", metavar="FILE", help="TOML config file (or SNOWCHECK_CONFIG)")
    target.add_argument(
        "--ca-bundle", metavar="FILE", help="CA bundle to verify the instance's TLS"
    )
    target.add_argument(
        "--snapshot",
        metavar="FILE",
        help='check a captured instance offline: {"now": ..., "tables": {...}} as the API returns',
    )
    rules = check.add_argument_group("the check")
    rules.add_argument(
        "--window",
        help="reporting period: 4h, 5m, 90s, or milliseconds as the job takes (default 4h)",
    )
    rules.add_argument(
        "--source", help=f"issue source written and matched (default {DEFAULT_SOURCE})"
    )
    rules.add_argument(
        "--messages",
        choices=CHOICES,
        help="message wording: docs (default), kingston (older releases), or auto (match the "
        "open issues on the instance)",
    )
    writing = check.add_argument_group("writing back")
    writing.add_argument("--apply", action="store_true", help="write the plan to ecc_agent_issue")
    writing.add_argument(
        "--force",
        action="store_true",
        help="apply even a plan that resolves every open issue while no MID user was seen",
    )
    output = check.add_argument_group("output")
    output.add_argument("--format", choices=("table", "json"), default="table")
    output.add_argument(
        "--debug",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="1: the size of every set; 2: every member and each user's conditions",
    )
    output.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 3 when the check found issues"
    )
    check.set_defaults(run=run_check)

    emulator = commands.add_parser(
        "emulator",
        help="serve the bundled ServiceNow Table API emulator on 127.0.0.1",
        description="Serve a scenario over the Table API on 127.0.0.1, to try snowcheck "
        "(or a cron set-up) without an instance.",
    )
    emulator.add_argument("--scenario", metavar="FILE", help="scenario JSON (default: the demo)")
    emulator.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    emulator.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every answer"
    )
    emulator.set_defaults(run=run_emulator)
    return parser


def main(argv: Sequence[str] | None = None, terminal: Terminal | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    terminal = terminal or Terminal()
    try:
        code: int = args.run(args, terminal)
        return code
    except SnowcheckError as exc:
        terminal.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        terminal.error("interrupted; nothing more was written")
        return EXIT_FAILED
