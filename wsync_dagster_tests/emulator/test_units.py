"""The emulator's pure parts: time formats, grid arithmetic, SQL rules, literals, mapping, profiles."""

from datetime import UTC, datetime, timedelta

import pytest

from wsync_dagster.emulator.__main__ import parse_args
from wsync_dagster.emulator.clock import Clock, add_months, format_audit, parse_schedule_instant
from wsync_dagster.emulator.mapping import MappedRow, RowMapper
from wsync_dagster.emulator.profiles import ProfileStore
from wsync_dagster.emulator.schedule import (
    earliest_allowed_start,
    first_interval_after,
    interval_at,
)
from wsync_dagster.emulator.warehouse import check_model_sql, window_literals


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("micro", "text"),
    [(0, "2023-02-08T00:05:31"), (230000, "2023-02-08T00:05:31.23"), (13000, "2023-02-08T00:05:31.013"),
     (100000, "2023-02-08T00:05:31.1"), (999999, "2023-02-08T00:05:31.999")],
)  # fmt: skip
def test_audit_format_trims_the_fraction(micro: int, text: str) -> None:
    assert format_audit(utc(2023, 2, 8, 0, 5, 31).replace(microsecond=micro)) == text


def test_schedule_instants_are_strict() -> None:
    assert parse_schedule_instant("2023-02-01T00:15:00Z") == utc(2023, 2, 1, 0, 15)
    for bad in ("2023-03-1T:12:00:00Z", "2023-02-01T00:15:00", "2023-02-01 00:15:00Z"):
        with pytest.raises(ValueError):
            parse_schedule_instant(bad)


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(utc(2024, 1, 31), 1) == utc(2024, 2, 29)
    assert add_months(utc(2023, 1, 31), 1) == utc(2023, 2, 28)
    assert add_months(utc(2024, 3, 31), -1) == utc(2024, 2, 29)
    assert add_months(utc(2024, 12, 15), 1) == utc(2025, 1, 15)


def test_monthly_grid_is_anchored_on_the_start_not_chained() -> None:
    start = utc(2020, 1, 4)  # the doc's monthly example
    assert [interval_at(start, "monthly", k)[0].day for k in range(14)] == [4] * 14
    assert interval_at(start, "monthly", 13) == (utc(2021, 2, 4), utc(2021, 3, 4))


@pytest.mark.parametrize("interval", ["hourly", "daily", "weekly", "monthly"])
def test_first_interval_after(interval: str) -> None:
    start = utc(2022, 1, 1, 12, 5)  # the doc's weekly example (a Saturday)
    for k in (0, 1, 5, 30):
        logical = interval_at(start, interval, k)[0]
        assert first_interval_after(start, interval, logical) == k + 1
        assert first_interval_after(start, interval, logical - timedelta(seconds=1)) == k
    assert first_interval_after(start, interval, start - timedelta(days=1)) == 0


def test_earliest_allowed_start() -> None:
    now = utc(2024, 8, 31, 10, 30).replace(microsecond=500)
    assert earliest_allowed_start(now, "hourly") == utc(2024, 8, 24, 10, 30, 1)
    assert earliest_allowed_start(now, "daily") == utc(2024, 2, 29, 10, 30, 1)
    assert earliest_allowed_start(now, "weekly") == utc(2021, 8, 31, 10, 30, 1)
    assert earliest_allowed_start(now, "monthly") == utc(2019, 8, 31, 10, 30, 1)


def test_clocks() -> None:
    manual = Clock("manual", utc(2024, 1, 1))
    manual.advance(1.5)
    assert manual.now() == utc(2024, 1, 1, 0, 0, 1).replace(microsecond=500000)
    manual.set(utc(2025, 1, 1))
    manual.reset()
    assert manual.now() == utc(2024, 1, 1)
    real = Clock("real", utc(2024, 1, 1))
    real.advance(3600)
    assert utc(2024, 1, 1, 1) <= real.now() < utc(2024, 1, 1, 1, 1)


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", "select a from t", "(SELECT a FROM t)", "SELECT 'WITH' AS w, \"DROP\" FROM t",
     "SELECT a -- delete\nFROM t", "SELECT a /* update */ FROM t", "SELECT created, altered_at FROM t",
     "SELECT 'it''s' FROM t"],
)  # fmt: skip
def test_supported_sql(sql: str) -> None:
    check_model_sql(sql)


@pytest.mark.parametrize(
    "sql",
    ["WITH a AS (SELECT 1) SELECT * FROM a", "UPDATE t SET a = 1", "SELECT * FROM t; SELECT 1",
     "SELECT * FROM t WHERE a IN (SELECT 1) AND b = 1 OR DELETE", "INSERT INTO t SELECT 1",
     "SHOW TABLES", "", "SELECT a FROM t WHERE b = 'x' AND create = 1"],
)  # fmt: skip
def test_unsupported_sql(sql: str) -> None:
    with pytest.raises(ValueError):
        check_model_sql(sql)


START, END = utc(2023, 2, 1, 0, 15), utc(2023, 2, 1, 1, 15)


@pytest.mark.parametrize(
    ("field_type", "zone", "offset", "expected"),
    [
        ("timestamp_ntz", None, 0, ("'2023-02-01 00:15:00+0000'", "'2023-02-01 01:15:00+0000'")),
        ("timestamp_tz", None, 0, ("'2023-02-01 00:15:00+0000'", "'2023-02-01 01:15:00+0000'")),
        ("datetime", None, 0, ("'2023-02-01 00:15:00+0000'", "'2023-02-01 01:15:00+0000'")),
        ("timestamp", None, 0, ("'2023-02-01 00:15:00+0000'", "'2023-02-01 01:15:00+0000'")),
        ("date", None, 0, ("'2023-02-01'", "'2023-02-01'")),
        ("timestamp_unixtime_ms", None, 0, ("1675210500000", "1675214100000")),
        ("timestamp_unixtime_s", None, 0, ("1675210500", "1675214100")),
        ("timestamp_unixtime_s", "America/New_York", 0, ("1675210500", "1675214100")),
        ("timestamp_ntz", "America/New_York", 0, ("'2023-01-31 19:15:00'", "'2023-01-31 20:15:00'")),
        ("date", "America/New_York", 0, ("'2023-01-31'", "'2023-01-31'")),
        ("timestamp_ntz", None, 1800, ("'2023-01-31 23:45:00+0000'", "'2023-02-01 00:45:00+0000'")),
        ("timestamp_unixtime_ms", None, -60, ("1675210560000", "1675214160000")),
    ],
)  # fmt: skip
def test_window_literals(
    field_type: str, zone: str | None, offset: int, expected: tuple[str, str]
) -> None:
    assert window_literals(START, END, field_type, zone, offset) == expected


def test_row_mapping() -> None:
    mapper = RowMapper("updated_at")
    text = (
        '{"CUSTOMER_ID": 42, "Email": "a@b.c", "IOS_IDFV": "i", "UPDATED_AT": "x", '
        '"$firstname": "Ann", "score": 12.50, "big": 1e20, "ok": true, "no": false, '
        '"tags": ["a", 1, null, 2.5], "obj": {"k": [1]}, "gone": null, "mpid": "12"}'
    )
    assert mapper.map_json(text) == MappedRow(
        mpid=12,
        user_identities={"customer_id": "42", "email": "a@b.c"},
        device_identities={"ios_idfv": "i"},
        attributes={
            "$firstname": "Ann",
            "score": "12.50",
            "big": "1e20",
            "ok": "true",
            "no": "false",
            "tags": ["a", "1", "2.5"],
            "obj": '{"k":["1"]}',
        },
    )
    assert mapper.map({"EMAIL": None, "CUSTOMER_ID": " ", "UPDATED_AT": "x", "a": 1}) is None
    assert mapper.map({"MPID": "not a number", "a": 1}) is None


def test_profile_store_matches_customer_id_first_and_moves_identities() -> None:
    store = ProfileStore(seed=1)

    def row(**identities: str) -> MappedRow:
        return MappedRow(None, identities, {}, {"n": str(len(store))})

    a = store.upsert(row(customer_id="c1", email="one@x"), 1)
    b = store.upsert(row(email="two@x"), 2)
    # customer_id wins over email: the row lands on a and takes b's e-mail from it.
    assert store.upsert(row(customer_id="c1", email="two@x"), 3) is a
    assert a.user_identities == {"customer_id": "c1", "email": "two@x"}
    assert b.user_identities == {}
    assert store.resolve("email", "one@x") is None
    assert store.resolve("email", "two@x") is a
    assert (a.created_ms, a.last_stored_ms) == (1, 3)
    again = ProfileStore(seed=1)
    assert again.upsert(row(customer_id="c1"), 1).mpid == a.mpid
    assert store.upsert(MappedRow(777, {}, {"ios_idfv": "d"}, {}), 4).mpid == 777


def test_a_month_end_start_returns_to_its_day_after_a_short_month() -> None:
    start = utc(2024, 1, 31)
    assert [interval_at(start, "monthly", k)[0] for k in range(3)] == [
        utc(2024, 1, 31),
        utc(2024, 2, 29),
        utc(2024, 3, 31),
    ]


def test_the_command_line_feeds_the_warehouse_connection() -> None:
    config, exit_with_parent = parse_args(
        ["--snowflake-port", "4444", "--snowflake-account", "acme", "--snowflake-user", "u"]
    )
    assert not exit_with_parent
    assert config.snowflake_connect_args() == {
        "account": "acme",
        "user": "u",
        "password": "snow",
        "host": "127.0.0.1",
        "port": 4444,
        "protocol": "http",
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        "login_timeout": 10,
        "network_timeout": 60,
    }
