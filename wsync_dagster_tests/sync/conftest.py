"""Fixtures for the Dagster tier: the assets, materialized for real against fakesnow + the emulator.

The emulator runs in-process on a manual clock that starts at the sample warehouse's anchor. The
mParticle resource is the local target's own (LocalMParticleResource with a manual clock), so a
materialization that waits advances the emulator's clock (which runs whatever falls due) instead of
sleeping.
"""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import pytest
from dagster_snowflake import SnowflakeResource

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.local.resources import (
    LOCAL_MPARTICLE,
    LocalMParticleResource,
    emulator_clock_mparticle,
    local_snowflake_resource,
)
from wsync_dagster.local.sample_data import SampleSummary
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.local.snowflake import LOCAL_PASSWORD, LocalSnowflake
from wsync_dagster.local.stack import local_registry
from wsync_dagster.mparticle import Pipeline, clear_token_cache
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.registry.specs import Registry, load_registry
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR

# How long a run takes on the slow emulator's (manual) clock.
RUN_SECONDS = 300


@pytest.fixture
def control(emulator: EmulatorServer, sample_warehouse: SampleSummary) -> EmulatorControl:
    """The session emulator, reset (no resources, runs, profiles or tokens; clock at the anchor),
    over the seeded sample warehouse."""
    assert emulator.url is not None
    clear_token_cache()  # the emulator forgot its tokens
    return EmulatorControl(emulator.url)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The package registry rebased onto the sample data, with its secrets in the environment."""
    rebased = local_registry(load_registry(SAMPLE_REGISTRY), SAMPLE_ANCHOR)
    monkeypatch.setenv(rebased.connection.password_env, LOCAL_PASSWORD)
    for spec in rebased.syncs:
        monkeypatch.setenv(spec.feed_key_env, LOCAL_MPARTICLE.feed_key)
    return rebased


def mparticle_for(control: EmulatorControl, **overrides: Any) -> LocalMParticleResource:
    return emulator_clock_mparticle(control.base_url, **overrides)


def snowflake_for(local_snowflake: LocalSnowflake) -> SnowflakeResource:
    return local_snowflake_resource(local_snowflake.host, local_snowflake.port)


@pytest.fixture
def resources(local_snowflake: LocalSnowflake, control: EmulatorControl) -> dict[str, Any]:
    return {
        "snowflake": snowflake_for(local_snowflake),
        "mparticle": mparticle_for(control),
    }


def other_pipeline(pipeline_id: str, interval: str = "on_demand") -> Pipeline:
    """An active pipeline the registry does not declare (another team's, in the same workspace)."""
    body = {
        "id": pipeline_id, "name": pipeline_id, "workspace_id": LOCAL_MPARTICLE.workspace_id,
        "is_active": True, "is_draft": False, "connection_id": "wsync-snowflake",
        "data_model_id": "wsync-ticket-activity-model", "partner_feed_key": "us1-x",
        "schedule_interval": interval, "schedule_start_time": "2026-11-28T00:00:00Z",
        "environment": "development",
    }  # fmt: skip
    return Pipeline.model_validate(body)


def materialize(
    registry: Registry,
    resources: dict[str, Any],
    name: str,
    partitions: Sequence[str] = (),
    instance: dg.DagsterInstance | None = None,
    workspace: Workspace | None = None,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize one sync (a partition range in one run when several keys are given);
    ``workspace``: every registry of the code location (default: ``registry`` alone); ``tags``:
    run tags (``wsync/resend``, ...)."""
    assets = {a.key.path[-1]: a for a in build_sync_assets(registry, workspace=workspace)}
    return materialize_partitions(
        [assets[name]], partitions, resources=resources, instance=instance, tags=tags
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The text a user sees for the failed step (the Failure's description)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            parts = []
            while error is not None:
                parts.append(error.message)
                error = error.cause
            return "\n".join(parts)
    raise AssertionError("the run did not fail")


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Partition key ('' when unpartitioned) -> metadata values of its materialization."""
    found = {}
    for event in result.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        found[m.partition or ""] = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
    return found


def observations(result: dg.ExecuteInProcessResult) -> list[dict[str, Any]]:
    """Metadata values of each asset observation the run logged (the step's counters)."""
    return [
        {
            k: getattr(v, "value", v)
            for k, v in event.asset_observation_data.asset_observation.metadata.items()
        }
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    ]


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {
        e.check_name: e
        for e in (
            event.event_specific_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
        if e is not None and hasattr(e, "check_name")
    }


@pytest.fixture
def slow_control(
    start_emulator: Callable[..., EmulatorServer], sample_warehouse: SampleSummary
) -> EmulatorControl:
    """An emulator whose runs take five minutes of its (manual) clock."""
    server = start_emulator(run_seconds=RUN_SECONDS)
    assert server.url is not None
    clear_token_cache()
    return EmulatorControl(server.url)
