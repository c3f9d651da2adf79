"""The runs sensor at scale: one tick at 30 and at 100 pipelines. Prints numbers; asserts nothing.

The local stack runs (the Snowflake stand-in and the emulator, each its own process; the emulator
on its manual clock). For each size N, the emulator starts empty and N hourly syncs (copies of the
sample's ``ticket_activity``, each its own pipeline, starting ``--hours`` before the anchor) are
created in it and caught up. Then the sensor is evaluated as the daemon evaluates it, three times:

* **catch-up**: an empty cursor, ``--hours`` finished runs per pipeline to record;
* **quiet**: right after, nothing new (the steady state between two intervals);
* **hourly**: the emulator's clock moved one hour, one new run per pipeline to record.

Each size runs twice: with loopback API calls (~1 ms), and with every Warehouse Sync call taking
``--latency`` seconds (the emulator's ``latency`` fault; tokens are fetched once, before). Reported
per tick: wall seconds, API calls (the emulator's request log), Snowflake queries and connections
(the connector, counted in this process), runs recorded, the tick's notes, and the seconds each step
of the tick took (reading runs, counting in Snowflake, recording). The sensor's budget:
no new pipeline is read after ``ObserveLimits.tick_seconds`` (20 s); the daemon's timeout is 60 s.

    .venv/bin/python benchmarks/sensor_bench.py [--pipelines 30 100] [--hours 6] [--latency 0.25]
        [--parallel N]
"""

import argparse
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from sync_meter import METER, instrument_snowflake

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.resources import emulator_mparticle, local_snowflake_resource
from wsync_dagster.local.sample_data import SampleConfig
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.local.stack import LocalStack, local_registry, write_registry
from wsync_dagster.mparticle import clear_token_cache
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster.sync.observe import sensor
from wsync_dagster.sync.observe.reading import DEFAULT_LIMITS
from wsync_dagster.sync.observe.sensor import RunsWatch, build_runs_sensor
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, load_registry
from wsync_dagster.sync.registry.workspace import Workspace

TEMPLATE = "ticket_activity"


def hourly_registry(sample: SampleConfig, count: int, hours: int) -> Registry:
    """``count`` hourly copies of the template, each its own pipeline, ``hours`` before the anchor
    (the sample's own registry pointed at the local stand-in)."""
    base = local_registry(load_registry(SAMPLE_REGISTRY), sample.anchor)
    template = base.sync(TEMPLATE)
    start = sample.anchor - timedelta(hours=hours)
    syncs = tuple(
        template.model_copy(
            update={
                "name": f"hourly_{i:03d}",
                "schedule": template.schedule.model_copy(update={"start": start}),
            }
        )
        for i in range(count)
    )
    limits = Limits(max_active_pipelines=count)
    return base.model_copy(update={"syncs": syncs, "limits": limits})


# The steps of a tick (sync/observe/sensor.py: observe_tick), timed where they are looked up.
PHASES = {
    "read_runs": "list",
    "count_runs": "count",
    "busy_partitions": "record",
    "record": "record",
    "sweep_rotating": "list",
}
PHASE_SECONDS: dict[str, float] = {}


def time_phases() -> None:
    """Wrap each step of a tick with a timer (a step missing from the module is skipped)."""
    for name, phase in PHASES.items():
        step = getattr(sensor, name, None)
        if step is None:
            continue

        def timed(*args: Any, _step: Any = step, _phase: str = phase, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _step(*args, **kwargs)
            finally:
                PHASE_SECONDS[_phase] = PHASE_SECONDS.get(_phase, 0.0) + (
                    time.perf_counter() - started
                )

        setattr(sensor, name, timed)


@dataclass
class TickResult:
    kind: str
    seconds: float
    phases: dict[str, float]
    api_calls: int
    snowflake_queries: int
    snowflake_connections: int
    recorded: int
    notes: list[str]


class Bench:
    def __init__(self, stack: LocalStack, limits: Any) -> None:
        self.stack = stack
        self.control = EmulatorControl(stack.emulator_url)
        self.limits = limits
        self.resources = {
            "snowflake": local_snowflake_resource(stack.snowflake.host, stack.snowflake.port),
            # The real clock: the sensor never waits, and a manual-clock resource would read the
            # emulator's clock over HTTP at every call (harness cost, not the sensor's).
            "mparticle": emulator_mparticle(stack.emulator_url, manual_clock=False),
        }

    def set_up(self, registry: Registry) -> None:
        """The emulator empty, then every pipeline created and its catch-up run."""
        self.control.reset()
        clear_token_cache()
        with self.resources["mparticle"].open_client() as client:
            for spec in registry.syncs:
                reconcile(client, registry, spec, self.control.clock())
        self.control.settle()

    def tick(
        self, kind: str, registry: Registry, instance: dg.DagsterInstance, cursor: str | None
    ) -> tuple[TickResult, str | None]:
        workspace = Workspace.of([registry])
        watched = [(bound, naming.asset_key(bound.spec)) for bound in workspace]
        sensor = build_runs_sensor(RunsWatch(workspace, watched, self.limits))
        with self.resources["mparticle"].open_client() as client:
            client.list_connections()  # the token, fetched before the tick (cached per process)
        self.control.clear_request_log()
        METER.reset()
        PHASE_SECONDS.clear()
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=self.resources
        ) as context:
            started = time.perf_counter()
            result = sensor(context)
            seconds = time.perf_counter() - started
        assert isinstance(result, dg.SensorResult)
        calls = [e for e in self.control.request_log() if not e["path"].endswith("/oauth/token")]
        for event in result.asset_events:  # stored as the daemon stores them (not timed)
            instance.report_runless_asset_event(event)
        summary: dict[str, Any] = {}
        if result.skip_reason and result.skip_reason.skip_message:
            summary = json.loads(result.skip_reason.skip_message)
        recorded = sum(isinstance(e, dg.AssetMaterialization) for e in result.asset_events)
        return TickResult(
            kind,
            seconds,
            dict(PHASE_SECONDS),
            len(calls),
            sum(METER.snowflake_statements.values()),
            METER.snowflake_connections,
            recorded,
            list(summary.get("notes", [])),
        ), result.cursor

    def ticks(self, registry: Registry, latency: float) -> list[TickResult]:
        self.set_up(registry)
        self.control.set_latency(latency)
        found = []
        with dg.instance_for_test() as instance:
            first, cursor = self.tick("catch-up", registry, instance, None)
            quiet, cursor = self.tick("quiet", registry, instance, cursor)
            self.control.set_latency(0)
            self.control.advance(3600)  # one more closed hour: a run per pipeline
            self.control.set_latency(latency)
            hourly, cursor = self.tick("hourly", registry, instance, cursor)
            found += [first, quiet, hourly]
        self.control.clear_faults()
        return found


def report(size: int, latency: float, results: list[TickResult]) -> None:
    for r in results:
        note = f"  notes: {'; '.join(r.notes)[:160]}" if r.notes else ""
        phases = " / ".join(f"{r.phases.get(p, 0.0):.1f}" for p in ("list", "count", "record"))
        print(
            f"{size:>9} {latency * 1000:>8.0f} ms  {r.kind:<9}{r.seconds:>8.2f} s  {phases:<18}"
            f"{r.api_calls:>6}{r.snowflake_queries:>10}{r.snowflake_connections:>8}"
            f"{r.recorded:>10}{note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="pipelines read at once (ObserveLimits.parallel_listings; default: the sensor's own)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    instrument_snowflake()
    logging.disable(logging.INFO)  # the sensor logs its summary at each tick; printed here instead
    time_phases()
    limits = DEFAULT_LIMITS
    if args.parallel is not None:
        limits = replace(limits, parallel_listings=args.parallel)
    sample = SampleConfig()
    largest = hourly_registry(sample, max(args.pipelines), args.hours)
    with tempfile.TemporaryDirectory() as workdir:
        source = write_registry(largest, Path(workdir) / "registry.yaml")
        with LocalStack(
            Path(workdir), sample=sample, registry_source=source, manual_clock=True
        ) as stack:
            os.environ.update(stack.environment())
            bench = Bench(stack, limits)
            print(
                f"runs sensor, one tick at N hourly pipelines ({args.hours} h of catch-up each); "
                f"budget {limits.tick_seconds:g} s, "
                f"{getattr(limits, 'parallel_listings', 1)} pipeline(s) read at once; seconds per "
                "step: list (runs read, rotating sweep) / count (Snowflake) / record (dedup, events)"
            )
            print(
                f"{'pipelines':>9} {'latency':>11}  {'tick':<9}{'seconds':>10}  "
                f"{'list/count/record':<18}{'API':>6}{'SF query':>10}{'SF conn':>8}{'recorded':>10}"
            )
            for size in args.pipelines:
                registry = hourly_registry(sample, size, args.hours)
                for latency in (0.0, args.latency):
                    report(size, latency, bench.ticks(registry, latency))


if __name__ == "__main__":
    main()
