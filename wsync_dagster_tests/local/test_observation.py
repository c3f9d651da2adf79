"""Demo, then the UI's code location: the Partitions tab tells what the emulator ran, in one tick."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from wsync_dagster.local.definitions import build_local_definitions
from wsync_dagster.local.demo import prepare_dagster_home, run_demo
from wsync_dagster.local.sample_data import SampleConfig
from wsync_dagster.local.stack import LocalStack
from wsync_dagster.mparticle import RunState
from wsync_dagster.sync.observe.sensor import SENSOR_NAME

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
TICKET_ACTIVITY = dg.AssetKey(["mparticle", "ticket_activity"])


def test_after_the_demo_one_tick_shows_every_partition_the_emulator_ran(
    tmp_path: Path, capsys
) -> None:
    work, home = tmp_path / "wsync", tmp_path / "dagster_home"
    assert run_demo(work, home, SampleConfig(anchor=ANCHOR), manual_clock=True) == 0, (
        capsys.readouterr().out
    )
    instance = dg.DagsterInstance.from_config(str(home))
    assert len(instance.get_materialized_partitions(TICKET_ACTIVITY)) == 6

    # What `dev.py ui` does: the same work directory, so the same emulator state and sample anchor.
    with LocalStack(work, manual_clock=True) as stack:
        assert not stack.fresh and stack.sample.anchor == ANCHOR
        prepare_dagster_home(home, forget=stack.fresh)
        defs = build_local_definitions(stack.environment())
        sensor = defs.resolve_sensor_def(SENSOR_NAME)
        assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
        resources = dict(defs.resources or {})
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        for event in result.asset_events:
            instance.report_runless_asset_event(event)

        spec = stack.served_registry().sync("ticket_activity")
        with resources["mparticle"].open_client() as client:
            runs = list(client.iter_pipeline_runs(spec.resolved_pipeline_id, page_size=500))

    synced = {
        r.logical_date.strftime("%Y-%m-%d-%H:%M")
        for r in runs
        if r.state is RunState.SUCCESS and r.logical_date is not None
    }
    # 72 hours of catch-up, plus one more when the demo's waits (on the manual clock: the rotating
    # syncs' slot waits move mParticle's time) take it past the next hour: what matters is that
    # every run the emulator made is a materialized partition, each recorded once.
    assert len(synced) == len(runs) >= 72
    assert instance.get_materialized_partitions(TICKET_ACTIVITY) == synced
    records = instance.fetch_materializations(TICKET_ACTIVITY, limit=1000).records
    assert len(records) == len(runs)  # the demo's 6 were not recorded a second time


def test_the_emulator_state_is_kept_only_with_the_anchor_its_runs_extracted(tmp_path: Path) -> None:
    first = LocalStack(tmp_path, SampleConfig(anchor=ANCHOR))
    first._continue_or_start_over()
    assert first.fresh and first.anchor_path.read_text().strip() == ANCHOR.isoformat()
    first.state_path.write_text("{}")

    again = LocalStack(tmp_path)
    again._continue_or_start_over()
    assert not again.fresh and again.sample.anchor == ANCHOR and again.state_path.exists()

    other = LocalStack(tmp_path, SampleConfig(anchor=ANCHOR.replace(hour=16)))
    other._continue_or_start_over()
    assert other.fresh and not other.state_path.exists()


def test_an_empty_emulator_clears_the_dagster_history_it_no_longer_matches(
    tmp_path: Path,
) -> None:
    home = prepare_dagster_home(tmp_path / "home")
    (home / "storage").mkdir()
    (home / "storage" / "runs.db").write_text("old")
    assert prepare_dagster_home(home, forget=False) == home and (home / "storage").exists()
    prepare_dagster_home(home, forget=True)
    assert [p.name for p in home.iterdir()] == ["dagster.yaml"]
