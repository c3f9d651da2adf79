"""Materialize partitions of an interval sync: pre-flight, reconcile, attach, report as they end.

1. **pre-flight** the windows in Snowflake (two queries for any number of partitions): a limit
   violation fails here, before anything is sent to mParticle;
2. **reconcile** the connection, data model and pipeline (create / update / leave alone);
3. **attach** to mParticle's run for each partition's ``logical_date`` and wait, polling one paged run
   listing for all partitions at a pace chosen from what is pending
   (:class:`wsync_dagster.sync.engine.runs.WindowWatch`), with a progress line after every listing;
4. **report** each partition as soon as a listing shows its run ended: its materialization and its
   own check evaluations, so a long backfill shows partitions turning green while it runs, and a
   run that times out, fails or is killed keeps every partition that had finished.

A partition whose run had already failed when the materialization began is **repaired**
(:mod:`wsync_dagster.sync.engine.repair`) once the wait is over; one whose run fails while it waits is
reported with that run's own reason (:mod:`wsync_dagster.sync.engine.reasons`). A paused sync is not waited
for: mParticle starts no run of a paused pipeline.

The pre-flight also recounts the ``recount_windows`` windows before the first partition, in the same
query, and ``late_rows`` is judged for them at once (:mod:`wsync_dagster.sync.assets.late_rows`). The
run tag ``wsync/resend=true`` re-sends the partitions instead of attaching to their runs, and
``wsync/check_late_rows=true`` only checks them (:mod:`wsync_dagster.sync.assets.resending`). A
partition whose run is on record already is only re-reported, and says so.
"""

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import dagster as dg

from wsync_dagster.mparticle import PipelineRun, RunState, WarehouseSyncClient, WarehouseSyncError
from wsync_dagster.sync.assets import checks, drift, naming, schema_check
from wsync_dagster.sync.assets.late_rows import (
    Mode,
    Recorded,
    late_rows_total,
    late_rows_verdict,
    latest_records,
    mode_of,
    recount_evaluations,
    windows_before,
)
from wsync_dagster.sync.assets.metadata import Preflight, Wsync
from wsync_dagster.sync.assets.partitions import windows_for
from wsync_dagster.sync.assets.report import (
    column_schema,
    run_materialization,
    schema_metadata,
    step_observation,
    sync_metadata,
)
from wsync_dagster.sync.assets.resending import ResendRun, check_only, resend_windows
from wsync_dagster.sync.assets.steps import SyncContext, fail, preflight, reconcile_sync
from wsync_dagster.sync.engine.preflight import PreflightReport
from wsync_dagster.sync.engine.reasons import ReasonLog
from wsync_dagster.sync.engine.repair import NEXT_STEP, Repairer, RepairError
from wsync_dagster.sync.engine.resend import RESEND_TAG_TEXT
from wsync_dagster.sync.engine.runs import WindowWatch
from wsync_dagster.sync.registry.cadences import CadenceName
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.windows import Window

Event: TypeAlias = dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.Output[None]
# What a sync asset yields: interval partitions report evaluations, unpartitioned syncs results.
SyncEvent: TypeAlias = Event | dg.AssetCheckResult


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


class PartitionReporter:
    """Reports one synced partition: its materialization, then its own check evaluations
    (of the checks selected for the run)."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        spec: SyncSpec,
        report: PreflightReport,
        windows: Sequence[Window],
    ) -> None:
        self.key = context.asset_key
        self.spec = spec
        self.report = report
        self.assets_def = context.assets_def
        self.selected = {k for k in context.selected_asset_check_keys if k.asset_key == self.key}
        self.outputs_due = set(self.selected)
        self.schema = schema_metadata(report)
        self.columns = column_schema(report)
        self.schema_watch = schema_check.SchemaWatch(context.instance, self.key, context.run.run_id)
        self.earlier = checks.earlier_rows(context.instance, self.key, windows[0].key)
        self.position = {w.key: i for i, w in enumerate(windows)}
        self.reported = 0
        self.log = context.log

    def history(self, window: Window) -> list[int]:
        """Rows of the windows before ``window``: recorded partitions, then this pre-flight's."""
        before = self.report.counts[: self.position[window.key]]
        return self.earlier + [c.rows for c in before]

    def report_window(
        self,
        window: Window,
        run: PipelineRun,
        extra: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> Iterator[Event]:
        count = self.report.count_for(window.key)
        metadata = {**self.schema, **(extra or {})}
        yield run_materialization(
            self.key,
            self.spec,
            window,
            run,
            count=count,
            extra=metadata,
            partition=window.key,
            note=note,
        )
        self.reported += 1
        # every selected check's step output, once, with the first partition (Dagster requires
        # one per check; a check added to check_specs but not judged here never fails the step)
        for check_key in sorted(self.outputs_due, key=lambda k: k.name):
            yield dg.Output(
                None, output_name=self.assets_def.get_output_name_for_asset_check_key(check_key)
            )
        self.outputs_due.clear()
        evaluations = checks.partition_evaluations(self.key, count, run, self.history(window))
        schema = self.schema_watch.judge(self.columns, window.key)
        late = late_rows_verdict(count, run.pipeline_run_id, run.records_extracted or 0)
        judged = [schema.evaluation(self.key, window.key), late.evaluation(self.key, window.key)]
        for evaluation in [*evaluations, *judged]:
            if evaluation.asset_check_key in self.selected:
                yield evaluation

    def judge_recounts(self, records: Mapping[str, Recorded]) -> Iterator[Event]:
        """``late_rows`` of the windows recounted before the run's own (those with a run on
        record), judged as soon as the pre-flight has counted them."""
        if not any(k.name == naming.CHECK_LATE_ROWS for k in self.selected):
            return
        evaluations = list(recount_evaluations(self.key, self.report.recounts, records))
        late_windows, late = late_rows_total(evaluations)
        if late_windows:
            self.log.warning(
                f"Late rows: {late:,} row(s) in {late_windows} earlier window(s) arrived after "
                f"their run; re-send those partitions with {RESEND_TAG_TEXT} (see the late_rows "
                "check of each)"
            )
        yield from evaluations


def _looks(
    ctx: SyncContext, watch: WindowWatch, windows: Sequence[Window]
) -> Iterator[list[Window]]:
    """The watch's listings; an error that outlasts the client's retries ends the wait with what
    to do: the runs are mParticle's, so they may still complete, and materializing again attaches
    to them."""
    try:
        yield from watch
    except WarehouseSyncError as error:
        status = getattr(error, "status", None)
        keys = windows[0].key if len(windows) == 1 else f"{windows[0].key}..{windows[-1].key}"
        raise fail(
            f"mParticle kept answering {status or 'with errors'} (retry budget "
            f"{ctx.mparticle.retry_budget_seconds:.0f} s) while waiting for partition(s) {keys} of "
            f"'{ctx.spec.name}': {error}. Their runs may still complete in mParticle: materialize "
            "again to attach to them; nothing will be triggered twice."
        ) from error


def materialize_windows(context: dg.AssetExecutionContext, ctx: SyncContext) -> Iterator[Event]:
    """Sync the run's partitions, reporting each one as soon as its mParticle run ends."""
    partitions = context.assets_def.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    windows = windows_for(partitions, context.partition_keys)
    mode = mode_of(context.run.tags)
    if mode is Mode.CHECK:
        yield from check_only(context, ctx, windows)
        return
    recount = windows_before(partitions, windows[0], ctx.spec.late_row_windows)
    kind: CadenceName | None = "once" if mode is Mode.RESEND else None
    label = "Pre-flight of the re-send" if mode is Mode.RESEND else "Pre-flight"
    report = preflight(ctx, windows, kind, label, recount=recount)
    _refuse_open_windows(ctx, windows)
    records = latest_records(
        context.instance, context.asset_key, [w.key for w in (*recount, *windows)]
    )
    reporter = PartitionReporter(context, ctx.spec, report, windows)
    yield from reporter.judge_recounts(records)
    if mode is Mode.RESEND:
        yield from resend_windows(context, ctx, ResendRun(windows, report, records, reporter))
        return

    client = ctx.mparticle.get_client()
    before = client.stats
    reconciled = reconcile_sync(ctx, client)
    yield from drift.evaluation_after_reconcile(context, reconciled)
    settings = ctx.wait_settings()
    if ctx.spec.paused:  # one look: mParticle starts no run of a paused pipeline
        settings = dataclasses.replace(settings, timeout=0)
    seen = ReasonLog(client, ctx.spec.resolved_pipeline_id)
    watch = WindowWatch(
        client, ctx.spec.resolved_pipeline_id, windows, settings, observe=seen.observe,
        log=ctx.log.info,
    )  # fmt: skip
    wait = _Wait(ctx, client, reporter, watch, seen, records)

    def log_counters() -> None:
        counters = {
            **sync_metadata(reconciled, before, client.stats),
            Wsync.PARTITIONS_IN_RUN: len(windows),
            Wsync.RUN_POLLS: watch.polls,
            Preflight.QUERIES: report.queries,
        }
        context.log_event(step_observation(context.asset_key, counters))

    try:
        for newly in _looks(ctx, watch, windows):
            for window in newly:
                run = watch.found[window.key]
                if run.state is RunState.SUCCESS:
                    yield from _report_synced(wait, window, run)
                elif run.pipeline_run_id not in seen.preexisting or ctx.spec.paused:
                    wait.problems[window.key] = _failed_problem(ctx.spec, window, run, seen)
    except Exception:
        log_counters()
        raise
    log_counters()
    yield from _finish(wait, waited=settings.clock() - watch.progress.started)


@dataclasses.dataclass
class _Wait:
    """One materialization's wait for its windows' runs, and the problems it found."""

    ctx: SyncContext
    client: WarehouseSyncClient
    reporter: PartitionReporter
    watch: WindowWatch
    seen: ReasonLog
    records: Mapping[str, Recorded]
    problems: dict[str, str] = dataclasses.field(default_factory=dict)


RE_REPORTED_NOTE = (
    "re-reported: the run was on record already, and nothing was sent again. To send the "
    f"window's current rows, re-send it with {RESEND_TAG_TEXT}"
)


def _report_synced(wait: _Wait, window: Window, run: PipelineRun) -> Iterator[Event]:
    """Report ``window``'s successful run; say so when it was on record already (nothing was
    sent again), and re-report a later re-send of the window instead of the run it replaced."""
    record = wait.records.get(window.key)
    if record is not None and record.is_newer_resend(run.pipeline_run_id):
        yield from _re_report_resend(wait, window, record)
        return
    if record is None or record.run_id != run.pipeline_run_id:
        yield from wait.reporter.report_window(window, run)
        return
    wait.ctx.log.info(f"{window.key}: run {run.pipeline_run_id} {RE_REPORTED_NOTE}")
    yield from wait.reporter.report_window(window, run, {Wsync.RE_REPORTED: True}, RE_REPORTED_NOTE)


def _re_report_resend(wait: _Wait, window: Window, record: Recorded) -> Iterator[Event]:
    """The window was re-sent after mParticle's run of it: that re-send is the window's load on
    record (its pipeline was deleted after the load, so Dagster's record is what remains)."""
    assert record.run_id is not None
    run = PipelineRun.model_validate(
        {
            "pipeline_run_id": record.run_id,
            "id": record.resend_pipeline_id or wait.ctx.spec.resolved_pipeline_id,
            "pipeline_run_state": RunState.SUCCESS.value,
            "logical_date": window.start,
            "data_interval_start": window.start,
            "data_interval_end": window.end,
            "records_extracted": record.records_extracted,
            "records_mapped": record.records_mapped,
            "event_batches_generated": record.event_batches,
        }
    )
    extra: dict[str, Any] = {
        Wsync.RE_REPORTED: True,
        Wsync.RESEND_OF_RUN_ID: record.resend_of_run_id,
    }
    if record.resend_pipeline_id is not None:
        extra[Wsync.RESEND_PIPELINE_ID] = record.resend_pipeline_id
    note = (
        f"re-reported re-send run {record.run_id} from Dagster's record (its one-off pipeline was "
        f"deleted after the load), and nothing was sent again. To send the window's current "
        f"rows, re-send it with {RESEND_TAG_TEXT}"
    )
    wait.ctx.log.info(f"{window.key}: {note}")
    yield from wait.reporter.report_window(window, run, extra, note)


def _finish(wait: _Wait, waited: float) -> Iterator[Event]:
    """After the wait: repair the windows whose run had failed before it, and fail the step
    naming every partition that did not sync (the ones reported stay materialized)."""
    ctx, client, reporter, watch, problems = (
        wait.ctx, wait.client, wait.reporter, wait.watch, wait.problems
    )  # fmt: skip
    windows = watch.progress.windows
    for window in windows:
        run = watch.found.get(window.key)
        if window.key in problems or (run is not None and run.state is RunState.SUCCESS):
            continue
        record = wait.records.get(window.key)
        if run is not None and record is not None and record.is_newer_resend(run.pipeline_run_id):
            yield from _re_report_resend(wait, window, record)  # re-sent after its run failed
            continue
        if run is not None and run.state is RunState.FAILED:  # failed before this materialization
            repaired, extra, problem = _repair(ctx, client, window, run)
            if repaired is not None:
                note = RE_REPORTED_NOTE if extra.get(Wsync.RE_REPORTED) else None
                yield from reporter.report_window(window, repaired, extra, note)
                continue
            problems[window.key] = problem or ""
        elif ctx.spec.paused:
            problems[window.key] = _paused_problem(ctx.spec, window)
        else:
            problems[window.key] = outcome_problem(window, run, waited)
    if problems:
        ordered = [problems[w.key] for w in windows if w.key in problems]
        raise fail(
            f"{len(problems)} of {len(windows)} partition(s) of '{ctx.spec.name}' did not sync "
            f"({reporter.reported} did):\n" + "\n".join(f"  - {p}" for p in ordered),
            failed_partitions=len(problems),
        )


def _failed_problem(spec: SyncSpec, window: Window, run: PipelineRun, seen: ReasonLog) -> str:
    then = "set paused: false in the registry, then " if spec.paused else ""
    return (
        f"{window.key}: mParticle run {run.pipeline_run_id} failed: {seen.reason(run)}; "
        f"{then}{NEXT_STEP}"
    )


Outcome = tuple[PipelineRun | None, dict[str, Any], str | None]


def _repair(
    ctx: SyncContext, client: WarehouseSyncClient, window: Window, failed: PipelineRun
) -> Outcome:
    """Repair a window whose run had failed before this materialization (sync/engine/repair.py)."""
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
        Wsync.REPAIR_PIPELINE_ID: repair.pipeline_id,
        Wsync.REPAIR_OF_RUN_ID: failed.pipeline_run_id,
    }
    run = repair.run
    if run is not None and run.state is RunState.SUCCESS:
        if repair.reused:
            extra[Wsync.RE_REPORTED] = True
            ctx.log.info(
                f"{window.key} was repaired earlier, by run {run.pipeline_run_id}: {RE_REPORTED_NOTE}"
            )
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
