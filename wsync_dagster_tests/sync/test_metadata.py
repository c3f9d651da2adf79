"""What a materialization reports: Dagster's standard row count and column schema (with each column's
role), the step's counters once per step, and no metadata that is constant noise."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.assets.report import column_schema, run_metadata
from wsync_dagster.sync.engine.preflight import PreflightReport
from wsync_dagster.sync.registry.windows import Window
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import (
    failure_message,
    materializations,
    materialize,
    observations,
)

STEP_COUNTERS = {
    "wsync/api_requests", "wsync/token_requests", "wsync/run_polls", "wsync/reconcile",
    "wsync/partitions_in_run", "preflight/queries",
}  # fmt: skip
NOISE = {"mparticle/run_seconds", "mparticle/run_state", "dagster/row_count"}


def _roles(schema: dg.TableSchema) -> dict[str, tuple[str, dict[str, str]]]:
    return {c.name: (c.type, dict(c.tags)) for c in schema.columns}


def test_partitions_report_partition_row_count_schema_with_roles_and_no_noise(
    registry, resources, control
) -> None:
    keys = [(SAMPLE_ANCHOR - timedelta(days=d)).strftime("%Y-%m-%d") for d in (3, 2)]
    result = materialize(registry, resources, "customer_scores", keys)
    assert result.success, failure_message(result)
    found = materializations(result)
    assert sorted(found) == keys
    for meta in found.values():
        assert meta["dagster/partition_row_count"] == meta["mparticle/records_mapped"] > 0
        assert not (NOISE | STEP_COUNTERS) & set(meta)
        schema = meta["dagster/column_schema"]
        assert [c.name for c in schema.columns] == [
            "customer_id", "email", "$firstname", "lifetime_value", "churn_risk_score",
            "favorite_categories", "UPDATED_AT",
        ]  # fmt: skip
        roles = _roles(schema)
        assert roles["customer_id"] == (
            "TEXT",
            {"wsync/role": "identity", "wsync/identity": "user"},
        )
        assert roles["email"][1] == {"wsync/role": "identity", "wsync/identity": "user"}
        assert roles["lifetime_value"] == ("NUMBER", {"wsync/role": "attribute"})
        assert roles["favorite_categories"] == ("VARIANT", {"wsync/role": "attribute"})
        assert roles["UPDATED_AT"] == ("TIMESTAMP_NTZ", {"wsync/role": "load_timestamp"})
    (step,) = observations(result)  # once for the run, not once per partition
    assert set(step) == STEP_COUNTERS
    assert step["wsync/partitions_in_run"] == 2


def test_an_unpartitioned_sync_reports_row_count_and_its_schema(
    registry, resources, control
) -> None:
    result = materialize(registry, resources, "churn_risk_alerts")
    assert result.success, failure_message(result)
    meta = materializations(result)[""]
    assert meta["dagster/row_count"] == meta["mparticle/records_mapped"] > 0
    assert "dagster/partition_row_count" not in meta
    assert not ({"mparticle/run_seconds", "mparticle/run_state"} | STEP_COUNTERS) & set(meta)
    roles = _roles(meta["dagster/column_schema"])
    assert roles["churn_risk_alert_score"][1] == {"wsync/role": "attribute"}
    assert roles["UPDATED_AT"][1] == {"wsync/role": "load_timestamp"}
    (step,) = observations(result)
    assert step["preflight/queries"] == 4  # the window's pre-flight, then the run's exact window


def _report(columns: tuple[str, ...], types: tuple[str | None, ...] = ()) -> PreflightReport:
    return PreflightReport(
        sync="s", limit=10, columns=columns, identity_columns=("email", "IOS_IDFV"),
        timestamp_column="TS", counts=(), queries=2, seconds=0.0, column_types=types,
    )  # fmt: skip


def test_device_identities_and_unknown_types_are_told_apart() -> None:
    schema = column_schema(_report(("email", "IOS_IDFV", "plan", "TS")))
    roles = _roles(schema)
    assert roles["IOS_IDFV"] == ("unknown", {"wsync/role": "identity", "wsync/identity": "device"})
    assert roles["plan"] == ("unknown", {"wsync/role": "attribute"})
    by_name = {c.name: c for c in schema.columns}
    assert by_name["plan"].description == "User attribute 'plan' on the resolved profile."
    assert "mParticle resolves the profile" in (by_name["email"].description or "")


def _run(start: datetime, end: datetime, **fields: Any) -> PipelineRun:
    return PipelineRun.model_validate(
        {"pipeline_run_id": 1, "id": "p", "pipeline_run_state": "success",
         "start_date": start, "end_date": end, **fields}
    )  # fmt: skip


def test_a_run_duration_is_reported_only_when_there_is_one(registry) -> None:
    spec = registry.sync("customer_scores")
    start = datetime(2026, 11, 28, tzinfo=UTC)
    window = Window("w", start, start + timedelta(days=1))
    instant = run_metadata(spec, window, _run(start, start), count=None)
    assert "mparticle/run_seconds" not in instant and "mparticle/run_type" not in instant
    timed = run_metadata(
        spec,
        window,
        _run(start, start + timedelta(seconds=90), pipeline_run_type="scheduled"),
        count=None,
    )
    assert timed["mparticle/run_seconds"] == 90
    assert timed["mparticle/run_type"] == "scheduled"
