"""Materialize sync assets in-process, a partition range in one run.

Shared by the demo, the Dagster-tier tests and the benchmarks: :func:`materialize_partitions` runs
one Dagster run over the given partition keys: one key as a plain partitioned run, several as a
single-run backfill (the ``dagster/asset_partition_range_*`` tags that Dagster's backfill daemon sets
for assets with ``BackfillPolicy.single_run()``). The emulator's manual-clock resource is
:func:`wsync_dagster.local.resources.emulator_clock_mparticle`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_range_tags(partition_keys: Sequence[str]) -> dict[str, str]:
    """Run tags that make one run cover ``partition_keys`` (oldest first); none for a single key."""
    if len(partition_keys) < 2:
        return {}
    return {RANGE_START_TAG: partition_keys[0], RANGE_END_TAG: partition_keys[-1]}


def materialize_partitions(
    assets: Sequence[dg.AssetsDefinition],
    partition_keys: Sequence[str] = (),
    *,
    resources: Mapping[str, object] | None = None,
    instance: dg.DagsterInstance | None = None,
    run_config: Any = None,
) -> dg.ExecuteInProcessResult:
    """One Dagster run of ``assets`` over ``partition_keys`` (none: an unpartitioned run)."""
    return dg.materialize(
        assets,
        resources=resources,
        run_config=run_config,
        partition_key=partition_keys[0] if len(partition_keys) == 1 else None,
        tags=partition_range_tags(partition_keys),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
