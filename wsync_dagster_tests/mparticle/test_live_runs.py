"""The real client against the live emulator: scheduled runs, waiting for runs, triggering.

How these tests run: see ``test_live_emulator.py``.
"""

from datetime import timedelta
from typing import Any

import pytest

from wsync_dagster.mparticle import (
    BadRequestError,
    RunFailedError,
    RunState,
    RunType,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncClient,
)
from wsync_dagster_tests.conftest import CLOCK_START
from wsync_dagster_tests.mparticle.live import (
    HOUR,
    PIPELINE_ID,
    WS,
    Live,
    LiveFactory,
    StartEmulator,
    create_pipeline,
    elapsed,
    hourly,
    statuses,
    with_hourly_runs,
)

# ----------------------------------------------------------------------------- scheduled runs


def test_iter_pipeline_runs_pages_through_a_week_of_hourly_runs_newest_first(
    live: Live, events_table: str
) -> None:
    client = with_hourly_runs(live, 7 * 24 * 3600)
    live.control.clear_request_log()

    runs = list(client.iter_pipeline_runs(PIPELINE_ID, page_size=50))

    assert [run.logical_date for run in runs] == [
        CLOCK_START + k * HOUR for k in range(167, -1, -1)
    ]
    assert len({run.pipeline_run_id for run in runs}) == 168
    assert {(run.state, run.run_type) for run in runs} == {(RunState.SUCCESS, RunType.SCHEDULED)}
    # 50 + 50 + 50 + 18: the short fourth page ends the paging.
    assert statuses(live, "GET", f"{WS}/pipelines/{PIPELINE_ID}/status/runs") == [200] * 4


def test_iter_pipeline_runs_filters_on_logical_date_inclusively(
    live: Live, events_table: str
) -> None:
    client = with_hourly_runs(live, 6 * 3600)

    def logical_hours(**bounds: Any) -> list[int]:
        runs = client.iter_pipeline_runs(PIPELINE_ID, page_size=2, **bounds)
        return [(run.logical_date - CLOCK_START) // HOUR for run in runs if run.logical_date]

    assert logical_hours() == [5, 4, 3, 2, 1, 0]
    assert logical_hours(start=CLOCK_START + 2 * HOUR, end=CLOCK_START + 4 * HOUR) == [4, 3, 2]
    assert logical_hours(start=CLOCK_START + 4 * HOUR) == [5, 4]
    assert logical_hours(end="2026-11-28T13:00:00Z") == [1, 0]  # a "...Z" string works too


def test_iter_pipeline_runs_yields_each_run_once_while_new_runs_arrive(
    live: Live, events_table: str
) -> None:
    client = with_hourly_runs(live, 3 * 3600)
    runs = client.iter_pipeline_runs(PIPELINE_ID, page_size=2)
    first_page = [next(runs), next(runs)]
    live.control.advance(3600)  # a new run arrives at the head: later pages shift by one

    hours = [
        (run.logical_date - CLOCK_START) // HOUR for run in [*first_page, *runs] if run.logical_date
    ]

    assert hours == [2, 1, 0]


# ------------------------------------------------------------------------------ waiting for runs


def test_wait_for_run_polls_until_success_and_returns_the_record_counts(
    start_emulator: StartEmulator, live_on: LiveFactory, events_table: str
) -> None:
    live = live_on(start_emulator(run_seconds=600))
    client = live.client
    create_pipeline(live)  # on demand, window from 2024: every row of the table
    triggered = client.trigger_pipeline(PIPELINE_ID)

    run = client.wait_for_run(
        PIPELINE_ID, triggered.pipeline_run_id, timeout=3600, poll_interval=5, max_poll_interval=60
    )

    assert run.state is RunState.SUCCESS
    # 7 rows; one has no identity column, so it is extracted but not mapped.
    assert (run.records_extracted, run.records_mapped, run.event_batches_generated) == (7, 6, 6)
    assert run.start_date is not None and run.end_date is not None
    assert run.end_date - run.start_date == timedelta(seconds=600)
    polls = statuses(live, "GET", f"{WS}/pipelines/{PIPELINE_ID}/status/runs/{run.pipeline_run_id}")
    assert len(polls) == len(live.time.sleeps) + 1 > 2
    assert max(live.time.sleeps) <= 60
    # It noticed the end within one poll interval.
    assert timedelta(0) <= live.control.clock() - run.end_date <= timedelta(seconds=60)


def test_wait_for_a_failed_run_raises_run_failed_with_the_reason(
    live: Live, on_demand: WarehouseSyncClient
) -> None:
    client = on_demand
    reason = "Injected: the warehouse ran out of credits."
    live.control.fail_next_run(reason, pipeline_id=PIPELINE_ID)
    triggered = client.trigger_pipeline(PIPELINE_ID)

    with pytest.raises(RunFailedError) as caught:
        client.wait_for_run(PIPELINE_ID, triggered.pipeline_run_id, timeout=600)

    assert caught.value.faulted_reason == reason
    assert reason in str(caught.value)
    assert caught.value.run.pipeline_run_id == triggered.pipeline_run_id
    assert caught.value.run.state is RunState.FAILED


def test_wait_for_a_run_in_an_unknown_state_fails_closed_after_the_timeout_naming_it(
    live: Live, on_demand: WarehouseSyncClient
) -> None:
    client = on_demand
    triggered = client.trigger_pipeline(PIPELINE_ID)
    # The run really succeeds at the first poll's clock advance; it is only reported as unknown.
    live.control.unknown_run_states(1000, state="paused_by_support")

    with pytest.raises(UnknownRunStateError) as caught:
        client.wait_for_run(PIPELINE_ID, triggered.pipeline_run_id, timeout=300)

    assert caught.value.state == "paused_by_support"
    assert "paused_by_support" in str(caught.value)
    assert elapsed(live) == timedelta(seconds=300)


def test_wait_for_a_run_still_running_at_the_timeout_raises_wait_timeout_naming_its_state(
    start_emulator: StartEmulator, live_on: LiveFactory, events_table: str
) -> None:
    live = live_on(start_emulator(run_seconds=600))
    client = live.client
    create_pipeline(live)
    triggered = client.trigger_pipeline(PIPELINE_ID)

    with pytest.raises(WaitTimeoutError) as caught:
        client.wait_for_run(PIPELINE_ID, triggered.pipeline_run_id, timeout=120)

    assert caught.value.run.state is RunState.RUNNING
    assert "'running' after 120 s" in str(caught.value)
    assert elapsed(live) == timedelta(seconds=120)


# ---------------------------------------------------------------------------------- triggering


def test_trigger_creates_a_manual_run_up_to_now(live: Live, events_table: str) -> None:
    client = live.client
    created = create_pipeline(live)

    result = client.trigger_pipeline(PIPELINE_ID)

    assert (result.status, result.attached) == ("trigger_requested", False)
    run = client.get_pipeline_run(PIPELINE_ID, result.pipeline_run_id)
    assert (run.state, run.run_type, run.is_externally_triggered) == (
        RunState.TRIGGERED,
        RunType.MANUAL,
        True,
    )
    assert (run.data_interval_start, run.data_interval_end) == (
        created.schedule_start_time,
        CLOCK_START,
    )


def test_a_second_trigger_while_the_first_run_is_in_progress_attaches_to_it(
    live: Live, on_demand: WarehouseSyncClient
) -> None:
    client = on_demand

    first = client.trigger_pipeline(PIPELINE_ID)
    second = client.trigger_pipeline(PIPELINE_ID)

    assert second.attached and not first.attached
    assert second.pipeline_run_id == first.pipeline_run_id
    assert [run.pipeline_run_id for run in client.iter_pipeline_runs(PIPELINE_ID)] == [
        first.pipeline_run_id
    ]
    # The emulator did refuse the second one ("already in progress").
    assert statuses(live, "POST", f"{WS}/pipelines/{PIPELINE_ID}") == [200, 400]


def test_a_lost_trigger_response_returns_the_run_the_first_attempt_created(
    live: Live, on_demand: WarehouseSyncClient
) -> None:
    client = on_demand
    live.control.drop_next_trigger_response()

    result = client.trigger_pipeline(PIPELINE_ID)

    runs = list(client.iter_pipeline_runs(PIPELINE_ID))
    assert [(run.pipeline_run_id, run.run_type) for run in runs] == [
        (result.pipeline_run_id, RunType.MANUAL)
    ]
    # One trigger POST, whose response never came; no second POST.
    assert statuses(live, "POST", f"{WS}/pipelines/{PIPELINE_ID}") == [None]


def test_a_trigger_refused_with_a_5xx_soon_after_an_earlier_run_is_sent_again(
    live: Live, on_demand: WarehouseSyncClient
) -> None:
    client = on_demand
    earlier = client.trigger_pipeline(PIPELINE_ID)
    done = client.wait_for_run(PIPELINE_ID, earlier.pipeline_run_id, timeout=600)
    live.control.advance(5)
    # The next trigger POST fails before the emulator creates anything.
    live.control.fail_requests(1, status=500, method="POST", path=f"/pipelines/{PIPELINE_ID}$")

    result = client.trigger_pipeline(PIPELINE_ID)

    assert result.pipeline_run_id != earlier.pipeline_run_id
    assert statuses(live, "POST", f"{WS}/pipelines/{PIPELINE_ID}") == [200, 500, 200]
    new = client.get_pipeline_run(PIPELINE_ID, result.pipeline_run_id)
    assert new.data_interval_start == done.data_interval_end


def test_a_trigger_the_emulator_refuses_is_a_bad_request_and_not_retried(
    live: Live, events_table: str
) -> None:
    client = live.client
    create_pipeline(live, hourly())

    with pytest.raises(BadRequestError, match="only on_demand pipelines can be triggered"):
        client.trigger_pipeline(PIPELINE_ID)

    assert statuses(live, "POST", f"{WS}/pipelines/{PIPELINE_ID}") == [400]
    assert live.time.sleeps == []
