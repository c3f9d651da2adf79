"""What a sync reports about one mParticle run: its materialization, its metadata, and the step's.

Pure functions of the spec, the window, the run and the pre-flight: no execution context, so anything
that learns of a run (a materialization, or a sensor reading runs later) reports it the same way.

Where each number lives:

- a **materialization** (one per partition, or one for an unpartitioned sync) carries what is true of
  that window's data: the mParticle run and its record counts, ``dagster/partition_row_count`` (or
  ``dagster/row_count`` when unpartitioned), what the pre-flight counted there, and
  ``dagster/column_schema`` (the columns the model returned when the window was synced, each tagged
  with its role, which Dagster's Columns tab shows);
- one **observation** per materialization step (:func:`step_observation`) carries the step's own
  counters (requests sent, tokens fetched, polls, pre-flight queries, what reconcile changed), which
  belong to no single partition: copied onto every partition of a 24-partition backfill they would
  read as 24 times the work, put on one partition they would vanish when that partition fails. An
  observation is logged before the outcome is known, so the counters are kept when the step fails.

Values that carry no information are left out: a run duration of zero or unknown (the emulator
reports start == end), the run state (only successful runs are materialized), an empty run type.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import ClientStats, PipelineRun
from wsync_dagster.sync.assets.metadata import (
    ColumnTags,
    DagsterKeys,
    MParticle,
    Preflight,
    WindowKeys,
    Wsync,
)
from wsync_dagster.sync.engine.preflight import Columns, PreflightReport
from wsync_dagster.sync.engine.reconcile import Reconciled
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.sql import DEVICE_IDENTITY_COLUMNS
from wsync_dagster.sync.registry.windows import Window, WindowCount

# A column's role in the sync, as a TableColumn tag: identity, attribute or load_timestamp.
IDENTITY, ATTRIBUTE, LOAD_TIMESTAMP = "identity", "attribute", "load_timestamp"


def _column(columns: Columns, name: str, sql_type: str | None) -> dg.TableColumn:
    tags: dict[str, str]
    if name == columns.timestamp:
        tags = {ColumnTags.ROLE: LOAD_TIMESTAMP}
        description = (
            "Load timestamp: each window syncs the rows whose value falls in it; not sent to "
            "mParticle as an attribute."
        )
    elif name in columns.identities:
        kind = "device" if name.lower() in DEVICE_IDENTITY_COLUMNS else "user"
        tags = {ColumnTags.ROLE: IDENTITY, ColumnTags.IDENTITY: kind}
        description = f"{kind.capitalize()} identity: mParticle resolves the profile by it."
    else:
        tags = {ColumnTags.ROLE: ATTRIBUTE}
        description = f"User attribute '{name}' on the resolved profile."
    return dg.TableColumn(name=name, type=sql_type or "unknown", description=description, tags=tags)


def column_schema(found: PreflightReport | Columns) -> dg.TableSchema:
    """The model's columns as the pre-flight's column discovery found them, each with its role."""
    columns = (
        found
        if isinstance(found, Columns)
        else Columns(
            found.columns, found.identity_columns, found.timestamp_column, found.column_types
        )
    )
    types = columns.types or (None,) * len(columns.names)
    return dg.TableSchema(
        columns=[_column(columns, n, t) for n, t in zip(columns.names, types, strict=True)]
    )


def schema_metadata(found: PreflightReport | Columns) -> dict[str, Any]:
    """The metadata every materialization of a sync shares: the model's column schema (from a
    pre-flight, or from the runs sensor's column discovery)."""
    return {DagsterKeys.COLUMN_SCHEMA: column_schema(found)}


def run_metadata(
    spec: SyncSpec,
    window: Window,
    run: PipelineRun,
    *,
    count: WindowCount | None,
    extra: Mapping[str, Any] | None = None,
    partitioned: bool = False,
) -> dict[str, Any]:
    """The metadata of ``run`` of ``spec`` over ``window`` (and what the pre-flight counted there)."""
    mapped = run.records_mapped or 0
    metadata: dict[str, Any] = {
        MParticle.PIPELINE_ID: spec.resolved_pipeline_id,
        MParticle.RUN_ID: run.pipeline_run_id,
        MParticle.LOGICAL_DATE: dg.MetadataValue.timestamp(run.logical_date or window.start),
        WindowKeys.START: dg.MetadataValue.timestamp(run.data_interval_start or window.start),
        WindowKeys.END: dg.MetadataValue.timestamp(run.data_interval_end or window.end),
        MParticle.RECORDS_EXTRACTED: run.records_extracted or 0,
        MParticle.RECORDS_MAPPED: mapped,
        MParticle.EVENT_BATCHES: run.event_batches_generated or 0,
        (DagsterKeys.PARTITION_ROW_COUNT if partitioned else DagsterKeys.ROW_COUNT): mapped,
    }
    if run.pipeline_run_type:
        metadata[MParticle.RUN_TYPE] = run.pipeline_run_type
    if run.start_date and run.end_date and run.end_date > run.start_date:
        seconds = (run.end_date - run.start_date).total_seconds()
        metadata[MParticle.RUN_SECONDS] = round(seconds, 3)
    if count is not None:
        metadata[Preflight.ROWS] = count.rows
        metadata[Preflight.ROWS_WITHOUT_IDENTITY] = count.rows_without_identity
    metadata.update(extra or {})
    return metadata


def run_materialization(
    asset_key: dg.AssetKey,
    spec: SyncSpec,
    window: Window,
    run: PipelineRun,
    *,
    count: WindowCount | None,
    extra: Mapping[str, Any] | None = None,
    partition: str | None = None,
    note: str | None = None,
) -> dg.AssetMaterialization:
    """The materialization recording ``run`` (of ``partition``, when the asset is partitioned);
    ``note`` is added to its description."""
    description = f"mParticle run {run.pipeline_run_id} ({window.describe()})"
    return dg.AssetMaterialization(
        asset_key=asset_key,
        partition=partition,
        description=f"{description}: {note}" if note else description,
        metadata=run_metadata(
            spec, window, run, count=count, extra=extra, partitioned=partition is not None
        ),
    )


def sync_metadata(
    reconciled: Reconciled, before: ClientStats, after: ClientStats
) -> dict[str, Any]:
    """What one materialization did: its reconcile changes and the requests it sent."""
    return {
        Wsync.RECONCILE: ", ".join(c.describe() for c in reconciled.changes),
        Wsync.API_REQUESTS: after.requests - before.requests,
        Wsync.TOKEN_REQUESTS: after.token_requests - before.token_requests,
    }


def step_observation(asset_key: dg.AssetKey, counters: Mapping[str, Any]) -> dg.AssetObservation:
    """The step's own counters, once per materialization step (see the module docstring)."""
    return dg.AssetObservation(
        asset_key=asset_key,
        description="What this materialization step did: requests, polls, queries, reconcile.",
        metadata=dict(counters),
    )
