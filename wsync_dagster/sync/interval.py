"""Materialize partitions of an interval sync: pre-flight, reconcile, attach, report.

1. **pre-flight** the windows in Snowflake (two queries for any number of partitions): a limit
   violation fails here, before anything is sent to mParticle;
2. **reconcile** the connection, data model and pipeline (create / update / leave alone);
3. **attach** to mParticle's run for each partition's ``logical_date`` and wait, polling one paged run
   listing for all partitions;
4. **report** one materialization per partition, with the run's numbers, and the asset checks.

A partition whose run had already failed when the materialization began is **repaired**
(:mod:`wsync_dagster.sync.repair`); one whose run fails while it waits is reported with that run's own
reason (:mod:`wsync_dagster.sync.reasons`). A paused sync is not waited for: mParticle starts no run of
a paused pipeline.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import PipelineRun, RunState, WarehouseSyncClient, WarehouseSyncError
from wsync_dagster.sync import checks
from wsync_dagster.sync.partitions import windows_for
from wsync_dagster.sync.reasons import ReasonLog
from wsync_dagster.sync.repair import NEXT_STEP, Repairer, RepairError
from wsync_dagster.sync.report import (
    run_materialization,
    schema_metadata,
    step_observation,
    sync_metadata,
)
from wsync_dagster.sync.runs import list_window_runs, wait_for_windows
from wsync_dagster.sync.specs import SyncSpec
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


def _refuse_open_windows(ctx: SyncContext, windows: list[Window]) -> None:
    now = ctx.mparticle.now()
    if open_windows := [w for w in windows if w.end > now]:
        raise fail(
            f"{len(open_windows)} partition(s) have not closed yet (first: {open_windows[0].key}, "
            f"ends {open_windows[0].end:%Y-%m-%dT%H:%M:%SZ}); mParticle runs an interval only after "
            "it ends. Materialize them after they close."
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
    """Wait for the windows' runs; a paused sync gets one look, as no run of it will start.

    An error that outlasts the client's retries ends the wait with what to do: the runs are
    mParticle's, so they may still complete, and materializing again attaches to them.
    """
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
        raise fail(
            f"mParticle kept answering {status or 'with errors'} (retry budget "
            f"{ctx.mparticle.retry_budget_seconds:.0f} s) while waiting for partition(s) {keys} of "
            f"'{ctx.spec.name}': {error}. Their runs may still complete in mParticle: materialize "
            "again to attach to them; nothing will be triggered twice."
        ) from error


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
    before = client.stats
    reconciled = reconcile_sync(ctx, client)
    settings = ctx.wait_settings()
    started = settings.clock()
    seen = ReasonLog(client, ctx.spec.resolved_pipeline_id)
    runs, polls = _wait_or_look(ctx, client, windows, seen)
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
    for window in windows:
        run, extra, problem = _window_outcome(ctx, client, window, runs.get(window.key), seen)
        if run is not None:
            count = report.count_for(window.key)
            succeeded.append((count, run))
            yield run_materialization(
                context.asset_key,
                ctx.spec,
                window,
                run,
                count,
                {**schema, **extra},
                partition=window.key,
            )
        else:
            problems.append(problem or outcome_problem(window, runs.get(window.key), waited))

    if succeeded:
        yield from checks.check_results(context.asset_key, succeeded)
    if problems:
        raise fail(
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
