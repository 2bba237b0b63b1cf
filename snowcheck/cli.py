"""The command line: argparse and exit codes; each command's work lives in snowcheck.commands.

Each command's module is imported only when that command runs: start-up time is part of
every check's wall time, and the demo and the emulator are not needed for a check.

Adding a command: a parser function here (its arguments, and ``set_defaults(run=...)``
turning them into the command's typed options), and one entry in ``PARSERS``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from snowcheck.about import VersionAction
from snowcheck.cli_apply import apply_parser, plan_arguments
from snowcheck.cli_follow import Shared, add_snapshot_parser, add_watch_parser
from snowcheck.crash import OutputClosed, guarded_stdout, last_resort
from snowcheck.credentials import LoginOptions
from snowcheck.emulator.options import latency_seconds, port_number
from snowcheck.errors import SnowcheckError
from snowcheck.interrupts import Interrupted, handling_signals, received, signal_name
from snowcheck.messages import CHOICES
from snowcheck.output.report import Terminal
from snowcheck.plan import DEFAULT_SOURCE
from snowcheck.servicenow.session import AUTH_METHODS
from snowcheck.settings import (
    CheckOptions,
    ConnectionOptions,
    DemoOptions,
    DoctorOptions,
    EmulatorOptions,
    ExplainOptions,
    OutputOptions,
    RuleOptions,
)

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

start with:  snowcheck demo     (the whole lifecycle against a bundled emulator)
"""

CONNECTION_HELP = """\
instance and credentials:
  --instance or SERVICENOW_INSTANCE (or SN_HOST): a short name (dev12345), a host
  name, or a URL (http:// only for loopback addresses). --user or
  SERVICENOW_USERNAME (or SN_USERNAME). The password comes from SERVICENOW_PASSWORD
  (or SN_PASSWORD), SERVICENOW_PASSWORD_FILE, or a prompt on a terminal; never from
  the command line. --auth (SERVICENOW_AUTH) picks basic, oauth-password,
  oauth-client-credentials, api-key or mtls; their secrets come the same way:
  SERVICENOW_CLIENT_ID, SERVICENOW_CLIENT_SECRET[_FILE], SERVICENOW_API_KEY[_FILE]
  (or SN_CLIENT_ID, SN_CLIENT_SECRET, SN_API_KEY, SN_GRANT_TYPE). A TOML file
  (--config or SNOWCHECK_CONFIG) may hold all of it, with [instances.NAME] profiles
  chosen by --profile; the command line beats the environment, which beats the file.
  With --profile (or --all-profiles) the instance and credentials come from the
  profile only: the variables above are ignored, with a warning naming each.
"""

CHECK_EPILOG = (
    CONNECTION_HELP
    + """
exit status:
  0 the check ran (also: another run holds the lock); 1 it could not complete
  (nothing written); 2 usage or configuration error; 3 with --detailed-exitcode,
  the check ran and found issues; 130 or 143 stopped by Ctrl-C (SIGINT) or SIGTERM
  (the write in flight completes, none starts after). With --format nagios: 0 OK,
  1 WARNING, 2 CRITICAL, 3 UNKNOWN.

examples:
  snowcheck check --instance dev12345 --user mid.checker
  snowcheck check --snapshot capture.json --debug 2
  snowcheck check --profile prod --apply --quiet --log-file /var/log/snowcheck.log
  snowcheck check --all-profiles
"""
)


# The parser ----------------------------------------------------------------------------------


def _connection_arguments(parser: argparse.ArgumentParser, account: str = "--user") -> None:
    group = parser.add_argument_group("instance and credentials")
    group.add_argument("--instance", help="instance: short name, host name or URL")
    group.add_argument(
        account,
        dest="user",
        help="user name (for basic and oauth-password; optional for the others)",
    )
    group.add_argument("--config", metavar="FILE", help="TOML config file (or SNOWCHECK_CONFIG)")
    group.add_argument("--profile", metavar="NAME", help="use [instances.NAME] of the config file")
    group.add_argument("--ca-bundle", metavar="FILE", help="CA bundle to verify the instance's TLS")
    group.add_argument(
        "--auth",
        choices=AUTH_METHODS,
        help="how to log in (or SERVICENOW_AUTH; default basic); secrets come from the "
        "environment, files or a prompt, never from the command line",
    )
    group.add_argument(
        "--client-cert", metavar="FILE", help="TLS client certificate (PEM), with any --auth"
    )
    group.add_argument("--client-key", metavar="FILE", help="the client certificate's key (PEM)")
    group.add_argument(
        "--no-token-cache",
        action="store_true",
        help="do not keep OAuth tokens between runs (in the user's state folder)",
    )


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    rules = parser.add_argument_group("the check")
    rules.add_argument(
        "--window",
        help="reporting period with its unit: 4h, 5m, 90s, 4h30m, or 300000ms (default 4h)",
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
    rules.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="requests in flight at once (default 6; 1 reads one table at a time)",
    )
    rules.add_argument(
        "--no-advisories",
        dest="advisories",
        action="store_false",
        default=None,
        help="skip the advisories' extra reads (every MID Server, sys_properties, clone issues)",
    )


Subparsers = Any
"""argparse's subparsers action (its type is private to argparse)."""


def _connection_options(args: argparse.Namespace) -> ConnectionOptions:
    return ConnectionOptions(
        instance=args.instance,
        user=args.user,
        config=args.config,
        profile=args.profile,
        ca_bundle=args.ca_bundle,
        login=LoginOptions(
            auth=args.auth,
            client_cert=args.client_cert,
            client_key=args.client_key,
            no_token_cache=args.no_token_cache,
        ),
    )


def _rule_options(args: argparse.Namespace) -> RuleOptions:
    return RuleOptions(
        window=args.window,
        source=args.source,
        messages=args.messages,
        concurrency=args.concurrency,
        advisories=args.advisories,
    )


def _check_parser(commands: Subparsers) -> None:
    check = commands.add_parser(
        "check",
        help="run the MIDUserConnectivity check (a dry run unless --apply)",
        description="Run the MIDUserConnectivity rules against an instance or a snapshot file, "
        "and show the findings and what would change in ecc_agent_issue.",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_arguments(check)
    check.add_argument(
        "--snapshot",
        metavar="FILE",
        help='check a captured instance offline: {"now": ..., "tables": {...}} as the API returns',
    )
    check.add_argument(
        "--all-profiles",
        action="store_true",
        help="check every [instances.NAME] profile concurrently and print one summary table",
    )
    _check_arguments(check)
    writing = check.add_argument_group("writing back")
    writing.add_argument("--apply", action="store_true", help="write the plan to ecc_agent_issue")
    writing.add_argument(
        "--force",
        action="store_true",
        help="apply even a plan the guards refuse (no MID user seen, rows an ACL hides, "
        "issues resolved with a window shorter than 4h)",
    )
    writing.add_argument(
        "--lock-file",
        metavar="PATH",
        help="lock held while applying (default: one per instance under the user's state folder)",
    )
    writing.add_argument(
        "--no-lock", action="store_true", help="apply without taking the per-instance lock"
    )
    output = check.add_argument_group("output")
    plan_arguments(writing, output)
    output.add_argument(
        "--format",
        choices=("table", "json", "nagios"),
        default=None,
        help="table (default), json (the contract), or nagios (plugin line and exit codes)",
    )
    output.add_argument(
        "--debug",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="1: the size of every set; 2: every member and each user's conditions",
    )
    output.add_argument(
        "--wide", action="store_true", help="show the sys_id of each change in the plan"
    )
    output.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 3 when the check found issues"
    )
    output.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing on success and only the one-line error on failure (for cron); "
        "an explicit --format still prints its document",
    )
    output.add_argument("--log-file", metavar="PATH", help="append timestamped log lines here")
    output.add_argument(
        "--prometheus-textfile",
        metavar="PATH",
        help="write node_exporter textfile metrics here (atomically), on success and failure",
    )

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        output = OutputOptions(
            format=args.format or "table",
            format_given=args.format is not None,
            debug=args.debug,
            detailed_exitcode=args.detailed_exitcode,
            quiet=args.quiet,
            log_file=args.log_file,
            prometheus_textfile=args.prometheus_textfile,
            wide=args.wide,
        )
        options = CheckOptions(
            connection=_connection_options(args),
            rules=_rule_options(args),
            output=output,
            snapshot=args.snapshot,
            all_profiles=args.all_profiles,
            apply=args.apply,
            force=args.force,
            lock_file=args.lock_file,
            no_lock=args.no_lock,
            max_changes=args.max_changes,
            show_all=args.show_all,
            out=args.out,
        )
        from snowcheck.commands.check import run_check
        from snowcheck.commands.fleet import run_fleet

        return (run_fleet if options.all_profiles else run_check)(options, terminal)

    check.set_defaults(run=run)


def _apply_parser(commands: Subparsers) -> None:
    apply_parser(commands, _connection_arguments, _connection_options, CONNECTION_HELP)


def _doctor_parser(commands: Subparsers) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check configuration, reachability, credentials and table access",
        description="Check, in order, everything a check needs, one line each with OK or FAIL "
        "and the fix. Writes nothing permanent.",
        epilog=CONNECTION_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_arguments(doctor)
    _check_arguments(doctor)

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        options = DoctorOptions(connection=_connection_options(args), rules=_rule_options(args))
        from snowcheck.commands.doctor import run_doctor

        return run_doctor(options, terminal)

    doctor.set_defaults(run=run)


def _demo_parser(commands: Subparsers) -> None:
    demo = commands.add_parser(
        "demo",
        help="show the whole lifecycle against the bundled emulator (nothing leaves this machine)",
        description="Start the bundled ServiceNow emulator on 127.0.0.1, run a dry run, apply, "
        "fix one problem while watch follows it and run again, showing the MID Server Issue "
        "table after each step.",
    )
    demo.add_argument("--scenario", metavar="FILE", help="scenario JSON (default: the bundled one)")

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        from snowcheck.commands.demo import run_demo

        return run_demo(DemoOptions(args.scenario), terminal)

    demo.set_defaults(run=run)


def _emulator_parser(commands: Subparsers) -> None:
    emulator = commands.add_parser(
        "emulator",
        help="serve the bundled ServiceNow Table API emulator on 127.0.0.1",
        description="Serve a scenario over the Table API on 127.0.0.1, to try snowcheck "
        "(or a cron set-up) without an instance.",
    )
    emulator.add_argument("--scenario", metavar="FILE", help="scenario JSON (default: the demo)")
    emulator.add_argument(
        "--port", type=port_number, default=8080, help="port (default 8080; 0: any free port)"
    )
    emulator.add_argument(
        "--latency", type=latency_seconds, default=0.0, help="seconds added to every answer"
    )
    emulator.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    emulator.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    emulator.add_argument("--client-ca", metavar="PEM", help="CA of accepted client certificates")
    emulator.add_argument(
        "--client-cert",
        choices=("none", "optional", "required"),
        default="none",
        help="ask for a client certificate (default: none)",
    )

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        options = EmulatorOptions(
            scenario=args.scenario,
            port=args.port,
            latency=args.latency,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            client_ca=args.client_ca,
            client_cert=args.client_cert,
        )
        from snowcheck.commands.emulator import run_emulator

        return run_emulator(options, terminal)

    # Ctrl-C is how the emulator is stopped: it keeps Python's own handling of signals.
    emulator.set_defaults(run=run, own_signals=True)


def _follow_parsers(commands: Subparsers) -> None:
    """``snapshot`` and ``watch`` (snowcheck.cli_follow), given the arguments all commands share."""
    shared = Shared(_connection_arguments, _check_arguments, _connection_options, _rule_options)
    add_snapshot_parser(commands, shared, epilog=CONNECTION_HELP)
    add_watch_parser(commands, shared)


def _explain_parser(commands: Subparsers) -> None:
    explain = commands.add_parser(
        "explain",
        help="everything behind one user's finding, or its absence",
        description="Show one user as the check sees them: the sys_user row, the roles that "
        "matter, the MID Servers naming the user, the login events of the window, each "
        "condition, the rule that fires (or why none does), the open issue and the plan's "
        "change for it, and what to check. Writes nothing.",
        epilog=CONNECTION_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("subject", metavar="USER", help="the User ID (user_name) to explain")
    _connection_arguments(explain)
    explain.add_argument("--snapshot", metavar="FILE", help="read a captured instance offline")
    _check_arguments(explain)
    explain.add_argument("--format", choices=("table", "json"), default="table")

    def run(args: argparse.Namespace, terminal: Terminal) -> int:
        from snowcheck.commands.explain import run_explain

        options = ExplainOptions(
            subject=args.subject,
            connection=_connection_options(args),
            rules=_rule_options(args),
            snapshot=args.snapshot,
            format=args.format,
        )
        return run_explain(options, terminal)

    explain.set_defaults(run=run)


PARSERS: tuple[Callable[[Subparsers], None], ...] = (
    _check_parser,
    _apply_parser,
    _follow_parsers,
    _explain_parser,
    _doctor_parser,
    _demo_parser,
    _emulator_parser,
)
"""One function per command: its arguments, and how they become its typed options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snowcheck",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in PARSERS:
        add_parser(commands)
    return parser


class _TerminalWarnings(logging.Handler):
    """snowcheck's own warnings (retries, duplicates settled) as terminal warnings.

    Without it Python prints them bare on stderr, even under --quiet.
    """

    def __init__(self, terminal: Terminal) -> None:
        super().__init__(logging.WARNING)
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "file_only", False):  # commands.check.FILE_ONLY
            self.terminal.warn(record.getMessage())


def main(argv: Sequence[str] | None = None, terminal: Terminal | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    terminal = terminal or Terminal(stdout=guarded_stdout())
    terminal.quiet = terminal.quiet or getattr(args, "quiet", False)
    warnings = _TerminalWarnings(terminal)
    logging.getLogger("snowcheck").addHandler(warnings)
    own_signals = getattr(args, "own_signals", False)
    with contextlib.nullcontext() if own_signals else handling_signals():  # to the last line
        try:
            code: int = args.run(args, terminal)
            terminal.out.file.flush()  # a full disk fails here, not in the interpreter's exit
            return _noted_signal(terminal) or code
        except OutputClosed:
            return EXIT_FAILED  # the reader went away (| head): it wants no more, errors included
        except SnowcheckError as exc:
            terminal.error(str(exc))
            return exc.exit_code
        except KeyboardInterrupt:  # SIGINT where snowcheck does not handle it
            interrupted = Interrupted(signal.SIGINT)
            terminal.error(str(interrupted))
            return interrupted.exit_code
        except Exception as exc:
            debug = getattr(args, "debug", None)
            return last_resort(exc, terminal, debug=debug, environ=os.environ)
        finally:
            logging.getLogger("snowcheck").removeHandler(warnings)


def _noted_signal(terminal: Terminal) -> int | None:
    """The exit status of a run that ended normally although a signal was noted, else None.

    Only write-backs of other threads (--all-profiles) keep a signal from raising; each
    says what it wrote, in its own row.
    """
    signum = received()
    if signum is None:
        return None
    terminal.error(f"interrupted by {signal_name(signum)}")
    return 128 + signum
