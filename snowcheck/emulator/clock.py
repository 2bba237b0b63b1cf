"""The emulated instance's clock: real UTC time, or frozen at a scenario's instant."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_time(moment: datetime) -> str:
    """Format an instant the way the Table API does with sysparm_display_value=false (UTC)."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse `YYYY-MM-DD HH:MM:SS` (UTC), also accepting ISO 8601 with `T` and an offset or `Z`."""
    cleaned = text.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def http_date(moment: datetime) -> str:
    """Format an instant for the HTTP `Date` header (RFC 7231 IMF-fixdate)."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


class Clock:
    """Real UTC time shifted by an offset, or a frozen instant; thread-safe."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen_at = frozen_at.astimezone(UTC) if frozen_at is not None else None
        self._offset = timedelta()

    @property
    def frozen(self) -> bool:
        """Whether the clock stands still (a scenario gave an absolute `now`)."""
        return self._frozen_at is not None

    def now(self) -> datetime:
        """The current instant, in UTC, to the second (the Table API's resolution)."""
        with self._lock:
            if self._frozen_at is not None:
                moment = self._frozen_at
            else:
                moment = datetime.now(UTC) + self._offset
        return moment.replace(microsecond=0)

    def freeze(self, moment: datetime) -> None:
        """Stop the clock at `moment`."""
        with self._lock:
            self._frozen_at = moment.astimezone(UTC)
            self._offset = timedelta()

    def unfreeze(self) -> None:
        """Follow the real clock again."""
        with self._lock:
            self._frozen_at = None
            self._offset = timedelta()

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, if negative), frozen or not."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)
