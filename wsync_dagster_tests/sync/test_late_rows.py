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

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.sample_data import TICKET_ACTIVITY
from wsync_dagster.mparticle import WarehouseSyncClient
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import failure_message, materializations, materialize

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
