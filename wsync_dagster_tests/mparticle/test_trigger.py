"""trigger_pipeline never starts two runs: lost responses, 5xx, 429, "already in progress"."""

from datetime import timedelta
from typing import Any

import pytest
from werkzeug import Request, Response

from wsync_dagster.mparticle import (
    BadRequestError,
    NotFoundError,
    TriggerResult,
    WarehouseSyncClient,
    WarehouseUnreachableError,
)
from wsync_dagster_tests.mparticle.conftest import ClientFactory
from wsync_dagster_tests.mparticle.helpers import (
    TEST_POLICY,
    FakeTime,
    Handler,
    MParticleStub,
    Step,
    answer,
    drop,
    reply,
    run_json,
    ws_error,
)


class Runs:
    """The pipeline's runs as the fake server keeps them, newest first, served page by page."""

    def __init__(self, fake: MParticleStub, fake_time: FakeTime) -> None:
        self.fake_time = fake_time
        self.items: list[dict[str, Any]] = []
        self.next_id = 13325
        self.trigger_path = fake.ws("pipelines/p1")
        self.list_path = fake.ws("pipelines/p1/status/runs")
        fake.on("GET", self.list_path, self.page)

    def create(self, state: str = "triggered", age: float = 0.0) -> dict[str, Any]:
        created = self.fake_time.wall() - timedelta(seconds=age)
        run = run_json(self.next_id, state, created_on=created)
        self.items.insert(0, run)
        self.next_id += 1
        return run

    def page(self, request: Request) -> Response:
        page = int(request.args["currentPage"])
        size = int(request.args["pageSize"])
        return reply(200, {"items": self.items[(page - 1) * size : page * size]})

    def created_then(self, action: Step, state: str = "triggered") -> Handler:
        """A trigger handler that creates a run, then answers with ``action`` (e.g. drops)."""

        def handler(request: Request) -> Response:
            self.create(state)
            return answer(action, request)

        return handler

    def accept(self, request: Request) -> Response:
        """A trigger handler that works: creates a run and says so."""
        run = self.create()
        return reply(
            200, {"pipeline_run_id": run["pipeline_run_id"], "status": "trigger_requested"}
        )


@pytest.fixture
def runs(fake: MParticleStub, fake_time: FakeTime) -> Runs:
    return Runs(fake, fake_time)


def posts(fake: MParticleStub, runs: Runs) -> list[Request]:
    return fake.requests_to("POST", runs.trigger_path)


def listings(fake: MParticleStub, runs: Runs) -> list[Request]:
    return fake.requests_to("GET", runs.list_path)


def test_a_plain_trigger_creates_one_run(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    fake.on("POST", runs.trigger_path, runs.accept)
    result = client.trigger_pipeline("p1")
    assert result == TriggerResult(pipeline_run_id=13325, status="trigger_requested")
    assert len(listings(fake, runs)) == 1  # the runs that exist before sending
    assert len(posts(fake, runs)) == 1


@pytest.mark.parametrize(
    "lost",
    [drop(), drop(reset=True), ws_error(500, "internal"), ws_error(502, "bad gateway")],
    ids=["dropped", "reset", "500", "502"],
)
def test_a_trigger_whose_response_is_lost_returns_the_run_it_created(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs, lost: Step
) -> None:
    fake.on("POST", runs.trigger_path, runs.created_then(lost), runs.accept)
    result = client.trigger_pipeline("p1")
    assert result == TriggerResult(pipeline_run_id=13325, status="triggered", attached=False)
    assert len(posts(fake, runs)) == 1
    assert len(runs.items) == 1


def test_a_lost_trigger_whose_run_already_finished_is_still_recognised(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    fake.on("POST", runs.trigger_path, runs.created_then(drop(), state="success"), runs.accept)
    result = client.trigger_pipeline("p1")
    assert (result.pipeline_run_id, result.status) == (13325, "success")
    assert len(posts(fake, runs)) == 1


def test_a_read_timeout_after_sending_does_not_trigger_twice(
    fake: MParticleStub, make_client: ClientFactory, runs: Runs
) -> None:
    client = make_client(fake.url, fake.token_url, timeout=(1.0, 0.05))
    slow = fake.held(reply(200, {"pipeline_run_id": 13325, "status": "trigger_requested"}))
    fake.on("POST", runs.trigger_path, runs.created_then(slow), runs.accept)
    assert client.trigger_pipeline("p1").pipeline_run_id == 13325
    assert len(posts(fake, runs)) == 1
    assert len(runs.items) == 1


def test_when_the_lost_attempt_created_nothing_the_trigger_is_sent_again(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    runs.create("success", age=3600)  # an earlier manual run: not ours
    fake.on("POST", runs.trigger_path, ws_error(503, "unavailable"), runs.accept)
    result = client.trigger_pipeline("p1")
    assert result == TriggerResult(pipeline_run_id=13326, status="trigger_requested")
    assert len(posts(fake, runs)) == 2
    assert len(listings(fake, runs)) == 2  # before the first POST, and before sending again
    assert [r["pipeline_run_id"] for r in runs.items] == [13326, 13325]


def test_a_manual_run_made_just_before_the_call_is_not_taken_for_the_lost_attempts(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    runs.create("success", age=5)  # triggered 5 s earlier, already done: not this call's run
    fake.on("POST", runs.trigger_path, ws_error(500, "internal"), runs.accept)
    result = client.trigger_pipeline("p1")
    assert result == TriggerResult(pipeline_run_id=13326, status="trigger_requested")
    assert len(posts(fake, runs)) == 2


def test_a_runs_listing_still_404_after_creation_does_not_stop_the_trigger(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    fake.on("GET", runs.list_path, ws_error(404, "Pipeline p1 not found."))
    fake.on("POST", runs.trigger_path, runs.accept)
    assert client.trigger_pipeline("p1").pipeline_run_id == 13325
    assert len(posts(fake, runs)) == 1


def test_an_unknown_pipeline_is_reported_by_the_trigger_post(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    fake.on("GET", runs.list_path, ws_error(404, "Pipeline p1 not found."))
    fake.on("POST", runs.trigger_path, ws_error(404, "Pipeline p1 not found."))
    with pytest.raises(NotFoundError, match=r"POST .*/pipelines/p1 -> 404"):
        client.trigger_pipeline("p1")


def test_429_on_trigger_is_retried_directly(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs, fake_time: FakeTime
) -> None:
    fake.on("POST", runs.trigger_path, reply(429, b"", {"Retry-After": "3"}), runs.accept)
    assert client.trigger_pipeline("p1").pipeline_run_id == 13325
    assert fake_time.sleeps == [3.0]
    assert len(listings(fake, runs)) == 1  # only the one before sending: nothing to look for
    assert len(posts(fake, runs)) == 2


def test_already_in_progress_attaches_to_the_run_in_flight(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs, fake_time: FakeTime
) -> None:
    runs.create("success", age=7200)
    in_flight = runs.create("running", age=60)
    fake.on(
        "POST", runs.trigger_path, ws_error(400, "Pipeline p1 is already in progress."), runs.accept
    )
    result = client.trigger_pipeline("p1")
    assert result == TriggerResult(
        pipeline_run_id=in_flight["pipeline_run_id"], status="running", attached=True
    )
    assert len(posts(fake, runs)) == 1
    assert fake_time.sleeps == []


def test_already_in_progress_but_finished_meanwhile_attaches_to_the_newest_run(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    runs.create("success", age=60)
    fake.on("POST", runs.trigger_path, ws_error(400, "Pipeline p1 is already in progress."))
    result = client.trigger_pipeline("p1")
    assert (result.pipeline_run_id, result.status, result.attached) == (13325, "success", True)


def test_other_400s_are_raised_without_looking_at_runs_again(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    fake.on("POST", runs.trigger_path, ws_error(400, "Pipeline p1 is not an on_demand pipeline."))
    with pytest.raises(BadRequestError, match="not an on_demand pipeline"):
        client.trigger_pipeline("p1")
    assert len(listings(fake, runs)) == 1  # only the one before sending
    assert len(posts(fake, runs)) == 1


def test_505_on_trigger_is_not_retried(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs
) -> None:
    fake.on("POST", runs.trigger_path, ws_error(505, "cannot reach the warehouse"), runs.accept)
    with pytest.raises(WarehouseUnreachableError):
        client.trigger_pipeline("p1")
    assert len(posts(fake, runs)) == 1


def test_a_token_failure_before_the_trigger_is_not_ambiguous(
    fake: MParticleStub, client: WarehouseSyncClient, runs: Runs, fake_time: FakeTime
) -> None:
    fake.on("POST", "/oauth/token", reply(503), fake.issue_token)
    fake.on("POST", runs.trigger_path, runs.accept)
    assert client.trigger_pipeline("p1").pipeline_run_id == 13325
    assert len(listings(fake, runs)) == 1  # only the one before sending
    assert len(posts(fake, runs)) == 1
    assert fake_time.sleeps == [TEST_POLICY.delay(1)]
