import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from snowflake.connector.constants import FIELD_ID_TO_NAME

from wsync_dagster.local.sample_data import (
    CUSTOMER_SCORES,
    CUSTOMER_SCORES_DAYS,
    TICKET_ACTIVITY,
    TICKET_ACTIVITY_DAYS,
    SampleConfig,
    SampleSummary,
    customer_score_rows,
    ticket_activity_rows,
)


def _columns(cursor, table: str) -> dict[str, str]:
    """Column name -> Snowflake type name, as the column discovery query sees them."""
    cursor.execute(f"SELECT * FROM ( SELECT * FROM {table} ) LIMIT 0")
    return {d.name: FIELD_ID_TO_NAME[d.type_code] for d in cursor.description}


def test_tables_have_the_promised_columns(
    sample_warehouse: SampleSummary, snowflake_cursor
) -> None:
    customer_columns = _columns(snowflake_cursor, CUSTOMER_SCORES)
    # fakesnow stores ARRAY as JSON and reports it as VARIANT; Snowflake reports ARRAY.
    assert customer_columns.pop("FAVORITE_CATEGORIES") in {"ARRAY", "VARIANT"}
    assert customer_columns == {
        "CUSTOMER_ID": "TEXT",
        "EMAIL": "TEXT",
        "FIRST_NAME": "TEXT",
        "LIFETIME_VALUE": "FIXED",
        "CHURN_RISK": "REAL",
        "UPDATED_AT": "TIMESTAMP_NTZ",
    }
    assert _columns(snowflake_cursor, TICKET_ACTIVITY) == {
        "EMAIL": "TEXT",
        "TICKETS_OPENED": "FIXED",
        "TICKETS_RESOLVED": "FIXED",
        "AVG_FIRST_RESPONSE_MINUTES": "REAL",
        "LAST_TICKET_PRIORITY": "TEXT",
        "CSAT_SCORE": "REAL",
        "UPDATED_AT": "TIMESTAMP_NTZ",
    }


@pytest.mark.parametrize(
    ("table", "days", "identity_predicate", "boundary_unit"),
    [
        (CUSTOMER_SCORES, CUSTOMER_SCORES_DAYS, "CUSTOMER_ID IS NULL AND EMAIL IS NULL", "day"),
        (TICKET_ACTIVITY, TICKET_ACTIVITY_DAYS, "EMAIL IS NULL", "hour"),
    ],
)
def test_rows_span_the_recent_past_with_boundary_and_identityless_rows(
    sample_warehouse: SampleSummary,
    snowflake_cursor,
    table: str,
    days: int,
    identity_predicate: str,
    boundary_unit: str,
) -> None:
    summary = sample_warehouse.table(table)
    count, first, last = snowflake_cursor.execute(
        f"SELECT COUNT(*), MIN(UPDATED_AT), MAX(UPDATED_AT) FROM {table}"
    ).fetchone()
    assert count == summary.rows > 0
    anchor = sample_warehouse.anchor.replace(tzinfo=None)
    assert anchor - timedelta(days=days) <= first and last < anchor
    (identityless,) = snowflake_cursor.execute(
        f"SELECT COUNT(*) FROM {table} WHERE {identity_predicate}"
    ).fetchone()
    assert identityless == summary.identityless_rows > 0
    (boundary,) = snowflake_cursor.execute(
        f"SELECT COUNT(*) FROM {table} WHERE UPDATED_AT = DATE_TRUNC('{boundary_unit}', UPDATED_AT)"
    ).fetchone()
    assert boundary == summary.boundary_rows >= 2


def test_lists_and_numbers_load_as_values(
    sample_warehouse: SampleSummary, snowflake_cursor
) -> None:
    rows = snowflake_cursor.execute(
        f"SELECT FAVORITE_CATEGORIES, LIFETIME_VALUE, CHURN_RISK FROM {CUSTOMER_SCORES}"
    ).fetchall()
    lists = [json.loads(categories) for categories, _, _ in rows]
    assert all(isinstance(values, list) for values in lists)
    assert sum(len(values) >= 2 for values in lists) > len(rows) / 5
    assert all(isinstance(v, Decimal) and v >= 0 and 0 <= r <= 1 for _, v, r in rows)


def test_ticket_emails_mostly_belong_to_customers(
    sample_warehouse: SampleSummary, snowflake_cursor
) -> None:
    (matched,) = snowflake_cursor.execute(
        f"SELECT COUNT(*) FROM {TICKET_ACTIVITY} t JOIN {CUSTOMER_SCORES} c ON t.EMAIL = c.EMAIL"
    ).fetchone()
    assert 0.7 * sample_warehouse.table(TICKET_ACTIVITY).rows < matched


def test_generation_is_deterministic_and_seeded() -> None:
    anchor = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    one = SampleConfig(seed=1, customers=300, ticket_rows=200, anchor=anchor)
    assert list(customer_score_rows(one)) == list(customer_score_rows(one))
    assert list(ticket_activity_rows(one)) == list(ticket_activity_rows(one))
    other = SampleConfig(seed=2, customers=300, ticket_rows=200, anchor=anchor)
    assert list(customer_score_rows(one)) != list(customer_score_rows(other))


def test_data_follows_its_anchor() -> None:
    early = SampleConfig(customers=50, ticket_rows=50, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    later = SampleConfig(customers=50, ticket_rows=50, anchor=datetime(2026, 3, 1, tzinfo=UTC))
    shift = later.anchor - early.anchor
    for a, b in zip(customer_score_rows(early), customer_score_rows(later), strict=True):
        assert b[-1] - a[-1] == shift and a[:-1] == b[:-1]


def test_bad_configs_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SampleConfig(anchor=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="at least one"):
        SampleConfig(customers=0)
