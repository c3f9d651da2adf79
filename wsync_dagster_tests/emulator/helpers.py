"""Plain-``requests`` helpers for black-box tests of the emulator."""

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from wsync_dagster.emulator import EmulatorConfig, EmulatorControl, EmulatorServer

TIMEOUT = 120.0
AUDIENCE = "https://api.mparticle.com"
# The documented request/response examples, shared with the client's tests; _sources.json there
# names the mParticle docs page of each.
DOCUMENTED = Path(__file__).parents[1] / "mparticle" / "payloads"


def documented(name: str) -> Any:
    """A documented example (``payloads/<name>.json``), a fresh copy each call."""
    return json.loads((DOCUMENTED / f"{name}.json").read_text(encoding="utf-8"))


def ws_base(url: str, workspace_id: int) -> str:
    return f"{url}/platform/experimental/workspaces/{workspace_id}/inputs/warehouse"


def token_body(config: EmulatorConfig, **overrides: Any) -> dict[str, Any]:
    return {
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "audience": AUDIENCE,
        "grant_type": "client_credentials",
        **overrides,
    }


class Api:
    """A client of one emulator: fetches a token once, then sends requests with it.

    ``path`` arguments are relative to the Warehouse Sync base unless they start with ``/`` (relative
    to the server) or are full URLs.
    """

    def __init__(self, url: str, config: EmulatorConfig) -> None:
        self.url = url
        self.config = config
        self.ws = ws_base(url, config.workspace_id)
        self.session = requests.Session()
        self._token: str | None = None
        # Like a real client, fetch a new token once on a 401 (tokens expire on the emulator clock).
        self.refresh_on_401 = True

    @property
    def token(self) -> str:
        if self._token is None:
            response = self.session.post(
                self.url + "/oauth/token", json=token_body(self.config), timeout=TIMEOUT
            )
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def full_url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        return self.url + path if path.startswith("/") else f"{self.ws}/{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        extra = kwargs.pop("headers", {})
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token}", **extra}
            response = self.session.request(
                method, self.full_url(path), headers=headers, timeout=TIMEOUT, **kwargs
            )
            if response.status_code != 401 or not self.refresh_on_401 or attempt == 2:
                return response
            self._token = None
        raise AssertionError("unreachable")

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, json: Any = None, status: int = 200) -> Any:
        """Send a request that must succeed with ``status``; return its JSON body."""
        response = self.request(method, path, json=json)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json() if response.content else None

    # shortcuts for the usual set-up

    def create_connection(self, **overrides: Any) -> dict[str, Any]:
        return self.ok("POST", "connections", connection_body(self.config, **overrides))

    def create_model(self, sql: str, **overrides: Any) -> dict[str, Any]:
        return self.ok("POST", "data-models", model_body(self.config, sql, **overrides))

    def create_source(self, sql: str, **model_overrides: Any) -> None:
        """The default connection plus a data model over ``sql``: what a pipeline needs."""
        self.create_connection()
        self.create_model(sql, **model_overrides)

    def create_pipeline(self, **overrides: Any) -> dict[str, Any]:
        return self.ok("POST", "pipelines", pipeline_body(self.config, **overrides))

    def runs(self, pipeline_id: str, **query: Any) -> list[dict[str, Any]]:
        """Every run of a pipeline, newest first (all pages)."""
        runs: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self.get(
                f"pipelines/{pipeline_id}/status/runs",
                params={"currentPage": page, "pageSize": 500, **query},
            )
            assert response.status_code == 200, response.text
            items = response.json()["items"]
            runs += items
            if len(items) < 500:
                return runs
            page += 1


def clients(server: EmulatorServer) -> tuple[Api, EmulatorControl]:
    """An API client and the admin control of an extra emulator."""
    assert server.url is not None
    return Api(server.url, server.config), EmulatorControl(server.url)


def error_messages(response: requests.Response) -> list[str]:
    """The messages of a Warehouse Sync error body (asserting its shape)."""
    body = response.json()
    assert set(body) == {"statusCode", "errors"}, body
    assert body["statusCode"] == response.status_code
    return [error["message"] for error in body["errors"]]


def instant(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}".upper()


def _resource(config: EmulatorConfig, resource_id: str, name: str, **fields: Any) -> dict[str, Any]:
    """A request body: the fields every resource has, then ``fields``."""
    return {"id": resource_id, "name": name, "workspace_id": config.workspace_id, **fields}


def connection_body(config: EmulatorConfig, **overrides: Any) -> dict[str, Any]:
    return (
        _resource(
            config,
            "conn",
            "Local warehouse",
            type="snowflake",
            source_account_id="gd1234",
            region="us-central1.gcp",
            warehouse="compute_wh",
            database="EMU",
            role="mp_role",
            user=config.snowflake_user,
            password=config.snowflake_password,
            snowflake_aws_iam_user_arn=None,
            snowflake_aws_external_id=None,
        )
        | overrides
    )


def model_body(config: EmulatorConfig, sql: str, **overrides: Any) -> dict[str, Any]:
    return (
        _resource(
            config,
            "model",
            "Model",
            type="sql",
            sql_query=sql,
            load_timestamp_field_name="UPDATED_AT",
            load_timestamp_field_type="timestamp_ntz",
            load_timestamp_field_time_zone=None,
            load_timestamp_field_time_offset=0,
        )
        | overrides
    )


def pipeline_body(config: EmulatorConfig, **overrides: Any) -> dict[str, Any]:
    return (
        _resource(
            config,
            "pipe",
            "Pipeline",
            is_active=True,
            is_draft=False,
            connection_id="conn",
            data_model_id="model",
            partner_feed_key="us1-1234567",
            schedule_interval="hourly",
            environment="development",
        )
        | overrides
    )


# A BigQuery connection: stored and served, but never reachable (the emulator runs only Snowflake).
BIGQUERY_FIELDS = {
    "type": "bigquery",
    "region": "us-east4",
    "project_id": "p",
    "dataset_id": "d",
    "service_account_id": "sa",
    "service_account_key": '{"private_key": "secret"}',
}


def bigquery_body(config: EmulatorConfig, **overrides: Any) -> dict[str, Any]:
    return _resource(config, "bq", "BQ", **BIGQUERY_FIELDS) | overrides
