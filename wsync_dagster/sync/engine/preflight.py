"""Pre-flight: ask Snowflake what mParticle would see, and refuse what it would reject or truncate.

Runs the same wrapping mParticle runs (see docs/warehouse-sync-api.md), in two queries however many
windows are checked: the column discovery query (:func:`discover_columns`, then
:func:`check_columns`), then one grouped count with a conditional aggregate per window
(:func:`count_windows`); :func:`check_limit` gives the verdict. Nothing here talks to mParticle; a
violation raises :class:`PreflightError` before anything is sent.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snowflake.connector.constants import FIELD_ID_TO_NAME

from wsync_dagster.sync.engine.context import first_line
from wsync_dagster.sync.registry.cadences import CadenceName
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.sql import (
    IDENTITY_COLUMNS,
    columns_query,
    grouped_count_query,
    window_predicate,
)
from wsync_dagster.sync.registry.windows import Window, WindowCount

# Windows per grouped count query; a long backfill is covered in a handful of scans.
WINDOWS_PER_QUERY = 500
SHOWN_VIOLATIONS = 10


@dataclass(frozen=True)
class PreflightReport:
    sync: str
    limit: int
    columns: tuple[str, ...]
    identity_columns: tuple[str, ...]
    timestamp_column: str
    counts: tuple[WindowCount, ...]
    queries: int
    seconds: float
    # Snowflake's type of each column (same order as ``columns``), None where the driver gave none.
    column_types: tuple[str | None, ...] = ()
    # Windows recounted beside them for late rows (never held to the record limit), oldest first.
    recounts: tuple[WindowCount, ...] = ()

    def count_for(self, key: str) -> WindowCount:
        for count in self.counts:
            if count.window.key == key:
                return count
        raise KeyError(key)


@dataclass
class PreflightError(Exception):
    """mParticle would reject or truncate this sync. Nothing was sent to mParticle."""

    sync: str
    problems: list[str]
    counts: tuple[WindowCount, ...] = field(default=())

    def __str__(self) -> str:
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"Pre-flight refused sync '{self.sync}'; nothing was sent to mParticle:\n{lines}"


def _chunks(items: Sequence[Window], size: int) -> list[Sequence[Window]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class Columns:
    """What the column discovery found: every column, the identities and the load timestamp."""

    names: tuple[str, ...]
    identities: tuple[str, ...]
    timestamp: str
    types: tuple[str | None, ...] = ()


# The connector's type names that differ from the SQL type a model author reads in Snowflake.
_SQL_TYPE_NAMES = {"FIXED": "NUMBER", "REAL": "FLOAT"}


def column_type(description: Sequence[Any]) -> str | None:
    """The Snowflake type of one DB-API ``cursor.description`` entry, if the driver reports it."""
    code = description[1] if len(description) > 1 else None
    name = FIELD_ID_TO_NAME.get(code) if isinstance(code, int) else code
    if not isinstance(name, str) or not name:
        return None
    return _SQL_TYPE_NAMES.get(name, name)


def discover_columns(cursor: Any, spec: SyncSpec, max_columns: int | None = None) -> Columns:
    """Run the column discovery query; raise PreflightError if the model fails or is unusable."""
    try:
        cursor.execute(columns_query(spec.sql))
    except Exception as error:
        raise PreflightError(
            spec.name,
            [
                f"the model SQL fails in Snowflake ({first_line(error)}); mParticle would reject "
                f"the pipeline the same way. Fix sql of sync '{spec.name}' in the registry."
            ],
        ) from error
    described = tuple(cursor.description)
    found = check_columns(spec, tuple(d[0] for d in described), max_columns)
    return Columns(
        found.names, found.identities, found.timestamp, tuple(map(column_type, described))
    )


def check_columns(
    spec: SyncSpec, columns: tuple[str, ...], max_columns: int | None = None
) -> Columns:
    """The column count (at most ``max_columns``, default mParticle's), the load timestamp column
    and at least one identity column."""
    stamp = spec.load_timestamp
    allowed = Limits() if max_columns is None else Limits(max_columns=max_columns)
    problems: list[str] = []
    if len(columns) > allowed.max_columns:
        problems.append(
            f"the model returns {len(columns)} columns; {allowed.columns_owner()} allows "
            f"{allowed.max_columns}. Select fewer columns (every non-identity column becomes a "
            "user attribute)."
        )
    by_lower = {c.lower(): c for c in columns}
    timestamp_column = by_lower.get(stamp.column.lower())
    if timestamp_column is None:
        problems.append(
            f"the load timestamp column '{stamp.column}' is not among the model's columns "
            f"({', '.join(columns)}); select it, or fix load_timestamp.column."
        )
    identities = tuple(c for c in columns if c.lower() in IDENTITY_COLUMNS)
    if not identities:
        problems.append(
            "the model has no identity column, so no row could land on a profile; select at least "
            'one of customer_id, email, mpid, other, ... (aliased exactly, e.g. AS "email").'
        )
    if problems or timestamp_column is None:
        raise PreflightError(spec.name, problems)
    return Columns(columns, identities, timestamp_column)


def count_windows(
    cursor: Any, spec: SyncSpec, columns: Columns, windows: Sequence[Window]
) -> tuple[list[WindowCount], int]:
    """Rows (and rows without an identity) per window, by mParticle's predicate; (counts, queries).

    One grouped count query per :data:`WINDOWS_PER_QUERY` windows.
    """
    stamp = spec.load_timestamp

    def predicate(start: datetime, end: datetime) -> str:
        return window_predicate(
            columns.timestamp, stamp.type, start, end, stamp.time_zone, stamp.offset_seconds
        )

    counts: list[WindowCount] = []
    chunks = _chunks(windows, WINDOWS_PER_QUERY)
    for chunk in chunks:
        sql = grouped_count_query(
            spec.sql,
            [predicate(w.start, w.end) for w in chunk],
            predicate(min(w.start for w in chunk), max(w.end for w in chunk)),
            columns.identities,
        )
        try:
            row = cursor.execute(sql).fetchone()
        except Exception as error:
            raise PreflightError(
                spec.name,
                [
                    f"counting rows per window failed in Snowflake ({first_line(error)}); check "
                    f"that load_timestamp.type '{stamp.type}' matches column {columns.timestamp}."
                ],
            ) from error
        n = len(chunk)
        counts.extend(
            WindowCount(window, int(row[i] or 0), int(row[n + i] or 0))
            for i, window in enumerate(chunk)
        )
    return counts, len(chunks)


def check_limit(
    spec: SyncSpec, counts: Sequence[WindowCount], kind: CadenceName, limits: Limits
) -> None:
    """Raise PreflightError naming the windows holding more rows than ``kind``'s record limit."""
    limit = limits.record_limit(kind)
    over = [c for c in counts if c.rows > limit]
    if not over:
        return
    shown = [
        f"window {c.window.key} ({c.window.describe()}) holds {c.rows:,} rows; "
        f"{limits.records_text(kind)}: the run would fail"
        for c in over[:SHOWN_VIOLATIONS]
    ]
    if len(over) > SHOWN_VIOLATIONS:
        shown.append(f"... and {len(over) - SHOWN_VIOLATIONS} more windows over the limit")
    shown.append(
        "Fix: narrow the model (filter rows or sync only changed rows), or use a shorter "
        "cadence so each window holds fewer rows."
    )
    raise PreflightError(spec.name, shown, tuple(counts))


def run_preflight(
    cursor: Any,
    spec: SyncSpec,
    windows: Sequence[Window],
    *,
    limit_kind: CadenceName | None = None,
    record_limits: Mapping[CadenceName, int] | None = None,
    limits: Limits | None = None,
    recount: Sequence[Window] = (),
) -> PreflightReport:
    """Check ``spec`` over ``windows`` through a DB-API ``cursor``; raise PreflightError if refused.

    ``limit_kind`` is the cadence whose record limit applies (default: the spec's). ``limits`` are
    the registry's (default: mParticle's); ``record_limits`` overrides their records per cadence.
    ``recount`` are earlier windows (before ``windows``) counted in the same grouped query, for the
    late_rows check: more buckets, no extra query (unless the windows outgrow one query's
    :data:`WINDOWS_PER_QUERY`); they are reported apart and not held to the record limit.
    """
    if not windows:
        raise ValueError("run_preflight needs at least one window")
    started = time.monotonic()
    limits = limits or Limits()
    if record_limits:
        merged = {**limits.records_per_request, **record_limits}
        limits = limits.model_copy(update={"records_per_request": merged})
    kind = limit_kind or spec.schedule.interval
    limit = limits.record_limit(kind)
    columns = discover_columns(cursor, spec, limits.max_columns)
    counted, count_queries = count_windows(cursor, spec, columns, [*recount, *windows])
    recounts, counts = counted[: len(recount)], counted[len(recount) :]
    check_limit(spec, counts, kind, limits)
    return PreflightReport(
        sync=spec.name,
        limit=limit,
        columns=columns.names,
        identity_columns=columns.identities,
        timestamp_column=columns.timestamp,
        counts=tuple(counts),
        queries=1 + count_queries,
        seconds=time.monotonic() - started,
        column_types=columns.types,
        recounts=tuple(recounts),
    )
