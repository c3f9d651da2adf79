"""What a sync reports about one mParticle run: its materialization and metadata.

Pure functions of the spec, the window, the run and the pre-flight count: no execution context, so
anything that learns of a run (a materialization, or a sensor reading runs later) reports it the same
way.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import ClientStats, PipelineRun
from wsync_dagster.sync.reconcile import Reconciled
from wsync_dagster.sync.specs import SyncSpec
from wsync_dagster.sync.windows import Window, WindowCount


def run_metadata(
    spec: SyncSpec,
    window: Window,
    run: PipelineRun,
    count: WindowCount | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata of ``run`` of ``spec`` over ``window`` (and what the pre-flight counted there)."""
    seconds = (
        (run.end_date - run.start_date).total_seconds() if run.start_date and run.end_date else None
    )
    metadata: dict[str, Any] = {
        "mparticle/pipeline_id": spec.resolved_pipeline_id,
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
    metadata.update(extra or {})
    return metadata


def run_materialization(
    asset_key: dg.AssetKey,
    spec: SyncSpec,
    window: Window,
    run: PipelineRun,
    count: WindowCount | None,
    extra: Mapping[str, Any] | None = None,
    *,
    partition: str | None = None,
) -> dg.AssetMaterialization:
    """The materialization recording ``run`` (of ``partition``, when the asset is partitioned)."""
    return dg.AssetMaterialization(
        asset_key=asset_key,
        partition=partition,
        description=f"mParticle run {run.pipeline_run_id} ({window.describe()})",
        metadata=run_metadata(spec, window, run, count, extra),
    )


def sync_metadata(
    reconciled: Reconciled, before: ClientStats, after: ClientStats
) -> dict[str, Any]:
    """What one materialization did: its reconcile changes and the requests it sent."""
    return {
        "wsync/reconcile": ", ".join(c.describe() for c in reconciled.changes),
        "wsync/api_requests": after.requests - before.requests,
        "wsync/token_requests": after.token_requests - before.token_requests,
    }
