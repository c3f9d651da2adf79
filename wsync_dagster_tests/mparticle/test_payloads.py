"""The documented examples (payloads/) parse into the models, and our request bodies match them."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from wsync_dagster.mparticle import (
    MASKED_SECRET,
    Connection,
    ConnectionType,
    DataModel,
    InvalidRequestError,
    LoadTimestampType,
    Pipeline,
    PipelineRun,
    PipelineStatus,
    Profile,
    RunState,
    RunType,
    ScheduleInterval,
    TriggerResult,
)
from wsync_dagster.mparticle.errors import server_messages
from wsync_dagster.mparticle.models import RunPage, parse_response
from wsync_dagster_tests.mparticle.helpers import PAYLOADS, payload

SPEC_SOURCES = {
    "src/pages/developers/warehouse-sync-api/overview/index.md",
    "src/pages/developers/warehouse-sync-api/reference/index.md",
    "src/pages/developers/warehouse-sync-api/quickstart/index.md",
    "src/pages/developers/profile-api/index.md",
    "src/pages/developers/platform/index.md",
}


def test_every_payload_names_its_source_and_every_source_entry_has_a_payload() -> None:
    sources = payload("_sources.json")["payloads"]
    files = {p.name for p in PAYLOADS.glob("*.json") if not p.name.startswith("_")}
    assert files == set(sources)
    for name, source in sources.items():
        assert source["topic"], name
        doc = source["doc_file"]
        assert doc in SPEC_SOURCES or doc.startswith("none: inferred"), name
        json.loads((PAYLOADS / name).read_text())  # well-formed


def test_connection_list_parses_snowflake_and_bigquery() -> None:
    snowflake, bigquery = (parse_response(Connection, c) for c in payload("connection_list.json"))
    assert snowflake.type is ConnectionType.SNOWFLAKE
    assert snowflake.source_account_id == "gd1234"
    assert snowflake.password is not None
    assert snowflake.password.get_secret_value() == MASKED_SECRET
    assert snowflake.created_on == datetime(2022, 10, 19, 17, 8, 10, 13000, tzinfo=UTC)
    assert snowflake.last_modified_on is None
    assert bigquery.type is ConnectionType.BIGQUERY
    assert (bigquery.project_id, bigquery.dataset_id) == ("compute_wh", "mp")
    assert bigquery.source_account_id is None


@pytest.mark.parametrize(
    ("name", "created", "modified"),
    [
        ("connection_snowflake.json", datetime(2022, 10, 19, 17, 8, 10, 13000, tzinfo=UTC), None),
        ("connection_bigquery.json", datetime(2023, 2, 3, 23, 53, 8, 413000, tzinfo=UTC), None),
        (
            "connection_update_response.json",
            datetime(2023, 1, 24, 15, 13, 33, 50000, tzinfo=UTC),
            datetime(2023, 2, 4, 0, 33, 54, 133000, tzinfo=UTC),
        ),
    ],
)
def test_connection_responses_parse_audit_times_as_utc(
    name: str, created: datetime, modified: datetime | None
) -> None:
    connection = parse_response(Connection, payload(name))
    assert connection.created_on == created
    assert connection.last_modified_on == modified
    assert connection.is_faulted is False


def test_data_models_parse() -> None:
    models = [parse_response(DataModel, m) for m in payload("data_model_list.json")]
    assert [m.id for m in models] == [
        "example-data-model",
        "example-data-model-2",
        "example-data-model-3",
    ]
    assert models[2].created_on == datetime(2022, 11, 7, 23, 31, 16, 780000, tzinfo=UTC)
    one = parse_response(DataModel, payload("data_model.json"))
    assert one.load_timestamp_field_type is LoadTimestampType.TIMESTAMP_LTZ
    assert one.load_timestamp_field_time_zone is None
    updated = parse_response(DataModel, payload("data_model_update_response.json"))
    assert updated.created_on == datetime(2023, 2, 7, 20, 36, tzinfo=UTC)  # no fraction at all
    assert updated.load_timestamp_field_time_zone == "America/New_York"
    assert updated.load_timestamp_field_time_offset == 1800


def test_pipelines_parse() -> None:
    listed = [parse_response(Pipeline, p) for p in payload("pipeline_list.json")]
    assert [p.partner_feed_id for p in listed] == [2124, 2197]
    assert listed[1].created_on == datetime(2023, 2, 7, 20, 49, 54, 600000, tzinfo=UTC)
    created = parse_response(Pipeline, payload("pipeline_create_response.json"))
    assert created.schedule_start_time == datetime(2023, 2, 1, 0, 5, tzinfo=UTC)
    assert created.created_on == datetime(2023, 2, 8, 0, 5, 31, 230000, tzinfo=UTC)
    assert created.schedule_interval is ScheduleInterval.HOURLY
    updated = parse_response(Pipeline, payload("pipeline_update_response.json"))
    assert updated.schedule_interval is ScheduleInterval.WEEKLY
    assert updated.last_modified_by == "developer@mparticle.com"


def test_status_and_runs_parse() -> None:
    status = parse_response(PipelineStatus, payload("pipeline_status.json"))
    latest = status.latest_pipeline_run
    assert latest is not None
    assert latest.pipeline_id == "example-pipeline-2"
    assert latest.state is RunState.FAILED
    assert latest.data_interval_end == datetime(2022, 12, 9, 22, tzinfo=UTC)
    page = parse_response(RunPage, payload("pipeline_runs_page.json"))
    assert [r.pipeline_run_id for r in page.items] == [251, 252]
    assert all(r.state is RunState.SUCCESS and r.end_date is None for r in page.items)
    run = parse_response(PipelineRun, payload("pipeline_run.json"))
    assert (run.records_extracted, run.records_mapped, run.event_batches_generated) == (
        1376,
        1376,
        1376,
    )
    assert run.run_type is RunType.SCHEDULED
    assert run.logical_date == datetime(2022, 10, 31, 21, tzinfo=UTC)


def test_trigger_response_parses() -> None:
    result = parse_response(TriggerResult, payload("trigger_response.json"))
    assert result == TriggerResult(pipeline_run_id=13325, status="trigger_requested")
    assert result.attached is False


def test_profile_parses() -> None:
    profile = parse_response(Profile, payload("profile.json"))
    assert profile.mpid == 9080350317581165000
    assert profile.identity("customer_id") == "Example-Customer-mxr15"
    assert profile.user_attributes["ml_product_recs"] == ["123849", "294933", "937592", "500422"]
    assert profile.user_attributes["$firstname"] == "Marky"
    assert [a.audience_id for a in profile.audience_memberships] == [17802, 17918]
    assert len(profile.device_identities) == 4


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("error_already_in_progress.json", ("Pipeline example-pipeline is already in progress.",)),
        ("token_error_access_denied.json", ("access_denied: Unauthorized",)),
        ("token_error_invalid_request.json", ("invalid_request: ...",)),
    ],
)
def test_error_bodies_yield_the_servers_messages(name: str, expected: tuple[str, ...]) -> None:
    assert server_messages((PAYLOADS / name).read_text()) == expected


def test_snowflake_request_body_matches_the_documented_one() -> None:
    documented = payload("connection_create_snowflake_request.json")
    connection = Connection.model_validate({**documented, "password": "real-password"})
    assert connection.request_body(1234) == {**documented, "password": "real-password"}


def test_bigquery_request_body_matches_the_documented_one() -> None:
    documented = payload("connection_create_bigquery_request.json")
    assert Connection.model_validate(documented).request_body(1234) == documented


def test_data_model_request_body_matches_the_documented_one() -> None:
    documented = payload("data_model_update_request.json")
    assert DataModel.model_validate(documented).request_body(5328) == documented


def test_pipeline_request_body_matches_the_documented_update_minus_response_only_fields() -> None:
    documented = payload("pipeline_update_request.json")
    body = Pipeline.model_validate(documented).request_body(5328)
    expected = {k: v for k, v in documented.items() if k != "faulted_reason"}
    assert body == {**expected, "schedule_end_time": None}


def test_the_documented_create_body_without_a_start_is_refused() -> None:
    # The client always sends schedule_start_time (docs/warehouse-sync-api.md); the documented
    # example omits it.
    with pytest.raises(ValueError, match="schedule_start_time"):
        Pipeline.model_validate(payload("pipeline_create_request.json"))


def test_documented_request_bodies_with_the_mask_as_secret_are_not_sent() -> None:
    documented = payload("connection_create_snowflake_request.json")
    connection = Connection.model_validate(documented)
    assert connection.password == SecretStr(MASKED_SECRET)
    with pytest.raises(InvalidRequestError, match="password is mParticle's mask"):
        connection.request_body(1234)
