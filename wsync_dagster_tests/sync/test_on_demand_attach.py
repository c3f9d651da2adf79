"""An on-demand materialization attaches to a run already in flight instead of triggering twice."""

from collections.abc import Iterator

import pytest

from wsync_dagster.emulator import EmulatorConfig, EmulatorControl, EmulatorServer
from wsync_dagster.local.snowflake import LOCAL_PASSWORD, LOCAL_USER, LocalSnowflake
from wsync_dagster.local.stack import LOCAL_MPARTICLE
from wsync_dagster.mparticle import clear_token_cache
from wsync_dagster.resources import Target, snowflake_resource
from wsync_dagster.sync.reconcile import reconcile
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import (
    failure_message,
    materializations,
    materialize,
    mparticle_for,
)

RUN_SECONDS = 300


@pytest.fixture(scope="module")
def slow_control(local_snowflake: LocalSnowflake, sample_warehouse) -> Iterator[EmulatorControl]:
    """An emulator whose runs take five minutes of its (manual) clock."""
    config = EmulatorConfig(
        snowflake_host=local_snowflake.host,
        snowflake_port=local_snowflake.port,
        snowflake_user=LOCAL_USER,
        snowflake_password=LOCAL_PASSWORD,
        workspace_id=LOCAL_MPARTICLE.workspace_id,
        org_id=LOCAL_MPARTICLE.org_id,
        account_id=LOCAL_MPARTICLE.account_id,
        clock="manual",
        clock_start=SAMPLE_ANCHOR,
        run_seconds=RUN_SECONDS,
    )
    with EmulatorServer(config) as server:
        assert server.url is not None
        clear_token_cache()
        yield EmulatorControl(server.url)


def test_materializing_while_a_run_is_in_flight_attaches_to_it(
    registry, local_snowflake: LocalSnowflake, slow_control: EmulatorControl
) -> None:
    mparticle = mparticle_for(slow_control)
    client = mparticle.get_client()
    spec = registry.sync("churn_risk_alerts")
    reconcile(client, registry, spec, SAMPLE_ANCHOR)
    in_flight = client.trigger_pipeline(spec.resolved_pipeline_id)
    assert client.get_pipeline_run(spec.resolved_pipeline_id, in_flight.pipeline_run_id).in_progress

    resources = {
        "snowflake": snowflake_resource(
            Target.LOCAL, {"WSYNC_LOCAL_SNOWFLAKE_PORT": str(local_snowflake.port)}
        ),
        "mparticle": mparticle,
    }
    result = materialize(registry, resources, "churn_risk_alerts")
    assert result.success, failure_message(result)
    meta = materializations(result)[""]
    assert meta["wsync/attached_to_existing_run"] is True
    assert meta["mparticle/run_id"] == in_flight.pipeline_run_id
    assert meta["mparticle/run_seconds"] == RUN_SECONDS
    assert [r.pipeline_run_id for r in client.iter_pipeline_runs(spec.resolved_pipeline_id)] == [
        in_flight.pipeline_run_id
    ]
