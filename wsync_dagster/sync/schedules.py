"""One job and one partitioned schedule per cadence, ticking when each interval closes.

Assets in a job must share one partitions definition, so syncs of the same cadence whose grids differ
(another start) get a job each (``wsync_daily_job``, ``wsync_daily_job_2``, ...). Schedules start
stopped, as Dagster's convention is: turn them on in the UI or with ``dagster schedule start``.
"""

from collections.abc import Sequence

import dagster as dg

from wsync_dagster.sync import naming
from wsync_dagster.sync.cadences import INTERVAL_CADENCES
from wsync_dagster.sync.specs import Registry


def build_schedules(registry: Registry, assets: Sequence[dg.AssetsDefinition]) -> dg.Definitions:
    """The jobs and schedules of ``registry``'s interval syncs, as Definitions to merge."""
    keys = {naming.asset_key(spec): spec for spec in registry.syncs}
    by_grid: dict[tuple[str, object], list[dg.AssetKey]] = {}
    for asset in assets:
        spec = keys[asset.key]
        if spec.schedule.is_interval:
            grid = (spec.schedule.start, spec.schedule.end)
            by_grid.setdefault((spec.schedule.interval, grid), []).append(asset.key)

    jobs = []
    schedules = []
    for interval in INTERVAL_CADENCES:
        grids = [members for (i, _grid), members in by_grid.items() if i == interval]
        for index, members in enumerate(grids):
            job = dg.define_asset_job(
                naming.job_name(interval, index),
                selection=dg.AssetSelection.assets(*members),
                description=f"Sync the {interval} tables "
                f"({', '.join(k.path[-1] for k in members)}) for the interval that just closed.",
            )
            jobs.append(job)
            schedules.append(
                dg.build_schedule_from_partitioned_job(
                    job, description=f"Runs {job.name} as each {interval} interval closes."
                )
            )
    return dg.Definitions(jobs=jobs, schedules=schedules)
