"""The interval grid of a pipeline (``docs/warehouse-sync-api.md``) as pure functions.

Interval ``k`` covers ``start + k·Δ`` … ``start + (k+1)·Δ``; Δ is 1 hour, 1 day, 7 days or one
calendar month anchored on the start's day of month.
"""

from datetime import datetime, timedelta

from wsync_dagster.emulator.clock import add_months, ceil_seconds
from wsync_dagster.emulator.limits import CATCH_UP_LIMITS

_STEPS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}


def interval_at(start: datetime, interval: str, k: int) -> tuple[datetime, datetime]:
    """``(data_interval_start, data_interval_end)`` of interval ``k`` of the grid."""
    if interval == "monthly":
        return add_months(start, k), add_months(start, k + 1)
    step = _STEPS[interval]
    return start + k * step, start + (k + 1) * step


def first_interval_after(start: datetime, interval: str, after: datetime) -> int:
    """The index of the first interval whose start is later than ``after``."""
    if after < start:
        return 0
    if interval == "monthly":
        k = max(0, (after.year - start.year) * 12 + after.month - start.month - 1)
        while interval_at(start, interval, k)[0] <= after:
            k += 1
        return k
    return (after - start) // _STEPS[interval] + 1


def earliest_allowed_start(now: datetime, interval: str) -> datetime:
    """The oldest interval start an interval pipeline may still catch up from at ``now``."""
    months, delta = CATCH_UP_LIMITS[interval]
    return ceil_seconds(add_months(now, -months) - delta)
