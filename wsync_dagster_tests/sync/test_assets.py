"""Synced tables materialized through Dagster against fakesnow and the live emulator."""

import json
import socket
import threading
from datetime import timedelta
from typing import Any

import dagster as dg
import pytest
from dagster_snowflake import SnowflakeResource
from snowflake.connector.cursor import SnowflakeCursorBase

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.sample_data import CUSTOMER_SCORES, TICKET_ACTIVITY
from wsync_dagster.mparticle import WarehouseSyncClient
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import (
    check_results,
    failure_message,
    materializations,
    materialize,
    mparticle_for,
    observations,
    other_pipeline,
)

WRITES = ("POST", "PUT", "DELETE")


def _between(cursor: Any, table: str, start: str, end: str, where: str = "TRUE") -> int:
    (count,) = cursor.execute(
        f"SELECT COUNT(*) FROM {table} WHERE UPDATED_AT BETWEEN '{start}' AND '{end}' AND {where}"
    ).fetchone()
    return count


def _writes(control: EmulatorControl) -> list[dict[str, Any]]:
    """Requests that changed something in mParticle (token requests don't)."""
    return [
        e
        for e in control.request_log()
        if e["method"] in WRITES and not e["path"].startswith("/oauth")
    ]


def _with_sync(registry: Registry, **changes: Any) -> Registry:
    """``registry`` plus one more sync derived from ticket_activity."""
    base = registry.sync("ticket_activity")
    extra = base.model_copy(update={"name": "extra_sync", **changes})
    return registry.model_copy(update={"syncs": (*registry.syncs, extra)})


def _synced(
    registry: Registry, resources: dict[str, Any], name: str, key: str
) -> tuple[dg.ExecuteInProcessResult, dict[str, Any]]:
    """Materialize partition ``key`` of sync ``name``: the run, and the partition's metadata."""
    result = materialize(registry, resources, name, [key])
    assert result.success, failure_message(result)
    return result, materializations(result)[key]


def test_a_daily_partition_syncs_with_its_numbers_and_enriches_profiles(
    registry, resources, control, snowflake_cursor
) -> None:
    result, meta = _synced(registry, resources, "customer_scores", "2026-11-27")
    expected = _between(
        snowflake_cursor, CUSTOMER_SCORES, "2026-11-27 00:00:00", "2026-11-28 00:00:00"
    )
    identityless = _between(
        snowflake_cursor, CUSTOMER_SCORES, "2026-11-27 00:00:00", "2026-11-28 00:00:00",
        "CUSTOMER_ID IS NULL AND EMAIL IS NULL",
    )  # fmt: skip
    assert meta["preflight/rows"] == meta["mparticle/records_extracted"] == expected > 0
    assert meta["mparticle/records_mapped"] == expected - identityless
    assert meta["preflight/rows_without_identity"] == identityless
    assert meta["mparticle/event_batches_generated"] == meta["mparticle/records_mapped"]
    assert meta["dagster/partition_row_count"] == meta["mparticle/records_mapped"]
    assert meta["mparticle/pipeline_id"] == "wsync-customer-scores"
    assert meta["window_start"] == SAMPLE_ANCHOR.replace(hour=0).timestamp() - 86400
    assert [o["preflight/queries"] for o in observations(result)] == [2]

    checks = check_results(result)
    assert checks[naming.CHECK_PREFLIGHT_PARITY].passed
    mapped = checks[naming.CHECK_ROWS_MAPPED]
    # the rows without identity explain the gap: shown as metadata, not a warning
    assert identityless > 0 and mapped.passed
    assert mapped.metadata["rows_without_identity"].value == identityless
    assert mapped.metadata["unexplained_unmapped"].value == 0
    assert checks[naming.CHECK_MATCHES_REGISTRY].passed  # reconcile made mParticle match
    assert {c.partition for c in checks.values()} == {"2026-11-27"}

    email, first_name, categories = snowflake_cursor.execute(
        f"SELECT EMAIL, FIRST_NAME, FAVORITE_CATEGORIES FROM {CUSTOMER_SCORES} "
        "WHERE UPDATED_AT >= '2026-11-27 00:00:00' AND UPDATED_AT < '2026-11-28 00:00:00' "
        "AND EMAIL IS NOT NULL AND FAVORITE_CATEGORIES <> '[]' ORDER BY UPDATED_AT LIMIT 1"
    ).fetchone()
    with resources["mparticle"].open_client() as client:
        profile = client.resolve_profile("email", email, "development")
    attributes = profile.user_attributes
    assert attributes["$firstname"] == first_name
    assert attributes["favorite_categories"] == json.loads(categories)
    assert set(attributes) >= {"lifetime_value", "churn_risk_score"}
    assert "UPDATED_AT" not in attributes


def test_an_hourly_partition_syncs_boundary_rows_included(
    registry, resources, control, snowflake_cursor
) -> None:
    _, meta = _synced(registry, resources, "ticket_activity", "2026-11-28-10:00")
    expected = _between(
        snowflake_cursor, TICKET_ACTIVITY, "2026-11-28 10:00:00", "2026-11-28 11:00:00"
    )
    assert meta["preflight/rows"] == meta["mparticle/records_extracted"] == expected > 0


def test_a_24_partition_backfill_is_one_run_one_token_one_count(
    registry, resources, control, monkeypatch
) -> None:
    sent: list[str] = []
    execute = SnowflakeCursorBase.execute
    ours = threading.get_ident()  # the emulator's runs query Snowflake from its own threads

    def recorded(self: Any, command: str, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == ours:
            sent.append(command)
        return execute(self, command, *args, **kwargs)

    monkeypatch.setattr(SnowflakeCursorBase, "execute", recorded)
    keys = [(SAMPLE_ANCHOR - timedelta(hours=24 - i)).strftime("%Y-%m-%d-%H:%M") for i in range(24)]
    result = materialize(registry, resources, "ticket_activity", keys)
    assert result.success, failure_message(result)
    found = materializations(result)
    assert sorted(found) == keys
    assert all(m["preflight/rows"] == m["mparticle/records_extracted"] for m in found.values())
    (step,) = observations(result)  # the step's counters, once for the 24 partitions
    assert step["preflight/queries"] == 2  # LIMIT 0 + one grouped count
    assert step["wsync/partitions_in_run"] == 24
    assert len(sent) == 2, sent  # nothing else reaches Snowflake: no COMMIT on close
    log = control.request_log()
    assert sum(e["path"] == "/oauth/token" for e in log) == 1
    listings = [e for e in log if e["path"].endswith("/status/runs")]
    assert len(listings) == step["wsync/run_polls"]
    assert not any("/status/runs/" in e["path"] for e in log)  # no per-run status calls


def test_rematerializing_is_idempotent(registry, resources, control) -> None:
    first = materialize(registry, resources, "customer_scores", ["2026-11-26"])
    assert first.success, failure_message(first)
    control.clear_request_log()
    again = materialize(registry, resources, "customer_scores", ["2026-11-26"])
    assert again.success, failure_message(again)
    assert not _writes(control)
    one, two = materializations(first)["2026-11-26"], materializations(again)["2026-11-26"]
    assert one["mparticle/run_id"] == two["mparticle/run_id"]
    assert observations(again)[0]["wsync/reconcile"].count("unchanged") == 3


def test_an_over_limit_hour_fails_before_any_mparticle_call(
    registry, resources, control, snowflake_cursor
) -> None:
    snowflake_cursor.execute("CREATE SCHEMA IF NOT EXISTS WSYNC_DEMO.LOAD")
    snowflake_cursor.execute(
        "CREATE OR REPLACE TABLE WSYNC_DEMO.LOAD.DENSE_EVENTS AS SELECT "
        "'u' || SEQ4() AS EMAIL, DATEADD('millisecond', SEQ4(), "
        "'2026-11-28 09:00:00'::TIMESTAMP_NTZ) AS UPDATED_AT "
        "FROM TABLE(GENERATOR(ROWCOUNT => 1000001))"
    )
    dense = _with_sync(
        registry, sql='SELECT EMAIL AS "email", UPDATED_AT FROM WSYNC_DEMO.LOAD.DENSE_EVENTS'
    )
    result = materialize(dense, resources, "extra_sync", ["2026-11-28-09:00"])
    message = failure_message(result)
    assert "holds 1,000,001 rows" in message and "hourly limit is 1,000,000" in message
    assert "nothing was sent to mParticle" in message
    assert control.request_log() == []


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        (
            'SELECT EMAIL AS "email", '
            + ", ".join(f"TICKETS_OPENED AS C{i}" for i in range(99))
            + ", UPDATED_AT FROM WSYNC_DEMO.SUPPORT.TICKET_ACTIVITY",
            "returns 101 columns; mParticle allows 100",
        ),
        (
            'SELECT EMAIL AS "email" FROM WSYNC_DEMO.SUPPORT.TICKET_ACTIVITY',
            "load timestamp column 'UPDATED_AT' is not among the model's columns",
        ),
        (
            'SELECT EMAIL AS "email", UPDATED_AT FROM WSYNC_DEMO.SUPPORT.NO_SUCH_TABLE',
            "fails in Snowflake",
        ),
    ],
)
def test_models_mparticle_would_reject_fail_before_any_call(
    registry, resources, control, sql: str, fragment: str
) -> None:
    result = materialize(
        _with_sync(registry, sql=sql), resources, "extra_sync", ["2026-11-28-10:00"]
    )
    assert fragment in failure_message(result)
    assert control.request_log() == []


def test_a_start_beyond_catch_up_is_refused_before_any_write(registry, resources, control) -> None:
    spec = registry.sync("ticket_activity")
    too_old = spec.schedule.model_copy(update={"start": SAMPLE_ANCHOR - timedelta(days=8)})
    stale = _with_sync(registry, schedule=too_old)
    key = (SAMPLE_ANCHOR - timedelta(days=8)).strftime("%Y-%m-%d-%H:%M")
    result = materialize(stale, resources, "extra_sync", [key])
    message = failure_message(result)
    assert "older than mParticle's hourly catch-up limit (7 days)" in message
    assert "earliest start it accepts now is 2026-11-21T12:00:00Z" in message
    assert not _writes(control)


def test_a_sixth_active_pipeline_is_refused_before_it_is_sent(registry, resources, control) -> None:
    first = materialize(registry, resources, "ticket_activity", ["2026-11-28-10:00"])
    assert first.success, failure_message(first)
    client: WarehouseSyncClient
    with resources["mparticle"].open_client() as client:
        for i in range(4):
            client.create_pipeline(other_pipeline(f"other-{i}"))
    control.clear_request_log()
    result = materialize(registry, resources, "customer_scores", ["2026-11-27"])
    message = failure_message(result)
    assert "would be active pipeline number 6" in message and "allows 5" in message
    assert not _writes(control)


def test_bad_credentials_fail_clearly_without_leaking_the_secret(
    registry, control, resources
) -> None:
    resources = {**resources, "mparticle": mparticle_for(control, client_secret="not-the-secret")}
    result = materialize(registry, resources, "ticket_activity", ["2026-11-28-10:00"])
    message = failure_message(result)
    assert "local-client" in message and "not-the-secret" not in message
    assert not _writes(control)


def test_throttling_and_server_errors_for_a_while_are_ridden_out(
    registry, resources, control
) -> None:
    control.throttle(3, retry_after=2)
    control.fail_requests(2, status=503)
    result = materialize(registry, resources, "ticket_activity", ["2026-11-28-10:00"])
    assert result.success, failure_message(result)
    statuses = [e["status"] for e in control.request_log()]
    assert statuses.count(429) == 3 and statuses.count(503) == 2


def test_a_failed_mparticle_run_fails_the_partition_with_its_reason(
    registry, resources, control
) -> None:
    first_key = registry.sync("ticket_activity").schedule.start.strftime("%Y-%m-%d-%H:%M")
    control.fail_next_run("Snowflake role MPARTICLE_SYNC lost SELECT", "wsync-ticket-activity")
    result = materialize(registry, resources, "ticket_activity", [first_key])
    message = failure_message(result)
    assert f"{first_key}: mParticle run" in message
    assert "Snowflake role MPARTICLE_SYNC lost SELECT" in message
    assert materializations(result) == {}


def test_an_unknown_run_state_fails_closed_naming_it(registry, control, resources) -> None:
    resources = {**resources, "mparticle": mparticle_for(control, run_timeout_seconds=1800)}
    control.unknown_run_states(10_000, state="dataset_triggered")
    result = materialize(registry, resources, "ticket_activity", ["2026-11-28-10:00"])
    message = failure_message(result)
    assert "unknown state 'dataset_triggered'" in message and "never taken for success" in message
    assert materializations(result) == {}


def test_on_demand_triggers_and_chains_windows(
    registry, resources, control, snowflake_cursor
) -> None:
    first = materialize(registry, resources, "churn_risk_alerts")
    assert first.success, failure_message(first)
    meta = materializations(first)[""]
    spec: SyncSpec = registry.sync("churn_risk_alerts")
    assert meta["window_start"] == spec.schedule.start.timestamp()
    assert meta["wsync/attached_to_existing_run"] is False
    assert meta["preflight/rows"] == meta["mparticle/records_extracted"] > 0
    assert check_results(first)[naming.CHECK_PREFLIGHT_PARITY].passed

    control.advance(3600)
    second = materialize(registry, resources, "churn_risk_alerts")
    assert second.success, failure_message(second)
    again = materializations(second)[""]
    assert again["window_start"] == meta["window_end"]
    assert again["mparticle/run_id"] != meta["mparticle/run_id"]


def test_definitions_name_and_partition_assets_from_the_spec(registry) -> None:
    from wsync_dagster.sync.assets.factory import build_sync_assets

    assets = {a.key: a for a in build_sync_assets(registry)}
    daily = assets[dg.AssetKey(["mparticle", "customer_scores"])]
    spec = daily.specs_by_key[daily.key]
    assert spec.kinds == {"snowflake", "mparticle"}
    assert spec.group_name == "mparticle_sync"
    assert spec.owners == ["team:growth-data"]
    assert spec.tags["wsync/schedule"] == "daily" and spec.tags["domain"] == "crm"
    assert isinstance(daily.partitions_def, dg.TimeWindowPartitionsDefinition)
    assert daily.backfill_policy == dg.BackfillPolicy.single_run()
    assert {c.name for c in daily.check_specs} == {
        naming.CHECK_PREFLIGHT_PARITY,
        naming.CHECK_ROWS_MAPPED,
        naming.CHECK_ROW_VOLUME,
        naming.CHECK_COLUMN_SCHEMA,
        naming.CHECK_LATE_ROWS,  # interval syncs only
        naming.CHECK_MATCHES_REGISTRY,
    }
    # Each partition has its own results, but matches_registry is one per sync (the drift sensor's).
    partitioned = {c.name: c.partitions_def for c in daily.check_specs}
    assert partitioned.pop(naming.CHECK_MATCHES_REGISTRY) is None
    assert set(partitioned.values()) == {daily.partitions_def}
    on_demand = assets[dg.AssetKey(["mparticle", "churn_risk_alerts"])]
    assert on_demand.partitions_def is None
    assert {c.partitions_def for c in on_demand.check_specs} == {None}
    assert naming.CHECK_LATE_ROWS not in {c.name for c in on_demand.check_specs}


def test_a_once_sync_attaches_to_its_single_run_and_never_reruns(
    registry, resources, control
) -> None:
    start = SAMPLE_ANCHOR - timedelta(days=3)
    schedule = registry.sync("customer_scores").schedule.model_copy(
        update={"interval": "once", "start": start, "end": start + timedelta(days=2)}
    )
    once = _with_sync(registry, sql=registry.sync("customer_scores").sql, schedule=schedule)
    first = materialize(once, resources, "extra_sync")
    assert first.success, failure_message(first)
    meta = materializations(first)[""]
    assert meta["window_start"] == start.timestamp()
    assert meta["window_end"] == (start + timedelta(days=2)).timestamp()
    assert meta["preflight/rows"] == meta["mparticle/records_extracted"] > 0

    control.clear_request_log()
    again = materialize(once, resources, "extra_sync")
    assert again.success, failure_message(again)
    assert materializations(again)[""]["mparticle/run_id"] == meta["mparticle/run_id"]
    assert not _writes(control)


def test_an_unreachable_snowflake_fails_clearly_before_any_mparticle_call(
    registry, resources, control
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    unreachable = SnowflakeResource(
        account="fakesnow", user="fake", password="snow", login_timeout=3, network_timeout=3,
        additional_snowflake_connection_args={
            "host": "127.0.0.1", "port": closed_port, "protocol": "http",
        },
    )  # fmt: skip
    resources = {**resources, "snowflake": unreachable}
    result = materialize(registry, resources, "ticket_activity", ["2026-11-28-10:00"])
    message = failure_message(result)
    assert "Could not connect to Snowflake for the pre-flight of sync 'ticket_activity'" in message
    assert "Nothing was sent to mParticle" in message
    assert control.request_log() == []


def test_an_unreachable_mparticle_fails_clearly_without_writes(
    registry, resources, control
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    offline = mparticle_for(
        control, api_root=closed, token_url=f"{closed}/oauth/token", retry_budget_seconds=60
    )
    result = materialize(
        registry, {**resources, "mparticle": offline}, "ticket_activity", ["2026-11-28-10:00"]
    )
    message = failure_message(result)
    assert "Setting up sync 'ticket_activity' in mParticle failed" in message
    assert closed.split("//")[1] in message
