"""Every metadata key, asset tag and run tag the project writes or reads, in one table.

A :class:`Key` is the key itself (a ``str``, so it goes straight into a metadata dict) plus what it
means and the type of its value; :meth:`Key.read` reads it back from stored metadata, unwrapping
Dagster's ``MetadataValue``. Nothing else in the package spells a key: the runs sensor's dedup reads
:data:`MParticle.RUN_ID` through this module, and ``docs/metadata.md`` lists the same table (a test
keeps the two equal).

Namespaces:

* ``mparticle/``: what mParticle said about a run;
* ``preflight/``: what Snowflake said when the pre-flight counted the run's window;
* ``wsync/``: what this project decided or did (step counters, repairs, re-sends, recording);
* ``dagster/``: keys Dagster itself gives a meaning to (row counts, column schema, URI, ...);
* the window bounds (``window_start``, ``window_end``) carry no namespace, as they always have.
"""

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Key(str, Generic[T]):
    """One metadata key (or tag) and what it means; compares and hashes as the plain string."""

    meaning: str
    kind: type

    def __new__(cls, name: str, meaning: str, kind: type = object) -> "Key[T]":
        key = super().__new__(cls, name)
        key.meaning = meaning
        key.kind = kind
        return key

    def read(self, metadata: Mapping[str, Any]) -> T | None:
        """This key's value in ``metadata`` (a MetadataValue unwrapped), None when absent or of
        another type than the key's."""
        value = metadata.get(self)
        raw = getattr(value, "value", value)
        return raw if isinstance(raw, self.kind) else None


class _Namespace:
    """A group of keys; iterating gives them in declaration order."""

    @classmethod
    def declared(cls) -> Iterator[Key[Any]]:
        for value in vars(cls).values():
            if isinstance(value, Key):
                yield value


class MParticle(_Namespace):
    """What mParticle said about the run a materialization records."""

    PIPELINE_ID = Key[str]("mparticle/pipeline_id", "the pipeline that ran", str)
    RUN_ID = Key[int](
        "mparticle/run_id",
        "mParticle's run id; the runs sensor's dedup key (never recorded twice)",
        int,
    )
    LOGICAL_DATE = Key[float](
        "mparticle/logical_date", "the run's logical date (= the partition)", float
    )
    RECORDS_EXTRACTED = Key[int]("mparticle/records_extracted", "rows mParticle read", int)
    RECORDS_MAPPED = Key[int]("mparticle/records_mapped", "rows that landed on a profile", int)
    EVENT_BATCHES = Key[int]("mparticle/event_batches_generated", "event batches sent", int)
    RUN_TYPE = Key[str]("mparticle/run_type", "scheduled (on the grid) or manual (a trigger)", str)
    RUN_SECONDS = Key[float]("mparticle/run_seconds", "the run's own duration, when known", float)
    RUN_STATE = Key[str]("mparticle/run_state", "the run's state (on a failed run's check)", str)
    FAULTED_REASON = Key[str](
        "mparticle/faulted_reason", "why the run failed, as far as mParticle says", str
    )


class WindowKeys(_Namespace):
    """The window of data the run read (mParticle's ``data_interval_start`` .. ``_end``)."""

    START = Key[float]("window_start", "first instant of the window (inclusive)", float)
    END = Key[float]("window_end", "last instant of the window (inclusive)", float)


class Preflight(_Namespace):
    """What the pre-flight found in Snowflake, with mParticle's own predicate."""

    ROWS = Key[int]("preflight/rows", "rows Snowflake holds in the window", int)
    ROWS_WITHOUT_IDENTITY = Key[int](
        "preflight/rows_without_identity", "rows of the window with no identity value at all", int
    )
    QUERIES = Key[int]("preflight/queries", "Snowflake queries the step ran", int)
    NOTE = Key[str]("preflight/note", "why the window could not be counted", str)


class Wsync(_Namespace):
    """What this project decided or did."""

    # a materialization step's own counters (one observation per step)
    RECONCILE = Key[str]("wsync/reconcile", "what reconcile did to each mParticle object", str)
    API_REQUESTS = Key[int]("wsync/api_requests", "mParticle API requests the step sent", int)
    TOKEN_REQUESTS = Key[int]("wsync/token_requests", "OAuth tokens the step fetched", int)
    RUN_POLLS = Key[int]("wsync/run_polls", "run listings while waiting", int)
    PARTITIONS_IN_RUN = Key[int]("wsync/partitions_in_run", "partitions the run covered", int)
    # on a materialization
    ATTACHED = Key[bool](
        "wsync/attached_to_existing_run", "the run was in flight already (not triggered)", bool
    )
    REPAIR_PIPELINE_ID = Key[str](
        "wsync/repair_pipeline_id", "the one-off pipeline that repaired a failed window", str
    )
    REPAIR_OF_RUN_ID = Key[int]("wsync/repair_of_run_id", "the failed run a repair replaced", int)
    RESEND_PIPELINE_ID = Key[str](
        "wsync/resend_pipeline_id",
        "the one-off pipeline that re-sent the window (deleted once its run ended)",
        str,
    )
    RESEND_OF_RUN_ID = Key[int](
        "wsync/resend_of_run_id", "the run a re-send replaced as the partition's record", int
    )
    RE_REPORTED = Key[bool](
        "wsync/re_reported", "the run was on record already: reported again, nothing sent", bool
    )
    RECORDED_BY = Key[str](
        "wsync/recorded_by", "the sensor that recorded the run (absent: a Dagster run did)", str
    )
    # on a late_rows check evaluation (beside preflight/rows and the run's mparticle/ keys)
    LATE_ROWS = Key[int](
        "wsync/late_rows", "rows Snowflake holds in a synced window beyond what its run read", int
    )
    DRIFT = Key[str](
        "wsync/drift",
        "fields of the sync's mParticle objects that differ from the registry (on matches_registry, "
        "and on a run that started after the drift sensor saw them differ)",
        str,
    )
    DRIFT_SEEN_AT = Key[float](
        "wsync/drift_seen_at",
        "when (mParticle's clock) the drift sensor first saw the sync drifted (on matches_registry)",
        float,
    )
    # on the asset's definition (spec metadata)
    PIPELINE_ID = Key[str]("wsync/pipeline_id", "the sync's pipeline id", str)
    DATA_MODEL_ID = Key[str]("wsync/data_model_id", "the sync's data model id", str)
    SCHEDULE = Key[str]("wsync/schedule", "the sync's cadence", str)
    SCHEDULE_START = Key[float]("wsync/schedule_start", "the start of its grid", float)
    LOAD_TIMESTAMP = Key[str]("wsync/load_timestamp", "the load timestamp column and type", str)
    SOURCE_TABLES = Key[str]("wsync/source_tables", "the Snowflake tables its SQL reads", str)
    SQL = Key[str]("wsync/sql", "the data model's SQL", str)
    CRON = Key[str](
        "wsync/cron", "the cron Dagster materializes an on_demand sync on (UTC), if any", str
    )


class DagsterKeys(_Namespace):
    """Keys Dagster gives a meaning to (the UI shows them in their own places)."""

    PARTITION_ROW_COUNT = Key[int](
        "dagster/partition_row_count", "records mapped, for a partition", int
    )
    ROW_COUNT = Key[int]("dagster/row_count", "records mapped, for an unpartitioned sync", int)
    COLUMN_SCHEMA = Key[Any]("dagster/column_schema", "the model's columns, each with its role")
    COLUMN_LINEAGE = Key[Any](
        "dagster/column_lineage", "each synced column -> the source table column(s) it comes from"
    )
    URI = Key[str]("dagster/uri", "mparticle://warehouse-sync/pipelines/<pipeline id>", str)
    CODE_REFERENCES = Key[Any]("dagster/code_references", "the sync's entry in its defs.yaml")
    TABLE_NAME = Key[str]("dagster/table_name", "a source table's DATABASE.SCHEMA.TABLE", str)


class ColumnTags(_Namespace):
    """Tags on each column of ``dagster/column_schema``."""

    ROLE = Key[str]("wsync/role", "identity, attribute or load_timestamp", str)
    IDENTITY = Key[str]("wsync/identity", "user or device (identity columns only)", str)


class AssetTags(_Namespace):
    """Tags on every sync asset (beside the registry's own ``tags``)."""

    SCHEDULE = Key[str]("wsync/schedule", "the sync's cadence", str)
    ENVIRONMENT = Key[str]("wsync/environment", "development or production", str)
    PIPELINE = Key[str]("wsync/pipeline", "the sync's pipeline id", str)


class RunTags(_Namespace):
    """Dagster run tags the project sets or reads."""

    PARTITION = Key[str]("dagster/partition", "the one partition of a run", str)
    RANGE_START = Key[str](
        "dagster/asset_partition_range_start", "first partition of a single-run backfill", str
    )
    RANGE_END = Key[str]("dagster/asset_partition_range_end", "last partition of that run", str)
    RESEND = Key[str](
        "wsync/resend", "true: send the partitions' windows again, even if they synced", str
    )
    CHECK_LATE_ROWS = Key[str](
        "wsync/check_late_rows",
        "true: only recount the partitions for late rows; nothing is sent or materialized",
        str,
    )
    CRON_TICK = Key[str](
        "wsync/cron_tick", "the cron tick (UTC) a scheduled on_demand run was requested for", str
    )


NAMESPACES: tuple[type[_Namespace], ...] = (
    MParticle, WindowKeys, Preflight, Wsync, DagsterKeys, ColumnTags, AssetTags, RunTags,
)  # fmt: skip
