"""Live-server fixtures shared by every test tier.

The local Snowflake stand-in runs once per test session as a child process on 127.0.0.1 (free port) and
is stopped when the session ends. Tests that need the sample warehouse share one seeding of it.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from wsync_dagster.local.sample_data import SampleConfig, SampleSummary, seed_sample_warehouse
from wsync_dagster.local.snowflake import LocalSnowflake

# A fixed anchor keeps the session's sample data identical from run to run.
SAMPLE_ANCHOR = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


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
