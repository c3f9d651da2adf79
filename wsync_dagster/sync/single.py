"""Materialize an unpartitioned sync: ``on_demand`` triggers a run (or attaches to the one in
flight); ``once`` attaches to its single run. Then the run's exact window is counted for the checks."""

from collections.abc import Iterator
from datetime import datetime

import dagster as dg

from wsync_dagster.mparticle import (
    NotFoundError,
    PipelineRun,
    RunFailedError,
    RunState,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster.sync import checks
from wsync_dagster.sync.report import (
    run_materialization,
    schema_metadata,
    step_observation,
    sync_metadata,
)
from wsync_dagster.sync.steps import SyncContext, fail, preflight, reconcile_sync
from wsync_dagster.sync.windows import Window


def last_successful_end(client: WarehouseSyncClient, pipeline_id: str) -> datetime | None:
    """Where the last successful run's data ended: the next on-demand window starts there."""
    try:
        for run in client.iter_pipeline_runs(pipeline_id, page_size=100):
            if run.state is RunState.SUCCESS and run.data_interval_end is not None:
                return run.data_interval_end
    except NotFoundError:
        return None
    return None


def wait_for_run(ctx: SyncContext, client: WarehouseSyncClient, run_id: int) -> PipelineRun:
    m = ctx.mparticle
    try:
        return client.wait_for_run(
            ctx.spec.resolved_pipeline_id,
            run_id,
            timeout=m.run_timeout_seconds,
            poll_interval=m.poll_interval_seconds,
            max_poll_interval=m.max_poll_interval_seconds,
        )
    except RunFailedError as error:
        raise fail(f"mParticle run {run_id} of '{ctx.spec.name}' failed: {error}") from error
    except (UnknownRunStateError, WaitTimeoutError) as error:
        raise fail(
            f"{error} Materialize again to attach to the same run; nothing was triggered twice."
        ) from error


def wait_for_first_run(ctx: SyncContext, client: WarehouseSyncClient) -> PipelineRun:
    """A new ``once`` pipeline's run appears shortly after creation; poll (bounded) until it does."""
    settings = ctx.wait_settings()
    runs, _ = settings.poll(
        lambda: list(client.iter_pipeline_runs(ctx.spec.resolved_pipeline_id, page_size=10)), bool
    )
    if not runs:
        raise fail(
            f"mParticle created no run for once-sync '{ctx.spec.name}' within "
            f"{settings.timeout:.0f} s; check the pipeline in mParticle"
        )
    return runs[0]


def _requested_window(ctx: SyncContext, client: WarehouseSyncClient, now: datetime) -> Window:
    schedule = ctx.spec.schedule
    if schedule.interval == "once":
        assert schedule.end is not None
        return Window("once", schedule.start, schedule.end)
    start = last_successful_end(client, ctx.spec.resolved_pipeline_id) or schedule.start
    return Window("on_demand", start, now)


def _start_or_attach(
    context: dg.AssetExecutionContext, ctx: SyncContext, client: WarehouseSyncClient
) -> tuple[int, bool]:
    """The run to wait for, and whether it was already there (attached) rather than triggered."""
    spec = ctx.spec
    pipeline_id = spec.resolved_pipeline_id
    if spec.schedule.interval == "once":
        runs = list(client.iter_pipeline_runs(pipeline_id, page_size=10))
        first = runs[0] if runs else wait_for_first_run(ctx, client)
        return first.pipeline_run_id, True
    try:
        triggered = client.trigger_pipeline(pipeline_id)
    except WarehouseSyncError as error:
        raise fail(f"Triggering '{spec.name}' in mParticle failed: {error}") from error
    if triggered.attached:
        context.log.info(
            f"A run was already in progress; attached to run {triggered.pipeline_run_id}"
        )
    return triggered.pipeline_run_id, triggered.attached


def materialize_single(
    context: dg.AssetExecutionContext, ctx: SyncContext
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    """``on_demand`` (trigger or attach) and ``once`` (attach to its one run)."""
    spec = ctx.spec
    client = ctx.mparticle.get_client()
    before = client.stats
    now = ctx.mparticle.now()
    window = _requested_window(ctx, client, now)
    report = preflight(ctx, [window], spec.schedule.interval)
    reconciled = reconcile_sync(ctx, client)
    run_id, attached = _start_or_attach(context, ctx, client)
    run = wait_for_run(ctx, client, run_id)

    # The trigger's window ends when mParticle received it: count exactly that window for the check.
    actual = Window(
        window.key, run.data_interval_start or window.start, run.data_interval_end or now
    )
    recount = preflight(ctx, [actual], spec.schedule.interval, "Count of the run's exact window")
    count = recount.counts[0]
    step = {
        **sync_metadata(reconciled, before, client.stats),
        "preflight/queries": report.queries + recount.queries,
    }
    context.log_event(step_observation(context.asset_key, step))
    extra = {**schema_metadata(report), "wsync/attached_to_existing_run": attached}
    yield run_materialization(context.asset_key, spec, actual, run, count, extra)
    yield from checks.check_results(context.asset_key, [(count, run)])
