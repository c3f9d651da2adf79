"""Pre-flight: ask Snowflake what mParticle would see, and refuse what it would reject or truncate.

Runs the same wrapping mParticle runs (spec §3), in two queries however many windows are checked: the
column discovery query, then one grouped count with a conditional aggregate per window. Nothing here
talks to mParticle; a violation raises :class:`PreflightError` before anything is sent.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wsync_dagster.sync import limits
from wsync_dagster.sync.specs import SyncSpec
from wsync_dagster.sync.sql import (
    IDENTITY_COLUMNS,
    columns_query,
    grouped_count_query,
    window_predicate,
)

# Windows per grouped count query; a long backfill is covered in a handful of scans.
WINDOWS_PER_QUERY = 500
SHOWN_VIOLATIONS = 10


@dataclass(frozen=True)
class Window:
    """One sync window: a partition (key = mParticle logical date) or an on-demand/once range."""

    key: str
    start: datetime
    end: datetime

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M:%SZ} .. {self.end:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class WindowCount:
    window: Window
    rows: int
    rows_without_identity: int


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


def run_preflight(
    cursor: Any,
    spec: SyncSpec,
    windows: Sequence[Window],
    *,
    limit_kind: limits.Schedule | None = None,
) -> PreflightReport:
    """Check ``spec`` over ``windows`` through a DB-API ``cursor``; raise PreflightError if refused."""
    if not windows:
        raise ValueError("run_preflight needs at least one window")
    started = time.monotonic()
    limit = limits.RECORDS_PER_REQUEST[limit_kind or spec.schedule.interval]
    stamp = spec.load_timestamp
    queries = 0

    try:
        cursor.execute(columns_query(spec.sql))
        queries += 1
    except Exception as error:
        raise PreflightError(
            spec.name,
            [
                f"the model SQL fails in Snowflake ({_first_line(error)}); mParticle would reject "
                f"the pipeline the same way. Fix sql of sync '{spec.name}' in the registry."
            ],
        ) from error
    columns = tuple(d[0] for d in cursor.description)

    problems: list[str] = []
    if len(columns) > limits.MAX_COLUMNS:
        problems.append(
            f"the model returns {len(columns)} columns; mParticle allows {limits.MAX_COLUMNS}. "
            "Select fewer columns (every non-identity column becomes a user attribute)."
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

    def predicate(start: datetime, end: datetime) -> str:
        return window_predicate(
            timestamp_column, stamp.type, start, end, stamp.time_zone, stamp.offset_seconds
        )

    counts: list[WindowCount] = []
    for chunk in _chunks(windows, WINDOWS_PER_QUERY):
        sql = grouped_count_query(
            spec.sql,
            [predicate(w.start, w.end) for w in chunk],
            predicate(min(w.start for w in chunk), max(w.end for w in chunk)),
            identities,
        )
        try:
            row = cursor.execute(sql).fetchone()
            queries += 1
        except Exception as error:
            raise PreflightError(
                spec.name,
                [
                    f"counting rows per window failed in Snowflake ({_first_line(error)}); check "
                    f"that load_timestamp.type '{stamp.type}' matches column {timestamp_column}."
                ],
            ) from error
        n = len(chunk)
        counts.extend(
            WindowCount(window, int(row[i] or 0), int(row[n + i] or 0))
            for i, window in enumerate(chunk)
        )

    over = [c for c in counts if c.rows > limit]
    if over:
        kind = limit_kind or spec.schedule.interval
        shown = [
            f"window {c.window.key} ({c.window.describe()}) holds {c.rows:,} rows; mParticle's "
            f"{kind} limit is {limit:,} per request and would fail the run"
            for c in over[:SHOWN_VIOLATIONS]
        ]
        if len(over) > SHOWN_VIOLATIONS:
            shown.append(f"... and {len(over) - SHOWN_VIOLATIONS} more windows over the limit")
        shown.append(
            "Fix: narrow the model (filter rows or sync only changed rows), or use a shorter "
            "cadence so each window holds fewer rows."
        )
        raise PreflightError(spec.name, shown, tuple(counts))

    return PreflightReport(
        sync=spec.name,
        limit=limit,
        columns=columns,
        identity_columns=identities,
        timestamp_column=timestamp_column,
        counts=tuple(counts),
        queries=queries,
        seconds=time.monotonic() - started,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
