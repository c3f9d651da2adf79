"""Rotation: 12 rotating on-demand syncs sharing mParticle's 5 active-pipeline slots. Prints numbers;
asserts nothing.

The local stack runs with the emulator on its **real** clock, each run taking ``--run-seconds``; the
12 rotating syncs (copies of the sample's ``high_value_customers`` model) are materialized at once,
one thread each, as in-process ``materialize`` calls (no Dagster pool: every sync reaches mParticle
and waits on its count, the worst case). Reported:

* the wall time against the floor ``ceil(12 / free slots) x run time`` (5 free slots with no
  permanent sync; 2 with 3 permanent on-demand pipelines active for ever), and the peak of active pipelines from the
  emulator's activity log;
* the mParticle calls one sync costs, rotating and not (the ``wsync/api_requests`` counter each
  materialization logs, the same sync materialized alone, then concurrently), and the activations
  mParticle refused (400) and the sync retried.

    .venv/bin/python benchmarks/rotation_bench.py [--syncs N] [--run-seconds S]
"""

import argparse
import math
import os
import statistics
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.local.resources import emulator_mparticle, local_snowflake_resource
from wsync_dagster.local.stack import LocalStack
from wsync_dagster.mparticle import clear_token_cache
from wsync_dagster.sync.assets.factory import build_sync_asset
from wsync_dagster.sync.assets.translator import WarehouseSyncProps
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster.sync.registry.specs import Registry

TEMPLATE = "high_value_customers"
PERMANENT = 3
# Poll often: the runs are seconds long here (against mParticle the defaults poll every 5 s).
POLLING: dict[str, Any] = {"poll_interval_seconds": 0.1, "max_poll_interval_seconds": 0.5}


def with_rotating(registry: Registry, count: int, permanent: int) -> Registry:
    """``count`` rotating copies of the template, and ``permanent`` plain (active) ones."""
    template = registry.sync(TEMPLATE)
    rotating = tuple(
        template.model_copy(update={"name": f"rotating_{i:02d}"}) for i in range(1, count + 1)
    )
    kept = tuple(
        template.model_copy(update={"name": f"permanent_{i}", "rotate": False})
        for i in range(1, permanent + 1)
    )
    return registry.model_copy(update={"syncs": kept + rotating})


def requests_of(result: dg.ExecuteInProcessResult) -> int:
    for event in result.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            metadata = event.asset_observation_data.asset_observation.metadata
            if "wsync/api_requests" in metadata:
                return int(getattr(metadata["wsync/api_requests"], "value", 0))
    return 0


def run(assets: list[dg.AssetsDefinition], resources: dict[str, Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(assets)) as pool:
        return list(pool.map(lambda a: materialize_partitions([a], resources=resources), assets))


def scenario(
    stack: LocalStack, registry: Registry, resources: dict[str, Any], run_seconds: float
) -> dict[str, Any]:
    """The permanent pipelines set up (they hold their slots), then every rotating sync at once."""
    control = EmulatorControl(stack.emulator_url)
    control.reset()
    clear_token_cache()
    with resources["mparticle"].open_client() as client:
        for spec in registry.syncs:
            if not spec.rotate:
                reconcile(client, registry, spec, control.clock())
    rotating = [
        build_sync_asset(WarehouseSyncProps(s, registry)) for s in registry.syncs if s.rotate
    ]
    free = registry.limits.max_active_pipelines - sum(1 for s in registry.syncs if s.active)
    started = time.monotonic()
    results = run(rotating, resources)
    seconds = time.monotonic() - started
    activity = control.activity()
    refused = [
        e for e in control.request_log()
        if e["method"] == "PUT" and e["status"] == 400 and "rotating" in e["path"]
    ]  # fmt: skip
    return {
        "ok": sum(r.success for r in results),
        "seconds": seconds,
        "floor": math.ceil(len(rotating) / free) * run_seconds,
        "free": free,
        "peak": activity["peak_active"],
        "calls": [requests_of(r) for r in results],
        "refused": len(refused),
    }


def alone(registry: Registry, resources: dict[str, Any], name: str, rotate: bool) -> int:
    spec = registry.sync(name).model_copy(update={"rotate": rotate})
    single = registry.model_copy(update={"syncs": (spec,)})
    # Twice: the second materialization finds everything created (the steady state).
    asset = build_sync_asset(WarehouseSyncProps(spec, single))
    materialize_partitions([asset], resources=resources)
    result = materialize_partitions([asset], resources=resources)
    return requests_of(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--syncs", type=int, default=12)
    parser.add_argument("--run-seconds", type=float, default=2.0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    with (
        tempfile.TemporaryDirectory() as workdir,
        LocalStack(Path(workdir), run_seconds=args.run_seconds) as stack,
    ):
        os.environ.update(stack.environment())
        base = stack.served_workspace().registries[0]  # the sample: one registry
        resources = {
            "snowflake": local_snowflake_resource(stack.snowflake.host, stack.snowflake.port),
            "mparticle": emulator_mparticle(stack.emulator_url, manual_clock=False, **POLLING),
        }
        EmulatorControl(stack.emulator_url).reset()
        plain = alone(base, resources, "churn_risk_alerts", rotate=False)
        rotated = alone(base, resources, "churn_risk_alerts", rotate=True)
        print(
            f"mParticle calls of one on-demand sync, steady state, alone: {plain} plain, "
            f"{rotated} rotating (+{rotated - plain}: sweep, count, activate, pause)"
        )
        for permanent in (0, PERMANENT):
            registry = with_rotating(base, args.syncs, permanent)
            found = scenario(stack, registry, resources, args.run_seconds)
            calls = found["calls"]
            print(
                f"{args.syncs} rotating syncs, {permanent} permanent, "
                f"{found['free']} free slots: {found['ok']}/{args.syncs} succeeded in "
                f"{found['seconds']:.1f} s; floor ceil({args.syncs}/{found['free']}) x "
                f"{args.run_seconds:g} s = {found['floor']:.1f} s (x"
                f"{found['seconds'] / found['floor']:.2f}); peak active {found['peak']}; "
                f"mParticle calls per sync median {statistics.median(calls):.0f}, max "
                f"{max(calls)}; {found['refused']} activations refused (400) and retried"
            )


if __name__ == "__main__":
    main()
