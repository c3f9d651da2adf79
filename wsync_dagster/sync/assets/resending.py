"""Materializations of an interval sync chosen by a run tag: re-send windows, or only check them.

* ``wsync/resend=true``: send the run's windows again, even those that synced
  (:mod:`wsync_dagster.sync.engine.resend`: one ``once`` pipeline per window, each taking an active
  slot while it runs). The pre-flight already held every window to the ``once`` record limit and
  refused the run before anything was sent if one is over it. Each window is reported as its
  re-send ends: the partition's materialization with the re-send's run id and counts,
  ``wsync/resend_pipeline_id`` and ``wsync/resend_of_run_id`` (the run it replaces as the record),
  and the checks, ``late_rows`` among them, judged against the new run.
* ``wsync/check_late_rows=true``: count the run's windows in Snowflake (one grouped query) and judge
  ``late_rows`` for each against its latest materialization; nothing reaches mParticle and nothing is
  materialized. Launched over a range from the UI's launch or backfill dialog, it checks a whole
  range on request.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import dagster as dg

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.late_rows import (
    Recorded,
    late_rows_total,
    latest_records,
    recount_evaluations,
)
from wsync_dagster.sync.assets.metadata import Preflight, RunTags, Wsync
from wsync_dagster.sync.assets.report import step_observation, sync_metadata
from wsync_dagster.sync.assets.steps import SyncContext, fail, reconcile_sync, snowflake_cursor
from wsync_dagster.sync.engine.preflight import (
    PreflightError,
    PreflightReport,
    count_windows,
    discover_columns,
)
from wsync_dagster.sync.engine.resend import RESEND_TAG_TEXT, Resender
from wsync_dagster.sync.engine.runs import is_terminal, list_window_runs
from wsync_dagster.sync.registry.windows import Window

Event: TypeAlias = dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.Output[None]


class Reporter(Protocol):
    """Reports one synced partition (``sync/assets/interval.py: PartitionReporter``)."""

    def report_window(
        self,
        window: Window,
        run: PipelineRun,
        extra: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> Iterator[Event]: ...

    @property
    def reported(self) -> int: ...


@dataclass(frozen=True)
class ResendRun:
    """What a re-send materialization starts from: its windows, their pre-flight (held to the
    ``once`` limit), the partitions' records in Dagster, and the reporter of each partition."""

    windows: Sequence[Window]
    report: PreflightReport
    records: Mapping[str, Recorded]
    reporter: Reporter


def _replaced(record: Recorded | None, run: PipelineRun | None) -> int | None:
    """The run a re-send replaces as the partition's record: the latest one Dagster recorded,
    else mParticle's run of the window."""
    if record is not None and record.run_id is not None:
        return record.run_id
    return run.pipeline_run_id if run is not None else None


def resend_windows(
    context: dg.AssetExecutionContext, ctx: SyncContext, job: ResendRun
) -> Iterator[Event]:
    """Re-send ``job``'s windows and report each as its re-send ends (see the module doc)."""
    windows, records, reporter = job.windows, job.records, job.reporter
    client = ctx.mparticle.get_client()
    before = client.stats
    reconciled = reconcile_sync(ctx, client)
    pipeline_id = ctx.spec.resolved_pipeline_id
    current = list_window_runs(client, pipeline_id, windows)
    unrun = [w.key for w in windows if not is_terminal(current.get(w.key)) and w.key not in records]
    if unrun:
        raise fail(
            f"{len(unrun)} partition(s) of '{ctx.spec.name}' have no run that has ended in "
            f"mParticle (first: {unrun[0]}), so there is nothing to re-send yet: materialize them "
            f"without {RESEND_TAG_TEXT} to attach to their runs, then re-send if rows arrive late. "
            "Nothing was sent to mParticle."
        )
    resender = Resender(
        client, ctx.registry, ctx.spec, ctx.wait_settings(), ctx.log, context.run.run_id[:8]
    )
    ctx.log.info(
        f"Re-sending {len(windows)} window(s) of '{ctx.spec.name}', one once pipeline each, taking "
        "turns on the free active-pipeline slots"
    )
    problems: dict[str, str] = {}

    def log_counters() -> None:
        counters = {
            **sync_metadata(reconciled, before, client.stats),
            Wsync.PARTITIONS_IN_RUN: len(windows),
            Preflight.QUERIES: job.report.queries,
        }
        context.log_event(step_observation(context.asset_key, counters))

    try:
        for outcome in resender.resend(windows):
            window, run = outcome.window, outcome.run
            if not outcome.succeeded or run is None or outcome.pipeline_id is None:
                problems[window.key] = outcome.problem or f"{window.key}: not re-sent"
                continue
            replaced = _replaced(records.get(window.key), current.get(window.key))
            extra: dict[str, Any] = {Wsync.RESEND_PIPELINE_ID: outcome.pipeline_id}
            if replaced is not None:
                extra[Wsync.RESEND_OF_RUN_ID] = replaced
            note = (
                f"re-sent by one-off pipeline {outcome.pipeline_id}, replacing run {replaced} as "
                "the partition's record; the pipeline is deleted after the load"
            )
            yield from reporter.report_window(window, run, extra, note)
    except Exception:
        log_counters()
        raise
    log_counters()
    if problems:
        ordered = [problems[w.key] for w in windows if w.key in problems]
        raise fail(
            f"{len(problems)} of {len(windows)} partition(s) of '{ctx.spec.name}' were not re-sent "
            f"({reporter.reported} were):\n" + "\n".join(f"  - {p}" for p in ordered),
            failed_partitions=len(problems),
        )


def check_only(
    context: dg.AssetExecutionContext, ctx: SyncContext, windows: Sequence[Window]
) -> Iterator[Event]:
    """Recount ``windows`` and judge ``late_rows`` for each; nothing is sent or materialized."""
    key = context.asset_key
    selected = [k for k in context.selected_asset_check_keys if k.asset_key == key]
    if not any(k.name == naming.CHECK_LATE_ROWS for k in selected):
        raise fail(
            f"The run has run tag {RunTags.CHECK_LATE_ROWS}=true but does not "
            f"select the {naming.CHECK_LATE_ROWS} check of '{ctx.spec.name}': select it too."
        )
    with snowflake_cursor(ctx) as cursor:
        try:
            columns = discover_columns(cursor, ctx.spec, ctx.registry.limits.max_columns)
            counts, queries = count_windows(cursor, ctx.spec, columns, windows)
        except PreflightError as error:
            raise fail(str(error)) from error
    records = latest_records(context.instance, key, [w.key for w in windows])
    evaluations = list(recount_evaluations(key, counts, records))
    never = [w.key for w in windows if w.key not in {e.partition for e in evaluations}]
    late_windows, late = late_rows_total(evaluations)
    ctx.log.info(
        f"Late-row check of {len(windows)} window(s) of '{ctx.spec.name}' ({1 + queries} "
        f"queries): {late_windows} with late rows ({late:,} rows)"
        + (f"; {len(never)} never synced, nothing to compare (first: {never[0]})" if never else "")
        + (f". Re-send them with {RESEND_TAG_TEXT}" if late_windows else "")
    )
    for check_key in sorted(selected, key=lambda k: k.name):
        yield dg.Output(
            None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key)
        )
    yield from evaluations
    context.log_event(
        step_observation(
            key, {Wsync.PARTITIONS_IN_RUN: len(windows), Preflight.QUERIES: 1 + queries}
        )
    )
