"""Your own tables on the embedded default (``local/seed.py``): a folder of SQL and CSV files loaded
after the sample, CSV timestamps anchored like the sample's, and synced by a registry entry."""

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wsync_dagster.local.demo import run_demo, seed_source
from wsync_dagster.local.sample_data import SampleConfig
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.local.seed import SeedError, anchor_literal, anchor_shift, seed_folder
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.local.stack import write_registry
from wsync_dagster.sync.registry.specs import Registry, load_registry

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
_databases = itertools.count()


@pytest.fixture
def database() -> str:
    """A database of its own per test, on the session's shared stand-in."""
    return f"SEED_TEST_{next(_databases)}"


@pytest.fixture
def connection(local_snowflake: LocalSnowflake):
    connection = local_snowflake.connect()
    try:
        yield connection
    finally:
        connection.close()


def _folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _rows(connection: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = connection.cursor()
    try:
        return cursor.execute(sql).fetchall()
    finally:
        cursor.close()


@pytest.mark.parametrize(
    ("newest", "moved_to"),
    [
        (datetime(2025, 1, 10, 9, 30), datetime(2026, 11, 20, 9, 30)),  # same day, before 15:00
        (datetime(2025, 1, 10, 15, 0), datetime(2026, 11, 19, 15, 0)),  # at the anchor's time
        (datetime(2025, 1, 10, 23, 0), datetime(2026, 11, 19, 23, 0)),  # later in the day
        (datetime(2026, 11, 20, 14, 59), datetime(2026, 11, 20, 14, 59)),  # already there
        (datetime(2027, 6, 1, 1, 0), datetime(2026, 11, 20, 1, 0)),  # in the future: back
    ],
)
def test_the_newest_timestamp_moves_whole_days_into_the_day_before_the_anchor(
    newest: datetime, moved_to: datetime
) -> None:
    shift = anchor_shift(newest, ANCHOR)
    assert shift % timedelta(days=1) == timedelta(0)
    assert newest + shift == moved_to
    assert ANCHOR - timedelta(days=1) <= (newest + shift).replace(tzinfo=UTC) < ANCHOR


def test_sql_and_csv_files_load_in_name_order_csv_timestamps_anchored(
    tmp_path: Path, connection: Any, database: str
) -> None:
    folder = _folder(
        tmp_path / "seed",
        {
            "01_create.sql": f"""-- The orders table; the CSV below adds rows to it.
CREATE DATABASE IF NOT EXISTS {database};
CREATE SCHEMA IF NOT EXISTS {database}.SHOP;
CREATE TABLE {database}.SHOP.ORDERS (
    ORDER_ID VARCHAR, EMAIL VARCHAR, AMOUNT NUMBER(12, 2), UPDATED_AT TIMESTAMP_NTZ
);
INSERT INTO {database}.SHOP.ORDERS
VALUES ('O-1', 'ada@example.com', 12.50, DATEADD(hour, -5, {{{{anchor}}}})); -- 5 h before
""",
            # Columns in another order than the table's, one left out (AMOUNT); an empty field.
            f"02_{database}.SHOP.ORDERS.csv": "EMAIL,ORDER_ID,UPDATED_AT\n"
            "ben@example.com,O-2,2025-01-10 09:00:00\n"
            ",O-3,2025-01-08T00:00:00Z\n",
            # A new table from a typed header; DATE columns are not moved.
            f"{database}.SHOP.CONSENTS.csv": 'EMAIL,"GIVEN_AT:TIMESTAMP_NTZ",BORN:DATE,'
            '"SCORE:NUMBER(5,2)"\n'
            "ada@example.com,2025-03-01 12:00:00,1990-05-17,1.5\n"
            "cy@example.com,2025-02-27 00:00:00,,\n",
            ".notes": "hidden files are left alone",
        },
    )
    seeded = seed_folder(connection, folder, ANCHOR)

    assert [s.describe() for s in seeded] == [
        "ran 01_create.sql: 4 statement(s)",
        f"seeded {database}.SHOP.ORDERS from 02_{database}.SHOP.ORDERS.csv: 2 rows; "
        "timestamps moved +679 day(s) to the sample's anchor",
        f"seeded {database}.SHOP.CONSENTS from {database}.SHOP.CONSENTS.csv: 2 rows; "
        "timestamps moved +629 day(s) to the sample's anchor",
    ]
    assert _rows(connection, f"SELECT * FROM {database}.SHOP.ORDERS ORDER BY ORDER_ID") == [
        ("O-1", "ada@example.com", pytest.approx(12.5), datetime(2026, 11, 20, 10, 0)),
        ("O-2", "ben@example.com", None, datetime(2026, 11, 20, 9, 0)),
        ("O-3", None, None, datetime(2026, 11, 18, 0, 0)),  # a midnight stays a midnight
    ]
    consents = _rows(connection, f"SELECT * FROM {database}.SHOP.CONSENTS ORDER BY EMAIL")
    assert [(r[0], r[1], str(r[2]), r[3]) for r in consents] == [
        ("ada@example.com", datetime(2026, 11, 20, 12, 0), "1990-05-17", pytest.approx(1.5)),
        ("cy@example.com", datetime(2026, 11, 18, 0, 0), "None", None),
    ]


def test_anchor_literal_is_the_utc_instant() -> None:
    assert anchor_literal(ANCHOR) == "'2026-11-20 15:00:00'::TIMESTAMP_NTZ"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notes.txt": "x"}, r"cannot seed notes\.txt: the seed folder holds only \.sql and \.csv"),
        ({"orders.csv": "A\n1\n"}, r"orders\.csv: a CSV file is named after its table"),
        ({"{db}.S.T.csv": '"AMOUNT:NUMBER(12,2"\n1\n'}, r"\{db\}\.S\.T\.csv:1: header cell 'AMOUNT:NUMBER"),
        ({"{db}.S.T.csv": "A,A\n1,2\n"}, r"\{db\}\.S\.T\.csv:1: column A is named twice"),
        ({"{db}.S.T.csv": "A,B\n1,2\n3\n"}, r"\{db\}\.S\.T\.csv:3: 1 field\(s\), the header names 2"),
        ({"{db}.S.T.csv": ""}, r"\{db\}\.S\.T\.csv: the file is empty"),
        (
            {"{db}.S.T.csv": "A,UPDATED_AT:TIMESTAMP_NTZ\n1,yesterday\n"},
            r"\{db\}\.S\.T\.csv:2: column UPDATED_AT: 'yesterday' is not a timestamp; write ISO 8601",
        ),
        (
            {"1_a.sql": "CREATE SCHEMA IF NOT EXISTS {db}.S;\nCREATE TABLE {db}.S.T (A INT);",
             "2_{db}.S.T.csv": "A,B\n1,2\n"},
            r"\{db\}\.S\.T has no column B; its columns are A",
        ),
        (
            {"1_a.sql": "CREATE SCHEMA IF NOT EXISTS {db}.S;\nCREATE TABLE {db}.S.T (A INT);",
             "2_{db}.S.T.csv": "A:INTEGER\n1\n"},
            r"already exists .* drop the :TYPE of A",
        ),
        (
            {"a.sql": "SELECT 1;\n\n-- then\nSELEC {{anchor}};\n"},
            r"a\.sql:4: the Snowflake stand-in refused this statement",
        ),
        ({"a.sql": "SELECT {{now}};"}, r"a\.sql:1: \{\{now\}\} is not a placeholder"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_loaded_is_named_with_its_line_and_the_fix(
    tmp_path: Path, connection: Any, database: str, files: dict[str, str], message: str
) -> None:
    _folder(tmp_path, {"00.sql": f"CREATE DATABASE IF NOT EXISTS {database};"})
    named = {
        name.replace("{db}", database): text.replace("{db}", database)
        for name, text in files.items()
    }
    folder = _folder(tmp_path, named)
    with pytest.raises(SeedError, match=message.replace(r"\{db\}", database)):
        seed_folder(connection, folder, ANCHOR)


def test_the_seed_folder_is_the_variable_or_the_work_directory_s(tmp_path: Path) -> None:
    assert seed_source({}, tmp_path) is None
    (tmp_path / "seed").mkdir()
    assert seed_source({}, tmp_path) == tmp_path / "seed"
    named = tmp_path / "mine"
    assert seed_source({"WSYNC_LOCAL_SEED": str(named)}, tmp_path) == named
    with pytest.raises(SeedError, match=r"mine: the seed folder does not exist"):
        seed_folder(object(), named, ANCHOR)


def _own_registry() -> Registry:
    """The sample's connection, and two syncs of our own: a daily one on a CSV table and an
    on-demand one on a table a SQL file creates."""
    sample = load_registry(SAMPLE_REGISTRY)
    common = {
        "owners": ["team:web"],
        "load_timestamp": {"column": "UPDATED_AT", "type": "timestamp_ntz"},
        "environment": "development",
        "feed_key_env": "MPARTICLE_FEED_KEY_WEB",
    }
    syncs = [
        {
            **common,
            "name": "web_orders",
            "description": "The newest order of each web customer.",
            "sql": 'SELECT EMAIL AS "email", AMOUNT AS "last_order_amount", UPDATED_AT '
            "FROM WSYNC_DEMO.WEB.ORDERS",
            "schedule": {"interval": "daily", "start": "2026-01-01T00:00:00Z"},
        },
        {
            **common,
            "name": "web_vips",
            "description": "Customers the web team flags as VIPs.",
            "sql": 'SELECT EMAIL AS "email", TIER AS "web_vip_tier", UPDATED_AT '
            "FROM WSYNC_DEMO.WEB.VIPS",
            "schedule": {"interval": "on_demand", "start": "2026-01-01T00:00:00Z"},
        },
    ]
    return Registry.model_validate(
        {"connection": sample.connection.model_dump(mode="json"), "syncs": syncs}
    )


def test_a_csv_and_a_sql_file_are_seeded_and_synced_by_registry_entries(
    tmp_path: Path, capsys
) -> None:
    seed = _folder(
        tmp_path / "seed",
        {
            # Newest row first in the file or not: the newest (09:00) lands on the anchor's day.
            "WEB.ORDERS.csv": 'EMAIL,"AMOUNT:NUMBER(12,2)",UPDATED_AT:TIMESTAMP_NTZ\n'
            "ada.okafor.1@example.com,19.99,2025-03-10 09:00:00\n"
            "ben@example.com,5.00,2025-03-09 10:00:00\n"
            "cy@example.com,7.25,2025-03-09 20:00:00\n"
            "dee@example.com,1.00,2025-03-08 12:00:00\n",
            "vips.sql": "CREATE TABLE WSYNC_DEMO.WEB.VIPS (EMAIL VARCHAR, TIER VARCHAR, "
            "UPDATED_AT TIMESTAMP_NTZ);\n"
            "INSERT INTO WSYNC_DEMO.WEB.VIPS VALUES\n"
            "  ('ada.okafor.1@example.com', 'gold', DATEADD(hour, -2, {{anchor}})),\n"
            "  ('ben@example.com', 'silver', DATEADD(day, -3, {{anchor}})),\n"
            "  ('cy@example.com', 'gold', DATEADD(minute, -1, {{anchor}}));\n",
        },
    )
    source = write_registry(_own_registry(), tmp_path / "registry.yaml")
    code = run_demo(
        tmp_path / "work",
        tmp_path / "dagster_home",
        SampleConfig(anchor=ANCHOR),
        manual_clock=True,
        registry_source=source,
        seed=seed,
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "seeded WSYNC_DEMO.WEB.ORDERS from WEB.ORDERS.csv: 4 rows; timestamps moved" in out
    assert "ran vips.sql: 2 statement(s)" in out
    assert re.search(r"Snowflake stand-in: host 127\.0\.0\.1, port \d+, protocol http", out)
    # The latest closed day, 2026-11-19: the rows of 10:00 and 20:00 (moved from 2025-03-09).
    assert re.search(r"^web_orders +2026-11-19 +2 +\d+ +\w+ +2 +2 ", out, re.M), out
    assert re.search(r"^web_vips +- +3 +\d+ +\w+ +3 +3 ", out, re.M), out
    assert "web_vip_tier: gold" in out and "last_order_amount" in out
