"""One job per cadence, and a partitioned schedule for each interval cadence's job.

Assets in a job must share one partitions definition, so syncs of the same cadence whose grids differ
(another start) get a job each (``wsync_daily_job``, ``wsync_daily_job_2``, ...). ``on_demand`` and
``once`` syncs get an unscheduled job each cadence (``wsync_on_demand_job``, ``wsync_once_job``), so
every run of a sync, from the UI, ``dg launch`` or the demo, is a run of a named job that can be
re-executed. Schedules start stopped, as Dagster's convention is: turn them on in the UI or with
``dagster schedule start``.
"""

from collections.abc import Sequence

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.registry.cadences import CADENCES
from wsync_dagster.sync.registry.specs import SyncSpec


def build_schedules(syncs: Sequence[tuple[SyncSpec, dg.AssetKey]]) -> dg.Definitions:
    """The jobs (and schedules) of the sync assets ``syncs`` pairs with their specs."""
    by_grid: dict[tuple[str, object], list[dg.AssetKey]] = {}
    for spec, key in syncs:
        grid = (spec.schedule.start, spec.schedule.end) if spec.schedule.is_interval else None
        by_grid.setdefault((spec.schedule.interval, grid), []).append(key)

    jobs = []
    schedules = []
    for interval, grid_cadence in CADENCES.items():
        grids = [members for (i, _grid), members in by_grid.items() if i == interval]
        for index, members in enumerate(grids):
            names = ", ".join(k.path[-1] for k in members)
            if grid_cadence.is_interval:
                description = (
                    f"Sync the {interval} tables ({names}) for the interval that just closed."
                )
            else:
                description = f"Sync the {interval} tables ({names})."
            job = dg.define_asset_job(
                naming.job_name(interval, index),
                selection=dg.AssetSelection.assets(*members),
                description=description,
            )
            jobs.append(job)
            if grid_cadence.is_interval:
                schedules.append(
                    dg.build_schedule_from_partitioned_job(
                        job, description=f"Runs {job.name} as each {interval} interval closes."
                    )
                )
    return dg.Definitions(jobs=jobs, schedules=schedules)
