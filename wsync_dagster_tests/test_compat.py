"""Dagster's private API, as the project uses it (wsync_dagster/compat.py): a Dagster upgrade that
moves or changes one of these names fails here, by name, before it fails somewhere obscure."""

import inspect
from datetime import UTC, datetime

import dagster as dg

from wsync_dagster import compat


def test_the_pinned_dagster_is_the_one_compat_was_checked_against() -> None:
    assert dg.__version__ == compat.VERIFIED_WITH, (
        f"Dagster {dg.__version__} is installed but wsync_dagster/compat.py was checked against "
        f"{compat.VERIFIED_WITH}: run these tests, fix compat.py, then update VERIFIED_WITH"
    )


def test_every_name_compat_exports_exists() -> None:
    missing = [name for name in compat.__all__ if not hasattr(compat, name)]
    assert not missing, missing


def test_the_backfill_filter_finds_a_requested_backfill() -> None:
    with dg.instance_for_test() as instance:
        assert compat.requested_backfills(instance, 10) == []
        backfill = compat.PartitionBackfill(
            backfill_id="compat",
            status=compat.BulkActionStatus.REQUESTED,
            from_failure=False,
            tags={},
            backfill_timestamp=0.0,
            asset_selection=[dg.AssetKey("a")],
        )
        instance.add_backfill(backfill)
        found = compat.requested_backfills(instance, 10)
        assert [b.backfill_id for b in found] == ["compat"]
        assert list(found[0].asset_selection or ()) == [dg.AssetKey("a")]


def test_a_run_of_a_named_job_executes_in_process_with_its_origin(tmp_path) -> None:
    @dg.asset
    def tiny() -> int:
        return 1

    defs = dg.Definitions(
        assets=[tiny], jobs=[dg.define_asset_job("tiny_job")], executor=dg.in_process_executor
    )
    job = defs.resolve_job_def("tiny_job")
    origin = compat.RemoteRepositoryOrigin(
        compat.ManagedGrpcPythonEnvCodeLocationOrigin(
            loadable_target_origin=compat.LoadableTargetOrigin(
                module_name="somewhere.definitions", working_directory=str(tmp_path)
            ),
            location_name="somewhere",
        ),
        "__repository__",
    ).get_job_origin("tiny_job")
    assert isinstance(origin, compat.RemoteJobOrigin)
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(job_def=job, remote_job_origin=origin)
        result = compat.execute_run(compat.InMemoryJob(job), run, instance)
        assert isinstance(result, compat.ExecutionResult) and result.success
        stored = instance.get_run_by_id(run.run_id)
        assert stored is not None and stored.remote_job_origin == origin
    assert "PLANNED" in compat.AssetCheckExecutionRecordStatus.__members__
    assert list(inspect.signature(compat.execute_run).parameters)[:3] == [
        "job",
        "dagster_run",
        "instance",
    ]


def test_dagsters_cron_check_and_ticks() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert compat.is_valid_cron_string("15 * * * *")
    assert not compat.is_valid_cron_string("15 * * *")
    assert compat.cron_ticks("15 * * * *", after, 2) == [
        datetime(2026, 1, 1, 0, 15, tzinfo=UTC),
        datetime(2026, 1, 1, 1, 15, tzinfo=UTC),
    ]


def test_a_schedule_context_built_without_with_leaves_an_instance_entered() -> None:
    """Why conftest's ``no_instance_left_entered`` exists: evaluating a tick on a context built
    without ``with`` enters an instance that nothing exits. Built with ``with``, nothing is left."""
    partitions = dg.HourlyPartitionsDefinition(start_date="2026-11-01-00:00")

    @dg.asset(partitions_def=partitions)
    def hourly() -> None:
        return None

    job = dg.define_asset_job("hourly_job", selection=[hourly], partitions_def=partitions)
    schedule = dg.build_schedule_from_partitioned_job(job)
    dg.Definitions(assets=[hourly], schedules=[schedule], jobs=[job])
    tick = datetime(2026, 11, 5, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            schedule.evaluate_tick(context)
        assert compat.current_defs_state_storage() is instance.defs_state_storage
        leaky = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        schedule.evaluate_tick(leaky)
        left = compat.current_defs_state_storage()
        assert left is not None and left is not instance.defs_state_storage
        leaky.__exit__(None, None, None)  # what garbage collection would do, some time later
    assert compat.current_defs_state_storage() is None
