"""What each check says, on numbers alone (the Dagster tier runs them for real)."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.assets import checks, naming
from wsync_dagster.sync.registry.windows import Window, WindowCount

KEY = dg.AssetKey(["mparticle", "t"])
T0 = datetime(2026, 11, 28, tzinfo=UTC)


def _run(extracted: int, mapped: int) -> PipelineRun:
    return PipelineRun.model_validate(
        {
            "pipeline_run_id": 7, "id": "p", "logical_date": T0, "pipeline_run_state": "success",
            "records_extracted": extracted, "records_mapped": mapped,
        }
    )  # fmt: skip


def test_rows_without_identity_explain_unmapped_rows_and_are_not_a_warning() -> None:
    verdict = checks.mapping_verdict(extracted=100, mapped=96, without_identity=4)
    assert verdict.passed and verdict.severity == dg.AssetCheckSeverity.WARN
    assert verdict.metadata["rows_without_identity"] == 4
    assert verdict.metadata["unexplained_unmapped"] == 0
    assert "all explained" in (verdict.description or "")


def test_loss_beyond_the_rows_without_identity_warns_with_the_unexplained_number() -> None:
    verdict = checks.mapping_verdict(extracted=100, mapped=90, without_identity=4)
    assert not verdict.passed
    assert verdict.metadata["unexplained_unmapped"] == 6
    assert (verdict.description or "").startswith("6 extracted row(s) were not mapped")


def test_unmapped_rows_warn_when_the_rows_without_identity_were_not_counted() -> None:
    verdict = checks.mapping_verdict(extracted=10, mapped=9, without_identity=None)
    assert not verdict.passed and "rows_without_identity" not in verdict.metadata
    assert checks.mapping_verdict(extracted=10, mapped=10, without_identity=None).passed


def test_volume_warns_on_a_window_that_synced_nothing_even_without_history() -> None:
    verdict = checks.volume_verdict(0, ())
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.WARN
    assert "0 rows" in (verdict.description or "")


def test_volume_warns_under_a_tenth_of_the_recent_median() -> None:
    history = [100, 120, 80, 110, 90]  # median 100
    collapsed = checks.volume_verdict(9, history)
    assert not collapsed.passed and "under 10%" in (collapsed.description or "")
    assert collapsed.metadata["recent_median_rows"] == 100.0
    assert checks.volume_verdict(10, history).passed  # at the floor: not "far fewer"
    assert checks.volume_verdict(1, [100, 100]).passed  # too little history to compare with


def test_volume_compares_with_the_last_24_windows_only() -> None:
    history = [10_000] * 10 + [100] * checks.VOLUME_HISTORY
    verdict = checks.volume_verdict(50, history)
    assert verdict.passed and verdict.metadata["windows_compared"] == checks.VOLUME_HISTORY


def test_each_partition_gets_every_check_with_its_partition_and_parity_blocks() -> None:
    window = Window("2026-11-28", T0, T0 + timedelta(days=1))
    count = WindowCount(window, rows=100, rows_without_identity=3)
    found = checks.partition_evaluations(KEY, count, _run(100, 97), [90, 100, 110])
    assert [e.check_name for e in found] == [
        naming.CHECK_PREFLIGHT_PARITY, naming.CHECK_ROWS_MAPPED, naming.CHECK_ROW_VOLUME,
    ]  # fmt: skip
    assert all(e.partition == "2026-11-28" and e.passed for e in found)
    assert [e.blocking for e in found] == [True, False, False]
    mismatch = checks.partition_evaluations(KEY, count, _run(101, 98), [])[0]
    assert not mismatch.passed and mismatch.severity == dg.AssetCheckSeverity.ERROR


def test_the_not_evaluated_parity_result_still_comes_with_the_other_checks() -> None:
    results = list(checks.results_without_count(KEY, _run(5, 5), "Snowflake was unreachable"))
    by_name = {r.check_name: r for r in results}
    assert set(by_name) == {c.name for c in checks.check_specs(KEY)}
    parity = by_name[naming.CHECK_PREFLIGHT_PARITY]
    assert not parity.passed and parity.severity == dg.AssetCheckSeverity.WARN
    assert parity.metadata["evaluated"].value is False
    assert by_name[naming.CHECK_ROW_VOLUME].passed


def test_earlier_rows_come_from_the_latest_materialization_of_each_earlier_partition() -> None:
    instance = dg.DagsterInstance.ephemeral()
    for partition, rows in [
        ("2026-11-25", 5),
        ("2026-11-26", 7),
        ("2026-11-25", 6),
        ("2026-11-28", 9),
    ]:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                KEY, partition=partition, metadata={"mparticle/records_extracted": rows}
            )
        )
    instance.report_runless_asset_event(dg.AssetMaterialization(KEY, partition="2026-11-24"))
    assert checks.earlier_rows(instance, KEY, "2026-11-27") == [6, 7]
    assert checks.earlier_rows(instance, dg.AssetKey("other"), "2026-11-27") == []
