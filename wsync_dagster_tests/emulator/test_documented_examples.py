"""Every documented request replayed verbatim, at the documented time, against the documented response.

The examples are the shared ``wsync_dagster_tests/mparticle/payloads`` (their ``_sources.json``
names each one's mParticle docs page). Where the docs contradict themselves or the project decided
otherwise (``docs/warehouse-sync-api.md``), the test says so and pins the emulator's answer.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster.emulator.resources import RESPONSE_ONLY_FIELDS
from wsync_dagster_tests.emulator.helpers import (
    Api,
    clients,
    documented,
    error_messages,
    token_body,
)


def at(control: EmulatorControl, audit_time: str) -> None:
    """Set the clock to a documented audit time (no zone in the docs: UTC)."""
    control.set_clock(datetime.fromisoformat(audit_time + "+00:00"))


def request_body(response: dict[str, Any]) -> dict[str, Any]:
    """The body a client sends to replace a resource: the response without response-only fields."""
    return {k: v for k, v in response.items() if k not in RESPONSE_ONLY_FIELDS}


@pytest.mark.parametrize("kind", ["snowflake", "bigquery"])
def test_connection_create(start_emulator: Callable[..., EmulatorServer], kind: str) -> None:
    expected = documented(f"connection_{kind}")
    api, control = clients(start_emulator(workspace_id=expected["workspace_id"]))
    at(control, expected["created_on"])
    created = api.ok("POST", "connections", documented(f"connection_create_{kind}_request"))
    assert created == expected
    assert api.ok("GET", f"connections/{created['id']}") == expected


def test_connection_list(start_emulator: Callable[..., EmulatorServer]) -> None:
    expected = documented("connection_list")
    api, control = clients(start_emulator(workspace_id=expected[0]["workspace_id"]))
    for connection in expected:
        at(control, connection["created_on"])
        api.ok("POST", "connections", request_body(connection))
    assert api.ok("GET", "connections") == expected


def test_connection_update(api: Api, control: EmulatorControl) -> None:
    expected = documented("connection_update_response")
    at(control, expected["created_on"])
    api.ok("POST", "connections", request_body(expected) | {"database": "mp"})
    at(control, expected["last_modified_on"])
    assert api.ok("PUT", f"connections/{expected['id']}", request_body(expected)) == expected


def test_data_model_update(api: Api, control: EmulatorControl) -> None:
    expected = documented("data_model_update_response")
    at(control, expected["created_on"])
    api.ok("POST", "data-models", request_body(documented("data_model")))
    at(control, expected["last_modified_on"])
    body = documented("data_model_update_request")
    assert api.ok("PUT", f"data-models/{body['id']}", body) == expected
    assert api.ok("GET", "data-models") == [expected]


def test_data_model_get(api: Api, control: EmulatorControl) -> None:
    expected = documented("data_model")
    at(control, expected["created_on"])
    api.ok("POST", "data-models", request_body(expected))
    assert api.ok("GET", f"data-models/{expected['id']}") == expected


def test_pipeline_create_and_update(api: Api, control: EmulatorControl, events_table: str) -> None:
    create = documented("pipeline_create_request")
    created_doc = documented("pipeline_create_response")
    # The docs' request names connection "example--connection", their response
    # "example-data-connection": both exist here so each example replays verbatim.
    for connection_id in (create["connection_id"], created_doc["connection_id"]):
        api.create_connection(id=connection_id)
    api.create_model(f"SELECT * FROM {events_table}", id=create["data_model_id"])
    at(control, created_doc["created_on"])
    created = api.ok("POST", "pipelines", create)
    assert list(created) == list(created_doc)
    differences = {k for k in created if created[k] != created_doc[k]}
    # The feed id is derived from the key; a missing start becomes the creation time truncated to
    # the minute (docs/warehouse-sync-api.md), where the docs' example shows one week earlier.
    assert differences == {"connection_id", "partner_feed_id", "schedule_start_time"}
    assert created["schedule_start_time"] == "2023-02-08T00:05:00Z"

    updated_doc = documented("pipeline_update_response")
    at(control, updated_doc["last_modified_on"])
    updated = api.ok("PUT", f"pipelines/{create['id']}", documented("pipeline_update_request"))
    assert updated == updated_doc | {"partner_feed_id": created["partner_feed_id"]}


def test_run_objects_and_status(
    api: Api, control: EmulatorControl, events_pipeline: Callable[..., Any]
) -> None:
    run_doc = documented("pipeline_run")
    status_doc = documented("pipeline_status")
    page_doc = documented("pipeline_runs_page")
    start = run_doc["data_interval_start"]
    control.set_clock(datetime.fromisoformat(start))
    events_pipeline(id=run_doc["id"], schedule_start_time=start)
    control.set_clock(datetime.fromisoformat(run_doc["data_interval_end"]))
    [run] = api.ok("GET", f"pipelines/{run_doc['id']}/status/runs")["items"]
    assert list(run) == list(run_doc)
    for key in ("logical_date", "data_interval_start", "data_interval_end", "pipeline_run_type"):
        assert run[key] == run_doc[key]
    status = api.ok("GET", f"pipelines/{run_doc['id']}/status")
    assert list(status) == list(status_doc)
    assert list(status["latest_pipeline_run"]) == list(status_doc["latest_pipeline_run"])
    page = api.ok("GET", f"pipelines/{run_doc['id']}/status/runs")
    assert list(page) == list(page_doc)


def test_trigger_and_already_in_progress(api: Api, events_pipeline: Callable[..., Any]) -> None:
    error_doc = documented("error_already_in_progress")
    pipeline_id = error_doc["errors"][0]["message"].split()[1]
    events_pipeline(id=pipeline_id, schedule_interval="on_demand")
    response = api.ok("POST", f"pipelines/{pipeline_id}")
    assert set(response) == set(documented("trigger_response"))
    assert response["status"] == documented("trigger_response")["status"]
    busy = api.post(f"pipelines/{pipeline_id}")
    assert (busy.status_code, busy.json()) == (400, error_doc)
    assert error_messages(busy) == [error_doc["errors"][0]["message"]]


def test_token_examples(emulator: EmulatorServer) -> None:
    assert set(documented("token_request")) == set(token_body(emulator.config))
    api = Api(emulator.url or "", emulator.config)
    response = api.session.post(f"{api.url}/oauth/token", json=token_body(emulator.config))
    body = response.json()
    assert set(body) == set(documented("token_response"))
    assert body["expires_in"] == documented("token_response")["expires_in"]
    wrong = api.session.post(
        f"{api.url}/oauth/token", json=documented("token_request")
    )  # the doc's placeholder credentials
    assert (wrong.status_code, wrong.json()) == (401, documented("token_error_access_denied"))
    bad = api.session.post(f"{api.url}/oauth/token", json=token_body(emulator.config, audience="x"))
    assert set(bad.json()) == set(documented("token_error_invalid_request"))
    assert bad.json()["error"] == documented("token_error_invalid_request")["error"]


def test_profile_example(
    api: Api, control: EmulatorControl, events_pipeline: Callable[..., Any]
) -> None:
    events_pipeline(schedule_start_time="2026-11-28T09:00:00Z")
    control.settle()
    config = api.config
    body = documented("profile_resolve_request")
    body["identity"]["value"] = "c1"
    fields = "device_identities,user_identities,user_attributes,audience_memberships"
    path = f"/userprofile/v1/resolve/{config.org_id}/{config.account_id}/{config.workspace_id}"
    profile = api.ok("POST", f"{path}?fields={fields}", body)
    assert list(profile) == list(documented("profile"))
