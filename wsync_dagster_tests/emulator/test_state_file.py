"""``--state-file``: a restarted emulator remembers its resources, runs, profiles and grids."""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from wsync_dagster.emulator import EmulatorServer
from wsync_dagster.emulator.__main__ import parse_args
from wsync_dagster_tests.conftest import CLOCK_START
from wsync_dagster_tests.emulator.helpers import clients, instant


def test_a_restart_on_the_same_state_file_goes_on_where_it_stopped(
    start_emulator: Callable[..., EmulatorServer], events_table: str, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.json"
    first = start_emulator(state_file=str(state))
    api, control = clients(first)
    api.create_source(f"SELECT * FROM {events_table}")
    api.create_pipeline(schedule_start_time=instant(CLOCK_START - timedelta(hours=5)))
    control.settle()
    runs, profiles = api.runs("pipe"), control.profiles()
    pipeline = api.ok("GET", "pipelines/pipe")
    assert len(runs) == 5 and profiles and state.exists()  # saved as the runs ended
    first.stop()

    second = start_emulator(state_file=str(state))
    api, control = clients(second)
    assert api.runs("pipe") == runs
    assert api.ok("GET", "pipelines/pipe") == pipeline
    assert control.profiles() == profiles
    control.advance(2 * 3600)  # the grid goes on from the sixth interval
    assert [r["pipeline_run_id"] for r in api.runs("pipe")][:3] == [7, 6, 5]


def test_without_a_state_file_nothing_is_kept(
    start_emulator: Callable[..., EmulatorServer], events_table: str, tmp_path: Path
) -> None:
    first = start_emulator()
    api, _ = clients(first)
    api.create_source(f"SELECT * FROM {events_table}")
    first.stop()
    api, _ = clients(start_emulator())
    assert api.ok("GET", "connections") == []
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_takes_a_state_file() -> None:
    config, _ = parse_args(["--snowflake-port", "1", "--state-file", "/tmp/x.json"])
    assert config.state_file == "/tmp/x.json"
