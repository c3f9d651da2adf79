"""Adaptive polling on a fake clock: a simulated pipeline runs the windows one at a time."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.engine.runs import Pace, WaitSettings, WindowProgress, WindowWatch
from wsync_dagster.sync.registry.windows import Window

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def _windows(n: int) -> list[Window]:
    return [Window(f"h{i}", T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1)) for i in range(n)]


class SequentialPipeline:
    """mParticle's catch-up on a fake clock: run i starts when run i-1 ends (after ``queued``
    earlier runs of windows outside the listing), each taking ``seconds``; ``fail`` ends failed."""

    def __init__(self, n: int, seconds: float, queued: int = 0, fail: frozenset[int] = frozenset()):
        self.n, self.seconds, self.queued, self.fail = n, seconds, queued, fail
        self.now = 0.0
        self.listings = 0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def ends(self, i: int) -> float:
        return (self.queued + i + 1) * self.seconds

    def _run(self, i: int) -> PipelineRun | None:
        start = self.ends(i) - self.seconds
        if self.now < start:
            return None
        done = self.now >= self.ends(i)
        state = ("failed" if i in self.fail else "success") if done else "running"
        at = T0 + timedelta(days=30)
        return PipelineRun.model_validate(
            {
                "pipeline_run_id": i + 1, "id": "p", "logical_date": T0 + timedelta(hours=i),
                "pipeline_run_state": state, "start_date": at + timedelta(seconds=start),
                "end_date": at + timedelta(seconds=self.ends(i)) if done else None,
            }
        )  # fmt: skip

    def iter_pipeline_runs(self, pipeline_id: str, start: Any, end: Any, page_size: int) -> Any:
        self.listings += 1
        runs = (self._run(i) for i in range(self.n))
        return iter([r for r in runs if r and start <= r.logical_date <= end])


def _watch(pipeline: SequentialPipeline, timeout: float = 100_000) -> tuple[WindowWatch, dict]:
    """Run a watch to the end; returns it and when (fake clock) each window was reported."""
    settings = WaitSettings(timeout, 5, 60, pipeline.sleep, lambda: pipeline.now, 600)
    watch = WindowWatch(pipeline, "p", _windows(pipeline.n), settings)  # pyright: ignore[reportArgumentType]
    reported: dict[str, float] = {}
    for newly in watch:
        reported.update({w.key: pipeline.now for w in newly})
    return watch, reported


def _lags(pipeline: SequentialPipeline, reported: dict[str, float]) -> list[float]:
    return [reported[f"h{i}"] - pipeline.ends(i) for i in range(pipeline.n)]


def test_a_week_of_hourly_runs_needs_at_most_30_listings_and_reports_within_the_longest_wait():
    pipeline = SequentialPipeline(168, 60)
    watch, reported = _watch(pipeline)
    assert len(reported) == 168 and watch.progress.pending == 0
    assert pipeline.listings == watch.polls <= 30
    lags = _lags(pipeline, reported)
    assert min(lags) >= 0 and max(lags) <= 600
    assert max(pipeline.sleeps) <= 600


def test_a_short_backfill_is_looked_at_when_it_should_have_ended_not_a_longest_wait_later():
    pipeline = SequentialPipeline(6, 60)
    watch, reported = _watch(pipeline)
    assert len(reported) == 6
    # the first as it ends, the rest when they are all expected to have ended (6 x 60 s)
    assert min(reported.values()) <= 60 + 15 and max(reported.values()) <= 75 + 5 * 75
    assert watch.polls <= 6


def test_one_window_waits_as_before_doubling_up_to_the_plain_maximum():
    pipeline = SequentialPipeline(1, 1000)
    _, reported = _watch(pipeline)
    assert pipeline.sleeps[:5] == [5, 10, 20, 40, 60] and max(pipeline.sleeps) == 60
    assert reported["h0"] - 1000 <= 60


def test_windows_queued_behind_other_runs_back_off_to_the_longest_wait_not_one_listing_a_run():
    pipeline = SequentialPipeline(6, 60, queued=162)  # the last 6 hours of a fresh catch-up
    watch, reported = _watch(pipeline)
    assert len(reported) == 6
    assert watch.polls <= 30 and max(_lags(pipeline, reported)) <= 600


def test_failed_runs_end_the_wait_like_successes_and_count_as_failed():
    pipeline = SequentialPipeline(4, 60, fail=frozenset({1}))
    watch, reported = _watch(pipeline)
    assert len(reported) == 4
    assert (watch.progress.done, watch.progress.failed, watch.progress.pending) == (3, 1, 0)


def test_the_timeout_stops_the_watch_with_what_had_ended_already_yielded():
    pipeline = SequentialPipeline(168, 60)
    watch, reported = _watch(pipeline, timeout=3000)
    assert pipeline.now == 3000
    assert 30 <= len(reported) <= 50 and watch.progress.pending == 168 - len(reported)
    assert all(pipeline.ends(int(k[1:])) <= t for k, t in reported.items())


class _Progress:
    def __init__(self, pending: int, left: float | None) -> None:
        self.pending, self.left = pending, left

    def seconds_left(self) -> float | None:
        return self.left


@pytest.mark.parametrize(
    ("pending", "left", "expected"),
    [
        (10, None, [5, 10, 20, 40, 80]),  # nothing seen ending: doubling, towards the longest
        (1, None, [5, 10, 20, 40, 60]),  # one window: never more than the plain maximum
        (10, 3000.0, [600, 600]),  # far from done: the longest wait bounds the report lag
        (10, 240.0, [240, 240]),  # all expected to end in 4 minutes: look then
        (3, 1.0, [5, 5]),  # never quicker than the first interval
    ],
)
def test_pace_chooses_the_wait_from_what_is_pending(
    pending: int, left: float | None, expected: list[float]
) -> None:
    pace = Pace(_Progress(pending, left), first=5, most=60, longest=600)  # pyright: ignore[reportArgumentType]
    assert [pace.next() for _ in expected] == expected


def test_progress_estimates_the_time_left_from_run_durations_and_the_pace_of_endings():
    pipeline = SequentialPipeline(10, 100)
    progress = WindowProgress(_windows(10), lambda: pipeline.now)
    runs: Iterator[Any]
    pipeline.now = 250  # two ended before the first look: their durations count, not their pace
    runs = pipeline.iter_pipeline_runs("p", T0, T0 + timedelta(hours=9), 500)
    progress.update({f"h{int(r.logical_date.hour)}": r for r in runs})
    assert (progress.done, progress.pending) == (2, 8)
    assert progress.seconds_left() == 8 * 100
    assert "2 done, 0 failed, 8 pending of 10" in progress.line()
    assert "about 13m20s left" in progress.line()


def test_poll_each_hands_out_each_result_before_waiting_and_stops_when_closed() -> None:
    from wsync_dagster.mparticle.polling import ExponentialBackoff, Pacing, poll_each

    calls: list[float] = []
    pipeline = SequentialPipeline(1, 60)

    def fetch() -> int:
        calls.append(pipeline.now)
        return len(calls)

    pacing = Pacing(1000, ExponentialBackoff(5, 60), pipeline.sleep, lambda: pipeline.now)
    results = poll_each(fetch, lambda n: n >= 10, pacing)
    assert next(results) == 1 and pipeline.sleeps == []  # nothing waited before the caller acts
    assert next(results) == 2 and pipeline.sleeps == [5]
    results.close()
    assert calls == [0, 5] and pipeline.sleeps == [5]
