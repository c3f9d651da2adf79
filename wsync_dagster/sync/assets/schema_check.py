"""The column-schema check: ``column_schema_change`` (warning) says when the model's columns, or
their types, changed since the previous materialization, and names them.

mParticle keeps every column that is not an identity or the load timestamp as a user attribute
under its exact name (see docs/warehouse-sync-api.md, columns to identities and attributes), so a
renamed or removed column silently stops updating an attribute, and an added one starts a new one.

Each materialization's ``dagster/column_schema`` (written by
:func:`wsync_dagster.sync.assets.report.schema_metadata`, from the pre-flight's column discovery)
is compared with the one recorded before it: for the first partition a run reports, the newest
materialization in Dagster's instance (one query per run, whoever recorded it: a run or the runs
sensor); for the next ones, the partition reported just before in the same run. A partitioned
asset gets one evaluation per partition, like its other checks, so the warning lands on the
partition where the columns changed.

Why not Dagster's ``build_column_schema_change_checks`` (Dagster 1.13, beta): it is a separate
check step that compares the asset's two newest materializations. A sync asset yields its
materializations as events and no output, so Dagster skips that step; and a run that syncs several
partitions writes several materializations with the same columns, so "the two newest" would hide a
change made before the run. See docs/sql.md.
"""

import warnings
from dataclasses import dataclass

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.checks import Verdict
from wsync_dagster.sync.assets.metadata import DagsterKeys

UNKNOWN_TYPE = "unknown"  # what report.py writes when the column discovery gave no type
LOOKBACK = 10  # newest materializations searched for one with a column schema


def check_spec(
    key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None = None
) -> dg.AssetCheckSpec:
    """The check's spec; partitioned like the asset (see ``checks.check_specs``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned check specs: preview
        return dg.AssetCheckSpec(
            naming.CHECK_COLUMN_SCHEMA,
            asset=key,
            blocking=False,
            description="The model's columns and their types are those of the previous "
            "materialization: warns naming each added, removed or retyped column.",
            partitions_def=partitions_def,
        )


@dataclass(frozen=True)
class Recorded:
    """A column schema recorded with a materialization, and where it came from."""

    schema: dg.TableSchema
    partition: str | None
    run_id: str | None

    def describe(self) -> str:
        where = f"partition {self.partition}" if self.partition else "the materialization"
        return f"{where} of Dagster run {self.run_id}" if self.run_id else where


def latest_recorded(instance: dg.DagsterInstance, key: dg.AssetKey) -> Recorded | None:
    """The newest column schema recorded on a materialization of ``key`` (among the newest
    :data:`LOOKBACK`; one without a schema, e.g. a run whose columns were not discovered, is
    skipped); None when there is none."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key), limit=LOOKBACK
    ).records
    for record in records:  # newest first
        materialization = record.asset_materialization
        value = materialization.metadata.get(DagsterKeys.COLUMN_SCHEMA) if materialization else None
        schema = getattr(value, "value", None)
        if isinstance(schema, dg.TableSchema):
            return Recorded(schema, record.partition_key, record.run_id)
    return None


def schema_verdict(current: dg.TableSchema, previous: Recorded | None) -> Verdict:
    """Warning: a column was added, removed or changed type since ``previous``.

    Names are compared exactly (Snowflake's spelling is the attribute's name); order does not
    matter. A type change to or from ``unknown`` is not a change: one side was not discovered."""
    metadata: dict[str, object] = {"columns": len(current.columns)}
    if previous is None:
        return Verdict(
            naming.CHECK_COLUMN_SCHEMA,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="The first column schema recorded for this asset: nothing to compare.",
            metadata={**metadata, "compared_with": "none"},
        )
    before = {c.name: c.type for c in previous.schema.columns}
    now = {c.name: c.type for c in current.columns}
    added = [n for n in now if n not in before]
    removed = [n for n in before if n not in now]
    retyped = [
        f"{n} {before[n]} -> {now[n]}"
        for n in now
        if n in before and before[n] != now[n] and UNKNOWN_TYPE not in (before[n], now[n])
    ]
    changes = [
        f"{label} {', '.join(names)}"
        for label, names in (("added", added), ("removed", removed), ("retyped", retyped))
        if names
    ]
    metadata.update(
        {
            "compared_with": previous.describe(),
            "added_columns": ", ".join(added) or "none",
            "removed_columns": ", ".join(removed) or "none",
            "retyped_columns": ", ".join(retyped) or "none",
        }
    )
    description = (
        None
        if not changes
        else f"The model's columns changed since {previous.describe()}: {'; '.join(changes)}. "
        "mParticle keeps each attribute column under its name: a removed or renamed column's "
        "attribute stops being updated, an added one appears on profiles. If that is not "
        "intended, fix the model's SQL (or the table it reads)."
    )
    return Verdict(
        naming.CHECK_COLUMN_SCHEMA,
        passed=not changes,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


class SchemaWatch:
    """Judges the column schema of each materialization one run reports, in order: the first
    against the newest recorded before the run, each next one against the one before it."""

    def __init__(self, instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str) -> None:
        self.previous = latest_recorded(instance, key)
        self.run_id = run_id

    def judge(self, schema: dg.TableSchema, partition: str | None = None) -> Verdict:
        verdict = schema_verdict(schema, self.previous)
        self.previous = Recorded(schema, partition, self.run_id)
        return verdict
