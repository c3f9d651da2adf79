"""The sync jobs and schedules, each named after what it runs (docs/jobs-and-schedules.md).

Every interval sync has a job and a partitioned schedule of its own, ``wsync_<interval>_<sync>_job``
and ``wsync_<interval>_<sync>_schedule``: adding, removing or reordering syncs or components never
renames another sync's job or schedule, so a schedule's running state (which Dagster keeps by name)
always stays with its table. ``on_demand`` and ``once`` syncs share an unscheduled job per cadence
(``wsync_on_demand_job``, ``wsync_once_job``), so every run of a sync, from the UI, ``dg launch`` or
the demo, is a run of a named job that can be re-executed. Schedules start stopped, as Dagster's
convention is: turn them on in the UI or with ``dagster schedule start``.
"""

from collections.abc import Sequence

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.registry.cadences import CADENCES
from wsync_dagster.sync.registry.specs import SyncSpec


def build_schedules(syncs: Sequence[tuple[SyncSpec, dg.AssetKey]]) -> dg.Definitions:
    """The jobs (and schedules) of the sync assets ``syncs`` pairs with their specs."""
    jobs = []
    schedules = []
    unscheduled: dict[str, list[dg.AssetKey]] = {}
    for spec, key in sorted(syncs, key=lambda pair: pair[0].name):
        interval = spec.schedule.interval
        if not spec.schedule.is_interval:
            unscheduled.setdefault(interval, []).append(key)
            continue
        stem = naming.sync_stem(spec)
        job = dg.define_asset_job(
            naming.job_name(stem),
            selection=dg.AssetSelection.assets(key),
            description=f"Sync {spec.name} ({interval}) for the interval that just closed.",
        )
        jobs.append(job)
        schedules.append(
            dg.build_schedule_from_partitioned_job(
                job,
                name=naming.schedule_name(stem),
                description=f"Runs {job.name} as each {interval} interval of {spec.name} closes.",
            )
        )
    for interval in CADENCES:
        if members := unscheduled.get(interval):
            names = ", ".join(k.path[-1] for k in members)
            jobs.append(
                dg.define_asset_job(
                    naming.job_name(naming.cadence_stem(interval)),
                    selection=dg.AssetSelection.assets(*members),
                    description=f"Sync the {interval} tables ({names}).",
                )
            )
    return dg.Definitions(jobs=jobs, schedules=schedules)
