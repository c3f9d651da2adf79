"""Model rules: timestamps, enums, strict requests vs tolerant responses, request bodies."""

from datetime import UTC, datetime, timedelta, timezone

import pydantic
import pytest

from wsync_dagster.mparticle import (
    MASKED_SECRET,
    DataModel,
    InvalidRequestError,
    Pipeline,
    PipelineRun,
    PipelineStatus,
    RunState,
    RunType,
)
from wsync_dagster.mparticle.models import parse_response
from wsync_dagster_tests.mparticle.helpers import (
    FEED_KEY,
    bigquery_connection,
    data_model,
    payload,
    pipeline,
    run_json,
    snowflake_connection,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-10-19T17:08:10.013", datetime(2022, 10, 19, 17, 8, 10, 13000, tzinfo=UTC)),
        ("2023-02-08T00:05:31.23", datetime(2023, 2, 8, 0, 5, 31, 230000, tzinfo=UTC)),
        ("2023-02-07T23:16:15.8", datetime(2023, 2, 7, 23, 16, 15, 800000, tzinfo=UTC)),
        ("2023-02-07T20:36:00", datetime(2023, 2, 7, 20, 36, tzinfo=UTC)),
        ("2023-10-24T19:59:30.828Z", datetime(2023, 10, 24, 19, 59, 30, 828000, tzinfo=UTC)),
    ],
)
def test_audit_timestamps_parse_as_aware_utc(raw: str, expected: datetime) -> None:
    run = parse_response(PipelineRun, {**run_json(1), "created_on": raw})
    assert run.created_on == expected
    assert run.created_on is not None and run.created_on.utcoffset() == timedelta(0)


def test_schedule_times_serialize_as_whole_second_z_instants() -> None:
    in_berlin = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    body = pipeline(
        schedule_start_time=in_berlin, schedule_end_time="2024-02-01T00:00:00+00:00"
    ).request_body(5328)
    assert body["schedule_start_time"] == "2024-01-01T00:00:00Z"
    assert body["schedule_end_time"] == "2024-02-01T00:00:00Z"
    assert pipeline().model_dump(mode="json")["schedule_start_time"] == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "bad",
    [
        "2024-01-01T00:00:00",  # no zone
        datetime(2024, 1, 1),  # naive datetime
        "2023-03-1T:12:00:00Z",  # the docs' malformed example
        "2024-01-01",  # no time
        "2024-01-01T00:00:00.5Z",  # mParticle schedule times are whole seconds
        "yesterday",
        1704067200,
    ],
)
def test_bad_schedule_times_are_rejected(bad: object) -> None:
    with pytest.raises(pydantic.ValidationError, match="schedule_start_time"):
        pipeline(schedule_start_time=bad)


def test_schedule_end_must_follow_start() -> None:
    with pytest.raises(pydantic.ValidationError, match="after schedule_start_time"):
        pipeline(schedule_end_time="2023-12-31T00:00:00Z")


def test_run_state_enum_and_terminal_states() -> None:
    assert [s.value for s in RunState] == ["triggered", "queued", "running", "success", "failed"]
    assert {s for s in RunState if s.is_terminal} == {RunState.SUCCESS, RunState.FAILED}
    assert RunState.parse("queued") is RunState.QUEUED
    assert RunState.parse("SUCCESS") is None  # exact match only: never coerce into success


def test_unknown_run_state_and_type_still_parse_and_keep_the_raw_string() -> None:
    run = parse_response(
        PipelineRun,
        {
            **run_json(7),
            "pipeline_run_state": "cancelled",
            "pipeline_run_type": "dataset_triggered",
        },
    )
    assert run.state is None
    assert run.pipeline_run_state == "cancelled"
    assert run.run_type is None
    assert run.in_progress is False
    assert parse_response(PipelineRun, run_json(8, "queued")).in_progress is True
    assert parse_response(PipelineRun, run_json(9, "failed", manual=False)).run_type is (
        RunType.SCHEDULED
    )


def test_responses_ignore_unknown_fields_also_nested() -> None:
    status = payload("pipeline_status.json")
    status["brand_new_flag"] = True
    status["latest_pipeline_run"]["brand_new_counter"] = 3
    parsed = parse_response(PipelineStatus, status)
    assert parsed.latest_pipeline_run is not None
    assert parsed.latest_pipeline_run.pipeline_run_id == 2171


def test_models_built_in_code_reject_unknown_fields() -> None:
    # mParticle's tutorial once writes scheduled_interval for schedule_interval: such a typo must
    # not silently vanish.
    with pytest.raises(pydantic.ValidationError, match="scheduled_interval"):
        pipeline(scheduled_interval="hourly")


def test_models_are_frozen() -> None:
    model = pipeline()
    with pytest.raises(pydantic.ValidationError):
        model.is_active = False  # pyright: ignore[reportAttributeAccessIssue]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schedule_interval", "every_minute"),
        ("environment", "staging"),
        ("id", "has space"),
        ("connection_id", "a/b"),
    ],
)
def test_bad_enums_and_ids_are_rejected(field: str, value: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        pipeline(**{field: value})


def test_once_is_a_schedule_interval() -> None:
    assert pipeline(schedule_interval="once").request_body(1)["schedule_interval"] == "once"


def test_data_model_accepts_both_tz_and_offset_spellings_and_sends_the_example_names() -> None:
    documented_table_names = {
        **payload("data_model.json"),
        "load_timestamp_field_tz": "Europe/Paris",
        "load_timestamp_field_offset_seconds": "900",
    }
    del documented_table_names["load_timestamp_field_time_zone"]
    del documented_table_names["load_timestamp_field_time_offset"]
    model = parse_response(DataModel, documented_table_names)
    body = model.request_body(5328)
    assert body["load_timestamp_field_time_zone"] == "Europe/Paris"
    assert body["load_timestamp_field_time_offset"] == 900
    assert "load_timestamp_field_tz" not in body
    assert "load_timestamp_field_offset_seconds" not in body


def test_data_model_null_offset_reads_as_zero_and_bad_zone_is_rejected() -> None:
    assert data_model(load_timestamp_field_time_offset=None).load_timestamp_field_time_offset == 0
    with pytest.raises(pydantic.ValidationError, match="IANA"):
        data_model(load_timestamp_field_time_zone="Mars/Olympus_Mons")
    with pytest.raises(pydantic.ValidationError, match="load_timestamp_field_type"):
        data_model(load_timestamp_field_type="timestamp_nanos")


def test_request_body_revalidates_objects_that_bypassed_validation() -> None:
    sneaky = pipeline().model_copy(update={"schedule_interval": "every_minute"})
    with pytest.raises(InvalidRequestError, match="schedule_interval"):
        sneaky.request_body(5328)


def test_request_body_refuses_another_workspace_and_fills_a_missing_one() -> None:
    assert pipeline().request_body(5328)["workspace_id"] == 5328
    with pytest.raises(InvalidRequestError, match=r"workspace 1, .* workspace 5328"):
        pipeline(workspace_id=1).request_body(5328)


def test_request_body_leaves_out_response_only_fields() -> None:
    response = parse_response(Pipeline, payload("pipeline_create_response.json"))
    fixed = response.model_copy(update={"partner_feed_key": FEED_KEY})
    body = fixed.request_body(5328)
    for field in ("is_faulted", "faulted_reason", "created_on", "created_by", "last_modified_on"):
        assert field not in body
    assert body["partner_feed_id"] == 2124  # known, so sent along with the key
    assert "partner_feed_id" not in pipeline().request_body(5328)


def test_secrets_are_revealed_only_in_the_request_body() -> None:
    model = pipeline()
    assert FEED_KEY not in repr(model)
    assert FEED_KEY not in str(model.model_dump())
    assert FEED_KEY not in model.model_dump_json()
    assert model.request_body(5328)["partner_feed_key"] == FEED_KEY


def test_a_masked_secret_from_a_get_is_never_sent_back() -> None:
    fetched = parse_response(Pipeline, payload("pipeline_list.json")[0])
    assert fetched.partner_feed_key is not None
    assert fetched.partner_feed_key.get_secret_value() == MASKED_SECRET
    with pytest.raises(InvalidRequestError, match="partner_feed_key is mParticle's mask"):
        fetched.request_body(5328)


def test_connections_send_only_their_type_fields_and_require_them() -> None:
    snowflake = snowflake_connection().request_body(1)
    assert "project_id" not in snowflake and snowflake["snowflake_aws_iam_user_arn"] is None
    bigquery = bigquery_connection().request_body(1)
    assert "warehouse" not in bigquery and "password" not in bigquery
    with pytest.raises(InvalidRequestError, match=r"missing required field.*password"):
        snowflake_connection(password=None).request_body(1)
    with pytest.raises(InvalidRequestError, match="service_account_key"):
        bigquery_connection(service_account_key=None).request_body(1)
    with pytest.raises(InvalidRequestError, match="partner_feed_key"):
        pipeline(partner_feed_key=None).request_body(1)
