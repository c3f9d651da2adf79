"""Dagster partitions on exactly mParticle's interval grid (see docs/warehouse-sync-api.md).

mParticle's interval k of a pipeline covers ``start + k·Δ .. start + (k+1)·Δ`` (monthly: calendar months
anchored on the start's day), with ``logical_date`` = the interval start. The partitions definition is
built from the same start and the cadence's cron (:mod:`wsync_dagster.sync.registry.cadences`), which fires at
the same minute, hour, weekday or day of month, so a
partition's window *is* the run's ``data_interval_start/end`` and its key names its ``logical_date``.
Dagster's Hourly/Daily/... defaults would assume midnight and minute zero; these don't.
"""

from collections.abc import Sequence

import dagster as dg

from wsync_dagster.sync.registry.cadences import cadence
from wsync_dagster.sync.registry.specs import Schedule
from wsync_dagster.sync.registry.windows import Window


def partitions_for(schedule: Schedule) -> dg.TimeWindowPartitionsDefinition:
    """The partitions definition on ``schedule``'s grid; the last partition is the last closed one.

    With an end, only intervals ending at or before it exist, as only those run in mParticle.
    """
    grid = cadence(schedule.interval)
    return dg.TimeWindowPartitionsDefinition(
        start=schedule.start,
        end=schedule.end,
        fmt=grid.key_format(schedule.start),
        cron_schedule=grid.cron_for(schedule.start),
        timezone="UTC",
    )


def windows_for(partitions: dg.TimeWindowPartitionsDefinition, keys: Sequence[str]) -> list[Window]:
    """The sync windows of ``keys``, oldest first."""
    windows = []
    for key in keys:
        window = partitions.time_window_for_partition_key(key)
        windows.append(Window(key=key, start=window.start, end=window.end))
    return sorted(windows, key=lambda w: w.start)
