"""The emulator's clock and the API's time formats (see ``docs/warehouse-sync-api.md``).

Every instant the emulator stores is a timezone-aware UTC ``datetime`` with millisecond precision.
"""

import math
import re
import threading
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

from wsync_dagster.emulator.config import ClockMode

_INSTANT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_millis(dt: datetime) -> datetime:
    """``dt`` in UTC with its microseconds cut to milliseconds."""
    dt = dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def epoch_ms(dt: datetime) -> int:
    return math.floor(dt.timestamp() * 1000)


def format_instant(dt: datetime) -> str:
    """Schedule and run instants: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_audit(dt: datetime) -> str:
    """Audit instants: no zone, 0-3 fractional digits with trailing zeros trimmed.

    >>> format_audit(datetime(2023, 2, 8, 0, 5, 31, 230000, tzinfo=UTC))
    '2023-02-08T00:05:31.23'
    """
    dt = dt.astimezone(UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{dt.microsecond // 1000:03d}".rstrip("0")
    return f"{text}.{fraction}" if fraction else text


def parse_schedule_instant(value: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SSZ`` exactly; raise ``ValueError`` otherwise."""
    if not _INSTANT_RE.match(value):
        raise ValueError("expected YYYY-MM-DDTHH:MM:SSZ")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def parse_iso_instant(value: str) -> datetime:
    """Parse an ISO-8601 instant with a zone (``Z`` or an offset); raise ``ValueError`` otherwise."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("an instant needs a zone (Z or an offset)")
    return parsed.astimezone(UTC)


def add_months(dt: datetime, months: int) -> datetime:
    """``dt`` moved by whole calendar months, the day clamped to the target month's end.

    Always move from the anchor (``add_months(start, k)``), never chain: Jan 31 + 1 is Feb 28/29,
    and chaining another month from there would lose the 31st.
    """
    return dt + relativedelta(months=months)


def whole_seconds(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)


def ceil_seconds(dt: datetime) -> datetime:
    return whole_seconds(dt) + timedelta(seconds=1) if dt.microsecond else dt


class Clock:
    """The emulator clock: the wall clock plus an offset (``real``), or a fixed time (``manual``).

    Only the admin API moves it (set, advance); a ``manual`` clock never moves on its own. Both
    start at ``start`` when given (a real clock then runs on from there), else at the wall clock.
    """

    def __init__(self, mode: ClockMode, start: datetime | None = None) -> None:
        self.mode: ClockMode = mode
        self._start = to_millis(start) if start is not None else None
        self._lock = threading.Lock()
        self._manual, self._offset = self._initial()

    def _initial(self) -> tuple[datetime, timedelta]:
        wall = to_millis(utc_now())
        start = self._start or wall
        return start, start - wall

    def reset(self) -> None:
        """Back to where the clock started."""
        with self._lock:
            self._manual, self._offset = self._initial()

    def now(self) -> datetime:
        with self._lock:
            if self.mode == "manual":
                return self._manual
            return to_millis(utc_now() + self._offset)

    def set(self, when: datetime) -> None:
        with self._lock:
            if self.mode == "manual":
                self._manual = to_millis(when)
            else:
                self._offset = to_millis(when) - utc_now()

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self.mode == "manual":
                self._manual = to_millis(self._manual + timedelta(seconds=seconds))
            else:
                self._offset += timedelta(seconds=seconds)
