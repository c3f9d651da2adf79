"""Connections, data models and pipelines: CRUD, validation, masking, audit fields."""

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster_tests.conftest import CLOCK_START
from wsync_dagster_tests.emulator.helpers import (
    Api,
    bigquery_body,
    connection_body,
    documented,
    error_messages,
    instant,
    model_body,
    pipeline_body,
)

AUDIT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$")
SQL = "SELECT * FROM EMU.PUBLIC.EVENTS"


# ----------------------------------------------------------------------------------- connections


def test_audit_times_trim_fractional_digits(api: Api, control: EmulatorControl) -> None:
    control.advance(0.23)
    created = api.create_connection()
    assert created["created_on"] == "2026-11-28T12:00:00.23"
    assert AUDIT_RE.match(created["created_on"])


def test_connection_replace_sets_last_modified(api: Api, control: EmulatorControl) -> None:
    api.create_connection()
    control.advance(61.5)
    replaced = api.ok("PUT", "connections/conn", connection_body(api.config, name="Renamed"))
    assert replaced["name"] == "Renamed"
    assert replaced["created_on"] == "2026-11-28T12:00:00"
    assert replaced["last_modified_on"] == "2026-11-28T12:01:01.5"
    assert replaced["last_modified_by"] == "developer@mparticle.com"


def test_connection_list_filters_by_type(api: Api) -> None:
    api.create_connection(id="sf")
    created = api.ok("POST", "connections", bigquery_body(api.config))
    assert created["service_account_key"] == "************"
    assert [c["id"] for c in api.ok("GET", "connections")] == ["sf", "bq"]
    assert [c["id"] for c in api.ok("GET", "connections?type=bigquery")] == ["bq"]
    assert [c["id"] for c in api.ok("GET", "connections?type=snowflake")] == ["sf"]
    assert api.get("connections?type=redshift").status_code == 400
    assert api.get("connections?kind=snowflake").status_code == 400


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"colour": "red", "size": 1}, "Unknown field(s): colour, size."),
        (
            {"id": "has space"},
            "id may only contain letters, digits, '_' and '-' (got 'has space').",
        ),
        ({"type": "redshift"}, "type must be one of snowflake, bigquery (got 'redshift')."),
        ({"workspace_id": "abc"}, "workspace_id must be an integer."),
        ({"workspace_id": 1}, "workspace_id 1 does not match the workspace of the URL (5328)."),
        ({"password": None}, "password must not be null."),
        ({"name": ""}, "name must not be empty."),
        ({"project_id": "p"}, "Unknown field(s): project_id."),
    ],
)
def test_connection_validation(api: Api, change: dict[str, Any], expected: str) -> None:
    response = api.post("connections", connection_body(api.config, **change))
    assert response.status_code == 400
    assert error_messages(response) == [expected]


def test_connection_missing_fields_are_named(api: Api) -> None:
    body = connection_body(api.config)
    del body["warehouse"], body["user"]
    response = api.post("connections", body)
    assert error_messages(response) == ["Missing required field(s): warehouse, user."]


def test_numeric_string_workspace_id_is_emitted_as_int(api: Api) -> None:
    created = api.create_connection(workspace_id=str(api.config.workspace_id))
    assert created["workspace_id"] == api.config.workspace_id


def test_response_only_fields_are_accepted_and_ignored(api: Api) -> None:
    created = api.create_connection(is_faulted=True, created_on="2020-01-01T00:00:00")
    assert created["is_faulted"] is False
    assert created["created_on"] == "2026-11-28T12:00:00"


def test_duplicate_ids_and_unknown_ids(api: Api) -> None:
    api.create_connection()
    assert error_messages(api.post("connections", connection_body(api.config))) == [
        "Connection conn already exists."
    ]
    assert api.get("connections/nope").status_code == 404
    assert error_messages(api.delete("connections/nope")) == ["Connection nope not found."]
    response = api.put("connections/conn", connection_body(api.config, id="other"))
    assert response.status_code == 400
    assert api.put("connections/nope", connection_body(api.config, id="nope")).status_code == 404


def test_delete_returns_204(api: Api) -> None:
    api.create_connection()
    response = api.delete("connections/conn")
    assert response.status_code == 204 and response.content == b""
    assert api.get("connections/conn").status_code == 404


def test_unknown_workspace_is_404(api: Api) -> None:
    response = api.get(api.url + "/platform/experimental/workspaces/1/inputs/warehouse/connections")
    assert response.status_code == 404
    assert error_messages(response) == ["Workspace 1 not found."]


# ----------------------------------------------------------------------------------- data models


def test_data_model_round_trip(api: Api) -> None:
    created = api.create_model(SQL, load_timestamp_field_time_zone="America/New_York")
    assert list(created) == list(documented("data_model"))
    assert created["load_timestamp_field_time_zone"] == "America/New_York"
    assert created["load_timestamp_field_time_offset"] == 0
    assert api.ok("GET", "data-models/model") == created
    assert api.ok("GET", "data-models") == [created]
    replaced = api.ok("PUT", "data-models/model", model_body(api.config, SQL, name="New"))
    assert replaced["name"] == "New" and replaced["last_modified_by"] is not None
    assert api.delete("data-models/model").status_code == 204


def test_data_model_accepts_the_table_spellings_and_emits_the_example_ones(api: Api) -> None:
    body = model_body(api.config, SQL)
    del body["load_timestamp_field_time_zone"], body["load_timestamp_field_time_offset"]
    body |= {
        "load_timestamp_field_tz": "Europe/Paris",
        "load_timestamp_field_offset_seconds": "1800",
    }
    created = api.ok("POST", "data-models", body)
    assert created["load_timestamp_field_time_zone"] == "Europe/Paris"
    assert created["load_timestamp_field_time_offset"] == 1800
    assert "load_timestamp_field_tz" not in created


def test_data_model_rejects_both_spellings_at_once(api: Api) -> None:
    body = model_body(api.config, SQL, load_timestamp_field_tz="UTC")
    assert error_messages(api.post("data-models", body)) == [
        "Give either load_timestamp_field_time_zone or load_timestamp_field_tz, not both."
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": "dbt"}, "type must be one of sql (got 'dbt')."),
        ({"load_timestamp_field_type": "epoch"}, "load_timestamp_field_type must be one of"),
        (
            {"load_timestamp_field_time_zone": "Mars/Olympus"},
            "load_timestamp_field_time_zone must be an IANA time zone",
        ),
        (
            {"load_timestamp_field_time_offset": 1.5},
            "load_timestamp_field_time_offset must be an integer.",
        ),
    ],
)
def test_data_model_validation(api: Api, change: dict[str, Any], expected: str) -> None:
    response = api.post("data-models", model_body(api.config, SQL, **change))
    assert response.status_code == 400
    assert error_messages(response)[0].startswith(expected)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("WITH x AS (SELECT 1) SELECT * FROM x", "sql_query must start with SELECT, not WITH."),
        ("DELETE FROM t", "sql_query must start with SELECT, not DELETE."),
        ("SELECT * FROM t; DROP TABLE t", "sql_query must be a single query without ';'"),
        ("SELECT * FROM t;", "sql_query must be a single query without ';'"),
        ("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x)", "sql_query uses unsupported SQL: WITH"),
        ("SELECT a FROM t WHERE b IN (SELECT 1 FROM u) UNION SELECT update FROM v", "sql_query uses unsupported SQL: UPDATE"),
        ("  -- nothing\n", "sql_query must be a SELECT statement."),
    ],
)  # fmt: skip
def test_unsupported_sql_is_rejected(api: Api, sql: str, expected: str) -> None:
    response = api.post("data-models", model_body(api.config, sql))
    assert response.status_code == 400
    assert error_messages(response)[0].startswith(expected)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'delete me' AS note, \"UPDATE\" AS x, LAST_UPDATED, created_at FROM t",
        "(SELECT a FROM t) -- drop later\n",
        "select /* with */ a, dropped_at FROM t ORDER BY a",
    ],
)
def test_keywords_in_quotes_comments_and_longer_words_are_fine(api: Api, sql: str) -> None:
    assert api.post("data-models", model_body(api.config, sql)).status_code == 200


def test_referenced_resources_cannot_be_deleted(api: Api, events_table: str) -> None:
    api.create_connection()
    api.create_model(f"SELECT * FROM {events_table}")
    api.create_pipeline(schedule_start_time=instant(CLOCK_START))
    for path, kind in (
        ("connections/conn", "Connection conn"),
        ("data-models/model", "Data model model"),
    ):
        response = api.delete(path)
        assert response.status_code == 400
        assert error_messages(response) == [
            f"{kind} is used by pipeline(s) pipe; delete or change them first."
        ]
    assert api.delete("pipelines/pipe").status_code == 204
    assert api.delete("data-models/model").status_code == 204
    assert api.delete("connections/conn").status_code == 204


# ------------------------------------------------------------------------------------- pipelines


@pytest.fixture
def resources(api: Api, events_table: str) -> Api:
    api.create_connection()
    api.create_model(f"SELECT * FROM {events_table}")
    return api


def test_default_start_is_truncated_to_the_minute(resources: Api, control: EmulatorControl) -> None:
    control.advance(125.5)
    created = resources.create_pipeline()
    assert created["schedule_start_time"] == "2026-11-28T12:02:00Z"


def test_partner_feed_id_is_derived_from_the_key(resources: Api) -> None:
    a = resources.create_pipeline(id="a", partner_feed_key="us1-1", is_active=False)
    b = resources.create_pipeline(id="b", partner_feed_key="us1-1", is_active=False)
    c = resources.create_pipeline(id="c", partner_feed_key="us1-2", is_active=False)
    assert a["partner_feed_id"] == b["partner_feed_id"] != c["partner_feed_id"]


def test_pipeline_update_like_the_documented_example(
    resources: Api, control: EmulatorControl
) -> None:
    resources.create_pipeline(schedule_start_time="2026-11-28T11:00:00Z")
    control.advance(60)
    body = pipeline_body(
        resources.config, schedule_interval="weekly", schedule_start_time="2026-11-21T12:05:00Z"
    )
    updated = resources.ok("PUT", "pipelines/pipe", body)
    assert updated["schedule_interval"] == "weekly"
    assert updated["schedule_start_time"] == "2026-11-21T12:05:00Z"
    assert updated["last_modified_on"] == "2026-11-28T12:01:00"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schedule_interval": "yearly"}, "schedule_interval must be one of hourly, daily, weekly, monthly, on_demand, once (got 'yearly')."),
        ({"environment": "staging"}, "environment must be one of development, production (got 'staging')."),
        ({"is_active": "yes"}, "is_active must be true or false."),
        ({"schedule_start_time": "2026-11-28T12:00:00"}, "schedule_start_time must be a UTC instant YYYY-MM-DDTHH:MM:SSZ (got '2026-11-28T12:00:00')."),
        ({"schedule_start_time": "2026-11-28T12:00:00+00:00"}, "schedule_start_time must be a UTC instant"),
        ({"scheduled_interval": "hourly"}, "Unknown field(s): scheduled_interval."),
        ({"connection_id": "nope"}, "Connection nope does not exist."),
        ({"data_model_id": "nope"}, "Data model nope does not exist."),
        ({"schedule_start_time": "2026-11-28T12:00:00Z", "schedule_end_time": "2026-11-28T12:00:00Z"}, "schedule_end_time must be later than schedule_start_time."),
        ({"schedule_interval": "monthly", "schedule_start_time": "2026-10-29T00:00:00Z"}, "A monthly schedule must start on day 1-28 of a month (got day 29)"),
        ({"schedule_interval": "once", "schedule_start_time": "2026-11-29T00:00:00Z"}, "A once pipeline without schedule_end_time"),
    ],
)  # fmt: skip
def test_pipeline_validation(resources: Api, change: dict[str, Any], expected: str) -> None:
    response = resources.post("pipelines", pipeline_body(resources.config, **change))
    assert response.status_code == 400
    assert error_messages(response)[0].startswith(expected)


@pytest.mark.parametrize(
    ("interval", "earliest"),
    [
        ("hourly", "2026-11-21T12:00:00Z"),
        ("daily", "2026-05-28T12:00:00Z"),
        ("weekly", "2023-11-28T12:00:00Z"),
        ("monthly", "2021-11-28T12:00:00Z"),
    ],
)
def test_start_older_than_catch_up_limit_names_the_earliest_start(
    resources: Api, interval: str, earliest: str
) -> None:
    allowed = datetime.fromisoformat(earliest)
    response = resources.post(
        "pipelines",
        pipeline_body(
            resources.config,
            schedule_interval=interval,
            schedule_start_time=instant(allowed - timedelta(seconds=1)),
        ),
    )
    assert response.status_code == 400
    assert error_messages(response)[0].endswith(f"the earliest allowed start is {earliest}.")
    ok = pipeline_body(resources.config, schedule_interval=interval, schedule_start_time=earliest)
    assert resources.post("pipelines", ok).status_code == 200


def test_catch_up_limit_does_not_apply_to_paused_or_draft_pipelines(resources: Api) -> None:
    old = "2025-01-01T00:00:00Z"
    resources.create_pipeline(id="paused", is_active=False, schedule_start_time=old)
    resources.create_pipeline(id="draft", is_draft=True, schedule_start_time=old)
    response = resources.put(
        "pipelines/paused", pipeline_body(resources.config, id="paused", schedule_start_time=old)
    )
    assert response.status_code == 400
    assert "earliest allowed start is 2026-11-21T12:00:00Z" in error_messages(response)[0]


def test_sixth_active_pipeline_is_rejected(resources: Api) -> None:
    for n in range(5):
        resources.create_pipeline(id=f"p{n}", schedule_interval="on_demand")
    resources.create_pipeline(id="paused", is_active=False)
    resources.create_pipeline(id="draft", is_draft=True)
    response = resources.post("pipelines", pipeline_body(resources.config, id="p5"))
    assert response.status_code == 400
    assert error_messages(response) == [
        "Workspace 5328 already has 5 active pipelines (p0, p1, p2, p3, p4); the limit is 5. "
        "Pause or delete one first."
    ]
    activate = pipeline_body(resources.config, id="paused")
    assert resources.put("pipelines/paused", activate).status_code == 400
    assert resources.delete("pipelines/p0").status_code == 204
    assert resources.put("pipelines/paused", activate).status_code == 200


def test_pipeline_validates_its_model_in_the_warehouse(api: Api, events_table: str) -> None:
    api.create_connection()
    api.create_model("SELECT NOPE FROM EMU.PUBLIC.EVENTS", id="bad-sql")
    api.create_model(f"SELECT * FROM {events_table}", id="no-ts", load_timestamp_field_name="TS")
    wide = ", ".join(f"{n} AS C{n}" for n in range(100))
    api.create_model(f"SELECT {wide}, CURRENT_TIMESTAMP AS UPDATED_AT", id="wide")
    api.create_model(f"SELECT {wide} FROM {events_table}".replace("C99", "UPDATED_AT"), id="w100")

    response = api.post("pipelines", pipeline_body(api.config, data_model_id="bad-sql"))
    assert response.status_code == 400
    assert error_messages(response)[0].startswith("The data model bad-sql failed in the warehouse:")
    assert "NOPE" in error_messages(response)[0]

    response = api.post("pipelines", pipeline_body(api.config, data_model_id="no-ts"))
    assert error_messages(response)[0].startswith(
        "The data model no-ts has no column TS (its load_timestamp_field_name)"
    )
    response = api.post("pipelines", pipeline_body(api.config, data_model_id="wide"))
    assert error_messages(response) == [
        "The data model wide returns 101 columns; the limit is 100."
    ]
    assert api.post("pipelines", pipeline_body(api.config, data_model_id="w100")).status_code == 200


def test_warehouse_trouble_at_pipeline_create_is_505(
    resources: Api, control: EmulatorControl
) -> None:
    resources.create_connection(id="bad-creds", password="wrong")
    response = resources.post(
        "pipelines", pipeline_body(resources.config, connection_id="bad-creds")
    )
    assert response.status_code == 505
    assert "rejected the credentials" in error_messages(response)[0]
    assert resources.ok("GET", "connections/bad-creds")["is_faulted"] is True

    control.set_warehouse_unreachable()
    response = resources.post("pipelines", pipeline_body(resources.config))
    assert response.status_code == 505
    assert "warehouse unreachable" in error_messages(response)[0]
    control.set_warehouse_unreachable(False)
    assert resources.post("pipelines", pipeline_body(resources.config)).status_code == 200
    assert resources.ok("GET", "connections/conn")["is_faulted"] is False


def test_bigquery_connections_cannot_be_reached(api: Api) -> None:
    api.ok("POST", "connections", bigquery_body(api.config))
    api.create_model(SQL, load_timestamp_field_type="timestamp")
    assert api.post("pipelines", pipeline_body(api.config, connection_id="bq")).status_code == 505
    api.create_connection()
    response = api.post("pipelines", pipeline_body(api.config))
    assert error_messages(response) == [
        "load_timestamp_field_type timestamp of data model model is not valid for a snowflake "
        "connection (timestamp_ltz, timestamp_ntz, timestamp_tz, datetime, date, "
        "timestamp_unixtime_ms, timestamp_unixtime_s)."
    ]
