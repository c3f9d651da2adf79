"""wait_for_run (bounded polling, fails closed) and iter_pipeline_runs (paging until a short page)."""

import logging
from datetime import UTC, datetime

import pytest
from werkzeug import Request, Response

from wsync_dagster.mparticle import (
    NotFoundError,
    RunFailedError,
    RunState,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncClient,
    WarehouseSyncTimeoutError,
)
from wsync_dagster_tests.mparticle.helpers import (
    FakeTime,
    MParticleStub,
    payload,
    reply,
    run_json,
    ws_error,
)

RUN_PATH = "pipelines/p1/status/runs/42"


def states(fake: MParticleStub, *sequence: str) -> None:
    """Script the run's state on successive polls (the last one repeats)."""
    fake.on("GET", fake.ws(RUN_PATH), *(reply(200, run_json(42, s)) for s in sequence))


def polls(fake: MParticleStub) -> int:
    return len(fake.requests_to("GET", fake.ws(RUN_PATH)))


def test_returns_the_run_once_it_succeeds_polling_with_backoff(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime
) -> None:
    states(fake, "triggered", "queued", "running", "running", "running", "success")
    run = client.wait_for_run("p1", 42, timeout=600, poll_interval=5, max_poll_interval=15)
    assert run.state is RunState.SUCCESS
    assert fake_time.sleeps == [5, 10, 15, 15, 15]
    assert polls(fake) == 6


def test_a_failed_run_raises_with_the_pipelines_faulted_reason(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    states(fake, "running", "failed")
    faulted = {
        **payload("pipeline_create_response.json"),
        "is_faulted": True,
        "faulted_reason": "Run window holds 30000000 records; the on_demand limit is 24000000.",
    }
    fake.on("GET", fake.ws("pipelines/p1"), reply(200, faulted))
    with pytest.raises(RunFailedError) as caught:
        client.wait_for_run("p1", 42, timeout=60, poll_interval=1)
    assert caught.value.faulted_reason == faulted["faulted_reason"]
    assert caught.value.run.pipeline_run_id == 42
    assert "30000000 records" in str(caught.value)


def test_a_failed_run_is_reported_even_if_the_faulted_reason_cannot_be_read(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    states(fake, "failed")
    fake.on("GET", fake.ws("pipelines/p1"), ws_error(404, "Pipeline p1 not found"))
    with pytest.raises(RunFailedError, match="no faulted_reason") as caught:
        client.wait_for_run("p1", 42, timeout=60)
    assert caught.value.faulted_reason is None


def test_an_unknown_state_fails_closed_after_the_timeout_naming_the_state(
    fake: MParticleStub,
    client: WarehouseSyncClient,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    states(fake, "running", "cancelled")
    with pytest.raises(UnknownRunStateError) as caught:
        client.wait_for_run("p1", 42, timeout=100, poll_interval=10, max_poll_interval=40)
    assert caught.value.state == "cancelled"
    assert "'cancelled'" in str(caught.value)
    assert "not treating it as success" in str(caught.value)
    assert fake_time.sleeps == [10, 20, 40, 30]  # the last sleep is cut to the deadline
    assert polls(fake) == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'cancelled'" in warnings[0].getMessage()  # once per state


def test_an_unknown_state_that_turns_into_success_is_fine(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    states(fake, "dataset_triggered", "success")
    assert client.wait_for_run("p1", 42, timeout=100).state is RunState.SUCCESS


def test_timeout_while_still_running_names_the_last_state(
    fake: MParticleStub, client: WarehouseSyncClient, fake_time: FakeTime
) -> None:
    states(fake, "queued", "running")
    with pytest.raises(WaitTimeoutError, match="still 'running' after 30 s") as caught:
        client.wait_for_run("p1", 42, timeout=30, poll_interval=10)
    assert isinstance(caught.value, WarehouseSyncTimeoutError)
    assert isinstance(caught.value, TimeoutError)  # the builtin
    assert sum(fake_time.sleeps) == 30


def test_a_zero_timeout_polls_once(fake: MParticleStub, client: WarehouseSyncClient) -> None:
    states(fake, "running")
    with pytest.raises(WaitTimeoutError):
        client.wait_for_run("p1", 42, timeout=0)
    assert polls(fake) == 1


def test_an_unknown_run_is_not_found(fake: MParticleStub, client: WarehouseSyncClient) -> None:
    fake.on("GET", fake.ws(RUN_PATH), ws_error(404, "Pipeline run 42 not found"))
    with pytest.raises(NotFoundError):
        client.wait_for_run("p1", 42, timeout=60)


# ---------------------------------------------------------------------------------------- paging


def serve_runs(fake: MParticleStub, count: int) -> None:
    """Serve ``count`` runs (ids count..1, newest first) honouring currentPage and pageSize."""
    runs = [run_json(i, "success") for i in range(count, 0, -1)]

    def page(request: Request) -> Response:
        number, size = int(request.args["currentPage"]), int(request.args["pageSize"])
        return reply(200, {"items": runs[(number - 1) * size : number * size]})

    fake.on("GET", fake.ws("pipelines/p1/status/runs"), page)


def test_120_runs_in_pages_of_50_take_3_requests(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    serve_runs(fake, 120)
    runs = list(client.iter_pipeline_runs("p1", page_size=50))
    assert [r.pipeline_run_id for r in runs] == list(range(120, 0, -1))
    assert [r.args.getlist("currentPage") for r in fake.requests] == [["1"], ["2"], ["3"]]
    assert all(r.args.getlist("pageSize") == ["50"] for r in fake.requests)


def test_an_exact_multiple_ends_on_an_empty_page(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    serve_runs(fake, 100)
    assert len(list(client.iter_pipeline_runs("p1", page_size=50))) == 100
    assert len(fake.requests) == 3


def test_paging_passes_the_date_bounds_on_every_page(
    fake: MParticleStub, client: WarehouseSyncClient
) -> None:
    serve_runs(fake, 7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    runs = list(
        client.iter_pipeline_runs("p1", start=start, end="2024-01-31T00:00:00Z", page_size=5)
    )
    assert len(runs) == 7
    for request in fake.requests:
        assert request.args.getlist("startDate") == ["2024-01-01T00:00:00Z"]
        assert request.args.getlist("endDate") == ["2024-01-31T00:00:00Z"]


def test_iteration_is_lazy(fake: MParticleStub, client: WarehouseSyncClient) -> None:
    serve_runs(fake, 120)
    first = next(client.iter_pipeline_runs("p1", page_size=50))
    assert first.pipeline_run_id == 120
    assert len(fake.requests) == 1
