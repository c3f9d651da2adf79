"""One Dagster asset per synced table: the factory.

Interval syncs are partitioned on their pipeline's own grid and materialized by
:mod:`wsync_dagster.sync.interval`; ``on_demand`` and ``once`` syncs are unpartitioned and
materialized by :mod:`wsync_dagster.sync.single`. What a run reports is built by
:mod:`wsync_dagster.sync.report`.
"""

from collections.abc import Iterator

import dagster as dg
from dagster_snowflake import SnowflakeResource

from wsync_dagster.resources import MParticleResource
from wsync_dagster.sync import checks, naming
from wsync_dagster.sync.interval import SyncEvent, materialize_windows
from wsync_dagster.sync.partitions import partitions_for
from wsync_dagster.sync.single import materialize_single
from wsync_dagster.sync.specs import Registry, SyncSpec
from wsync_dagster.sync.steps import SyncContext


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
        check_specs=checks.check_specs(key, partitions),
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
    ) -> Iterator[SyncEvent]:
        ctx = SyncContext(registry, spec, snowflake, mparticle, context.log)
        if partitioned:
            yield from materialize_windows(context, ctx)
        else:
            yield from materialize_single(context, ctx)

    return _sync


def build_sync_assets(registry: Registry) -> list[dg.AssetsDefinition]:
    return [build_sync_asset(registry, spec) for spec in registry.syncs]
