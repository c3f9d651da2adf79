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
CHECK_COLUMN_SCHEMA = "column_schema_change"  # the name of Dagster's own schema-change check


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


# The job and schedule of the on_demand syncs sharing one cron (docs/jobs-and-schedules.md) are
# named after that cron: ``wsync_on_demand_cron_<cron>_job`` and ``..._schedule``, the cron spelled
# with letters, digits and ``_`` (a space is ``_``, ``*`` is ``x``, ``/`` is ``s``, ``-`` is ``t``
# and ``,`` is ``c``): "15 * * * *" gives ``wsync_on_demand_cron_15_x_x_x_x``.
CRON_STEM = "wsync_on_demand_cron_"
_CRON_SPELLING = str.maketrans({" ": "_", "*": "x", "/": "s", "-": "t", ",": "c"})


def cron_stem(cron: str) -> str:
    """What the job and schedule of the syncs on ``cron`` (as the registry normalized it) are
    named after."""
    stem = CRON_STEM + cron.translate(_CRON_SPELLING)
    if not stem.replace("_", "").isalnum():  # the registry reads no other character
        raise ValueError(f"cron {cron!r} cannot name a Dagster job ({stem!r})")
    return stem
