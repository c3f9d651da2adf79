"""Which windows a materialization of a sync would sync next, read from mParticle. No Dagster here.

* **Interval syncs**: the closed windows of the pipeline's grid (docs/warehouse-sync-api.md,
  "Interval grid") that have no successful run, the latest ``cap`` of them; a window whose run
  failed and that a repair pipeline already covers (:mod:`.repair`) is not pending. A new pipeline's
  closed windows are all pending: mParticle catches them up from the start. One run listing.
* **on_demand**: the window from where the last successful run's data ended (else the start) to
  now, as a trigger would sync it (:func:`single_window`, also what a materialization pre-flights).
* **once**: ``start .. end``; done once its run has succeeded.

When nothing is pending, :func:`pending_windows` returns the latest closed window as a *sample*, so
the ``plan`` command can still say what the pre-flight would find.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from wsync_dagster.mparticle import MAX_PAGE_SIZE, NotFoundError, RunState, WarehouseSyncClient
from wsync_dagster.sync.engine.repair import repair_pipeline_id
from wsync_dagster.sync.registry.cadences import cadence
from wsync_dagster.sync.registry.specs import Schedule, SyncSpec
from wsync_dagster.sync.registry.windows import Window


def last_successful_end(client: WarehouseSyncClient, pipeline_id: str) -> datetime | None:
    """Where the last successful run's data ended: the next on-demand window starts there."""
    try:
        for run in client.iter_pipeline_runs(pipeline_id, page_size=100):
            if run.state is RunState.SUCCESS and run.data_interval_end is not None:
                return run.data_interval_end
    except NotFoundError:
        return None
    return None


def single_window(client: WarehouseSyncClient, spec: SyncSpec, now: datetime) -> Window:
    """The window an ``on_demand`` trigger at ``now`` syncs (from the last success's end, else
    the start), or a ``once`` sync's ``start .. end``."""
    schedule = spec.schedule
    if schedule.interval == "once":
        assert schedule.end is not None
        return Window("once", schedule.start, schedule.end)
    start = last_successful_end(client, spec.resolved_pipeline_id) or schedule.start
    return Window("on_demand", start, now)


def _window(schedule: Schedule, index: int) -> Window:
    grid = cadence(schedule.interval)
    assert grid.step is not None
    start = schedule.start + grid.step * index
    return Window(start.strftime(grid.key_format(schedule.start)), start, start + grid.step)


def closed_windows(schedule: Schedule, now: datetime, cap: int) -> tuple[list[Window], int]:
    """The latest ``cap`` closed windows of an interval schedule's grid, oldest first, and how many
    windows have closed in all (a window is closed once its end has passed, and exists only if it
    ends by the schedule's end). Keys are the asset's partition keys."""
    until = min(now, schedule.end) if schedule.end is not None else now
    step = cadence(schedule.interval).step
    assert step is not None
    # An estimate from the elapsed time, corrected against the grid (calendar months vary).
    approximate = (schedule.start + step) - schedule.start
    closed = max(int((until - schedule.start) / approximate), 0)
    while closed > 0 and _window(schedule, closed - 1).end > until:
        closed -= 1
    while _window(schedule, closed).end <= until:
        closed += 1
    first = max(closed - cap, 0)
    return [_window(schedule, index) for index in range(first, closed)], closed


@dataclass(frozen=True)
class Pending:
    """What the next materialization of one sync would sync, as far as mParticle says.

    Attributes:
        windows: The windows to pre-flight (pending ones, or one sample), oldest first.
        pending: Windows waiting to sync: closed with no successful run (counted ones and older).
        sample: ``windows`` holds a sample (nothing is pending): the latest closed window, or the
            first window of a grid that has not closed one yet.
        failed: Keys of pending windows whose run failed (a materialization repairs them).
        not_examined: Closed windows older than the ``cap`` latest: neither read nor counted (all
            pending when the pipeline does not exist yet, and included in ``pending`` then).
        runs_read: Run listings made.
    """

    windows: tuple[Window, ...]
    pending: int
    sample: bool = False
    failed: tuple[str, ...] = ()
    not_examined: int = 0
    runs_read: int = 0


def pending_windows(
    client: WarehouseSyncClient,
    spec: SyncSpec,
    now: datetime,
    *,
    exists: bool,
    cap: int = MAX_PAGE_SIZE,
    pipeline_ids: Collection[str] = (),
) -> Pending:
    """The windows the next materialization of ``spec`` would sync (see the module doc).

    ``exists``: whether its pipeline exists (else nothing is read: every closed window is pending).
    ``pipeline_ids``: every pipeline of the workspace, to tell the failed windows a repair
    pipeline already covers.
    """
    schedule = spec.schedule
    if schedule.interval == "once":
        assert schedule.end is not None
        window = Window("once", schedule.start, schedule.end)
        done = exists and _once_succeeded(client, spec)
        return Pending((window,), 0 if done else 1, sample=done, runs_read=int(exists))
    if schedule.interval == "on_demand":
        if not exists:
            return Pending((Window("on_demand", schedule.start, now),), 1)
        return Pending((single_window(client, spec, now),), 1, runs_read=1)
    candidates, closed = closed_windows(schedule, now, cap)
    older = closed - len(candidates)
    if not candidates:
        return Pending((_window(schedule, 0),), 0, sample=True)
    if not exists:
        return Pending(tuple(candidates), closed, not_examined=older)
    succeeded, failed = _run_states(client, spec.resolved_pipeline_id, candidates)
    own = spec.resolved_pipeline_id
    repaired = {w.key for w in candidates if repair_pipeline_id(own, w.start) in pipeline_ids}
    pending = [w for w in candidates if w.key not in succeeded and w.key not in repaired]
    failed_keys = tuple(w.key for w in pending if w.key in failed)
    if not pending:
        return Pending((candidates[-1],), 0, sample=True, not_examined=older, runs_read=1)
    return Pending(tuple(pending), len(pending), False, failed_keys, older, runs_read=1)


def _once_succeeded(client: WarehouseSyncClient, spec: SyncSpec) -> bool:
    try:
        runs = client.list_pipeline_runs(spec.resolved_pipeline_id, page_size=10)
    except NotFoundError:
        return False
    return any(run.state is RunState.SUCCESS for run in runs)


def _run_states(
    client: WarehouseSyncClient, pipeline_id: str, windows: list[Window]
) -> tuple[set[str], set[str]]:
    """Keys of ``windows`` with a successful run, and of those whose run failed (one listing)."""
    by_start = {w.start: w.key for w in windows}
    succeeded: set[str] = set()
    failed: set[str] = set()
    try:
        runs = client.iter_pipeline_runs(
            pipeline_id, start=windows[0].start, end=windows[-1].start, page_size=MAX_PAGE_SIZE
        )
        for run in runs:
            key = by_start.get(run.logical_date) if run.logical_date is not None else None
            if key is None:
                continue
            if run.state is RunState.SUCCESS:
                succeeded.add(key)
            elif run.state is RunState.FAILED:
                failed.add(key)
    except NotFoundError:
        pass
    return succeeded, failed - succeeded
