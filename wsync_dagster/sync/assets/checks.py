"""Asset checks on what each sync reports, returned with its materializations.

* ``preflight_count_matches_records_extracted`` (blocking, error): the rows Snowflake holds in the
  window, by the same predicate mParticle uses, equal the rows mParticle extracted. A difference
  means the data changed between the count and the run, or the window is not what we think:
  downstream should not trust the sync.
* ``records_mapped_equals_records_extracted`` (warning): every extracted row landed on a profile,
  except the rows the pre-flight counted with no identity value at all (mParticle cannot resolve a
  profile for them). Those are expected and shown as metadata; only a loss they do not explain
  (mapped < extracted - rows without identity) warns.
* ``row_volume`` (warning): the window synced rows, and not far fewer than the recent windows:
  a warning when it extracted 0 rows, or fewer than :data:`VOLUME_FLOOR` of the median of the
  :data:`VOLUME_HISTORY` windows before it (at least :data:`VOLUME_MIN_HISTORY` of them). The
  windows before it are the earlier windows counted by the same pre-flight, after the latest
  materializations of earlier partitions recorded in Dagster's instance (one query per run). An
  unpartitioned sync's windows differ in length, so only 0 rows warns there.
* ``late_rows`` (warning, interval syncs only): a synced window holds no more rows in Snowflake
  now than its run on record extracted; built in :mod:`wsync_dagster.sync.assets.late_rows`, which
  also judges the windows recounted before the ones a run syncs.

A partitioned asset's checks are partitioned too: each synced partition gets its own evaluation of
every check (:func:`partition_evaluations`), so Dagster's check history shows one result per
partition. An unpartitioned asset gets one result per check (:func:`check_results`).
"""

import statistics
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.metadata import MParticle
from wsync_dagster.sync.engine.resend import RESEND_TAG_TEXT
from wsync_dagster.sync.registry.windows import WindowCount

SHOWN = 20
RESEND_ADVICE = (
    f"Materializing it again only re-reports the same run; to send the window's current rows, "
    f"re-send it: materialize the partition with {RESEND_TAG_TEXT}."
)
UNPARTITIONED_ADVICE = (
    "Materializing again does not send this window's rows again: an on_demand run starts where "
    "the last successful one ended, and a once sync loads its range once."
)
CORRECTIONS = (
    "Counts cannot see a value corrected in place: a re-send is how a correction reaches mParticle."
)
LATE_ROWS_DESCRIPTION = (
    "Rows Snowflake holds in a synced window now, by mParticle's predicate, are no more than the "
    "run on record extracted; more are late rows, which mParticle never sends by itself: re-send "
    f"the window ({RESEND_TAG_TEXT}). {CORRECTIONS} (see wsync_dagster/sync/assets/late_rows.py)"
)
VOLUME_HISTORY = 24  # windows compared with
VOLUME_MIN_HISTORY = 3  # fewer earlier windows than this: only 0 rows warns
VOLUME_FLOOR = 0.10  # a window under this share of the recent median warns


def check_specs(
    key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None = None
) -> list[dg.AssetCheckSpec]:
    """The sync's checks; partitioned like the asset, so each partition has its own results."""
    specs = [
        (
            naming.CHECK_PREFLIGHT_PARITY,
            True,
            "Rows in Snowflake for the window (pre-flight count) = mParticle's records_extracted.",
        ),
        (
            naming.CHECK_ROWS_MAPPED,
            False,
            "mParticle's records_mapped = records_extracted, less the rows the pre-flight found "
            "with no identity value (shown, but expected).",
        ),
        (
            naming.CHECK_ROW_VOLUME,
            False,
            f"The window synced rows: warns on 0 rows, or on fewer than {VOLUME_FLOOR:.0%} of the "
            f"median of the {VOLUME_HISTORY} windows before it.",
        ),
    ]
    if partitions_def is not None:  # interval syncs: rows that arrive after their window ran
        specs.append((naming.CHECK_LATE_ROWS, False, LATE_ROWS_DESCRIPTION))
    with warnings.catch_warnings():
        # partitioned check specs are a preview feature of Dagster 1.13; they are what makes the
        # UI's check history show one result per partition
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name, asset=key, blocking=blocking, description=text, partitions_def=partitions_def
            )
            for name, blocking, text in specs
        ]


@dataclass(frozen=True)
class Verdict:
    """One check's outcome, before it is attached to an asset (and maybe a partition)."""

    name: str
    passed: bool
    severity: dg.AssetCheckSeverity
    description: str | None
    metadata: dict[str, Any]

    def _fields(self, key: dg.AssetKey) -> dict[str, Any]:
        return {
            "asset_key": key,
            "check_name": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "description": self.description,
            "metadata": self.metadata,
        }

    def result(self, key: dg.AssetKey) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(**self._fields(key))

    def evaluation(self, key: dg.AssetKey, partition: str | None = None) -> dg.AssetCheckEvaluation:
        """This verdict as an evaluation (of one partition, or of an unpartitioned check); only the
        parity check blocks."""
        blocking = self.name == naming.CHECK_PREFLIGHT_PARITY
        return dg.AssetCheckEvaluation(**self._fields(key), blocking=blocking, partition=partition)


def check_results(
    key: dg.AssetKey,
    synced: Sequence[tuple[WindowCount, PipelineRun]],
) -> Iterator[dg.AssetCheckResult]:
    """One result per check over the windows synced (an unpartitioned asset's one window)."""
    yield parity_verdict(synced, partitioned=False).result(key)
    yield mapping_verdict(
        _extracted(synced),
        sum(r.records_mapped or 0 for _, r in synced),
        sum(c.rows_without_identity for c, _ in synced),
    ).result(key)
    yield volume_verdict(_extracted(synced), ()).result(key)


def partition_evaluations(
    key: dg.AssetKey, count: WindowCount, run: PipelineRun, history: Sequence[int]
) -> list[dg.AssetCheckEvaluation]:
    """Every check's evaluation of one synced partition; ``history`` = rows of the windows before
    it, oldest first."""
    extracted = run.records_extracted or 0
    verdicts = (
        parity_verdict([(count, run)]),
        mapping_verdict(extracted, run.records_mapped or 0, count.rows_without_identity),
        volume_verdict(extracted, history),
    )
    return [v.evaluation(key, count.window.key) for v in verdicts]


def parity_verdict(
    synced: Sequence[tuple[WindowCount, PipelineRun]], *, partitioned: bool = True
) -> Verdict:
    """Blocking: every window's pre-flight count equals the rows mParticle extracted.

    The advice on a difference: re-send a partition's window (materializing it again only
    re-reports its run); an unpartitioned sync has no window to re-send.
    """
    advice = f"{RESEND_ADVICE} {CORRECTIONS}" if partitioned else UNPARTITIONED_ADVICE
    mismatched = [
        f"{c.window.key}: pre-flight {c.rows:,}, extracted {r.records_extracted or 0:,}"
        for c, r in synced
        if c.rows != (r.records_extracted or 0)
    ]
    return Verdict(
        naming.CHECK_PREFLIGHT_PARITY,
        passed=not mismatched,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if not mismatched
        else f"{len(mismatched)} window(s) differ; the data changed between count and run, or the "
        f"window differs. {advice}",
        metadata={
            "windows": len(synced),
            "preflight_rows": sum(c.rows for c, _ in synced),
            "records_extracted": _extracted(synced),
            "mismatched_windows": dg.MetadataValue.md(
                "\n".join(f"- {m}" for m in mismatched[:SHOWN]) or "none"
            ),
        },
    )


def mapping_verdict(extracted: int, mapped: int, without_identity: int | None) -> Verdict:
    """Warning on unexplained loss only: ``without_identity`` is None when not counted."""
    unmapped = extracted - mapped
    explained = min(unmapped, without_identity or 0) if unmapped > 0 else 0
    unexplained = unmapped - explained
    if unmapped <= 0:
        description = None
    elif unexplained == 0:
        description = (
            f"{unmapped:,} extracted row(s) were not mapped, all explained by rows with no "
            "identity value (no customer id, e-mail, ...): expected, not a warning. Fill an "
            "identity column or filter them out of the model to send them."
        )
    elif without_identity is None:
        description = (
            f"{unmapped:,} extracted row(s) were not mapped; how many rows have no identity value "
            "is not known (the window could not be counted in Snowflake)."
        )
    else:
        description = (
            f"{unexplained:,} extracted row(s) were not mapped that rows with no identity value "
            f"do not explain ({unmapped:,} not mapped, {without_identity:,} with no identity); "
            "look at the run in mParticle."
        )
    metadata: dict[str, Any] = {
        "records_extracted": extracted,
        "records_mapped": mapped,
        "unexplained_unmapped": unexplained,
    }
    if without_identity is not None:
        metadata["rows_without_identity"] = without_identity
    return Verdict(
        naming.CHECK_ROWS_MAPPED,
        passed=unexplained <= 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def volume_verdict(rows: int, history: Sequence[int]) -> Verdict:
    """Warning: 0 rows, or under :data:`VOLUME_FLOOR` of the recent windows' median."""
    recent = list(history)[-VOLUME_HISTORY:]
    metadata: dict[str, Any] = {"rows": rows, "windows_compared": len(recent)}
    median = statistics.median(recent) if len(recent) >= VOLUME_MIN_HISTORY else None
    if median is not None:
        metadata["recent_median_rows"] = float(median)
    if rows == 0:
        description = (
            "the window synced 0 rows: a successful sync of nothing. Check that the model's query "
            "and its load timestamp still select the window's data."
        )
    elif median is not None and rows < VOLUME_FLOOR * median:
        description = (
            f"the window synced {rows:,} rows, under {VOLUME_FLOOR:.0%} of the median "
            f"({median:,.0f}) of the {len(recent)} windows before it: check the upstream load."
        )
    else:
        description = None
    return Verdict(
        naming.CHECK_ROW_VOLUME,
        passed=description is None,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def earlier_rows(instance: dg.DagsterInstance, key: dg.AssetKey, before: str) -> list[int]:
    """Rows extracted in the latest materializations of partitions before ``before``, oldest
    first (at most :data:`VOLUME_HISTORY`): one query on Dagster's instance.

    Time-window partition keys sort as their dates do, so "before" is a string comparison."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key), limit=3 * VOLUME_HISTORY
    ).records
    latest: dict[str, int] = {}
    for record in records:  # newest first: the first one seen of a partition is its latest
        partition = record.partition_key
        materialization = record.asset_materialization
        if partition is None or partition >= before or partition in latest:
            continue
        extracted = (
            MParticle.RECORDS_EXTRACTED.read(materialization.metadata) if materialization else None
        )
        if extracted is not None:
            latest[partition] = extracted
    return [latest[p] for p in sorted(latest)][-VOLUME_HISTORY:]


def results_without_count(
    key: dg.AssetKey, run: PipelineRun, reason: str
) -> Iterator[dg.AssetCheckResult]:
    """The checks of a run whose window could not be counted in Snowflake after it ran.

    Dagster 1.13 has no "not evaluated" outcome for a declared check (leaving a check out fails
    the step), so parity is a failed WARN result that says it was not evaluated and why, with
    metadata ``evaluated: false``: never passed (nothing was compared), and not an ERROR, which
    would claim the counts differ and block downstream assets. The other checks need no count.
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
    yield mapping_verdict(extracted, run.records_mapped or 0, None).result(key)
    yield volume_verdict(extracted, ()).result(key)


def _extracted(synced: Sequence[tuple[WindowCount, PipelineRun]]) -> int:
    return sum(r.records_extracted or 0 for _, r in synced)
