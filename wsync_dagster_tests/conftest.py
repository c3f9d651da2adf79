"""Live-server fixtures shared by every test tier.

The local Snowflake stand-in runs once per test session as a child process on 127.0.0.1 (free port) and
is stopped when the session ends. Tests that need the sample warehouse share one seeding of it.

The local mParticle emulator runs once per session in-process on 127.0.0.1 (free port, manual clock),
with the stand-in as its warehouse; ``emulator``/``control`` hand it out reset to a clean state.
Both the emulator's own tests and the client's live tests use it. ``EMU.PUBLIC.EVENTS`` is a small
table with known rows for window and profile tests.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from wsync_dagster import compat
from wsync_dagster.emulator import EmulatorConfig, EmulatorControl, EmulatorServer
from wsync_dagster.local.sample_data import SampleConfig, SampleSummary, seed_sample_warehouse
from wsync_dagster.local.snowflake import LOCAL_PASSWORD, LOCAL_USER, LocalSnowflake

# A fixed anchor keeps the session's sample data identical from run to run.
SAMPLE_ANCHOR = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# The emulator clock starts here after every reset (the sample warehouse's anchor, a Saturday noon).
CLOCK_START = SAMPLE_ANCHOR
EVENTS = "EMU.PUBLIC.EVENTS"
# (CUSTOMER_ID, EMAIL, SCORE, ACTIVE, TAGS, UPDATED_AT) — two rows sit exactly on 10:00.
EVENT_ROWS = [
    ("c1", "c1@example.com", 12.5, True, ["a", "b"], "2026-11-28 09:00:00"),
    ("c2", "c2@example.com", 3, False, None, "2026-11-28 09:30:00"),
    (None, None, 7, None, None, "2026-11-28 09:45:00"),
    ("c3", None, None, None, ["x"], "2026-11-28 10:00:00"),
    ("c4", "c4@example.com", 1.25, True, [], "2026-11-28 10:00:00"),
    ("c1", "c1@new.example.com", 99, True, ["c"], "2026-11-28 10:59:59"),
    ("c5", "c5@example.com", 5, False, None, "2026-11-28 11:00:01"),
]


@pytest.fixture(scope="session")
def local_snowflake() -> Iterator[LocalSnowflake]:
    with LocalSnowflake() as stand_in:
        yield stand_in


@pytest.fixture(scope="session")
def sample_config() -> SampleConfig:
    return SampleConfig(anchor=SAMPLE_ANCHOR)


@pytest.fixture(scope="session")
def sample_warehouse(local_snowflake: LocalSnowflake, sample_config: SampleConfig) -> SampleSummary:
    connection = local_snowflake.connect()
    try:
        return seed_sample_warehouse(connection, sample_config)
    finally:
        connection.close()


@pytest.fixture
def snowflake_cursor(local_snowflake: LocalSnowflake) -> Iterator[Any]:
    connection = local_snowflake.connect()
    cursor = connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()
        connection.close()


# ------------------------------------------------------------------------------ the emulator


def emulator_config(stand_in: LocalSnowflake, **overrides: Any) -> EmulatorConfig:
    """An emulator on the stand-in with a manual clock at ``CLOCK_START``; ``overrides`` win."""
    settings: dict[str, Any] = {
        "snowflake_host": stand_in.host,
        "snowflake_port": stand_in.port,
        "snowflake_user": LOCAL_USER,
        "snowflake_password": LOCAL_PASSWORD,
        "clock": "manual",
        "clock_start": CLOCK_START,
    }
    return EmulatorConfig(**(settings | overrides))


def create_table(cursor: Any, table: str, columns: str) -> None:
    """(Re)create ``table`` (``DATABASE.SCHEMA.TABLE``) with ``columns``, and its database and
    schema if missing, in the Snowflake stand-in."""
    database, schema, _ = table.split(".")
    cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
    cursor.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")


@pytest.fixture(scope="session")
def events_table(local_snowflake: LocalSnowflake) -> str:
    connection = local_snowflake.connect()
    try:
        cursor = connection.cursor()
        create_table(
            cursor,
            EVENTS,
            "CUSTOMER_ID VARCHAR, EMAIL VARCHAR, SCORE FLOAT, ACTIVE BOOLEAN, TAGS ARRAY, "
            "UPDATED_AT TIMESTAMP_NTZ",
        )
        for row in EVENT_ROWS:
            tags = "NULL" if row[4] is None else f"ARRAY_CONSTRUCT({', '.join(map(repr, row[4]))})"
            values = ", ".join("NULL" if v is None else repr(v) for v in row[:4])
            cursor.execute(f"INSERT INTO {EVENTS} SELECT {values}, {tags}, '{row[5]}'")
    finally:
        connection.close()
    return EVENTS


@pytest.fixture(scope="session")
def emulator_server(local_snowflake: LocalSnowflake) -> Iterator[EmulatorServer]:
    with EmulatorServer(emulator_config(local_snowflake)) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The session emulator, reset to a clean state and the start of its clock."""
    assert emulator_server.url is not None
    EmulatorControl(emulator_server.url).reset()
    return emulator_server


@pytest.fixture
def control(emulator: EmulatorServer) -> EmulatorControl:
    assert emulator.url is not None
    return EmulatorControl(emulator.url)


@pytest.fixture
def start_emulator(local_snowflake: LocalSnowflake) -> Iterator[Callable[..., EmulatorServer]]:
    """Start extra emulators with other settings (stopped after the test)."""
    started: list[EmulatorServer] = []

    def start(**overrides: Any) -> EmulatorServer:
        server = EmulatorServer(emulator_config(local_snowflake, **overrides))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def no_instance_left_entered() -> Iterator[None]:
    """Fail the test that leaves Dagster's definitions-state storage set (a schedule or sensor
    context built without ``with`` does). The leak showed only much later, when garbage collection
    put back a dead instance's storage and every Definitions load after it failed with "Attempted to
    resolve undefined DagsterInstance weakref"; here it names the test that caused it."""
    before = compat.current_defs_state_storage()
    yield
    after = compat.current_defs_state_storage()
    assert after is before, (
        "this test left a Dagster instance entered (its definitions-state storage is still the "
        "current one): build schedule and sensor contexts with `with dg.build_..._context(...)`"
    )
