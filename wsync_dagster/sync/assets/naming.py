"""The one place that names things Dagster shows: asset keys, groups, kinds, tags, jobs, checks."""

import re

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
CHECK_LATE_ROWS = "late_rows"
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


# Jobs and schedules (docs/jobs-and-schedules.md). Each name is ``<stem>_job`` or
# ``<stem>_schedule``, and each stem says what the job runs, never where it sits in a list:
#   wsync_<interval>_<sync>   an interval sync's own job and schedule (interval: hourly, daily, ...)
#   wsync_<cadence>           every sync of an unscheduled cadence (on_demand, once), launched by hand
# Stems cannot collide: sync names are unique in a code location, and no cadence's name followed
# by ``_`` begins another cadence's name (a test checks both). A new kind of job takes a stem of its own shape under the
# ``wsync_`` prefix (for example ``wsync_on_demand_<what it runs>``), and a test in
# wsync_dagster_tests/sync/test_schedules.py, so that the rule stays one rule.
JOB_PREFIX = "wsync_"
DAGSTER_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def sync_stem(spec: SyncSpec) -> str:
    """``wsync_<interval>_<sync>``: what an interval sync's job and schedule are named after."""
    return _stem(spec.schedule.interval, spec.name)


def cadence_stem(interval: str) -> str:
    """``wsync_<cadence>``: the job of every sync of an unscheduled cadence (on_demand, once)."""
    return _stem(interval)


def job_name(stem: str) -> str:
    return f"{stem}_job"


def job_names(spec: SyncSpec) -> tuple[str, ...]:
    """The jobs whose runs materialize ``spec``'s asset: an interval sync's own; for the others,
    their cadence's, and their cron's when they have one (``sync/assets/schedules.py`` and
    ``sync/assets/cron_schedules.py`` define them)."""
    if spec.schedule.is_interval:
        return (job_name(sync_stem(spec)),)
    cron = spec.schedule.cron
    cadence = job_name(cadence_stem(spec.schedule.interval))
    return (cadence,) if cron is None else (cadence, job_name(cron_stem(cron)))


def schedule_name(stem: str) -> str:
    return f"{stem}_schedule"


def _stem(*parts: str) -> str:
    stem = JOB_PREFIX + "_".join(parts)
    if not DAGSTER_NAME.match(stem):  # sync names and cadences are snake_case: never happens
        raise ValueError(f"{stem!r} is not a valid Dagster name (letters, digits, underscores)")
    return stem


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
