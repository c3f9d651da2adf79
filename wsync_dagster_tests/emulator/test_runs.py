"""Executing runs against the Snowflake stand-in: counts, limits, identity mapping, window literals."""

import contextlib
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster.emulator.limits import DEFAULT_RECORD_LIMITS
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster_tests.conftest import CLOCK_START
from wsync_dagster_tests.emulator.helpers import (
    Api,
    clients,
    connection_body,
    instant,
    pipeline_body,
    unique,
)

CreatePipeline = Callable[..., dict[str, Any]]
START = CLOCK_START - timedelta(hours=3)  # 09:00: three hourly windows up to the clock's 12:00


def counts(api: Api, pipeline_id: str = "pipe") -> list[tuple[str, int | None, int | None]]:
    """(state, records_extracted, records_mapped) oldest first."""
    return [
        (r["pipeline_run_state"], r["records_extracted"], r["records_mapped"])
        for r in reversed(api.runs(pipeline_id))
    ]


def by_customer(control: EmulatorControl) -> dict[str, dict[str, Any]]:
    profiles: dict[str, dict[str, Any]] = {}
    for profile in control.profiles():
        ids = {i["type"]: i["value"] for i in profile["user_identities"]}
        profiles[ids.get("customer_id", ids.get("email", "?"))] = profile
    return profiles


def test_inclusive_windows_count_boundary_rows_twice(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_start_time=instant(START))
    control.settle()
    # 09-10: 09:00, 09:30, 09:45 (no identity), 10:00, 10:00 | 10-11: 10:00, 10:00, 10:59:59 |
    # 11-12: 11:00:01. The two 10:00 rows are read by both adjacent windows.
    assert counts(api) == [("success", 5, 4), ("success", 3, 3), ("success", 1, 1)]
    assert [r["event_batches_generated"] for r in reversed(api.runs("pipe"))] == [4, 3, 1]


def test_rows_become_identities_and_string_attributes(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_start_time=instant(START))
    control.settle()
    profiles = by_customer(control)
    assert sorted(profiles) == ["c1", "c2", "c3", "c4", "c5"]
    c1 = profiles["c1"]
    # The 10:59:59 row moved c1's e-mail; later values win; UPDATED_AT is not an attribute.
    assert c1["user_identities"] == [
        {"type": "customer_id", "encoding": "none", "value": "c1"},
        {"type": "email", "encoding": "none", "value": "c1@new.example.com"},
    ]
    assert c1["user_attributes"] == {"SCORE": "99.0", "ACTIVE": "true", "TAGS": ["c"]}
    assert profiles["c2"]["user_attributes"] == {"SCORE": "3.0", "ACTIVE": "false"}  # nulls skipped
    assert profiles["c3"]["user_attributes"] == {"TAGS": ["x"]}
    assert profiles["c4"]["user_attributes"] == {"SCORE": "1.25", "ACTIVE": "true", "TAGS": []}
    assert c1["device_identities"] == []
    assert c1["created_timestamp_ms"] == int(CLOCK_START.timestamp() * 1000)


def test_the_documented_row_to_batch_example(
    api: Api, control: EmulatorControl, events_table: str
) -> None:
    """The documented sample model: CUSTOMER_ID, EMAIL, IOS_IDFV, LAST_UPDATED, "$firstname",
    propensity_to_buy."""
    api.create_connection()
    api.create_model(
        "SELECT 'c1' AS CUSTOMER_ID, 'a@b.c' AS EMAIL, '8c61' AS IOS_IDFV, "
        "CAST('2026-11-28 11:00:00' AS TIMESTAMP_NTZ) AS LAST_UPDATED, "
        '\'Ann\' AS "$firstname", 0.8 AS "propensity_to_buy"',
        load_timestamp_field_name="last_updated",  # matched case-insensitively
    )
    api.create_pipeline(schedule_start_time=instant(START))
    control.settle()
    [profile] = control.profiles()
    assert profile["user_identities"] == [
        {"type": "customer_id", "encoding": "none", "value": "c1"},
        {"type": "email", "encoding": "none", "value": "a@b.c"},
    ]
    assert profile["device_identities"] == [
        {"type": "ios_idfv", "encoding": "none", "value": "8c61"}
    ]
    assert profile["user_attributes"] == {"$firstname": "Ann", "propensity_to_buy": "0.8"}


def test_reserved_columns_are_case_insensitive_and_customerid_is_customer_id(
    api: Api, control: EmulatorControl, events_table: str
) -> None:
    api.create_connection()
    api.create_model(
        "SELECT 'k9' AS \"CustomerId\", 'x@y.z' AS \"Email\", 'o2' AS other_id_2, "
        "'push' AS \"Push_Token\", 'keep' AS \"Mixed_Case\", UPDATED_AT "
        f"FROM {events_table} WHERE CUSTOMER_ID = 'c5'"
    )
    api.create_pipeline(schedule_start_time=instant(START))
    control.settle()
    [profile] = control.profiles()
    assert {i["type"]: i["value"] for i in profile["user_identities"]} == {
        "customer_id": "k9",
        "email": "x@y.z",
        "other_id_2": "o2",
    }
    assert profile["device_identities"] == [
        {"type": "push_token", "encoding": "none", "value": "push"}
    ]
    assert profile["user_attributes"] == {"Mixed_Case": "keep"}


def test_mpids_are_deterministic_after_a_reset(
    api: Api, control: EmulatorControl, events_table: str
) -> None:
    def run_once() -> dict[str, int]:
        api.create_connection()
        api.create_model(f"SELECT * FROM {events_table}")
        api.create_pipeline(schedule_start_time=instant(START))
        control.settle()
        return {k: p["mpid"] for k, p in by_customer(control).items()}

    first = run_once()
    control.reset()
    assert run_once() == first
    assert all(-(2**63) <= mpid < 2**63 for mpid in first.values())
    assert len(set(first.values())) == 5


def test_over_the_record_limit_fails_without_extracting(
    emulator: EmulatorServer,
    api: Api,
    control: EmulatorControl,
    events_pipeline: CreatePipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extracted: list[str] = []
    real_extract = emulator.backend.warehouse.extract

    def spy(credentials: Any, sql: str, predicate: str, batch_rows: int) -> Iterator[list[str]]:
        extracted.append(predicate)
        return real_extract(credentials, sql, predicate, batch_rows)

    monkeypatch.setattr(emulator.backend.warehouse, "extract", spy)
    assert control.set_record_limits(hourly=4)["hourly"] == 4
    events_pipeline(schedule_start_time=instant(START))
    control.settle()
    assert counts(api) == [("failed", 0, 0), ("success", 3, 3), ("success", 1, 1)]
    assert len(extracted) == 2  # the failed window was only counted
    pipeline = api.ok("GET", "pipelines/pipe")
    assert pipeline["is_faulted"] is True
    assert pipeline["faulted_reason"] == (
        "The window 2026-11-28T09:00:00Z .. 2026-11-28T10:00:00Z holds 5 records, more than the "
        "hourly limit of 4 records per run; nothing was extracted."
    )
    assert "c2" not in by_customer(control)  # c2 only appears in the rejected window


def test_on_demand_runs_use_the_on_demand_limit(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    control.set_record_limits(on_demand=6, hourly=1)
    events_pipeline(schedule_interval="on_demand", schedule_start_time=instant(START))
    api.ok("POST", "pipelines/pipe")
    control.settle()
    assert counts(api) == [("failed", 0, 0)]
    assert "more than the on-demand limit of 6" in api.ok("GET", "pipelines/pipe")["faulted_reason"]


def test_limits_reset_to_the_documented_values(control: EmulatorControl, api: Api) -> None:
    control.set_record_limits(hourly=1)
    control.reset()
    assert control.record_limits() == DEFAULT_RECORD_LIMITS


@pytest.fixture
def scratch_table(local_snowflake: LocalSnowflake) -> Iterator[tuple[str, Any]]:
    """A fresh table name plus a cursor to create/drop it."""
    connection = local_snowflake.connect()
    cursor = connection.cursor()
    name = f"EMU.PUBLIC.{unique('SCRATCH')}"
    try:
        yield name, cursor
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        connection.close()


def test_sql_failing_at_run_time_fails_the_run(
    api: Api, control: EmulatorControl, scratch_table: tuple[str, Any]
) -> None:
    table, cursor = scratch_table
    cursor.execute(f"CREATE TABLE {table} (EMAIL VARCHAR, UPDATED_AT TIMESTAMP_NTZ)")
    api.create_connection()
    api.create_model(f"SELECT * FROM {table}")
    api.create_pipeline(schedule_start_time=instant(START))
    cursor.execute(f"DROP TABLE {table}")
    control.advance(0)
    assert counts(api)[0] == ("failed", 0, 0)
    reason = api.ok("GET", "pipelines/pipe")["faulted_reason"]
    assert reason.startswith("The warehouse rejected the query:")
    assert table.split(".")[-1] in reason
    assert api.ok("GET", "connections/conn")["is_faulted"] is False


def test_an_unreachable_warehouse_fails_the_run_and_faults_the_connection(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_start_time=instant(START))
    control.set_warehouse_unreachable()
    control.settle()
    assert {c[0] for c in counts(api)} == {"failed"}
    status = api.ok("GET", "pipelines/pipe/status")
    assert status["is_faulted"] is True and status["is_connection_faulted"] is True
    assert api.ok("GET", "pipelines/pipe")["faulted_reason"].startswith(
        "Could not connect to the warehouse:"
    )
    control.set_warehouse_unreachable(False)
    control.advance(3600)
    assert counts(api)[-1][0] == "success"
    assert api.ok("GET", "pipelines/pipe/status")["is_connection_faulted"] is False


def test_credentials_changed_after_creation_fail_the_run(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_start_time=instant(CLOCK_START))
    api.ok("PUT", "connections/conn", connection_body(api.config, password="rotated"))
    control.advance(3600)
    assert counts(api) == [("failed", 0, 0)]
    assert "rejected the credentials" in api.ok("GET", "pipelines/pipe")["faulted_reason"]
    assert api.ok("GET", "connections/conn")["is_faulted"] is True


def test_a_warehouse_that_is_really_down_is_505(
    start_emulator: Callable[..., EmulatorServer], events_table: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    server = start_emulator(snowflake_port=closed_port, snowflake_login_timeout=1)
    api, _ = clients(server)
    api.create_source(f"SELECT * FROM {events_table}")
    response = api.post("pipelines", pipeline_body(api.config, schedule_interval="on_demand"))
    assert response.status_code == 505
    assert "could not connect to Snowflake" in response.json()["errors"][0]["message"]


# ---------------------------------------------------------------------------- window literals

TYPED = "EMU.PUBLIC.TYPED"
# The same four instants (UTC) in every representation; 10:00 and 11:00 sit on hour boundaries.
INSTANTS = [
    "2026-11-28 09:00:00",
    "2026-11-28 10:00:00",
    "2026-11-28 10:30:00",
    "2026-11-28 11:00:00",
]


def _typed_rows() -> Iterator[str]:
    """One INSERT per instant: the same instant in every column's representation."""
    for n, text in enumerate(INSTANTS):
        at = datetime.fromisoformat(text).replace(tzinfo=UTC)
        new_york = at.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S")
        shifted = (at - timedelta(seconds=1800)).strftime("%Y-%m-%d %H:%M:%S")
        day = (at - timedelta(days=n % 3)).strftime("%Y-%m-%d")
        yield (
            f"INSERT INTO {TYPED} SELECT 'u{n}@example.com', '{text}', '{text}+00:00', "
            f"'{text}+00:00', {int(at.timestamp() * 1000)}, {int(at.timestamp())}, "
            f"'{new_york}', '{shifted}', '{day}'"
        )


@pytest.fixture(scope="module")
def typed_table(local_snowflake: LocalSnowflake) -> str:
    statements = [
        "CREATE DATABASE IF NOT EXISTS EMU",
        "CREATE SCHEMA IF NOT EXISTS EMU.PUBLIC",
        f"CREATE OR REPLACE TABLE {TYPED} (EMAIL VARCHAR, NTZ TIMESTAMP_NTZ, "
        "TZ TIMESTAMP_TZ, LTZ TIMESTAMP_LTZ, MS NUMBER, S NUMBER, NY TIMESTAMP_NTZ, "
        "SHIFTED TIMESTAMP_NTZ, D DATE)",
        *_typed_rows(),
    ]
    with contextlib.closing(local_snowflake.connect()) as connection:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
    return TYPED


@pytest.mark.parametrize(
    ("column", "field_type", "extra"),
    [
        ("NTZ", "timestamp_ntz", {}),
        ("TZ", "timestamp_tz", {}),
        ("LTZ", "timestamp_ltz", {}),
        ("NTZ", "datetime", {}),
        ("MS", "timestamp_unixtime_ms", {}),
        ("S", "timestamp_unixtime_s", {}),
        ("NY", "timestamp_ntz", {"load_timestamp_field_time_zone": "America/New_York"}),
        ("SHIFTED", "timestamp_ntz", {"load_timestamp_field_time_offset": 1800}),
    ],
)
def test_window_bounds_follow_the_timestamp_type(
    api: Api,
    control: EmulatorControl,
    typed_table: str,
    column: str,
    field_type: str,
    extra: dict[str, Any],
) -> None:
    api.create_connection()
    api.create_model(
        f"SELECT * FROM {typed_table}",
        load_timestamp_field_name=column,
        load_timestamp_field_type=field_type,
        **extra,
    )
    api.create_pipeline(schedule_start_time=instant(START))
    control.settle()
    # 09-10: 09:00, 10:00 | 10-11: 10:00, 10:30, 11:00 | 11-12: 11:00
    assert [c[1] for c in counts(api)] == [2, 3, 1]


def test_date_windows_compare_whole_days(
    api: Api, control: EmulatorControl, typed_table: str
) -> None:
    api.create_connection()
    api.create_model(
        f"SELECT * FROM {typed_table}",
        load_timestamp_field_name="D",
        load_timestamp_field_type="date",
    )
    api.create_pipeline(schedule_interval="daily", schedule_start_time="2026-11-26T00:00:00Z")
    control.set_clock(CLOCK_START.replace(hour=0) + timedelta(days=1))
    # D = 11-28, 11-27, 11-26, 11-28; each window holds two whole days, so a day is read twice:
    # '11-26'..'11-27' -> 2, '11-27'..'11-28' -> 3, '11-28'..'11-29' -> 2.
    assert [c[1] for c in counts(api)] == [2, 3, 2]
