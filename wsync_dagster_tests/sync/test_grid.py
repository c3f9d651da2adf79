"""Dagster's partitions are mParticle's intervals: pinned against the emulator for every cadence."""

from datetime import UTC, datetime

import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.sync.assets.partitions import partitions_for, windows_for
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster.sync.registry.specs import Registry, Schedule
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import mparticle_for


@pytest.mark.parametrize(
    ("interval", "start", "expected_runs"),
    [
        ("hourly", datetime(2026, 11, 28, 7, 15, tzinfo=UTC), 4),  # at a quarter past
        ("daily", datetime(2026, 11, 20, 12, 0, tzinfo=UTC), 8),  # at noon
        ("weekly", datetime(2026, 10, 24, 12, 5, tzinfo=UTC), 4),  # Saturdays 12:05
        ("monthly", datetime(2026, 7, 4, 0, 0, tzinfo=UTC), 4),  # the 4th of each month
    ],
)
def test_partition_keys_and_windows_equal_the_runs_mparticle_creates(
    registry: Registry, control: EmulatorControl, interval: str, start: datetime, expected_runs: int
) -> None:
    schedule = Schedule(interval=interval, start=start)  # pyright: ignore[reportArgumentType]
    spec = registry.sync("customer_scores").model_copy(update={"schedule": schedule})
    single = registry.model_copy(update={"syncs": (spec,)})
    with mparticle_for(control).open_client() as client:
        reconcile(client, single, spec, SAMPLE_ANCHOR)
        control.settle()
        runs = sorted(
            client.iter_pipeline_runs(spec.resolved_pipeline_id), key=lambda r: r.pipeline_run_id
        )
    partitions = partitions_for(schedule)
    windows = windows_for(partitions, partitions.get_partition_keys(current_time=SAMPLE_ANCHOR))
    assert len(runs) == len(windows) == expected_runs
    for run, window in zip(runs, windows, strict=True):
        assert run.logical_date == run.data_interval_start == window.start
        assert run.data_interval_end == window.end
        assert partitions.get_partition_key_for_timestamp(window.start.timestamp()) == window.key
