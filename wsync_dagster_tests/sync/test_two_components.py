"""Two registries (two WarehouseSyncComponents, two teams) in one code location, each with its own
Snowflake connection: whatever writes a pipeline writes it with its own registry's connection."""

import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.mparticle import WarehouseSyncClient
from wsync_dagster.sync.engine import rotation
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.sync.conftest import failure_message, materialize, snowflake_for
from wsync_dagster_tests.sync.rotating import (
    ON_NEXT_SLEEP,
    crashed_after_trigger,
    hooked_mparticle,
    is_active,
)
from wsync_dagster_tests.sync.test_sensor import instance, tick

__all__ = ["instance"]  # the fixture


def team(registry: Registry, connection_id: str, database: str, *rotating: str) -> Registry:
    """One team's registry: its own connection, and rotating copies of high_value_customers."""
    template = registry.sync("high_value_customers")
    syncs = tuple(
        template.model_copy(update={"name": name, "owners": (f"team:{connection_id}",)})
        for name in rotating
    )
    connection = registry.connection.model_copy(update={"id": connection_id, "database": database})
    return registry.model_copy(update={"connection": connection, "syncs": syncs})


@pytest.fixture
def teams(registry: Registry) -> tuple[Registry, Registry]:
    return (
        team(registry, "wsync-team-a", "WSYNC_DEMO", "team_a_one", "team_a_two"),
        team(registry, "wsync-team-b", "WSYNC_OTHER", "team_b_one"),
    )


@pytest.fixture
def resources(local_snowflake: LocalSnowflake, control: EmulatorControl):
    ON_NEXT_SLEEP.clear()
    yield {"snowflake": snowflake_for(local_snowflake), "mparticle": hooked_mparticle(control)}
    ON_NEXT_SLEEP.clear()


def connection_of(client: WarehouseSyncClient, pipeline_id: str) -> str:
    return client.get_pipeline(pipeline_id).connection_id


def leave_both_active(client: WarehouseSyncClient, control: EmulatorControl, a, b) -> None:
    """A crashed materialization of each team's first rotating sync: active, run ended, old enough
    to be swept."""
    crashed_after_trigger(client, a, a.sync("team_a_one"))
    crashed_after_trigger(client, b, b.sync("team_b_one"))
    control.settle()
    control.advance(rotation.SWEEP_GRACE.total_seconds())


def test_the_sensor_pauses_each_teams_leftover_on_its_own_connection(
    teams, resources, control, instance
) -> None:
    a, b = teams
    with resources["mparticle"].open_client() as client:
        leave_both_active(client, control, a, b)
        tick(instance, [a, b], resources, None)
        assert not is_active(client, a.sync("team_a_one"))
        assert not is_active(client, b.sync("team_b_one"))
        assert connection_of(client, "wsync-team-a-one") == "wsync-team-a"
        assert connection_of(client, "wsync-team-b-one") == "wsync-team-b"


def test_a_rotating_materialization_sweeps_every_teams_leftovers_with_their_own_connection(
    teams, resources, control
) -> None:
    a, b = teams
    with resources["mparticle"].open_client() as client:
        leave_both_active(client, control, a, b)
        result = materialize(a, resources, "team_a_two", workspace=Workspace.of([a, b]))
        assert result.success, failure_message(result)
        assert not is_active(client, b.sync("team_b_one"))  # another component's leftover
        assert not is_active(client, a.sync("team_a_one"))
        assert connection_of(client, "wsync-team-b-one") == "wsync-team-b"
        assert connection_of(client, "wsync-team-a-two") == "wsync-team-a"


def test_free_slots_count_the_permanent_syncs_of_every_registry(registry: Registry) -> None:
    permanent = ("customer_scores", "ticket_activity")
    a = registry.model_copy(update={"syncs": tuple(registry.sync(n) for n in permanent)})
    renamed = tuple(
        registry.sync(n).model_copy(update={"name": f"b_{n}", "pipeline_id": f"b-{n}"})
        for n in permanent
    )
    b = team(registry, "wsync-team-b", "WSYNC_OTHER").model_copy(update={"syncs": renamed})
    assert Workspace.of([a]).free_slots() == 3
    # The first component's count alone said 3 (the demo printed it, and the deploy sized its
    # rotating pool from it); both components' permanent syncs leave 1.
    assert rotation.rotating_pool_limit(Workspace.of([a, b])) == 1
