"""Runs over the sample warehouse (wsync_dagster.local.sample_data), checked row by row."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster.local.sample_data import (
    CUSTOMER_SCORES,
    TICKET_ACTIVITY,
    SampleConfig,
    SampleSummary,
    customer_score_rows,
    ticket_activity_rows,
)
from wsync_dagster_tests.conftest import CLOCK_START
from wsync_dagster_tests.emulator.helpers import Api, instant

ALL = "device_identities,user_identities,user_attributes"


def expected_counts(
    rows: list[tuple[Any, ...]],
    identity_columns: tuple[int, ...],
    start: datetime,
    step: timedelta,
    n: int,
) -> list[tuple[int, int]]:
    """(extracted, mapped) per inclusive window, from the generated rows themselves."""
    result = []
    for k in range(n):
        low = (start + k * step).replace(tzinfo=None)
        high = low + step
        inside = [row for row in rows if low <= row[-1] <= high]
        mapped = [row for row in inside if any(row[c] is not None for c in identity_columns)]
        result.append((len(inside), len(mapped)))
    return result


def synced_counts(api: Api, pipeline_id: str) -> list[tuple[int, int]]:
    runs = list(reversed(api.runs(pipeline_id)))
    assert {r["pipeline_run_state"] for r in runs} == {"success"}
    return [(r["records_extracted"], r["records_mapped"]) for r in runs]


@pytest.fixture(scope="module")
def synced(
    emulator_server: EmulatorServer, sample_warehouse: SampleSummary, sample_config: SampleConfig
) -> Api:
    """Both sample tables synced once for this module (its tests only read): customers daily over
    10 days, tickets hourly over 3 days."""
    assert sample_config.anchor == CLOCK_START
    assert emulator_server.url is not None
    control = EmulatorControl(emulator_server.url)
    control.reset()
    api = Api(emulator_server.url, emulator_server.config)
    api.create_connection(database="WSYNC_DEMO")
    api.create_model(
        f"SELECT * FROM {CUSTOMER_SCORES}",
        id="customers",
        load_timestamp_field_type="timestamp_ntz",
    )
    api.create_model(f"SELECT * FROM {TICKET_ACTIVITY}", id="tickets")
    api.create_pipeline(
        id="customers",
        data_model_id="customers",
        schedule_interval="daily",
        schedule_start_time="2026-11-18T00:00:00Z",
    )
    api.create_pipeline(
        id="tickets",
        data_model_id="tickets",
        schedule_start_time=instant(CLOCK_START - timedelta(days=3)),
    )
    control.set_clock(datetime(2026, 11, 29, tzinfo=UTC))
    return api


def test_daily_counts_equal_the_rows_of_each_inclusive_window(
    synced: Api, sample_config: SampleConfig, sample_warehouse: SampleSummary
) -> None:
    rows = list(customer_score_rows(sample_config))
    start = datetime(2026, 11, 18, tzinfo=UTC)
    expected = expected_counts(rows, (0, 1), start, timedelta(days=1), 11)
    assert synced_counts(synced, "customers") == expected
    extracted = sum(e for e, _ in expected)
    summary = sample_warehouse.table(CUSTOMER_SCORES)
    # Every row is read at least once, and rows on a midnight are read twice.
    assert extracted > summary.rows and summary.boundary_rows > 0
    assert sum(m for _, m in expected) < extracted  # identity-less rows are not mapped


def test_hourly_counts_equal_the_rows_of_each_inclusive_window(
    synced: Api, sample_config: SampleConfig
) -> None:
    rows = list(ticket_activity_rows(sample_config))
    start = CLOCK_START - timedelta(days=3)
    expected = expected_counts(rows, (0,), start, timedelta(hours=1), 72 + 12)
    assert synced_counts(synced, "tickets") == expected


def test_profiles_read_back_through_the_profile_api(
    synced: Api, sample_config: SampleConfig
) -> None:
    config = synced.config
    base = f"/userprofile/v1/resolve/{config.org_id}/{config.account_id}/{config.workspace_id}"
    rows = list(customer_score_rows(sample_config))
    latest: dict[str, tuple[Any, ...]] = {}
    for row in sorted(rows, key=lambda r: r[-1]):
        if row[0] is not None:
            latest[row[0]] = row
    with_lists = [row for row in latest.values() if len(row[5]) >= 2]
    customer_id, email, first_name, value, _, categories, _ = with_lists[0]
    body = {
        "environment_type": "development",
        "identity": {"type": "customer_id", "value": customer_id},
    }
    profile = synced.ok("POST", f"{base}?fields={ALL}", body)
    attributes = profile["user_attributes"]
    assert attributes["FIRST_NAME"] == first_name
    assert attributes["FAVORITE_CATEGORIES"] == categories  # a list attribute
    assert Decimal(attributes["LIFETIME_VALUE"]) == value
    assert "UPDATED_AT" not in attributes
    assert {i["type"]: i["value"] for i in profile["user_identities"]} == {
        "customer_id": customer_id,
        "email": email,
    }
    by_email = {"environment_type": "development", "identity": {"type": "email", "value": email}}
    assert synced.ok("POST", f"{base}?fields={ALL}", by_email)["mpid"] == profile["mpid"]


def test_ticket_activity_lands_on_the_customers_profiles(
    synced: Api, sample_config: SampleConfig
) -> None:
    customers = {row[1] for row in customer_score_rows(sample_config) if row[1] is not None}
    tickets = [row for row in ticket_activity_rows(sample_config) if row[0] is not None]
    profiles = EmulatorControl(synced.url).profiles()
    by_email = {
        i["value"]: p for p in profiles for i in p["user_identities"] if i["type"] == "email"
    }
    shared = [row[0] for row in tickets if row[0] in customers]
    guests = {row[0] for row in tickets if row[0] not in customers}
    assert shared and guests
    merged = by_email[shared[0]]["user_attributes"]
    assert {"FIRST_NAME", "TICKETS_OPENED", "CSAT_SCORE"} <= set(merged)
    assert len(profiles) == len(customers | guests)
