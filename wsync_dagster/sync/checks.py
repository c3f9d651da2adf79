"""Asset checks on what each sync reports, returned with its materializations.

* ``preflight_count_matches_records_extracted`` (blocking): the rows Snowflake holds in the window, by
  the same predicate mParticle uses, equal the rows mParticle extracted. A difference means the data
  changed between the count and the run, or the window is not what we think: downstream should not
  trust the sync.
* ``records_mapped_equals_records_extracted`` (warning): every extracted row landed on a profile. Rows
  without any identity value cannot; the check names how many the pre-flight found, so a gap they
  explain is told apart from one they don't.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync import naming
from wsync_dagster.sync.windows import WindowCount

SHOWN = 20


def check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            naming.CHECK_PREFLIGHT_PARITY,
            asset=key,
            blocking=True,
            description="Rows in Snowflake for the window (pre-flight count) = mParticle's "
            "records_extracted.",
        ),
        dg.AssetCheckSpec(
            naming.CHECK_ROWS_MAPPED,
            asset=key,
            description="mParticle's records_mapped = records_extracted; rows without an identity "
            "value are counted and called out.",
        ),
    ]


def check_results(
    key: dg.AssetKey, synced: Sequence[tuple[WindowCount, PipelineRun]]
) -> Iterator[dg.AssetCheckResult]:
    """One result per check over the partitions (windows) synced in this run."""
    yield parity_check(key, synced)
    yield mapping_check(key, synced)


def parity_check(
    key: dg.AssetKey, synced: Sequence[tuple[WindowCount, PipelineRun]]
) -> dg.AssetCheckResult:
    """Blocking: every window's pre-flight count equals the rows mParticle extracted."""
    mismatched = [
        f"{c.window.key}: pre-flight {c.rows:,}, extracted {r.records_extracted or 0:,}"
        for c, r in synced
        if c.rows != (r.records_extracted or 0)
    ]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=naming.CHECK_PREFLIGHT_PARITY,
        passed=not mismatched,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if not mismatched
        else f"{len(mismatched)} window(s) differ; the data changed between count and run, or the "
        "window differs. Re-materialize to sync the current data.",
        metadata={
            "windows": len(synced),
            "preflight_rows": sum(c.rows for c, _ in synced),
            "records_extracted": _extracted(synced),
            "mismatched_windows": dg.MetadataValue.md(
                "\n".join(f"- {m}" for m in mismatched[:SHOWN]) or "none"
            ),
        },
    )


def mapping_check(
    key: dg.AssetKey, synced: Sequence[tuple[WindowCount, PipelineRun]]
) -> dg.AssetCheckResult:
    """Warning: every extracted row was mapped; rows without an identity value are called out."""
    return _mapping_result(
        key,
        _extracted(synced),
        sum(r.records_mapped or 0 for _, r in synced),
        sum(c.rows_without_identity for c, _ in synced),
    )


def _mapping_result(
    key: dg.AssetKey, extracted: int, mapped: int, without_identity: int | None
) -> dg.AssetCheckResult:
    """The mapping check; ``without_identity`` is None when the window could not be counted."""
    unmapped = extracted - mapped
    if unmapped == 0:
        description = None
    elif unmapped == without_identity:
        description = (
            f"{unmapped:,} extracted row(s) were not mapped: exactly the {without_identity:,} rows "
            "with no identity value (no customer id, e-mail, ...). Fill an identity column or "
            "filter them out of the model."
        )
    elif without_identity is None:
        description = (
            f"{unmapped:,} extracted row(s) were not mapped; how many rows have no identity value "
            "is not known (the window could not be counted in Snowflake)."
        )
    else:
        description = (
            f"{unmapped:,} extracted row(s) were not mapped, but only {without_identity:,} have no "
            "identity value; look at the run in mParticle."
        )
    metadata: dict[str, Any] = {"records_extracted": extracted, "records_mapped": mapped}
    if without_identity is not None:
        metadata["rows_without_identity"] = without_identity
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=naming.CHECK_ROWS_MAPPED,
        passed=unmapped == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def results_without_count(
    key: dg.AssetKey, run: PipelineRun, reason: str
) -> Iterator[dg.AssetCheckResult]:
    """The checks of a run whose window could not be counted in Snowflake after it ran.

    Dagster 1.13 has no "not evaluated" outcome for a declared check (leaving a check out fails
    the step), so parity is a failed WARN result that says it was not evaluated and why, with
    metadata ``evaluated: false``: never passed (nothing was compared), and not an ERROR, which
    would claim the counts differ and block downstream assets. The mapping check needs no count.
    """
    extracted = run.records_extracted or 0
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=naming.CHECK_PREFLIGHT_PARITY,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"not evaluated: {reason}",
        metadata={"evaluated": False, "windows": 1, "records_extracted": extracted},
    )
    yield _mapping_result(key, extracted, run.records_mapped or 0, None)


def _extracted(synced: Sequence[tuple[WindowCount, PipelineRun]]) -> int:
    return sum(r.records_extracted or 0 for _, r in synced)
