"""An on-demand materialization attaches to a run already in flight instead of triggering twice."""

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import (
    RUN_SECONDS,
    failure_message,
    materializations,
    materialize,
    mparticle_for,
    snowflake_for,
)


def test_materializing_while_a_run_is_in_flight_attaches_to_it(
    registry, local_snowflake: LocalSnowflake, slow_control: EmulatorControl
) -> None:
    mparticle = mparticle_for(slow_control)
    with mparticle.open_client() as client:
        _attach_while_in_flight(registry, local_snowflake, mparticle, client)


def _attach_while_in_flight(registry, local_snowflake, mparticle, client) -> None:
    spec = registry.sync("churn_risk_alerts")
    reconcile(client, registry, spec, SAMPLE_ANCHOR)
    in_flight = client.trigger_pipeline(spec.resolved_pipeline_id)
    assert client.get_pipeline_run(spec.resolved_pipeline_id, in_flight.pipeline_run_id).in_progress

    resources = {
        "snowflake": snowflake_for(local_snowflake),
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
