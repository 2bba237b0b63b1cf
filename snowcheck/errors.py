"""The errors snowcheck raises; only the CLI turns them into exit codes and one-line messages."""

from __future__ import annotations


class SnowcheckError(Exception):
    """Base of every error snowcheck reports to the user as one line."""

    exit_code = 1


class ConfigError(SnowcheckError):
    """The command line, environment or config file is incomplete or wrong (exit 2)."""

    exit_code = 2


class DataError(SnowcheckError):
    """A row from the instance (or a snapshot) lacks a field a rule needs, or holds a bad value."""

    def __init__(self, table: str, sys_id: str, field: str, problem: str) -> None:
        self.table = table
        self.sys_id = sys_id
        self.field = field
        self.problem = problem
        where = f"{table} record {sys_id or '(no sys_id)'}"
        super().__init__(f"{where}: field '{field}' {problem}")


class InstanceError(SnowcheckError):
    """The instance could not be read or written: unreachable, refused, or answered badly."""

    def __init__(
        self, message: str, *, table: str | None = None, status: int | None = None
    ) -> None:
        self.table = table
        self.status = status
        super().__init__(message)


class UnsafePlan(SnowcheckError):
    """The plan looks like the result of missing read access; refused without --force."""


class PartialWrite(InstanceError):
    """A write-back stopped part-way: some changes were applied, the rest were not."""

    def __init__(
        self,
        message: str,
        *,
        applied: tuple[object, ...],
        not_applied: tuple[object, ...],
        table: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, table=table, status=status)
        self.applied = applied
        """The plan's changes written before the failure (snowcheck.plan.Change values)."""
        self.not_applied = not_applied
        """The failed change first, then the ones never attempted."""


class SnapshotError(DataError):
    """A snapshot file's content is wrong: a usage error like a missing file (exit 2).

    ``table`` is "snapshot" for the file's own structure, or the table of the bad row.
    """

    exit_code = 2
