"""The runs sensor: every run mParticle made of a registry pipeline, recorded as asset events.

Each tick, per pipeline: read the runs after the cursor (:func:`observe.read_batch`, one listing in the
steady state), count their windows in Snowflake (column discovery plus one grouped count per sync),
skip the runs a Dagster run or an earlier tick already recorded (by ``mparticle/run_id``), and return
the rest as materializations (a failed run: a failed parity check on its partition), with the cursor
moved past exactly what was handled. See the README, "How observation works".
"""

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource

from wsync_dagster.compat import requested_backfills
from wsync_dagster.mparticle import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RunState,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster.resources import MParticleResource, settings_problem
from wsync_dagster.sync.assets.drift import DriftState
from wsync_dagster.sync.assets.metadata import Preflight, RunTags, Wsync
from wsync_dagster.sync.assets.partitions import partitions_for
from wsync_dagster.sync.assets.report import schema_metadata
from wsync_dagster.sync.engine import rotation
from wsync_dagster.sync.engine.context import first_line
from wsync_dagster.sync.engine.preflight import count_windows, discover_columns
from wsync_dagster.sync.engine.reasons import attribute
from wsync_dagster.sync.observe.batch import (
    Batch,
    Mark,
    ObserveLimits,
    Recording,
    dump_cursor,
    parse_cursor,
    partition_of,
    read_batch,
    recorded_run_ids,
    run_events,
    run_window,
)
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.windows import WindowCount
from wsync_dagster.sync.registry.workspace import BoundSync, Workspace

_log = logging.getLogger("wsync_dagster.sensor")
SENSOR_NAME = "wsync_runs_sensor"
MINIMUM_INTERVAL_SECONDS = 30
DEFAULT_LIMITS = ObserveLimits()
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
IN_FLIGHT_LIMIT = 200


# A sync the sensor watches, with its own registry, and the key of its asset.
Watched = tuple[BoundSync, dg.AssetKey]


@dataclass
class Observed:
    """One sync's batch, and what the tick learned about it."""

    bound: BoundSync
    key: dg.AssetKey
    batch: Batch
    reasons: dict[int, str] = field(default_factory=dict)  # failed runs' reasons, by run id
    counts: dict[int, WindowCount] = field(default_factory=dict)
    preflight_note: str | None = None
    schema: dict[str, Any] = field(default_factory=dict)  # the column schema, when discovered

    @property
    def spec(self) -> SyncSpec:
        return self.bound.spec


@dataclass(frozen=True)
class RunsWatch:
    """What the runs sensor watches, built once when the code location loads: every sync (each with
    its own registry and its asset's key), the workspace they share, and what a tick may spend."""

    workspace: Workspace
    watched: Sequence[Watched]
    limits: ObserveLimits = DEFAULT_LIMITS
    clock: Callable[[], float] = time.monotonic


@dataclass
class Tick:
    """The outcome of one evaluation, before it becomes a SensorResult."""

    marks: dict[str, Mark]
    limits: ObserveLimits = DEFAULT_LIMITS
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    listings: int = 0
    recorded: int = 0
    duplicates: int = 0


def small_budget(mparticle: MParticleResource, limits: ObserveLimits) -> MParticleResource:
    """The resource with a retry budget a sensor can afford (it must end well inside its timeout)."""
    return mparticle.model_copy(
        update={
            "retry_budget_seconds": min(
                mparticle.retry_budget_seconds, limits.retry_budget_seconds
            ),
            "max_attempts": min(mparticle.max_attempts, limits.max_attempts),
        }
    )


# Errors that are about the credential or the whole workspace, not one pipeline: reading the other
# pipelines would only fail the same way (or make the throttling worse), so the rest wait a tick.
WORKSPACE_ERRORS = (AuthenticationError, PermissionDeniedError, RateLimitedError)


def read_runs(client: WarehouseSyncClient, watch: RunsWatch, tick: Tick) -> list[Observed]:
    """Each pipeline's batch, until the time budget runs out.

    One pipeline's trouble never stops the others: a pipeline that does not exist yet (a sync never
    materialized) has nothing to record, and one whose listing fails after the client's retries
    (5xx, timeout) is skipped this tick; either keeps its cursor and is named once in the notes.
    Only an error about the credential or the whole workspace (401, 403, 429) ends the tick.
    """
    watched, limits, clock = watch.watched, tick.limits, watch.clock
    deadline = clock() + limits.tick_seconds
    observed: list[Observed] = []
    not_created: list[str] = []
    for index, (bound, key) in enumerate(watched):
        spec, pipeline_id = bound.spec, bound.pipeline_id
        if clock() > deadline:
            waiting = ", ".join(f"'{b.name}'" for b, _ in watched[index:])
            tick.notes.append(f"time budget spent; {waiting} wait a tick")
            break
        try:
            batch = read_batch(
                client, pipeline_id, tick.marks.get(pipeline_id), limits, floor=spec.schedule.start
            )
            # Each failed run's own reason where it can be told apart (see sync/engine/reasons.py).
            failed = [r for r in batch.runs if r.state is RunState.FAILED]
            reasons = attribute(client, pipeline_id, failed)
        except NotFoundError:
            not_created.append(f"'{spec.name}' ({pipeline_id})")
            continue
        except WORKSPACE_ERRORS as error:
            rest = ", ".join(f"'{b.name}'" for b, _ in watched[index:])
            tick.notes.append(
                f"mParticle refused to list runs ({first_line(error)}); {rest} wait a tick"
            )
            break
        except WarehouseSyncError as error:
            tick.notes.append(
                f"could not read the runs of '{spec.name}' ({pipeline_id}): {first_line(error)}; "
                "it is read again next tick, the other syncs are not held up"
            )
            continue
        tick.listings += batch.listings
        if batch.unreadable:
            tick.notes.append(
                f"'{spec.name}': more runs share one logical date than a listing holds "
                f"({limits.page_size}); they cannot be ordered and are not recorded"
            )
        observed.append(Observed(bound, key, batch, reasons))
    if not_created:
        tick.notes.append(
            f"no pipeline in mParticle yet for {', '.join(not_created)}: nothing to record until "
            "a first materialization creates it"
        )
    return observed


def count_runs(snowflake: SnowflakeResource, observed: Sequence[Observed]) -> None:
    """Count each sync's successful windows (two queries per sync); a failure is noted, not raised."""
    for item in observed:
        succeeded = [r for r in item.batch.runs if r.state is RunState.SUCCESS]
        if not succeeded:
            continue
        windows = [run_window(r, str(r.pipeline_run_id)) for r in succeeded]
        try:
            with snowflake.get_connection() as connection:
                cursor = connection.cursor()
                try:
                    columns = discover_columns(cursor, item.spec)
                    counts, _ = count_windows(cursor, item.spec, columns, windows)
                finally:
                    cursor.close()
        except Exception as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            item.preflight_note = f"pre-flight count unavailable: {first}"
            continue
        item.counts = {int(c.window.key): c for c in counts}
        item.schema = schema_metadata(columns)


def already_recorded(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    partitions: Sequence[str] | None,
    limits: ObserveLimits,
) -> set[int]:
    """Run ids of the materializations of ``key`` (of ``partitions``, when partitioned) on record.

    Bounded: one query, over the batch's partitions or the latest materializations.
    """
    if partitions is not None and not partitions:
        return set()
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions)
    limit = limits.unpartitioned_lookback if partitions is None else 20 * len(partitions)
    result = instance.fetch_materializations(records_filter, limit=limit)
    found = [r.asset_materialization for r in result.records]
    return recorded_run_ids([m for m in found if m is not None])


Busy = dict[dg.AssetKey, list[tuple[str, str]] | None]


def busy_partitions(instance: dg.DagsterInstance) -> Busy:
    """Partition ranges that Dagster runs in flight, or backfills not yet finished, are
    materializing (None: the whole asset).

    Such a run reports its partitions itself when it ends; recording them now would record the same
    mParticle run twice. One bounded query per tick.
    """
    busy: Busy = {}
    in_flight = instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=IN_FLIGHT_LIMIT)
    for run in in_flight:
        tags = run.tags
        single = tags.get(RunTags.PARTITION)
        start, end = tags.get(RunTags.RANGE_START, single), tags.get(RunTags.RANGE_END, single)
        for key in run.asset_selection or ():
            ranges = busy.get(key, [])
            if start is None or end is None or ranges is None:
                busy[key] = None
            else:
                busy[key] = [*ranges, (start, end)]
    # A backfill not yet finished will launch runs that report their partitions (and its daemon
    # may be down between two of them): its assets wait whole, until it ends.
    for backfill in requested_backfills(instance, IN_FLIGHT_LIMIT):
        for key in backfill.asset_selection or ():
            busy[key] = None
    return busy


def is_busy(busy: Busy, key: dg.AssetKey, partition: str | None) -> bool:
    if key not in busy:
        return False
    ranges = busy[key]
    # Time partition keys of one format sort as their instants do.
    return ranges is None or partition is None or any(a <= partition <= b for a, b in ranges)


def record(instance: dg.DagsterInstance, item: Observed, tick: Tick, busy: Busy) -> None:
    """Add the events of ``item``'s runs to ``tick`` (skipping those on record), move its mark.

    Runs from the first whose partition a Dagster run in flight is materializing wait a tick.
    """
    spec, key = item.spec, item.key
    partitions = partitions_for(spec.schedule) if spec.schedule.is_interval else None
    keyed = [(r, partition_of(partitions, r) if partitions else None) for r in item.batch.runs]
    held = next((i for i, (_, p) in enumerate(keyed) if is_busy(busy, key, p)), None)
    if held is not None:
        tick.notes.append(
            f"'{spec.name}': run {keyed[held][0].pipeline_run_id} waits for the Dagster run in "
            "or backfill in flight on its partition"
        )
        keyed = keyed[:held]
    off_grid = [r for r, p in keyed if partitions is not None and p is None]
    if off_grid:
        tick.notes.append(
            f"'{spec.name}': {len(off_grid)} run(s) are off the partition grid (first: run "
            f"{off_grid[0].pipeline_run_id}, logical date {off_grid[0].logical_date}); not recorded"
        )
    succeeded = [p or "" for r, p in keyed if r.state is RunState.SUCCESS and p is not None]
    on_record = already_recorded(
        instance, key, sorted(set(succeeded)) if partitions else None, tick.limits
    )
    extra: dict[str, Any] = {Wsync.RECORDED_BY: SENSOR_NAME, **item.schema}
    drift = DriftState.of(instance, key) if keyed else DriftState()  # see sync/assets/drift.py
    if item.preflight_note:
        extra[Preflight.NOTE] = item.preflight_note
    for run, partition in keyed:
        if partitions is not None and partition is None:
            continue
        if run.pipeline_run_id in on_record:
            tick.duplicates += 1
            continue
        recording = Recording(
            key,
            spec,
            run,
            partition,
            item.counts.get(run.pipeline_run_id),
            item.reasons.get(run.pipeline_run_id),
            extra | drift.metadata_for(run),
        )
        tick.events.append(run_events(recording))
        tick.recorded += 1
    if keyed:
        tick.marks[spec.resolved_pipeline_id] = Mark.of(keyed[-1][0])


def sweep_rotating(
    client: WarehouseSyncClient, workspace: Workspace, tick: Tick, now: datetime
) -> None:
    """Pause rotating pipelines a crashed materialization left active (sync/engine/rotation.py): the
    one write a tick makes, so a leaked slot is freed even when no rotating sync runs again. Each is
    written with its own registry's connection."""
    if not workspace.rotating():
        return
    try:
        if paused := rotation.sweep(client, workspace, _log, now):
            tick.notes.append(f"paused rotating pipeline(s) left active: {', '.join(paused)}")
    except Exception as error:  # a secret missing here, mParticle down: the tick still records
        tick.notes.append(f"pausing leftover rotating pipelines failed ({error}); next tick")


def observe_tick(
    context: dg.SensorEvaluationContext,
    watch: RunsWatch,
    snowflake: SnowflakeResource,
    mparticle: MParticleResource,
) -> tuple[dg.SensorResult, dict[str, Any]]:
    """One tick: record what mParticle ran since the cursor; the result carries the new cursor."""
    clock = watch.clock
    started = clock()
    tick = Tick(marks=parse_cursor(context.cursor), limits=watch.limits)
    with small_budget(mparticle, watch.limits).open_client() as client:
        observed = read_runs(client, watch, tick)
        sweep_rotating(client, watch.workspace, tick, mparticle.now())
    count_runs(snowflake, observed)
    busy = busy_partitions(context.instance)
    for item in observed:
        record(context.instance, item, tick, busy)
    summary: dict[str, Any] = {
        "recorded_runs": tick.recorded,
        "already_recorded": tick.duplicates,
        "run_listings": tick.listings,
        "seconds": round(clock() - started, 3),
    }
    if tick.notes:
        summary["notes"] = tick.notes
    # A tick that recorded nothing, or was cut short, says why (the daemon shows it as skipped).
    skip = dg.SkipReason(json.dumps(summary)) if tick.notes or not tick.events else None
    result = dg.SensorResult(
        asset_events=tick.events, cursor=dump_cursor(tick.marks), skip_reason=skip
    )
    return result, summary


# Running from the start, in both code locations: mParticle runs interval pipelines on its own clock,
# so observing is how Dagster knows what ran. A tick only reads, except pausing a rotating pipeline a
# crash left active (which frees a slot the limit counts); with no sync it reads nothing.
DEFAULT_STATUS = dg.DefaultSensorStatus.RUNNING


def build_runs_sensor(watch: RunsWatch) -> dg.SensorDefinition:
    """The sensor recording every run of the watched syncs' pipelines, each under its asset's key
    (see :func:`observe_tick`)."""

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=DEFAULT_STATUS,
        description="Records every mParticle run of the registry's pipelines as asset events "
        "(materializations; a failed run fails the partition's parity check), with no Dagster run.",
    )
    def wsync_runs_sensor(
        context: dg.SensorEvaluationContext,
        snowflake: SnowflakeResource,
        mparticle: MParticleResource,
    ) -> dg.SensorResult | dg.SkipReason:
        if problem := settings_problem(snowflake, mparticle):
            # The message a run would refuse with; nothing is read until the settings are there.
            return dg.SkipReason(problem)
        result, summary = observe_tick(context, watch, snowflake, mparticle)
        context.log.info(f"{SENSOR_NAME}: {json.dumps(summary)}")
        return result

    return wsync_runs_sensor
