"""The runs sensor: every run mParticle made of a registry pipeline, recorded as asset events.

Each tick, per pipeline: read the runs after the cursor (:func:`~.batch.read_batch`, one listing in
the steady state; several pipelines at a time, within a time budget, the pipelines a tick could not
read first the next time), count their windows in Snowflake (column discovery plus one grouped
count per sync), skip the runs a Dagster run or an earlier tick already recorded (by
``mparticle/run_id``), and return the rest as materializations (a failed run: a failed parity check
on its partition), with the cursor moved past exactly what was handled. The same grouped count also
recounts the windows before the batch's (``recount_windows``): a window holding more rows than its
run on record read gets an asset observation saying so (docs/late-rows.md). See
docs/observation.md.
"""

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource

from wsync_dagster.compat import requested_backfills
from wsync_dagster.mparticle import (
    PipelineRun,
    RunState,
    WarehouseSyncClient,
)
from wsync_dagster.resources import MParticleResource, settings_problem
from wsync_dagster.sync.assets.drift import DriftState
from wsync_dagster.sync.assets.in_flight import JobAssets, materializing, runs_in_flight
from wsync_dagster.sync.assets.late_rows import late_rows_verdict, latest_records, windows_before
from wsync_dagster.sync.assets.metadata import Preflight, RunTags, Wsync
from wsync_dagster.sync.assets.partitions import partitions_for
from wsync_dagster.sync.assets.report import schema_metadata
from wsync_dagster.sync.engine import rotation
from wsync_dagster.sync.engine.context import first_line
from wsync_dagster.sync.engine.preflight import count_windows, discover_columns
from wsync_dagster.sync.observe.batch import (
    Mark,
    ObserveLimits,
    Recording,
    dump_cursor,
    parse_cursor,
    parse_read_first,
    partition_of,
    recorded_run_ids,
    run_events,
    run_window,
)
from wsync_dagster.sync.observe.reading import (
    Observed,
    RunsWatch,
    Tick,
    read_runs,
    small_budget,
)
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.windows import Window
from wsync_dagster.sync.registry.workspace import Workspace

_log = logging.getLogger("wsync_dagster.sensor")
SENSOR_NAME = "wsync_runs_sensor"
MINIMUM_INTERVAL_SECONDS = 30
IN_FLIGHT_LIMIT = 200


def recount_windows(spec: SyncSpec, runs: Sequence[PipelineRun]) -> list[Window]:
    """The ``spec.late_row_windows`` partitions' windows before the oldest of ``runs`` (an
    interval sync's), recounted for late rows in the same query as the runs' own windows."""
    if not spec.schedule.is_interval or not runs or spec.late_row_windows == 0:
        return []
    partitions = partitions_for(spec.schedule)
    oldest = runs[0]
    key = partition_of(partitions, oldest)
    if key is None:
        return []
    return windows_before(partitions, run_window(oldest, key), spec.late_row_windows)


def _count_one(cursor: Any, item: Observed, succeeded: Sequence[PipelineRun]) -> None:
    """Count one sync's successful windows, and the windows before them for late rows, in one
    grouped query (two queries with the column discovery)."""
    windows = [run_window(r, str(r.pipeline_run_id)) for r in succeeded]
    recount = recount_windows(item.spec, succeeded)
    columns = discover_columns(cursor, item.spec)
    counts, _ = count_windows(cursor, item.spec, columns, [*recount, *windows])
    item.recounts = {c.window.key: c for c in counts[: len(recount)]}
    item.counts = {int(c.window.key): c for c in counts[len(recount) :]}
    item.schema = schema_metadata(columns)


def count_runs(
    snowflake: SnowflakeResource,
    observed: Sequence[Observed],
    clock: Callable[[], float] = time.monotonic,
    deadline: float = float("inf"),
) -> list[Observed]:
    """Count the windows of every sync with new successful runs, over ONE Snowflake connection for
    the whole tick (a login per sync cost more than its queries). A sync whose count fails is
    recorded without counts and says why (``preflight/note``); the connection is then opened again
    for the next one. No count starts after ``deadline`` (``clock``): the syncs left are returned,
    to be recorded next tick rather than recorded without their counts."""
    todo = [
        (item, succeeded)
        for item in observed
        if (succeeded := [r for r in item.batch.runs if r.state is RunState.SUCCESS])
    ]
    stack = contextlib.ExitStack()
    cursor: Any = None
    try:  # not `with stack`: a failed count replaces the stack, and the new one must close too
        for index, (item, succeeded) in enumerate(todo):
            if clock() > deadline:
                return [deferred for deferred, _ in todo[index:]]
            try:
                if cursor is None:
                    connection = stack.enter_context(snowflake.get_connection())
                    cursor = connection.cursor()
                    stack.callback(cursor.close)
                _count_one(cursor, item, succeeded)
            except Exception as error:
                item.preflight_note = f"pre-flight count unavailable: {first_line(error)}"
                stack.close()  # a failed session may not serve the next sync: open a new one
                stack, cursor = contextlib.ExitStack(), None
    finally:
        stack.close()
    return []


def share_runs(observed: Sequence[Observed], most: int) -> list[Observed]:
    """Keep at most ``most`` runs over the tick, oldest of each pipeline first, in reading order:
    a pipeline that reaches the limit keeps the runs before it (its mark moves past those only),
    and the pipelines after it are returned, to be read first next tick."""
    left, deferred = most, []
    for item in observed:
        if not item.batch.runs:
            continue
        if left <= 0:
            deferred.append(item)
            continue
        if len(item.batch.runs) > left:
            item.batch = replace(item.batch, runs=item.batch.runs[:left])
        left -= len(item.batch.runs)
    return deferred


def defer(
    tick: Tick, observed: Sequence[Observed], deferred: Sequence[Observed], why: str
) -> list[Observed]:
    """Leave ``deferred`` for the next tick, which reads their pipelines first (their marks stay),
    with a note saying ``why``; return the others."""
    if not deferred:
        return list(observed)
    names = ", ".join(f"'{item.spec.name}'" for item in deferred)
    tick.notes.append(f"{why}; {names} are recorded next tick (read first then)")
    ids = [item.bound.pipeline_id for item in deferred]
    tick.read_first = [*ids, *(pid for pid in tick.read_first if pid not in ids)]
    return [item for item in observed if item not in deferred]


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


def busy_partitions(instance: dg.DagsterInstance, jobs: JobAssets) -> Busy:
    """Partition ranges that Dagster runs in flight, or backfills not yet finished, are
    materializing (None: the whole asset). ``jobs``: the assets of each sync job, for the runs
    without an asset selection (a schedule's run materializes its whole job).

    Such a run reports its partitions itself when it ends; recording them now would record the same
    mParticle run twice. One bounded query per tick.
    """
    busy: Busy = {}
    for run in runs_in_flight(instance, IN_FLIGHT_LIMIT):
        tags = run.tags
        single = tags.get(RunTags.PARTITION)
        start, end = tags.get(RunTags.RANGE_START, single), tags.get(RunTags.RANGE_END, single)
        for key in materializing(run, jobs):
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


def observe_late_rows(instance: dg.DagsterInstance, item: Observed, tick: Tick, busy: Busy) -> None:
    """An asset observation on each recounted window that holds late rows (its run on record read
    from the instance, one query), but for partitions a Dagster run in flight is materializing.

    Observations, not ``late_rows`` check evaluations: Dagster 1.13 stores at most one evaluation
    per check, partition and run, and every runless event (a sensor's) has the same empty run id,
    so the next tick recounting the same window could not store its evaluation. Dagster runs judge
    the check (each materialization, a re-send, a ``wsync/check_late_rows`` run); see
    docs/late-rows.md.
    """
    counts = [c for key, c in item.recounts.items() if not is_busy(busy, item.key, key)]
    if not counts:
        return
    records = latest_records(instance, item.key, [c.window.key for c in counts])
    late = [
        (count, verdict)
        for count in counts
        if (record := records.get(count.window.key)) is not None
        and record.records_extracted is not None
        and not (
            verdict := late_rows_verdict(count, record.run_id, record.records_extracted)
        ).passed
    ]
    for count, verdict in late:
        tick.events.append(
            dg.AssetObservation(
                asset_key=item.key,
                partition=count.window.key,
                description=verdict.description,
                metadata=verdict.metadata,
            )
        )
    if late:
        rows = sum(int(v.metadata[Wsync.LATE_ROWS]) for _, v in late)
        tick.notes.append(
            f"'{item.spec.name}': {rows:,} late row(s) in {len(late)} synced window(s) (first: "
            f"{late[0][0].window.key}); re-send them with run tag wsync/resend=true"
        )


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
    cursor = context.cursor
    tick = Tick(parse_cursor(cursor), watch.limits, read_first=parse_read_first(cursor))
    with small_budget(mparticle, watch.limits).open_client() as client:
        observed = read_runs(client, watch, tick)
        sweep_rotating(client, watch.workspace, tick, mparticle.now())
    observed = defer(
        tick,
        observed,
        share_runs(observed, watch.limits.max_runs_per_tick),
        f"runs recorded this tick reached {watch.limits.max_runs_per_tick}",
    )
    observed = defer(
        tick,
        observed,
        count_runs(snowflake, observed, clock, started + watch.limits.count_seconds),
        "counting in Snowflake ran out of the tick's time",
    )
    busy = busy_partitions(context.instance, watch.jobs())
    for item in observed:
        record(context.instance, item, tick, busy)
        observe_late_rows(context.instance, item, tick, busy)
    summary: dict[str, Any] = {
        "recorded_runs": tick.recorded,
        "already_recorded": tick.duplicates,
        "run_listings": tick.listings,
        "recounted_windows": sum(len(item.recounts) for item in observed),
        "seconds": round(clock() - started, 3),
    }
    if tick.notes:
        summary["notes"] = tick.notes
    # A tick that recorded nothing, or was cut short, says why (the daemon shows it as skipped).
    skip = dg.SkipReason(json.dumps(summary)) if tick.notes or not tick.events else None
    result = dg.SensorResult(
        asset_events=tick.events,
        cursor=dump_cursor(tick.marks, tick.read_first),
        skip_reason=skip,
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
