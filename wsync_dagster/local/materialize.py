"""Materialize sync assets in-process, a partition range in one run, optionally on the emulator's clock.

Shared by the demo, the Dagster-tier tests and the benchmarks:

* :func:`materialize_partitions` runs one Dagster run over the given partition keys: one key as a
  plain partitioned run, several as a single-run backfill (the ``dagster/asset_partition_range_*``
  tags that Dagster's backfill daemon sets for assets with ``BackfillPolicy.single_run()``).
* :class:`EmulatorClockMParticle` is the real :class:`~wsync_dagster.resources.MParticleResource`
  with its three clock hooks pointed at an emulator on a manual clock, so a materialization that
  "waits" advances the emulator's clock (which runs whatever falls due) instead of sleeping.
"""

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dagster as dg

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.stack import LOCAL_MPARTICLE
from wsync_dagster.resources import MParticleResource

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


@functools.cache
def _control(emulator_url: str) -> EmulatorControl:
    """One admin client (one kept-alive HTTP session) per emulator: the clock is read per request."""
    return EmulatorControl(emulator_url)


class EmulatorClockMParticle(MParticleResource):
    """MParticleResource whose time is the emulator's: waiting advances it, nothing sleeps."""

    emulator_url: str

    def _control(self) -> EmulatorControl:
        return _control(self.emulator_url)

    def sleep(self, seconds: float) -> None:
        self._control().advance(seconds)

    def now(self) -> datetime:
        return self._control().clock()

    def monotonic(self) -> float:
        return self._control().clock().timestamp()


# Polls back off from 30 s to 10 min of emulator time, so long catch-ups take few polls.
EMULATOR_CLOCK_SETTINGS: dict[str, Any] = {
    "poll_interval_seconds": 30.0,
    "max_poll_interval_seconds": 600.0,
    "run_timeout_seconds": 4 * 3600.0,
    "retry_budget_seconds": 120.0,
}


def emulator_clock_mparticle(
    emulator_url: str, cls: type[EmulatorClockMParticle] = EmulatorClockMParticle, **overrides: Any
) -> EmulatorClockMParticle:
    """The local credential against the emulator at ``emulator_url``, on its clock."""
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
        **EMULATOR_CLOCK_SETTINGS,
    }
    return cls(**(settings | overrides))
