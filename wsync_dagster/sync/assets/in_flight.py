"""What the Dagster runs in flight are materializing: the runs sensor leaves their partitions to
them (``sync/observe/sensor.py``), and a cron tick skips a sync one of them holds
(``sync/assets/cron_schedules.py``).

A run names its assets in ``asset_selection`` when it was launched for some of them (the UI's
Materialize, a backfill, a cron tick). A schedule's run of an interval sync's job, or a whole job
launched with ``dg launch --job``, has none (``None``, or an empty set when executed in process):
it materializes every asset of its job, which :func:`job_assets` knows from the job names
(:func:`wsync_dagster.sync.assets.naming.job_names`).
"""

from collections.abc import Iterable, Mapping, Sequence, Set

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.registry.specs import SyncSpec

# Dagster runs that may still report a materialization of their assets.
IN_FLIGHT = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)

JobAssets = Mapping[str, Set[dg.AssetKey]]


def job_assets(syncs: Iterable[tuple[SyncSpec, dg.AssetKey]]) -> dict[str, frozenset[dg.AssetKey]]:
    """Each sync job's name and the assets a run of the whole job materializes."""
    found: dict[str, set[dg.AssetKey]] = {}
    for spec, key in syncs:
        for name in naming.job_names(spec):
            found.setdefault(name, set()).add(key)
    return {name: frozenset(keys) for name, keys in found.items()}


def runs_in_flight(instance: dg.DagsterInstance, limit: int) -> Sequence[dg.DagsterRun]:
    """The newest ``limit`` runs in flight: one bounded query."""
    return instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_FLIGHT)), limit=limit)


def materializing(run: dg.DagsterRun, jobs: JobAssets) -> Set[dg.AssetKey]:
    """The assets ``run`` materializes: its selection, or all of its job's when it has none."""
    return run.asset_selection or jobs.get(run.job_name, frozenset())
