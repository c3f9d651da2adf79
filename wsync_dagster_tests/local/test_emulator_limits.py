"""The emulator enforces the limits it is configured with (a team's contracted ones), and the local
stack configures it from the registry's ``limits:`` block."""

from collections.abc import Callable

from wsync_dagster.emulator import EmulatorServer
from wsync_dagster.emulator.__main__ import parse_args
from wsync_dagster.emulator.limits import DEFAULT_RECORD_LIMITS
from wsync_dagster.local.stack import emulator_limit_args
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster_tests.emulator.helpers import clients, error_messages, pipeline_body


def test_the_registry_limits_reach_the_emulator_command_line() -> None:
    limits = Limits.model_validate(
        {"records_per_request": {"hourly": 10}, "max_columns": 7, "max_active_pipelines": 2}
    )
    config, _ = parse_args(["--snowflake-port", "4444", *emulator_limit_args(limits)])
    assert config.record_limits == {**DEFAULT_RECORD_LIMITS, "hourly": 10}
    assert (config.max_model_columns, config.max_active_pipelines) == (7, 2)


def test_without_limit_options_the_emulator_keeps_the_documented_ones() -> None:
    config, _ = parse_args(["--snowflake-port", "4444", *emulator_limit_args(Limits())])
    assert config.record_limits == DEFAULT_RECORD_LIMITS
    assert (config.max_model_columns, config.max_active_pipelines) == (100, 5)


def test_a_configured_active_pipeline_limit_refuses_the_next_one(
    start_emulator: Callable[..., EmulatorServer], events_table: str
) -> None:
    server = start_emulator(max_active_pipelines=2)
    api, control = clients(server)
    assert control.config()["max_active_pipelines"] == 2
    api.create_source(f"SELECT * FROM {events_table}")
    for n in range(2):
        api.create_pipeline(id=f"p{n}", schedule_interval="on_demand")
    response = api.post("pipelines", pipeline_body(api.config, id="p2"))
    assert response.status_code == 400
    assert error_messages(response) == [
        "Workspace 5328 already has 2 active pipelines (p0, p1); the limit is 2. "
        "Pause or delete one first."
    ]


def test_a_configured_column_limit_refuses_a_wider_model(
    start_emulator: Callable[..., EmulatorServer], events_table: str
) -> None:
    api, _ = clients(start_emulator(max_model_columns=2))
    api.create_source(f"SELECT * FROM {events_table}")
    response = api.post("pipelines", pipeline_body(api.config, id="wide"))
    assert response.status_code == 400
    assert "columns; the limit is 2." in error_messages(response)[0]
