"""The column-schema check: on schemas alone, then through Dagster runs against the stand-ins."""

import warnings
from typing import Any

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.schema_check import Recorded, schema_verdict
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster_tests.sync.conftest import failure_message, materialize


def _schema(*columns: tuple[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, type) for name, type in columns])


BEFORE = Recorded(
    _schema(("customer_id", "TEXT"), ("email", "TEXT"), ("score", "NUMBER"), ("UPDATED_AT", "TS")),
    partition="2026-11-26",
    run_id="r1",
)


def test_the_same_columns_in_another_order_pass() -> None:
    now = _schema(
        ("email", "TEXT"), ("UPDATED_AT", "TS"), ("customer_id", "TEXT"), ("score", "NUMBER")
    )
    verdict = schema_verdict(now, BEFORE)
    assert verdict.passed and verdict.name == naming.CHECK_COLUMN_SCHEMA
    assert verdict.metadata["compared_with"] == "partition 2026-11-26 of Dagster run r1"
    assert verdict.metadata["added_columns"] == verdict.metadata["removed_columns"] == "none"


def test_added_removed_and_retyped_columns_warn_naming_each() -> None:
    now = _schema(
        ("customer_id", "TEXT"), ("Email", "TEXT"), ("score", "TEXT"), ("UPDATED_AT", "TS")
    )
    verdict = schema_verdict(now, BEFORE)
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.WARN
    text = verdict.description or ""
    assert text.startswith(
        "The model's columns changed since partition 2026-11-26 of Dagster run r1: "
        "added Email; removed email; retyped score NUMBER -> TEXT."
    )
    assert "attribute stops being updated" in text
    assert verdict.metadata["added_columns"] == "Email"
    assert verdict.metadata["removed_columns"] == "email"
    assert verdict.metadata["retyped_columns"] == "score NUMBER -> TEXT"


def test_a_type_that_was_not_discovered_is_not_a_change() -> None:
    now = _schema(
        ("customer_id", "unknown"), ("email", "TEXT"), ("score", "NUMBER"), ("UPDATED_AT", "TS")
    )
    assert schema_verdict(now, BEFORE).passed


def test_the_first_schema_passes_with_nothing_to_compare() -> None:
    verdict = schema_verdict(BEFORE.schema, None)
    assert verdict.passed and verdict.metadata["compared_with"] == "none"


def test_every_sync_asset_declares_the_check(registry: Registry) -> None:
    from wsync_dagster.sync.assets.factory import build_sync_assets

    for asset in build_sync_assets(registry):
        (key,) = asset.keys
        spec = next(s for s in asset.check_specs if s.name == naming.CHECK_COLUMN_SCHEMA)
        assert spec.asset_key == key and not spec.blocking
        assert spec.partitions_def == asset.partitions_def


def test_dagster_s_own_schema_check_would_never_run_after_a_sync_asset() -> None:
    """Why the project has its own check (docs/sql.md): a sync asset reports materializations as
    events and no output, like this one, so Dagster skips the step of a standalone check on it."""
    daily = dg.DailyPartitionsDefinition(start_date="2026-11-01")

    @dg.multi_asset(specs=[dg.AssetSpec("synced", skippable=True, partitions_def=daily)])
    def synced(context: dg.AssetExecutionContext):
        schema = _schema(("email", "TEXT"))
        yield dg.AssetMaterialization(
            "synced", partition=context.partition_key, metadata={"dagster/column_schema": schema}
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        dagster_checks = dg.build_column_schema_change_checks(assets=[synced])
    instance = dg.DagsterInstance.ephemeral()
    for day in ("2026-11-01", "2026-11-02"):
        result = dg.materialize([synced, *dagster_checks], instance=instance, partition_key=day)
        assert result.success and not result.get_asset_check_evaluations()
        assert any(e.event_type_value == "STEP_SKIPPED" for e in result.all_events)


def _changed(registry: Registry, name: str, sql: str) -> Registry:
    changed = SyncSpec.model_validate({**registry.sync(name).model_dump(), "sql": sql})
    syncs = tuple(changed if s.name == name else s for s in registry.syncs)
    return registry.model_copy(update={"syncs": syncs})


def _schema_evaluations(result: dg.ExecuteInProcessResult) -> list[Any]:
    return [
        e
        for e in (event.event_specific_data for event in result.all_events)
        if isinstance(e, dg.AssetCheckEvaluation) and e.check_name == naming.CHECK_COLUMN_SCHEMA
    ]


# customer_scores without favorite_categories, with its churn risk as text and one more column
CHANGED_SCORES = """
SELECT CUSTOMER_ID AS "customer_id", EMAIL AS "email", FIRST_NAME AS "$firstname",
  LIFETIME_VALUE AS "lifetime_value", CAST(CHURN_RISK AS VARCHAR) AS "churn_risk_score",
  LIFETIME_VALUE * 2 AS "double_value", UPDATED_AT
FROM WSYNC_DEMO.CRM.CUSTOMER_SCORES
"""


def test_a_changed_model_warns_on_the_first_partition_synced_after_the_change(
    registry, resources, control
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(registry, resources, "customer_scores", ["2026-11-25"], instance)
    assert first.success, failure_message(first)
    (before,) = _schema_evaluations(first)
    assert before.passed and before.partition == "2026-11-25"

    changed = _changed(registry, "customer_scores", CHANGED_SCORES)
    keys = ["2026-11-26", "2026-11-27"]
    second = materialize(changed, resources, "customer_scores", keys, instance)
    assert second.success, failure_message(second)
    after = {e.partition: e for e in _schema_evaluations(second)}
    assert sorted(after) == keys
    warned = after["2026-11-26"]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["compared_with"].value == (
        f"partition 2026-11-25 of Dagster run {first.run_id}"
    )
    assert warned.metadata["added_columns"].value == "double_value"
    assert warned.metadata["removed_columns"].value == "favorite_categories"
    assert warned.metadata["retyped_columns"].value.startswith("churn_risk_score ")
    # the next partition of the same run is compared with the one before it: same columns
    assert after["2026-11-27"].passed
    assert after["2026-11-27"].metadata["compared_with"].value == (
        f"partition 2026-11-26 of Dagster run {second.run_id}"
    )


def test_an_on_demand_sync_compares_with_its_previous_materialization(
    registry, resources, control
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(registry, resources, "churn_risk_alerts", instance=instance)
    assert first.success, failure_message(first)
    (result,) = [
        r for r in first.get_asset_check_evaluations() if r.check_name == naming.CHECK_COLUMN_SCHEMA
    ]
    assert result.passed and result.metadata["compared_with"].value == "none"

    sql = registry.sync("churn_risk_alerts").sql.replace('EMAIL AS "email",', "")
    control.advance(3600)
    second = materialize(
        _changed(registry, "churn_risk_alerts", sql), resources, "churn_risk_alerts",
        instance=instance,
    )  # fmt: skip
    assert second.success, failure_message(second)
    (result,) = [
        r
        for r in second.get_asset_check_evaluations()
        if r.check_name == naming.CHECK_COLUMN_SCHEMA
    ]
    assert not result.passed and result.metadata["removed_columns"].value == "email"
    assert result.metadata["compared_with"].value == (
        f"the materialization of Dagster run {first.run_id}"
    )
