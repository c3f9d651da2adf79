"""Drift between runs: the drift sensor's ``matches_registry`` check against the live emulator."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from wsync_dagster.mparticle import DataModel
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster.sync.observe.drift import (
    CALLS_PER_TICK,
    DriftWatch,
    build_drift_sensor,
    drift_tick,
)
from wsync_dagster.sync.observe.sensor import RunsWatch, build_runs_sensor
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import failure_message, materialize, other_pipeline

DAILY = "customer_scores"
KEY = dg.AssetKey([naming.KEY_PREFIX, DAILY])
CHECK = dg.AssetCheckKey(KEY, naming.CHECK_MATCHES_REGISTRY)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def watch_of(registry: Registry) -> DriftWatch:
    workspace = Workspace.of([registry])
    return DriftWatch(workspace, [(b, naming.asset_key(b.spec)) for b in workspace])


def drift_check(
    instance: dg.DagsterInstance, registry: Registry, resources: dict[str, Any]
) -> list[dg.AssetCheckEvaluation]:
    """One evaluation of the drift sensor, its events stored as the sensor daemon stores them."""
    sensor = build_drift_sensor(watch_of(registry))
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    events = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
    for event in events:
        instance.report_runless_asset_event(event)
    return events


def latest(instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
    record = instance.get_latest_asset_check_evaluation_record(CHECK)
    assert record is not None and isinstance(record.evaluation, dg.AssetCheckEvaluation)
    return record.evaluation


def edit_model_sql(resources: dict[str, Any], registry: Registry) -> str:
    """Change the daily sync's data model through the API, behind Dagster's back."""
    with resources["mparticle"].open_client() as client:
        model = client.get_data_model(registry.sync(DAILY).resolved_data_model_id)
        edited = model.sql_query.replace("LIFETIME_VALUE", "LIFETIME_VALUE * 100")
        client.update_data_model(
            DataModel.model_validate(model.model_dump() | {"sql_query": edited})
        )
    return edited


def only_daily(registry: Registry) -> Registry:
    return registry.model_copy(update={"syncs": (registry.sync(DAILY),)})


def test_a_model_changed_behind_dagsters_back_fails_matches_registry_until_a_materialization(
    registry, resources, control, instance
) -> None:
    daily = only_daily(registry)
    result = materialize(daily, resources, DAILY, ["2026-11-27"], instance=instance)
    assert result.success, failure_message(result)
    assert latest(instance).passed
    assert drift_check(instance, daily, resources) == []  # nothing new to say

    edit_model_sql(resources, daily)
    [failed] = drift_check(instance, daily, resources)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.WARN
    assert failed.partition is None and failed.asset_key == KEY
    text = failed.description or ""
    assert "data model wsync-customer-scores-model: sql_query is 'SELECT" in text
    assert "LIFETIME_VALUE * 100" in text
    assert "materialize mparticle/customer_scores to put the registry's version back" in text
    assert "or change the registry to what mParticle has now" in text
    drift = failed.metadata["wsync/drift"]
    assert getattr(drift, "value", drift) == "data model wsync-customer-scores-model: sql_query"
    assert "+  LIFETIME_VALUE AS" in str(failed.metadata["sql_diff"])
    assert drift_check(instance, daily, resources) == []  # still drifted: not recorded twice

    # A run mParticle makes meanwhile is recorded with the drift it ran under.
    control.advance(24 * 3600)
    workspace = Workspace.of([daily])
    runs_sensor = build_runs_sensor(RunsWatch(workspace, [(next(iter(workspace)), KEY)]))
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        recorded = runs_sensor(context)
    assert isinstance(recorded, dg.SensorResult)
    drifts = {
        e.partition: e.metadata.get("wsync/drift")
        for e in recorded.asset_events
        if isinstance(e, dg.AssetMaterialization)
    }
    # The catch-up runs started before the drift was seen; the new day's run after it.
    assert drifts.pop("2026-11-28") == dg.MetadataValue.text(
        "data model wsync-customer-scores-model: sql_query"
    )
    assert len(drifts) == 9 and set(drifts.values()) == {None}

    result = materialize(daily, resources, DAILY, ["2026-11-28"], instance=instance)
    assert result.success, failure_message(result)
    assert latest(instance).passed
    assert "data model wsync-customer-scores-model: updated (sql_query)" in (
        latest(instance).description or ""
    )
    assert drift_check(instance, daily, resources) == []


def test_changing_the_registry_to_what_mparticle_has_passes_the_check_again(
    registry, resources, control, instance
) -> None:
    daily = only_daily(registry)
    with resources["mparticle"].open_client() as client:
        reconcile(client, daily, daily.syncs[0], SAMPLE_ANCHOR)
    edited = edit_model_sql(resources, daily)
    [failed] = drift_check(instance, daily, resources)
    assert not failed.passed
    adopted = daily.model_copy(
        update={"syncs": (daily.syncs[0].model_copy(update={"sql": edited}),)}
    )
    [passed] = drift_check(instance, adopted, resources)
    assert passed.passed and passed.description == (
        "mParticle's connection, data model and pipeline match the registry."
    )


def test_a_tick_costs_three_listings_and_names_the_unmanaged_pipelines(
    registry, resources, control, instance
) -> None:
    with resources["mparticle"].open_client() as client:
        for spec in registry.syncs:
            reconcile(client, registry, spec, SAMPLE_ANCHOR)
        client.create_pipeline(other_pipeline("another-team"))
    control.clear_request_log()
    tick = drift_tick(instance, watch_of(registry), resources["mparticle"])
    assert len(registry.syncs) == 9 and len(tick.events) == 9 and not tick.drifted
    assert tick.api_requests == CALLS_PER_TICK == 3
    calls = [(e["method"], e["path"]) for e in control.request_log()]
    assert [m for m, _ in calls if m != "POST"] == ["GET"] * 3
    assert tick.unmanaged == ["another-team (active)"]


def test_a_sync_never_materialized_is_not_compared(registry, resources, control, instance) -> None:
    tick = drift_tick(instance, watch_of(only_daily(registry)), resources["mparticle"])
    assert tick.events == [] and tick.notes == [
        "'customer_scores' is not in mParticle yet: nothing to compare"
    ]


def test_a_deleted_pipeline_fails_the_check_once_it_had_been_compared(
    registry, resources, control, instance
) -> None:
    daily = only_daily(registry)
    with resources["mparticle"].open_client() as client:
        reconcile(client, daily, daily.syncs[0], SAMPLE_ANCHOR)
        assert drift_check(instance, daily, resources)[0].passed
        client.delete_pipeline(daily.syncs[0].resolved_pipeline_id)
        client.delete_data_model(daily.syncs[0].resolved_data_model_id)
    [failed] = drift_check(instance, daily, resources)
    assert not failed.passed
    assert "pipeline wsync-customer-scores: missing in mParticle" in (failed.description or "")
