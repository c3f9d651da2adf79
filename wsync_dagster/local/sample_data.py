"""A realistic, deterministic sample warehouse for the embedded default.

Two tables, generated from a fixed seed relative to an *anchor* instant (the start of the current UTC
hour unless given), so the data always covers the recent past that mParticle's catch-up limits allow:

``WSYNC_DEMO.CRM.CUSTOMER_SCORES`` (daily grain)
    one row per customer: ``CUSTOMER_ID``, ``EMAIL``, ``FIRST_NAME``, ``LIFETIME_VALUE`` (NUMBER(12,2)),
    ``CHURN_RISK`` (FLOAT, 0..1), ``FAVORITE_CATEGORIES`` (ARRAY of strings) and ``UPDATED_AT``
    (TIMESTAMP_NTZ, UTC) spread over the 10 days before the anchor.
``WSYNC_DEMO.SUPPORT.TICKET_ACTIVITY`` (hourly grain)
    support-ticket aggregates keyed by ``EMAIL``: ``TICKETS_OPENED``, ``TICKETS_RESOLVED``,
    ``AVG_FIRST_RESPONSE_MINUTES``, ``LAST_TICKET_PRIORITY``, ``CSAT_SCORE`` and ``UPDATED_AT`` over the
    3 days before the anchor. Most emails belong to customers of the first table, so one profile gets
    attributes from both syncs; a few belong to nobody else.

Like real data, both have rows without any identity value (no customer id, no email), and rows stamped
exactly on an interval boundary (midnight for the daily table, the top of the hour for the hourly one),
which an inclusive ``BETWEEN`` window reads in two adjacent intervals.

Rows are bulk-loaded the way one loads Snowflake: a CSV file, ``PUT`` to the table's stage, ``COPY INTO``.
"""

import csv
import json
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

DATABASE = "WSYNC_DEMO"
CUSTOMER_SCORES = f"{DATABASE}.CRM.CUSTOMER_SCORES"
TICKET_ACTIVITY = f"{DATABASE}.SUPPORT.TICKET_ACTIVITY"

CUSTOMER_SCORES_DAYS = 10
TICKET_ACTIVITY_DAYS = 3

_FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam",
    "Maya", "Noor", "Oscar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Viktor", "Wen", "Ximena",
    "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski", "Nguyen", "Rossi",
)  # fmt: skip
_CATEGORIES = (
    "outdoor", "electronics", "books", "kitchen", "fitness", "beauty", "toys", "garden", "music", "travel",
)  # fmt: skip
_PRIORITIES = ("low", "normal", "high", "urgent")

CUSTOMER_SCORES_DDL = f"""
CREATE OR REPLACE TABLE {CUSTOMER_SCORES} (
    CUSTOMER_ID VARCHAR,
    EMAIL VARCHAR,
    FIRST_NAME VARCHAR,
    LIFETIME_VALUE NUMBER(12, 2),
    CHURN_RISK FLOAT,
    FAVORITE_CATEGORIES ARRAY,
    UPDATED_AT TIMESTAMP_NTZ
)"""
TICKET_ACTIVITY_DDL = f"""
CREATE OR REPLACE TABLE {TICKET_ACTIVITY} (
    EMAIL VARCHAR,
    TICKETS_OPENED INTEGER,
    TICKETS_RESOLVED INTEGER,
    AVG_FIRST_RESPONSE_MINUTES FLOAT,
    LAST_TICKET_PRIORITY VARCHAR,
    CSAT_SCORE FLOAT,
    UPDATED_AT TIMESTAMP_NTZ
)"""


def current_hour(now: datetime | None = None) -> datetime:
    """The start of the UTC hour containing ``now`` (default: the wall clock)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SampleConfig:
    """What to generate. The same config always produces the same rows."""

    seed: int = 20231011
    customers: int = 2_000
    ticket_rows: int = 1_500
    anchor: datetime = field(default_factory=current_hour)
    """Exclusive upper bound of every ``UPDATED_AT``; the start of the current UTC hour by default."""
    identityless_share: float = 0.02
    """Share of rows with no identity value at all."""
    boundary_share: float = 0.01
    """Share of rows stamped exactly on an interval boundary (at least one row per table)."""

    def __post_init__(self) -> None:
        if self.anchor.tzinfo is None:
            raise ValueError("SampleConfig.anchor must be timezone-aware (UTC)")
        if self.customers < 1 or self.ticket_rows < 1:
            raise ValueError("SampleConfig needs at least one customer and one ticket row")
        if not (0 <= self.identityless_share < 1 and 0 <= self.boundary_share < 1):
            raise ValueError("identityless_share and boundary_share must be in [0, 1)")


@dataclass(frozen=True)
class TableSummary:
    name: str
    rows: int
    identityless_rows: int
    boundary_rows: int
    first_updated_at: datetime
    last_updated_at: datetime


@dataclass(frozen=True)
class SampleSummary:
    anchor: datetime
    tables: tuple[TableSummary, ...]

    def table(self, name: str) -> TableSummary:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


def _utc_naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _pick_indices(rng: random.Random, count: int, share: float, minimum: int) -> set[int]:
    wanted = min(count, max(minimum, round(count * share)))
    return set(rng.sample(range(count), wanted))


def _stamp(
    rng: random.Random, anchor: datetime, span: timedelta, on_boundary: timedelta | None
) -> datetime:
    """A UTC instant in ``[anchor - span, anchor)``, or exactly on a multiple of ``on_boundary``."""
    offset = timedelta(seconds=rng.randrange(1, int(span.total_seconds())))
    instant = anchor - offset
    if on_boundary is not None:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        steps = (instant - epoch) // on_boundary
        instant = epoch + steps * on_boundary
        if instant < anchor - span:
            instant += on_boundary
    return instant


def customer_score_rows(config: SampleConfig) -> Iterator[tuple[Any, ...]]:
    """Rows of ``CUSTOMER_SCORES`` in column order (UTC-naive timestamps)."""
    rng = random.Random(f"{config.seed}:customer_scores")
    span = timedelta(days=CUSTOMER_SCORES_DAYS)
    n = config.customers
    identityless = _pick_indices(rng, n, config.identityless_share, 1)
    boundary = _pick_indices(rng, n, config.boundary_share, 2)
    for i in range(n):
        first = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        has_identity = i not in identityless
        categories = rng.sample(_CATEGORIES, rng.choice((0, 1, 1, 2, 2, 3)))
        yield (
            f"C{i + 1:06d}" if has_identity else None,
            f"{first}.{last}.{i + 1}@example.com".lower() if has_identity else None,
            first,
            Decimal(rng.randrange(0, 500_000)) / 100,
            round(rng.betavariate(2, 5), 3),
            categories,
            _utc_naive(
                _stamp(rng, config.anchor, span, timedelta(days=1) if i in boundary else None)
            ),
        )


def ticket_activity_rows(
    config: SampleConfig, customer_emails: Sequence[str | None] | None = None
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``TICKET_ACTIVITY`` in column order (UTC-naive timestamps).

    ``customer_emails`` are the e-mails of ``customer_score_rows(config)`` (derived when not given).
    """
    rng = random.Random(f"{config.seed}:ticket_activity")
    span = timedelta(days=TICKET_ACTIVITY_DAYS)
    n = config.ticket_rows
    identityless = _pick_indices(rng, n, config.identityless_share, 1)
    boundary = _pick_indices(rng, n, config.boundary_share, 2)
    # Mostly the customers' own e-mails (some customers have none), plus guests nobody else knows.
    if customer_emails is None:
        customer_emails = [row[1] for row in customer_score_rows(config)]
    for i in range(n):
        if i in identityless:
            email = None
        elif rng.random() < 0.9 and (known := rng.choice(customer_emails)) is not None:
            email = known
        else:
            email = f"guest.{i + 1}@example.org"
        opened = rng.randrange(1, 6)
        yield (
            email,
            opened,
            rng.randrange(0, opened + 1),
            round(rng.lognormvariate(3.0, 0.6), 1),
            rng.choice(_PRIORITIES),
            round(rng.uniform(1, 5), 1),
            _utc_naive(
                _stamp(rng, config.anchor, span, timedelta(hours=1) if i in boundary else None)
            ),
        )


def _write_csv(path: Path, rows: Iterator[tuple[Any, ...]]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow(
                [
                    ""
                    if value is None
                    else json.dumps(value)
                    if isinstance(value, list)
                    else value.isoformat(sep=" ")
                    if isinstance(value, datetime)
                    else value
                    for value in row
                ]
            )
            count += 1
    return count


def copy_csv_into(cursor: Any, table: str, path: Path) -> None:
    """Bulk-load ``path`` (a CSV without header, in the table's column order; an empty field is
    NULL) into ``table`` (``DATABASE.SCHEMA.TABLE``): ``PUT`` to the table's stage, ``COPY INTO``."""
    database, schema, name = table.split(".")
    cursor.execute(f"PUT 'file://{path.as_posix()}' @{database}.{schema}.%{name} OVERWRITE = TRUE")
    cursor.execute(
        f"COPY INTO {table} FROM @{database}.{schema}.%{name} "
        "FILE_FORMAT = (TYPE = CSV FIELD_OPTIONALLY_ENCLOSED_BY = '\"' EMPTY_FIELD_AS_NULL = TRUE) "
        "PURGE = TRUE"
    )


def _load(cursor: Any, table: str, ddl: str, rows: Iterator[tuple[Any, ...]], workdir: Path) -> int:
    database, schema, name = table.split(".")
    cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
    cursor.execute(ddl)
    path = workdir / f"{name.lower()}.csv"
    count = _write_csv(path, rows)
    copy_csv_into(cursor, table, path)
    return count


def _summarise(
    name: str, rows: Sequence[tuple[Any, ...]], identity_columns: Sequence[int], grain: timedelta
) -> TableSummary:
    stamps = [row[-1] for row in rows]
    epoch = datetime(1970, 1, 1)
    return TableSummary(
        name=name,
        rows=len(rows),
        identityless_rows=sum(all(row[c] is None for c in identity_columns) for row in rows),
        boundary_rows=sum((stamp - epoch) % grain == timedelta(0) for stamp in stamps),
        first_updated_at=min(stamps).replace(tzinfo=UTC),
        last_updated_at=max(stamps).replace(tzinfo=UTC),
    )


def seed_sample_warehouse(connection: Any, config: SampleConfig | None = None) -> SampleSummary:
    """Create (or replace) both sample tables through a DB-API Snowflake ``connection``."""
    config = config or SampleConfig()
    customers = list(customer_score_rows(config))
    tickets = list(ticket_activity_rows(config, [row[1] for row in customers]))
    with tempfile.TemporaryDirectory(prefix="wsync-sample-") as tmp:
        cursor = connection.cursor()
        try:
            _load(cursor, CUSTOMER_SCORES, CUSTOMER_SCORES_DDL, iter(customers), Path(tmp))
            _load(cursor, TICKET_ACTIVITY, TICKET_ACTIVITY_DDL, iter(tickets), Path(tmp))
        finally:
            cursor.close()
    return SampleSummary(
        anchor=config.anchor,
        tables=(
            _summarise(CUSTOMER_SCORES, customers, (0, 1), timedelta(days=1)),
            _summarise(TICKET_ACTIVITY, tickets, (0,), timedelta(hours=1)),
        ),
    )
