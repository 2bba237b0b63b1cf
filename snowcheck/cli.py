"""The command line: argparse, settings precedence and exit codes; the work happens elsewhere."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from snowcheck import __version__
from snowcheck.check import Outcome, assess, load_snapshot
from snowcheck.errors import ConfigError, PartialWrite, SnowcheckError
from snowcheck.messages import CHOICES
from snowcheck.plan import DEFAULT_SOURCE, Change
from snowcheck.pull import DEFAULT_CONCURRENCY
from snowcheck.redact import Redactor
from snowcheck.render import Terminal
from snowcheck.rules import DEFAULT_WINDOW, HEARTBEAT, parse_window
from snowcheck.run import CheckSettings

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
  the command line. A TOML file (--config or SNOWCHECK_CONFIG) may hold all of it,
  with [instances.NAME] profiles chosen by --profile; the command line beats the
  environment, which beats the file.
"""

CHECK_EPILOG = (
    CONNECTION_HELP
    + """
exit status:
  0 the check ran (also: another run holds the lock); 1 it could not complete
  (nothing written); 2 usage or configuration error; 3 with --detailed-exitcode,
  the check ran and found issues. With --format nagios: 0 OK, 1 WARNING,
  2 CRITICAL, 3 UNKNOWN.

examples:
  snowcheck check --instance dev12345 --user mid.checker
  snowcheck check --snapshot capture.json --debug 2
  snowcheck check --profile prod --apply --quiet --log-file /var/log/snowcheck.log
  snowcheck check --all-profiles
"""
)


def _prompt() -> Callable[[str], str] | None:
    return getpass.getpass if sys.stdin is not None and sys.stdin.isatty() else None


# Settings ------------------------------------------------------------------------------------


def _file_config(args: argparse.Namespace) -> dict[str, Any]:
    from snowcheck.connection import config_path, load_config_file

    path = config_path(getattr(args, "config", None), os.environ)
    return load_config_file(path) if path else {}


def profile_names(file_config: Mapping[str, Any]) -> list[str]:
    instances = file_config.get("instances", {})
    if not isinstance(instances, Mapping):
        raise ConfigError("'instances' in the config file must be a table of [instances.NAME]")
    return list(instances)


def select_profile(file_config: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """The top-level settings overlaid with those of [instances.NAME]."""
    merged = {key: value for key, value in file_config.items() if key != "instances"}
    if name is None:
        return merged
    names = profile_names(file_config)
    if name not in names:
        known = ", ".join(names) or "none"
        raise ConfigError(f"no profile {name!r} in the config file (profiles: {known})")
    profile = file_config["instances"][name]
    if not isinstance(profile, Mapping):
        raise ConfigError(f"[instances.{name}] in the config file must be a table")
    merged.update(profile)
    return merged


def check_settings(
    args: argparse.Namespace, profile: Mapping[str, Any], terminal: Terminal
) -> CheckSettings:
    """The check's settings, command line first; warns of a window under the heartbeat."""

    def pick(cli: Any, key: str, default: Any) -> Any:
        return cli if cli is not None else profile.get(key, default)

    window_text = pick(args.window, "window", None)
    window = parse_window(str(window_text)) if window_text is not None else DEFAULT_WINDOW
    if window < HEARTBEAT:
        terminal.warn(
            f"window {window} is shorter than the MID Server heartbeat interval "
            "(5 minutes): MID Servers may look down or silent when they are not"
        )
    messages = str(pick(args.messages, "messages", "docs"))
    if messages not in CHOICES:
        raise ConfigError(f"unknown message set {messages!r}: choose one of {', '.join(CHOICES)}")
    source = str(pick(args.source, "source", DEFAULT_SOURCE))
    if not source.strip():
        raise ConfigError("the issue source cannot be empty (--source or 'source' in the config)")
    concurrency = pick(getattr(args, "concurrency", None), "concurrency", DEFAULT_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(
            "concurrency must be a whole number of at least 1 "
            "(--concurrency or 'concurrency' in the config)"
        )
    return CheckSettings(window=window, source=source, messages=messages, concurrency=concurrency)


def write_options(profile: Mapping[str, Any]) -> dict[str, Any]:
    """How apply writes: 'batch' (true/false) and 'batch_size' (changes per batch request)."""
    from snowcheck.instance import DEFAULT_BATCH_ITEMS

    batch = profile.get("batch", True)
    if not isinstance(batch, bool):
        raise ConfigError("config key 'batch' must be true or false")
    size = profile.get("batch_size", DEFAULT_BATCH_ITEMS)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError("config key 'batch_size' must be a positive whole number")
    return {"batch": batch, "batch_items": size}


# The check -----------------------------------------------------------------------------------


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

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _progress(terminal: Terminal) -> contextlib.AbstractContextManager[Any]:
    """A rich progress bar on stderr, only on a terminal and never in quiet mode."""
    if terminal.quiet or not terminal.err.is_terminal:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=terminal.err,
        transient=True,
    )


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
    args: argparse.Namespace,
    terminal: Terminal,
    record: RunRecord,
    profile: Mapping[str, Any],
    profile_name: str | None,
    prompt: Callable[[str], str] | None,
) -> Outcome:
    from snowcheck.connection import resolve_connection
    from snowcheck.instance import Instance
    from snowcheck.locking import InstanceLock, default_lock_path
    from snowcheck.run import live_check

    settings = check_settings(args, profile, terminal)
    if args.apply and profile.get("apply", True) is False:
        raise ConfigError(
            f"profile {profile_name!r} does not allow --apply (apply = false in the config)"
        )
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
    connection = resolved.connection
    record.instance_url = connection.base_url
    record.redactor.add_login(connection.user, connection.password)

    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if args.apply and not args.no_lock:
        lock = InstanceLock(args.lock_file or default_lock_path(connection.base_url, os.environ))
    with (
        lock,
        _progress(terminal) as bar,
        Instance(
            connection, progress=_progress_callback(bar), **write_options(profile)
        ) as instance,
    ):
        try:
            checked = live_check(
                instance, settings, apply=args.apply, force=args.force, warn=terminal.warn
            )
        except PartialWrite as exc:
            record.applied = tuple(c for c in exc.applied if isinstance(c, Change))
            terminal.partial_write(exc)
            raise
        finally:
            record.requests = instance.requests_made
    record.outcome = checked.outcome
    record.applied = checked.applied
    return checked.outcome


def _offline(args: argparse.Namespace, terminal: Terminal) -> Outcome:
    if args.apply:
        raise ConfigError("--apply needs a live instance: a snapshot file cannot be written back")
    settings = check_settings(args, {}, terminal)
    outcome = assess(
        load_snapshot(args.snapshot),
        instance=args.snapshot,
        window=settings.window,
        source=settings.source,
        messages=settings.messages,
    )
    for warning in outcome.plan.warnings:
        terminal.warn(warning)
    return outcome


@contextlib.contextmanager
def _log_file(args: argparse.Namespace, record: RunRecord) -> Iterator[None]:
    if not args.log_file:
        yield
        return
    from snowcheck.monitoring import open_log_file

    handler = open_log_file(args.log_file, redactor=record.redactor)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    except SnowcheckError as exc:
        logging.getLogger("snowcheck").error("%s", exc)
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def _write_prometheus(args: argparse.Namespace, record: RunRecord, *, success: bool) -> None:
    from snowcheck.monitoring import prometheus_text, read_last_success, write_textfile_atomically

    path = args.prometheus_textfile
    instance = record.instance_url or str(args.instance or args.profile or "unknown")
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


def run_check(args: argparse.Namespace, terminal: Terminal) -> int:
    if args.all_profiles:
        return run_all_profiles(args, terminal)
    if args.snapshot and (args.profile or args.instance):
        raise ConfigError(
            "--snapshot reads a file: it cannot be combined with --instance or --profile"
        )
    record = RunRecord(redactor=terminal.redactor)
    try:
        with _log_file(args, record):
            if args.snapshot:
                outcome = _offline(args, terminal)
            else:
                file_config = _file_config(args)
                profile = select_profile(file_config, args.profile)
                outcome = _live(args, terminal, record, profile, args.profile, _prompt())
    except SnowcheckError as exc:
        from snowcheck.locking import LockHeld

        if isinstance(exc, LockHeld):
            terminal.info(str(exc))
            return EXIT_OK
        if args.prometheus_textfile:
            with contextlib.suppress(SnowcheckError):
                _write_prometheus(args, record, success=False)
        if args.format == "nagios":
            from snowcheck.monitoring import nagios_report

            text, code = nagios_report(
                None,
                error=record.redactor(str(exc)),
                elapsed=record.elapsed,
                applied=False,
            )
            terminal.out.file.write(text)
            return code
        raise
    if args.prometheus_textfile:
        _write_prometheus(args, record, success=True)
    return _finish(args, terminal, outcome, record=record)


def _finish(
    args: argparse.Namespace,
    terminal: Terminal,
    outcome: Outcome,
    *,
    record: RunRecord,
) -> int:
    applied = record.applied
    if args.format == "nagios":
        from snowcheck.monitoring import nagios_report

        text, code = nagios_report(outcome, elapsed=record.elapsed, applied=applied is not None)
        terminal.out.file.write(text)
        return code
    if args.format == "json":
        if args.debug:
            terminal.debug(outcome, args.debug)
        terminal.json(outcome, applied=applied)
    elif args.format_given or not args.quiet:
        terminal.report(outcome, applied=applied, debug=args.debug)
    if args.detailed_exitcode and outcome.evaluation.findings:
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


def _run_profile(
    args: argparse.Namespace, name: str, file_config: Mapping[str, Any]
) -> ProfileResult:
    quiet = Terminal(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True)
    record = RunRecord(redactor=quiet.redactor)
    profile_args = argparse.Namespace(**{**vars(args), "instance": None, "user": None})
    try:
        profile = select_profile(file_config, name)
        # No prompt: prompts from several threads would interleave; passwords come from
        # the environment or password files here.
        outcome = _live(profile_args, quiet, record, profile, name, None)
    except SnowcheckError as exc:
        from snowcheck.locking import LockHeld

        if isinstance(exc, LockHeld):
            return ProfileResult(name, record.instance_url, None, False, str(exc), EXIT_OK)
        message = record.redactor(str(exc))
        return ProfileResult(name, record.instance_url, None, False, message, exc.exit_code)
    return ProfileResult(name, record.instance_url, outcome, record.applied is not None, None, 0)


def run_all_profiles(args: argparse.Namespace, terminal: Terminal) -> int:
    if args.snapshot or args.instance or args.profile:
        raise ConfigError("--all-profiles takes its instances from the config file's profiles")
    file_config = _file_config(args)
    names = profile_names(file_config)
    if not names:
        raise ConfigError("--all-profiles needs [instances.NAME] tables in the config file")
    with ThreadPoolExecutor(max_workers=min(4, len(names))) as pool:
        results = list(pool.map(lambda name: _run_profile(args, name, file_config), names))
    terminal.profiles(results)
    if any(result.error and result.code for result in results):
        return EXIT_FAILED
    if args.detailed_exitcode and any(r.outcome and r.outcome.evaluation.findings for r in results):
        return EXIT_FINDINGS
    return EXIT_OK


# Other commands ------------------------------------------------------------------------------


def run_emulator(args: argparse.Namespace, terminal: Terminal) -> int:
    from snowcheck.demo import DEMO_SCENARIO
    from snowcheck.emulator import ScenarioError, serve

    scenario = args.scenario or str(DEMO_SCENARIO)
    try:
        serve(scenario, args.port, latency=args.latency)
    except ScenarioError as exc:
        raise ConfigError(f"scenario {scenario}: {exc}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc} (try another --port)"
        ) from None
    return EXIT_OK


def run_demo(args: argparse.Namespace, terminal: Terminal) -> int:
    from snowcheck.demo import demo

    demo(terminal, scenario=args.scenario)
    return EXIT_OK


def run_doctor(args: argparse.Namespace, terminal: Terminal) -> int:
    from snowcheck.doctor import doctor

    profile = select_profile(_file_config(args), args.profile)
    ok = doctor(
        terminal,
        instance=args.instance,
        user=args.user,
        ca_bundle=args.ca_bundle,
        profile=profile,
        prompt=_prompt(),
        settings=check_settings(args, profile, terminal),
    )
    return EXIT_OK if ok else EXIT_FAILED


# The parser ----------------------------------------------------------------------------------


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("instance and credentials")
    group.add_argument("--instance", help="instance: short name, host name or URL")
    group.add_argument("--user", help="user name for Basic auth")
    group.add_argument("--config", metavar="FILE", help="TOML config file (or SNOWCHECK_CONFIG)")
    group.add_argument("--profile", metavar="NAME", help="use [instances.NAME] of the config file")
    group.add_argument("--ca-bundle", metavar="FILE", help="CA bundle to verify the instance's TLS")


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
        help="reads in flight at once (default 4; 1 reads one table at a time)",
    )


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
    check.set_defaults(run=run_check)

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
    doctor.set_defaults(run=run_doctor)

    demo = commands.add_parser(
        "demo",
        help="show the whole lifecycle against the bundled emulator (nothing leaves this machine)",
        description="Start the bundled ServiceNow emulator on 127.0.0.1, run a dry run, apply, "
        "fix one problem and run again, showing the MID Server Issue table after each step.",
    )
    demo.add_argument("--scenario", metavar="FILE", help="scenario JSON (default: the bundled one)")
    demo.set_defaults(run=run_demo)

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


class _TerminalWarnings(logging.Handler):
    """snowcheck's own warnings (retries, duplicates settled) as terminal warnings.

    Without it Python prints them bare on stderr, even under --quiet.
    """

    def __init__(self, terminal: Terminal) -> None:
        super().__init__(logging.WARNING)
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        self.terminal.warn(record.getMessage())


def main(argv: Sequence[str] | None = None, terminal: Terminal | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        args.format_given = args.format is not None
        args.format = args.format or "table"
    terminal = terminal or Terminal()
    terminal.quiet = terminal.quiet or getattr(args, "quiet", False)
    warnings = _TerminalWarnings(terminal)
    logging.getLogger("snowcheck").addHandler(warnings)
    try:
        code: int = args.run(args, terminal)
        return code
    except SnowcheckError as exc:
        terminal.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        terminal.error("interrupted; nothing more was written")
        return EXIT_FAILED
    finally:
        logging.getLogger("snowcheck").removeHandler(warnings)
