"""Failed windows, paused syncs, lost counts and persistent errors, through Dagster (issue 9).

Everything runs against fakesnow and the live emulator on its manual clock: a failed run is made with
the emulator's ``run_failure`` fault, never by faking the client.
"""

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

import dagster as dg
import pytest
from dagster_snowflake import SnowflakeResource
from pydantic import SecretStr

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.resources import LOCAL_MPARTICLE
from wsync_dagster.local.sample_data import TICKET_ACTIVITY
from wsync_dagster.mparticle import RunState, WarehouseSyncClient
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import (
    check_results,
    failure_message,
    materializations,
    materialize,
    mparticle_for,
    observations,
    snowflake_for,
)

PIPELINE = "wsync-ticket-activity"
FIRST = "2026-11-25-12:00"  # the first hour of ticket_activity's schedule (anchor - 3 days)
FIRST_START = SAMPLE_ANCHOR - timedelta(days=3)
REPAIR_ID = f"{PIPELINE}-repair-202611251200"
TRANSIENT = "Could not connect to the warehouse: Snowflake was unreachable for a minute"
POINTER = "materialize the partition again once the cause is fixed"


def _paused(registry: Registry, name: str) -> Registry:
    spec = registry.sync(name).model_copy(update={"paused": True})
    syncs = tuple(spec if s.name == name else s for s in registry.syncs)
    return registry.model_copy(update={"syncs": syncs})


def _pipeline_writes(control: EmulatorControl) -> list[tuple[str, str]]:
    return [
        (e["method"], e["path"])
        for e in control.request_log()
        if e["method"] in ("POST", "PUT", "DELETE") and "/pipelines" in e["path"]
    ]


def _first_hour_count(cursor: Any) -> int:
    (count,) = cursor.execute(
        f"SELECT COUNT(*) FROM {TICKET_ACTIVITY} "
        "WHERE UPDATED_AT BETWEEN '2026-11-25 12:00:00' AND '2026-11-25 13:00:00'"
    ).fetchone()
    return count


def _latest_run_id(instance: dg.DagsterInstance, partition: str) -> int:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["mparticle", "ticket_activity"]), asset_partitions=[partition]
        ),
        limit=1,
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return materialization.metadata["mparticle/run_id"].value  # pyright: ignore[reportReturnType]


def _fail_first_run(
    registry: Registry, resources: dict[str, Any], control: EmulatorControl
) -> None:
    """The first window's run fails (a transient cause, gone afterwards); the message points on."""
    control.fail_next_run(TRANSIENT, PIPELINE)
    failed = materialize(registry, resources, "ticket_activity", [FIRST])
    message = failure_message(failed)
    assert f"{FIRST}: mParticle run" in message and TRANSIENT in message
    assert POINTER in message
    assert materializations(failed) == {}


def test_a_failed_window_is_repaired_once_after_the_cause_is_fixed(
    registry, resources, control, client, snowflake_cursor
) -> None:
    _fail_first_run(registry, resources, control)
    (failed_run,) = client.iter_pipeline_runs(PIPELINE, start=FIRST_START, end=FIRST_START)
    assert failed_run.state is RunState.FAILED
    assert client.get_pipeline(PIPELINE).is_faulted

    assert control.faults()["run_failures"] == []  # the cause is gone
    control.clear_request_log()
    instance = dg.DagsterInstance.ephemeral()
    repaired = materialize(registry, resources, "ticket_activity", [FIRST], instance=instance)
    assert repaired.success, failure_message(repaired)

    meta = materializations(repaired)[FIRST]
    expected = _first_hour_count(snowflake_cursor)
    assert meta["preflight/rows"] == meta["mparticle/records_extracted"] == expected > 0
    assert meta["wsync/repair_pipeline_id"] == REPAIR_ID
    assert meta["wsync/repair_of_run_id"] == failed_run.pipeline_run_id
    [step] = observations(repaired)  # the step's counters, reconcile's changes among them
    assert "fault cleared" in step["wsync/reconcile"]
    assert not client.get_pipeline(PIPELINE).is_faulted
    # exactly that window, once: one repair pipeline over the window, one run
    repair = client.get_pipeline(REPAIR_ID)
    assert (
        repair.schedule_interval == "once"
        and repair.data_model_id == client.get_pipeline(PIPELINE).data_model_id
    )
    assert (repair.schedule_start_time, repair.schedule_end_time) == (
        FIRST_START,
        FIRST_START + timedelta(hours=1),
    )
    assert not repair.is_active  # retired: it takes no active slot once its run has ended
    (repair_run,) = client.iter_pipeline_runs(REPAIR_ID)
    assert repair_run.state is RunState.SUCCESS
    assert (repair_run.data_interval_start, repair_run.data_interval_end) == (
        FIRST_START,
        FIRST_START + timedelta(hours=1),
    )
    assert meta["mparticle/run_id"] == repair_run.pipeline_run_id
    assert _latest_run_id(instance, FIRST) == repair_run.pipeline_run_id
    creates = [p for m, p in _pipeline_writes(control) if m == "POST" and p.endswith("/pipelines")]
    assert len(creates) == 1  # the repair pipeline; nothing else was created
    # the interval pipeline still has its one failed run for the window: nothing else ran it
    assert [
        r.pipeline_run_id
        for r in client.iter_pipeline_runs(PIPELINE, start=FIRST_START, end=FIRST_START)
    ] == [failed_run.pipeline_run_id]

    # a repaired window is never loaded again, even by a Dagster instance that never saw the repair
    control.clear_request_log()
    again = materialize(registry, resources, "ticket_activity", [FIRST])
    assert again.success, failure_message(again)
    assert materializations(again)[FIRST]["mparticle/run_id"] == repair_run.pipeline_run_id
    assert materializations(again)[FIRST]["wsync/re_reported"] is True  # and it says so
    assert _pipeline_writes(control) == []
    assert len(list(client.iter_pipeline_runs(REPAIR_ID))) == 1


def test_a_repair_that_fails_again_points_to_its_own_reason_and_leaves_no_pipeline(
    registry, resources, control, client
) -> None:
    _fail_first_run(registry, resources, control)
    control.fail_next_run("Snowflake role MPARTICLE_SYNC lost SELECT", REPAIR_ID)
    result = materialize(registry, resources, "ticket_activity", [FIRST])
    message = failure_message(result)
    assert f"{FIRST}: repair run" in message
    assert "Snowflake role MPARTICLE_SYNC lost SELECT" in message and POINTER in message
    assert REPAIR_ID not in {p.id for p in client.list_pipelines()}  # the next try starts afresh


def test_a_repair_without_a_free_active_slot_fails_clearly_before_creating_it(
    registry, resources, control, client
) -> None:
    _fail_first_run(registry, resources, control)
    template = client.get_pipeline(PIPELINE)
    for i in range(4):
        client.create_pipeline(
            template.model_copy(
                update={
                    "id": f"other-{i}",
                    "name": f"other-{i}",
                    "schedule_interval": "on_demand",
                    "partner_feed_key": SecretStr(LOCAL_MPARTICLE.feed_key),
                }
            )
        )
    control.clear_request_log()
    result = materialize(registry, resources, "ticket_activity", [FIRST])
    message = failure_message(result)
    assert "active pipeline" in message and "5" in message and REPAIR_ID in message
    assert not any(m == "POST" for m, _ in _pipeline_writes(control))


def test_each_failed_partition_shows_its_own_runs_reason(
    registry, local_snowflake, start_emulator, sample_warehouse
) -> None:
    server = start_emulator(run_seconds=60)  # runs take a minute: polls see them end one by one
    assert server.url is not None
    control = EmulatorControl(server.url)
    resources = {
        "snowflake": snowflake_for(local_snowflake),
        "mparticle": mparticle_for(control),
    }
    start = registry.sync("ticket_activity").schedule.start
    keys = [(start + timedelta(hours=i)).strftime("%Y-%m-%d-%H:%M") for i in range(2)]
    control.fail_next_run("warehouse WSYNC_WH was suspended", PIPELINE)
    control.fail_next_run("role MPARTICLE_SYNC lost SELECT on TICKET_ACTIVITY", PIPELINE)
    result = materialize(registry, resources, "ticket_activity", keys)
    message = failure_message(result)
    lines = {line.strip() for line in message.splitlines()}
    first = next(line for line in lines if line.startswith(f"- {keys[0]}:"))
    second = next(line for line in lines if line.startswith(f"- {keys[1]}:"))
    assert "warehouse WSYNC_WH was suspended" in first and "lost SELECT" not in first
    assert "lost SELECT on TICKET_ACTIVITY" in second and "suspended" not in second


def test_a_paused_interval_sync_fails_at_once_saying_how_to_resume(
    registry, resources, control, client
) -> None:
    paused = _paused(registry, "ticket_activity")
    started = control.clock()
    result = materialize(paused, resources, "ticket_activity", ["2026-11-28-10:00"])
    message = failure_message(result)
    assert "'ticket_activity' is paused" in message and "paused: false" in message
    assert "catch-up" not in message
    assert control.clock() - started < timedelta(minutes=1)  # no waiting
    assert client.get_pipeline(PIPELINE).is_active is False  # reconcile applied the pause


def test_a_paused_on_demand_sync_fails_at_once_without_a_trigger(
    registry, resources, control
) -> None:
    paused = _paused(registry, "churn_risk_alerts")
    result = materialize(paused, resources, "churn_risk_alerts")
    message = failure_message(result)
    assert "'churn_risk_alerts' is paused" in message and "paused: false" in message
    assert "refuse" in message  # mParticle refuses triggers of a paused pipeline
    triggers = [
        e for e in control.request_log() if e["method"] == "POST" and "/pipelines/" in e["path"]
    ]
    assert triggers == []


@pytest.fixture
def client(resources: dict[str, Any]) -> Iterator[WarehouseSyncClient]:
    """A client on the test's emulator, for reading what the materializations did."""
    with resources["mparticle"].open_client() as opened:
        yield opened


class _RecountFails(SnowflakeResource):
    """Dagster's Snowflake resource whose connections after the first fail (the recount's)."""

    @contextlib.contextmanager
    def get_connection(self, raw_conn: bool = True) -> Iterator[Any]:
        _RecountFails.opened += 1
        if _RecountFails.opened > 1:
            raise ConnectionError("Snowflake dropped the connection (network unreachable)")
        with super().get_connection(raw_conn=raw_conn) as connection:
            yield connection

    opened: ClassVar[int] = 0


def test_on_demand_a_failed_recount_still_records_the_run_and_never_claims_nothing_was_sent(
    registry, resources, control
) -> None:
    _RecountFails.opened = 0
    plain: SnowflakeResource = resources["snowflake"]
    flaky = _RecountFails(**plain.model_dump(exclude_unset=True))
    result = materialize(registry, {**resources, "snowflake": flaky}, "churn_risk_alerts")
    assert result.success, failure_message(result)
    assert "Nothing was sent" not in "\n".join(str(e.message) for e in result.all_events)
    meta = materializations(result)[""]
    assert meta["mparticle/run_id"] and meta["mparticle/records_extracted"] > 0  # a successful run
    assert "preflight/rows" not in meta
    parity = check_results(result)[naming.CHECK_PREFLIGHT_PARITY]
    assert parity.passed is False
    assert parity.severity == dg.AssetCheckSeverity.WARN
    assert "not evaluated" in (parity.description or "")
    assert "network unreachable" in (parity.description or "")
    assert parity.metadata["evaluated"].value is False


def test_persistent_server_errors_while_waiting_name_the_sync_partitions_and_the_way_out(
    registry, resources, control
) -> None:
    keys = ["2026-11-28-09:00", "2026-11-28-10:00"]
    control.fail_requests(10_000, status=503, method="GET", path="/status/runs")
    result = materialize(registry, resources, "ticket_activity", keys)
    message = failure_message(result)
    assert "503" in message and "'ticket_activity'" in message
    assert "2026-11-28-09:00" in message and "2026-11-28-10:00" in message
    assert "materialize again to attach" in message and "nothing will be triggered twice" in message
