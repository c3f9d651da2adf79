"""One Dagster asset per synced table: the factory.

Each asset's spec comes from a :class:`~wsync_dagster.sync.assets.translator.WarehouseSyncTranslator`
(key, group, tags, owners, kinds, automation, deps, metadata, code version, freshness); the
factory adds what running a sync needs: partitions on exactly the pipeline's grid, the checks
(:mod:`~wsync_dagster.sync.assets.checks`, :mod:`~wsync_dagster.sync.assets.schema_check`), the
pipeline's pool and single-run backfills. Interval syncs are materialized by
:mod:`wsync_dagster.sync.assets.interval`; ``on_demand`` and ``once`` syncs, unpartitioned, by
:mod:`wsync_dagster.sync.assets.single`. What a run reports is built by :mod:`wsync_dagster.sync.assets.report`.
"""

from collections.abc import Iterator, Sequence

import dagster as dg
from dagster_snowflake import SnowflakeResource

from wsync_dagster.resources import MParticleResource
from wsync_dagster.sync.assets import checks, naming, schema_check
from wsync_dagster.sync.assets.drift import drift_check_spec
from wsync_dagster.sync.assets.interval import SyncEvent, materialize_windows
from wsync_dagster.sync.assets.partitions import partitions_for
from wsync_dagster.sync.assets.single import materialize_single
from wsync_dagster.sync.assets.steps import SyncContext, as_failure
from wsync_dagster.sync.assets.translator import WarehouseSyncProps, WarehouseSyncTranslator
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.workspace import Workspace


def build_sync_asset(
    props: WarehouseSyncProps,
    translator: WarehouseSyncTranslator | None = None,
    workspace: Workspace | None = None,
) -> dg.AssetsDefinition:
    """The asset for one synced table: the translator's spec on the pipeline's grid.

    ``workspace`` holds every sync of the code location (default: this registry's alone): a rotating
    sync's materialization pauses what a crash left active among all of their rotating syncs.
    """
    registry, spec = props.registry, props.spec
    workspace = workspace or Workspace.of([registry])
    partitioned = spec.schedule.is_interval
    asset_spec = (translator or WarehouseSyncTranslator()).get_asset_spec(props)
    # A run reports materializations itself (one per synced window), never an output.
    asset_spec = asset_spec.replace_attributes(
        partitions_def=partitions_for(spec.schedule) if partitioned else None, skippable=True
    )

    @dg.multi_asset(
        name=naming.op_name(asset_spec.key),
        specs=[asset_spec],
        check_specs=[
            *checks.check_specs(asset_spec.key, asset_spec.partitions_def),
            schema_check.check_spec(asset_spec.key, asset_spec.partitions_def),
            drift_check_spec(asset_spec.key),  # not partitioned: the drift sensor's too
        ],
        pool=naming.pool_name(spec),
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
    )
    def _sync(
        context: dg.AssetExecutionContext,
        snowflake: SnowflakeResource,
        mparticle: MParticleResource,
    ) -> Iterator[SyncEvent]:
        ctx = SyncContext(registry, spec, snowflake, mparticle, context.log, workspace)
        with as_failure():
            if partitioned:
                yield from materialize_windows(context, ctx)
            else:
                yield from materialize_single(context, ctx)

    return _sync


def build_sync_assets(
    registry: Registry,
    translator: WarehouseSyncTranslator | None = None,
    props: Sequence[WarehouseSyncProps] | None = None,
    workspace: Workspace | None = None,
) -> list[dg.AssetsDefinition]:
    """The assets of ``registry``'s syncs (``props``: the same syncs with their YAML positions;
    ``workspace``: every registry of the code location, see :func:`build_sync_asset`)."""
    props = props or [WarehouseSyncProps(spec, registry) for spec in registry.syncs]
    return [build_sync_asset(p, translator, workspace) for p in props]
