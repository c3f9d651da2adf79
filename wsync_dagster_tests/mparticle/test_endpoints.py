"""Every endpoint over real HTTP: method, path, query, body and headers sent; response parsed."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from urllib3.connection import HTTPConnection
from werkzeug import Response

from wsync_dagster.emulator import EmulatorServer
from wsync_dagster.mparticle import (
    Connection,
    DataModel,
    Pipeline,
    PipelineRun,
    PipelineStatus,
    Profile,
    TriggerResult,
    WarehouseSyncClient,
)
from wsync_dagster_tests.mparticle.conftest import LiveFactory
from wsync_dagster_tests.mparticle.helpers import (
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    FEED_KEY,
    ORG_ID,
    PASSWORD,
    WORKSPACE_ID,
    WS_PREFIX,
    FakeTime,
    MParticleStub,
    data_model,
    payload,
    pipeline,
    reply,
    snowflake_connection,
)

PROFILE_ROOT = f"/userprofile/v1/{ORG_ID}/{ACCOUNT_ID}/{WORKSPACE_ID}"
ALL_FIELDS = "device_identities,user_identities,user_attributes,audience_memberships,attribution"


@dataclass(frozen=True)
class Case:
    """One endpoint call: what the client must send, what the server answers, what we get."""

    call: Callable[[WarehouseSyncClient], Any]
    method: str
    path: str  # relative to the Warehouse Sync base unless it starts with "/"
    reply: Response
    check: Callable[[Any], bool]
    query: dict[str, list[str]] = field(default_factory=dict[str, list[str]])
    body: Any = None
    # GETs the call makes before its own request: (path as above, reply).
    reads_first: tuple[tuple[str, Response], ...] = ()


CASES: dict[str, Case] = {
    "list_connections": Case(
        lambda c: c.list_connections(),
        "GET",
        "connections",
        reply(200, payload("connection_list.json")),
        lambda r: [x.id for x in r] == ["example-connection", "example-connection-2"],
    ),
    "list_connections_by_type": Case(
        lambda c: c.list_connections(type="bigquery"),
        "GET",
        "connections",
        reply(200, payload("connection_list.json")[1:]),
        lambda r: [x.type for x in r] == ["bigquery"],
        query={"type": ["bigquery"]},
    ),
    "get_connection": Case(
        lambda c: c.get_connection("example-connection"),
        "GET",
        "connections/example-connection",
        reply(200, payload("connection_snowflake.json")),
        lambda r: isinstance(r, Connection) and r.warehouse == "compute_wh",
    ),
    "list_data_models": Case(
        lambda c: c.list_data_models(),
        "GET",
        "data-models",
        reply(200, payload("data_model_list.json")),
        lambda r: len(r) == 3 and all(isinstance(x, DataModel) for x in r),
    ),
    "get_data_model": Case(
        lambda c: c.get_data_model("example-data-model"),
        "GET",
        "data-models/example-data-model",
        reply(200, payload("data_model.json")),
        lambda r: r.load_timestamp_field_name == "LAST_UPDATED_DATE_TIME",
    ),
    "list_pipelines": Case(
        lambda c: c.list_pipelines(),
        "GET",
        "pipelines",
        reply(200, payload("pipeline_list.json")),
        lambda r: [x.is_active for x in r] == [False, True],
    ),
    "get_pipeline": Case(
        lambda c: c.get_pipeline("example-pipeline"),
        "GET",
        "pipelines/example-pipeline",
        reply(200, payload("pipeline_create_response.json")),
        lambda r: isinstance(r, Pipeline) and r.partner_feed_id == 2124,
    ),
    "trigger_pipeline": Case(
        lambda c: c.trigger_pipeline("p1"),
        "POST",
        "pipelines/p1",
        reply(200, payload("trigger_response.json")),
        lambda r: r == TriggerResult(pipeline_run_id=13325, status="trigger_requested"),
        reads_first=(("pipelines/p1/status/runs", reply(200, {"items": []})),),
    ),
    "get_pipeline_status": Case(
        lambda c: c.get_pipeline_status("example-pipeline-2"),
        "GET",
        "pipelines/example-pipeline-2/status",
        reply(200, payload("pipeline_status.json")),
        lambda r: isinstance(r, PipelineStatus) and r.latest_pipeline_run.pipeline_run_id == 2171,
    ),
    "list_pipeline_runs": Case(
        lambda c: c.list_pipeline_runs(
            "p1",
            page=2,
            page_size=20,
            start=datetime(2022, 10, 17, tzinfo=UTC),
            end="2022-10-18T00:00:00Z",
        ),
        "GET",
        "pipelines/p1/status/runs",
        reply(200, payload("pipeline_runs_page.json")),
        lambda r: [x.pipeline_run_id for x in r] == [251, 252],
        query={
            "currentPage": ["2"],
            "pageSize": ["20"],
            "startDate": ["2022-10-17T00:00:00Z"],
            "endDate": ["2022-10-18T00:00:00Z"],
        },
    ),
    "get_pipeline_run": Case(
        lambda c: c.get_pipeline_run("p1", 637),
        "GET",
        "pipelines/p1/status/runs/637",
        reply(200, payload("pipeline_run.json")),
        lambda r: isinstance(r, PipelineRun) and r.pipeline_run_id == 637,
    ),
    "get_profile": Case(
        lambda c: c.get_profile(9080350317581165000),
        "GET",
        f"{PROFILE_ROOT}/9080350317581165000",
        reply(200, payload("profile.json")),
        lambda r: isinstance(r, Profile) and r.mpid == 9080350317581165000,
        query={"fields": [ALL_FIELDS]},
    ),
    "resolve_profile": Case(
        lambda c: c.resolve_profile("customer_id", "12345", "production"),
        "POST",
        f"/userprofile/v1/resolve/{ORG_ID}/{ACCOUNT_ID}/{WORKSPACE_ID}",
        reply(200, payload("profile.json")),
        lambda r: r.identity("email") == "Example-Customer-mxr15@example.com",
        query={"fields": [ALL_FIELDS]},
        body=payload("profile_resolve_request.json"),
    ),
}


def profile_fields_case(mpid: int, fields: list[str] | str, sent: str) -> Case:
    """``get_profile`` asking for some ``fields``: they go as one comma-separated ``sent``."""
    return Case(
        lambda c: c.get_profile(mpid, fields=fields),
        "GET",
        f"{PROFILE_ROOT}/{mpid}",
        reply(200, payload("profile.json")),
        lambda r: isinstance(r, Profile),
        query={"fields": [sent]},
    )


CASES["get_profile_some_fields"] = profile_fields_case(
    42, ["user_attributes", "user_identities"], "user_attributes,user_identities"
)
CASES["get_profile_fields_as_text"] = profile_fields_case(
    -7, "user_attributes,audience_memberships", "user_attributes,audience_memberships"
)


@dataclass(frozen=True)
class Resource:
    """A kind of Warehouse Sync resource, for its create, update and delete cases."""

    name: str  # as in the client's methods: create_{name}, update_{name}, delete_{name}
    path: str
    example: Callable[..., Any]  # builds one to send, with changes
    created: str  # the documented POST response
    changes: dict[str, Any]  # what the update changes
    updated: str  # the documented PUT response
    check_updated: Callable[[Any], bool]
    model: type


def write_cases(kind: Resource) -> dict[str, Case]:
    sent, changed = kind.example(), kind.example(**kind.changes)
    body = sent.request_body(WORKSPACE_ID)
    return {
        f"create_{kind.name}": Case(
            lambda c: getattr(c, f"create_{kind.name}")(sent),
            "POST",
            kind.path,
            reply(200, payload(kind.created)),
            lambda r: isinstance(r, kind.model),
            body=body,
        ),
        f"update_{kind.name}": Case(
            lambda c: getattr(c, f"update_{kind.name}")(changed),
            "PUT",
            f"{kind.path}/{sent.id}",
            reply(200, payload(kind.updated)),
            kind.check_updated,
            body={**body, **kind.changes},
        ),
        f"delete_{kind.name}": Case(
            lambda c: getattr(c, f"delete_{kind.name}")(sent.id),
            "DELETE",
            f"{kind.path}/{sent.id}",
            reply(204),
            lambda r: r is None,
        ),
    }


RESOURCES = [
    Resource(
        "connection",
        "connections",
        snowflake_connection,
        "connection_snowflake.json",
        {"name": "Renamed"},
        "connection_update_response.json",
        lambda r: r.last_modified_on == datetime(2023, 2, 4, 0, 33, 54, 133000, tzinfo=UTC),
        Connection,
    ),
    Resource(
        "data_model",
        "data-models",
        data_model,
        "data_model.json",
        {"load_timestamp_field_time_offset": 1800},
        "data_model_update_response.json",
        lambda r: r.load_timestamp_field_time_offset == 1800,
        DataModel,
    ),
    Resource(
        "pipeline",
        "pipelines",
        pipeline,
        "pipeline_create_response.json",
        {"is_active": False},
        "pipeline_update_response.json",
        lambda r: isinstance(r, Pipeline),
        Pipeline,
    ),
]
CASES.update(case for kind in RESOURCES for case in write_cases(kind).items())


@pytest.mark.parametrize("name", list(CASES))
def test_endpoint(name: str, fake: MParticleStub, client: WarehouseSyncClient) -> None:
    case = CASES[name]
    path = case.path if case.path.startswith("/") else fake.ws(case.path)
    fake.on(case.method, path, case.reply)
    for read_path, read_reply in case.reads_first:
        fake.on("GET", fake.ws(read_path), read_reply)

    result = case.call(client)

    assert case.check(result), result
    *reads, sent = fake.requests
    assert [(r.method, r.path) for r in reads] == [
        ("GET", fake.ws(read_path)) for read_path, _ in case.reads_first
    ]
    assert (sent.method, sent.path, sent.args.to_dict(flat=False)) == (
        case.method,
        path,
        case.query,
    )
    assert sent.headers["authorization"] == f"Bearer {fake.issued[0]}"
    assert sent.headers["accept"] == "application/json"
    if case.body is None:
        assert sent.get_data() == b""
    else:
        assert sent.headers["content-type"] == "application/json"
        assert sent.get_json() == case.body


def test_the_wire_carries_the_secrets_the_models_hide(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    fake.on("POST", fake.ws("connections"), reply(200, payload("connection_snowflake.json")))
    fake.on("POST", fake.ws("pipelines"), reply(200, payload("pipeline_create_response.json")))
    client.create_connection(snowflake_connection())
    client.create_pipeline(pipeline())
    assert fake.requests[0].get_json()["password"] == PASSWORD
    assert fake.requests[1].get_json()["partner_feed_key"] == FEED_KEY


def test_token_request_has_the_documented_shape(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    fake.on("GET", fake.ws("pipelines"), reply(200, []))
    client.list_pipelines()
    [token_request] = fake.token_requests
    documented = payload("token_request.json")
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/json"
    assert token_request.get_json() == {
        **documented,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert "authorization" not in token_request.headers


def test_custom_api_root_with_trailing_slash_and_urls(
    fake: MParticleStub, make_client: Any
) -> None:
    client = make_client(fake.url + "/", fake.token_url)
    assert client.warehouse_base == (
        f"{fake.url}/platform/experimental/workspaces/{WORKSPACE_ID}/inputs/warehouse"
    )
    fake.on("GET", fake.ws("pipelines"), reply(200, []))
    assert client.list_pipelines() == []


def test_connections_are_pooled(
    emulator: EmulatorServer,
    live_on: LiveFactory,
    fake_time: FakeTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stub closes every connection after its answer, so this runs on the emulator (keep-alive).
    live = live_on(emulator, sleep=fake_time.sleep, clock=fake_time.monotonic)
    client = live.client
    connects: list[int] = []
    connect = HTTPConnection.connect

    def counting_connect(self: HTTPConnection) -> None:
        connects.append(self.port or 0)
        connect(self)

    monkeypatch.setattr(HTTPConnection, "connect", counting_connect)
    for _ in range(20):
        client.list_pipelines()
    assert len(connects) == 1  # token endpoint and API share this host: one kept-alive socket
    monkeypatch.undo()
    log = live.control.request_log()
    assert [(e["method"], e["path"]) for e in log] == [("POST", "/oauth/token")] + [
        ("GET", f"{WS_PREFIX}/pipelines")
    ] * 20
    assert client.stats.requests == 20
    assert client.stats.token_requests == 1
