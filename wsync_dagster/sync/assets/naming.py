"""The one place that names things Dagster shows: asset keys, groups, kinds, tags, jobs, checks."""

import dagster as dg

from wsync_dagster.sync.assets.metadata import AssetTags
from wsync_dagster.sync.engine.rotation import ROTATING_POOL
from wsync_dagster.sync.registry.specs import Registry, SyncSpec

KEY_PREFIX = "mparticle"
KINDS = {"snowflake", "mparticle"}

CHECK_PREFLIGHT_PARITY = "preflight_count_matches_records_extracted"
CHECK_ROWS_MAPPED = "records_mapped_equals_records_extracted"
CHECK_ROW_VOLUME = "row_volume"
CHECK_MATCHES_REGISTRY = "matches_registry"


def asset_key(spec: SyncSpec) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX, spec.name])


def asset_tags(spec: SyncSpec) -> dict[str, str]:
    return {
        **spec.tags,
        AssetTags.SCHEDULE: spec.schedule.interval,
        AssetTags.ENVIRONMENT: spec.environment,
        AssetTags.PIPELINE: spec.resolved_pipeline_id,
    }


def group_name(registry: Registry, spec: SyncSpec) -> str:
    return registry.group_of(spec)


def pool_name(spec: SyncSpec) -> str:
    """The Dagster concurrency pool of ``spec``: one per pipeline, so a deployment that limits each
    ``wsync/...`` pool to 1 runs at most one materialization of a pipeline at a time; a rotating
    sync's is the shared :data:`ROTATING_POOL` instead (an asset has one pool), whose limit queues
    rotating materializations for the free slots (see sync/engine/rotation.py)."""
    return ROTATING_POOL if spec.rotate else f"wsync/{spec.resolved_pipeline_id}"


def job_name(interval: str, index: int = 0) -> str:
    """``wsync_<cadence>_job``; a cadence with several grids (different starts) gets ``_2``, ``_3``."""
    return f"wsync_{interval}_job" + (f"_{index + 1}" if index else "")


def op_name(key: dg.AssetKey) -> str:
    """The op of a sync asset: its key's path joined by ``__`` (Dagster's own convention)."""
    return "__".join(key.path).replace("-", "_")
