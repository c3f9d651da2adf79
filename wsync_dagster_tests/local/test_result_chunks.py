"""The stand-in serves large results in chunks, as Snowflake does, so ``fetchmany`` streams."""

from typing import Any

from wsync_dagster.local import result_chunks


def test_large_results_arrive_complete_and_in_order(snowflake_cursor: Any) -> None:
    rows = result_chunks.CHUNK_ROWS * 2 + 7
    snowflake_cursor.execute(
        "SELECT SEQ4() AS N, 'row ' || SEQ4() AS LABEL "
        f"FROM TABLE(GENERATOR(ROWCOUNT => {rows})) ORDER BY N"
    )
    seen: list[int] = []
    while batch := snowflake_cursor.fetchmany(10_000):
        seen += [row[0] for row in batch]
    assert seen == list(range(rows))


def test_result_batches_are_chunked(snowflake_cursor: Any) -> None:
    rows = result_chunks.CHUNK_ROWS * 3
    snowflake_cursor.execute(f"SELECT SEQ4() AS N FROM TABLE(GENERATOR(ROWCOUNT => {rows}))")
    batches = snowflake_cursor.get_result_batches()
    assert [batch.rowcount for batch in batches] == [result_chunks.CHUNK_ROWS] * 3
    assert len(snowflake_cursor.fetchall()) == rows


def test_small_results_stay_inline(snowflake_cursor: Any) -> None:
    snowflake_cursor.execute("SELECT 1")
    assert len(snowflake_cursor.get_result_batches()) == 1
