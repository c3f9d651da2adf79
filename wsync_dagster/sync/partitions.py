"""Dagster partitions on exactly mParticle's interval grid (spec §7 #8, DESIGN §2).

mParticle's interval k of a pipeline covers ``start + k·Δ .. start + (k+1)·Δ`` (monthly: calendar months
anchored on the start's day), with ``logical_date`` = the interval start. The partitions definition is
built from the same start and a cron that fires at the same minute, hour, weekday or day of month, so a
partition's window *is* the run's ``data_interval_start/end`` and its key names its ``logical_date``.
Dagster's Hourly/Daily/... defaults would assume midnight and minute zero; these don't.
"""

from collections.abc import Sequence

import dagster as dg

from wsync_dagster.sync.preflight import Window
from wsync_dagster.sync.specs import Schedule

HOURLY_FORMAT = "%Y-%m-%d-%H:%M"
DAILY_FORMAT = "%Y-%m-%d"


def cron_for(schedule: Schedule) -> str:
    """The cron expression whose ticks are the interval boundaries of ``schedule`` (UTC)."""
    start = schedule.start
    minute, hour = start.minute, start.hour
    if schedule.interval == "hourly":
        return f"{minute} * * * *"
    if schedule.interval == "daily":
        return f"{minute} {hour} * * *"
    if schedule.interval == "weekly":
        # cron counts weekdays from Sunday = 0; Python from Monday = 0.
        return f"{minute} {hour} * * {(start.weekday() + 1) % 7}"
    if schedule.interval == "monthly":
        return f"{minute} {hour} {start.day} * *"
    raise ValueError(f"{schedule.interval} schedules are not partitioned")


def key_format(schedule: Schedule) -> str:
    """Hourly keys carry the time; other keys too when the grid does not start at midnight."""
    start = schedule.start
    if schedule.interval == "hourly" or (start.hour, start.minute) != (0, 0):
        return HOURLY_FORMAT
    return DAILY_FORMAT


def partitions_for(schedule: Schedule) -> dg.TimeWindowPartitionsDefinition:
    """The partitions definition on ``schedule``'s grid; the last partition is the last closed one.

    With an end, only intervals ending at or before it exist, as only those run in mParticle.
    """
    return dg.TimeWindowPartitionsDefinition(
        start=schedule.start,
        end=schedule.end,
        fmt=key_format(schedule),
        cron_schedule=cron_for(schedule),
        timezone="UTC",
    )


def windows_for(partitions: dg.TimeWindowPartitionsDefinition, keys: Sequence[str]) -> list[Window]:
    """The sync windows of ``keys``, oldest first."""
    windows = []
    for key in keys:
        window = partitions.time_window_for_partition_key(key)
        windows.append(Window(key=key, start=window.start, end=window.end))
    return sorted(windows, key=lambda w: w.start)
