"""Observing mParticle's runs without a Dagster run: the cursor, the next runs to record, and the
asset events that record them.

The runs sensor (:mod:`wsync_dagster.sync.observe.sensor`) calls these once per tick and pipeline. Run
listings come newest ``logical_date`` first and have no total (see docs/warehouse-sync-api.md,
"Run paging"), so :func:`read_batch` finds the *oldest* runs after the cursor by narrowing the listed
range of logical dates, a few listings at most. A pipeline executes one run at a time, oldest
``logical_date`` first, so the runs after the cursor are terminal up to the first one that is not:
the batch stops there and a later tick picks that run up when it has ended.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import MAX_PAGE_SIZE, PipelineRun, RunState, WarehouseSyncClient
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.metadata import MParticle
from wsync_dagster.sync.assets.report import run_materialization
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.windows import Window, WindowCount

CURSOR_VERSION = 1
ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Mark:
    """Where a pipeline's cursor stands: every run up to this (logical date, run id) is recorded."""

    logical_date: datetime
    run_id: int

    @staticmethod
    def of(run: PipelineRun) -> "Mark":
        assert run.logical_date is not None
        return Mark(run.logical_date, run.pipeline_run_id)

    def is_before(self, run: PipelineRun) -> bool:
        """True when ``run`` comes after this mark (so it is not recorded yet)."""
        assert run.logical_date is not None
        return (run.logical_date, run.pipeline_run_id) > (self.logical_date, self.run_id)


def parse_cursor(text: str | None) -> dict[str, Mark]:
    """The per-pipeline marks kept in the sensor cursor (JSON); empty for no or another cursor."""
    if not text:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        return {}
    return {
        pipeline: Mark(datetime.fromisoformat(mark["logical_date"]), int(mark["run_id"]))
        for pipeline, mark in data.get("pipelines", {}).items()
    }


def parse_read_first(text: str | None) -> tuple[str, ...]:
    """The pipelines the previous tick left unread (its time ran out, or mParticle refused), which
    this tick reads first; empty for no or another cursor, or a cursor written before this list."""
    if not text:
        return ()
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        return ()
    first = data.get("read_first", [])
    return tuple(p for p in first if isinstance(p, str)) if isinstance(first, list) else ()


def dump_cursor(marks: Mapping[str, Mark], read_first: Sequence[str] = ()) -> str:
    pipelines = {
        pipeline: {"logical_date": mark.logical_date.isoformat(), "run_id": mark.run_id}
        for pipeline, mark in sorted(marks.items())
    }
    data: dict[str, Any] = {"version": CURSOR_VERSION, "pipelines": pipelines}
    if read_first:
        data["read_first"] = list(read_first)
    return json.dumps(data, sort_keys=True)


@dataclass(frozen=True)
class ObserveLimits:
    """What one tick may spend: listings and runs per pipeline, time, and retrying."""

    page_size: int = MAX_PAGE_SIZE
    max_runs_per_pipeline: int = 200
    max_runs_per_tick: int = 100
    """Runs one tick records over all pipelines: the daemon stores each as an event after the tick
    returns, which the tick's own clock does not see (a 182-run catch-up tick took 12 s, 3 s of them
    in the sensor). Pipelines past it are read first next tick; a catch-up takes a few ticks."""
    max_listings_per_pipeline: int = 4
    parallel_listings: int = 8
    """Pipelines read at once, over the tick's one client (whose HTTP session keeps up to 10
    connections to the API open)."""
    tick_seconds: float = 20.0
    """No new pipeline is read once the tick has run this long (the sensor timeout is 60 s)."""
    abandon_seconds: float = 35.0
    """A read still going this long after the tick began is left behind: its pipeline keeps its
    cursor and is read first next tick, so the tick ends well inside the sensor timeout."""
    count_seconds: float = 45.0
    """No Snowflake count starts once the tick has run this long: the syncs left are recorded next
    tick (read first), so a tick ends inside the sensor timeout however many syncs have new runs."""
    retry_budget_seconds: float = 10.0
    max_attempts: int = 3
    unpartitioned_lookback: int = 1000
    """Latest materializations of an unpartitioned asset searched for a run id already recorded."""


@dataclass(frozen=True)
class Batch:
    """The runs of one pipeline to record this tick, oldest first, and what holds the rest back."""

    runs: tuple[PipelineRun, ...]
    listings: int
    waiting: PipelineRun | None = None
    """The first run after the batch that has not ended: the cursor stops before it."""
    unreadable: bool = False
    """More runs share a logical date than a listing can hold: nothing could be ordered."""


def _order(run: PipelineRun) -> tuple[datetime, int]:
    assert run.logical_date is not None
    return run.logical_date, run.pipeline_run_id


def _oldest_listing(
    client: WarehouseSyncClient, pipeline_id: str, low: datetime, limits: ObserveLimits
) -> tuple[list[PipelineRun], int, bool]:
    """The runs with a logical date from ``low`` in one listing that reaches the oldest of them.

    Returns (runs, listings, complete). A full page holds the newest runs of the range, so the
    range is narrowed from its newest end, at the page's own spacing of logical dates, to about the
    runs one tick records (a grid's runs are evenly spaced: one narrowing is enough), until a page
    is not full.
    """
    high: datetime | None = None
    listings = 0
    # The mark's own run is listed again (the range starts at its logical date).
    wanted = min(limits.max_runs_per_pipeline + 1, limits.page_size - 1)
    while True:
        page = client.list_pipeline_runs(
            pipeline_id, page_size=limits.page_size, start=low, end=high
        )
        listings += 1
        if len(page) < limits.page_size:
            return page, listings, True
        dates = [r.logical_date for r in page if r.logical_date is not None]
        newest, oldest = max(dates), min(dates)
        if newest <= low or listings >= limits.max_listings_per_pipeline:
            return page, listings, False
        spacing = (newest - oldest) / max(len(dates) - 1, 1)
        # Strictly older than this page's newest run, so each listing holds fewer runs.
        high = max(low, min(low + spacing * (wanted - 1), newest - ONE_SECOND))


def read_batch(
    client: WarehouseSyncClient,
    pipeline_id: str,
    mark: Mark | None,
    limits: ObserveLimits,
    *,
    floor: datetime,
) -> Batch:
    """The terminal runs after ``mark`` (or from ``floor``, the sync's start), oldest first.

    At most ``limits.max_runs_per_pipeline``, and never past a run that has not ended.
    """
    low = mark.logical_date if mark is not None else floor
    runs, listings, complete = _oldest_listing(client, pipeline_id, low, limits)
    if not complete:
        return Batch((), listings, unreadable=True)
    fresh = sorted(
        (r for r in runs if r.logical_date is not None and (mark is None or mark.is_before(r))),
        key=_order,
    )
    batch: list[PipelineRun] = []
    for run in fresh:
        if not run.is_terminal:
            return Batch(tuple(batch), listings, waiting=run)
        if len(batch) == limits.max_runs_per_pipeline:
            break
        batch.append(run)
    return Batch(tuple(batch), listings)


def run_window(run: PipelineRun, key: str) -> Window:
    """The window ``run`` read (its data interval), under the partition ``key`` it records."""
    assert run.data_interval_start is not None and run.data_interval_end is not None
    return Window(key, run.data_interval_start, run.data_interval_end)


def partition_of(partitions: dg.TimeWindowPartitionsDefinition, run: PipelineRun) -> str | None:
    """The partition whose window starts at ``run``'s logical date; None when off the grid."""
    if run.logical_date is None:
        return None
    try:
        key = partitions.get_partition_key_for_timestamp(run.logical_date.timestamp())
    except Exception:  # before the first partition: Dagster raises rather than returning None
        return None
    window = partitions.time_window_for_partition_key(key)
    return key if window.start == run.logical_date else None


def failed_run_check(recording: "Recording", window: Window) -> dg.AssetCheckEvaluation:
    """The blocking parity check, failed (ERROR) for the recording's failed run, naming its
    ``faulted_reason``.

    A failed run extracted nothing to compare with the pre-flight count, so the partition's data in
    mParticle does not match Snowflake: the same verdict a Dagster run gives a failed partition.
    """
    spec, run = recording.spec, recording.run
    reason = recording.faulted_reason or "no reason given by mParticle"
    return dg.AssetCheckEvaluation(
        asset_key=recording.key,
        check_name=naming.CHECK_PREFLIGHT_PARITY,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"mParticle run {run.pipeline_run_id} ({window.describe()}) failed: {reason}",
        metadata={
            MParticle.PIPELINE_ID: spec.resolved_pipeline_id,
            MParticle.RUN_ID: run.pipeline_run_id,
            MParticle.RUN_STATE: run.pipeline_run_state,
            MParticle.FAULTED_REASON: reason,
        },
        blocking=True,
        partition=recording.partition,
    )


@dataclass(frozen=True)
class Recording:
    """What the sensor knows when it records one run."""

    key: dg.AssetKey
    spec: SyncSpec
    run: PipelineRun
    partition: str | None
    count: WindowCount | None
    faulted_reason: str | None
    extra: Mapping[str, Any]


def run_events(recording: Recording) -> dg.AssetMaterialization | dg.AssetCheckEvaluation:
    """The event recording one terminal run: a materialization, or a failed parity check."""
    r = recording
    window = run_window(r.run, r.partition or r.spec.schedule.interval)
    if r.run.state is not RunState.SUCCESS:
        return failed_run_check(r, window)
    return run_materialization(
        r.key, r.spec, window, r.run, count=r.count, extra=r.extra, partition=r.partition
    )


def recorded_run_ids(materializations: Sequence[dg.AssetMaterialization]) -> set[int]:
    """The ``mparticle/run_id`` of each materialization that has one."""
    found = (MParticle.RUN_ID.read(m.metadata) for m in materializations)
    return {run_id for run_id in found if run_id is not None}
