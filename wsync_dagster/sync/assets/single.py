"""Materialize an unpartitioned sync: ``on_demand`` triggers a run (or attaches to the one in
flight); ``once`` attaches to its single run. Then the run's exact window is counted for the checks.
A rotating ``on_demand`` sync activates its pipeline around the run (:mod:`.rotation`)."""

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

import dagster as dg

from wsync_dagster.mparticle import (
    PipelineRun,
    RunFailedError,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster.sync.assets import checks, drift, schema_check
from wsync_dagster.sync.assets.late_rows import mode_of
from wsync_dagster.sync.assets.metadata import Preflight, Wsync
from wsync_dagster.sync.assets.report import (
    column_schema,
    run_materialization,
    schema_metadata,
    step_observation,
    sync_metadata,
)
from wsync_dagster.sync.assets.steps import SyncContext, fail, first_line, preflight, reconcile_sync
from wsync_dagster.sync.engine import rotation
from wsync_dagster.sync.engine.guards import future_start_problem
from wsync_dagster.sync.engine.pending import single_window
from wsync_dagster.sync.engine.preflight import run_preflight
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.windows import Window, WindowCount


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
    except WarehouseSyncError as error:
        raise fail(
            f"mParticle kept failing (retry budget {m.retry_budget_seconds:.0f} s) while waiting "
            f"for run {run_id} of '{ctx.spec.name}': {error}. The run may still complete in "
            "mParticle: materialize again to attach to it if it is still in progress; if it has "
            "ended, the next window starts where it ended, so no row is sent twice."
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


def _start_or_attach(
    context: dg.AssetExecutionContext, ctx: SyncContext, client: WarehouseSyncClient
) -> tuple[int, bool]:
    """The run to wait for, and whether it was already there (attached) rather than triggered."""
    spec = ctx.spec
    pipeline_id = spec.resolved_pipeline_id
    if spec.schedule.interval == "once":
        runs = list(client.iter_pipeline_runs(pipeline_id, page_size=10))
        if not runs and spec.paused:
            raise fail(_paused(spec, "mParticle starts no run of a paused pipeline"))
        first = runs[0] if runs else wait_for_first_run(ctx, client)
        return first.pipeline_run_id, True
    if spec.paused:
        raise fail(
            _paused(spec, "mParticle refuses to trigger a paused pipeline, so no run was requested")
        )
    if spec.rotate:
        triggered = rotation.trigger(ctx.engine(), client)
    else:
        try:
            triggered = client.trigger_pipeline(pipeline_id)
        except WarehouseSyncError as error:
            raise fail(f"Triggering '{spec.name}' in mParticle failed: {error}") from error
    if triggered.attached:
        context.log.info(
            f"A run was already in progress; attached to run {triggered.pipeline_run_id}"
        )
    return triggered.pipeline_run_id, triggered.attached


def _slot(ctx: SyncContext, client: WarehouseSyncClient) -> AbstractContextManager[rotation.Slot]:
    """A rotating sync's active-pipeline slot, held around its run (see sync/engine/rotation.py)."""
    return (
        rotation.holding_slot(ctx.engine(), client)
        if ctx.spec.rotate
        else nullcontext(rotation.Slot())
    )


def materialize_single(
    context: dg.AssetExecutionContext, ctx: SyncContext
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    """``on_demand`` (trigger or attach) and ``once`` (attach to its one run)."""
    mode_of(context.run.tags, partitioned=False)  # the re-send and check tags are refused here
    spec = ctx.spec
    client = ctx.mparticle.get_client()
    before = client.stats
    now = ctx.mparticle.now()
    if problem := future_start_problem(spec, now):  # before anything reaches mParticle
        raise fail(problem)
    window = single_window(client, spec, now)  # what the plan command pre-flights too
    report = preflight(ctx, [window], spec.schedule.interval)
    reconciled = reconcile_sync(ctx, client)
    with _slot(ctx, client) as slot:
        run_id, attached = _start_or_attach(context, ctx, client)
        slot.run_id = run_id
        run = wait_for_run(ctx, client, run_id)

    # The trigger's window ends when mParticle received it: count exactly that window for the check.
    actual = Window(
        window.key, run.data_interval_start or window.start, run.data_interval_end or now
    )
    count, recount_queries, not_counted = _recount(ctx, actual)
    step = {
        **sync_metadata(reconciled, before, client.stats),
        Preflight.QUERIES: report.queries + recount_queries,
    }
    context.log_event(step_observation(context.asset_key, step))
    extra = {**schema_metadata(report), Wsync.ATTACHED: attached}
    schema_watch = schema_check.SchemaWatch(context.instance, context.asset_key, context.run.run_id)
    yield run_materialization(context.asset_key, spec, actual, run, count=count, extra=extra)
    yield from drift.result_after_reconcile(context, reconciled)
    if count is None:
        yield from checks.results_without_count(context.asset_key, run, not_counted or "")
    else:
        yield from checks.check_results(context.asset_key, [(count, run)])
    yield schema_watch.judge(column_schema(report)).result(context.asset_key)


def _paused(spec: SyncSpec, why: str) -> str:
    return (
        f"Sync '{spec.name}' is paused (paused: true in the registry): {why}. Set paused: false "
        "in the registry and materialize again to resume."
    )


def _recount(ctx: SyncContext, window: Window) -> tuple[WindowCount | None, int, str | None]:
    """Count the run's exact window after it ran: (count, queries, why it could not be counted).

    The run has already sent its rows, so a failure here neither fails the step nor says that
    nothing was sent: the run is still recorded, and the parity check is reported as not evaluated.
    """
    try:
        with ctx.snowflake.get_connection() as connection:
            cursor = connection.cursor()
            try:
                report = run_preflight(
                    cursor, ctx.spec, [window], limit_kind=ctx.spec.schedule.interval
                )
            finally:
                cursor.close()
    except Exception as error:  # any failure of the count: the run's outcome stands regardless
        reason = (
            "the run's exact window could not be counted in Snowflake after the run succeeded "
            f"({first_line(error)}); the run is recorded, and its rows were sent"
        )
        ctx.log.warning(f"Parity not evaluated: {reason}")
        return None, 0, reason
    ctx.log.info(f"Count of the run's exact window: {report.counts[0].rows:,} rows")
    return report.counts[0], report.queries, None
