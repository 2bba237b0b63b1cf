"""How the instance's database compares strings, for every comparison the job makes there.

A condition of a query (``status=Down``, ``parm1INa,b``, ``state!=resolved``) is decided
by the database: two strings are equal when they are equal after dropping trailing
spaces (U+0020 only) and ignoring letter case, and an empty value satisfies neither
``=`` nor ``!=`` (it is the database's NULL). What the job decides in its own memory
(a row's ``value`` against a holder's ``user_name``, grouping rows by ``value``, the
kind of the newest event) stays exact, with ``==``. fidelity/README.md section 1 has
the full table; the rules, the plan and the emulator all compare through this module.
"""

from __future__ import annotations

from collections.abc import Iterable


def fold(value: str) -> str:
    """The key under which the database sees ``value``: trailing spaces dropped, lower case.

    Leading spaces, tabs and line breaks count; accents count (``é`` is not ``e``).
    """
    return value.rstrip(" ").lower()


def equal(field: str, value: str) -> bool:
    """``field = value`` as a query condition: never true of an empty field."""
    return field != "" and fold(field) == fold(value)


def not_equal(field: str, value: str) -> bool:
    """``field != value`` as a query condition: never true of an empty field either."""
    return field != "" and fold(field) != fold(value)


def one_of(field: str, values: Iterable[str]) -> bool:
    """``field IN values``: never true of an empty field."""
    return field != "" and fold(field) in {fold(value) for value in values}


def none_of(field: str, values: Iterable[str]) -> bool:
    """``field NOT IN values``: never true of an empty field."""
    return field != "" and fold(field) not in {fold(value) for value in values}


def starts_with(field: str, prefix: str) -> bool:
    """``field STARTSWITH prefix``: never true of an empty field."""
    return field != "" and fold(field).startswith(fold(prefix))
