"""The plan: how long ``plan`` takes and what it costs, for the sample registry and a 50-sync one.
Prints numbers; asserts nothing.

The local stack (Snowflake stand-in, emulator on a manual clock, seeded sample warehouse) serves
each registry; the plan runs as ``python3 dev.py plan`` runs it (:func:`plan_workspace` over the
served registry). Each registry is planned twice: on an empty workspace (every resource a create,
every closed window pending) and after every sync was reconciled and its catch-up ran (nothing to
change, a sample window each). Reported: wall time and the part the pre-flights take, mParticle
API calls (token requests apart), run listings among them, and Snowflake queries; and, for
comparison, the API calls the same plans would make reading each resource with its own GET
(``Reads(listed=False)``, what a materialization does for its one sync). The pre-flights run one
after the other; their time is the stand-in Snowflake's (fakesnow, on this machine's cores).

The 50-sync registry is 50 copies of the sample's daily ``customer_scores`` (45 of them paused, to
stay within 5 active pipelines), each with its own pipeline and data model.

    .venv/bin/python benchmarks/plan_bench.py
"""

import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.resources import emulator_clock_mparticle, local_snowflake_resource
from wsync_dagster.local.stack import LocalStack, write_registry
from wsync_dagster.mparticle import clear_token_cache
from wsync_dagster.sync.engine import plan as plan_module
from wsync_dagster.sync.engine.plan import WorkspacePlan, plan_workspace
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster.sync.registry.specs import Registry, load_registry
from wsync_dagster.sync.registry.workspace import Workspace

SAMPLE = Path(__file__).resolve().parents[1] / "wsync_dagster/local/defs/warehouse_sync/defs.yaml"
TEMPLATE = "customer_scores"
SYNCS = 50


def fifty(registry: Registry) -> Registry:
    template = registry.sync(TEMPLATE)
    syncs = tuple(
        template.model_copy(update={"name": f"scores_{i:02d}", "paused": i >= 5})
        for i in range(SYNCS)
    )
    return registry.model_copy(update={"syncs": syncs})


def measure(
    registry: Registry,
    resources: dict[str, Any],
    control: EmulatorControl,
    listed: bool = True,
) -> tuple[WorkspacePlan, dict[str, float]]:
    """One plan of ``registry``; its time, API calls, run listings and Snowflake queries."""
    control.clear_request_log()
    original = plan_module.Reads
    if not listed:  # each resource read with its own GET, as a materialization reads its sync's
        plan_module.Reads = lambda client, listed=True: original(client, listed=False)
    try:
        mparticle = resources["mparticle"]
        started = time.monotonic()
        with mparticle.open_client() as client:
            plan = plan_workspace(
                client, resources["snowflake"], Workspace.of([registry]), mparticle.now
            )
        seconds = time.monotonic() - started
    finally:
        plan_module.Reads = original
    calls = [e for e in control.request_log() if e["path"] != "/oauth/token"]
    queries = sum(s.preflight.report.queries for s in plan.syncs if s.preflight.report is not None)
    preflights = sum(
        s.preflight.report.seconds for s in plan.syncs if s.preflight.report is not None
    )
    return plan, {
        "seconds": seconds,
        "preflight_seconds": preflights,
        "calls": len(calls),
        "run_listings": sum("/status/runs" in e["path"] for e in calls),
        "queries": queries,
    }


def scenario(
    label: str, registry: Registry, resources: dict[str, Any], control: EmulatorControl
) -> None:
    control.reset()
    clear_token_cache()
    for state in ("empty workspace", "after reconcile"):
        if state == "after reconcile":
            with resources["mparticle"].open_client() as client:
                for spec in registry.syncs:
                    reconcile(client, registry, spec, control.clock())
            control.settle()
        plan, numbers = measure(registry, resources, control)
        _, gets = measure(registry, resources, control, listed=False)
        print(
            f"{label}, {state}: exit {plan.exit_code} in {numbers['seconds']:.2f} s "
            f"(pre-flights {numbers['preflight_seconds']:.2f} s); {numbers['calls']:.0f} mParticle calls "
            f"({numbers['run_listings']:.0f} run listings; {gets['calls']:.0f} reading each "
            f"resource with a GET), {numbers['queries']:.0f} Snowflake queries",
            flush=True,
        )


def main() -> None:
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    base = load_registry(SAMPLE)
    with tempfile.TemporaryDirectory() as scratch:
        source = write_registry(fifty(base), Path(scratch) / "fifty.yaml")
        for label, registry_source in (("sample (9 syncs)", None), (f"{SYNCS} syncs", source)):
            with (
                tempfile.TemporaryDirectory() as workdir,
                LocalStack(
                    Path(workdir), registry_source=registry_source, manual_clock=True
                ) as stack,
            ):
                os.environ.update(stack.environment())
                resources = {
                    "snowflake": local_snowflake_resource(
                        stack.snowflake.host, stack.snowflake.port
                    ),
                    "mparticle": emulator_clock_mparticle(stack.emulator_url),
                }
                registry = stack.served_workspace().registries[0]  # one registry in each case
                scenario(label, registry, resources, EmulatorControl(stack.emulator_url))


if __name__ == "__main__":
    main()
