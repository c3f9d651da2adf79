"""A job and a partitioned schedule per interval sync, ticking as each interval closes; one
unscheduled job per other cadence. Names: docs/jobs-and-schedules.md."""

from datetime import timedelta

import dagster as dg

from wsync_dagster.resources import SettingsMissing
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.cron_schedules import build_cron_schedules
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.assets.in_flight import job_assets
from wsync_dagster.sync.assets.schedules import build_schedules
from wsync_dagster.sync.registry.cadences import CADENCES
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR


def _definitions(registry: Registry) -> dg.Definitions:
    assets = build_sync_assets(registry)
    resources = {key: SettingsMissing(resource_name=key) for key in ("snowflake", "mparticle")}
    return dg.Definitions.merge(
        dg.Definitions(assets=assets, resources=resources),
        build_schedules([(spec, naming.asset_key(spec)) for spec in registry.syncs]),
    )


def test_each_interval_sync_gets_a_job_and_a_schedule_on_its_grid(registry: Registry) -> None:
    defs = _definitions(registry)
    hourly = defs.resolve_schedule_def("wsync_hourly_ticket_activity_schedule")
    daily = defs.resolve_schedule_def("wsync_daily_customer_scores_schedule")
    assert hourly.cron_schedule == "0 * * * *" and daily.cron_schedule == "0 0 * * *"
    assert hourly.execution_timezone == "UTC"
    assert {s.name for s in defs.get_repository_def().schedule_defs} == {
        "wsync_hourly_ticket_activity_schedule",
        "wsync_daily_customer_scores_schedule",
    }  # on_demand and once syncs are not scheduled
    job = defs.resolve_job_def("wsync_hourly_ticket_activity_job")
    assert job.asset_layer.executable_asset_keys == {dg.AssetKey(["mparticle", "ticket_activity"])}
    assert hourly.job_name == job.name
    on_demand = defs.resolve_job_def("wsync_on_demand_job")
    assert {k.path[-1] for k in on_demand.asset_layer.executable_asset_keys} == {
        s.name for s in registry.syncs if s.schedule.interval == "on_demand"
    }


def test_a_tick_requests_the_interval_that_just_closed(registry: Registry) -> None:
    defs = _definitions(registry)
    schedule = defs.resolve_schedule_def("wsync_hourly_ticket_activity_schedule")
    tick = SAMPLE_ANCHOR + timedelta(hours=1)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context,
    ):
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
    defs = _definitions(registry.model_copy(update={"syncs": (moved, *registry.syncs)}))
    second = defs.resolve_schedule_def("wsync_hourly_ticket_activity_quarter_past_schedule")
    assert second.cron_schedule == "15 * * * *"
    first = defs.resolve_schedule_def("wsync_hourly_ticket_activity_schedule")
    assert first.cron_schedule == "0 * * * *"


def test_no_two_kinds_of_job_can_share_a_name() -> None:
    """``wsync_<interval>_<sync>`` and ``wsync_<cadence>`` stay apart only while no cadence's name
    followed by ``_`` begins another's (a new cadence must keep it so)."""
    for one in CADENCES:
        for other in CADENCES:
            assert one == other or not other.startswith(f"{one}_"), (one, other)
    stems = {naming.cadence_stem(c) for c in CADENCES}
    assert len(stems) == len(CADENCES)
    assert all(naming.DAGSTER_NAME.match(naming.job_name(s)) for s in stems)


def test_the_job_names_of_each_sync_are_the_jobs_that_materialize_it(registry: Registry) -> None:
    """``job_assets`` (which the runs sensor and the cron ticks read for runs without an asset
    selection, as a schedule's are) names every sync job with exactly the assets it runs."""
    alerts = registry.sync("churn_risk_alerts")
    timed = alerts.model_copy(
        update={"schedule": alerts.schedule.model_copy(update={"cron": "15 * * * *"})}
    )
    registry = registry.model_copy(
        update={"syncs": tuple(timed if s.name == timed.name else s for s in registry.syncs)}
    )
    pairs = [(spec, naming.asset_key(spec)) for spec in registry.syncs]
    defs = dg.Definitions.merge(
        _definitions(registry), build_cron_schedules(pairs, Workspace.of([registry]))
    )
    jobs = {
        job.name: job.asset_layer.executable_asset_keys
        for job in defs.get_repository_def().get_all_jobs()
        if not job.name.startswith("__")  # Dagster's implicit asset job
    }
    assert jobs["wsync_on_demand_cron_15_x_x_x_x_job"] == {naming.asset_key(timed)}
    assert job_assets(pairs) == jobs
