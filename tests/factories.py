"""Raw Table API rows for the rule, plan and record tests, shaped the way an instance returns them.

Every value is a string, a reference is a plain sys_id or a ``{"link", "value"}``
object, and every inventory goes through ``Inventory.from_tables``, so the
conversion of raw rows is exercised by every rule test too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from snowcheck.messages import DOCS, TemplateSet
from snowcheck.records import (
    CONFIG_TABLE,
    EVENT_TABLE,
    ISSUE_TABLE,
    MID_TABLE,
    ROLE_TABLE,
    TABLES,
    USER_ROLE_TABLE,
    USER_TABLE,
    Inventory,
)
from snowcheck.rules import Evaluation, Finding, evaluate

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
"""The instance clock of every test: 2026-11-25 12:00:00 UTC."""
NOW_TEXT = "2026-11-25 12:00:00"
FOUR_HOURS = timedelta(hours=4)
INSIDE = "2026-11-25 11:30:00"
"""Half an hour before NOW: inside the default 4 h window."""
OUTSIDE = "2026-11-25 07:00:00"
"""Five hours before NOW: outside the default 4 h window (since = 07:59:00)."""

USERNAME_PARAM = "mid.instance.username"
LOGIN = "login"
FAILED = "login.failed"
AUTHZ = "login.authorization.failed"
SOURCE = "MIDUserConnectivity"

MID_ROLES = ("mid_server", "soap", "soap_script")
"""What holding mid_server looks like in sys_user_has_role: the contained roles get rows too."""
KNOWN_ROLES = ("mid_server", "soap", "soap_script")
"""The sys_user_role rows every fake instance has."""

_API = "https://example.service-now.com/api/now/table"


def sys_id(*parts: str) -> str:
    """A stable 32-hex sys_id derived from names, so tests can point at a record by name."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def reference(table: str, value: str, *, link: bool) -> Any:
    """A reference field as the Table API returns it, with or without the link object."""
    if link:
        return {"link": f"{_API}/{table}/{value}", "value": value}
    return value


def flag(value: bool) -> str:
    return "true" if value else "false"


class FakeInstance:
    """The raw rows of one instance, added one record at a time; chain the calls."""

    def __init__(self, roles: Iterable[str] = KNOWN_ROLES) -> None:
        self.tables: dict[str, list[Any]] = {table: [] for table in TABLES}
        for name in roles:
            self.tables[ROLE_TABLE].append({"sys_id": sys_id("role", name), "name": name})

    def user(
        self,
        user_name: str,
        *,
        roles: Iterable[str] = MID_ROLES,
        active: bool = True,
        locked_out: bool = False,
        domain: str = "global",
        link: bool = False,
        record: str | None = None,
    ) -> FakeInstance:
        """A sys_user row and one sys_user_has_role row per role held."""
        record = record or sys_id(USER_TABLE, user_name)
        self.tables[USER_TABLE].append(
            {
                "sys_id": record,
                "user_name": user_name,
                "active": flag(active),
                "locked_out": flag(locked_out),
                "sys_domain": reference("sys_domain", domain, link=link),
            }
        )
        for role in roles:
            self.grant(record, role, link=link)
        return self

    def grant(self, user_record: str, role: str, *, link: bool = False) -> FakeInstance:
        """One sys_user_has_role row; call it twice for an inherited duplicate."""
        rows = self.tables[USER_ROLE_TABLE]
        rows.append(
            {
                "sys_id": sys_id(USER_ROLE_TABLE, str(len(rows))),
                "user": reference(USER_TABLE, user_record, link=link),
                "role": reference(ROLE_TABLE, sys_id("role", role), link=link),
            }
        )
        return self

    def mid(self, name: str, status: str = "Down") -> FakeInstance:
        self.tables[MID_TABLE].append(
            {
                "sys_id": sys_id(MID_TABLE, name),
                "name": name,
                "status": status,
                "last_refreshed": "2026-11-25 02:00:00",
            }
        )
        return self

    def associate(
        self,
        user_name: str,
        mid_name: str | None,
        *,
        param_name: str = USERNAME_PARAM,
        domain: str = "global",
        link: bool = False,
    ) -> FakeInstance:
        """An ecc_agent_config row naming ``user_name``; no ``mid_name`` leaves ecc_agent empty."""
        rows = self.tables[CONFIG_TABLE]
        agent = "" if mid_name is None else sys_id(MID_TABLE, mid_name)
        rows.append(
            {
                "sys_id": sys_id(CONFIG_TABLE, str(len(rows))),
                "ecc_agent": reference(MID_TABLE, agent, link=link),
                "param_name": param_name,
                "value": user_name,
                "sys_domain": reference("sys_domain", domain, link=link),
            }
        )
        return self

    def mids(
        self, user_name: str, *, down: int = 0, up: int = 0, domain: str = "global"
    ) -> FakeInstance:
        """``down`` Down and ``up`` Up MID Servers, each with a row naming ``user_name``.

        The MIDs are called ``<user>-down-<i>`` and ``<user>-up-<i>``, counting from 1.
        """
        for status, how_many in (("Down", down), ("Up", up)):
            for i in range(1, how_many + 1):
                name = f"{user_name}-{status.lower()}-{i}"
                self.mid(name, status).associate(user_name, name, domain=domain)
        return self

    def event(
        self, name: str, user_name: str, created_on: str = INSIDE, parm2: str = ""
    ) -> FakeInstance:
        rows = self.tables[EVENT_TABLE]
        rows.append(
            {
                "sys_id": sys_id(EVENT_TABLE, str(len(rows))),
                "name": name,
                "parm1": user_name,
                "parm2": parm2,
                "sys_created_on": created_on,
            }
        )
        return self

    def events(self, user_name: str, events: Iterable[tuple[str, str]]) -> FakeInstance:
        """Several events of one user, each ``(name, sys_created_on)``."""
        for name, created_on in events:
            self.event(name, user_name, created_on)
        return self

    def inventory(self) -> Inventory:
        return Inventory.from_tables(self.tables)

    def evaluate(
        self, *, window: timedelta = FOUR_HOURS, templates: TemplateSet = DOCS
    ) -> Evaluation:
        return evaluate(self.inventory(), now=NOW, window=window, templates=templates)


def one_user(
    user_name: str = "mid.east",
    *,
    roles: Iterable[str] = MID_ROLES,
    active: bool = True,
    locked_out: bool = False,
    in_sys_user: bool = True,
    down: int = 0,
    up: int = 0,
    events: Iterable[tuple[str, str]] = (),
) -> FakeInstance:
    """The usual rule-table scenario: one user, their MID Servers and their login events."""
    instance = FakeInstance()
    if in_sys_user:
        instance.user(user_name, roles=roles, active=active, locked_out=locked_out)
    return instance.mids(user_name, down=down, up=up).events(user_name, events)


def issue_row(
    message: str,
    *,
    state: str = "new",
    count: str = "1",
    source: str = SOURCE,
    mid_server: Any = "",
    domain: str = "global",
    updated_on: str = "2026-11-25 08:00:00",
    record: str | None = None,
) -> dict[str, Any]:
    """A raw ecc_agent_issue row."""
    return {
        "sys_id": record or sys_id(ISSUE_TABLE, message, state, source, updated_on),
        "message": message,
        "source": source,
        "state": state,
        "count": count,
        "last_detected": updated_on,
        "mid_server": mid_server,
        "sys_domain": domain,
        "sys_updated_on": updated_on,
    }


def issues(*rows: dict[str, Any]) -> tuple[Any, ...]:
    """Typed issues converted from raw rows, the way the plan receives them."""
    return Inventory.from_tables({ISSUE_TABLE: list(rows)}).issues


def rules_of(evaluation: Evaluation, user_name: str) -> list[str]:
    """The rule ids that fired for one user."""
    return [finding.rule for finding in evaluation.findings if finding.user == user_name]


def finding_of(evaluation: Evaluation, user_name: str) -> Finding:
    """The one finding of one user; fails the test when there is not exactly one."""
    (found,) = [finding for finding in evaluation.findings if finding.user == user_name]
    return found
