"""Rotating on-demand syncs: a slot only while they run, counted in mParticle, paused whatever happens."""

import dagster as dg
import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.sync.engine import rotation
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import (
    failure_message,
    materializations,
    materialize,
    other_pipeline,
    snowflake_for,
)
from wsync_dagster_tests.sync.rotating import (
    ON_NEXT_SLEEP,
    crashed_after_trigger,
    hooked_mparticle,
    is_active,
    set_active,
    with_rotating,
)
from wsync_dagster_tests.sync.test_sensor import tick

PERMANENT = ("customer_scores", "ticket_activity")


@pytest.fixture
def rotating(registry):
    return with_rotating(registry, 3, PERMANENT)


@pytest.fixture
def hooked(local_snowflake: LocalSnowflake, control: EmulatorControl):
    ON_NEXT_SLEEP.clear()
    resources = {
        "snowflake": snowflake_for(local_snowflake),
        "mparticle": hooked_mparticle(control),
    }
    yield resources
    ON_NEXT_SLEEP.clear()


def _fill_workspace(rotating, client, others: int) -> None:
    """The two permanent syncs active, plus ``others`` pipelines another team made active."""
    for name in PERMANENT:
        reconcile(client, rotating, rotating.sync(name), SAMPLE_ANCHOR)
    for i in range(1, others + 1):
        client.create_pipeline(other_pipeline(f"other-{i}"))


def _pause_other(client, pipeline_id: str) -> None:
    pipeline = client.get_pipeline(pipeline_id)
    body = other_pipeline(pipeline_id).model_copy(update={"is_active": False})
    assert pipeline.is_active
    client.update_pipeline(body)


def test_a_rotating_sync_is_active_only_while_it_runs(rotating, hooked, control) -> None:
    spec = rotating.sync("rotating_01")
    result = materialize(rotating, hooked, "rotating_01")
    assert result.success, failure_message(result)
    assert materializations(result)[""]["mparticle/records_mapped"] > 0
    with hooked["mparticle"].open_client() as client:
        assert not is_active(client, spec)
    events = [e for e in control.activity()["events"] if e["pipeline_id"] == "wsync-rotating-01"]
    assert [e["active"] for e in events] == [True, False]
    puts = [
        e["status"]
        for e in control.request_log()
        if e["method"] == "PUT" and e["path"].endswith("/pipelines/wsync-rotating-01")
    ]
    assert puts == [200, 200]  # activate, pause: reconcile created it paused with a POST


def test_reconcile_keeps_a_held_rotating_pipeline_active(rotating, hooked) -> None:
    spec = rotating.sync("rotating_01")
    with hooked["mparticle"].open_client() as client:
        created = reconcile(client, rotating, spec, SAMPLE_ANCHOR)
        assert created.pipeline.is_active is False
        set_active(client, rotating, spec, True)  # a materialization holds it
        again = reconcile(client, rotating, spec, SAMPLE_ANCHOR)
        assert again.changes[-1].action == "unchanged"
        assert is_active(client, spec)


def test_a_failed_run_still_pauses_the_pipeline(rotating, hooked, control) -> None:
    control.fail_next_run("warehouse said no", pipeline_id="wsync-rotating-01")
    result = materialize(rotating, hooked, "rotating_01")
    assert not result.success
    assert "warehouse said no" in failure_message(result)
    with hooked["mparticle"].open_client() as client:
        assert not is_active(client, rotating.sync("rotating_01"))


def test_a_crash_with_a_run_in_flight_is_recovered_by_the_next_materialization(
    rotating, hooked, control
) -> None:
    spec = rotating.sync("rotating_01")
    with hooked["mparticle"].open_client() as client:
        crashed = crashed_after_trigger(client, rotating, spec)
        result = materialize(rotating, hooked, "rotating_01")
        assert result.success, failure_message(result)
        meta = materializations(result)[""]
        assert meta["wsync/attached_to_existing_run"] is True
        assert meta["mparticle/run_id"] == crashed.pipeline_run_id
        assert not is_active(client, spec)


def test_a_crash_after_the_run_is_swept_by_any_rotating_materialization(
    rotating, hooked, control
) -> None:
    left = rotating.sync("rotating_02")
    with hooked["mparticle"].open_client() as client:
        crashed_after_trigger(client, rotating, left)
        control.settle()  # its run ended; the crashed materialization never paused it
        result = materialize(rotating, hooked, "rotating_03")
        assert result.success, failure_message(result)
        assert is_active(client, left)  # written moments ago: maybe a live materialization's
        control.advance(rotation.SWEEP_GRACE.total_seconds())
        result = materialize(rotating, hooked, "rotating_01")
        assert result.success, failure_message(result)
        assert not is_active(client, left)
        assert not is_active(client, rotating.sync("rotating_01"))
    assert control.activity()["active"] == []  # the permanent syncs were never materialized


def test_a_pipeline_activated_outside_the_project_takes_a_slot(rotating, hooked, control) -> None:
    with hooked["mparticle"].open_client() as client:
        _fill_workspace(rotating, client, others=3)  # 5 active: the workspace is full
        control.clear_request_log()
        ON_NEXT_SLEEP.append(lambda: _pause_other(client, "other-1"))
        result = materialize(rotating, hooked, "rotating_01")
        assert result.success, failure_message(result)
        assert not is_active(client, rotating.sync("rotating_01"))
    activity = control.activity()
    assert activity["peak_active"] == 5
    order = [(e["pipeline_id"], e["active"]) for e in activity["events"]]
    assert order.index(("other-1", False)) < order.index(("wsync-rotating-01", True))
    refused = [e for e in control.request_log() if e["method"] == "PUT" and e["status"] == 400]
    assert refused == []  # it waited on mParticle's count instead of asking for a 6th


def test_a_refused_activation_waits_and_retries(
    rotating, hooked, control, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = rotation._others_active
    stale = [True]

    def first_count_is_stale(client, pipelines, own):
        if stale:  # another client took the last slot between our count and our PUT
            stale.clear()
            return ()
        return counted(client, pipelines, own)

    monkeypatch.setattr(rotation, "_others_active", first_count_is_stale)
    with hooked["mparticle"].open_client() as client:
        _fill_workspace(rotating, client, others=3)
        control.clear_request_log()
        ON_NEXT_SLEEP.append(lambda: _pause_other(client, "other-2"))
        result = materialize(rotating, hooked, "rotating_01")
        assert result.success, failure_message(result)
    puts = [
        e["status"]
        for e in control.request_log()
        if e["method"] == "PUT" and e["path"].endswith("/pipelines/wsync-rotating-01")
    ]
    assert puts == [400, 200, 200]  # refused, activated once a slot was free, paused
    assert control.activity()["peak_active"] == 5


def _failure_in_a_full_workspace(rotating, resources) -> str:
    """Materialize rotating_01 in a full workspace: it fails, left paused; the failure's text."""
    with resources["mparticle"].open_client() as client:
        _fill_workspace(rotating, client, others=3)
        result = materialize(rotating, resources, "rotating_01")
        assert not is_active(client, rotating.sync("rotating_01"))
    return failure_message(result)


def test_no_free_slot_within_the_timeout_fails_clearly_and_leaves_it_paused(
    rotating, local_snowflake, control
) -> None:
    resources = {
        "snowflake": snowflake_for(local_snowflake),
        "mparticle": hooked_mparticle(control, run_timeout_seconds=120.0),
    }
    message = _failure_in_a_full_workspace(rotating, resources)
    assert "found no free active-pipeline slot within 120 s" in message
    assert "other-1, other-2, other-3, wsync-customer-scores, wsync-ticket-activity" in message
    assert "400" not in message


def test_activations_refused_with_room_are_not_waited_out_for_ever(
    rotating, hooked, control, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rotation, "_others_active", lambda client, pipelines, own: ())
    message = _failure_in_a_full_workspace(rotating, hooked)
    assert "mParticle refused 3 times to activate the pipeline of rotating sync" in message
    assert "already has 5 active pipelines" in message


def test_the_runs_sensor_pauses_a_rotating_pipeline_a_crash_left_active(
    rotating, hooked, control
) -> None:
    left, busy = rotating.sync("rotating_01"), rotating.sync("rotating_02")
    with hooked["mparticle"].open_client() as client:
        crashed_after_trigger(client, rotating, left)
        control.settle()  # left's run ended; nobody paused it
        crashed_after_trigger(client, rotating, busy)  # busy's run is still in flight
        control.advance(rotation.SWEEP_GRACE.total_seconds(), settle=False)
        with dg.instance_for_test() as instance:
            result = tick(instance, rotating, hooked, None)
        assert result.skip_reason is not None
        assert "paused rotating pipeline(s) left active: wsync-rotating-01" in str(
            result.skip_reason.skip_message
        )
        assert not is_active(client, left)
        assert is_active(client, busy)  # its materialization pauses it when its run ends
