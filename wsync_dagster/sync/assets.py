"""One Dagster asset per synced table (DESIGN §2).

Interval syncs are partitioned on their pipeline's own grid; materializing partitions means:

1. **pre-flight** the windows in Snowflake (two queries for any number of partitions) — a limit
   violation fails here, before anything is sent to mParticle;
2. **reconcile** the connection, data model and pipeline (create / update / leave alone);
3. **attach** to mParticle's run for each partition's ``logical_date`` and wait, polling one paged run
   listing for all partitions;
4. **report** one materialization per partition, with the run's numbers, and the asset checks.

``on_demand`` syncs trigger a run (or attach to the one in flight); ``once`` syncs attach to their
single run. Both are unpartitioned.
"""

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource

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
from wsync_dagster.resources import MParticleResource
from wsync_dagster.sync import checks, naming
from wsync_dagster.sync.partitions import partitions_for, windows_for
from wsync_dagster.sync.preflight import (
    PreflightError,
    PreflightReport,
    Window,
    WindowCount,
    run_preflight,
)
from wsync_dagster.sync.reasons import ReasonLog
from wsync_dagster.sync.reconcile import Reconciled, ReconcileError, reconcile
from wsync_dagster.sync.repair import NEXT_STEP, Repairer, RepairError
from wsync_dagster.sync.runs import (
    WaitSettings,
    list_window_runs,
    poll,
    wait_for_windows,
)
from wsync_dagster.sync.specs import Registry, SyncSpec


@dataclass(frozen=True)
class SyncContext:
    """What one materialization works with."""

    registry: Registry
    spec: SyncSpec
    snowflake: SnowflakeResource
    mparticle: MParticleResource
    log: Any

    def wait_settings(self) -> WaitSettings:
        m = self.mparticle
        return WaitSettings(
            timeout=m.run_timeout_seconds,
            poll_interval=m.poll_interval_seconds,
            max_poll_interval=m.max_poll_interval_seconds,
            sleep=m.sleep,
            clock=m.monotonic,
        )


def _fail(message: str, **metadata: Any) -> dg.Failure:
    return dg.Failure(description=message, metadata=metadata, allow_retries=False)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


@contextlib.contextmanager
def _snowflake_cursor(ctx: SyncContext) -> Iterator[Any]:
    """A cursor on Dagster's Snowflake connection; failing to connect is a clear Failure."""
    stack = contextlib.ExitStack()
    try:
        connection = stack.enter_context(ctx.snowflake.get_connection())
    except Exception as error:
        raise _fail(
            f"Could not connect to Snowflake for the pre-flight of sync '{ctx.spec.name}' "
            f"({_first_line(error)}). Check the Snowflake settings "
            "(SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PASSWORD) and that the account is "
            "reachable. Nothing was sent to mParticle."
        ) from error
    with stack:
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


def _preflight(
    ctx: SyncContext, windows: Sequence[Window], kind: Any = None, label: str = "Pre-flight"
) -> PreflightReport:
    with _snowflake_cursor(ctx) as cursor:
        try:
            report = run_preflight(cursor, ctx.spec, windows, limit_kind=kind)
        except PreflightError as error:
            raise _fail(str(error)) from error
    total = sum(c.rows for c in report.counts)
    ctx.log.info(
        f"{label} of {len(windows)} window(s): {total:,} rows, limit {report.limit:,} per "
        f"window, {len(report.columns)} columns, identities {', '.join(report.identity_columns)} "
        f"({report.queries} queries, {report.seconds:.2f} s)"
    )
    return report


def _reconcile(ctx: SyncContext, client: WarehouseSyncClient) -> Reconciled:
    try:
        result = reconcile(client, ctx.registry, ctx.spec, ctx.mparticle.now())
    except ReconcileError as error:
        raise _fail(str(error)) from error
    except WarehouseSyncError as error:
        raise _fail(
            f"Setting up sync '{ctx.spec.name}' in mParticle failed: {str(error).rstrip('.')}. "
            "Fix what the error names (the registry entry, the connection settings, the mParticle "
            "credentials or their reachability), then materialize again."
        ) from error
    for change in result.changes:
        ctx.log.info(f"Reconcile: {change.describe()}")
    return result


def _run_metadata(
    ctx: SyncContext,
    window: Window,
    run: PipelineRun,
    count: WindowCount | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    seconds = (
        (run.end_date - run.start_date).total_seconds() if run.start_date and run.end_date else None
    )
    metadata: dict[str, Any] = {
        "mparticle/pipeline_id": ctx.spec.resolved_pipeline_id,
        "mparticle/run_id": run.pipeline_run_id,
        "mparticle/run_state": run.pipeline_run_state,
        "mparticle/run_type": run.pipeline_run_type or "",
        "mparticle/logical_date": dg.MetadataValue.timestamp(run.logical_date or window.start),
        "window_start": dg.MetadataValue.timestamp(run.data_interval_start or window.start),
        "window_end": dg.MetadataValue.timestamp(run.data_interval_end or window.end),
        "mparticle/records_extracted": run.records_extracted or 0,
        "mparticle/records_mapped": run.records_mapped or 0,
        "mparticle/event_batches_generated": run.event_batches_generated or 0,
        "dagster/row_count": run.records_mapped or 0,
    }
    if seconds is not None:
        metadata["mparticle/run_seconds"] = round(seconds, 3)
    if count is not None:
        metadata["preflight/rows"] = count.rows
        metadata["preflight/rows_without_identity"] = count.rows_without_identity
    metadata.update(extra)
    return metadata


def _outcome_problem(window: Window, run: PipelineRun | None, waited: float) -> str:
    if run is None:
        return (
            f"{window.key}: mParticle has not started the run for logical date "
            f"{window.start:%Y-%m-%dT%H:%M:%SZ} after {waited:.0f} s (catch-up runs go oldest "
            "first, one at a time); materialize again later to attach to it"
        )
    if run.state is None:
        return (
            f"{window.key}: run {run.pipeline_run_id} is in unknown state "
            f"'{run.pipeline_run_state}', which is never taken for success; check it in mParticle"
        )
    return (
        f"{window.key}: run {run.pipeline_run_id} is still '{run.pipeline_run_state}' after "
        f"{waited:.0f} s; materialize again to attach to it (raise run_timeout_seconds to wait longer)"
    )


def _paused_problem(spec: SyncSpec, window: Window) -> str:
    return (
        f"{window.key}: sync '{spec.name}' is paused (paused: true in the registry), and mParticle "
        "starts no runs of a paused pipeline. Set paused: false in the registry and materialize "
        "again to resume"
    )


def _wait_or_look(
    ctx: SyncContext, client: WarehouseSyncClient, windows: Sequence[Window], seen: ReasonLog
) -> tuple[Mapping[str, PipelineRun], int]:
    """Wait for the windows' runs; a paused sync gets one look, as nothing will start."""
    pipeline_id = ctx.spec.resolved_pipeline_id
    try:
        if ctx.spec.paused:
            runs = list_window_runs(client, pipeline_id, windows)
            seen.observe(runs)
            return runs, 1
        return wait_for_windows(client, pipeline_id, windows, ctx.wait_settings(), seen.observe)
    except WarehouseSyncError as error:
        status = getattr(error, "status", None)
        keys = windows[0].key if len(windows) == 1 else f"{windows[0].key}..{windows[-1].key}"
        raise _fail(
            f"mParticle kept answering {status or 'with errors'} (retry budget "
            f"{ctx.mparticle.retry_budget_seconds:.0f} s) while waiting for partition(s) {keys} of "
            f"'{ctx.spec.name}': {error}. Their runs may still complete in mParticle: materialize "
            "again to attach to them; nothing will be triggered twice."
        ) from error


def _materialize_windows(
    context: dg.AssetExecutionContext, ctx: SyncContext
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    partitions = context.assets_def.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    windows = windows_for(partitions, context.partition_keys)
    report = _preflight(ctx, windows)

    now = ctx.mparticle.now()
    if open_windows := [w for w in windows if w.end > now]:
        raise _fail(
            f"{len(open_windows)} partition(s) have not closed yet (first: {open_windows[0].key}, "
            f"ends {open_windows[0].end:%Y-%m-%dT%H:%M:%SZ}); mParticle runs an interval only after "
            "it ends. Materialize them after they close."
        )

    client = ctx.mparticle.get_client()
    before = client.stats
    reconciled = _reconcile(ctx, client)
    settings = ctx.wait_settings()
    started = settings.clock()
    seen = ReasonLog(client, ctx.spec.resolved_pipeline_id)
    runs, polls = _wait_or_look(ctx, client, windows, seen)
    waited = settings.clock() - started
    after = client.stats
    run_level = {
        "wsync/reconcile": ", ".join(c.describe() for c in reconciled.changes),
        "wsync/partitions_in_run": len(windows),
        "wsync/run_polls": polls,
        "wsync/api_requests": after.requests - before.requests,
        "wsync/token_requests": after.token_requests - before.token_requests,
        "preflight/queries": report.queries,
    }

    succeeded: list[tuple[WindowCount, PipelineRun]] = []
    problems: list[str] = []
    for window in windows:
        run, extra, problem = _window_outcome(ctx, client, window, runs.get(window.key), seen)
        if run is not None:
            count = report.count_for(window.key)
            succeeded.append((count, run))
            yield dg.AssetMaterialization(
                asset_key=context.asset_key,
                partition=window.key,
                description=f"mParticle run {run.pipeline_run_id} ({window.describe()})",
                metadata=_run_metadata(ctx, window, run, count, {**run_level, **extra}),
            )
        else:
            problems.append(problem or _outcome_problem(window, runs.get(window.key), waited))

    if succeeded:
        yield from checks.check_results(context.asset_key, succeeded)
    if problems:
        raise _fail(
            f"{len(problems)} of {len(windows)} partition(s) of '{ctx.spec.name}' did not sync "
            f"({len(succeeded)} did):\n" + "\n".join(f"  - {p}" for p in problems),
            failed_partitions=len(problems),
        )


Outcome = tuple[PipelineRun | None, dict[str, Any], str | None]


def _window_outcome(
    ctx: SyncContext,
    client: WarehouseSyncClient,
    window: Window,
    run: PipelineRun | None,
    seen: ReasonLog,
) -> Outcome:
    """(successful run to report, its extra metadata, problem) for one window.

    A run that had already failed when this materialization began is repaired (unless the sync is
    paused); one that failed while it waited is reported with its own reason.
    """
    if run is not None and run.state is RunState.SUCCESS:
        return run, {}, None
    if run is not None and run.state is RunState.FAILED:
        if run.pipeline_run_id in seen.preexisting and not ctx.spec.paused:
            return _repair(ctx, client, window, run)
        then = "set paused: false in the registry, then " if ctx.spec.paused else ""
        return (
            None,
            {},
            (
                f"{window.key}: mParticle run {run.pipeline_run_id} failed: {seen.reason(run)}; "
                f"{then}{NEXT_STEP}"
            ),
        )
    if ctx.spec.paused:
        return None, {}, _paused_problem(ctx.spec, window)
    return None, {}, None


def _repair(
    ctx: SyncContext, client: WarehouseSyncClient, window: Window, failed: PipelineRun
) -> Outcome:
    """Repair a window whose run had failed before this materialization (sync/repair.py)."""
    repairer = Repairer(client, ctx.registry, ctx.spec, ctx.wait_settings(), ctx.log.info)
    try:
        repair = repairer.repair(window.start, window.end, failed)
    except (RepairError, WarehouseSyncError) as error:
        return (
            None,
            {},
            (
                f"{window.key}: mParticle run {failed.pipeline_run_id} failed, and the window could "
                f"not be repaired: {error}"
            ),
        )
    extra: dict[str, Any] = {
        "wsync/repair_pipeline_id": repair.pipeline_id,
        "wsync/repair_of_run_id": failed.pipeline_run_id,
    }
    run = repair.run
    if run is not None and run.state is RunState.SUCCESS:
        if repair.reused:
            ctx.log.info(f"{window.key} was repaired earlier, by run {run.pipeline_run_id}")
        return run, extra, None
    if run is not None and run.state is RunState.FAILED:
        return (
            None,
            extra,
            (
                f"{window.key}: repair run {run.pipeline_run_id} ({repair.pipeline_id}) of failed run "
                f"{failed.pipeline_run_id} failed: {repair.reason}; {NEXT_STEP}"
            ),
        )
    state = "not started" if run is None else f"still '{run.pipeline_run_state}'"
    return (
        None,
        extra,
        (
            f"{window.key}: repair pipeline {repair.pipeline_id} is {state} after "
            f"{ctx.mparticle.run_timeout_seconds:.0f} s; materialize again to attach to it"
        ),
    )


def _last_successful_end(client: WarehouseSyncClient, pipeline_id: str) -> datetime | None:
    try:
        for run in client.iter_pipeline_runs(pipeline_id, page_size=100):
            if run.state is RunState.SUCCESS and run.data_interval_end is not None:
                return run.data_interval_end
    except NotFoundError:
        return None
    return None


def _wait_for_run(ctx: SyncContext, client: WarehouseSyncClient, run_id: int) -> PipelineRun:
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
        raise _fail(f"mParticle run {run_id} of '{ctx.spec.name}' failed: {error}") from error
    except (UnknownRunStateError, WaitTimeoutError) as error:
        raise _fail(
            f"{error} Materialize again to attach to the same run; nothing was triggered twice."
        ) from error
    except WarehouseSyncError as error:
        raise _fail(
            f"mParticle kept failing (retry budget {m.retry_budget_seconds:.0f} s) while waiting "
            f"for run {run_id} of '{ctx.spec.name}': {error}. The run may still complete in "
            "mParticle: materialize again to attach to it if it is still in progress; if it has "
            "ended, the next window starts where it ended, so no row is sent twice."
        ) from error


def _materialize_single(
    context: dg.AssetExecutionContext, ctx: SyncContext
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    """``on_demand`` (trigger or attach) and ``once`` (attach to its one run)."""
    spec = ctx.spec
    client = ctx.mparticle.get_client()
    before = client.stats
    pipeline_id = spec.resolved_pipeline_id
    now = ctx.mparticle.now()
    if spec.schedule.interval == "once":
        assert spec.schedule.end is not None
        window = Window("once", spec.schedule.start, spec.schedule.end)
    else:
        start = _last_successful_end(client, pipeline_id) or spec.schedule.start
        window = Window("on_demand", start, now)
    report = _preflight(ctx, [window], spec.schedule.interval)
    reconciled = _reconcile(ctx, client)

    if spec.schedule.interval == "once":
        runs = list(client.iter_pipeline_runs(pipeline_id, page_size=10))
        if not runs and spec.paused:
            raise _fail(_paused_single(spec, "mParticle starts no run of a paused pipeline"))
        if not runs:
            waited = _wait_for_first_run(ctx, client)
            runs = [waited]
        run_id, attached = runs[0].pipeline_run_id, True
    elif spec.paused:
        raise _fail(
            _paused_single(
                spec, "mParticle refuses to trigger a paused pipeline, so no run was requested"
            )
        )
    else:
        try:
            triggered = client.trigger_pipeline(pipeline_id)
        except WarehouseSyncError as error:
            raise _fail(f"Triggering '{spec.name}' in mParticle failed: {error}") from error
        run_id, attached = triggered.pipeline_run_id, triggered.attached
        if attached:
            context.log.info(f"A run was already in progress; attached to run {run_id}")
    run = _wait_for_run(ctx, client, run_id)

    # The trigger's window ends when mParticle received it: count exactly that window for the check.
    actual = Window(
        window.key, run.data_interval_start or window.start, run.data_interval_end or now
    )
    count, recount_queries, not_counted = _recount(ctx, actual)
    after = client.stats
    metadata = _run_metadata(
        ctx,
        actual,
        run,
        count,
        {
            "wsync/reconcile": ", ".join(c.describe() for c in reconciled.changes),
            "wsync/attached_to_existing_run": attached,
            "wsync/api_requests": after.requests - before.requests,
            "wsync/token_requests": after.token_requests - before.token_requests,
            "preflight/queries": report.queries + recount_queries,
        },
    )
    yield dg.AssetMaterialization(
        asset_key=context.asset_key,
        description=f"mParticle run {run.pipeline_run_id} ({actual.describe()})",
        metadata=metadata,
    )
    if count is None:
        yield from checks.results_without_count(context.asset_key, run, not_counted or "")
    else:
        yield from checks.check_results(context.asset_key, [(count, run)])


def _paused_single(spec: SyncSpec, why: str) -> str:
    return (
        f"Sync '{spec.name}' is paused (paused: true in the registry): {why}. Set paused: false "
        "in the registry and materialize again to resume."
    )


def _recount(ctx: SyncContext, window: Window) -> tuple[WindowCount | None, int, str | None]:
    """Count the run's exact window after it ran: (count, queries, why it could not be counted).

    The run has already sent its rows, so a failure here must not fail the step nor say that
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
    except Exception as error:
        reason = (
            "the run's exact window could not be counted in Snowflake after the run succeeded "
            f"({_first_line(error)}); "
            "the run is recorded, and its rows were sent"
        )
        ctx.log.warning(f"Parity not evaluated: {reason}")
        return None, 0, reason
    ctx.log.info(f"Count of the run's exact window: {report.counts[0].rows:,} rows")
    return report.counts[0], report.queries, None


def _wait_for_first_run(ctx: SyncContext, client: WarehouseSyncClient) -> PipelineRun:
    """A new ``once`` pipeline's run appears shortly after creation; poll (bounded) until it does."""
    settings = ctx.wait_settings()
    runs, _ = poll(
        lambda: list(client.iter_pipeline_runs(ctx.spec.resolved_pipeline_id, page_size=10)),
        bool,
        settings,
    )
    if not runs:
        raise _fail(
            f"mParticle created no run for once-sync '{ctx.spec.name}' within "
            f"{settings.timeout:.0f} s; check the pipeline in mParticle"
        )
    return runs[0]


def build_sync_asset(registry: Registry, spec: SyncSpec) -> dg.AssetsDefinition:
    """The asset for one synced table, named, grouped and partitioned from its spec."""
    key = naming.asset_key(spec)
    partitioned = spec.schedule.is_interval
    partitions = partitions_for(spec.schedule) if partitioned else None

    @dg.asset(
        key=key,
        description=spec.description.strip(),
        group_name=naming.group_name(registry, spec),
        owners=list(spec.owners),
        tags=naming.asset_tags(spec),
        kinds=naming.KINDS,
        pool=naming.pool_name(spec),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        check_specs=checks.check_specs(key),
        output_required=False,
        deps=[dg.AssetKey.from_user_string(d) for d in spec.deps],
        automation_condition=dg.AutomationCondition.eager() if spec.deps else None,
        metadata={
            "wsync/pipeline_id": spec.resolved_pipeline_id,
            "wsync/data_model_id": spec.resolved_data_model_id,
            "wsync/schedule": spec.schedule.interval,
            "wsync/schedule_start": dg.MetadataValue.timestamp(spec.schedule.start),
            "wsync/load_timestamp": f"{spec.load_timestamp.column} ({spec.load_timestamp.type})",
            "wsync/sql": dg.MetadataValue.md(f"```sql\n{spec.sql.strip()}\n```"),
        },
    )
    def _sync(
        context: dg.AssetExecutionContext,
        snowflake: SnowflakeResource,
        mparticle: MParticleResource,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        ctx = SyncContext(registry, spec, snowflake, mparticle, context.log)
        if partitioned:
            yield from _materialize_windows(context, ctx)
        else:
            yield from _materialize_single(context, ctx)

    return _sync


def build_sync_assets(registry: Registry) -> list[dg.AssetsDefinition]:
    return [build_sync_asset(registry, spec) for spec in registry.syncs]
