"""Bad input raises InvalidRequestError before anything (not even a token request) is sent."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from wsync_dagster.mparticle import (
    MASKED_SECRET,
    ClientCredentials,
    InvalidRequestError,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster_tests.mparticle.conftest import ClientFactory
from wsync_dagster_tests.mparticle.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    WORKSPACE_ID,
    MParticleStub,
    data_model,
    pipeline,
    snowflake_connection,
)

Call = Callable[[WarehouseSyncClient], Any]

BAD_CALLS: dict[str, Call] = {
    "id with space": lambda c: c.get_connection("bad id"),
    "empty id": lambda c: c.get_data_model(""),
    "id with slash": lambda c: c.delete_pipeline("a/b"),
    "path traversal": lambda c: c.get_pipeline("../connections"),
    "trailing newline": lambda c: c.get_pipeline("p1\n"),
    "non-ascii id": lambda c: c.delete_connection("café"),
    "id not a string": lambda c: c.get_pipeline(42),
    "trigger bad id": lambda c: c.trigger_pipeline("p 1"),
    "status bad id": lambda c: c.get_pipeline_status("p?1"),
    "run id zero": lambda c: c.get_pipeline_run("p1", 0),
    "run id bool": lambda c: c.get_pipeline_run("p1", True),
    "run id string": lambda c: c.get_pipeline_run("p1", "7"),
    "unknown connection type": lambda c: c.list_connections(type="redshift"),
    "page zero": lambda c: c.list_pipeline_runs("p1", page=0),
    "page size zero": lambda c: c.list_pipeline_runs("p1", page_size=0),
    "page size over 500": lambda c: c.list_pipeline_runs("p1", page_size=501),
    "start without zone": lambda c: c.list_pipeline_runs("p1", start="2024-01-01T00:00:00"),
    "start naive datetime": lambda c: c.list_pipeline_runs("p1", start=datetime(2024, 1, 1)),
    "malformed end": lambda c: c.list_pipeline_runs("p1", end="2023-03-1T:12:00:00Z"),
    "start after end": lambda c: c.list_pipeline_runs(
        "p1", start="2024-02-01T00:00:00Z", end="2024-01-01T00:00:00Z"
    ),
    "iter checks eagerly": lambda c: c.iter_pipeline_runs("p1", start="yesterday"),
    "iter bad id": lambda c: c.iter_pipeline_runs("p 1"),
    "poll interval zero": lambda c: c.wait_for_run("p1", 1, poll_interval=0),
    "negative timeout": lambda c: c.wait_for_run("p1", 1, timeout=-1),
    "mpid beyond int64": lambda c: c.get_profile(2**63),
    "mpid bool": lambda c: c.get_profile(True),
    "no profile fields": lambda c: c.get_profile(1, fields=[]),
    "unknown profile field": lambda c: c.get_profile(1, fields=["user_attributes", "secrets"]),
    "unknown identity type": lambda c: c.resolve_profile("ssn", "123", "production"),
    "empty identity value": lambda c: c.resolve_profile("customer_id", "", "production"),
    "unknown environment": lambda c: c.resolve_profile("customer_id", "1", "staging"),
    "bypassed model validation": lambda c: c.update_pipeline(
        pipeline().model_copy(update={"schedule_interval": "every_minute"})
    ),
    "missing connection secret": lambda c: c.create_connection(snowflake_connection(password=None)),
    "masked secret sent back": lambda c: c.update_pipeline(
        pipeline(partner_feed_key=MASKED_SECRET)
    ),
    "other workspace": lambda c: c.create_data_model(data_model(workspace_id=WORKSPACE_ID + 1)),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_input_raises_before_any_request(
    name: str, fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        BAD_CALLS[name](client)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, WarehouseSyncError)
    assert fake.requests == []
    assert fake.token_requests == []


def test_profile_calls_need_org_and_account_ids(
    fake: MParticleStub, make_client: ClientFactory
) -> None:
    client = make_client(fake.url, fake.token_url, org_id=None)
    with pytest.raises(InvalidRequestError, match="org_id and account_id"):
        client.get_profile(1)
    with pytest.raises(InvalidRequestError, match="org_id and account_id"):
        client.resolve_profile("customer_id", "1", "production")
    assert fake.requests == [] and fake.token_requests == []


@pytest.mark.parametrize(
    "arguments",
    [
        {"workspace_id": 0},
        {"workspace_id": "5328"},
        {"api_root": "ftp://api.mparticle.com"},
        {"api_root": "api.mparticle.com"},
        {"org_id": -1},
    ],
)
def test_bad_client_configuration_is_refused(arguments: dict[str, Any]) -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    options: dict[str, Any] = {"workspace_id": WORKSPACE_ID, **arguments}
    workspace_id = options.pop("workspace_id")
    with pytest.raises(InvalidRequestError):
        WarehouseSyncClient(credentials, workspace_id, **options)


@pytest.mark.parametrize(
    "changes", [{"client_id": ""}, {"token_url": "sso.auth.mparticle.com/oauth/token"}]
)
def test_bad_credentials_are_refused(changes: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        ClientCredentials(**{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **changes})


def test_credentials_default_to_mparticles_sso() -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert credentials.token_url == "https://sso.auth.mparticle.com/oauth/token"
    assert credentials.audience == "https://api.mparticle.com"
    assert credentials.cache_key == (credentials.token_url, CLIENT_ID, credentials.audience)
