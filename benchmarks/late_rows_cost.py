"""What late-row detection costs in Snowflake: queries per scheduled materialization and per runs
sensor tick, with the recount (``recount_windows`` at its default, one day of hourly windows) and
without it (``recount_windows: 0``). Used by ``sync_bench.py``; prints, asserts nothing.

The scheduled path materializes one partition per Dagster run, oldest first, as a partitioned
schedule does; each run's pre-flight then counts its own window plus the windows before it in the
same grouped query. The sensor tick is a steady-state one: the tick before it recorded every run,
one more hour closes and runs, and the measured tick records it (and recounts the day before it).
Snowflake statements are counted by wrapping the connector in this process (``sync_meter.py``).
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from sync_meter import METER

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.mparticle import clear_token_cache
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.factory import build_sync_asset
from wsync_dagster.sync.assets.translator import WarehouseSyncProps
from wsync_dagster.sync.observe.sensor import RunsWatch, build_runs_sensor
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.workspace import Workspace


@dataclass
class Cost:
    """One setting of ``recount_windows``, measured."""

    label: str
    recount: int
    materializations: int = 0
    failed: int = 0
    queries: int = 0
    late_rows_evaluations: int = 0
    seconds: float = 0.0
    windows_counted: int = 0
    sensor_queries: int = 0
    sensor_windows_counted: int = 0

    @property
    def per_materialization(self) -> float:
        return self.queries / self.materializations if self.materializations else 0.0


def with_recount(registry: Registry, name: str, recount: int | None) -> Registry:
    spec = registry.sync(name).model_copy(update={"recount_windows": recount})
    return registry.model_copy(
        update={"syncs": tuple(spec if s.name == name else s for s in registry.syncs)}
    )


def _statements() -> int:
    return sum(METER.snowflake_statements.values())


def _late_rows_evaluations(events: Sequence[Any]) -> int:
    return sum(
        1
        for e in events
        if isinstance(e, dg.AssetCheckEvaluation) and e.check_name == naming.CHECK_LATE_ROWS
    )


def _sensor_tick(
    registry: Registry, resources: dict[str, Any], instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    workspace = Workspace.of([registry])
    watched = [(bound, naming.asset_key(bound.spec)) for bound in workspace]
    sensor = build_runs_sensor(RunsWatch(workspace, watched))
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def measure_late_rows(
    registry: Registry,
    name: str,
    keys: Sequence[str],
    resources: dict[str, Any],
    control: EmulatorControl,
    instance_factory: Callable[[], dg.DagsterInstance],
    run_config: Any = None,
) -> list[Cost]:
    """Materialize ``keys`` one per run without and with the recount (each from a reset emulator
    and a fresh instance), then measure one steady-state sensor tick both ways."""
    default = registry.sync(name).model_copy(update={"recount_windows": None}).late_row_windows
    settings: list[tuple[str, int | None]] = [
        ("without (recount_windows: 0)", 0),
        (f"with (default: {default})", None),
    ]
    costs = []
    for label, recount in settings:
        variant = with_recount(registry, name, recount)
        asset = build_sync_asset(WarehouseSyncProps(variant.sync(name), variant))
        cost = Cost(label, variant.sync(name).late_row_windows)
        control.reset()
        clear_token_cache()
        with instance_factory() as instance:
            METER.reset()
            started = time.perf_counter()
            for key in keys:
                result = materialize_partitions(
                    [asset], [key], resources=resources, instance=instance, run_config=run_config
                )
                cost.materializations += 1
                cost.failed += not result.success
                evaluations = [
                    e.event_specific_data
                    for e in result.all_events
                    if e.event_type_value == "ASSET_CHECK_EVALUATION"
                ]
                cost.late_rows_evaluations += _late_rows_evaluations(evaluations)
            cost.seconds = time.perf_counter() - started
            cost.queries = _statements()
            cost.windows_counted = METER.windows_counted
        costs.append(cost)

    # One steady-state tick of the runs sensor both ways, from the same cursor.
    with instance_factory() as instance:
        first = _sensor_tick(with_recount(registry, name, 0), resources, instance, None)
        control.advance(3600)  # the next hour closes and runs
        for cost, (_, recount) in zip(costs, settings, strict=True):  # both from the same cursor
            METER.reset()
            _sensor_tick(with_recount(registry, name, recount), resources, instance, first.cursor)
            cost.sensor_queries = _statements()
            cost.sensor_windows_counted = METER.windows_counted
    return costs


def report_late_rows(costs: Sequence[Cost]) -> None:
    without, with_ = costs
    print(
        f"\n3. Late-row detection on the scheduled path: {with_.materializations} hourly partitions "
        "materialized one per run\n   (as the partitioned schedule does), then one steady-state "
        "tick of the runs sensor"
    )
    print(f"{'':46}{without.label:>30}{with_.label:>22}")
    rows: list[tuple[str, float, float, str]] = [
        ("windows recounted per materialization", without.recount, with_.recount, "d"),
        ("Snowflake queries, all runs", without.queries, with_.queries, "d"),
        (
            "Snowflake queries per materialization",
            without.per_materialization,
            with_.per_materialization,
            ".2f",
        ),
        (
            "late_rows evaluations (all runs)",
            without.late_rows_evaluations,
            with_.late_rows_evaluations,
            "d",
        ),
        (
            "windows in the grouped counts, all runs",
            without.windows_counted,
            with_.windows_counted,
            "d",
        ),
        ("wall time, all runs, s", without.seconds, with_.seconds, ".1f"),
        ("Snowflake queries, one sensor tick", without.sensor_queries, with_.sensor_queries, "d"),
        (
            "windows in its grouped count",
            without.sensor_windows_counted,
            with_.sensor_windows_counted,
            "d",
        ),
    ]
    for label, a, b, fmt in rows:
        print(f"{label:46}{a:>30{fmt}}{b:>22{fmt}}")
    extra = with_.per_materialization - without.per_materialization
    print(
        f"  Target: no extra query per materialization: {extra:+.2f} "
        f"({'met' if extra <= 0 else 'MISSED'}); the sensor tick: "
        f"{with_.sensor_queries - without.sensor_queries:+d} "
        f"({'met' if with_.sensor_queries <= without.sensor_queries else 'MISSED'}). The recount "
        "widens each grouped count's scan to the recounted windows (more rows read, same query)."
    )
    for cost in costs:
        if cost.failed:
            print(f"  WARNING {cost.label}: {cost.failed} of {cost.materializations} runs failed")
