"""Late rows found by the recount, and windows re-sent on request (issue 19), through Dagster.

Everything runs against the Snowflake stand-in and the live emulator on its manual clock. Late rows
are inserted into the stand-in's ``TICKET_ACTIVITY`` directly (and deleted after the test, as other
tests share the sample warehouse).
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from pydantic import SecretStr

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.resources import LOCAL_MPARTICLE
from wsync_dagster.local.sample_data import TICKET_ACTIVITY
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.mparticle import WarehouseSyncClient
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.late_rows import late_rows_verdict, windows_before
from wsync_dagster.sync.assets.partitions import partitions_for
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.windows import Window, WindowCount
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync import test_sensor as sensors
from wsync_dagster_tests.sync.conftest import (
    failure_message,
    materializations,
    materialize,
    mparticle_for,
    other_pipeline,
    snowflake_for,
)

SYNC = "ticket_activity"
PIPELINE = "wsync-ticket-activity"
START = SAMPLE_ANCHOR - timedelta(days=3)  # ticket_activity's first hour, 2026-11-25 12:00
H, H1 = "2026-11-25-12:00", "2026-11-25-13:00"
RESEND = {"wsync/resend": "true"}
LATE_EMAIL = "late-{}@example.com"


@pytest.fixture
def client(resources: dict[str, Any]) -> Iterator[WarehouseSyncClient]:
    with resources["mparticle"].open_client() as opened:
        yield opened


@pytest.fixture
def insert_late(snowflake_cursor: Any) -> Iterator[Any]:
    """Insert ``k`` rows stamped at ``stamp`` into the sample's TICKET_ACTIVITY (removed after)."""
    inserted = 0

    def insert(k: int, stamp: datetime) -> list[str]:
        nonlocal inserted
        emails = [LATE_EMAIL.format(inserted + i) for i in range(k)]
        for email in emails:
            snowflake_cursor.execute(
                f"INSERT INTO {TICKET_ACTIVITY} VALUES "
                f"('{email}', 1, 0, 12.5, 'high', 4.0, '{stamp:%Y-%m-%d %H:%M:%S}')"
            )
        inserted += k
        return emails

    yield insert
    snowflake_cursor.execute(
        f"DELETE FROM {TICKET_ACTIVITY} WHERE EMAIL LIKE '{LATE_EMAIL.format('%')}'"
    )


def evaluations(result: dg.ExecuteInProcessResult, check: str) -> dict[str, Any]:
    """The run's evaluations of ``check``, by partition."""
    found = {}
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.event_specific_data
        if getattr(evaluation, "check_name", None) == check:
            found[getattr(evaluation, "partition", None)] = evaluation
    return found


def value(evaluation: Any, key: str) -> Any:
    raw = evaluation.metadata[key]
    return getattr(raw, "value", raw)


def resend_pipelines(client: WarehouseSyncClient) -> list[str]:
    return [p.id for p in client.list_pipelines() if "-resend-" in p.id]


def test_late_rows_are_found_by_the_next_hour_and_a_resend_sends_them(
    registry: Registry,
    resources: dict[str, Any],
    control: EmulatorControl,
    client: WarehouseSyncClient,
    insert_late: Any,
) -> None:
    instance = dg.DagsterInstance.ephemeral()

    # hour H syncs n rows
    first = materialize(registry, resources, SYNC, [H], instance=instance)
    assert first.success, failure_message(first)
    synced = materializations(first)[H]
    n, first_run = synced["mparticle/records_extracted"], synced["mparticle/run_id"]
    assert n == synced["preflight/rows"] > 0
    assert evaluations(first, naming.CHECK_LATE_ROWS)[H].passed

    # k rows stamped inside H land afterwards; materializing H+1 recounts H in the same query
    k = 3
    emails = insert_late(k, START + timedelta(minutes=20))
    second = materialize(registry, resources, SYNC, [H1], instance=instance)
    assert second.success, failure_message(second)  # a WARN: the run is not failed by it
    late = evaluations(second, naming.CHECK_LATE_ROWS)
    assert late[H1].passed
    found = late[H]
    assert not found.passed and found.severity is dg.AssetCheckSeverity.WARN
    assert value(found, "wsync/late_rows") == k
    assert value(found, "preflight/rows") == n + k
    assert value(found, "mparticle/run_id") == first_run
    assert f"{k} more than mParticle run {first_run} extracted ({n})" in found.description
    assert "wsync/resend=true" in found.description and H in found.description
    [step] = [
        e for e in second.all_events if e.event_type_value == "ASSET_OBSERVATION"
    ]  # the recount was in the pre-flight's one grouped count
    queries = step.asset_observation_data.asset_observation.metadata["preflight/queries"]
    assert getattr(queries, "value", queries) == 2
    # nothing of the late rows reached mParticle
    assert not any(
        e.get("value") in emails for p in control.profiles() for e in p.get("user_identities", [])
    )

    # materializing H with wsync/resend=true sends the window again: n + k rows
    control.clear_request_log()
    resent = materialize(registry, resources, SYNC, [H], instance=instance, tags=RESEND)
    assert resent.success, failure_message(resent)
    meta = materializations(resent)[H]
    assert meta["mparticle/records_extracted"] == n + k
    assert meta["wsync/resend_of_run_id"] == first_run
    resend_run = meta["mparticle/run_id"]
    assert resend_run != first_run
    assert meta["wsync/resend_pipeline_id"].startswith(f"{PIPELINE}-resend-202611251200-")
    after = evaluations(resent, naming.CHECK_LATE_ROWS)[H]
    assert after.passed and value(after, "wsync/late_rows") == 0
    assert evaluations(resent, naming.CHECK_PREFLIGHT_PARITY)[H].passed
    # the late rows are on profiles now; the interval pipeline's own run was left alone
    identities = {e.get("value") for p in control.profiles() for e in p.get("user_identities", [])}
    assert set(emails) <= identities
    assert [
        r.pipeline_run_id for r in client.iter_pipeline_runs(PIPELINE, start=START, end=START)
    ] == [first_run]
    assert resend_pipelines(client) == []  # deleted once its run ended and the window reported

    # a second re-send with no new rows is allowed, and reports 0 late rows
    again = materialize(registry, resources, SYNC, [H], instance=instance, tags=RESEND)
    assert again.success, failure_message(again)
    meta2 = materializations(again)[H]
    assert meta2["mparticle/records_extracted"] == n + k
    assert meta2["wsync/resend_of_run_id"] == resend_run
    last = evaluations(again, naming.CHECK_LATE_ROWS)[H]
    assert last.passed and value(last, "wsync/late_rows") == 0
    assert resend_pipelines(client) == []

    # a plain re-materialization re-reports the latest re-send, says so, and sends nothing
    control.clear_request_log()
    plain = materialize(registry, resources, SYNC, [H], instance=instance)
    assert plain.success, failure_message(plain)
    meta3 = materializations(plain)[H]
    assert meta3["mparticle/run_id"] == meta2["mparticle/run_id"]
    assert meta3["wsync/re_reported"] is True
    assert evaluations(plain, naming.CHECK_LATE_ROWS)[H].passed
    description = plain.get_asset_materialization_events()[0].step_materialization_data
    assert "nothing was sent again" in (description.materialization.description or "")
    assert not any(e["method"] in ("POST", "DELETE") for e in control.request_log())


def test_resending_a_day_takes_turns_on_the_free_slots_and_leaves_no_pipeline(
    registry: Registry,
    resources: dict[str, Any],
    control: EmulatorControl,
    client: WarehouseSyncClient,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    day = [f"2026-11-{25 + (12 + h) // 24}-{(12 + h) % 24:02d}:00" for h in range(24)]
    synced = materialize(registry, resources, SYNC, day, instance=instance)
    assert synced.success, failure_message(synced)
    first_runs = {k: m["mparticle/run_id"] for k, m in materializations(synced).items()}
    # two other teams' pipelines: with ticket_activity's, 3 of the 5 slots stay taken
    for other in ("other-0", "other-1"):
        client.create_pipeline(other_pipeline(other))
    control.clear_request_log()

    resent = materialize(registry, resources, SYNC, day, instance=instance, tags=RESEND)
    assert resent.success, failure_message(resent)

    meta = materializations(resent)
    assert sorted(meta) == day
    assert {k: m["wsync/resend_of_run_id"] for k, m in meta.items()} == first_runs
    resend_ids = {m["wsync/resend_pipeline_id"] for m in meta.values()}
    assert len(resend_ids) == 24  # one once pipeline per window
    activity = control.activity()
    assert activity["peak_active"] == 5  # the two free slots were used, never a sixth
    activated = {e["pipeline_id"] for e in activity["events"] if e["active"]}
    assert resend_ids <= activated
    assert max(e["active_count"] for e in activity["events"]) <= 5
    refused = [e for e in control.request_log() if e["status"] == 400]
    assert refused == []  # it waited on mParticle's count instead of asking for a sixth
    assert resend_pipelines(client) == []  # every one deleted once its window was reported
    assert all(evaluations(resent, naming.CHECK_LATE_ROWS)[k].passed for k in day)


def _with(registry: Registry, **fields: Any) -> Registry:
    spec = registry.sync(SYNC).model_copy(update=fields)
    syncs = tuple(spec if s.name == SYNC else s for s in registry.syncs)
    return registry.model_copy(update={"syncs": syncs})


def test_a_window_over_the_once_limit_is_refused_before_anything_is_sent(
    registry: Registry, resources: dict[str, Any], control: EmulatorControl
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(registry, resources, SYNC, [H], instance=instance)
    assert first.success, failure_message(first)
    rows = materializations(first)[H]["preflight/rows"]
    small = registry.model_copy(
        update={"limits": registry.limits.model_copy(update={"records_per_request": {"once": 5}})}
    )
    control.clear_request_log()
    refused = materialize(small, resources, SYNC, [H], instance=instance, tags=RESEND)
    message = failure_message(refused)
    assert f"window {H}" in message and f"holds {rows:,} rows" in message
    assert "limits.records_per_request.once" in message and "nothing was sent" in message
    assert control.request_log() == []  # refused before reaching mParticle at all


def test_only_windows_mparticle_ran_can_be_resent(
    registry: Registry, resources: dict[str, Any], control: EmulatorControl
) -> None:
    # the pipeline has run every closed hour; the next one closes, unrun (the clock does not settle)
    first = materialize(registry, resources, SYNC, [H])
    assert first.success, failure_message(first)
    control.set_clock(
        SAMPLE_ANCHOR + timedelta(hours=1), settle=False
    )  # 11:00-12:00 closed at 13:00, not run
    control.clear_request_log()
    latest = "2026-11-28-12:00"
    refused = materialize(registry, resources, SYNC, [latest], tags=RESEND)
    message = failure_message(refused)
    assert f"first: {latest}" in message and "nothing to re-send yet" in message
    assert "Nothing was sent to mParticle" in message
    assert not any(
        e["method"] == "POST" and e["path"].endswith("/pipelines") for e in control.request_log()
    )


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"wsync/resend": "yes"}, "Run tag wsync/resend must be true or false, not 'yes'"),
        (
            {"wsync/resend": "true", "wsync/check_late_rows": "true"},
            "are both true: a run either re-sends its windows or only checks them",
        ),
    ],
)
def test_malformed_run_tags_are_refused_before_anything_is_sent(
    registry: Registry,
    resources: dict[str, Any],
    control: EmulatorControl,
    tags: dict[str, str],
    expected: str,
) -> None:
    result = materialize(registry, resources, SYNC, [H], tags=tags)
    assert expected in failure_message(result)
    assert control.request_log() == []


def test_the_resend_tag_on_an_unpartitioned_sync_is_refused(
    registry: Registry, resources: dict[str, Any], control: EmulatorControl
) -> None:
    result = materialize(registry, resources, "churn_risk_alerts", tags=RESEND)
    message = failure_message(result)
    assert "applies to the partitions of interval syncs" in message
    assert control.request_log() == []


def test_a_range_is_checked_on_request_without_sending_or_materializing(
    registry: Registry,
    resources: dict[str, Any],
    control: EmulatorControl,
    insert_late: Any,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    synced = ["2026-11-25-12:00", "2026-11-25-13:00", "2026-11-25-14:00"]
    first = materialize(registry, resources, SYNC, synced, instance=instance)
    assert first.success, failure_message(first)
    insert_late(2, START + timedelta(hours=1, minutes=30))  # inside 13:00
    control.clear_request_log()

    checked = materialize(
        registry,
        resources,
        SYNC,
        [*synced, "2026-11-25-15:00"],  # the last one never synced: nothing to compare with
        instance=instance,
        tags={"wsync/check_late_rows": "true"},
    )
    assert checked.success, failure_message(checked)
    assert materializations(checked) == {}
    late = evaluations(checked, naming.CHECK_LATE_ROWS)
    assert sorted(late) == synced
    assert [late[k].passed for k in synced] == [True, False, True]
    assert value(late["2026-11-25-13:00"], "wsync/late_rows") == 2
    assert evaluations(checked, naming.CHECK_PREFLIGHT_PARITY) == {}  # only late_rows is judged
    assert control.request_log() == []  # nothing reached mParticle


def test_the_runs_sensor_recounts_the_windows_before_the_runs_it_records(
    registry: Registry,
    resources: dict[str, Any],
    control: EmulatorControl,
    insert_late: Any,
) -> None:
    with dg.instance_for_test() as instance:  # SQLite storage, with its unique indexes
        hourly, _, keys = sensors.caught_up_hourly(registry, resources, control)
        first = sensors.tick(instance, hourly, resources, None)  # records the 72 catch-up runs
        late_hour = keys[-3]
        stamp = datetime.strptime(late_hour, "%Y-%m-%d-%H:%M").replace(tzinfo=START.tzinfo)
        insert_late(4, stamp + timedelta(minutes=10))

        cursor = first.cursor
        for _ in range(2):  # two hours close: each tick recounts the day before its new run
            control.advance(3600)
            result = sensors.tick(instance, hourly, resources, cursor)
            cursor = result.cursor
            seen = [e for e in result.asset_events if isinstance(e, dg.AssetObservation)]
            assert [e.partition for e in seen] == [late_hour]  # only the late window
            assert seen[0].metadata["wsync/late_rows"].value == 4
            assert "wsync/resend=true" in (seen[0].description or "")
            assert result.skip_reason is not None
            summary = result.skip_reason.skip_message or ""
            assert "4 late row(s) in 1 synced window(s)" in summary
            assert '"recounted_windows": 24' in summary
            assert not any(isinstance(e, dg.AssetCheckEvaluation) for e in result.asset_events)


def test_a_resend_still_running_at_the_timeout_is_attached_to_by_the_next_one(
    registry: Registry, local_snowflake: LocalSnowflake, slow_control: EmulatorControl
) -> None:
    """Runs take 300 s of the emulator's clock: a re-send that waits 60 s leaves its pipeline
    running; the next re-send of the window attaches to it instead of loading the window twice."""
    snowflake = snowflake_for(local_snowflake)
    patient = {"snowflake": snowflake, "mparticle": mparticle_for(slow_control)}
    impatient = {
        "snowflake": snowflake,
        "mparticle": mparticle_for(slow_control, run_timeout_seconds=60.0),
    }
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(registry, patient, SYNC, [H], instance=instance)
    assert first.success, failure_message(first)

    cut_short = materialize(registry, impatient, SYNC, [H], instance=instance, tags=RESEND)
    message = failure_message(cut_short)
    assert f"{H}: re-send pipeline {PIPELINE}-resend-202611251200-" in message
    assert "after 60 s; materialize the partition again with run tag wsync/resend=true" in message
    with patient["mparticle"].open_client() as client:
        [left] = resend_pipelines(client)  # still running: the one leftover

    slow_control.clear_request_log()
    attached = materialize(registry, patient, SYNC, [H], instance=instance, tags=RESEND)
    assert attached.success, failure_message(attached)
    assert materializations(attached)[H]["wsync/resend_pipeline_id"] == left
    creates = [
        e
        for e in slow_control.request_log()
        if e["method"] == "POST" and e["path"].endswith("/pipelines")
    ]
    assert creates == []  # attached: the window was not loaded a second time
    with patient["mparticle"].open_client() as client:
        assert resend_pipelines(client) == []  # deleted (with its run) once reported


def test_a_resend_pipeline_left_by_a_crash_is_deleted_by_the_next_resend(
    registry: Registry,
    resources: dict[str, Any],
    control: EmulatorControl,
    client: WarehouseSyncClient,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(registry, resources, SYNC, [H, H1], instance=instance)
    assert first.success, failure_message(first)
    # a re-send of H+1 whose Dagster run died after its run ended, before deleting it
    template = client.get_pipeline(PIPELINE)
    crashed = f"{PIPELINE}-resend-202611251300-deadbeef"
    client.create_pipeline(
        template.model_copy(
            update={
                "id": crashed,
                "name": crashed,
                "schedule_interval": "once",
                "schedule_start_time": START + timedelta(hours=1),
                "schedule_end_time": START + timedelta(hours=2),
                "partner_feed_key": SecretStr(LOCAL_MPARTICLE.feed_key),
            }
        )
    )
    control.settle()
    assert resend_pipelines(client) == [crashed]

    resent = materialize(registry, resources, SYNC, [H], instance=instance, tags=RESEND)
    assert resent.success, failure_message(resent)
    assert resend_pipelines(client) == []  # the leftover and this re-send's own, both deleted


def test_materializing_a_synced_window_again_says_it_only_re_reported_and_points_to_resend(
    registry: Registry, resources: dict[str, Any], control: EmulatorControl, insert_late: Any
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(registry, resources, SYNC, [H], instance=instance)
    assert first.success, failure_message(first)
    insert_late(2, START + timedelta(minutes=5))

    again = materialize(registry, resources, SYNC, [H], instance=instance)
    meta = materializations(again)[H]
    assert meta["mparticle/run_id"] == materializations(first)[H]["mparticle/run_id"]
    assert meta["wsync/re_reported"] is True
    [event] = again.get_asset_materialization_events()
    description = event.step_materialization_data.materialization.description or ""
    assert "nothing was sent again" in description and "wsync/resend=true" in description
    # the counts now differ: the blocking parity check fails, and its advice converges
    parity = evaluations(again, naming.CHECK_PREFLIGHT_PARITY)[H]
    assert not parity.passed
    assert "Materializing it again only re-reports the same run" in parity.description
    assert "materialize the partition with run tag wsync/resend=true" in parity.description
    assert "Counts cannot see a value corrected in place" in parity.description
    late = evaluations(again, naming.CHECK_LATE_ROWS)[H]
    assert not late.passed and value(late, "wsync/late_rows") == 2


def test_the_verdict_counts_only_rows_beyond_what_the_run_read() -> None:
    window = Window(H, START, START + timedelta(hours=1))
    late = late_rows_verdict(WindowCount(window, rows=12, rows_without_identity=0), 7, 10)
    assert not late.passed and late.severity is dg.AssetCheckSeverity.WARN
    assert late.metadata["wsync/late_rows"] == 2 and late.metadata["mparticle/run_id"] == 7
    assert "2 more than mParticle run 7 extracted (10)" in (late.description or "")
    # rows deleted upstream are not late: mParticle never deletes attributes, nothing to send
    fewer = late_rows_verdict(WindowCount(window, rows=8, rows_without_identity=0), 7, 10)
    assert fewer.passed and fewer.metadata["wsync/late_rows"] == 0
    assert "Counts cannot see a value corrected in place" in (fewer.description or "")


def test_the_windows_before_stop_at_the_start_of_the_grid(registry: Registry) -> None:
    partitions = partitions_for(registry.sync(SYNC).schedule)
    third = Window("2026-11-25-14:00", START + timedelta(hours=2), START + timedelta(hours=3))
    before = windows_before(partitions, third, 24)
    assert [w.key for w in before] == [H, H1]
    assert [(w.start, w.end) for w in before] == [
        (START, START + timedelta(hours=1)),
        (START + timedelta(hours=1), START + timedelta(hours=2)),
    ]
    assert windows_before(partitions, third, 1) == before[1:]
    assert windows_before(partitions, third, 0) == []
