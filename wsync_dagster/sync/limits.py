"""mParticle's documented Warehouse Sync limits, as data (spec §2.8; decisions §7 #7, #18).

Everything that refuses a request before it is sent reads its numbers from here, so a limit changes in
one place. Sources: the Warehouse Sync overview's Early-Access limits table and the default service
limits guide (both list the same numbers).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Schedule = Literal["hourly", "daily", "weekly", "monthly", "on_demand", "once"]
INTERVAL_SCHEDULES: tuple[Schedule, ...] = ("hourly", "daily", "weekly", "monthly")

MAX_ACTIVE_PIPELINES = 5
MAX_COLUMNS = 100
# Monthly schedules repeat on the start's day of month; days 29-31 don't exist in every month (§7).
MAX_MONTHLY_START_DAY = 28

RECORDS_PER_REQUEST: dict[Schedule, int] = {
    "hourly": 1_000_000,
    "daily": 24_000_000,
    "weekly": 40_000_000,
    "monthly": 40_000_000,
    "once": 40_000_000,
    "on_demand": 24_000_000,
}


@dataclass(frozen=True)
class CatchUp:
    """How far back a new interval pipeline may start: a number of calendar months or of hours."""

    months: int = 0
    hours: int = 0
    text: str = ""

    def earliest_start(self, now: datetime) -> datetime:
        """The oldest ``schedule_start_time`` mParticle accepts for a pipeline created at ``now``."""
        if self.hours:
            return now - timedelta(hours=self.hours)
        return subtract_months(now, self.months)


CATCH_UP: dict[Schedule, CatchUp] = {
    "hourly": CatchUp(hours=7 * 24, text="7 days"),
    "daily": CatchUp(months=6, text="6 months"),
    "weekly": CatchUp(months=36, text="3 years"),
    "monthly": CatchUp(months=60, text="5 years"),
}


def subtract_months(instant: datetime, months: int) -> datetime:
    """``instant`` minus calendar months, the day clamped to the target month's length."""
    index = instant.year * 12 + (instant.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    return instant.replace(year=year, month=month, day=min(instant.day, days_in_month(year, month)))


def add_months(instant: datetime, months: int) -> datetime:
    return subtract_months(instant, -months)


def days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
