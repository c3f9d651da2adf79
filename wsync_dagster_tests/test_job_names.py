"""Job and schedule names never move: adding, removing or reordering syncs or components leaves
every other job and schedule with its name and its syncs, in the production code location and in
the local one (which rebases every start onto the sample data), and both name things alike."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from wsync_dagster.code_location import build_definitions
from wsync_dagster.component import WarehouseSyncComponent
from wsync_dagster.local.definitions import ANCHOR_VAR, build_local_definitions
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.sync.registry.specs import Registry, load_registry
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR

# What a code location runs, by name: each job's synced tables, each schedule's job and cron.
Layout = dict[str, tuple[str, ...]]


def layout(defs: dg.Definitions) -> Layout:
    found: Layout = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("wsync_"):
            keys = job.asset_layer.executable_asset_keys
            found[job.name] = tuple(sorted(k.to_user_string() for k in keys))
    for schedule in defs.get_repository_def().schedule_defs:
        found[schedule.name] = (schedule.job_name, str(schedule.cron_schedule))  # one cron each
    return found


def production(*components: WarehouseSyncComponent) -> Layout:
    return layout(build_definitions({}, components=components))


def local(*components: WarehouseSyncComponent) -> Layout:
    environ = {ANCHOR_VAR: SAMPLE_ANCHOR.isoformat()}
    return layout(build_local_definitions(environ, components=components))


def component(registry: Registry, folder: str) -> WarehouseSyncComponent:
    return WarehouseSyncComponent(registry, yaml_path=Path("defs") / folder / "defs.yaml")


@pytest.fixture
def sample() -> WarehouseSyncComponent:
    """The defs folder's registry, as production declares it (fixed starts)."""
    return component(load_registry(SAMPLE_REGISTRY), "warehouse_sync")


@pytest.fixture
def first_team(sample: WarehouseSyncComponent) -> WarehouseSyncComponent:
    """Another team's component, sorting before the sample's: one daily sync on a grid of its own
    (``customer_scores``'s start, three days later), on its own connection. The local code location
    rebases both starts onto the same day: there the two grids are one."""
    template = sample.registry.sync("customer_scores")
    start = template.schedule.start + timedelta(days=3)
    web_orders = template.model_copy(
        update={
            "name": "web_orders",
            "owners": ("team:web",),
            "schedule": template.schedule.model_copy(update={"start": start}),
        }
    )
    connection = sample.registry.connection.model_copy(update={"id": "wsync-team-web"})
    registry = sample.registry.model_copy(update={"connection": connection, "syncs": (web_orders,)})
    return component(registry, "a_team_web")


def kept(
    before: Layout, after: Layout
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]]:
    """Each name of ``before`` whose content differs in ``after`` (or that is gone)."""
    return {name: (was, after.get(name)) for name, was in before.items() if after.get(name) != was}


@pytest.mark.parametrize("build", [production, local], ids=["production", "local"])
def test_adding_a_sync_on_another_grid_in_a_component_that_sorts_first_renames_nothing(
    build, sample, first_team
) -> None:
    before = build(sample)
    after = build(first_team, sample)
    assert kept(before, after) == {}
    added = set(after) - set(before)
    assert added == {"wsync_daily_web_orders_job", "wsync_daily_web_orders_schedule"}
    assert after["wsync_daily_web_orders_job"] == ("mparticle/web_orders",)
    assert after["wsync_daily_customer_scores_job"] == ("mparticle/customer_scores",)


@pytest.mark.parametrize("build", [production, local], ids=["production", "local"])
def test_removing_or_reordering_syncs_and_components_renames_nothing(
    build, sample, first_team
) -> None:
    both = build(first_team, sample)
    assert build(sample, first_team) == both  # components reordered

    reversed_syncs = sample.with_registry(
        sample.registry.model_copy(update={"syncs": tuple(reversed(sample.registry.syncs))})
    )
    assert build(first_team, reversed_syncs) == both  # syncs reordered

    without = sample.registry.model_copy(
        update={"syncs": tuple(s for s in sample.registry.syncs if s.name != "customer_scores")}
    )
    fewer = build(first_team, sample.with_registry(without))
    gone = {name for name in both if "customer_scores" in name}
    assert gone == {"wsync_daily_customer_scores_job", "wsync_daily_customer_scores_schedule"}
    assert fewer == {name: both[name] for name in both if name not in gone}

    assert build(sample) == {name: both[name] for name in both if "web_orders" not in name}


def test_local_and_production_name_and_fill_every_job_alike(sample, first_team) -> None:
    """The local code location moves every start onto the sample data: two daily grids there become
    one. Names and members must not follow (a local `dg launch` runs what production runs)."""
    assert local(first_team, sample) == production(first_team, sample)


def test_todays_sample_names(sample) -> None:
    """The names the README and the demo use (docs/jobs-and-schedules.md)."""
    assert production(sample) == {
        "wsync_daily_customer_scores_job": ("mparticle/customer_scores",),
        "wsync_daily_customer_scores_schedule": ("wsync_daily_customer_scores_job", "0 0 * * *"),
        "wsync_hourly_ticket_activity_job": ("mparticle/ticket_activity",),
        "wsync_hourly_ticket_activity_schedule": ("wsync_hourly_ticket_activity_job", "0 * * * *"),
        "wsync_on_demand_job": tuple(
            sorted(
                f"mparticle/{s.name}"
                for s in sample.registry.syncs
                if s.schedule.interval == "on_demand"
            )
        ),
    }


def test_a_sync_named_like_a_cadence_keeps_its_own_job(sample) -> None:
    """Sync names share no namespace with the cadence jobs: a daily sync named ``on_demand`` is
    ``wsync_daily_on_demand_job``, not the on-demand job."""
    registry = sample.registry
    renamed = registry.sync("customer_scores").model_copy(update={"name": "on_demand"})
    syncs = tuple(renamed if s.name == "customer_scores" else s for s in registry.syncs)
    found = production(sample.with_registry(registry.model_copy(update={"syncs": syncs})))
    assert found["wsync_daily_on_demand_job"] == ("mparticle/on_demand",)
    assert "mparticle/on_demand" not in found["wsync_on_demand_job"]


@pytest.mark.parametrize("build", [production, local], ids=["production", "local"])
def test_putting_on_demand_syncs_on_crons_adds_one_job_and_schedule_per_cron_and_renames_nothing(
    build, sample
) -> None:
    """A cron's job and schedule are named after the cron itself, never after a counter or the other
    crons (docs/jobs-and-schedules.md)."""
    before = build(sample)
    on_demand = [s for s in sample.registry.syncs if s.schedule.interval == "on_demand"]
    crons = {on_demand[0].name: "15 * * * *", on_demand[1].name: "*/30 1-5 * * 1,3"}
    crons |= {on_demand[2].name: "15 * * * *"}

    def with_cron(spec):
        if spec.name not in crons:
            return spec
        schedule = spec.schedule.model_copy(update={"cron": crons[spec.name]})
        return spec.model_copy(update={"schedule": schedule})

    registry = sample.registry.model_copy(
        update={"syncs": tuple(with_cron(s) for s in sample.registry.syncs)}
    )
    after = build(sample.with_registry(registry))
    assert kept(before, after) == {}
    hourly, odd = "wsync_on_demand_cron_15_x_x_x_x", "wsync_on_demand_cron_xs30_1t5_x_x_1c3"
    assert set(after) - set(before) == {
        f"{s}_{k}" for s in (hourly, odd) for k in ("job", "schedule")
    }
    assert after[f"{hourly}_job"] == tuple(
        sorted(f"mparticle/{n}" for n in (on_demand[0].name, on_demand[2].name))
    )
    assert after[f"{hourly}_schedule"] == (f"{hourly}_job", "15 * * * *")
    assert after[f"{odd}_job"] == (f"mparticle/{on_demand[1].name}",)
