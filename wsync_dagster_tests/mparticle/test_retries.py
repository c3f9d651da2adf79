"""Retry decisions (retries.py) and one-fault-per-test behaviour over real HTTP."""

import json

import pytest
from werkzeug import Response

from wsync_dagster.mparticle import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
    WarehouseSyncClient,
    WarehouseSyncError,
    WarehouseUnreachableError,
)
from wsync_dagster_tests.mparticle.conftest import ClientFactory
from wsync_dagster_tests.mparticle.helpers import (
    TEST_POLICY,
    FakeTime,
    MParticleStub,
    Step,
    drop,
    payload,
    reply,
    ws_error,
)

# ------------------------------------------------------------------------------ the policy itself


def test_backoff_doubles_from_base_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=lambda: 0.999999)
    assert [round(policy.delay(n), 3) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_spreads_each_delay_between_half_and_all_of_it() -> None:
    low = RetryPolicy(base_delay=2.0, jitter=lambda: 0.0)
    middle = RetryPolicy(base_delay=2.0, jitter=lambda: 0.5)
    assert (low.delay(1), middle.delay(1)) == (1.0, 1.5)


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=60.0, jitter=lambda: 0.0)
    assert policy.delay(3, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=3600.0) == 60.0


def _status(cls: type[APIStatusError], status: int) -> APIStatusError:
    return cls(status=status, messages=(), method="GET", path="/x")


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TransportError("reset", method="GET", path="/x"), True),
        (RequestTimeoutError("slow", method="GET", path="/x"), True),
        (_status(RateLimitedError, 429), True),
        (_status(ServerError, 500), True),
        (_status(ServerError, 503), True),
        (_status(WarehouseUnreachableError, 505), False),
        (_status(BadRequestError, 400), False),
        (_status(AuthenticationError, 401), False),
        (_status(NotFoundError, 404), False),
        (_status(APIStatusError, 409), False),
        (MalformedResponseError("junk", status=200, method="GET", path="/x"), False),
    ],
)
def test_what_is_retryable(error: WarehouseSyncError, retryable: bool) -> None:
    assert TEST_POLICY.is_retryable(error) is retryable


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"base_delay": -1.0}, {"total_budget": -5.0}])
def test_nonsense_policies_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


# ------------------------------------------------------------------------- faults, one per test


@pytest.fixture
def route(fake: MParticleStub) -> str:
    return fake.ws("pipelines/p1")


def ok() -> Response:
    return reply(200, payload("pipeline_create_response.json"))


def test_429_waits_exactly_retry_after(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, route: str
) -> None:
    fake.on("GET", route, reply(429, b"", {"Retry-After": "7"}), ok())
    assert client.get_pipeline("p1").id == "example-pipeline"
    assert fake_time.sleeps == [7.0]
    assert len(fake.requests) == 2
    assert client.stats.retries == 1


def test_500_then_success(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, route: str
) -> None:
    fake.on("GET", route, ws_error(500, "internal"), ok())
    assert client.get_pipeline("p1").id == "example-pipeline"
    assert fake_time.sleeps == [TEST_POLICY.delay(1)]
    assert len(fake.requests) == 2


def test_503_honours_its_retry_after(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, route: str
) -> None:
    fake.on("GET", route, reply(503, b"busy", {"Retry-After": "2"}), ok())
    client.get_pipeline("p1")
    assert fake_time.sleeps == [2.0]


@pytest.mark.parametrize("lost", [drop(reset=True), drop()], ids=["reset", "closed"])
def test_connection_reset_or_closed_then_success(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, route: str, lost: Step
) -> None:
    fake.on("GET", route, lost, ok())
    assert client.get_pipeline("p1").id == "example-pipeline"
    assert len(fake.requests) == 2
    assert fake_time.sleeps == [TEST_POLICY.delay(1)]


def test_read_timeout_then_success(
    fake: MParticleStub, make_client: ClientFactory, fake_time: FakeTime, route: str
) -> None:
    client = make_client(fake.url, fake.token_url, timeout=(1.0, 0.05))
    fake.on("GET", route, fake.held(ok()), ok())
    assert client.get_pipeline("p1").id == "example-pipeline"
    assert len(fake.requests) == 2
    assert fake_time.sleeps == [TEST_POLICY.delay(1)]


def test_connection_refused_is_a_transport_error_after_retries(
    make_client: ClientFactory, fake: MParticleStub, fake_time: FakeTime
) -> None:
    client = make_client("http://127.0.0.1:9", fake.token_url)  # discard port: nothing listens
    with pytest.raises(TransportError, match=r"GET /platform/.*/pipelines"):
        client.list_pipelines()
    assert len(fake_time.sleeps) == TEST_POLICY.max_attempts - 1


def test_malformed_json_is_a_clear_error_not_a_decode_error(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, route: str
) -> None:
    fake.on("GET", route, reply(200, b'{"id": "p1", oops', {"Content-Type": "application/json"}))
    with pytest.raises(MalformedResponseError) as caught:
        client.get_pipeline("p1")
    assert not isinstance(caught.value, json.JSONDecodeError)
    assert caught.value.status == 200
    assert "expected JSON" in str(caught.value) and "oops" in str(caught.value)
    assert len(fake.requests) == 1  # not retried
    assert fake_time.sleeps == []


def test_json_of_the_wrong_shape_is_a_malformed_response(
    fake: MParticleStub, client: WarehouseSyncClient, route: str
) -> None:
    fake.on("GET", fake.ws("pipelines"), reply(200, {"items": []}))
    with pytest.raises(MalformedResponseError, match="expected a JSON array"):
        client.list_pipelines()
    fake.on("GET", route, reply(200, {"id": "p1"}))
    with pytest.raises(MalformedResponseError, match=r"does not match Pipeline.*is_active"):
        client.get_pipeline("p1")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (505, WarehouseUnreachableError),
        (404, NotFoundError),
        (400, BadRequestError),
        (403, APIStatusError),
        (409, APIStatusError),
    ],
)
def test_non_retryable_statuses_fail_at_once_with_context(
    fake: MParticleStub,
    client: WarehouseSyncClient,
    fake_time: FakeTime,
    route: str,
    status: int,
    error: type[APIStatusError],
) -> None:
    fake.on("GET", route, ws_error(status, f"problem {status}"), ok())
    with pytest.raises(error) as caught:
        client.get_pipeline("p1")
    assert caught.value.status == status
    assert caught.value.messages == (f"problem {status}",)
    assert (caught.value.method, caught.value.path) == ("GET", route)
    assert f"GET {route} -> {status}: problem {status}" in str(caught.value)
    assert len(fake.requests) == 1
    assert fake_time.sleeps == []


def test_total_retry_budget_bounds_the_retries(
    fake: MParticleStub, make_client: ClientFactory, fake_time: FakeTime, route: str
) -> None:
    policy = RetryPolicy(
        max_attempts=100, base_delay=1.0, max_delay=100.0, total_budget=10.0, jitter=lambda: 0.0
    )
    client = make_client(fake.url, fake.token_url, retry_policy=policy)
    fake.on("GET", route, ws_error(500, "still broken"))
    with pytest.raises(ServerError) as caught:
        client.get_pipeline("p1")
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0]  # the next 8 s would end past 10 s
    assert len(fake.requests) == 5
    assert any("retry budget" in note for note in caught.value.__notes__)


def test_max_attempts_bounds_the_retries(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime, route: str
) -> None:
    fake.on("GET", route, ws_error(502, "bad gateway"))
    with pytest.raises(ServerError) as caught:
        client.get_pipeline("p1")
    assert len(fake.requests) == TEST_POLICY.max_attempts
    assert any("max_attempts" in note for note in caught.value.__notes__)
    assert client.stats.retries == TEST_POLICY.max_attempts - 1


def test_a_retry_after_beyond_the_budget_gives_up_without_sleeping(
    fake: MParticleStub, make_client: ClientFactory, fake_time: FakeTime, route: str
) -> None:
    client = make_client(
        fake.url, fake.token_url, retry_policy=RetryPolicy(total_budget=10.0, jitter=lambda: 0.0)
    )
    fake.on("GET", route, reply(429, b"", {"Retry-After": "30"}), ok())
    with pytest.raises(RateLimitedError) as caught:
        client.get_pipeline("p1")
    assert caught.value.retry_after == 30.0
    assert fake_time.sleeps == []
    assert len(fake.requests) == 1
