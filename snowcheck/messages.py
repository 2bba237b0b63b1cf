"""The message templates of each release: issues are matched by their text, so wording is data.

``docs`` is the product documentation's wording (the default). ``kingston`` is
what older instances write: two spaces between sentences, and small wording
differences. ``auto`` picks the set that matches the open issues already on the
instance, comparing as the instance's database does (case and trailing spaces aside).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from snowcheck import compare
from snowcheck.errors import ConfigError


@dataclass(frozen=True)
class Template:
    """A rule's message, singular (n = 1, or no n at all) and plural (n > 1) forms."""

    one: str
    many: str | None = None

    def render(self, user: str, n: int = 1) -> str:
        text = self.many if self.many is not None and n != 1 else self.one
        # str.replace, not str.format: a user name may hold braces.
        return text.replace("{n}", str(n)).replace("{user}", user)

    def patterns(self) -> tuple[re.Pattern[str], ...]:
        """Patterns matching the rendered forms once both sides are ``compare.fold``-ed."""
        forms = [self.one] if self.many is None else [self.one, self.many]
        compiled = []
        for form in forms:
            pattern = (
                re.escape(compare.fold(form))
                .replace(r"\{user\}", "(?P<user>.+)")
                .replace(r"\{n\}", r"\d+")
            )
            compiled.append(re.compile(pattern, re.DOTALL))
        return tuple(compiled)


@dataclass(frozen=True)
class TemplateSet:
    """One release's wording for every rule id."""

    name: str
    templates: Mapping[str, Template]

    def render(self, rule: str, user: str, n: int = 1) -> str:
        return self.templates[rule].render(user, n)

    @cached_property
    def _patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(p for template in self.templates.values() for p in template.patterns())

    def matches(self, message: str) -> bool:
        """Whether ``message`` is one of these templates as the database compares text."""
        folded = compare.fold(message)
        return any(pattern.fullmatch(folded) for pattern in self._patterns)


def _set(name: str, sep: str, is_: str, connected: str) -> TemplateSet:
    """Build a set; the releases differ only in sentence spacing and two small phrasings.

    ``is_`` is what stands before "associated" in the no-login messages, and
    ``connected`` what stands between "connected but" and "associated".
    """
    down = "associated with 1 down MID Server." + sep
    downs = "associated with {n} down MID Servers." + sep
    return TemplateSet(
        name=name,
        templates={
            "auth_failed_down": Template(
                "Login authentication failure for User {user} "
                + down
                + "Check password on MID server.",
                "Login authentication failure for User {user} "
                + downs
                + "Check password on MID servers.",
            ),
            "auth_failed_unassociated": Template(
                "Login authentication failure for User {user} "
                "with mid_server role not associated with a MID Server."
            ),
            "authz_failed_down": Template(
                "Login authorization failure for User {user} "
                + down
                + "Re-assign mid_server role to grant all required roles.",
                "Login authorization failure for User {user} "
                + downs
                + "Re-assign mid_server role to grant all required roles.",
            ),
            "authz_failed_unassociated": Template(
                "Login authorization failure for User {user} "
                "with mid_server role not associated with a MID Server."
            ),
            "no_login_down": Template(
                "User {user} " + is_ + down + "No login attempts within reporting period.",
                "User {user} " + is_ + downs + "No login attempts within reporting period.",
            ),
            "no_login_unassociated": Template(
                "User {user} with mid_server role "
                + is_
                + "not associated with a MID Server."
                + sep
                + "No login attempts within reporting period."
            ),
            "connected_unassociated": Template(
                "User {user} with mid_server role successfully connected but "
                + connected
                + " associated with a MID Server."
                + sep
                + "The mid_server role should be reserved for MID Server use only."
            ),
        },
    )


DOCS = _set("docs", " ", is_="is ", connected="not")
KINGSTON = _set("kingston", "  ", is_="", connected="is not")

TEMPLATE_SETS: Mapping[str, TemplateSet] = {DOCS.name: DOCS, KINGSTON.name: KINGSTON}
CHOICES = (*TEMPLATE_SETS, "auto")


def choose(name: str, open_messages: Iterable[str]) -> TemplateSet:
    """The set named, or for ``auto`` the one matching most open issues (``docs`` on a tie)."""
    if name != "auto":
        try:
            return TEMPLATE_SETS[name]
        except KeyError:
            raise ConfigError(
                f"unknown message set {name!r}: choose one of {', '.join(CHOICES)}"
            ) from None
    messages = list(open_messages)
    best = DOCS
    best_score = sum(DOCS.matches(m) for m in messages)
    for candidate in TEMPLATE_SETS.values():
        score = sum(candidate.matches(m) for m in messages)
        if score > best_score:
            best, best_score = candidate, score
    return best
