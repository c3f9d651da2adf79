"""The active-pipeline limit on re-activation, and the activity log that proves it held."""

import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster_tests.emulator.helpers import Api, error_messages, pipeline_body


@pytest.fixture
def resources(api: Api, events_table: str) -> Api:
    api.create_connection()
    api.create_model(f"SELECT * FROM {events_table}")
    return api


def _set_active(api: Api, pipeline_id: str, active: bool) -> int:
    body = pipeline_body(api.config, id=pipeline_id, schedule_interval="on_demand")
    return api.put(f"pipelines/{pipeline_id}", body | {"is_active": active}).status_code


def test_a_put_activating_a_sixth_pipeline_is_refused_and_logged_nowhere(
    resources: Api, control: EmulatorControl
) -> None:
    for n in range(5):
        resources.create_pipeline(id=f"p{n}", schedule_interval="on_demand")
    resources.create_pipeline(id="rot", schedule_interval="on_demand", is_active=False)
    body = pipeline_body(resources.config, id="rot", schedule_interval="on_demand")
    refused = resources.put("pipelines/rot", body)
    assert refused.status_code == 400
    assert error_messages(refused) == [
        "Workspace 5328 already has 5 active pipelines (p0, p1, p2, p3, p4); the limit is 5. "
        "Pause or delete one first."
    ]
    activity = control.activity()
    assert activity["peak_active"] == 5
    assert "rot" not in {e["pipeline_id"] for e in activity["events"]}

    assert _set_active(resources, "p0", False) == 200
    control.advance(60)
    assert _set_active(resources, "rot", True) == 200
    activity = control.activity()
    assert activity["active"] == ["p1", "p2", "p3", "p4", "rot"]
    assert activity["events"][-2:] == [
        {"seq": 6, "at": "2026-11-28T12:00:00Z", "pipeline_id": "p0", "active": False,
         "active_count": 4},
        {"seq": 7, "at": "2026-11-28T12:01:00Z", "pipeline_id": "rot", "active": True,
         "active_count": 5},
    ]  # fmt: skip
    assert activity["peak_active"] == 5


def test_deletes_and_ended_once_runs_leave_the_count(
    resources: Api, control: EmulatorControl
) -> None:
    resources.create_pipeline(id="gone", schedule_interval="on_demand")
    resources.create_pipeline(
        id="once",
        schedule_interval="once",
        schedule_start_time="2026-11-28T09:00:00Z",
        schedule_end_time="2026-11-28T11:00:00Z",
    )
    assert control.activity()["active"] == ["gone", "once"]
    assert resources.delete("pipelines/gone").status_code == 204
    control.settle()  # the once run falls due, runs and ends
    activity = control.activity()
    assert [(e["pipeline_id"], e["active"], e["active_count"]) for e in activity["events"]] == [
        ("gone", True, 1),
        ("once", True, 2),
        ("gone", False, 1),
        ("once", False, 0),
    ]
    assert (activity["active"], activity["peak_active"]) == ([], 2)
    control.reset()
    assert control.activity() == {"events": [], "active": [], "peak_active": 0}
