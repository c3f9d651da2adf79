"""The ``late_rows`` check: rows stamped into a window after mParticle ran it, which it never sends.

mParticle runs each interval once, so a row that lands in Snowflake later with a load timestamp
inside an already-synced window (a retried upstream load, a backfilled dbt model, an ETL whose clock
lags) is never sent, and materializing the partition again only re-reports the same run. For a
synced window, the check compares the rows Snowflake holds in the window *now* (the pre-flight's
count, mParticle's inclusive predicate) with the ``records_extracted`` of the run on record: more
rows now fails it (WARN), naming the window, how many rows are late and how to re-send
(:mod:`wsync_dagster.sync.engine.resend`). A window recounted later that still matches passes.

It costs no query of its own: each materialization's grouped count also covers the
``SyncSpec.late_row_windows`` windows before the ones being synced (more buckets in the same query),
and so does the runs sensor's count. The run on record is each partition's latest materialization
in Dagster's instance (:func:`latest_records`, one query). Counts cannot see a value corrected in
place: the check says so, and a re-send is how a correction reaches mParticle.

Run tags (docs/metadata.md) choose what a materialization of an interval sync does:

* none: sync (attach to mParticle's runs), and check late rows on the way;
* ``wsync/resend=true``: send the windows again (:mod:`wsync_dagster.sync.assets.resending`);
* ``wsync/check_late_rows=true``: only recount the windows and judge ``late_rows`` for each; nothing
  is sent to mParticle and nothing is materialized (a range check, from the UI's launch or backfill
  dialog).
"""

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.checks import CORRECTIONS, Verdict
from wsync_dagster.sync.assets.metadata import MParticle, Preflight, RunTags, Wsync
from wsync_dagster.sync.engine.context import SyncFailure
from wsync_dagster.sync.engine.resend import RESEND_TAG_TEXT
from wsync_dagster.sync.registry.windows import Window, WindowCount

# Materializations fetched per partition when looking for each partition's latest one.
RECORDS_PER_PARTITION = 10


class Mode(enum.Enum):
    """What a materialization of an interval sync does, chosen by its run tags."""

    SYNC = "sync"
    RESEND = "resend"
    CHECK = "check"


def _flag(tags: Mapping[str, str], key: str) -> bool:
    raw = tags.get(key)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise SyncFailure(
            f"Run tag {key} must be true or false, not {raw!r}. Set {key}=true on the run (in the "
            "launch or backfill dialog's tags), or remove it. Nothing was sent to mParticle."
        )
    return value == "true"


def mode_of(tags: Mapping[str, str], partitioned: bool = True) -> Mode:
    """The mode the run tags choose; contradictory or malformed tags are refused."""
    resend, check = _flag(tags, RunTags.RESEND), _flag(tags, RunTags.CHECK_LATE_ROWS)
    if resend and check:
        raise SyncFailure(
            f"Run tags {RunTags.RESEND} and {RunTags.CHECK_LATE_ROWS} are both true: a run either "
            "re-sends its windows or only checks them. Keep one. Nothing was sent to mParticle."
        )
    if (resend or check) and not partitioned:
        tag = RunTags.RESEND if resend else RunTags.CHECK_LATE_ROWS
        raise SyncFailure(
            f"Run tag {tag} applies to the partitions of interval syncs. An on_demand sync's next "
            "materialization already sends everything since its last successful run; a once sync "
            "loads its fixed range. Remove the tag. Nothing was sent to mParticle."
        )
    return Mode.RESEND if resend else Mode.CHECK if check else Mode.SYNC


@dataclass(frozen=True)
class Recorded:
    """A partition's latest materialization in Dagster's instance: the run on record."""

    partition: str
    run_id: int | None
    records_extracted: int | None
    records_mapped: int | None
    event_batches: int | None
    resend_pipeline_id: str | None
    resend_of_run_id: int | None

    def is_newer_resend(self, run_id: int) -> bool:
        """Whether this record is a re-send made after run ``run_id`` (run ids only grow)."""
        return (
            self.resend_of_run_id is not None and self.run_id is not None and self.run_id > run_id
        )


def latest_records(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Iterable[str]
) -> dict[str, Recorded]:
    """Each partition's latest materialization (of those found): one query on the instance,
    newest first, at most :data:`RECORDS_PER_PARTITION` per partition asked for."""
    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    found = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=wanted),
        limit=RECORDS_PER_PARTITION * len(wanted),
    ).records
    latest: dict[str, Recorded] = {}
    for record in found:  # newest first: the first one seen of a partition is its latest
        partition, materialization = record.partition_key, record.asset_materialization
        if partition is None or materialization is None or partition in latest:
            continue
        metadata = materialization.metadata
        latest[partition] = Recorded(
            partition,
            MParticle.RUN_ID.read(metadata),
            MParticle.RECORDS_EXTRACTED.read(metadata),
            MParticle.RECORDS_MAPPED.read(metadata),
            MParticle.EVENT_BATCHES.read(metadata),
            Wsync.RESEND_PIPELINE_ID.read(metadata),
            Wsync.RESEND_OF_RUN_ID.read(metadata),
        )
    return latest


def windows_before(
    partitions: dg.TimeWindowPartitionsDefinition, first: Window, count: int
) -> list[Window]:
    """The ``count`` partitions' windows just before ``first`` (fewer at the grid's start),
    oldest first."""
    found: list[Window] = []
    start = first.start
    while len(found) < count:
        previous = partitions.get_prev_partition_window(start)
        if previous is None:
            break
        key = partitions.get_partition_key_for_timestamp(previous.start.timestamp())
        found.append(Window(key, previous.start, previous.end))
        start = previous.start
    return found[::-1]


def late_rows_verdict(count: WindowCount, run_id: int | None, extracted: int) -> Verdict:
    """WARN when Snowflake holds more rows in ``count``'s window than run ``run_id`` extracted."""
    key, rows = count.window.key, count.rows
    late = max(rows - extracted, 0)
    run = f"run {run_id}" if run_id is not None else "the run on record"
    metadata: dict[str, Any] = {
        Wsync.LATE_ROWS: late,
        Preflight.ROWS: rows,
        MParticle.RECORDS_EXTRACTED: extracted,
    }
    if run_id is not None:
        metadata[MParticle.RUN_ID] = run_id
    if late:
        description = (
            f"{key} ({count.window.describe()}): Snowflake holds {rows:,} rows in the window now, "
            f"{late:,} more than mParticle {run} extracted ({extracted:,}). Rows stamped into a "
            "window after it ran never reach mParticle by themselves, and materializing the "
            f"partition again only re-reports {run}. Re-send the window: materialize partition "
            f"{key} with {RESEND_TAG_TEXT}. {CORRECTIONS}"
        )
    else:
        description = (
            f"{key}: {rows:,} rows in Snowflake now, {extracted:,} extracted by {run}: no late "
            f"rows. {CORRECTIONS}"
        )
    return Verdict(
        naming.CHECK_LATE_ROWS,
        passed=late == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def recount_evaluations(
    key: dg.AssetKey, counts: Sequence[WindowCount], records: Mapping[str, Recorded]
) -> Iterator[dg.AssetCheckEvaluation]:
    """``late_rows`` of each recounted window that has a run on record (the others never synced:
    nothing to compare with)."""
    for count in counts:
        record = records.get(count.window.key)
        if record is None or record.records_extracted is None:
            continue
        verdict = late_rows_verdict(count, record.run_id, record.records_extracted)
        yield verdict.evaluation(key, count.window.key)


def late_rows_total(evaluations: Iterable[dg.AssetCheckEvaluation]) -> tuple[int, int]:
    """(windows with late rows, late rows in all) among ``evaluations``."""
    windows = rows = 0
    for evaluation in evaluations:
        late = Wsync.LATE_ROWS.read(evaluation.metadata) or 0
        if late:
            windows, rows = windows + 1, rows + late
    return windows, rows
