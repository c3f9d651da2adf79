"""On_demand syncs on a clock: one Dagster schedule per distinct ``schedule.cron`` of the registry.

Every on_demand sync with ``cron: "15 * * * *"`` belongs to the job and schedule of that cron,
``wsync_on_demand_cron_15_x_x_x_x_job`` and ``..._schedule`` (``naming.cron_stem``), stopped by
default like every schedule of the project. A tick (:func:`plan_tick`, pure; the schedule adds the
instance's runs in flight) materializes every sync of the cron that is due:

* a sync whose ``start`` is after the tick is not due yet;
* a sync with ``paused: true`` is never due (mParticle refuses to trigger it);
* a sync that a Dagster run in flight (queued, starting, started or canceling) is materializing is
  skipped, with a line in the tick's log: ticks never pile up, so a workspace whose crons ask for
  more than its free slots can serve shows skipped ticks and stale freshness, never a queue that
  grows without end. Each sync is in at most one run in flight.

Each materialization syncs the rows since that sync's last success (mParticle's on-demand window,
``sync/assets/single.py``). Rotating syncs take turns on the free active-pipeline slots as any
rotating materialization does (``sync/engine/rotation.py``); how a tick's due syncs map to runs,
and what each choice costs, is measured by ``benchmarks/cron_runs_bench.py`` and explained in
docs/scale.md: see :func:`run_groups`.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.in_flight import JobAssets, job_assets, materializing, runs_in_flight
from wsync_dagster.sync.assets.metadata import RunTags
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.workspace import Workspace

# Runs read per tick to find those in flight: one bounded query.
IN_FLIGHT_LIMIT = 500


@dataclass(frozen=True)
class CronSync:
    """An on_demand sync with a cron, and the key of its asset."""

    spec: SyncSpec
    key: dg.AssetKey

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class TickPlan:
    """What one tick requests: the runs (each a group of syncs) and the lines for the tick's log
    about the syncs it leaves out."""

    tick: datetime
    runs: tuple[tuple[CronSync, ...], ...]
    skipped: tuple[str, ...] = field(default=())

    @property
    def due(self) -> list[str]:
        return [sync.name for run in self.runs for sync in run]


def run_groups(due: Sequence[CronSync], free_slots: int) -> list[tuple[CronSync, ...]]:
    """The runs a tick's due syncs go in: each permanent sync (its own pipeline and pool) in a run
    of its own; the rotating syncs dealt round-robin, in name order, into as many runs as there are
    free active-pipeline slots. Each of those runs materializes its syncs one after the other (the
    in-process executor), so it holds one slot at a time: the slots work in parallel and a tick
    starts at most ``free_slots`` run processes for its rotating syncs (docs/scale.md has the
    measurements behind this choice)."""
    groups: list[tuple[CronSync, ...]] = [(s,) for s in due if not s.spec.rotate]
    rotating = [s for s in due if s.spec.rotate]
    count = min(max(free_slots, 1), len(rotating))
    groups += [tuple(rotating[i::count]) for i in range(count)]
    return groups


def plan_tick(
    syncs: Sequence[CronSync],
    tick: datetime,
    in_flight: Mapping[dg.AssetKey, str],
    free_slots: int,
) -> TickPlan:
    """The runs the tick at ``tick`` requests for ``syncs`` (all on its cron), given the Dagster runs
    in flight (asset key -> a description of the run materializing it)."""
    due: list[CronSync] = []
    skipped: list[str] = []
    for sync in sorted(syncs, key=lambda s: s.name):
        spec = sync.spec
        if spec.schedule.start > tick:
            skipped.append(
                f"'{spec.name}' is not due: its schedule starts at "
                f"{spec.schedule.start:%Y-%m-%dT%H:%MZ}"
            )
        elif spec.paused:
            skipped.append(f"'{spec.name}' is not due: it is paused (paused: true)")
        elif (run := in_flight.get(sync.key)) is not None:
            skipped.append(
                f"'{spec.name}' skipped: {run} is still materializing it; its rows since its last "
                "success go with the next tick"
            )
        else:
            due.append(sync)
    return TickPlan(tick, tuple(run_groups(due, free_slots)), tuple(skipped))


def in_flight_materializations(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey], jobs: JobAssets
) -> dict[dg.AssetKey, str]:
    """The Dagster runs in flight that materialize ``keys``: key -> 'run <id> (<status>)'. A run
    without an asset selection materializes every asset of its job (``jobs``). One bounded query."""
    wanted = set(keys)
    found: dict[dg.AssetKey, str] = {}
    for run in runs_in_flight(instance, IN_FLIGHT_LIMIT):
        for key in wanted & set(materializing(run, jobs)):
            found.setdefault(key, f"run {run.run_id[:8]} ({run.status.value.lower()})")
    return found


def _run_key(tick: datetime, run: Sequence[CronSync]) -> str:
    """The tick and the syncs in the run: the daemon launches a run key once per schedule, so a
    tick evaluated twice (a daemon restart) never requests the same run twice."""
    names = ",".join(sync.name for sync in run)
    return f"{tick:%Y-%m-%dT%H:%MZ}/{hashlib.sha256(names.encode()).hexdigest()[:12]}"


def cron_schedule(
    cron: str, members: Sequence[CronSync], free_slots: int, jobs: JobAssets
) -> dg.ScheduleDefinition:
    """The schedule of the on_demand syncs on ``cron``, targeting their job; ``jobs``: the assets of
    every sync job of the code location, to tell which syncs its runs in flight hold."""
    stem = naming.cron_stem(cron)
    keys = [sync.key for sync in members]
    names = ", ".join(sorted(sync.name for sync in members))
    job = dg.define_asset_job(
        naming.job_name(stem),
        selection=dg.AssetSelection.assets(*keys),
        description=f"Sync the on_demand tables on cron '{cron}' (UTC): {names}.",
    )

    @dg.schedule(
        name=naming.schedule_name(stem),
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Materializes the on_demand tables on cron '{cron}' (UTC) that are due, "
        f"skipping any still being materialized: {names}.",
    )
    def _tick(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        # The daemon and the UI's "Test schedule" always evaluate a tick at its scheduled time.
        tick = context.scheduled_execution_time.astimezone(UTC)
        in_flight = in_flight_materializations(context.instance, keys, jobs)
        plan = plan_tick(members, tick, in_flight, free_slots)
        for line in plan.skipped:
            context.log.info(line)
        if not plan.runs:
            return dg.SkipReason("; ".join(plan.skipped) or "no sync on this cron")
        context.log.info(
            f"{len(plan.due)} sync(s) due in {len(plan.runs)} run(s): {', '.join(plan.due)}"
        )
        return [
            dg.RunRequest(
                run_key=_run_key(tick, run),
                asset_selection=[sync.key for sync in run],
                tags={RunTags.CRON_TICK: f"{tick:%Y-%m-%dT%H:%M:%SZ}"},
            )
            for run in plan.runs
        ]

    return _tick


def build_cron_schedules(
    syncs: Sequence[tuple[SyncSpec, dg.AssetKey]], workspace: Workspace
) -> dg.Definitions:
    """A job and a schedule per distinct cron of the on_demand syncs in ``syncs``; ``workspace``
    (every registry of the code location) says how many active-pipeline slots the rotating syncs
    share."""
    jobs = job_assets(syncs)
    by_cron: dict[str, list[CronSync]] = {}
    for spec, key in syncs:
        if spec.schedule.cron is not None:
            by_cron.setdefault(spec.schedule.cron, []).append(CronSync(spec, key))
    schedules = []
    stems: dict[str, str] = {}
    for cron, members in sorted(by_cron.items()):
        stem = naming.cron_stem(cron)
        if stem in stems:
            raise ValueError(
                f"crons '{stems[stem]}' and '{cron}' would name the same schedule {stem}: write "
                "one of them like the other"
            )
        stems[stem] = cron
        schedules.append(cron_schedule(cron, members, workspace.free_slots(), jobs))
    return dg.Definitions(schedules=schedules)  # each schedule brings its job
