"""The rule set of the MIDUserConnectivity check (SPEC section 3)."""

from __future__ import annotations

from dataclasses import dataclass

from snowcheck.records import Inventory


@dataclass(frozen=True)
class Finding:
    """One rule that fired for one user; its message is the issue's identity."""

    rule: str
    user: str
    message: str
    domain: str
    down_mid_servers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def event_candidates(inventory: Inventory) -> set[str]:
    """User names whose login events the rules read: down users and role-not-configured users.

    Events and issues of ``inventory`` are ignored, so the client can call this
    before it pulls events, to ask only for these users' events.
    """
    raise NotImplementedError
