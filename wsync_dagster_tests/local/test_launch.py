"""`python3 dev.py launch`: `dg launch` on the local code location, against the stack `dev.py ui`
keeps running; and one stack per work directory."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from wsync_dagster.local.definitions import build_local_definitions
from wsync_dagster.local.demo import prepare_dagster_home, registry_override, run_launch
from wsync_dagster.local.process import LocalServiceError
from wsync_dagster.local.sample_data import SampleConfig
from wsync_dagster.local.stack import STACK_FILE, LocalStack, running_stack

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
CUSTOMER_SCORES = dg.AssetKey(["mparticle", "customer_scores"])


def test_launch_runs_a_job_partition_on_the_stack_the_ui_keeps(tmp_path: Path, capfd) -> None:
    work, home = tmp_path / "wsync", prepare_dagster_home(tmp_path / "dagster_home")
    # What `python3 dev.py ui` keeps running while someone launches from another terminal.
    with LocalStack(work, SampleConfig(anchor=ANCHOR), manual_clock=True) as ui_stack:
        attached = running_stack(work)
        assert attached is not None and attached.emulator_url == ui_stack.emulator_url
        defs = build_local_definitions(ui_stack.environment())
        partitions = defs.resolve_assets_def(CUSTOMER_SCORES).partitions_def
        assert partitions is not None
        day = partitions.get_partition_keys(current_time=ANCHOR)[-1]

        code = run_launch(
            ["--job", "wsync_daily_customer_scores_job", "--partition", day], work, home
        )
        out = capfd.readouterr().out
        assert code == 0, out
        assert "Using the local stack of process" in out

        with dg.DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs(
                filters=dg.RunsFilter(job_name="wsync_daily_customer_scores_job")
            )
            assert run.status is dg.DagsterRunStatus.SUCCESS
            assert instance.get_materialized_partitions(CUSTOMER_SCORES) == {day}
        # The pipeline was created in the UI stack's emulator, not in one of its own.
        spec = ui_stack.served_workspace().get("customer_scores").spec
        with dict(defs.resources or {})["mparticle"].open_client() as client:
            assert client.get_pipeline(spec.resolved_pipeline_id).is_active


def test_a_second_stack_on_the_same_work_directory_is_refused(tmp_path: Path) -> None:
    with LocalStack(tmp_path, SampleConfig(anchor=ANCHOR), manual_clock=True) as first:
        with pytest.raises(LocalServiceError, match=r"already running on .*dev\.py launch"):
            LocalStack(tmp_path, SampleConfig(anchor=ANCHOR)).start()
        assert running_stack(tmp_path) is not None
        assert first.emulator is not None and first.emulator.running
    assert not (tmp_path / STACK_FILE).exists() and running_stack(tmp_path) is None


def test_a_stack_file_left_by_a_killed_stack_is_ignored(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    left = {
        "pid": int(ended.stdout),
        "emulator_url": "http://127.0.0.1:9",
        "snowflake_host": "127.0.0.1",
        "snowflake_port": 9,
        "environment": {},
    }
    (tmp_path / STACK_FILE).write_text(json.dumps(left), encoding="utf-8")
    assert running_stack(tmp_path) is None
    (tmp_path / STACK_FILE).write_text("{not json", encoding="utf-8")
    assert running_stack(tmp_path) is None


def test_the_entry_points_serve_the_registry_file_the_variable_names(tmp_path: Path) -> None:
    assert registry_override({}) is None
    mine = tmp_path / "my-registry.yaml"
    assert registry_override({"WSYNC_LOCAL_REGISTRY": str(mine)}) == mine
