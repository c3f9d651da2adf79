"""Switchable faults: each one alone, and never on the admin API."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster_tests.emulator.helpers import TIMEOUT, Api, error_messages, token_body


def test_throttle_answers_the_next_calls_with_429_and_retry_after(
    api: Api, control: EmulatorControl
) -> None:
    api.token  # noqa: B018 - fetch the token first: the token endpoint is not throttled
    control.throttle(2, retry_after=7)
    for _ in range(2):
        response = api.get("connections")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert error_messages(response) == ["Too many requests (injected by the emulator)."]
    assert api.get("connections").status_code == 200
    assert control.faults()["throttle"]["count"] == 0


def test_faults_can_target_one_method_and_path(api: Api, control: EmulatorControl) -> None:
    control.fail_requests(1, status=503, method="POST", path=r"/pipelines/[^/]+$")
    assert api.get("connections").status_code == 200
    assert api.post("pipelines/x").status_code == 503
    assert api.post("pipelines/x").status_code == 404  # used up


def test_a_hold_lets_matching_calls_through_only_together(
    api: Api, control: EmulatorControl
) -> None:
    api.token  # noqa: B018 - the token endpoint is never held
    control.set_faults(hold={"count": 2, "method": "GET", "path": r"/connections$"})
    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(api.get("connections").status_code))
    first.start()
    deadline = time.monotonic() + 30
    while control.faults()["hold"]["waiting"] < 1:
        assert time.monotonic() < deadline, "the first call never reached the hold"
    assert api.get("data-models").status_code == 200  # not matched: never held
    assert first.is_alive() and answers == []
    assert api.get("connections").status_code == 200  # the second arrival releases both
    first.join(timeout=30)
    assert answers == [200]
    assert control.faults()["hold"] | {"seconds": 0} == {
        "count": 0, "seconds": 0, "method": "GET", "path": r"/connections$", "waiting": 0
    }  # fmt: skip
    assert api.get("connections").status_code == 200  # used up


def test_a_held_call_goes_on_alone_after_its_seconds(api: Api, control: EmulatorControl) -> None:
    api.token  # noqa: B018
    control.set_faults(hold={"count": 2, "seconds": 0.2})
    started = time.monotonic()
    assert api.get("connections").status_code == 200
    assert time.monotonic() - started >= 0.2
    assert control.faults()["hold"]["count"] == 1 and control.faults()["hold"]["waiting"] == 0


def test_latency_delays_every_matching_call_until_cleared(
    api: Api, control: EmulatorControl
) -> None:
    api.token  # noqa: B018 - the token endpoint has its own delay (token_delay)
    control.set_latency(0.2, method="GET", path=r"/connections$")
    for _ in range(2):  # not used up
        started = time.monotonic()
        assert api.get("connections").status_code == 200
        assert time.monotonic() - started >= 0.2
    assert control.faults()["latency"] == {
        "seconds": 0.2, "method": "GET", "path": r"/connections$"
    }  # fmt: skip
    control.clear_faults()
    assert control.faults()["latency"]["seconds"] == 0


def test_server_errors_use_the_configured_status(api: Api, control: EmulatorControl) -> None:
    api.token  # noqa: B018
    control.fail_requests(1, status=502)
    response = api.get("/userprofile/v1/1000/2000/5328/1?fields=user_identities")
    assert response.status_code == 502
    assert error_messages(response) == ["Server error 502 (injected by the emulator)."]


def test_faults_never_touch_the_admin_api(control: EmulatorControl) -> None:
    control.throttle(5)
    control.fail_requests(5)
    for _ in range(3):
        control.clock()
        control.settle()
    assert control.faults()["throttle"]["count"] == 5


def test_a_slow_token_endpoint(emulator: EmulatorServer, control: EmulatorControl) -> None:
    control.slow_token(1.0, count=1)
    with pytest.raises(requests.Timeout):
        requests.post(f"{emulator.url}/oauth/token", json=token_body(emulator.config), timeout=0.2)
    response = requests.post(
        f"{emulator.url}/oauth/token", json=token_body(emulator.config), timeout=0.5
    )
    assert response.status_code == 200


def test_a_failing_token_endpoint(emulator: EmulatorServer, control: EmulatorControl) -> None:
    control.fail_token(2)
    for _ in range(2):
        response = requests.post(
            f"{emulator.url}/oauth/token", json=token_body(emulator.config), timeout=TIMEOUT
        )
        assert response.status_code == 500
        assert response.json()["error"] == "server_error"
    response = requests.post(
        f"{emulator.url}/oauth/token", json=token_body(emulator.config), timeout=TIMEOUT
    )
    assert response.status_code == 200


def test_a_dropped_trigger_response_still_creates_the_run(
    api: Api, control: EmulatorControl, events_pipeline: Callable[..., Any]
) -> None:
    events_pipeline(schedule_interval="on_demand", schedule_start_time="2026-11-28T09:00:00Z")
    control.drop_next_trigger_response()
    control.clear_request_log()
    with pytest.raises(requests.ConnectionError):
        api.post("pipelines/pipe")
    [run] = api.runs("pipe")
    assert run["pipeline_run_state"] == "triggered"
    # A client that looks before re-triggering sees its run; a blind retry is refused.
    assert error_messages(api.post("pipelines/pipe")) == ["Pipeline pipe is already in progress."]
    trigger_calls = [e for e in control.request_log() if e["method"] == "POST"]
    assert trigger_calls[0]["status"] is None and trigger_calls[1]["status"] == 400


def test_unknown_run_states_for_the_next_reads(
    api: Api, control: EmulatorControl, events_pipeline: Callable[..., Any]
) -> None:
    events_pipeline(schedule_interval="on_demand", schedule_start_time="2026-11-28T09:00:00Z")
    run_id = api.ok("POST", "pipelines/pipe")["pipeline_run_id"]
    control.settle()
    control.unknown_run_states(2, state="paused_by_ops")
    status = api.ok("GET", "pipelines/pipe/status")
    assert status["latest_pipeline_run"]["pipeline_run_state"] == "paused_by_ops"
    one = api.ok("GET", f"pipelines/pipe/status/runs/{run_id}")
    assert one["pipeline_run_state"] == "paused_by_ops"
    assert api.runs("pipe")[0]["pipeline_run_state"] == "success"


def test_a_run_failure_can_target_one_pipeline(
    api: Api, control: EmulatorControl, events_pipeline: Callable[..., Any]
) -> None:
    events_pipeline(
        id="a", schedule_interval="on_demand", schedule_start_time="2026-11-28T09:00:00Z"
    )
    api.create_pipeline(
        id="b", schedule_interval="on_demand", schedule_start_time="2026-11-28T09:00:00Z"
    )
    control.fail_next_run("Only b fails.", pipeline_id="b")
    api.ok("POST", "pipelines/a")
    api.ok("POST", "pipelines/b")
    control.settle()
    assert api.runs("a")[0]["pipeline_run_state"] == "success"
    assert api.runs("b")[0]["pipeline_run_state"] == "failed"
    assert api.ok("GET", "pipelines/b")["faulted_reason"] == "Only b fails."
    assert control.faults()["run_failures"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"nope": {}},
        {"throttle": 3},
        {"throttle": {"count": "3"}},
        {"throttle": {"count": 1, "colour": 1}},
        {"server_error": {"status": 404}},
        {"throttle": {"path": "("}},
        {"warehouse_unreachable": "yes"},
        {"throttle": {"count": -1}},
        {"hold": {"seconds": -1}},
        {"hold": {"seconds": "1"}},
        {"latency": {"seconds": -0.1}},
        {"latency": {"count": 1}},
    ],
)
def test_bad_fault_settings_are_400(emulator: EmulatorServer, body: dict[str, Any]) -> None:
    response = requests.post(f"{emulator.url}/_emulator/faults", json=body, timeout=TIMEOUT)
    assert response.status_code == 400
    assert error_messages(response)


def test_clearing_faults(control: EmulatorControl) -> None:
    control.throttle(3)
    control.set_warehouse_unreachable()
    cleared = control.clear_faults()
    assert cleared["throttle"]["count"] == 0 and cleared["warehouse_unreachable"] is False
