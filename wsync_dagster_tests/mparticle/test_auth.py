"""Tokens: one per credentials per process, shared across threads and clients, refreshed in time."""

import threading
from collections.abc import Callable, Sequence

import pytest

from wsync_dagster.mparticle import (
    AuthenticationError,
    ClientCredentials,
    ServerError,
    WarehouseSyncClient,
    clear_token_cache,
)
from wsync_dagster_tests.mparticle.conftest import ClientFactory
from wsync_dagster_tests.mparticle.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    TEST_POLICY,
    FakeTime,
    MParticleStub,
    Step,
    bearer,
    drop,
    reply,
    ws_error,
)


@pytest.fixture
def pipelines_route(fake: MParticleStub) -> str:
    """A route that always succeeds, for calls whose only interest is authentication."""
    path = fake.ws("pipelines")
    fake.on("GET", path, reply(200, []))
    return path


def credentials(fake: MParticleStub, **changes: str) -> ClientCredentials:
    fields = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token_url": fake.token_url}
    return ClientCredentials(**{**fields, **changes})


def test_one_token_serves_many_calls(
    fake: MParticleStub, client: WarehouseSyncClient, pipelines_route: str
) -> None:
    for _ in range(10):
        client.list_pipelines()
    assert len(fake.token_requests) == 1
    assert {bearer(r) for r in fake.requests} == {fake.issued[0]}


def test_clients_with_equal_credentials_share_the_token_and_others_do_not(
    fake: MParticleStub, make_client: ClientFactory, pipelines_route: str
) -> None:
    first = make_client(fake.url, fake.token_url, credentials=credentials(fake))
    second = make_client(fake.url, fake.token_url, credentials=credentials(fake))
    first.list_pipelines()
    second.list_pipelines()
    assert len(fake.token_requests) == 1
    assert (first.stats.token_requests, second.stats.token_requests) == (1, 0)

    fake.audience = "https://other.example"
    third = make_client(
        fake.url, fake.token_url, credentials=credentials(fake, audience="https://other.example")
    )
    third.list_pipelines()
    assert len(fake.token_requests) == 2


def test_token_is_refreshed_60_seconds_before_it_expires(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, pipelines_route: str
) -> None:
    fake.token_ttl = 3600
    client.list_pipelines()
    fake_time.advance(3600 - 60 - 1)
    client.list_pipelines()
    assert len(fake.token_requests) == 1
    fake_time.advance(2)
    client.list_pipelines()
    assert len(fake.token_requests) == 2
    assert bearer(fake.requests[-1]) == fake.issued[1]


def test_leeway_is_clamped_for_tiny_lifetimes(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, pipelines_route: str
) -> None:
    fake.token_ttl = 10  # a 60 s leeway would make every token stale on arrival
    client.list_pipelines()
    fake_time.advance(4)
    client.list_pipelines()
    assert len(fake.token_requests) == 1
    fake_time.advance(2)
    client.list_pipelines()
    assert len(fake.token_requests) == 2


def test_a_stale_token_is_replaced_once_on_401(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, pipelines_route: str
) -> None:
    client.list_pipelines()
    fake.revoke_tokens()  # e.g. expired server-side earlier than we thought
    assert client.list_pipelines() == []
    assert len(fake.token_requests) == 2
    assert [bearer(r) for r in fake.requests] == [fake.issued[0], fake.issued[0], fake.issued[1]]
    assert fake_time.sleeps == []  # a token refresh is not a backoff retry


def test_two_401s_raise_authentication_error_after_one_refresh(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime
) -> None:
    fake.on("GET", fake.ws("pipelines"), ws_error(401, "credential lacks access"))
    with pytest.raises(AuthenticationError) as caught:
        client.list_pipelines()
    assert caught.value.status == 401
    assert caught.value.messages == ("credential lacks access",)
    assert CLIENT_ID in str(caught.value)
    assert len(fake.token_requests) == 2
    assert len(fake.requests) == 2
    assert fake_time.sleeps == []


def test_many_threads_seeing_401_fetch_one_new_token(
    fake: MParticleStub, client: WarehouseSyncClient, pipelines_route: str
) -> None:
    client.list_pipelines()
    fake.revoke_tokens()
    run_concurrently(5, [client.list_pipelines] * 8)
    assert len(fake.token_requests) == 2


def test_wrong_secret_is_a_clear_authentication_error(
    fake: MParticleStub, make_client: ClientFactory, pipelines_route: str
) -> None:
    client = make_client(
        fake.url, fake.token_url, credentials=credentials(fake, client_secret="wrong-secret")
    )
    with pytest.raises(AuthenticationError) as caught:
        client.list_pipelines()
    message = str(caught.value)
    assert caught.value.status == 401
    assert CLIENT_ID in message and fake.token_url in message
    assert "access_denied: Unauthorized" in message
    assert "wrong-secret" not in message and CLIENT_SECRET not in message
    assert len(fake.token_requests) == 1  # a rejection is not retried
    assert fake.requests == []


def test_wrong_audience_is_a_clear_authentication_error(
    fake: MParticleStub, make_client: ClientFactory, pipelines_route: str
) -> None:
    client = make_client(
        fake.url, fake.token_url, credentials=credentials(fake, audience="https://wrong.example")
    )
    with pytest.raises(AuthenticationError, match="invalid_request") as caught:
        client.list_pipelines()
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "failure",
    [reply(503, b"upstream unavailable"), drop(reset=True), reply(429)],
    ids=["503", "reset", "429"],
)
def test_token_endpoint_transient_failures_are_retried(
    fake: MParticleStub,
    client: WarehouseSyncClient,
    fake_time: FakeTime,
    pipelines_route: str,
    failure: Step,
) -> None:
    fake.on("POST", "/oauth/token", failure, fake.issue_token)
    assert client.list_pipelines() == []
    assert len(fake.token_requests) == 2
    assert fake_time.sleeps == [TEST_POLICY.delay(1)]
    assert client.stats.retries == 1


def test_token_endpoint_that_keeps_failing_names_the_client_id(
    fake: MParticleStub, client: WarehouseSyncClient, pipelines_route: str
) -> None:
    fake.on("POST", "/oauth/token", reply(500, b"boom"))
    with pytest.raises(ServerError) as caught:
        client.list_pipelines()
    assert CLIENT_ID in str(caught.value) and fake.token_url in str(caught.value)
    # One retry loop: the API call's policy bounds the token requests too.
    assert len(fake.token_requests) == TEST_POLICY.max_attempts
    assert fake.requests == []


def test_a_token_response_without_access_token_is_an_authentication_error(
    fake: MParticleStub, client: WarehouseSyncClient, pipelines_route: str
) -> None:
    fake.on("POST", "/oauth/token", reply(200, {"token_type": "Bearer"}))
    with pytest.raises(AuthenticationError, match="no usable access_token"):
        client.list_pipelines()


def test_clear_token_cache_forces_a_new_token(
    fake: MParticleStub, client: WarehouseSyncClient, pipelines_route: str
) -> None:
    client.list_pipelines()
    clear_token_cache()
    client.list_pipelines()
    assert len(fake.token_requests) == 2


def run_concurrently(calls: int, targets: Sequence[Callable[[], object]]) -> None:
    """Call each target ``calls`` times, each in its own thread; all threads start together."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def work(target: Callable[[], object]) -> None:
        try:
            barrier.wait()
            for _ in range(calls):
                target()
        except BaseException as error:  # re-raised below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(target,)) for target in targets]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []


def test_8_threads_x_50_calls_through_one_client_make_one_token_request(
    fake: MParticleStub, client: WarehouseSyncClient, pipelines_route: str
) -> None:
    fake.token_delay = 0.05  # every thread arrives while the first token request is in flight
    run_concurrently(50, [client.list_pipelines] * 8)
    assert len(fake.requests) == 400
    assert len(fake.token_requests) == 1
    assert client.stats.token_requests == 1
    assert client.stats.requests == 400


def test_8_threads_x_50_calls_across_two_clients_make_one_token_request(
    fake: MParticleStub, make_client: ClientFactory, pipelines_route: str
) -> None:
    fake.token_delay = 0.05
    clients = [make_client(fake.url, fake.token_url, credentials=credentials(fake)) for _ in "ab"]
    run_concurrently(50, [c.list_pipelines for c in clients] * 4)
    assert len(fake.requests) == 400
    assert len(fake.token_requests) == 1
    assert sum(c.stats.token_requests for c in clients) == 1
