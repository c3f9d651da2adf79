"""Materialize partitions of an interval sync: pre-flight, reconcile, attach, report.

1. **pre-flight** the windows in Snowflake (two queries for any number of partitions): a limit
   violation fails here, before anything is sent to mParticle;
2. **reconcile** the connection, data model and pipeline (create / update / leave alone);
3. **attach** to mParticle's run for each partition's ``logical_date`` and wait, polling one paged run
   listing for all partitions;
4. **report** one materialization per partition, with the run's numbers, and the asset checks.
"""

from collections.abc import Iterator

import dagster as dg

from wsync_dagster.mparticle import PipelineRun, RunState, WarehouseSyncClient, WarehouseSyncError
from wsync_dagster.sync import checks
from wsync_dagster.sync.partitions import windows_for
from wsync_dagster.sync.report import (
    run_materialization,
    schema_metadata,
    step_observation,
    sync_metadata,
)
from wsync_dagster.sync.runs import is_terminal, wait_for_windows
from wsync_dagster.sync.steps import SyncContext, fail, preflight, reconcile_sync
from wsync_dagster.sync.windows import Window, WindowCount


def outcome_problem(window: Window, run: PipelineRun | None, waited: float) -> str:
    """Why ``window`` has no successful run after waiting ``waited`` seconds."""
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


def faulted_reason(client: WarehouseSyncClient, pipeline_id: str) -> str:
    try:
        return client.get_pipeline(pipeline_id).faulted_reason or "no reason given by mParticle"
    except WarehouseSyncError as error:
        return f"(could not read the pipeline's faulted_reason: {error})"


def _refuse_open_windows(ctx: SyncContext, windows: list[Window]) -> None:
    now = ctx.mparticle.now()
    if open_windows := [w for w in windows if w.end > now]:
        raise fail(
            f"{len(open_windows)} partition(s) have not closed yet (first: {open_windows[0].key}, "
            f"ends {open_windows[0].end:%Y-%m-%dT%H:%M:%SZ}); mParticle runs an interval only after "
            "it ends. Materialize them after they close."
        )


def materialize_windows(
    context: dg.AssetExecutionContext, ctx: SyncContext
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    """Sync the run's partitions; one materialization per partition whose run succeeded."""
    partitions = context.assets_def.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    windows = windows_for(partitions, context.partition_keys)
    report = preflight(ctx, windows)
    _refuse_open_windows(ctx, windows)

    client = ctx.mparticle.get_client()
    pipeline_id = ctx.spec.resolved_pipeline_id
    before = client.stats
    reconciled = reconcile_sync(ctx, client)
    settings = ctx.wait_settings()
    started = settings.clock()
    runs, polls = wait_for_windows(client, pipeline_id, windows, settings)
    waited = settings.clock() - started
    run_level = {
        **sync_metadata(reconciled, before, client.stats),
        "wsync/partitions_in_run": len(windows),
        "wsync/run_polls": polls,
        "preflight/queries": report.queries,
    }
    context.log_event(step_observation(context.asset_key, run_level))
    schema = schema_metadata(report)

    succeeded: list[tuple[WindowCount, PipelineRun]] = []
    problems: list[str] = []
    failed_runs: list[tuple[Window, PipelineRun]] = []
    for window in windows:
        run = runs.get(window.key)
        count = report.count_for(window.key)
        if run is not None and run.state is RunState.SUCCESS:
            succeeded.append((count, run))
            yield run_materialization(
                context.asset_key, ctx.spec, window, run, count, schema, partition=window.key
            )
        elif run is not None and run.state is RunState.FAILED:
            failed_runs.append((window, run))
        elif not is_terminal(run):
            problems.append(outcome_problem(window, run, waited))

    if failed_runs:
        reason = faulted_reason(client, pipeline_id)
        problems[:0] = [
            f"{w.key}: mParticle run {r.pipeline_run_id} failed: {reason}" for w, r in failed_runs
        ]
    if succeeded:
        yield from checks.check_results(context.asset_key, succeeded)
    if problems:
        raise fail(
            f"{len(problems)} of {len(windows)} partition(s) of '{ctx.spec.name}' did not sync "
            f"({len(succeeded)} did):\n" + "\n".join(f"  - {p}" for p in problems),
            failed_partitions=len(problems),
        )
