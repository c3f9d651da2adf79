"""The runs sensor against the emulator: what it records, its cursor, dedup, failures and paging."""

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import dagster as dg
import pytest

from wsync_dagster.compat import BulkActionStatus, PartitionBackfill
from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster.sync.observe.batch import ObserveLimits, parse_cursor
from wsync_dagster.sync.observe.reading import DEFAULT_LIMITS
from wsync_dagster.sync.observe.sensor import RunsWatch, build_runs_sensor
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import failure_message, materialize

HOURLY = "ticket_activity"
ON_DEMAND = "churn_risk_alerts"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def only(registry: Registry, *names: str) -> Registry:
    return registry.model_copy(update={"syncs": tuple(registry.sync(n) for n in names)})


def set_up(registry: Registry, resources: dict[str, Any], control: EmulatorControl) -> None:
    """Create the registry's pipelines in mParticle outside Dagster; let catch-up run."""
    with resources["mparticle"].open_client() as client:
        for spec in registry.syncs:
            reconcile(client, registry, spec, SAMPLE_ANCHOR)
    control.settle()


def tick(
    instance: dg.DagsterInstance,
    registry: Registry | Sequence[Registry],
    resources: dict[str, Any],
    cursor: str | None,
    limits: ObserveLimits = DEFAULT_LIMITS,
    clock: Callable[[], float] = time.monotonic,
) -> dg.SensorResult:
    """One evaluation, its events stored as the sensor daemon stores them (``registry``: one, or
    every registry of a code location)."""
    workspace = Workspace.of([registry] if isinstance(registry, Registry) else registry)
    watched = [(bound, naming.asset_key(bound.spec)) for bound in workspace]
    watch = RunsWatch(workspace, watched, limits, clock)
    sensor = build_runs_sensor(watch)
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def materialized(instance: dg.DagsterInstance, name: str) -> dict[str, list[dict[str, Any]]]:
    """Partition ('' unpartitioned) -> metadata of each materialization of ``name``, oldest first."""
    key = dg.AssetKey([naming.KEY_PREFIX, name])
    records = instance.fetch_materializations(key, limit=10_000, ascending=True).records
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        m = record.asset_materialization
        assert m is not None
        meta = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
        found.setdefault(m.partition or "", []).append(meta)
    return found


def emulator_runs(resources: dict[str, Any], registry: Registry, name: str) -> list[PipelineRun]:
    with resources["mparticle"].open_client() as client:
        return list(client.iter_pipeline_runs(registry.sync(name).resolved_pipeline_id))


def check_evaluations(instance: dg.DagsterInstance, name: str) -> list[dg.AssetCheckEvaluation]:
    """The evaluations of ``name``'s parity check on record."""
    key = dg.AssetCheckKey(dg.AssetKey([naming.KEY_PREFIX, name]), naming.CHECK_PREFLIGHT_PARITY)
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=1000)
    found = []
    for record in history:
        data = record.event.dagster_event.event_specific_data if record.event else None
        if isinstance(data, dg.AssetCheckEvaluation):
            found.append(data)
    return found


def caught_up_hourly(
    registry: Registry, resources: dict[str, Any], control: EmulatorControl
) -> tuple[Registry, list[PipelineRun], list[str]]:
    """The hourly sync alone, its 72 catch-up runs made, and their partition keys (oldest first)."""
    hourly = only(registry, HOURLY)
    set_up(hourly, resources, control)
    runs = emulator_runs(resources, hourly, HOURLY)
    keys = sorted(r.logical_date.strftime("%Y-%m-%d-%H:%M") for r in runs if r.logical_date)
    return hourly, runs, keys


def test_one_tick_records_every_catch_up_run_then_nothing_twice(
    registry, resources, control, instance
) -> None:
    hourly, runs, keys = caught_up_hourly(registry, resources, control)
    assert len(runs) == 72 and all(r.pipeline_run_state == "success" for r in runs)

    first = tick(instance, hourly, resources, None)
    found = materialized(instance, HOURLY)
    spec = hourly.sync(HOURLY)
    assert sorted(found) == keys
    assert all(len(metas) == 1 for metas in found.values())
    meta = next(iter(found.values()))[0]
    assert meta["wsync/recorded_by"] == "wsync_runs_sensor"
    assert meta["mparticle/pipeline_id"] == spec.resolved_pipeline_id
    assert meta["preflight/rows"] == meta["mparticle/records_extracted"]
    # The Columns tab reads the latest materialization: the sensor's carry the schema too.
    roles = {c.name: c.tags.get("wsync/role") for c in meta["dagster/column_schema"].columns}
    assert roles[spec.load_timestamp.column] == "load_timestamp" and "identity" in roles.values()
    assert {m[0]["mparticle/run_id"] for m in found.values()} == {r.pipeline_run_id for r in runs}
    mark = parse_cursor(first.cursor)[spec.resolved_pipeline_id]
    assert mark.run_id == max(r.pipeline_run_id for r in runs)

    second = tick(instance, hourly, resources, first.cursor)
    assert second.asset_events == [] and second.skip_reason is not None
    assert '"run_listings": 1' in (second.skip_reason.skip_message or "")
    assert sum(len(m) for m in materialized(instance, HOURLY).values()) == 72


def test_runs_a_dagster_run_recorded_are_not_recorded_again(
    registry, resources, control, instance
) -> None:
    hourly, _, keys = caught_up_hourly(registry, resources, control)
    last_six = keys[-6:]
    result = materialize(hourly, resources, HOURLY, last_six, instance=instance)
    assert result.success, failure_message(result)

    tick(instance, hourly, resources, None)
    found = materialized(instance, HOURLY)
    assert len(found) == 72 and all(len(metas) == 1 for metas in found.values())
    by_sensor = [k for k, m in found.items() if m[0].get("wsync/recorded_by")]
    assert sorted(set(found) - set(by_sensor)) == last_six


def test_a_failed_run_is_a_failed_check_on_its_partition(
    registry, resources, control, instance
) -> None:
    hourly = only(registry, HOURLY)
    pipeline_id = hourly.sync(HOURLY).resolved_pipeline_id
    control.fail_next_run("The warehouse rejected the query: boom", pipeline_id)
    set_up(hourly, resources, control)
    failed = [
        r for r in emulator_runs(resources, hourly, HOURLY) if r.pipeline_run_state == "failed"
    ]
    assert len(failed) == 1 and failed[0].logical_date is not None
    failed_key = failed[0].logical_date.strftime("%Y-%m-%d-%H:%M")

    tick(instance, hourly, resources, None)
    found = materialized(instance, HOURLY)
    assert failed_key not in found and len(found) == 71
    evaluations = check_evaluations(instance, HOURLY)
    assert len(evaluations) == 1 and not evaluations[0].passed
    evaluation = evaluations[0]
    assert evaluation.partition == failed_key
    assert evaluation.severity is dg.AssetCheckSeverity.ERROR
    assert "boom" in (evaluation.description or "")


def test_a_long_history_is_worked_through_over_several_bounded_ticks(
    registry, resources, control, instance
) -> None:
    hourly, _, _ = caught_up_hourly(registry, resources, control)
    limits = ObserveLimits(page_size=20, max_runs_per_pipeline=15, max_listings_per_pipeline=4)
    cursor = None
    recorded_per_tick = []
    for _ in range(10):
        result = tick(instance, hourly, resources, cursor, limits)
        recorded_per_tick.append(
            sum(isinstance(e, dg.AssetMaterialization) for e in result.asset_events)
        )
        cursor = result.cursor
    assert recorded_per_tick == [15, 15, 15, 15, 12, 0, 0, 0, 0, 0]
    found = materialized(instance, HOURLY)
    assert len(found) == 72 and all(len(metas) == 1 for metas in found.values())


def test_one_pipelines_failing_listing_never_holds_up_the_others(
    registry, resources, control, instance
) -> None:
    both = only(registry, "customer_scores", HOURLY)  # the failing one is read first
    set_up(both, resources, control)
    daily_id = both.sync("customer_scores").resolved_pipeline_id
    control.fail_requests(10, status=503, path=f"{daily_id}/status/runs")

    cut = tick(instance, both, resources, None)
    notes = cut.skip_reason.skip_message if cut.skip_reason else ""
    assert f"could not read the runs of 'customer_scores' ({daily_id})" in (notes or "")
    marks = parse_cursor(cut.cursor)
    assert daily_id not in marks and both.sync(HOURLY).resolved_pipeline_id in marks
    assert len(materialized(instance, HOURLY)) == 72 and not materialized(
        instance, "customer_scores"
    )

    control.clear_faults()
    control.throttle(1, path=f"{daily_id}/status/runs")  # one 429: retried within the small budget
    resumed = tick(instance, both, resources, cut.cursor)
    daily_runs = emulator_runs(resources, both, "customer_scores")
    assert len(materialized(instance, "customer_scores")) == len(daily_runs) > 0
    assert len(materialized(instance, HOURLY)) == 72
    assert daily_id in parse_cursor(resumed.cursor)


def test_throttling_that_outlasts_the_retries_stops_new_reads_and_the_next_tick_resumes(
    registry, resources, control, instance
) -> None:
    both = only(registry, HOURLY, "customer_scores")
    set_up(both, resources, control)
    hourly_id = both.sync(HOURLY).resolved_pipeline_id
    control.throttle(10, path=f"{hourly_id}/status/runs")  # the workspace says: slow down
    one_at_a_time = replace(DEFAULT_LIMITS, parallel_listings=1)  # no read was under way

    cut = tick(instance, both, resources, None, one_at_a_time)
    notes = (cut.skip_reason.skip_message if cut.skip_reason else "") or ""
    assert "mParticle refused to list runs" in notes
    assert "'ticket_activity', 'customer_scores' wait a tick" in notes
    assert parse_cursor(cut.cursor) == {}
    assert not materialized(instance, HOURLY) and not materialized(instance, "customer_scores")

    control.clear_faults()
    resumed = tick(instance, both, resources, cut.cursor, one_at_a_time)
    assert len(materialized(instance, HOURLY)) == 72
    assert set(parse_cursor(resumed.cursor)) == {
        hourly_id,
        both.sync("customer_scores").resolved_pipeline_id,
    }


def test_a_sync_never_materialized_does_not_stall_the_others(
    registry, resources, control, instance
) -> None:
    created = only(registry, HOURLY)
    set_up(created, resources, control)  # the hourly pipeline exists; the daily one does not
    new_first = only(registry, "customer_scores", HOURLY)
    daily_id = new_first.sync("customer_scores").resolved_pipeline_id

    result = tick(instance, new_first, resources, None)
    assert len(materialized(instance, HOURLY)) == 72
    notes = (result.skip_reason.skip_message if result.skip_reason else "") or ""
    assert notes.count(daily_id) == 1
    assert f"no pipeline in mParticle yet for 'customer_scores' ({daily_id})" in notes
    assert daily_id not in parse_cursor(result.cursor)


def test_an_on_demand_run_triggered_outside_dagster_is_an_unpartitioned_materialization(
    registry, resources, control, instance
) -> None:
    on_demand = only(registry, ON_DEMAND)
    set_up(on_demand, resources, control)
    pipeline_id = on_demand.sync(ON_DEMAND).resolved_pipeline_id
    with resources["mparticle"].open_client() as client:
        triggered = client.trigger_pipeline(pipeline_id)
    control.settle()

    tick(instance, on_demand, resources, None)
    found = materialized(instance, ON_DEMAND)
    assert list(found) == [""] and len(found[""]) == 1
    meta = found[""][0]
    assert meta["mparticle/run_id"] == triggered.pipeline_run_id
    assert meta["mparticle/run_type"] == "manual"
    assert meta["preflight/rows"] == meta["mparticle/records_extracted"] > 0


@pytest.mark.parametrize(
    "scheduled",
    [False, True],
    ids=["a backfill run over a range", "a schedule's run, which selects no asset"],
)
def test_partitions_a_dagster_run_in_flight_is_syncing_wait_for_that_run(
    registry, resources, control, instance, scheduled: bool
) -> None:
    """A partitioned schedule's run names no asset (its job is the sync's own): its partition
    waits too, or the sensor and the run would both record the same mParticle run."""
    hourly, _, keys = caught_up_hourly(registry, resources, control)
    if scheduled:
        job_name = naming.job_name(naming.sync_stem(hourly.sync(HOURLY)))
        tags, selection, first = {"dagster/partition": keys[12]}, None, 12
    else:
        job_name = "__ASSET_JOB"
        tags = {
            "dagster/asset_partition_range_start": keys[10],
            "dagster/asset_partition_range_end": keys[15],
        }
        selection, first = frozenset({dg.AssetKey([naming.KEY_PREFIX, HOURLY])}), 10
    in_flight = dg.DagsterRun(
        job_name=job_name,
        run_id="in-flight",
        status=dg.DagsterRunStatus.STARTED,
        tags=tags,
        asset_selection=selection,
    )
    instance.add_run(in_flight)

    held = tick(instance, hourly, resources, None)
    assert sorted(materialized(instance, HOURLY)) == keys[:first]
    assert held.skip_reason is not None and "waits for the Dagster run" in str(held.skip_reason)

    instance.report_run_failed(in_flight)
    tick(instance, hourly, resources, held.cursor)
    assert sorted(materialized(instance, HOURLY)) == keys


def test_an_unfinished_backfill_holds_its_assets_until_it_ends(
    registry, resources, control, instance
) -> None:
    """Its runs will report their partitions (even if its daemon is down between two of them)."""
    hourly, _, keys = caught_up_hourly(registry, resources, control)
    backfill = PartitionBackfill(
        backfill_id="unfinished",
        status=BulkActionStatus.REQUESTED,
        from_failure=False,
        tags={},
        backfill_timestamp=0.0,
        asset_selection=[dg.AssetKey([naming.KEY_PREFIX, HOURLY])],
    )
    instance.add_backfill(backfill)

    held = tick(instance, hourly, resources, None)
    assert materialized(instance, HOURLY) == {}
    assert held.skip_reason is not None and "waits for the Dagster run" in str(held.skip_reason)

    instance.update_backfill(backfill.with_status(BulkActionStatus.COMPLETED_SUCCESS))
    tick(instance, hourly, resources, held.cursor)
    assert sorted(materialized(instance, HOURLY)) == keys
