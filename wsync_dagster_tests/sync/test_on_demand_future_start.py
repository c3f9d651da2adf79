"""An on_demand sync whose start is still in the future is refused before anything reaches mParticle."""

from datetime import timedelta

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster_tests.sync.conftest import failure_message, materialize

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _starting_at(registry: Registry, name: str, delta: timedelta, now) -> Registry:
    spec = registry.sync(name)
    schedule = spec.schedule.model_copy(update={"start": now + delta})
    changed = spec.model_copy(update={"schedule": schedule})
    return registry.model_copy(
        update={"syncs": tuple(changed if s.name == name else s for s in registry.syncs)}
    )


def test_a_future_start_on_demand_is_refused_before_any_write(
    registry, resources, control: EmulatorControl
) -> None:
    now = control.clock()
    future = _starting_at(registry, "churn_risk_alerts", timedelta(days=2), now)
    control.clear_request_log()
    result = materialize(future, resources, "churn_risk_alerts")
    assert not result.success
    message = failure_message(result)
    start = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"schedule.start ({start}) is after mParticle's current time" in message, message
    assert "Nothing was sent to mParticle" in message
    assert "move schedule.start to" in message
    writes = [e for e in control.request_log() if e["method"] in WRITES]
    assert writes == []
    assert not [e for e in control.request_log() if not e["path"].startswith("/oauth")]


def test_a_start_exactly_now_still_syncs(registry, resources, control: EmulatorControl) -> None:
    now = control.clock()
    result = materialize(
        _starting_at(registry, "churn_risk_alerts", timedelta(0), now),
        resources,
        "churn_risk_alerts",
    )
    assert result.success, failure_message(result)
