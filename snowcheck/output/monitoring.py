"""Output for unattended runs: Nagios plugin text, the Prometheus textfile and the log file.

Each output is built from the same Outcome the report uses; nothing here
reads the network or decides what the check found.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from snowcheck.advisories import ADVISORIES
from snowcheck.check import Outcome
from snowcheck.errors import ConfigError
from snowcheck.output.text import literal
from snowcheck.plan import Action, Change
from snowcheck.redact import redact
from snowcheck.rules import RULES, Who

# Nagios --------------------------------------------------------------------------------------


class NagiosState(IntEnum):
    """The monitoring-plugins states; the value is the plugin's exit status."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


_WHO_BY_RULE = {rule.id: rule.who for rule in RULES}


def advisories_by_id(outcome: Outcome) -> dict[str, int]:
    """The number of advisories of every id computed, zeros included; skipped ids left out
    (not checked is not none found). Empty when the advisories were not asked for."""
    advice = outcome.advice
    if advice is None:
        return {}
    skipped = {skip.advisory for skip in advice.skipped}
    return {rule.id: advice.count(rule.id) for rule in ADVISORIES if rule.id not in skipped}


def findings_by_rule(outcome: Outcome) -> dict[str, int]:
    """The number of findings of every rule, in the rule set's order, zeros included."""
    counts = dict.fromkeys((rule.id for rule in RULES), 0)
    for finding in outcome.evaluation.findings:
        counts[finding.rule] += 1
    return counts


def _nagios_text(value: str) -> str:
    """Instance data made inert for a plugin line.

    Control characters become escapes (one finding stays one line, no ANSI
    reaches a console), and ``|`` becomes ``/``: Nagios takes everything after
    the first ``|`` of a line as performance data.
    """
    return literal(value).replace("|", "/")


def _perf(label: str, value: int | float, unit: str = "") -> str:
    # 'label'=value[UOM];[warn];[crit];[min];[max]: no thresholds, a minimum of 0.
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    return f"{label}={shown}{unit};;;0"


def _plan_counts(changes: Sequence[Change]) -> str:
    return ", ".join(
        f"{sum(1 for change in changes if change.action is action)} {action.value}"
        for action in (Action.CREATE, Action.UPDATE, Action.RESOLVE)
    )


def nagios_report(
    outcome: Outcome | None, *, error: str | None = None, elapsed: float, applied: bool
) -> tuple[str, int]:
    """The plugin output (status line, then one line per finding and advisory), its exit status.

    CRITICAL when a finding concerns users of down MID Servers, WARNING when
    every finding is a role-not-configured user, or when there is no finding but
    advisories, OK with neither, UNKNOWN when the check could not run (``error``:
    the one-line error, already free of secrets).
    """
    elapsed_perf = _perf("time", max(elapsed, 0.0), "s")
    if error is not None or outcome is None:
        lines = (error or "").strip().splitlines()
        reason = lines[0] if lines else "the check produced no result"
        return (
            f"SNOWCHECK UNKNOWN - {_nagios_text(reason)} | {elapsed_perf}\n",
            int(NagiosState.UNKNOWN),
        )

    findings = outcome.evaluation.findings
    on_down = sum(1 for finding in findings if _WHO_BY_RULE[finding.rule] is Who.DOWN)
    configuration = len(findings) - on_down
    advisories = outcome.advice.advisories if outcome.advice else ()
    if on_down:
        state = NagiosState.CRITICAL
    elif configuration or advisories:
        state = NagiosState.WARNING
    else:
        state = NagiosState.OK

    changes = outcome.plan.changes
    noun = "finding" if len(findings) == 1 else "findings"
    # Only when the advisories were computed: --no-advisories says nothing of them.
    advised = "" if outcome.advice is None else f"{_advisories(len(advisories))}, "
    summary = (
        f"{len(findings)} {noun} ({on_down} on down MID Servers, {configuration} configuration), "
        f"{advised}{'applied' if applied else 'plan'}: {_plan_counts(changes)}"
    )
    perfdata = " ".join(
        [_perf(rule_id, count) for rule_id, count in findings_by_rule(outcome).items()]
        + [_perf("findings", len(findings))]
        + ([] if outcome.advice is None else [_perf("advisories", len(advisories))])
        + [_perf("changes", len(changes)), elapsed_perf]
    )
    lines = [f"SNOWCHECK {state.name} - {summary} | {perfdata}"]
    lines += [_nagios_text(finding.message) for finding in findings]
    lines += [
        _nagios_text(f"advisory {item.id} ({item.severity.value}) {item.subject}: {item.detail}")
        for item in advisories
    ]
    return "\n".join(lines) + "\n", int(state)


def _advisories(count: int) -> str:
    return f"{count} advisor{'y' if count == 1 else 'ies'}"


# Prometheus ----------------------------------------------------------------------------------

INSTANCE_LABEL = "instance"
"""Note: Prometheus renames a scraped ``instance`` label to ``exported_instance``
unless the node_exporter job sets ``honor_labels: true``."""

OPEN_STATES = ("new", "acknowledged")


def _label_value(value: str) -> str:
    """Escaped as the text exposition format requires: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample_value(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


@dataclass(frozen=True)
class _Metric:
    name: str
    help: str
    samples: tuple[tuple[dict[str, str], int | float], ...]

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        for labels, value in self.samples:
            shown = ",".join(f'{key}="{_label_value(text)}"' for key, text in labels.items())
            out.append(f"{self.name}{{{shown}}} {_sample_value(value)}")
        return out


def _open_issues_by_state(outcome: Outcome) -> dict[str, int]:
    counts = dict.fromkeys(OPEN_STATES, 0)
    for issue in outcome.inventory.issues:
        if issue.source == outcome.source and issue.mid_server == "" and issue.state != "resolved":
            counts[issue.state] = counts.get(issue.state, 0) + 1
    return counts


def prometheus_text(
    outcome: Outcome | None,
    *,
    success: bool,
    elapsed: float,
    requests: int,
    applied_changes: Sequence[Change] | None,
    instance: str,
    now: float,
    previous_success: float | None = None,
) -> str:
    """The node_exporter textfile of one run: every metric a gauge, labelled with the instance.

    Findings and open issues are written only when the check produced an
    outcome. The last-success timestamp is ``now`` after a success; after a
    failure it is ``previous_success`` when given (see ``read_last_success``),
    so an alert on its age keeps working across failed runs.
    """
    who = {INSTANCE_LABEL: instance}
    metrics: list[_Metric] = []
    findings: tuple[tuple[dict[str, str], int | float], ...] = ()
    open_issues: tuple[tuple[dict[str, str], int | float], ...] = ()
    advisories: tuple[tuple[dict[str, str], int | float], ...] = ()
    if outcome is not None:
        findings = tuple(
            ({**who, "rule": rule}, count) for rule, count in findings_by_rule(outcome).items()
        )
        advisories = tuple(
            ({**who, "id": advisory}, count)
            for advisory, count in advisories_by_id(outcome).items()
        )
        open_issues = tuple(
            ({**who, "state": state}, count)
            for state, count in _open_issues_by_state(outcome).items()
        )
    applied = {action: 0 for action in Action}
    for change in applied_changes or ():
        applied[change.action] += 1

    metrics.append(_Metric("snowcheck_findings", "Findings of the last check, per rule.", findings))
    metrics.append(
        _Metric(
            "snowcheck_advisories",
            "Advisories of the last check, per id (never written to ecc_agent_issue); "
            "an id not checked has no sample.",
            advisories,
        )
    )
    metrics.append(
        _Metric(
            "snowcheck_open_issues",
            "Open ecc_agent_issue records of the check's source, per state, as read by the "
            "last check (before its changes).",
            open_issues,
        )
    )
    metrics.append(
        _Metric(
            "snowcheck_changes_applied",
            "Changes written to ecc_agent_issue by the last run, per action (0 on a dry run).",
            tuple(({**who, "action": action.value}, count) for action, count in applied.items()),
        )
    )
    last_success = now if success else previous_success
    if last_success is not None:
        metrics.append(
            _Metric(
                "snowcheck_last_success_timestamp_seconds",
                "Unix time at which a run last completed.",
                ((who, float(last_success)),),
            )
        )
    metrics.append(
        _Metric(
            "snowcheck_last_run_success",
            "1 if the last run completed, 0 if it failed.",
            ((who, 1 if success else 0),),
        )
    )
    metrics.append(
        _Metric(
            "snowcheck_run_duration_seconds",
            "Duration of the last run in seconds.",
            ((who, float(elapsed)),),
        )
    )
    metrics.append(
        _Metric(
            "snowcheck_http_requests",
            "HTTP requests the last run sent to the instance.",
            ((who, int(requests)),),
        )
    )
    return "\n".join(line for metric in metrics for line in metric.lines()) + "\n"


_LAST_SUCCESS = re.compile(
    r"^snowcheck_last_success_timestamp_seconds\{(?P<labels>.*)\} (?P<value>\S+)$"
)


def read_last_success(path: str, instance: str) -> float | None:
    """The last-success timestamp an earlier run wrote to ``path`` for ``instance``, if any."""
    try:
        with open(path, encoding="utf-8") as previous:
            text = previous.read()
    except (OSError, UnicodeDecodeError):
        return None
    wanted = f'{INSTANCE_LABEL}="{_label_value(instance)}"'
    for line in text.splitlines():
        match = _LAST_SUCCESS.match(line)
        if match and match.group("labels") == wanted:
            try:
                value = float(match.group("value"))
            except ValueError:
                return None
            return value if math.isfinite(value) else None
    return None


def write_textfile_atomically(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new, never a part.

    The temporary file lives in the same folder (``os.replace`` is atomic only
    within one file system) and does not end in ``.prom``, which the
    node_exporter textfile collector would read.
    """
    folder = os.path.dirname(os.path.abspath(path))
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w",
            encoding="utf-8",
            dir=folder,
            prefix=".snowcheck-",
            suffix=".tmp",
            delete=False,
        ) as handle:
            temporary = handle.name
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


# The log file --------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and traceback with ``redact`` before any output."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def add(self, secret: str) -> None:
        """Redact ``secret`` too, from now on (the password is known after the log opens)."""
        if secret and secret not in self.secrets:
            self.secrets = (*self.secrets, secret)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string: keep what was logged rather than break the caller.
            message = f"{record.msg} (unformatted arguments: {record.args!r})"
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class UtcLineFormatter(logging.Formatter):
    """``2026-11-25T12:00:00Z snowcheck INFO message``: UTC, one line per message.

    Control characters in the message are escaped, so data from the instance
    cannot forge extra lines; tracebacks still follow on their own lines.
    """

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return (
            f"{self.formatTime(record)} {record.name} {record.levelname} {literal(record.message)}"
        )


def open_log_file(
    path: str, *, secrets: Iterable[str] = (), level: int = logging.INFO
) -> logging.Handler:
    """A handler appending redacted, timestamped lines to ``path``.

    Pass the password (and any other secret the run knows) in ``secrets``.
    """
    try:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot open log file {path}: {exc.strerror or exc}") from None
    handler.setLevel(level)
    handler.setFormatter(UtcLineFormatter())
    handler.addFilter(RedactingFilter(secrets))
    return handler
