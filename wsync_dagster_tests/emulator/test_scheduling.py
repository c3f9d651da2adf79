"""Runs on the emulator clock: grids, catch-up, triggers, run listing. No sleeping: the tests move time."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster_tests.conftest import CLOCK_START
from wsync_dagster_tests.emulator.helpers import (
    Api,
    clients,
    documented,
    error_messages,
    instant,
    pipeline_body,
)

CreatePipeline = Callable[..., dict[str, Any]]
# mParticle's worked trigger example: pipeline created 2023-02-01 15:13:22Z with start 2023-02-01
# 00:00Z; (trigger time, window start, window end). The docs' second start, ...08:30:11Z, is a typo:
# the window starts where the previous successful run's ended (docs/warehouse-sync-api.md).
TRIGGER_EXAMPLE = {
    "start": "2023-02-01T00:00:00Z",
    "created": "2023-02-01T15:13:22Z",
    "triggers": [
        ("2023-02-04T08:30:17Z", "2023-02-01T00:00:00Z", "2023-02-04T08:30:17Z"),
        ("2023-02-08T12:05:45Z", "2023-02-04T08:30:17Z", "2023-02-08T12:05:45Z"),
    ],
}


def windows(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(data_interval_start, data_interval_end) oldest first."""
    return [(r["data_interval_start"], r["data_interval_end"]) for r in reversed(runs)]


def hours(start: datetime, count: int) -> list[tuple[str, str]]:
    return [
        (instant(start + timedelta(hours=n)), instant(start + timedelta(hours=n + 1)))
        for n in range(count)
    ]


def test_hourly_catch_up_over_seven_days_creates_168_runs_in_order(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    start = CLOCK_START - timedelta(days=7)
    events_pipeline(schedule_start_time=instant(start))
    assert api.runs("pipe") == []  # a manual clock does nothing until told
    assert control.settle()["runs_executed"] == 168
    runs = api.runs("pipe")
    assert len(runs) == 168
    assert windows(runs) == hours(start, 168)
    assert [r["logical_date"] for r in reversed(runs)] == [w[0] for w in hours(start, 168)]
    ids = [r["pipeline_run_id"] for r in reversed(runs)]
    assert ids == sorted(ids) and len(set(ids)) == 168  # created oldest first
    assert {r["pipeline_run_state"] for r in runs} == {"success"}
    assert {r["pipeline_run_type"] for r in runs} == {"scheduled"}
    assert {r["is_externally_triggered"] for r in runs} == {False}
    assert {(r["start_date"], r["end_date"]) for r in runs} == {(instant(CLOCK_START),) * 2}


def test_runs_start_when_their_interval_closes(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_start_time=instant(CLOCK_START))
    control.advance(3 * 3600 + 1800)
    runs = list(reversed(api.runs("pipe")))
    assert windows(runs[::-1]) == hours(CLOCK_START, 3)
    # The manual clock steps through each closing instant: every run starts as its hour ends.
    assert [r["start_date"] for r in runs] == [r["data_interval_end"] for r in runs]
    assert [r["created_on"] for r in runs] == [
        r["data_interval_end"][:-1] for r in runs
    ]  # audit format, no zone


def test_a_daily_run_appears_only_after_its_day_closes(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_interval="daily", schedule_start_time="2026-11-28T00:00:00Z")
    control.set_clock(datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC))
    assert api.runs("pipe") == []
    control.advance(1)
    [run] = api.runs("pipe")
    assert (run["logical_date"], run["data_interval_end"]) == (
        "2026-11-28T00:00:00Z",
        "2026-11-29T00:00:00Z",
    )
    assert run["start_date"] == run["end_date"] == "2026-11-29T00:00:00Z"


def test_weekly_runs_repeat_on_the_start_weekday_and_time(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_interval="weekly", schedule_start_time="2026-11-14T12:05:00Z")
    control.settle()
    assert windows(api.runs("pipe")) == [("2026-11-14T12:05:00Z", "2026-11-21T12:05:00Z")]
    control.advance(300)
    assert windows(api.runs("pipe"))[-1] == ("2026-11-21T12:05:00Z", "2026-11-28T12:05:00Z")


def test_monthly_runs_are_anchored_on_the_start_day(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_interval="monthly", schedule_start_time="2026-01-28T06:00:00Z")
    control.settle()
    expected = [
        (f"2026-{m:02d}-28T06:00:00Z", f"2026-{m + 1:02d}-28T06:00:00Z") for m in range(1, 11)
    ]
    assert windows(api.runs("pipe")) == expected


def test_schedule_end_time_is_honoured(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    start = CLOCK_START - timedelta(hours=3)
    events_pipeline(
        schedule_start_time=instant(start),
        schedule_end_time=instant(CLOCK_START - timedelta(minutes=30)),
    )
    control.advance(5 * 3600)
    # The interval that straddles the end time does not run.
    assert windows(api.runs("pipe")) == hours(start, 2)


def test_draft_and_paused_pipelines_do_not_run_until_activated(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    start = instant(CLOCK_START - timedelta(hours=2))
    events_pipeline(id="paused", is_active=False, schedule_start_time=start)
    api.create_pipeline(id="draft", is_draft=True, schedule_start_time=start)
    control.advance(3600)
    assert api.runs("paused") == [] and api.runs("draft") == []
    for pipeline_id in ("paused", "draft"):
        api.ok("PUT", f"pipelines/{pipeline_id}", pipeline_body(
            api.config, id=pipeline_id, schedule_start_time=start
        ))  # fmt: skip
    control.settle()
    assert windows(api.runs("paused")) == hours(CLOCK_START - timedelta(hours=2), 3)
    assert windows(api.runs("draft")) == hours(CLOCK_START - timedelta(hours=2), 3)


def test_a_reactivated_pipeline_catches_up_where_it_stopped(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    start = instant(CLOCK_START - timedelta(hours=1))
    events_pipeline(schedule_start_time=start)
    control.settle()
    api.ok(
        "PUT",
        "pipelines/pipe",
        pipeline_body(api.config, is_active=False, schedule_start_time=start),
    )
    control.advance(3 * 3600)
    assert len(api.runs("pipe")) == 1
    api.ok("PUT", "pipelines/pipe", pipeline_body(api.config, schedule_start_time=start))
    control.settle()
    assert windows(api.runs("pipe")) == hours(CLOCK_START - timedelta(hours=1), 4)


def test_changing_the_interval_continues_after_the_latest_run(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    start = "2026-11-28T00:00:00Z"
    events_pipeline(schedule_start_time=start)
    control.settle()  # 12 hourly runs, the latest at 11:00
    body = pipeline_body(api.config, schedule_interval="daily", schedule_start_time=start)
    api.ok("PUT", "pipelines/pipe", body)
    control.set_clock(datetime(2026, 11, 30, tzinfo=UTC))
    assert windows(api.runs("pipe"))[12:] == [("2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z")]


# ------------------------------------------------------------------------------------------ once

ONCE_START = "2026-11-28T09:00:00Z"


def once_pipeline(events_pipeline: CreatePipeline, end: str | None = None, **fields: Any) -> None:
    """A once pipeline over the events table from ``ONCE_START`` to ``end``."""
    events_pipeline(
        schedule_interval="once", schedule_start_time=ONCE_START, schedule_end_time=end, **fields
    )


def test_once_runs_its_window_exactly_once(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    once_pipeline(events_pipeline, "2026-11-28T11:00:00Z")
    control.settle()
    [run] = api.runs("pipe")
    assert (run["data_interval_start"], run["data_interval_end"]) == (
        "2026-11-28T09:00:00Z",
        "2026-11-28T11:00:00Z",
    )
    assert run["pipeline_run_type"] == "scheduled" and run["pipeline_run_state"] == "success"
    control.advance(40 * 86400)
    assert len(api.runs("pipe")) == 1


def test_once_without_end_syncs_up_to_its_creation(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    once_pipeline(events_pipeline)
    control.advance(3600)
    [run] = api.runs("pipe")
    assert run["data_interval_end"] == instant(CLOCK_START)


def test_once_with_a_future_end_waits_for_it(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    once_pipeline(events_pipeline, "2026-11-28T14:00:00Z")
    control.advance(2 * 3600 - 1)
    assert api.runs("pipe") == []
    control.advance(1)
    assert [r["start_date"] for r in api.runs("pipe")] == ["2026-11-28T14:00:00Z"]


def test_once_pipelines_load_any_window_again_onto_the_same_profiles(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    """What a re-send relies on (sync/engine/resend.py): a once pipeline over a window an interval
    run already loaded, however old, extracts the window's rows again onto the same profiles."""
    once_pipeline(events_pipeline, "2026-11-28T10:00:00Z", id="first")
    control.settle()
    profiles = len(control.profiles())
    api.create_pipeline(
        id="again",
        schedule_interval="once",
        schedule_start_time=ONCE_START,
        schedule_end_time="2026-11-28T10:00:00Z",
    )
    control.settle()
    [first], [again] = api.runs("first"), api.runs("again")
    assert again["pipeline_run_id"] > first["pipeline_run_id"]
    # the same inclusive window: 09:00 .. 10:00, both rows on 10:00 included, every time
    assert first["records_extracted"] == again["records_extracted"] == 5
    assert len(control.profiles()) == profiles  # set again, nothing duplicated
    old = CLOCK_START - timedelta(days=40)  # far beyond the hourly catch-up: once has no limit
    api.create_pipeline(
        id="old",
        schedule_interval="once",
        schedule_start_time=instant(old),
        schedule_end_time=instant(old + timedelta(hours=1)),
    )
    control.settle()
    [ran] = api.runs("old")
    assert ran["pipeline_run_state"] == "success" and ran["records_extracted"] == 0


def test_a_finished_once_pipeline_stops_counting_as_active(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    once_pipeline(events_pipeline, id="once")
    for n in range(4):
        api.create_pipeline(id=f"p{n}", schedule_interval="on_demand")
    assert api.post("pipelines", pipeline_body(api.config, id="p4")).status_code == 400
    control.settle()
    assert api.post("pipelines", pipeline_body(api.config, id="p4")).status_code == 200


# ------------------------------------------------------------------------------------- on demand


def trigger(api: Api, pipeline_id: str = "pipe", suffix: str = "") -> dict[str, Any]:
    return api.ok("POST", f"pipelines/{pipeline_id}{suffix}")


def test_the_documented_trigger_example(
    api: Api, control: EmulatorControl, events_table: str
) -> None:
    example = TRIGGER_EXAMPLE
    control.set_clock(datetime.fromisoformat(example["created"]))
    api.create_connection()
    api.create_model(f"SELECT * FROM {events_table}")
    api.create_pipeline(schedule_interval="on_demand", schedule_start_time=example["start"])
    for at, window_start, window_end in example["triggers"]:
        control.set_clock(datetime.fromisoformat(at))
        response = trigger(api)
        assert set(response) == set(documented("trigger_response"))
        assert response["status"] == "trigger_requested"
        run = api.ok("GET", f"pipelines/pipe/status/runs/{response['pipeline_run_id']}")
        assert run["pipeline_run_state"] == "triggered"
        assert (run["data_interval_start"], run["data_interval_end"]) == (window_start, window_end)
        assert run["logical_date"] == at
        assert run["pipeline_run_type"] == "manual" and run["is_externally_triggered"] is True
        control.settle()


def test_on_demand_windows_chain_and_a_failed_run_does_not_advance_them(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_interval="on_demand", schedule_start_time="2026-11-28T00:00:00Z")
    trigger(api, suffix="/trigger")  # the v2-style path works too
    control.advance(600)
    control.fail_next_run("Injected failure for the test.")
    trigger(api)
    control.advance(600)
    trigger(api)
    control.settle()
    runs = api.runs("pipe")
    assert [r["pipeline_run_state"] for r in reversed(runs)] == ["success", "failed", "success"]
    assert windows(runs) == [
        ("2026-11-28T00:00:00Z", "2026-11-28T12:00:00Z"),
        ("2026-11-28T12:00:00Z", "2026-11-28T12:10:00Z"),
        ("2026-11-28T12:00:00Z", "2026-11-28T12:20:00Z"),
    ]
    status = api.ok("GET", "pipelines/pipe/status")
    assert status["is_faulted"] is True
    assert api.ok("GET", "pipelines/pipe")["faulted_reason"] == "Injected failure for the test."


def test_trigger_while_in_progress_is_the_documented_400(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(id="example-pipeline", schedule_interval="on_demand")
    control.advance(60)
    trigger(api, "example-pipeline")
    response = api.post("pipelines/example-pipeline")
    assert response.status_code == 400
    assert response.json() == documented("error_already_in_progress")
    control.settle()
    control.advance(60)
    trigger(api, "example-pipeline")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schedule_interval": "hourly"}, "Pipeline pipe has schedule_interval hourly; only on_demand pipelines can be triggered."),
        ({"is_draft": True}, "Pipeline pipe is a draft (is_draft: true); it cannot be triggered."),
        ({"is_active": False}, "Pipeline pipe is paused (is_active: false); it cannot be triggered."),
    ],
)  # fmt: skip
def test_trigger_preconditions(
    api: Api, events_pipeline: CreatePipeline, change: dict[str, Any], expected: str
) -> None:
    events_pipeline(**{"schedule_interval": "on_demand", **change})
    response = api.post("pipelines/pipe")
    assert response.status_code == 400
    assert error_messages(response) == [expected]
    assert api.post("pipelines/nope").status_code == 404


def test_trigger_before_the_start_is_refused(api: Api, events_pipeline: CreatePipeline) -> None:
    events_pipeline(schedule_interval="on_demand", schedule_start_time="2026-12-01T00:00:00Z")
    response = api.post("pipelines/pipe")
    assert response.status_code == 400
    assert "nothing to sync before then" in error_messages(response)[0]


def test_trigger_takes_no_body(api: Api, events_pipeline: CreatePipeline) -> None:
    events_pipeline(schedule_interval="on_demand")
    assert api.post("pipelines/pipe", {"x": 1}).status_code == 400


# -------------------------------------------------------------------------- status and run pages


def test_status_and_run_objects_have_every_documented_field(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    events_pipeline(schedule_start_time=instant(CLOCK_START))
    status = api.ok("GET", "pipelines/pipe/status")
    assert list(status) == list(documented("pipeline_status"))
    assert status["latest_pipeline_run"] is None
    control.advance(2 * 3600)
    status = api.ok("GET", "pipelines/pipe/status")
    assert status == {
        "pipeline_id": "pipe",
        "workspace_id": 5328,
        "is_faulted": False,
        "is_connection_faulted": False,
        "is_connection_active": True,
        "is_active": True,
        "latest_pipeline_run": status["latest_pipeline_run"],
    }
    latest = status["latest_pipeline_run"]
    assert list(latest) == list(documented("pipeline_run"))
    assert latest["logical_date"] == "2026-11-28T13:00:00Z"
    assert latest == api.ok("GET", f"pipelines/pipe/status/runs/{latest['pipeline_run_id']}")
    assert api.get("pipelines/pipe/status/runs/999").status_code == 404
    assert api.get("pipelines/nope/status").status_code == 404


def test_run_listing_pages_and_filters(
    api: Api, control: EmulatorControl, events_pipeline: CreatePipeline
) -> None:
    start = CLOCK_START - timedelta(hours=5)
    events_pipeline(schedule_start_time=instant(start))
    control.settle()
    logical = [instant(start + timedelta(hours=n)) for n in range(5)][::-1]  # newest first

    def page(**query: Any) -> list[str]:
        response = api.get("pipelines/pipe/status/runs", params=query)
        assert response.status_code == 200, response.text
        assert list(response.json()) == ["items"]
        return [r["logical_date"] for r in response.json()["items"]]

    assert page() == logical
    assert page(pageSize=2) == logical[:2]
    assert page(pageSize=2, currentPage=2) == logical[2:4]
    assert page(pageSize=2, currentPage=3) == logical[4:]
    assert page(pageSize=2, currentPage=4) == []
    assert page(startDate=logical[3], endDate=logical[1]) == logical[1:4]  # inclusive
    assert page(startDate="2026-11-28T09:00:00+02:00") == logical  # 07:00Z
    for bad in (
        {"pageSize": 0},
        {"pageSize": 501},
        {"currentPage": 0},
        {"currentPage": "x"},
        {"startDate": "yesterday"},
        {"page": 1},
    ):
        response = api.get("pipelines/pipe/status/runs", params=bad)
        assert response.status_code == 400, bad
    assert page(pageSize=500) == logical


@pytest.fixture
def slow_runs(
    start_emulator: Callable[..., EmulatorServer], events_table: str
) -> tuple[Api, EmulatorControl]:
    """An extra emulator whose runs take 10 minutes of its clock, with the events table's source."""
    api, control = clients(start_emulator(run_seconds=600))
    api.create_source(f"SELECT * FROM {events_table}")
    return api, control


def test_a_simulated_run_duration_keeps_runs_running(
    slow_runs: tuple[Api, EmulatorControl],
) -> None:
    api, control = slow_runs
    api.create_pipeline(schedule_interval="on_demand", schedule_start_time="2026-11-28T09:00:00Z")
    trigger(api)
    control.advance(599)
    [run] = api.runs("pipe")
    assert run["pipeline_run_state"] == "running"
    assert (run["start_date"], run["end_date"]) == ("2026-11-28T12:00:00Z", None)
    assert run["records_extracted"] is None
    assert api.post("pipelines/pipe").status_code == 400
    control.advance(1)
    [run] = api.runs("pipe")
    assert (run["pipeline_run_state"], run["end_date"]) == ("success", "2026-11-28T12:10:00Z")
    assert run["records_extracted"] == 7  # every row of the events table is in 09:00..12:00


def test_catch_up_runs_one_at_a_time_per_pipeline(slow_runs: tuple[Api, EmulatorControl]) -> None:
    api, control = slow_runs
    api.create_pipeline(schedule_start_time=instant(CLOCK_START - timedelta(hours=3)))
    control.settle()
    states = [r["pipeline_run_state"] for r in reversed(api.runs("pipe"))]
    assert states == ["running", "queued", "queued"]
    control.advance(600)
    states = [r["pipeline_run_state"] for r in reversed(api.runs("pipe"))]
    assert states == ["success", "running", "queued"]
    control.advance(1200)
    runs = list(reversed(api.runs("pipe")))
    assert [r["start_date"] for r in runs] == [
        "2026-11-28T12:00:00Z",
        "2026-11-28T12:10:00Z",
        "2026-11-28T12:20:00Z",
    ]
    assert {r["pipeline_run_state"] for r in runs} == {"success"}


def test_a_real_clock_worker_executes_runs_off_the_request_path(
    start_emulator: Callable[..., EmulatorServer], events_table: str
) -> None:
    server = start_emulator(clock="real")
    api, _ = clients(server)
    api.create_source(f"SELECT * FROM {events_table}")
    api.create_pipeline(schedule_interval="on_demand", schedule_start_time="2026-11-28T09:00:00Z")
    trigger(api)
    # Wait (bounded) for the worker, on the backend's change notifications: no polling sleep.
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while api.runs("pipe")[0]["pipeline_run_state"] != "success":
        assert datetime.now(UTC) < deadline, api.runs("pipe")
        server.backend.wait(1.0)
    assert server.scheduler._worker is not None
