"""The real client against the live emulator over 127.0.0.1 (issue 3, second half).

Black-box: a real ``WarehouseSyncClient`` sends real HTTP to a real in-process ``EmulatorServer``
(port 0, manual clock). The client's sleep advances the emulator clock and its clocks read it, so
waiting, backing off and token expiry happen on emulator time and nothing sleeps for real. What
the client did is checked against the emulator's own request log and state.
"""

import logging
from datetime import timedelta

import pytest

from wsync_dagster.emulator import EmulatorServer
from wsync_dagster.mparticle import (
    MASKED_SECRET,
    AuthenticationError,
    BadRequestError,
    ClientCredentials,
    NotFoundError,
    RunState,
    WarehouseSyncError,
    WarehouseUnreachableError,
)
from wsync_dagster_tests.conftest import CLOCK_START, EVENTS
from wsync_dagster_tests.mparticle.helpers import (
    FEED_KEY,
    PASSWORD,
    WORKSPACE_ID,
    data_model,
    pipeline,
    snowflake_connection,
)
from wsync_dagster_tests.mparticle.live import (
    CONNECTION_ID,
    DAY,
    HOUR,
    MODEL_ID,
    PIPELINE_ID,
    TOKEN_PATH,
    WS,
    Live,
    LiveFactory,
    StartEmulator,
    api_statuses,
    create_pipeline,
    create_source,
    elapsed,
    hourly,
    statuses,
    token_requests,
    warehouse_connection,
)

# ------------------------------------------------------------------------- resource lifecycle


def test_created_resources_come_back_as_stored_and_are_listed_and_read(
    live: Live, events_table: str
) -> None:
    client = live.client
    connection = client.create_connection(warehouse_connection(live))
    model = client.create_data_model(data_model(sql_query=f"SELECT * FROM {events_table}"))
    created = client.create_pipeline(hourly(-DAY))

    for resource in (connection, model, created):
        assert resource.workspace_id == WORKSPACE_ID
        assert resource.created_on == CLOCK_START
        assert resource.created_by == live.config.credential_email
        assert (resource.last_modified_on, resource.last_modified_by) == (None, None)
    assert created.schedule_start_time == CLOCK_START - DAY
    assert created.partner_feed_id is not None
    assert not created.is_faulted

    assert client.list_connections() == [connection]
    assert client.list_connections(type="bigquery") == []
    assert client.list_data_models() == [model]
    assert client.list_pipelines() == [created]
    assert client.get_connection(CONNECTION_ID) == connection
    assert client.get_data_model(MODEL_ID) == model
    assert client.get_pipeline(PIPELINE_ID) == created


def test_secrets_are_masked_in_every_response(live: Live, events_table: str) -> None:
    client = live.client
    connections = [client.create_connection(warehouse_connection(live))]
    client.create_data_model(data_model(sql_query=f"SELECT * FROM {events_table}"))
    pipelines = [client.create_pipeline(hourly())]

    connections += [*client.list_connections(), client.get_connection(CONNECTION_ID)]
    pipelines += [*client.list_pipelines(), client.get_pipeline(PIPELINE_ID)]

    assert [c.password and c.password.get_secret_value() for c in connections] == [
        MASKED_SECRET
    ] * 3
    assert [p.partner_feed_key and p.partner_feed_key.get_secret_value() for p in pipelines] == [
        MASKED_SECRET
    ] * 3


def test_update_replaces_the_pipeline_and_sets_last_modified(live: Live, events_table: str) -> None:
    client = live.client
    create_source(live)
    original = hourly(name="Orders", schedule_end_time=CLOCK_START + 30 * DAY)
    client.create_pipeline(original)
    live.control.advance(90)

    changed = original.model_copy(
        update={"name": "Orders, daily", "schedule_interval": "daily", "schedule_end_time": None}
    )
    updated = client.update_pipeline(changed)

    assert (updated.name, updated.schedule_interval, updated.schedule_end_time) == (
        "Orders, daily",
        "daily",
        None,
    )
    assert updated.created_on == CLOCK_START
    assert updated.last_modified_on == CLOCK_START + timedelta(seconds=90)
    assert updated.last_modified_by == live.config.credential_email
    assert client.get_pipeline(PIPELINE_ID) == updated
    assert statuses(live, "PUT", f"{WS}/pipelines/{PIPELINE_ID}") == [200]


def test_delete_removes_resources_once_nothing_uses_them(live: Live, events_table: str) -> None:
    client = live.client
    create_pipeline(live, hourly())

    with pytest.raises(BadRequestError, match="used by pipeline"):
        client.delete_connection(CONNECTION_ID)
    client.delete_pipeline(PIPELINE_ID)
    client.delete_data_model(MODEL_ID)
    client.delete_connection(CONNECTION_ID)

    assert (client.list_pipelines(), client.list_data_models(), client.list_connections()) == (
        [],
        [],
        [],
    )
    with pytest.raises(NotFoundError) as caught:
        client.get_pipeline(PIPELINE_ID)
    assert caught.value.status == 404
    assert caught.value.messages == (f"Pipeline {PIPELINE_ID} not found.",)


def test_secrets_never_show_in_the_clients_repr_errors_or_logs(
    live: Live, events_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wsync_dagster.mparticle")
    client = live.client
    create_source(live)
    # A connection whose password the warehouse rejects: its pipeline gets a 505 naming the user.
    rejected = snowflake_connection(id="rejected", database="EMU", password=PASSWORD)
    errors: list[WarehouseSyncError] = []
    for send in (
        lambda: client.create_connection(rejected),
        lambda: client.create_connection(rejected),  # 400: already exists
        lambda: client.create_pipeline(pipeline(connection_id="rejected")),  # 505
        lambda: client.create_pipeline(pipeline()),
        lambda: client.create_pipeline(pipeline()),  # 400: already exists
    ):
        try:
            send()
        except WarehouseSyncError as error:
            errors.append(error)
    assert [type(e).__name__ for e in errors] == [
        "BadRequestError",
        "WarehouseUnreachableError",
        "BadRequestError",
    ]

    shown = "\n".join(
        [repr(client), repr(rejected), repr(pipeline()), caplog.text]
        + [text for error in errors for text in (str(error), repr(error))]
    )
    assert live.config.client_id in shown  # the texts are about this client...
    for secret in (live.config.client_secret, PASSWORD, FEED_KEY):
        assert secret not in shown  # ...and never show its secrets


# -------------------------------------------------------------------------------------- tokens


def test_many_calls_from_two_clients_make_one_token_request(
    live: Live, emulator: EmulatorServer, live_on: LiveFactory
) -> None:
    other = live_on(emulator).client
    for _ in range(10):
        live.client.list_connections()
        other.list_pipelines()

    assert token_requests(live) == [200]
    assert api_statuses(live) == [200] * 20


def test_a_token_expired_on_the_emulator_clock_is_replaced_before_it_fails(
    start_emulator: StartEmulator, live_on: LiveFactory
) -> None:
    live = live_on(start_emulator(token_ttl=600))
    live.client.list_connections()
    live.control.advance(900)  # past the token's lifetime, on the emulator clock only

    assert live.client.list_connections() == []

    assert token_requests(live) == [200, 200]
    assert api_statuses(live) == [200, 200]  # refreshed in time: never a 401


def test_a_token_the_emulator_no_longer_accepts_is_replaced_once_on_401(live: Live) -> None:
    live.client.list_connections()
    live.control.reset()  # the emulator forgets every token it issued

    assert live.client.list_connections() == []

    assert [(e["path"], e["status"]) for e in live.control.request_log()] == [
        (f"{WS}/connections", 401),
        (TOKEN_PATH, 200),
        (f"{WS}/connections", 200),
    ]


def test_a_wrong_secret_is_an_authentication_error_naming_the_client_id_not_the_secret(
    emulator: EmulatorServer, live_on: LiveFactory
) -> None:
    assert emulator.url is not None
    wrong = "wrong-secret-DO-NOT-LEAK"
    credentials = ClientCredentials(
        client_id=emulator.config.client_id,
        client_secret=wrong,
        token_url=f"{emulator.url}/oauth/token",
    )
    live = live_on(emulator, credentials=credentials)

    with pytest.raises(AuthenticationError) as caught:
        live.client.list_connections()

    assert caught.value.status == 401
    assert repr(emulator.config.client_id) in str(caught.value)
    assert "access_denied" in str(caught.value)
    assert wrong not in str(caught.value) + repr(caught.value)
    assert token_requests(live) == [401]  # not retried
    assert api_statuses(live) == []


def test_a_failing_token_endpoint_is_retried_within_the_calls_budget(live: Live) -> None:
    live.control.fail_token(2)

    assert live.client.list_connections() == []

    assert token_requests(live) == [500, 500, 200]
    assert api_statuses(live) == [200]
    assert len(live.time.sleeps) == 2


# -------------------------------------------------------------------------------------- faults


def test_throttled_calls_wait_the_retry_after_then_succeed(live: Live) -> None:
    live.control.throttle(2, retry_after=7)

    assert live.client.list_connections() == []

    assert live.time.sleeps == [7, 7]
    assert api_statuses(live) == [429, 429, 200]
    assert elapsed(live) == timedelta(seconds=14)


def test_server_errors_are_retried_with_growing_backoff_then_succeed(live: Live) -> None:
    live.control.fail_requests(2, status=502)

    assert live.client.list_connections() == []

    assert api_statuses(live) == [502, 502, 200]
    assert len(live.time.sleeps) == 2
    assert 0 < live.time.sleeps[0] < live.time.sleeps[1]


def test_an_unreachable_warehouse_at_pipeline_create_is_505_and_not_retried(
    live: Live, events_table: str
) -> None:
    client = live.client
    create_source(live)
    live.control.set_warehouse_unreachable()

    with pytest.raises(WarehouseUnreachableError) as caught:
        client.create_pipeline(pipeline())

    assert caught.value.status == 505
    assert f"Could not connect to the warehouse of connection {CONNECTION_ID}" in str(caught.value)
    assert statuses(live, "POST", f"{WS}/pipelines") == [505]
    assert live.time.sleeps == []
    assert client.get_connection(CONNECTION_ID).is_faulted


# ---------------------------------------------------------------------------------- validation


def test_a_sixth_active_pipeline_is_a_bad_request_with_the_emulators_message(
    live: Live, events_table: str
) -> None:
    client = live.client
    create_source(live)
    for index in range(5):
        client.create_pipeline(pipeline(id=f"p{index}"))

    with pytest.raises(BadRequestError) as caught:
        client.create_pipeline(pipeline(id="p5"))

    assert caught.value.status == 400
    (message,) = caught.value.messages
    assert message.startswith(f"Workspace {WORKSPACE_ID} already has 5 active pipelines")
    assert "the limit is 5" in message
    assert len(client.list_pipelines()) == 5


def test_a_start_older_than_the_catch_up_limit_names_the_earliest_allowed_start(
    live: Live, events_table: str
) -> None:
    create_source(live)

    with pytest.raises(BadRequestError) as caught:
        live.client.create_pipeline(hourly(-8 * DAY))

    assert "the earliest allowed start is 2026-11-21T12:00:00Z" in str(caught.value)
    assert live.client.list_pipelines() == []


def test_model_sql_that_fails_in_the_warehouse_is_a_bad_request_at_pipeline_create(
    live: Live, events_table: str
) -> None:
    create_source(live, sql="SELECT * FROM EMU.PUBLIC.NO_SUCH_TABLE")

    with pytest.raises(BadRequestError) as caught:
        live.client.create_pipeline(pipeline())

    assert f"The data model {MODEL_ID} failed in the warehouse" in str(caught.value)
    assert "NO_SUCH_TABLE" in str(caught.value).upper()


def test_model_sql_that_is_not_a_select_is_a_bad_request_at_model_create(live: Live) -> None:
    live.client.create_connection(warehouse_connection(live))

    with pytest.raises(BadRequestError, match="must start with SELECT, not DELETE"):
        live.client.create_data_model(data_model(sql_query=f"DELETE FROM {EVENTS}"))


# ---------------------------------------------------------------------------------- profile api


def test_profiles_written_by_runs_are_read_by_mpid_and_by_customer_id(
    live: Live, events_table: str
) -> None:
    client = live.client
    create_pipeline(live, hourly(-3 * HOUR))
    live.control.settle()  # the three hourly runs 09:00-12:00, oldest first
    assert {run.state for run in client.iter_pipeline_runs(PIPELINE_ID)} == {RunState.SUCCESS}

    resolved = client.resolve_profile("customer_id", "c1", "development")
    by_mpid = client.get_profile(resolved.mpid)

    assert by_mpid == resolved
    assert resolved.identity("customer_id") == "c1"
    assert resolved.identity("email") == "c1@new.example.com"  # the later row's e-mail
    assert resolved.user_attributes == {"SCORE": "99.0", "ACTIVE": "true", "TAGS": ["c"]}
    stored = {p["mpid"]: p for p in live.control.profiles()}[resolved.mpid]
    assert resolved.user_attributes == stored["user_attributes"]
    other = client.resolve_profile("email", "c2@example.com", "development")
    assert other.mpid != resolved.mpid
    assert other.user_attributes == {"SCORE": "3.0", "ACTIVE": "false"}
