"""Waiting for many windows: one listing per poll, narrowed to what is still pending."""

from datetime import UTC, datetime, timedelta
from typing import Any

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.engine.runs import WaitSettings, WindowWatch
from wsync_dagster.sync.registry.windows import Window


def wait_for_windows(client, pipeline_id, windows, settings):
    """Drive a WindowWatch to its end: (runs found, listings)."""
    watch = WindowWatch(client, pipeline_id, windows, settings)
    for _ in watch:
        pass
    return watch.found, watch.polls


T0 = datetime(2026, 11, 28, tzinfo=UTC)
WINDOWS = [Window(f"h{i}", T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1)) for i in range(4)]


def _run(index: int, state: str, run_id: int | None = None) -> PipelineRun:
    start = T0 + timedelta(hours=index)
    return PipelineRun.model_validate(
        {
            "pipeline_run_id": run_id or index + 1, "id": "p", "logical_date": start,
            "data_interval_start": start, "data_interval_end": start + timedelta(hours=1),
            "pipeline_run_state": state,
        }
    )  # fmt: skip


class ScriptedRuns:
    """Serves one scripted list of runs per listing and records each listing's range."""

    def __init__(self, *listings: list[PipelineRun]) -> None:
        self.listings = list(listings)
        self.ranges: list[tuple[datetime, datetime]] = []

    def iter_pipeline_runs(self, pipeline_id: str, start: Any, end: Any, page_size: int) -> Any:
        self.ranges.append((start, end))
        served = self.listings.pop(0)
        return iter([r for r in served if start <= r.logical_date <= end])


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _settings(time: FakeTime, timeout: float = 1000) -> WaitSettings:
    return WaitSettings(timeout, 5, 20, time.sleep, lambda: time.now)


def test_polls_back_off_and_narrow_to_the_pending_windows() -> None:
    client = ScriptedRuns(
        [_run(0, "success"), _run(1, "running")],
        [_run(1, "success"), _run(2, "success"), _run(3, "queued")],
        [_run(3, "failed")],
    )
    time = FakeTime()
    found, polls = wait_for_windows(client, "p", WINDOWS, _settings(time))  # pyright: ignore[reportArgumentType]
    # no run seen ending yet: wait the first interval; two ended in 5 s, one pending: at least 5 s
    assert polls == 3 and time.sleeps == [5, 5]
    assert {k: r.pipeline_run_state for k, r in found.items()} == {
        "h0": "success", "h1": "success", "h2": "success", "h3": "failed",
    }  # fmt: skip
    hours = [(a.hour, b.hour) for a, b in client.ranges]
    assert hours == [(0, 3), (1, 3), (3, 3)]


def test_a_rerun_of_a_window_counts_the_newest_run() -> None:
    client = ScriptedRuns([_run(0, "failed", 1), _run(0, "success", 9)])
    found, _ = wait_for_windows(client, "p", WINDOWS[:1], _settings(FakeTime()))  # pyright: ignore[reportArgumentType]
    assert found["h0"].pipeline_run_id == 9


def test_the_timeout_returns_what_is_known_without_calling_unknown_states_success() -> None:
    stuck = [_run(0, "success"), _run(1, "dataset_triggered")]
    client = ScriptedRuns(*([stuck] * 10))
    time = FakeTime()
    found, polls = wait_for_windows(client, "p", WINDOWS[:2], _settings(time, timeout=30))  # pyright: ignore[reportArgumentType]
    assert found["h1"].state is None and found["h1"].pipeline_run_state == "dataset_triggered"
    assert time.now == 30 and polls == 4  # 5 + 10 + 15 (capped by what is left of the timeout)
