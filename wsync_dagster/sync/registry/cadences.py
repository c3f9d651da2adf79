"""Every cadence a sync can have, in one table: grid, catch-up limit, record limit, cron, key format.

mParticle's pipelines run on ``schedule_interval`` (see docs/warehouse-sync-api.md): four interval
cadences on a grid anchored at ``schedule_start_time`` (interval k covers ``start + k·step ..
start + (k+1)·step``; monthly steps are calendar months on the start's day), plus ``on_demand``
(each trigger syncs up to now) and ``once`` (one run over ``start .. end``). Everything that knows
about cadences (the registry's validation, the partitions, the schedules, the catch-up check and the
pre-flight's record limit) reads :data:`CADENCES`, so adding a cadence means adding one row here.

The numbers are mParticle's documented Warehouse Sync limits (the overview's limits table and the
default service limits guide list the same ones). Record limits are per request; a workspace may have
others, declared in the registry's ``limits:`` block (:class:`wsync_dagster.sync.registry.limits.Limits`), so
:func:`record_limit` takes overrides.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dateutil.relativedelta import relativedelta

CadenceName = Literal["hourly", "daily", "weekly", "monthly", "on_demand", "once"]

HOURLY_FORMAT = "%Y-%m-%d-%H:%M"
DAILY_FORMAT = "%Y-%m-%d"


@dataclass(frozen=True)
class CatchUp:
    """How far back a new interval pipeline may start (``text`` says it the way mParticle does)."""

    age: relativedelta
    text: str

    def earliest_start(self, now: datetime) -> datetime:
        """The oldest ``schedule_start_time`` mParticle accepts for a pipeline created at ``now``.

        Calendar months end on the same day of month, clamped to the target month's length.
        """
        return now - self.age


@dataclass(frozen=True)
class Cadence:
    """One ``schedule_interval``.

    Attributes:
        name: The registry's and mParticle's name for it.
        step: One interval of the grid; None for cadences that are not intervals.
        catch_up: How far back a new pipeline may start; None where mParticle sets no limit.
        records_per_request: The most rows one run (one window) may extract.
        cron: Cron fields whose ticks are the interval boundaries, formatted with the start's
            ``minute``, ``hour``, ``day`` and ``weekday`` (cron's: Sunday = 0); None if not an interval.
        key_has_time: Partition keys always carry the time of day (else only when the grid does not
            start at midnight).
    """

    name: CadenceName
    step: relativedelta | None
    catch_up: CatchUp | None
    records_per_request: int
    cron: str | None = None
    key_has_time: bool = False

    @property
    def is_interval(self) -> bool:
        return self.step is not None

    def cron_for(self, start: datetime) -> str:
        """The cron expression (UTC) ticking at each interval boundary of a grid from ``start``."""
        if self.cron is None:
            raise ValueError(f"{self.name} schedules are not partitioned")
        # cron counts weekdays from Sunday = 0; Python from Monday = 0.
        weekday = (start.weekday() + 1) % 7
        return self.cron.format(
            minute=start.minute, hour=start.hour, day=start.day, weekday=weekday
        )

    def key_format(self, start: datetime) -> str:
        """Partition key format: with the time when hourly or when the grid is not at midnight."""
        if self.key_has_time or (start.hour, start.minute) != (0, 0):
            return HOURLY_FORMAT
        return DAILY_FORMAT


CADENCES: dict[CadenceName, Cadence] = {
    c.name: c
    for c in (
        Cadence(
            "hourly", relativedelta(hours=1), CatchUp(relativedelta(days=7), "7 days"),
            1_000_000, "{minute} * * * *", key_has_time=True,
        ),
        Cadence(
            "daily", relativedelta(days=1), CatchUp(relativedelta(months=6), "6 months"),
            24_000_000, "{minute} {hour} * * *",
        ),
        Cadence(
            "weekly", relativedelta(weeks=1), CatchUp(relativedelta(months=36), "3 years"),
            40_000_000, "{minute} {hour} * * {weekday}",
        ),
        Cadence(
            "monthly", relativedelta(months=1), CatchUp(relativedelta(months=60), "5 years"),
            40_000_000, "{minute} {hour} {day} * *",
        ),
        Cadence("on_demand", None, None, 24_000_000),
        Cadence("once", None, None, 40_000_000),
    )
}  # fmt: skip
INTERVAL_CADENCES: tuple[CadenceName, ...] = tuple(n for n, c in CADENCES.items() if c.is_interval)


def cadence(name: CadenceName) -> Cadence:
    return CADENCES[name]


def record_limit(name: CadenceName, overrides: Mapping[CadenceName, int] | None = None) -> int:
    """Rows one window of cadence ``name`` may hold: the workspace's override, else mParticle's."""
    if overrides and name in overrides:
        return overrides[name]
    return CADENCES[name].records_per_request
