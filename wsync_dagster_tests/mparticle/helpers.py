"""Shared test data: documented payloads, fake time, and builders for runs and resources."""

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.mparticle import Connection, DataModel, Pipeline, RetryPolicy

WORKSPACE_ID = 5328
ORG_ID = 1001
ACCOUNT_ID = 2002
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret-DO-NOT-LEAK"
PASSWORD = "snowflake-password-DO-NOT-LEAK"
FEED_KEY = "us1-feed-key-DO-NOT-LEAK"
SERVICE_ACCOUNT_KEY = '{"private_key": "bq-key-DO-NOT-LEAK"}'

PAYLOADS = Path(__file__).parent / "payloads"

TEST_POLICY = RetryPolicy(jitter=lambda: 0.0)
"""The default policy without randomness: each backoff is exactly half its nominal value."""


def payload(name: str) -> Any:
    """A documented example from ``payloads/`` (a fresh copy each call)."""
    return json.loads((PAYLOADS / name).read_text())


class FakeTime:
    """A monotonic clock, a wall clock and a sleep that advance only when slept or moved."""

    def __init__(self, wall_start: datetime = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = 1000.0
        self._start = self.now
        self._wall_start = wall_start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self._wall_start + timedelta(seconds=self.now - self._start)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class EmulatorTime:
    """The client's sleep and clock on a live emulator's (manual) clock.

    Sleeping advances the emulator clock, which runs whatever falls due on the way; reading the
    clock asks the emulator. Nothing waits for real. ``sleeps`` records every requested sleep.
    """

    def __init__(self, control: EmulatorControl) -> None:
        self.control = control
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.control.clock().timestamp()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.control.advance(seconds)


def audit_time(moment: datetime) -> str:
    """``moment`` in mParticle's audit format (no zone, milliseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def run_json(
    run_id: int,
    state: str = "running",
    *,
    pipeline_id: str = "p1",
    created_on: datetime | None = None,
    manual: bool = True,
) -> dict[str, Any]:
    """A run object shaped like the documented one, with the given id, state and origin."""
    run = copy.deepcopy(payload("pipeline_run.json"))
    created = created_on or datetime(2024, 1, 1, tzinfo=UTC)
    run.update(
        pipeline_run_id=run_id,
        id=pipeline_id,
        pipeline_run_state=state,
        pipeline_run_type="manual" if manual else "scheduled",
        is_externally_triggered=manual,
        logical_date=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        created_on=audit_time(created),
    )
    return run


def snowflake_connection(**changes: Any) -> Connection:
    """A complete Snowflake connection to send."""
    fields: dict[str, Any] = {
        "id": "sf-connection",
        "name": "Snowflake connection",
        "type": "snowflake",
        "source_account_id": "gd1234",
        "region": "us-central1.gcp",
        "warehouse": "compute_wh",
        "database": "mp",
        "role": "mp_role",
        "user": "mp_user",
        "password": PASSWORD,
    }
    return Connection(**{**fields, **changes})


def bigquery_connection(**changes: Any) -> Connection:
    """A complete BigQuery connection to send."""
    fields: dict[str, Any] = {
        "id": "bq-connection",
        "name": "BigQuery connection",
        "type": "bigquery",
        "region": "us-east4",
        "project_id": "mp-project",
        "dataset_id": "mp-dataset",
        "service_account_id": "mp_service",
        "service_account_key": SERVICE_ACCOUNT_KEY,
    }
    return Connection(**{**fields, **changes})


def data_model(**changes: Any) -> DataModel:
    """A complete data model to send."""
    fields: dict[str, Any] = {
        "id": "orders-model",
        "name": "Orders model",
        "sql_query": "SELECT customer_id, email, updated_at FROM db.sch.orders",
        "load_timestamp_field_name": "UPDATED_AT",
        "load_timestamp_field_type": "timestamp_ntz",
    }
    return DataModel(**{**fields, **changes})


def pipeline(**changes: Any) -> Pipeline:
    """A complete on-demand pipeline to send."""
    fields: dict[str, Any] = {
        "id": "p1",
        "name": "Orders pipeline",
        "is_active": True,
        "is_draft": False,
        "connection_id": "sf-connection",
        "data_model_id": "orders-model",
        "partner_feed_key": FEED_KEY,
        "schedule_start_time": datetime(2024, 1, 1, tzinfo=UTC),
        "schedule_interval": "on_demand",
        "environment": "development",
    }
    return Pipeline(**{**fields, **changes})
