"""Backfills report as they go, through Dagster, against the emulator with runs that take a minute.

Each mParticle run takes 60 s of the emulator's manual clock, and a pipeline runs them one at a
time, so a backfill's polls see partitions end one by one.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import dagster as dg
import pytest

from wsync_dagster.compat import AssetCheckExecutionRecordStatus
from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster.local.resources import LocalMParticleResource
from wsync_dagster.mparticle import RunState
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster_tests.sync.conftest import (
    failure_message,
    materialize,
    mparticle_for,
    observations,
    snowflake_for,
)

ASSET = dg.AssetKey(["mparticle", "ticket_activity"])
PIPELINE = "wsync-ticket-activity"
CHECKS = (
    naming.CHECK_PREFLIGHT_PARITY,
    naming.CHECK_ROWS_MAPPED,
    naming.CHECK_ROW_VOLUME,
    naming.CHECK_COLUMN_SCHEMA,
    naming.CHECK_LATE_ROWS,
)


def _keys(registry: Registry, count: int, hours_before: int = 0) -> list[str]:
    start = registry.sync("ticket_activity").schedule.start - timedelta(hours=hours_before)
    return [(start + timedelta(hours=i)).strftime("%Y-%m-%d-%H:%M") for i in range(count)]


@pytest.fixture
def slow(start_emulator: Callable[..., EmulatorServer]) -> EmulatorControl:
    server = start_emulator(run_seconds=60)
    assert server.url is not None
    return EmulatorControl(server.url)


def _resources(local_snowflake: Any, control: EmulatorControl, **overrides: Any) -> dict[str, Any]:
    return {
        "snowflake": snowflake_for(local_snowflake),
        "mparticle": mparticle_for(control, **overrides),
    }


def _materialized(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_materialized_partitions(ASSET))


def _succeeded_in_emulator(control: EmulatorControl, resources: dict[str, Any]) -> set[str]:
    with resources["mparticle"].open_client() as client:
        return {
            f"{run.logical_date:%Y-%m-%d-%H:%M}"
            for run in client.iter_pipeline_runs(PIPELINE)
            if run.state is RunState.SUCCESS and run.logical_date is not None
        }


def _messages(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[tuple]:
    """(event type or "LOG", message) of every entry of the run's event log, in order."""
    return [
        (e.dagster_event.event_type_value if e.dagster_event else "LOG", e.user_message or "")
        for e in instance.all_logs(result.run_id)
    ]


def test_each_partition_is_reported_when_its_run_ends_with_a_progress_line_per_listing(
    registry, local_snowflake, slow, sample_warehouse
) -> None:
    keys = _keys(registry, 6)
    resources = _resources(local_snowflake, slow)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(registry, resources, "ticket_activity", keys, instance=instance)
    assert result.success, failure_message(result)

    events = _messages(instance, result)
    progress = [i for i, (kind, text) in enumerate(events) if text.startswith("Progress: ")]
    [step] = observations(result)
    assert len(progress) == step["wsync/run_polls"] >= 3
    assert "of 6 partition(s)" in events[progress[0]][1]
    assert "0 done, 0 failed, 6 pending" in events[progress[0]][1]
    assert "6 done, 0 failed, 0 pending" in events[progress[-1]][1]
    assert any(" left " in text for i, (_, text) in enumerate(events) if i in progress)
    reported = [i for i, (kind, _) in enumerate(events) if kind == "ASSET_MATERIALIZATION"]
    assert len(reported) == 6
    assert reported[0] < progress[-1]  # the first partition went out while others were pending


def test_every_synced_partition_has_its_own_check_results_and_none_is_left_skipped(
    registry, resources, control
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    keys = _keys(registry, 4)
    result = materialize(registry, resources, "ticket_activity", keys, instance=instance)
    assert result.success, failure_message(result)
    for name in CHECKS:
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(ASSET, name), limit=50
        )
        statuses = {r.partition: r.status for r in history}
        assert set(statuses) == set(keys), name
        assert AssetCheckExecutionRecordStatus.PLANNED not in statuses.values(), name
    # matches_registry is one per sync (not partitioned), but Dagster plans it once per partition
    # of the run: its one verdict, after reconcile, leaves no planned record behind either.
    drift = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(ASSET, naming.CHECK_MATCHES_REGISTRY), limit=50
    )
    assert {r.partition: r.status for r in drift} == dict.fromkeys(
        keys, AssetCheckExecutionRecordStatus.SUCCEEDED
    )
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(evaluations) == len(keys) * (len(CHECKS) + 1)


def _from_earlier(registry: Registry, hours: int) -> Registry:
    """ticket_activity scheduled ``hours`` earlier: its first windows hold no sample rows."""
    spec = registry.sync("ticket_activity")
    schedule = spec.schedule.model_copy(
        update={"start": spec.schedule.start - timedelta(hours=hours)}
    )
    moved = spec.model_copy(update={"schedule": schedule})
    return registry.model_copy(
        update={"syncs": tuple(moved if s.name == spec.name else s for s in registry.syncs)}
    )


def test_a_window_that_synced_nothing_warns_and_the_others_pass(
    registry, resources, control
) -> None:
    earlier = _from_earlier(registry, 3)
    keys = _keys(earlier, 5)  # 2 empty hours, then 3 with rows (the 3rd ends on a row's stamp)
    result = materialize(earlier, resources, "ticket_activity", keys)
    assert result.success, failure_message(result)  # a warning does not fail the run
    volume = {
        e.partition: e
        for e in (ev.event_specific_data for ev in result.all_events)
        if getattr(e, "check_name", None) == naming.CHECK_ROW_VOLUME
    }
    assert set(volume) == set(keys)
    for key in keys[:2]:
        assert not volume[key].passed and volume[key].severity == dg.AssetCheckSeverity.WARN
        assert "0 rows" in (volume[key].description or "")
    for key in keys[2:]:
        assert volume[key].passed, volume[key].description


def test_a_backfill_that_times_out_keeps_the_partitions_that_had_finished(
    registry, local_snowflake, slow, sample_warehouse
) -> None:
    keys = _keys(registry, 6)
    resources = _resources(local_snowflake, slow, run_timeout_seconds=150)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(registry, resources, "ticket_activity", keys, instance=instance)
    assert not result.success
    done = _materialized(instance)
    assert done and done < set(keys)
    assert done == _succeeded_in_emulator(slow, resources) & set(keys)
    message = failure_message(result)
    assert (
        f"{len(keys) - len(done)} of 6 partition(s)" in message and f"({len(done)} did)" in message
    )


class _Killed(LocalMParticleResource):
    """Killed (as Dagster's run termination does) on its ``kill_at``-th wait."""

    waits: ClassVar[int] = 0
    kill_at: ClassVar[int] = 4

    def sleep(self, seconds: float) -> None:
        _Killed.waits += 1
        if _Killed.waits >= _Killed.kill_at:
            raise dg.DagsterExecutionInterruptedError("the run was terminated")
        super().sleep(seconds)


def test_killing_a_long_backfill_midway_leaves_the_finished_partitions_materialized(
    registry, local_snowflake, slow, sample_warehouse
) -> None:
    _Killed.waits = 0
    keys = _keys(registry, 12)
    resources = {
        "snowflake": snowflake_for(local_snowflake),
        "mparticle": _Killed(**mparticle_for(slow).model_dump()),
    }
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(registry, resources, "ticket_activity", keys, instance=instance)
    assert not result.success and "the run was terminated" in failure_message(result)
    assert _Killed.waits == _Killed.kill_at
    done = _materialized(instance)
    assert done and done < set(keys)
    assert done == _succeeded_in_emulator(slow, resources) & set(keys)
    for name in CHECKS:  # and each of them has its check results
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(ASSET, name), limit=50
        )
        evaluated = {
            r.partition for r in history if r.status != AssetCheckExecutionRecordStatus.PLANNED
        }
        assert evaluated == done, name
