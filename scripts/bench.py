#!/usr/bin/env python3
"""Benchmark snowcheck against a large emulated instance; prints a Markdown table.

Run it as ./scripts/bench [--latency SECONDS] [--sample N]. The emulator runs in its own
process (scripts/bench_scenario.py: 200,000 users, 1,000,000 sysevent rows, ...) with a
fixed latency per request; every check runs in a child process of its own, which reports
its requests, bytes, wall time and peak RSS. Sequential round trips are counted from the
emulator's request log (the start and end of each request). Every check makes the
advisories' extra reads. Measured, in one run:

0. round trips: a dry run of a one-page instance (the demo scenario) and of the large
   one, each at 50 ms and at 500 ms per request;
1. a dry run (the batched reads of snowcheck.pull);
2. the per-user strategy of the instance's own job (one sysevent query per candidate
   user), on a sample of candidates, extrapolated linearly to all of them;
3. an applied check (about 1,100 changes written back through the Batch API);
4. a dry run against a second instance with twice the users without the role and twice
   the non-login events: requests and bytes should not move.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snowcheck.check import assess  # noqa: E402 (after the sys.path insert)
from snowcheck.emulator import Emulator, LogEntry, Scenario, sequential_rounds  # noqa: E402
from snowcheck.guards import raise_if_too_many  # noqa: E402
from snowcheck.plan import Action  # noqa: E402
from snowcheck.pull import (  # noqa: E402
    DEFAULT_CONCURRENCY,
    EVENT_FIELDS,
    QUERY_BUDGET,
    pull_snapshot,
    read_associations,
    read_down_mids,
    read_open_issues,
    read_role_holders,
    read_users,
)
from snowcheck.records import EVENT_TABLE, Inventory, format_time  # noqa: E402
from snowcheck.rules import LOGIN_EVENTS, SCHEDULING_MARGIN, event_candidates  # noqa: E402
from snowcheck.servicenow.instance import Instance  # noqa: E402
from snowcheck.servicenow.query import and_, eq, in_  # noqa: E402
from snowcheck.servicenow.session import Connection  # noqa: E402
from snowcheck.writeback import WriteBack  # noqa: E402

WINDOW = timedelta(hours=4)
SOURCE = "MIDUserConnectivity"
SCENARIO = ROOT / "scripts" / "bench_scenario.py"
ONE_PAGE = ROOT / "config" / "examples" / "demo-scenario.json"
SLOW = 0.5
"""The latency of a far instance, seconds per request."""

TARGET_DRY_REQUESTS = 40
TARGET_DRY_WALL = 10.0
TARGET_PEAK_MB = 250.0
TARGET_REQUEST_RATIO = 20.0
TARGET_WALL_RATIO = 10.0
TARGET_WRITE_WALL = 10.0
TARGET_DOUBLING = 0.05
TARGET_ONE_PAGE_ROUNDS = 2
TARGET_START_UP = 0.5
"""Seconds of start-up and work allowed on top of the round trips at 500 ms."""


# -- the child processes: one check each ------------------------------------------------------


class Meter:
    """Requests, bytes and wall time of one instance since the last mark."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.mark()

    def mark(self) -> None:
        self._start = (
            self.instance.requests_made,
            self.instance.bytes_received,
            self.instance.bytes_sent,
            time.perf_counter(),
        )

    def read(self) -> dict[str, float]:
        requests, received, sent, started = self._start
        return {
            "requests": self.instance.requests_made - requests,
            "received": self.instance.bytes_received - received,
            "sent": self.instance.bytes_sent - sent,
            "wall": time.perf_counter() - started,
        }


def _connect(url: str) -> Instance:
    return Instance(Connection(base_url=url, user="admin", password="admin"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_check(url: str, *, apply: bool, concurrency: int) -> dict[str, Any]:
    """One check as `snowcheck check [--apply]` runs it: pull, assess, apply."""
    with _connect(url) as instance:
        total = Meter(instance)
        snapshot = pull_snapshot(instance, window=WINDOW, source=SOURCE, concurrency=concurrency)
        outcome = assess(snapshot, instance=url, window=WINDOW, source=SOURCE, messages="docs")
        pulled = total.read()
        plan = outcome.plan
        result: dict[str, Any] = {
            "pull": pulled,
            "findings": len(outcome.evaluation.findings),
            "candidates": len(outcome.evaluation.sets.candidates),
            "plan": {action.value: len(plan.of(action)) for action in Action},
        }
        if apply:
            plan.raise_if_unsafe(saw_mid_users=outcome.evaluation.saw_mid_users, force=False)
            # As `check --apply --max-changes 0`: its 1,100 changes exceed the default 500.
            raise_if_too_many(plan, max_changes=0, force=False)
            writing = Meter(instance)
            writer = WriteBack(instance, concurrency=concurrency)
            applied = writer.apply(plan)
            result["write"] = writing.read()
            result["applied"] = len(applied)
            result["duplicates_resolved"] = len(writer.duplicates_resolved)
        result["total"] = total.read()
    result["peak_mb"] = _peak_mb()
    return result


def child_per_user(url: str, *, sample: int) -> dict[str, Any]:
    """The instance job's strategy: the same reads, but one sysevent query per candidate.

    The reads go one at a time, as the job's do. Only ``sample`` candidates (chosen at
    random, fixed seed) are queried; the caller extrapolates to all of them.
    """
    with _connect(url) as instance:
        meter = Meter(instance)
        holders = read_role_holders(instance)
        assert instance.now is not None
        now = instance.now
        since = now - WINDOW - SCHEDULING_MARGIN
        associations = read_associations(instance)
        down_mids = read_down_mids(instance)
        known = {row["user_name"] for row in holders.users}
        configured = {str(row.get("value", "")) for row in associations}
        fetched = read_users(instance, sorted(configured - known), budget=QUERY_BUDGET)
        read_open_issues(instance, SOURCE)
        tables = {
            "sys_user_role": holders.roles,
            "sys_user_has_role": holders.grants,
            "sys_user": holders.users + fetched,
            "ecc_agent_config": associations,
            "ecc_agent": down_mids,
        }
        candidates = sorted(event_candidates(Inventory.from_tables(tables)))
        base = meter.read()
        chosen = random.Random(0).sample(candidates, min(sample, len(candidates)))
        window = and_(
            in_("name", LOGIN_EVENTS),
            f"sys_created_on>{format_time(since)}",
            f"sys_created_on<={format_time(now)}",
        )
        meter.mark()
        events = 0
        for user in chosen:
            events += len(
                instance.fetch(EVENT_TABLE, and_(window, eq("parm1", user)), EVENT_FIELDS)
            )
        per_user = meter.read()
    return {
        "base": base,
        "sampled": per_user,
        "sample": len(chosen),
        "candidates": len(candidates),
        "events": events,
        "peak_mb": _peak_mb(),
    }


# -- the benchmark: processes, figures, table ----------------------------------------------


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


class EmulatorProcess:
    """scripts/bench_scenario.py in its own process; stops when its stdin closes."""

    def __init__(self, scale: int, latency: float) -> None:
        say(f"generating the scale-{scale} instance in the emulator process (30 to 60 s)")
        self.process = subprocess.Popen(
            [sys.executable, str(SCENARIO), "--scale", str(scale), "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise SystemExit(f"bench: the emulator process failed ({self.process.returncode})")
        self.info: dict[str, Any] = json.loads(line)
        self.url: str = self.info["url"]
        say(f"{sum(self.info['rows'].values()):,} rows loaded in {self.info['load_seconds']} s")

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def control(url: str, method: str, path: str, payload: object = None) -> Any:
    """One request to the emulator's control endpoints (loopback only)."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{url}/__emulator/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as answer:
        body = answer.read()
    return json.loads(body) if body else None


def rounds_of(url: str) -> int:
    """Sequential round trips in the emulator's request log since it was last cleared."""
    entries = [
        LogEntry(**{**entry, "ignored": tuple(entry.get("ignored", ()))})
        for entry in control(url, "GET", "log")
    ]
    return sequential_rounds(entries)


def timed_dry_run(url: str, latency: float, common: Sequence[str]) -> dict[str, Any]:
    """A dry run at ``latency`` seconds per request, with its round trips."""
    control(url, "POST", "faults", {"latency": latency})
    control(url, "DELETE", "log")
    result = run_child("--child", "dry", "--url", url, *common)
    result["rounds"] = rounds_of(url)
    return result


def round_trips(common: Sequence[str]) -> dict[str, Any]:
    """The one-page instance (the demo scenario, served here) at 50 ms and 500 ms."""
    say("round trips of a one-page instance (the demo scenario)")
    with Emulator(Scenario.load(str(ONE_PAGE)), port=0) as emulator:
        user, password = emulator.credentials
        assert (user, password) == ("admin", "admin")
        return {
            "fast": timed_dry_run(emulator.url, 0.05, common),
            "slow": timed_dry_run(emulator.url, SLOW, common),
        }


def run_child(*arguments: str) -> dict[str, Any]:
    """Run this script as a child (`--child ...`) and return the JSON it prints."""
    done = subprocess.run(
        [sys.executable, __file__, *arguments], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench: the child {' '.join(arguments)} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def extrapolate(per_user: dict[str, Any]) -> dict[str, float]:
    """Base reads plus every candidate's query, scaled from the sample."""
    factor = per_user["candidates"] / per_user["sample"] if per_user["sample"] else 0.0
    base, sampled = per_user["base"], per_user["sampled"]
    return {key: base[key] + sampled[key] * factor for key in base}


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _kb(value: float) -> str:
    return f"{value / 1024:,.0f} KiB"


def _s(value: float) -> str:
    return f"{value:.2f} s"


def _mb(value: float) -> str:
    return f"{value:.0f} MB"


def _ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:,.0f}×" if fast else "-"


def _change(before: float, after: float) -> float:
    return (after - before) / before if before else 0.0


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def round_trip_table(trips: dict[str, Any], dry: dict[str, Any], dry_slow: dict[str, Any]) -> str:
    """Requests and sequential rounds of a dry run, with its wall time at 50 and 500 ms."""
    rows = []
    for name, fast, slow in (
        ("one-page instance (demo)", trips["fast"], trips["slow"]),
        ("large instance", dry, dry_slow),
    ):
        rows.append(
            [
                name,
                _n(fast["pull"]["requests"]),
                f"{fast['rounds']}"
                + ("" if fast["rounds"] == slow["rounds"] else f"/{slow['rounds']}"),
                _s(fast["pull"]["wall"]),
                _s(slow["pull"]["wall"]),
            ]
        )
    return table(["Dry run", "requests", "rounds", "wall at 50 ms", "wall at 500 ms"], rows)


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    trips: dict[str, Any],
    dry_slow: dict[str, Any],
    dry: dict[str, Any],
    per_user: dict[str, Any],
    applied: dict[str, Any],
    doubled_info: dict[str, Any] | None,
    doubled: dict[str, Any] | None,
) -> bool:
    """Print the tables and the targets; returns whether every target was met."""
    rows = info["rows"]
    print(
        f"Emulated instance: {rows['sys_user']:,} users, {rows['sysevent']:,} sysevent rows, "
        f"{rows['ecc_agent']:,} MID Servers, {rows['ecc_agent_issue']:,} issues; "
        f"{args.latency * 1000:.0f} ms per request, emulator in its own process, "
        f"concurrency {args.concurrency}, Python {sys.version.split()[0]}.\n"
    )
    print(
        "Round trips: sequential rounds counted from the emulator's request log; the "
        "advisories' reads included.\n"
    )
    print(round_trip_table(trips, dry, dry_slow))
    print()
    d = dry["pull"]
    p = extrapolate(per_user)
    sampled = per_user["sample"] < per_user["candidates"]
    note = " (extrapolated)" if sampled else ""
    print(f"Dry run: {dry['candidates']:,} event candidates, {dry['findings']:,} findings.\n")
    print(
        table(
            ["Dry run", "snowcheck (batched)", f"per-user strategy{note}", "ratio"],
            [
                [
                    "HTTP requests",
                    _n(d["requests"]),
                    _n(p["requests"]),
                    _ratio(p["requests"], d["requests"]),
                ],
                [
                    "bytes received",
                    _kb(d["received"]),
                    _kb(p["received"]),
                    _ratio(p["received"], d["received"]),
                ],
                ["bytes sent", _kb(d["sent"]), _kb(p["sent"]), _ratio(p["sent"], d["sent"])],
                ["wall time", _s(d["wall"]), _s(p["wall"]), _ratio(p["wall"], d["wall"])],
                ["peak RSS", _mb(dry["peak_mb"]), _mb(per_user["peak_mb"]), ""],
            ],
        )
    )
    if sampled:
        s = per_user["sampled"]
        print(
            f"\nPer-user strategy measured on {per_user['sample']} of "
            f"{per_user['candidates']:,} candidates ({_n(s['requests'])} requests, "
            f"{_s(s['wall'])}), after its {_n(per_user['base']['requests'])} other reads "
            f"({_s(per_user['base']['wall'])}); extrapolated linearly to every candidate."
        )
    w, t = applied["write"], applied["total"]
    plan = applied["plan"]
    print(
        f"\nApplied check: {applied['applied']:,} changes written ({plan['update']:,} update, "
        f"{plan['resolve']:,} resolve, {plan['create']:,} create).\n"
    )
    a = applied["pull"]
    print(
        table(
            ["Applied check", "pull", "write-back", "total"],
            [
                ["HTTP requests", _n(a["requests"]), _n(w["requests"]), _n(t["requests"])],
                ["bytes received", _kb(a["received"]), _kb(w["received"]), _kb(t["received"])],
                ["bytes sent", _kb(a["sent"]), _kb(w["sent"]), _kb(t["sent"])],
                ["wall time", _s(a["wall"]), _s(w["wall"]), _s(t["wall"])],
                ["peak RSS", "", "", _mb(applied["peak_mb"])],
            ],
        )
    )
    after = applied["after"]
    converged = after["create"] == 0 and after["resolve"] == 0
    print(
        f"\nA dry run after it plans {after['update']:,} updates, {after['create']:,} creates "
        f"and {after['resolve']:,} resolves: "
        + ("every change was written." if converged else "**not converged**.")
    )
    one_page, one_page_slow = trips["fast"], trips["slow"]
    allowed = TARGET_ONE_PAGE_ROUNDS * SLOW + TARGET_START_UP
    checks: list[tuple[str, bool]] = [
        (
            f"one-page dry run in {TARGET_ONE_PAGE_ROUNDS} rounds ({one_page['rounds']} at "
            f"50 ms, {one_page_slow['rounds']} at 500 ms)",
            one_page["rounds"] == one_page_slow["rounds"] == TARGET_ONE_PAGE_ROUNDS,
        ),
        (
            f"one-page dry run at 500 ms ≤ {allowed:.1f} s ({_s(one_page_slow['pull']['wall'])})",
            one_page_slow["pull"]["wall"] <= allowed,
        ),
        (
            f"dry run ≤ {TARGET_DRY_REQUESTS} requests ({_n(d['requests'])})",
            d["requests"] <= TARGET_DRY_REQUESTS,
        ),
        (f"dry run ≤ {TARGET_DRY_WALL:.0f} s ({_s(d['wall'])})", d["wall"] <= TARGET_DRY_WALL),
        (
            f"peak RSS ≤ {TARGET_PEAK_MB:.0f} MB ({_mb(max(dry['peak_mb'], applied['peak_mb']))})",
            max(dry["peak_mb"], applied["peak_mb"]) <= TARGET_PEAK_MB,
        ),
        (
            f"≥ {TARGET_REQUEST_RATIO:.0f}× fewer requests than per-user "
            f"({_ratio(p['requests'], d['requests'])})",
            p["requests"] >= TARGET_REQUEST_RATIO * d["requests"],
        ),
        (
            f"≥ {TARGET_WALL_RATIO:.0f}× less wall time than per-user "
            f"({_ratio(p['wall'], d['wall'])})",
            p["wall"] >= TARGET_WALL_RATIO * d["wall"],
        ),
        (
            f"write-back of {applied['applied']:,} changes ≤ {TARGET_WRITE_WALL:.0f} s "
            f"({_s(w['wall'])})",
            w["wall"] <= TARGET_WRITE_WALL and applied["applied"] >= 1_000,
        ),
        ("the applied check converged (no create or resolve left)", converged),
    ]
    if doubled is not None and doubled_info is not None:
        b = doubled["pull"]
        before, after = info["rows"], doubled_info["rows"]
        print(
            "\nDoubling: twice the users without the role and twice the non-login events. "
            "snowcheck reads the same rows; the wall time that grows is the emulator's own "
            "SQLite work on the larger tables.\n"
        )
        changes = {key: _change(d[key], b[key]) for key in ("requests", "received", "sent", "wall")}
        print(
            table(
                ["Dry run", "instance", "doubled instance", "change"],
                [
                    [
                        "sys_user rows",
                        _n(before["sys_user"]),
                        _n(after["sys_user"]),
                        f"{_change(before['sys_user'], after['sys_user']):+.0%}",
                    ],
                    [
                        "sysevent rows",
                        _n(before["sysevent"]),
                        _n(after["sysevent"]),
                        f"{_change(before['sysevent'], after['sysevent']):+.0%}",
                    ],
                    [
                        "HTTP requests",
                        _n(d["requests"]),
                        _n(b["requests"]),
                        f"{changes['requests']:+.1%}",
                    ],
                    [
                        "bytes received",
                        _kb(d["received"]),
                        _kb(b["received"]),
                        f"{changes['received']:+.1%}",
                    ],
                    ["bytes sent", _kb(d["sent"]), _kb(b["sent"]), f"{changes['sent']:+.1%}"],
                    ["wall time", _s(d["wall"]), _s(b["wall"]), f"{changes['wall']:+.1%}"],
                ],
            )
        )
        for key, label in (
            ("requests", "requests"),
            ("received", "bytes received"),
            ("sent", "bytes sent"),
        ):
            checks.append(
                (
                    f"doubling moves {label} < {TARGET_DOUBLING:.0%} ({changes[key]:+.1%})",
                    abs(changes[key]) < TARGET_DOUBLING,
                )
            )
    print("\nTargets:\n")
    for text, met in checks:
        print(f"- [{'x' if met else ' '}] {text}{'' if met else ' **MISSED**'}")
    return all(met for _, met in checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request (0.05)")
    parser.add_argument(
        "--sample", type=int, default=300, help="candidates the per-user strategy queries (300)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight at once ({DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--no-doubling", action="store_true", help="skip the doubled instance")
    parser.add_argument("--child", choices=("dry", "apply", "per-user"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        jobs: dict[str, Callable[[], dict[str, Any]]] = {
            "dry": lambda: child_check(args.url, apply=False, concurrency=args.concurrency),
            "apply": lambda: child_check(args.url, apply=True, concurrency=args.concurrency),
            "per-user": lambda: child_per_user(args.url, sample=args.sample),
        }
        print(json.dumps(jobs[args.child]()))
        return 0

    started = time.perf_counter()
    common = ("--concurrency", str(args.concurrency), "--sample", str(args.sample))
    trips = round_trips(common)
    with EmulatorProcess(1, args.latency) as emulator:
        info = emulator.info
        say("dry run")
        dry = timed_dry_run(emulator.url, args.latency, common)
        say(f"dry run at {SLOW * 1000:.0f} ms per request")
        dry_slow = timed_dry_run(emulator.url, SLOW, common)
        control(emulator.url, "POST", "faults", {"latency": args.latency})
        say(f"per-user strategy on {args.sample} candidates")
        per_user = run_child("--child", "per-user", "--url", emulator.url, *common)
        say("applied check")
        applied = run_child("--child", "apply", "--url", emulator.url, *common)
        say("dry run after the applied check")
        applied["after"] = run_child("--child", "dry", "--url", emulator.url, *common)["plan"]
    doubled_info = doubled = None
    if not args.no_doubling:
        with EmulatorProcess(2, args.latency) as emulator:
            doubled_info = emulator.info
            say("dry run on the doubled instance")
            doubled = run_child("--child", "dry", "--url", emulator.url, *common)
    met = report(args, info, trips, dry_slow, dry, per_user, applied, doubled_info, doubled)
    say(f"done in {time.perf_counter() - started:.0f} s")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
