"""Materialize sync assets in-process, a partition range in one run, optionally on the emulator's clock.

Shared by the demo, the Dagster-tier tests and the benchmarks:

* :func:`materialize_partitions` runs one Dagster run over the given partition keys: one key as a
  plain partitioned run, several as a single-run backfill (the ``dagster/asset_partition_range_*``
  tags that Dagster's backfill daemon sets for assets with ``BackfillPolicy.single_run()``).
* :func:`emulator_clock_mparticle` is the local target's resource on an emulator with a manual
  clock, so a materialization that "waits" advances the emulator's clock (which runs whatever
  falls due) instead of sleeping.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from wsync_dagster.local.stack import LOCAL_MPARTICLE
from wsync_dagster.resources import MANUAL_CLOCK_POLLING, LocalMParticleResource

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


def emulator_clock_mparticle(
    emulator_url: str, cls: type[LocalMParticleResource] = LocalMParticleResource, **overrides: Any
) -> LocalMParticleResource:
    """The local credential against the emulator at ``emulator_url``, on its manual clock."""
    url = emulator_url.rstrip("/")
    settings: dict[str, Any] = {
        "client_id": LOCAL_MPARTICLE.client_id,
        "client_secret": LOCAL_MPARTICLE.client_secret,
        "workspace_id": LOCAL_MPARTICLE.workspace_id,
        "org_id": LOCAL_MPARTICLE.org_id,
        "account_id": LOCAL_MPARTICLE.account_id,
        "api_root": url,
        "token_url": f"{url}/oauth/token",
        "emulator_url": url,
        "manual_clock": True,
        "retry_budget_seconds": 120.0,
        **MANUAL_CLOCK_POLLING,
    }
    return cls(**(settings | overrides))
