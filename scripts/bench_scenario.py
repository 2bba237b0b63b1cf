#!/usr/bin/env python3
"""The emulator process of scripts/bench: generate a large instance, serve it, stop on EOF.

Rows are generated here, in the emulator's own process, and bulk-loaded (one transaction
per table); nothing goes through a scenario file. Once serving, one JSON line goes to
stdout: {"url", "rows": {table: count}, "load_seconds"}. The process
stops when its stdin is closed.

The instance (``--scale 1``), at 12:00:00 UTC, window 4 h:

- 200,000 users: mid00000..mid04999 hold mid_server (half of them soap_script too;
  mid03300 and above are inactive), user000000.. are 195,000 users without the role.
- 2,000 MID Servers, every fifth one Down (400); 3,000 mid.instance.username rows:
  mid00000..mid02799 and user000000..user000199, on MID (row number mod 2000).
- So 600 down users and 500 role-not-configured users: 1,100 event candidates.
- 1,000,000 sysevent rows over the last 24 h: 20,000 login events of 500 candidates
  inside the window, 10,000 of candidates before it, 70,000 logins of other users,
  900,000 other events (session, view, ...) about anyone.
- 1,000 open issues of MIDUserConnectivity: 600 that the check updates (candidates
  without any login in the window), 400 that it resolves; the 100 candidates whose last
  attempt failed, or who connected without an association, get new issues: 1,100 changes.

``--scale 2`` doubles the users without the role and the non-login events only: what a
check reads is the same, so its requests and bytes should not move.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snowcheck.emulator import Emulator, Scenario  # noqa: E402 (after the sys.path insert)
from snowcheck.messages import DOCS  # noqa: E402

NOW = datetime(2026, 11, 25, 12, 0, 0)
WINDOW = timedelta(hours=4)
SINCE = NOW - WINDOW - timedelta(seconds=60)
DAY = timedelta(hours=24)
SOURCE = "MIDUserConnectivity"
BUILDSTAMP = "xanadu-07-02-2024__patch1-08-15-2024_08-21-2024_1200"

ROLE_USERS = 5_000
ACTIVE_ROLE_USERS = 3_300
CONFIGURED_ROLE_USERS = 2_800
PLAIN_USERS = 195_000
CONFIGURED_PLAIN_USERS = 200
MIDS = 2_000
ASSOCIATIONS = 3_000
CANDIDATE_LOGINS = 20_000
CANDIDATE_OLD_LOGINS = 10_000
OTHER_LOGINS = 70_000
OTHER_EVENTS = 900_000
STALE_ISSUES = 400
SILENT_DOWN_USERS = 150
FAILING_DOWN_USERS = 50
SILENT_UNCONFIGURED = 450

LOGIN_NAMES = ("login", "login.failed", "login.authorization.failed")
OTHER_NAMES = ("session.established", "user.view", "glide.heartbeat", "text_index.update")


def mid_user(i: int) -> str:
    return f"mid{i:05d}"


def plain_user(j: int) -> str:
    return f"user{j:06d}"


def sys_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:031x}"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def is_down(mid: int) -> bool:
    return mid % 5 == 0


def association_user(row: int) -> str:
    if row < CONFIGURED_ROLE_USERS:
        return mid_user(row)
    return plain_user(row - CONFIGURED_ROLE_USERS)


def down_users() -> list[str]:
    """Users with an association row on a Down MID Server, in row order (each has n = 1)."""
    return [association_user(row) for row in range(ASSOCIATIONS) if is_down(row % MIDS)]


def unconfigured_users() -> list[str]:
    """Active mid_server holders without an association row."""
    return [mid_user(i) for i in range(CONFIGURED_ROLE_USERS, ACTIVE_ROLE_USERS)]


def users(scale: int) -> Iterator[dict[str, str]]:
    for i in range(ROLE_USERS):
        yield {
            "sys_id": sys_id("a", i),
            "user_name": mid_user(i),
            "name": f"MID user {i}",
            "active": "true" if i < ACTIVE_ROLE_USERS else "false",
            "locked_out": "false",
            "sys_domain": "global",
        }
    for j in range(PLAIN_USERS * scale):
        yield {
            "sys_id": sys_id("b", j),
            "user_name": plain_user(j),
            "name": f"User {j}",
            "active": "true" if j % 10 else "false",
            "locked_out": "false",
            "sys_domain": "global",
        }


def roles() -> list[dict[str, str]]:
    names = ("mid_server", "soap_script", "soap", "admin", "itil", "catalog", "approver_user")
    return [{"sys_id": sys_id("r", n), "name": name} for n, name in enumerate(names)]


def grants(scale: int) -> Iterator[dict[str, str]]:
    mid_role, soap_role, itil_role = sys_id("r", 0), sys_id("r", 1), sys_id("r", 4)
    count = 0
    for i in range(ROLE_USERS):
        held = (mid_role, soap_role) if i % 2 == 0 else (mid_role,)
        for role in held:
            yield {"sys_id": sys_id("c", count), "user": sys_id("a", i), "role": role}
            count += 1
    for j in range(0, PLAIN_USERS * scale, 10):
        yield {"sys_id": sys_id("g", j), "user": sys_id("b", j), "role": itil_role}


def mids() -> list[dict[str, str]]:
    return [
        {
            "sys_id": sys_id("d", k),
            "name": f"mid-server-{k:04d}",
            "status": "Down" if is_down(k) else "Up",
            "last_refreshed": stamp(NOW - timedelta(hours=2 if is_down(k) else 0, minutes=1)),
            "user_name": mid_user(k),  # the user its mid.instance.username row names
            "validated": "true",
            "version": BUILDSTAMP,
        }
        for k in range(MIDS)
    ]


def properties() -> list[dict[str, str]]:
    """The MID Server version properties the advisories read."""
    return [
        {"sys_id": sys_id("p", 0), "name": "mid.buildstamp", "value": BUILDSTAMP},
        {"sys_id": sys_id("p", 1), "name": "mid.version.override", "value": ""},
    ]


def configs() -> Iterator[dict[str, str]]:
    for row in range(ASSOCIATIONS):
        yield {
            "sys_id": sys_id("f", row),
            "ecc_agent": sys_id("d", row % MIDS),
            "param_name": "mid.instance.username",
            "value": association_user(row),
            "sys_domain": "global",
        }
    for k in range(MIDS):  # other parameters, never read
        for n, name in enumerate(("mid.log.level", "threads.max")):
            yield {
                "sys_id": sys_id("h", k * 2 + n),
                "ecc_agent": sys_id("d", k),
                "param_name": name,
                "value": "debug" if n == 0 else "25",
                "sys_domain": "global",
            }


def _event(n: int, name: str, user: str, moment: datetime) -> dict[str, str]:
    return {
        "sys_id": sys_id("e", n),
        "name": name,
        "parm1": user,
        "parm2": "soap_script" if name == "login.authorization.failed" else "",
        "sys_created_on": stamp(moment),
    }


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.randrange(1, int((end - start).total_seconds())))


def login_events() -> Iterator[dict[str, str]]:
    """The 100,000 login-type events; the same rows at every scale."""
    rng = random.Random(1)
    down = down_users()
    unconfigured = unconfigured_users()
    active = [*down[SILENT_DOWN_USERS:], *unconfigured[SILENT_UNCONFIGURED:]]
    failing = set(down[SILENT_DOWN_USERS : SILENT_DOWN_USERS + FAILING_DOWN_USERS])
    each = CANDIDATE_LOGINS // len(active)
    n = 0
    for user in active:
        for _ in range(each - 1):
            moment = _between(rng, SINCE + timedelta(seconds=5), NOW - timedelta(minutes=3))
            yield _event(n, rng.choice(LOGIN_NAMES), user, moment)
            n += 1
        # The last attempt, after the others: a login, except for the failing users.
        if user in failing:
            last = rng.choice(LOGIN_NAMES[1:])
        elif user in unconfigured:
            last = rng.choice(LOGIN_NAMES)
        else:
            last = "login"
        yield _event(n, last, user, NOW - timedelta(minutes=2))
        n += 1
    candidates = down + unconfigured
    for _ in range(CANDIDATE_OLD_LOGINS):
        moment = _between(rng, NOW - DAY, SINCE - timedelta(minutes=1))
        yield _event(n, rng.choice(LOGIN_NAMES), rng.choice(candidates), moment)
        n += 1
    for _ in range(OTHER_LOGINS):
        user = plain_user(rng.randrange(1_000, PLAIN_USERS))
        yield _event(n, rng.choice(LOGIN_NAMES), user, _between(rng, NOW - DAY, NOW))
        n += 1


def other_events(scale: int) -> Iterator[dict[str, str]]:
    """Events that are not logins, about anyone (candidates too); ``scale`` times as many."""
    rng = random.Random(2)
    start = NOW - DAY
    seconds = int(DAY.total_seconds())
    for n in range(OTHER_EVENTS * scale):
        j = rng.randrange(PLAIN_USERS * scale + ROLE_USERS)
        user = mid_user(j) if j < ROLE_USERS else plain_user(j - ROLE_USERS)
        yield {
            "sys_id": sys_id("o", n),
            "name": OTHER_NAMES[n % len(OTHER_NAMES)],
            "parm1": user,
            "parm2": "",
            "sys_created_on": stamp(start + timedelta(seconds=rng.randrange(1, seconds))),
        }


def _issue(n: int, message: str, state: str, source: str = SOURCE) -> dict[str, str]:
    return {
        "sys_id": sys_id("i", n),
        "message": message,
        "source": source,
        "state": state,
        "count": "3",
        "last_detected": stamp(NOW - timedelta(hours=1)),
        "mid_server": "" if source == SOURCE else sys_id("d", n % MIDS),
        "sys_domain": "global",
        "sys_created_on": stamp(NOW - timedelta(days=2)),
        "sys_updated_on": stamp(NOW - timedelta(hours=1)),
    }


def issues() -> list[dict[str, str]]:
    down = down_users()
    unconfigured = unconfigured_users()
    messages = [DOCS.render("no_login_down", user, 1) for user in down[:SILENT_DOWN_USERS]]
    messages += [
        DOCS.render("no_login_unassociated", user) for user in unconfigured[:SILENT_UNCONFIGURED]
    ]
    messages += [
        DOCS.render("no_login_down", plain_user(5_000 + j), 1) for j in range(STALE_ISSUES)
    ]
    rows = [
        _issue(n, message, "acknowledged" if n % 7 == 0 else "new")
        for n, message in enumerate(messages)
    ]
    # History and other sources, never read by the check.
    base = len(rows)
    rows += [
        _issue(base + n, DOCS.render("no_login_down", plain_user(n), 1), "resolved")
        for n in range(2_000)
    ]
    base = len(rows)
    rows += [
        _issue(base + n, f"MID Server mid-server-{n:04d} is down", "new", "MIDServerStatus")
        for n in range(500)
    ]
    return rows


def load(emulator: Emulator, scale: int) -> dict[str, int]:
    counts = {
        "sys_user_role": emulator.load_rows("sys_user_role", roles()),
        "sys_user": emulator.load_rows("sys_user", users(scale)),
        "sys_user_has_role": emulator.load_rows("sys_user_has_role", grants(scale)),
        "ecc_agent": emulator.load_rows("ecc_agent", mids()),
        "ecc_agent_config": emulator.load_rows("ecc_agent_config", configs()),
        "ecc_agent_issue": emulator.load_rows("ecc_agent_issue", issues()),
        "sys_properties": emulator.load_rows("sys_properties", properties()),
    }
    logins = emulator.load_rows("sysevent", login_events())
    counts["sysevent"] = logins + emulator.load_rows("sysevent", other_events(scale))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="multiplier of the unread rows")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    args = parser.parse_args()

    started = time.perf_counter()
    emulator = Emulator(Scenario.from_dict({"now": stamp(NOW)}), port=0)
    counts = load(emulator, args.scale)
    loaded = time.perf_counter() - started
    emulator.latency = args.latency
    with emulator:
        print(
            json.dumps({"url": emulator.url, "rows": counts, "load_seconds": round(loaded, 1)}),
            flush=True,
        )
        sys.stdin.read()  # serve until the benchmark closes our stdin
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
