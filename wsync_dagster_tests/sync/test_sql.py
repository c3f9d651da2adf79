from datetime import UTC, datetime, timedelta

import pytest

from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.sync.engine.preflight import PreflightError, run_preflight
from wsync_dagster.sync.registry.cadences import CADENCES, cadence, record_limit
from wsync_dagster.sync.registry.specs import LoadTimestamp, Schedule, SyncSpec
from wsync_dagster.sync.registry.sql import (
    analyze,
    grouped_count_query,
    named_tables,
    quote_identifier,
    render_bound,
    sql_problems,
    window_predicate,
)
from wsync_dagster.sync.registry.windows import Window
from wsync_dagster_tests.conftest import create_table

T = datetime(2026, 11, 27, 13, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field_type", "time_zone", "offset", "expected"),
    [
        ("timestamp_ntz", None, 0, "'2026-11-27 13:00:05+0000'"),
        ("timestamp_ltz", None, 0, "'2026-11-27 13:00:05+0000'"),
        ("timestamp_tz", None, 0, "'2026-11-27 13:00:05+0000'"),
        ("datetime", None, 0, "'2026-11-27 13:00:05+0000'"),
        ("date", None, 0, "'2026-11-27'"),
        ("timestamp_unixtime_ms", None, 0, "1795784405000"),
        ("timestamp_unixtime_s", None, 0, "1795784405"),
        ("timestamp_ntz", "America/New_York", 0, "'2026-11-27 08:00:05'"),
        ("date", "Asia/Tokyo", 0, "'2026-11-27'"),
        ("timestamp_ntz", None, 1800, "'2026-11-27 12:30:05+0000'"),
        ("timestamp_unixtime_s", None, -5, "1795784410"),
    ],
)
def test_bounds_are_rendered_as_the_spec_decides(field_type, time_zone, offset, expected) -> None:
    assert render_bound(T, field_type, time_zone, offset) == expected


def test_naive_bounds_and_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render_bound(T.replace(tzinfo=None), "date")
    with pytest.raises(ValueError, match="unknown load_timestamp_field_type"):
        render_bound(T, "epoch")


def test_identifiers_keep_their_exact_spelling() -> None:
    assert quote_identifier("UPDATED_AT") == "UPDATED_AT"
    assert quote_identifier("customer_id") == '"customer_id"'
    assert quote_identifier("$firstname") == '"$firstname"'
    assert quote_identifier('a"b') == '"a""b"'


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT a FROM t", None),
        ("select a from t where note = 'please DELETE me' and \"WITH\" = 1", None),
        ("SELECT a -- UPDATE later\nFROM t", None),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "uses WITH"),
        ("SELECT a FROM t;", "contains ';'"),
        ("UPDATE t SET a = 1", "single SELECT"),
        ("SELECT a FROM t JOIN (SELECT 1) ALTER", "uses ALTER"),
    ],
)
def test_unsupported_sql_is_found_outside_literals(sql: str, fragment: str | None) -> None:
    found = " ".join(sql_problems(sql))
    assert (fragment in found) if fragment else not found


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("(SELECT a FROM t)", None),
        ("SELECT a FROM s.t UNION ALL SELECT b FROM s.u", None),
        ("SELECT a FROM t WHERE b = $$DELETE; DROP$$", None),  # a $$ string is text
        ("SELECT a AS update FROM t", "uses UPDATE"),  # a word, even where it is a name
        ("DELETE FROM t", "single SELECT"),
        ("VALUES (1)", "single SELECT"),
        ("SHOW TABLES", "single SELECT"),
        ("-- only a comment", "single SELECT"),
        ("SELECT 1; SELECT 2", "contains ';'"),
    ],
)
def test_statement_kinds_and_words_are_read_from_snowflake_tokens(
    sql: str, fragment: str | None
) -> None:
    found = " ".join(sql_problems(sql))
    assert (fragment in found) if fragment else not found, found


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ('SELECT "Email" FROM "My_DB"."Sch"."Tbl"', ["My_DB.Sch.Tbl"]),  # quoted: exact case
        ('SELECT a FROM "My_DB".sch.tbl', ["My_DB.SCH.TBL"]),
        (
            "SELECT x.a FROM (SELECT a FROM (SELECT a FROM db.s.inner_t) y) x "
            "WHERE x.a IN (SELECT a FROM db.s.allowed WHERE b IN (SELECT b FROM db.s.deep))",
            ["DB.S.INNER_T", "DB.S.ALLOWED", "DB.S.DEEP"],
        ),
        ("SELECT a.x, b.y FROM s.a a, s.b b WHERE a.id = b.id", ["S.A", "S.B"]),  # comma join
        ("SELECT a FROM s.t UNION ALL SELECT a FROM s.u", ["S.T", "S.U"]),
        ("SELECT EXTRACT(YEAR FROM t.ts) AS y FROM s.events t", ["S.EVENTS"]),  # no table T.TS
        ("SELECT '-- FROM s.fake' AS a, b FROM s.real -- FROM s.comment\n", ["S.REAL"]),
        ("SELECT v.value AS a FROM s.t, LATERAL FLATTEN(input => t.arr) v", ["S.T"]),
        ("SELECT a FROM s.t JOIN s.t ON TRUE", ["S.T"]),  # once
    ],
)
def test_named_tables_are_found_by_parsing(sql: str, tables: list[str]) -> None:
    assert [str(t) for t in named_tables(sql)] == tables


def test_sql_sqlglot_cannot_parse_is_not_refused_and_says_why_it_has_no_tables() -> None:
    sql = "SELECT a FROM s.t MATCH_NOTHING (("  # Snowflake would refuse it in the pre-flight
    assert sql_problems(sql) == []
    analysis = analyze(sql)
    assert analysis.query is None and analysis.tables == () and not analysis.lineage
    assert analysis.problem and "Line 1" in analysis.problem


def _lineage(sql: str) -> dict[str, list[str]]:
    return {
        column: [f"{s.table}.{s.column}" for s in sources]
        for column, sources in analyze(sql).lineage.items()
    }


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (  # output names as Snowflake gives them: quoted exact, unquoted upper-cased
            'SELECT CUSTOMER_ID AS "customer_id", email, "Mixed" AS m FROM "Db".crm.scores',
            {
                "customer_id": ["Db.CRM.SCORES.CUSTOMER_ID"],
                "EMAIL": ["Db.CRM.SCORES.EMAIL"],
                "M": ["Db.CRM.SCORES.Mixed"],
            },
        ),
        (  # through nested subqueries, and through a SELECT * over one table
            "SELECT x.e AS \"email\", x.n || ' ' || x.m AS full_name "
            "FROM (SELECT email e, first n, last m FROM (SELECT * FROM crm.people) p) x",
            {"email": ["CRM.PEOPLE.EMAIL"], "FULL_NAME": ["CRM.PEOPLE.FIRST", "CRM.PEOPLE.LAST"]},
        ),
        (  # a comma join with qualified columns; an unqualified one could come from either
            "SELECT s.email, t.score, other FROM db.a.s s, db.a.t t WHERE s.id = t.id",
            {"EMAIL": ["DB.A.S.EMAIL"], "SCORE": ["DB.A.T.SCORE"]},
        ),
        (  # a union reads each branch's column at the same position
            "SELECT email, ts FROM s1.a UNION ALL SELECT mail, updated FROM s2.b",
            {"EMAIL": ["S1.A.EMAIL", "S2.B.MAIL"], "TS": ["S1.A.TS", "S2.B.UPDATED"]},
        ),
        (  # constants, COUNT(*), unnamed expressions and * columns are left out
            "SELECT *, 1 AS one, COUNT(*) AS n, ts::date, '--' AS dash FROM s.t GROUP BY ALL",
            {},
        ),
        (  # a SELECT * over a join: the column's table is unknown
            "SELECT x.a FROM (SELECT * FROM s.t t JOIN s.u u ON t.id = u.id) x",
            {},
        ),
        (  # a union's columns match by position, unknown when its first branch selects *
            "SELECT x.a FROM (SELECT * FROM s.t UNION ALL SELECT b FROM s.u) x",
            {},
        ),
        (  # a flattened array: the value comes from the array column
            'SELECT v.value:email::string AS "email" FROM s.t, LATERAL FLATTEN(input => t.arr) v',
            {"email": ["S.T.ARR"]},
        ),
    ],
)
def test_column_lineage_traces_each_output_column_to_its_source_columns(
    sql: str, expected: dict[str, list[str]]
) -> None:
    assert _lineage(sql) == expected


def _earliest(interval, now):
    catch_up = cadence(interval).catch_up
    assert catch_up is not None
    return catch_up.earliest_start(now)


SWALLOWS = "would swallow the closing parenthesis"


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT a FROM t -- latest only", "ends in a -- comment, which " + SWALLOWS),
        ("SELECT a FROM t // latest only", "ends in a // comment, which " + SWALLOWS),
        ("SELECT a FROM t /* latest only", "opens a /* comment that is never closed"),
        ("SELECT a FROM t /* x */ /* y", "opens a /* comment that is never closed"),
        ("SELECT a FROM t WHERE b = 'x' -- it's late", "ends in a -- comment"),
        ("SELECT a -- first\nFROM t -- last", "ends in a -- comment"),
        ("SELECT a FROM t -- x\n", None),  # the newline ends the comment
        ("SELECT a /* a -- b */ FROM t", None),
        ("SELECT a FROM t WHERE b = '-- not a comment'", None),
        ("SELECT 'http://x' AS a, \"/*\" FROM t", None),
        ("SELECT $$it's -- not a comment$$ AS a FROM t", None),
        ("SELECT a FROM t WHERE b = 'it''s /* not */ -- either'", None),
        ("SELECT a FROM t WHERE b = 'never closed -- x", None),  # Snowflake reports the quote
        ("SELECT a FROM t /* closed */ WHERE b = 'never closed", None),
        ("SELECT a FROM t /* closed */ -- open", "ends in a -- comment"),
    ],
)
def test_a_comment_that_runs_to_the_end_is_refused(sql: str, fragment: str | None) -> None:
    found = " ".join(sql_problems(sql))
    assert (fragment in found) if fragment else not found, found
    if fragment:
        assert "SELECT ... FROM ( <sql> ) WHERE" in found and "/* ... */" in found


def test_catch_up_limits_are_calendar_aware() -> None:
    now = datetime(2026, 8, 31, 10, 0, tzinfo=UTC)
    assert _earliest("hourly", now) == now - timedelta(days=7)
    assert _earliest("daily", now) == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    assert _earliest("weekly", now) == datetime(2023, 8, 31, 10, 0, tzinfo=UTC)
    assert _earliest("monthly", now) == datetime(2021, 8, 31, 10, 0, tzinfo=UTC)
    march_31 = datetime(2024, 3, 31, tzinfo=UTC)
    assert _earliest("monthly", march_31) == datetime(2019, 3, 31, tzinfo=UTC)
    assert _earliest("daily", march_31) == datetime(2023, 9, 30, tzinfo=UTC)  # clamped


def test_the_cadence_table_says_what_each_cadence_is() -> None:
    assert [n for n, c in CADENCES.items() if c.is_interval] == [
        "hourly", "daily", "weekly", "monthly",
    ]  # fmt: skip
    start = datetime(2026, 11, 28, 12, 5, tzinfo=UTC)  # a Saturday
    assert cadence("weekly").cron_for(start) == "5 12 * * 6"
    assert cadence("monthly").cron_for(start) == "5 12 28 * *"
    assert cadence("daily").key_format(start.replace(hour=0, minute=0)) == "%Y-%m-%d"
    assert cadence("hourly").key_format(start.replace(hour=0, minute=0)) == "%Y-%m-%d-%H:%M"
    with pytest.raises(ValueError, match="not partitioned"):
        cadence("once").cron_for(start)
    assert record_limit("hourly") == 1_000_000
    assert record_limit("hourly", {"hourly": 5}) == 5 and record_limit("daily", {"hourly": 5}) > 5


@pytest.fixture(scope="module")
def boundary_table(local_snowflake: LocalSnowflake):
    connection = local_snowflake.connect()
    cursor = connection.cursor()
    create_table(cursor, "SQL_TEST.S.EVENTS", "EMAIL VARCHAR, NOTE VARCHAR, TS TIMESTAMP_NTZ")
    cursor.execute(
        "INSERT INTO SQL_TEST.S.EVENTS VALUES "
        "('a@x.io', 'start of window 0', '2026-11-27 00:00:00'), "
        "('b@x.io', 'inside window 0', '2026-11-27 00:30:00'), "
        "('c@x.io', 'shared boundary', '2026-11-27 01:00:00'), "
        "(NULL, 'no identity, window 1', '2026-11-27 01:15:00'), "
        "('d@x.io', 'end of window 1', '2026-11-27 02:00:00'), "
        "('e@x.io', 'after window 1', '2026-11-27 02:00:01')"
    )
    yield cursor
    connection.close()


def _spec(sql: str, column: str = "TS") -> SyncSpec:
    return SyncSpec(
        name="events",
        description="test",
        sql=sql,
        load_timestamp=LoadTimestamp(column=column, type="timestamp_ntz"),
        schedule=Schedule(interval="hourly", start=datetime(2026, 11, 27, tzinfo=UTC)),
        feed_key_env="FEED",
    )


HOURS = [
    Window(
        f"h{i}", datetime(2026, 11, 27, i, tzinfo=UTC), datetime(2026, 11, 27, i + 1, tzinfo=UTC)
    )
    for i in range(3)
]


def test_grouped_counts_equal_one_count_per_window_boundaries_in_both(boundary_table) -> None:
    sql = 'SELECT EMAIL AS "email", NOTE AS "note", TS FROM SQL_TEST.S.EVENTS'
    report = run_preflight(boundary_table, _spec(sql), HOURS)
    assert [c.rows for c in report.counts] == [3, 3, 2]
    assert [c.rows_without_identity for c in report.counts] == [0, 1, 0]
    assert report.queries == 2
    for window in HOURS:
        predicate = window_predicate("TS", "timestamp_ntz", window.start, window.end)
        (alone,) = boundary_table.execute(
            f"SELECT COUNT(*) FROM ( {sql} ) WHERE {predicate}"
        ).fetchone()
        assert report.count_for(window.key).rows == alone


def test_grouped_count_needs_a_window() -> None:
    with pytest.raises(ValueError, match="at least one window"):
        grouped_count_query("SELECT 1", [], "TRUE")


def test_preflight_refuses_an_over_limit_window_naming_count_and_limit(
    boundary_table,
) -> None:
    sql = 'SELECT EMAIL AS "email", TS FROM SQL_TEST.S.EVENTS'
    with pytest.raises(PreflightError) as raised:
        run_preflight(boundary_table, _spec(sql), HOURS, record_limits={"hourly": 2})
    text = str(raised.value)
    assert "nothing was sent to mParticle" in text
    assert "window h0 (2026-11-27T00:00:00Z .. 2026-11-27T01:00:00Z) holds 3 rows" in text
    assert "hourly limit is 2 per request" in text and "window h2" not in text


@pytest.mark.parametrize(
    ("sql", "column", "fragment"),
    [
        (
            'SELECT EMAIL AS "email" FROM SQL_TEST.S.EVENTS',
            "TS",
            "load timestamp column 'TS' is not",
        ),
        ("SELECT NOTE, TS FROM SQL_TEST.S.EVENTS", "TS", "no identity column"),
        ("SELECT NOPE FROM SQL_TEST.S.EVENTS", "TS", "the model SQL fails in Snowflake"),
        (
            'SELECT EMAIL AS "email", TS, '
            + ", ".join(f"1 AS C{i}" for i in range(100))
            + " FROM SQL_TEST.S.EVENTS",
            "TS",
            "returns 102 columns; mParticle allows 100",
        ),
    ],
)
def test_preflight_refuses_models_mparticle_would_reject(
    boundary_table, sql, column, fragment
) -> None:
    with pytest.raises(PreflightError, match=fragment.replace("(", r"\(")):
        run_preflight(boundary_table, _spec(sql, column), HOURS)
