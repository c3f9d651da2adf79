"""Helpers for the tests of the real client against the live emulator (``test_live_*.py``)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from wsync_dagster.emulator import EmulatorConfig, EmulatorControl, EmulatorServer
from wsync_dagster.mparticle import Connection, Pipeline, WarehouseSyncClient
from wsync_dagster_tests.conftest import CLOCK_START, EVENTS
from wsync_dagster_tests.mparticle.helpers import (
    TOKEN_PATH,
    WS_PREFIX,
    EmulatorTime,
    data_model,
    pipeline,
    snowflake_connection,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WS = WS_PREFIX
CONNECTION_ID = "sf-connection"
MODEL_ID = "orders-model"
PIPELINE_ID = "p1"

StartEmulator = Callable[..., EmulatorServer]


@dataclass(frozen=True)
class Live:
    """A real client connected to a live emulator, with the emulator's admin API and clock."""

    client: WarehouseSyncClient
    control: EmulatorControl
    time: EmulatorTime
    config: EmulatorConfig


LiveFactory = Callable[..., Live]


def warehouse_connection(live: Live, **changes: Any) -> Connection:
    """A Snowflake connection the emulator can log in with (the stand-in's user and password)."""
    config = live.config
    fields: dict[str, Any] = {
        "database": "EMU",
        "user": config.snowflake_user,
        "password": config.snowflake_password,
    }
    return snowflake_connection(**{**fields, **changes})


def create_source(live: Live, sql: str = f"SELECT * FROM {EVENTS}") -> None:
    """The connection and data model a pipeline needs, over ``sql``."""
    live.client.create_connection(warehouse_connection(live))
    live.client.create_data_model(data_model(sql_query=sql))


def create_pipeline(live: Live, resource: Pipeline | None = None) -> Pipeline:
    """Create the source (:func:`create_source`) and ``resource`` (default: ``pipeline()``)."""
    create_source(live)
    return live.client.create_pipeline(resource or pipeline())


def with_hourly_runs(live: Live, seconds: float) -> WarehouseSyncClient:
    """``live``'s client once an ``hourly()`` pipeline has run for ``seconds`` of emulator time."""
    create_pipeline(live, hourly())
    live.control.advance(seconds)
    return live.client


def hourly(start_offset: timedelta = timedelta(0), **changes: Any) -> Pipeline:
    """An hourly pipeline starting ``start_offset`` after the emulator's start time."""
    return pipeline(
        schedule_interval="hourly", schedule_start_time=CLOCK_START + start_offset, **changes
    )


def statuses(live: Live, method: str, path: str) -> list[int | None]:
    """Statuses of the requests the emulator logged for ``method path`` (``None``: dropped)."""
    return [
        entry["status"]
        for entry in live.control.request_log()
        if entry["method"] == method and entry["path"] == path
    ]


def api_statuses(live: Live) -> list[int | None]:
    """Statuses of every logged request except token requests, in order."""
    return [entry["status"] for entry in live.control.request_log() if entry["path"] != TOKEN_PATH]


def token_requests(live: Live) -> list[int | None]:
    return statuses(live, "POST", TOKEN_PATH)


def elapsed(live: Live) -> timedelta:
    """Emulator time since the reset."""
    return live.control.clock() - CLOCK_START
