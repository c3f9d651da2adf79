"""A schedule per distinct cron of the on_demand syncs: which syncs a tick materializes, in which
runs, and that ticks never pile up (injected tick times and runs in flight; nothing sleeps)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from wsync_dagster import compat
from wsync_dagster.resources import SettingsMissing
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.cron_schedules import (
    CronSync,
    build_cron_schedules,
    plan_tick,
)
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.assets.metadata import RunTags
from wsync_dagster.sync.registry.specs import Registry, parse_registry
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.sync.test_specs import registry as registry_text
from wsync_dagster_tests.sync.test_specs import sync

HOURLY = "15 * * * *"
TICK = datetime(2026, 11, 28, 12, 15, tzinfo=UTC)


def on_demand(name: str, cron: str | None = HOURLY, *, start: str = "2026-11-01T00:00:00Z",
              rotate: bool = True, paused: bool = False) -> str:  # fmt: skip
    timed = f', cron: "{cron}"' if cron else ""
    extra = {"rotate": "true"} if rotate else {}
    if paused:
        extra["paused"] = "true"
    return sync(name, schedule=f"{{interval: on_demand, start: {start}{timed}}}", **extra)


def hourly(name: str) -> str:
    return sync(name, schedule="{interval: hourly, start: 2026-11-25T00:00:00Z}")


def load(*syncs: str) -> Registry:
    return parse_registry(registry_text(*syncs))


def members(registry: Registry) -> list[CronSync]:
    return [CronSync(s, naming.asset_key(s)) for s in registry.syncs if s.schedule.cron]


def definitions(registry: Registry) -> dg.Definitions:
    pairs = [(s, naming.asset_key(s)) for s in registry.syncs]
    resources = {k: SettingsMissing(resource_name=k) for k in ("snowflake", "mparticle")}
    return dg.Definitions.merge(
        dg.Definitions(assets=build_sync_assets(registry), resources=resources),
        build_cron_schedules(pairs, Workspace.of([registry])),
    )


def evaluate(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, tick: datetime) -> Any:
    schedule = defs.resolve_schedule_def(name)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
        return schedule.evaluate_tick(context)


ORIGIN = compat.RemoteRepositoryOrigin(
    compat.ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=compat.LoadableTargetOrigin(module_name="somewhere.definitions"),
        location_name="somewhere",
    ),
    "__repository__",
).get_job_origin("__ASSET_JOB")


def queued(instance: dg.DagsterInstance, run_id: str, *keys: dg.AssetKey) -> dg.DagsterRun:
    """A run waiting in the run queue (as the daemon's queue holds it) to materialize ``keys``."""
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id=run_id,
        status=dg.DagsterRunStatus.QUEUED,
        asset_selection=frozenset(keys),
        remote_job_origin=ORIGIN,
    )
    instance.add_run(run)
    return run


def key(name: str) -> dg.AssetKey:
    return dg.AssetKey([naming.KEY_PREFIX, name])


def test_a_tick_materializes_every_due_sync_and_says_why_the_others_wait() -> None:
    registry = load(
        hourly("events"),  # an interval sync: mParticle's grid, never a cron
        on_demand("alpha"),
        on_demand("bravo", start="2026-11-28T12:16:00Z"),  # starts after the tick
        on_demand("charlie", rotate=False, paused=True),
        on_demand("delta"),
        on_demand("echo"),
        on_demand("foxtrot", rotate=False),
    )
    plan = plan_tick(members(registry), TICK, {key("echo"): "run 1234abcd (queued)"}, 2)
    assert plan.due == ["foxtrot", "alpha", "delta"]
    assert [[s.name for s in run] for run in plan.runs] == [["foxtrot"], ["alpha"], ["delta"]]
    assert plan.skipped == (
        "'bravo' is not due: its schedule starts at 2026-11-28T12:16Z",
        "'charlie' is not due: it is paused (paused: true)",
        "'echo' skipped: run 1234abcd (queued) is still materializing it; its rows since its last "
        "success go with the next tick",
    )


@pytest.mark.parametrize(("slots", "runs"), [(1, 1), (2, 2), (5, 5), (9, 7)])
def test_rotating_syncs_go_round_robin_into_one_run_per_free_slot(slots: int, runs: int) -> None:
    registry = load(*(on_demand(f"table_{i}") for i in range(7)))
    plan = plan_tick(members(registry), TICK, {}, slots)
    assert len(plan.runs) == runs
    assert sorted(plan.due) == [f"table_{i}" for i in range(7)]
    assert [s.name for s in plan.runs[0]] == [f"table_{i}" for i in range(0, 7, runs)]
    sizes = [len(run) for run in plan.runs]
    assert max(sizes) - min(sizes) <= 1


def test_one_stopped_schedule_and_job_per_distinct_cron() -> None:
    registry = load(
        hourly("events"),
        on_demand("alpha"),
        on_demand("bravo", cron="15  *  * * *"),  # the same cron, written otherwise
        on_demand("charlie", cron="*/30 9-17 * * MON-FRI"),
        on_demand("delta", cron=None),  # materialized by hand or by automation only
    )
    defs = definitions(registry)
    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    assert sorted(schedules) == [
        "wsync_on_demand_cron_15_x_x_x_x_schedule",
        "wsync_on_demand_cron_xs30_9t17_x_x_montfri_schedule",
    ]
    hourly_schedule = schedules["wsync_on_demand_cron_15_x_x_x_x_schedule"]
    assert hourly_schedule.cron_schedule == HOURLY
    assert hourly_schedule.execution_timezone == "UTC"
    assert hourly_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    job = defs.resolve_job_def("wsync_on_demand_cron_15_x_x_x_x_job")
    assert job.asset_layer.executable_asset_keys == {key("alpha"), key("bravo")}


def test_a_tick_requests_its_runs_with_the_tick_and_a_stable_run_key() -> None:
    registry = load(*(on_demand(name) for name in ("alpha", "bravo", "charlie")))
    defs = definitions(registry)
    with dg.instance_for_test() as instance:
        result = evaluate(defs, "wsync_on_demand_cron_15_x_x_x_x_schedule", instance, TICK)
        again = evaluate(defs, "wsync_on_demand_cron_15_x_x_x_x_schedule", instance, TICK)
    requests = result.run_requests or []
    # No permanent sync in this registry: 5 free slots, one rotating sync per run.
    assert [sorted(k.path[-1] for k in r.asset_selection or ()) for r in requests] == [
        ["alpha"],
        ["bravo"],
        ["charlie"],
    ]
    assert {r.tags[RunTags.CRON_TICK] for r in requests} == {"2026-11-28T12:15:00Z"}
    assert [r.run_key for r in requests] == [r.run_key for r in again.run_requests or []]
    assert all((r.run_key or "").startswith("2026-11-28T12:15Z/") for r in requests)


def test_a_sync_still_being_materialized_is_skipped_and_the_tick_says_so() -> None:
    registry = load(on_demand("alpha"), on_demand("bravo"))
    defs = definitions(registry)
    name = "wsync_on_demand_cron_15_x_x_x_x_schedule"
    with dg.instance_for_test() as instance:
        queued(instance, "aaaaaaaa-run", key("alpha"), key("unrelated"))
        partly = evaluate(defs, name, instance, TICK)
        queued(instance, "bbbbbbbb-run", key("bravo"))
        none = evaluate(defs, name, instance, TICK)
    assert [[k.path[-1] for k in r.asset_selection or ()] for r in partly.run_requests or []] == [
        ["bravo"]
    ]
    assert not none.run_requests
    assert none.skip_message == (
        "'alpha' skipped: run aaaaaaaa (queued) is still materializing it; its rows since its "
        "last success go with the next tick; 'bravo' skipped: run bbbbbbbb (queued) is still "
        "materializing it; its rows since its last success go with the next tick"
    )


def test_a_run_of_the_cron_job_without_a_selection_holds_all_its_syncs() -> None:
    registry = load(on_demand("alpha"), on_demand("bravo"))
    defs = definitions(registry)
    with dg.instance_for_test() as instance:
        run = dg.DagsterRun(
            job_name="wsync_on_demand_cron_15_x_x_x_x_job",
            run_id="cccccccc-whole-job",
            status=dg.DagsterRunStatus.STARTED,
        )
        instance.add_run(run)
        result = evaluate(defs, "wsync_on_demand_cron_15_x_x_x_x_schedule", instance, TICK)
    assert not result.run_requests
    assert "run cccccccc (started)" in (result.skip_message or "")


def test_ticks_never_pile_up_when_runs_do_not_finish() -> None:
    """Twelve ticks while no run ever ends (a workspace whose crons ask for more than its slots can
    serve): only the first tick queues runs; the others are skipped, so the queue stays at one run
    per slot. When the runs end, the next tick requests every sync again."""
    registry = load(*(on_demand(f"table_{i}") for i in range(6)), hourly("a"), hourly("b"),
                    hourly("c"))  # fmt: skip
    defs = definitions(registry)  # 3 permanent syncs: 2 free slots
    name = "wsync_on_demand_cron_15_x_x_x_x_schedule"
    launched: list[dg.DagsterRun] = []
    skipped = 0
    with dg.instance_for_test() as instance:
        for hour in range(12):
            result = evaluate(defs, name, instance, TICK + timedelta(hours=hour))
            for index, request in enumerate(result.run_requests or []):
                run_id = f"{hour:04d}{index:04d}-tick"
                launched.append(queued(instance, run_id, *(request.asset_selection or ())))
            skipped += result.skip_message is not None
        assert len(launched) == 2 and skipped == 11
        for run in launched:
            instance.report_run_failed(run)
        after = evaluate(defs, name, instance, TICK + timedelta(hours=12))
    assert sorted(
        k.path[-1] for r in after.run_requests or () for k in r.asset_selection or ()
    ) == [f"table_{i}" for i in range(6)]


def test_a_defaults_block_puts_many_syncs_on_one_cron_in_the_code_location(tmp_path) -> None:
    """The registry of dozens of tables: one ``defaults:`` line, one schedule for all of them."""
    from wsync_dagster.code_location import build_definitions
    from wsync_dagster.component import WarehouseSyncComponent
    from wsync_dagster_tests.sync.test_specs import short, with_defaults

    defaults = (
        "defaults:\n"
        '  schedule: {interval: on_demand, start: 2026-11-01T00:00:00Z, cron: "15 * * * *"}\n'
        "  load_timestamp: {column: UPDATED_AT, type: timestamp_ntz}\n"
        "  rotate: true\n"
        "  feed_key_env: FEED_KEY\n"
    )
    path = tmp_path / "syncs.yaml"
    path.write_text(with_defaults(*(short(f"t{i:02d}") for i in range(12)), defaults=defaults))
    component = WarehouseSyncComponent.from_registry_file(path)
    assert {s.schedule.cron for s in component.registry.syncs} == {HOURLY}
    resources = {k: SettingsMissing(resource_name=k) for k in ("snowflake", "mparticle")}
    defs = build_definitions({}, resources=resources, components=[component])
    names = [s.name for s in defs.get_repository_def().schedule_defs]
    assert names == ["wsync_on_demand_cron_15_x_x_x_x_schedule"]
    job = defs.resolve_job_def("wsync_on_demand_cron_15_x_x_x_x_job")
    assert len(job.asset_layer.executable_asset_keys) == 12
