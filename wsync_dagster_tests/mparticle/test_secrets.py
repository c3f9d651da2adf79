"""No secret (client secret, password, service-account key, feed key, bearer token) ever shows
in a repr, str, display dump, exception or log line."""

import logging

import pydantic
import pytest

from wsync_dagster.mparticle import (
    ClientCredentials,
    Connection,
    Pipeline,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster_tests.mparticle.conftest import ClientFactory
from wsync_dagster_tests.mparticle.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    FEED_KEY,
    PASSWORD,
    SERVICE_ACCOUNT_KEY,
    MParticleStub,
    bigquery_connection,
    drop,
    payload,
    pipeline,
    reply,
    snowflake_connection,
    ws_error,
)

SECRETS = (CLIENT_SECRET, PASSWORD, FEED_KEY, SERVICE_ACCOUNT_KEY, "bq-key-DO-NOT-LEAK")


def assert_no_secret(text: str, *extra: str) -> None:
    for secret in (*SECRETS, *extra):
        assert secret not in text, f"secret {secret[:6]}... leaked into: {text[:200]}"


def shown(value: object) -> str:
    """Every way a value is commonly displayed."""
    parts = [repr(value), str(value), f"{value}"]
    if isinstance(value, pydantic.BaseModel):
        parts += [
            str(value.model_dump()),
            value.model_dump_json(),
            str(value.model_dump(mode="json")),
        ]
    return "\n".join(parts)


def test_credentials_and_client_never_show_the_secret(client: WarehouseSyncClient) -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert_no_secret(shown(credentials))
    assert_no_secret(repr(client) + str(client) + str(vars(client)))
    assert CLIENT_ID in repr(client)


@pytest.mark.parametrize(
    "model",
    [snowflake_connection(), bigquery_connection(), pipeline()],
    ids=["snowflake", "bigquery", "pipeline"],
)
def test_models_never_show_their_secrets(model: Connection | Pipeline) -> None:
    assert_no_secret(shown(model))


def test_validation_errors_do_not_echo_rejected_values() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        pipeline(partner_feed_kee=FEED_KEY)  # misspelled key holding a secret
    assert_no_secret(str(caught.value) + repr(caught.value))
    with pytest.raises(pydantic.ValidationError) as caught:
        ClientCredentials(client_id=CLIENT_ID, client_secret=[CLIENT_SECRET])
    assert_no_secret(str(caught.value))


def test_errors_and_logs_of_a_troubled_session_carry_no_secret(
    fake: MParticleStub,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(fake.url, fake.token_url)
    fake.on(
        "POST", fake.ws("connections"), drop(), reply(200, payload("connection_snowflake.json"))
    )
    fake.on("POST", fake.ws("pipelines"), ws_error(400, "invalid SQL in data model"))
    fake.on("GET", fake.ws("pipelines/p1"), ws_error(401, "token rejected"))
    fake.on("GET", fake.ws("pipelines"), ws_error(404, "no pipelines here"))
    errors: list[BaseException] = []

    client.create_connection(snowflake_connection())  # dropped once, then created
    fake.revoke_tokens()
    for call in (
        lambda: client.create_pipeline(pipeline()),
        lambda: client.get_pipeline("p1"),
        lambda: client.update_pipeline(pipeline(partner_feed_key="************")),
    ):
        with pytest.raises(WarehouseSyncError) as caught:
            call()
        errors.append(caught.value)
    wrong = make_client(
        fake.url,
        fake.token_url,
        credentials=ClientCredentials(
            client_id=CLIENT_ID, client_secret=PASSWORD, token_url=fake.token_url
        ),
    )
    with pytest.raises(WarehouseSyncError) as caught:
        wrong.list_pipelines()
    errors.append(caught.value)

    assert fake.issued  # bearer tokens were in use
    rendered = "\n".join(f"{e!s}\n{e!r}\n{getattr(e, '__notes__', '')}\n{vars(e)}" for e in errors)
    assert_no_secret(rendered, *fake.issued)
    assert "wsync_dagster.mparticle" in {r.name for r in caplog.records}
    assert_no_secret(caplog.text, *fake.issued)
