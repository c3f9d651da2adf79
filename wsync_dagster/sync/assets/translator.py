"""How a registry entry becomes a Dagster asset spec: :class:`WarehouseSyncTranslator`.

The asset factory (:mod:`wsync_dagster.sync.assets.factory`) builds every sync asset from
``translator.get_asset_spec(props)``; a team re-keys, re-groups or re-tags its syncs by subclassing
the translator and overriding that hook (or one of the smaller ``get_*`` hooks), without forking
the factory. What the factory needs to run a sync (partitions on the pipeline's grid, skippable
outputs) it sets itself, so no override can break a sync.
"""

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.metadata import DagsterKeys, Wsync
from wsync_dagster.sync.registry.cadences import cadence
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster.sync.registry.sql import TableName, analyze

SOURCE_KEY_PREFIX = "snowflake"
PIPELINE_URI_PREFIX = "mparticle://warehouse-sync/pipelines/"


class SourceTablesNotFoundWarning(UserWarning):
    """A sync's SQL does not say (to sqlglot) which tables it reads, and ``sources`` is not set: the
    asset has no dependency on them and no column lineage to them."""


@dataclass(frozen=True)
class WarehouseSyncProps:
    """What the translator sees of one sync: its registry entry, the registry around it (shared
    connection, default group) and where the entry is written (for code references)."""

    spec: SyncSpec
    registry: Registry
    yaml_path: Path | None = None
    line: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def source_tables(spec: SyncSpec, registry: Registry) -> tuple[str, ...]:
    """The Snowflake tables ``spec`` reads, as ``DATABASE.SCHEMA.TABLE``: ``sources`` when the
    registry lists them, else the tables its SQL names (``SCHEMA.TABLE`` in the connection's
    database; a name without a schema cannot be placed and is left to ``sources``)."""
    if spec.sources is not None:
        return tuple(name.upper() for name in spec.sources)
    database = registry.connection.database.upper()
    tables = [
        str(table) if len(table.parts) == 3 else f"{database}.{table}"
        for table in analyze(spec.sql).tables
        if len(table.parts) in (2, 3)
    ]
    return tuple(dict.fromkeys(tables))


def unfound_tables_problem(spec: SyncSpec) -> str | None:
    """Why the tables ``spec``'s SQL reads cannot all be found, and the fix; None when they can
    (or when ``sources`` lists them)."""
    if spec.sources is not None:
        return None
    analysis = analyze(spec.sql)
    if analysis.query and (unplaced := [str(t) for t in analysis.tables if len(t.parts) == 1]):
        why = (
            f"names {', '.join(unplaced)} without a schema, so its database and schema are unknown"
        )
    elif analysis.query is None:
        why = f"could not be parsed by sqlglot ({analysis.problem}), so the tables it reads are unknown"
    else:
        return None
    return (
        f"sync '{spec.name}': its SQL {why}; the asset gets no dependency on them and no column "
        "lineage. List the tables it reads in `sources:` (DATABASE.SCHEMA.TABLE), or qualify them "
        "in the SQL."
    )


def _matching_source(table: TableName, sources: tuple[str, ...]) -> str | None:
    """The one source table whose trailing parts are ``table``'s (case-insensitively); None when
    none or several are."""
    wanted = [part.upper() for part in table.parts]
    found = [s for s in sources if s.upper().split(".")[-len(wanted) :] == wanted]
    return found[0] if len(found) == 1 else None


def column_lineage(
    spec: SyncSpec, registry: Registry, key_of: Callable[[str], dg.AssetKey]
) -> dg.TableColumnLineage:
    """Each output column of ``spec``'s SQL -> the source-table columns it is computed from, keyed
    by ``key_of`` (the translator's source asset key). Only reads of the sync's source tables are
    kept; see :func:`wsync_dagster.sync.registry.sql.analyze` for what sqlglot can trace."""
    sources = source_tables(spec, registry)
    deps: dict[str, list[dg.TableColumnDep]] = {}
    for column, reads in analyze(spec.sql).lineage.items():
        found: dict[tuple[dg.AssetKey, str], None] = {}
        for read in reads:
            if (table := _matching_source(read.table, sources)) is not None:
                found[(key_of(table), read.column)] = None
        if found:
            deps[column] = [dg.TableColumnDep(asset_key=k, column_name=c) for k, c in found]
    return dg.TableColumnLineage(deps_by_column=deps)


def code_version(spec: SyncSpec) -> str:
    """Changes exactly when what the pipeline syncs changes: its SQL, its load timestamp (column,
    type, time zone, offset) and its schedule in mParticle (not the cron on which Dagster
    materializes an on_demand sync: a run syncs the same rows whenever it starts)."""
    fingerprint = {
        "sql": spec.sql.strip(),
        "load_timestamp": spec.load_timestamp.model_dump(mode="json"),
        "schedule": spec.schedule.model_dump(mode="json", exclude={"cron"}),
    }
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def freshness_policy(spec: SyncSpec) -> dg.FreshnessPolicy | None:
    """For an interval sync: warn when the newest sync is older than one interval plus a grace,
    fail after two. A healthy pipeline syncs each interval shortly after it closes, so the newest
    materialization is at most one interval (plus the run's duration) old.

    For an on_demand sync with a ``cron``, the same with the cron's longest gap between two ticks
    as the interval: a tick skipped (the previous one still queued or running, see
    docs/scale.md) shows as a warning, two in a row as a failure. Other on_demand and once syncs
    have no clock to be late against."""
    step = cadence(spec.schedule.interval).step
    cron = spec.schedule.parsed_cron
    if cron is not None:
        interval = cron.longest_gap()
    elif step is not None:
        anchor = spec.schedule.start
        interval = (anchor + step) - anchor  # calendar months: the start month's length
    else:
        return None
    grace = max(timedelta(minutes=15), interval / 10)
    return dg.FreshnessPolicy.time_window(
        fail_window=2 * interval + grace, warn_window=interval + grace
    )


def pipeline_uri(spec: SyncSpec) -> str:
    """An identifier of the sync's mParticle pipeline. Not an https URL: that needs the workspace
    id, a resource setting read at run time, and definition loading reads no settings."""
    return PIPELINE_URI_PREFIX + spec.resolved_pipeline_id


def _code_reference(path: Path, line: int | None, name: str) -> dg.CodeReferencesMetadataValue:
    """The registry entry as a code reference (Dagster marks these classes beta; the components
    loader itself uses them for every ``defs.yaml``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        reference = dg.LocalFileCodeReference(
            file_path=str(path), line_number=line, label=f"registry: {name}"
        )
        return dg.CodeReferencesMetadataValue(code_references=[reference])


class WarehouseSyncTranslator:
    """Translates one registry entry into the :class:`dagster.AssetSpec` of its sync asset.

    Subclass it and override :meth:`get_asset_spec` (or a smaller hook) to change keys, groups,
    tags, owners, kinds, automation or metadata. Keys must stay unique in the code location.
    """

    def get_asset_spec(self, sync: WarehouseSyncProps) -> dg.AssetSpec:
        spec = sync.spec
        if problem := unfound_tables_problem(spec):
            warnings.warn(problem, SourceTablesNotFoundWarning, stacklevel=2)
        deps = [self.get_source_asset_key(t) for t in source_tables(spec, sync.registry)]
        deps += [dg.AssetKey.from_user_string(d) for d in spec.deps if d]
        return dg.AssetSpec(
            key=naming.asset_key(spec),
            description=spec.description.strip(),
            group_name=naming.group_name(sync.registry, spec),
            owners=list(spec.owners),
            tags=naming.asset_tags(spec),
            kinds=set(naming.KINDS),
            deps=list(dict.fromkeys(deps)),
            automation_condition=dg.AutomationCondition.eager() if spec.deps else None,
            code_version=code_version(spec),
            freshness_policy=freshness_policy(spec),
            metadata=self.get_metadata(sync),
        )

    def get_metadata(self, sync: WarehouseSyncProps) -> dict[str, object]:
        spec = sync.spec
        metadata: dict[str, object] = {
            DagsterKeys.URI: pipeline_uri(spec),
            Wsync.PIPELINE_ID: spec.resolved_pipeline_id,
            Wsync.DATA_MODEL_ID: spec.resolved_data_model_id,
            Wsync.SCHEDULE: spec.schedule.interval,
            Wsync.SCHEDULE_START: dg.MetadataValue.timestamp(spec.schedule.start),
            Wsync.LOAD_TIMESTAMP: f"{spec.load_timestamp.column} ({spec.load_timestamp.type})",
            Wsync.SOURCE_TABLES: ", ".join(source_tables(spec, sync.registry)),
            Wsync.SQL: dg.MetadataValue.md(f"```sql\n{spec.sql.strip()}\n```"),
            DagsterKeys.COLUMN_LINEAGE: self.get_column_lineage(sync),
        }
        if spec.schedule.cron is not None:
            metadata[Wsync.CRON] = spec.schedule.cron
        if sync.yaml_path is not None:
            metadata[DagsterKeys.CODE_REFERENCES] = _code_reference(
                sync.yaml_path, sync.line, spec.name
            )
        return metadata

    def get_column_lineage(self, sync: WarehouseSyncProps) -> dg.TableColumnLineage:
        """The model's column lineage (``dagster/column_lineage``): each output column -> the
        columns of the source tables it is computed from, keyed by :meth:`get_source_asset_key`."""
        return column_lineage(sync.spec, sync.registry, self.get_source_asset_key)

    def get_source_asset_key(self, table: str) -> dg.AssetKey:
        """The key of Snowflake table ``DATABASE.SCHEMA.TABLE``: ``snowflake/<db>/<schema>/<table>``
        in lower case. Override it to match the keys your dbt or Fivetran assets give the table."""
        return dg.AssetKey([SOURCE_KEY_PREFIX, *table.lower().split(".")])

    def get_source_asset_spec(self, table: str) -> dg.AssetSpec:
        """An external asset for a source table nothing in the code location produces."""
        return dg.AssetSpec(
            key=self.get_source_asset_key(table),
            description=f"Snowflake table {table}, read by mParticle Warehouse Sync.",
            group_name="snowflake_sources",
            kinds={"snowflake"},
            metadata={DagsterKeys.TABLE_NAME: table},
        )
