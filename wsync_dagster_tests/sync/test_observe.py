"""Reading runs after a cursor: thousands of runs over bounded ticks, without loss or repeats."""

import json
from datetime import UTC, datetime, timedelta

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.observe.batch import (
    Mark,
    ObserveLimits,
    dump_cursor,
    parse_cursor,
    parse_read_first,
    read_batch,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _run(index: int, state: str = "success") -> PipelineRun:
    start = T0 + timedelta(hours=index)
    return PipelineRun.model_validate(
        {
            "pipeline_run_id": index + 1, "id": "p", "logical_date": start,
            "data_interval_start": start, "data_interval_end": start + timedelta(hours=1),
            "pipeline_run_state": state,
        }
    )  # fmt: skip


class ListedRuns:
    """Serves ``list_pipeline_runs`` as the API does: newest first, inclusive bounds, pages."""

    def __init__(self, runs: list[PipelineRun]) -> None:
        self.runs = runs
        self.listings = 0

    def list_pipeline_runs(
        self,
        pipeline_id: str,
        page: int = 1,
        page_size: int = 50,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[PipelineRun]:
        self.listings += 1
        chosen = [
            r
            for r in self.runs
            if r.logical_date is not None
            and (start is None or r.logical_date >= start)
            and (end is None or r.logical_date <= end)
        ]
        chosen.sort(key=lambda r: (r.logical_date, r.pipeline_run_id), reverse=True)
        return chosen[(page - 1) * page_size : page * page_size]


def test_thousands_of_runs_are_read_over_bounded_ticks_without_loss() -> None:
    client = ListedRuns([_run(i) for i in range(5000)])
    limits = ObserveLimits(page_size=500, max_runs_per_pipeline=200, max_listings_per_pipeline=4)
    mark: Mark | None = None
    seen: list[int] = []
    listings_per_tick = []
    while True:
        before = client.listings
        batch = read_batch(client, "p", mark, limits, floor=T0)  # pyright: ignore[reportArgumentType]
        listings_per_tick.append(client.listings - before)
        if not batch.runs:
            break
        assert len(batch.runs) <= limits.max_runs_per_pipeline
        seen += [r.pipeline_run_id for r in batch.runs]
        mark = Mark.of(batch.runs[-1])
    assert seen == list(range(1, 5001))
    assert len(listings_per_tick) == 26  # 25 ticks of 200 runs, then one that finds nothing
    assert max(listings_per_tick) == 2 and listings_per_tick[-1] == 1


def test_the_batch_stops_before_a_run_that_has_not_ended() -> None:
    runs = [_run(0), _run(1), _run(2, "running"), _run(3, "queued")]
    client = ListedRuns(runs)
    batch = read_batch(client, "p", None, ObserveLimits(), floor=T0)  # pyright: ignore[reportArgumentType]
    assert [r.pipeline_run_id for r in batch.runs] == [1, 2]
    assert batch.waiting is not None and batch.waiting.pipeline_run_id == 3

    runs[2], runs[3] = _run(2, "failed"), _run(3)
    later = read_batch(client, "p", Mark.of(batch.runs[-1]), ObserveLimits(), floor=T0)  # pyright: ignore[reportArgumentType]
    assert [r.pipeline_run_id for r in later.runs] == [3, 4] and later.waiting is None


def test_a_run_in_an_unknown_state_is_never_passed_over() -> None:
    client = ListedRuns([_run(0), _run(1, "dataset_triggered"), _run(2)])
    batch = read_batch(client, "p", None, ObserveLimits(), floor=T0)  # pyright: ignore[reportArgumentType]
    assert [r.pipeline_run_id for r in batch.runs] == [1]


def test_the_cursor_round_trips_and_ignores_what_it_does_not_know() -> None:
    marks = {"a": Mark(T0, 7), "b": Mark(T0 + timedelta(days=1), 9)}
    assert parse_cursor(dump_cursor(marks)) == marks
    assert parse_cursor(None) == {} and parse_cursor('{"version": 0}') == {}


def test_the_pipelines_to_read_first_ride_in_the_cursor_and_older_cursors_still_parse() -> None:
    marks = {"a": Mark(T0, 7)}
    cursor = dump_cursor(marks, ["c", "b"])
    assert parse_cursor(cursor) == marks and parse_read_first(cursor) == ("c", "b")
    assert parse_read_first(dump_cursor(marks)) == () and parse_read_first(None) == ()
    # Without pipelines to read first, the cursor is the one earlier versions wrote.
    assert json.loads(dump_cursor(marks)) == {
        "version": 1,
        "pipelines": {"a": {"logical_date": T0.isoformat(), "run_id": 7}},
    }
