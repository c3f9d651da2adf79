"""Token endpoint and bearer checks on every API family (see ``docs/warehouse-sync-api.md``)."""

from typing import Any

import pytest
import requests

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster_tests.emulator.helpers import (
    TIMEOUT,
    Api,
    documented,
    error_messages,
    token_body,
)


def post_token(emulator: EmulatorServer, **kwargs: Any) -> requests.Response:
    return requests.post(f"{emulator.url}/oauth/token", timeout=TIMEOUT, **kwargs)


def test_token_has_the_documented_shape(emulator: EmulatorServer) -> None:
    assert set(documented("token_request")) == set(token_body(emulator.config))
    response = post_token(emulator, json=token_body(emulator.config))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(documented("token_response"))
    assert body["expires_in"] == 28800 and body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 20


def test_form_encoded_token_request_is_accepted(emulator: EmulatorServer) -> None:
    assert post_token(emulator, data=token_body(emulator.config)).status_code == 200


@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_wrong_credentials_are_access_denied(emulator: EmulatorServer, field: str) -> None:
    response = post_token(emulator, json=token_body(emulator.config, **{field: "wrong"}))
    assert response.status_code == 401
    assert response.json() == documented("token_error_access_denied")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"audience": "https://example.com"}, "audience"),
        ({"grant_type": "password"}, "grant_type"),
        ({"client_id": None}, "client_id"),
        ({"grant_type": ""}, "grant_type"),
    ],
)
def test_malformed_token_requests_are_invalid_request(
    emulator: EmulatorServer, change: dict[str, Any], needle: str
) -> None:
    body = {k: v for k, v in token_body(emulator.config, **change).items() if v is not None}
    response = post_token(emulator, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert needle in response.json()["error_description"]


def test_token_endpoint_rejects_bad_bodies(emulator: EmulatorServer) -> None:
    for kwargs in (
        {"data": b"{nope", "headers": {"Content-Type": "application/json"}},
        {"data": b"x", "headers": {"Content-Type": "text/plain"}},
        {"json": ["a list"]},
    ):
        response = post_token(emulator, **kwargs)
        assert response.status_code == 400, kwargs
        assert response.json()["error"] == "invalid_request"


API_PATHS = [
    ("GET", "connections"),
    ("POST", "connections"),
    ("GET", "data-models/x"),
    ("PUT", "pipelines/x"),
    ("DELETE", "pipelines/x"),
    ("POST", "pipelines/x"),
    ("POST", "pipelines/x/trigger"),
    ("GET", "pipelines/x/status"),
    ("GET", "pipelines/x/status/runs"),
    ("GET", "pipelines/x/status/runs/1"),
    ("GET", "/userprofile/v1/1000/2000/5328/1?fields=user_identities"),
    ("POST", "/userprofile/v1/resolve/1000/2000/5328?fields=user_identities"),
]


@pytest.mark.parametrize(("method", "path"), API_PATHS)
@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer nope", "Basic abc"])
def test_every_api_endpoint_needs_a_valid_bearer(
    api: Api, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.request(method, api.full_url(path), headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401
    assert error_messages(response) == ["Missing, malformed or expired bearer token."]


def test_token_expires_on_the_emulator_clock(api: Api, control: EmulatorControl) -> None:
    api.refresh_on_401 = False
    assert api.get("connections").status_code == 200
    control.advance(28800 - 1)
    assert api.get("connections").status_code == 200
    control.advance(1)
    assert api.get("connections").status_code == 401


def test_token_ttl_is_configurable(start_emulator: Any) -> None:
    server: EmulatorServer = start_emulator(token_ttl=60)
    assert server.url is not None
    response = post_token(server, json=token_body(server.config))
    assert response.json()["expires_in"] == 60
    api = Api(server.url, server.config)
    api._token = response.json()["access_token"]
    api.refresh_on_401 = False
    EmulatorControl(server.url).advance(60)
    assert api.get("connections").status_code == 401


def test_reset_forgets_tokens(api: Api, control: EmulatorControl) -> None:
    api.refresh_on_401 = False
    assert api.get("connections").status_code == 200
    control.reset()
    assert api.get("connections").status_code == 401


def test_request_log_records_authorization(api: Api, control: EmulatorControl) -> None:
    control.clear_request_log()
    api.get("connections")
    requests.get(api.full_url("connections"), timeout=TIMEOUT)
    control.settle()  # admin calls are not logged
    assert control.request_log() == [
        {"method": "POST", "path": "/oauth/token", "status": 200, "authorized": False},
        {"method": "GET", "path": "/".join(["", *api.ws.split("/")[3:], "connections"]),
         "status": 200, "authorized": True},
        {"method": "GET", "path": "/".join(["", *api.ws.split("/")[3:], "connections"]),
         "status": 401, "authorized": False},
    ]  # fmt: skip
