"""One job and one partitioned schedule per cadence, ticking as each interval closes."""

from datetime import timedelta

import dagster as dg

from wsync_dagster.resources import SettingsMissing
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.assets.schedules import build_schedules
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR


def _definitions(registry: Registry) -> dg.Definitions:
    assets = build_sync_assets(registry)
    resources = {key: SettingsMissing(resource_name=key) for key in ("snowflake", "mparticle")}
    return dg.Definitions.merge(
        dg.Definitions(assets=assets, resources=resources),
        build_schedules([(spec, naming.asset_key(spec)) for spec in registry.syncs]),
    )


def test_each_cadence_gets_a_job_and_a_schedule_on_its_grid(registry: Registry) -> None:
    defs = _definitions(registry)
    hourly = defs.resolve_schedule_def("wsync_hourly_job_schedule")
    daily = defs.resolve_schedule_def("wsync_daily_job_schedule")
    assert hourly.cron_schedule == "0 * * * *" and daily.cron_schedule == "0 0 * * *"
    assert hourly.execution_timezone == "UTC"
    assert {s.name for s in defs.get_repository_def().schedule_defs} == {
        "wsync_hourly_job_schedule",
        "wsync_daily_job_schedule",
    }  # on_demand and once syncs are not scheduled
    job = defs.resolve_job_def("wsync_hourly_job")
    assert job.asset_layer.executable_asset_keys == {dg.AssetKey(["mparticle", "ticket_activity"])}


def test_a_tick_requests_the_interval_that_just_closed(registry: Registry) -> None:
    defs = _definitions(registry)
    schedule = defs.resolve_schedule_def("wsync_hourly_job_schedule")
    tick = SAMPLE_ANCHOR + timedelta(hours=1)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        result = schedule.evaluate_tick(context)
    assert [r.partition_key for r in result.run_requests or []] == [
        SAMPLE_ANCHOR.strftime("%Y-%m-%d-%H:%M")
    ]


def test_syncs_of_one_cadence_on_different_grids_get_a_job_each(registry: Registry) -> None:
    other = registry.sync("ticket_activity")
    moved = other.model_copy(
        update={
            "name": "ticket_activity_quarter_past",
            "schedule": other.schedule.model_copy(
                update={"start": other.schedule.start + timedelta(minutes=15)}
            ),
        }
    )
    defs = _definitions(registry.model_copy(update={"syncs": (*registry.syncs, moved)}))
    second = defs.resolve_schedule_def("wsync_hourly_job_2_schedule")
    assert second.cron_schedule == "15 * * * *"
