"""The runs sensor with many pipelines: reads run side by side, a slow pipeline holds up no other,
and pipelines a short tick could not read go first in the next one (benchmarks/sensor_bench.py
measures the numbers; docs/observation.md explains them)."""

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import dagster as dg
import pytest

from wsync_dagster.mparticle import PipelineRun, RunState, WarehouseSyncClient
from wsync_dagster.sync.observe import reading, sensor
from wsync_dagster.sync.observe.batch import parse_cursor
from wsync_dagster.sync.observe.reading import DEFAULT_LIMITS
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster_tests.sync.test_sensor import HOURLY, instance, materialized, only, set_up, tick

__all__ = ["instance"]  # the fixture

# Room for the three pipelines' 216 runs in one tick, where a test is about something else.
ROOMY = replace(DEFAULT_LIMITS, max_runs_per_tick=1_000)

WAIT = 30.0  # seconds a test waits for another thread before it fails (never on success)

# Called with the pipeline id before each run listing of any client (in the reading thread).
ON_LISTING: list[Callable[[str], None]] = []


@pytest.fixture(autouse=True)
def hooked_listings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    listing = WarehouseSyncClient.list_pipeline_runs

    def hooked(self: WarehouseSyncClient, pipeline_id: str, **kwargs: Any) -> list[PipelineRun]:
        for hook in ON_LISTING:
            hook(pipeline_id)
        return listing(self, pipeline_id, **kwargs)

    monkeypatch.setattr(WarehouseSyncClient, "list_pipeline_runs", hooked)
    yield
    ON_LISTING.clear()


def three_hourly(registry: Registry) -> Registry:
    """The hourly sync and two copies on the same data (each its own pipeline, 72 runs each)."""
    hourly = only(registry, HOURLY)
    template = hourly.sync(HOURLY)
    copies = tuple(template.model_copy(update={"name": f"{HOURLY}_{n}"}) for n in ("two", "three"))
    return hourly.model_copy(update={"syncs": (*hourly.syncs, *copies)})


def notes_of(result: dg.SensorResult) -> str:
    return (result.skip_reason.skip_message if result.skip_reason else "") or ""


class Clock:
    """A tick's clock that only moves when told (thread-safe)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def test_a_tick_cut_short_reads_the_pipelines_it_left_first_next_time(
    registry, resources, control, instance
) -> None:
    """Without that, the pipelines at the end of the list would never be read once every tick
    runs out of time (100 pipelines at 250 ms a listing, in the benchmark)."""
    three = three_hourly(registry)
    set_up(three, resources, control)
    clock = Clock()
    ON_LISTING.append(lambda _pipeline: clock.advance(15))  # each listing takes 15 s
    one_at_a_time = replace(ROOMY, parallel_listings=1, tick_seconds=20)
    names = [s.name for s in three.syncs]

    first = tick(instance, three, resources, None, one_at_a_time, clock)
    assert [bool(materialized(instance, n)) for n in names] == [True, True, False]
    notes = notes_of(first)
    assert notes.count("ticket_activity_three") == 1
    assert "time budget spent (20 s); 'ticket_activity_three' wait a tick" in notes

    second = tick(instance, three, resources, first.cursor, one_at_a_time, clock)
    assert all(materialized(instance, n) for n in names)
    assert set(parse_cursor(second.cursor)) == {s.resolved_pipeline_id for s in three.syncs}
    assert "'ticket_activity_two' wait a tick" in notes_of(second)


def test_a_slow_pipeline_is_left_behind_and_holds_up_no_other(
    registry, resources, control, instance, monkeypatch
) -> None:
    three = three_hourly(registry)
    set_up(three, resources, control)
    slow_id = three.sync(HOURLY).resolved_pipeline_id  # read first
    release, finished = threading.Event(), threading.Event()
    clock = Clock()

    def listing(pipeline_id: str) -> None:
        if pipeline_id == slow_id:
            release.wait(WAIT)  # a listing that hangs until the test lets it go
            finished.set()

    ON_LISTING.append(listing)
    read = set[str]()

    class Readers(ThreadPoolExecutor):
        """The tick's readers; once every other pipeline's read has ended, the tick's clock passes
        the point where it stops waiting (a done callback: the read has ended by then)."""

        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            future = super().submit(fn, *args, **kwargs)
            pipeline_id = args[1].pipeline_id

            def ended(_: Future[Any]) -> None:
                read.add(pipeline_id)
                if read == {s.resolved_pipeline_id for s in three.syncs} - {slow_id}:
                    clock.advance(DEFAULT_LIMITS.abandon_seconds + 1)

            future.add_done_callback(ended)
            return future

    monkeypatch.setattr(reading, "ThreadPoolExecutor", Readers)
    try:
        result = tick(instance, three, resources, None, ROOMY, clock)
    finally:
        release.set()
    assert finished.wait(WAIT)  # the slow read ended on its own, its result unused
    monkeypatch.undo()

    assert not materialized(instance, HOURLY)
    assert len(materialized(instance, f"{HOURLY}_two")) == 72
    assert len(materialized(instance, f"{HOURLY}_three")) == 72
    notes = notes_of(result)
    assert notes.count(f"'{HOURLY}'") == 1
    assert f"still reading '{HOURLY}' after 35 s; left behind, read first next tick" in notes
    assert slow_id not in parse_cursor(result.cursor)

    resumed = tick(instance, three, resources, result.cursor, ROOMY)
    assert len(materialized(instance, HOURLY)) == 72
    assert slow_id in parse_cursor(resumed.cursor)


class CountingSnowflake:
    """A Snowflake resource that counts the connections a tick opens."""

    def __init__(self, resource: Any) -> None:
        self.resource = resource
        self.opened = 0

    def get_connection(self) -> Any:
        self.opened += 1
        return self.resource.get_connection()


def test_a_tick_counts_every_sync_over_one_snowflake_connection(
    registry, resources, control, instance, monkeypatch
) -> None:
    """A Snowflake login per sync was most of a busy tick at 100 pipelines (51 s of a 60 s
    timeout); one connection serves every sync's two queries."""
    three = three_hourly(registry)
    set_up(three, resources, control)
    counting = CountingSnowflake(resources["snowflake"])
    monkeypatch.setattr(sensor, "settings_problem", lambda *_: None)
    result = tick(instance, three, {**resources, "snowflake": counting}, None, ROOMY)
    assert all(len(materialized(instance, s.name)) == 72 for s in three.syncs)
    assert counting.opened == 1, notes_of(result)


class SlowLogin(CountingSnowflake):
    """A Snowflake resource whose login takes ``seconds`` of the tick's clock."""

    def __init__(self, resource: Any, clock: Clock, seconds: float) -> None:
        super().__init__(resource)
        self.clock, self.seconds = clock, seconds

    def get_connection(self) -> Any:
        self.clock.advance(self.seconds)
        return super().get_connection()


class TrackedLogins:
    """A Snowflake stand-in that records each connection opened and each one closed again."""

    def __init__(self) -> None:
        self.opened: list[int] = []
        self.closed: list[int] = []

    @contextlib.contextmanager
    def get_connection(self) -> Iterator[Any]:
        number = len(self.opened)
        self.opened.append(number)
        yield SimpleNamespace(cursor=lambda: SimpleNamespace(close=lambda: None))
        self.closed.append(number)  # like dagster_snowflake: only when the context is exited


def test_a_failed_count_opens_a_new_connection_and_the_tick_closes_every_one(monkeypatch) -> None:
    """The connection opened again after a failed count is closed at the end of the tick too (the
    first version closed only the first one: the later session stayed open until collected)."""
    counted: list[str] = []

    def count_one(cursor: Any, item: Any, succeeded: Any) -> None:
        counted.append(item.name)
        if item.name == "first":
            raise RuntimeError("session expired")

    monkeypatch.setattr(sensor, "_count_one", count_one)
    success = SimpleNamespace(state=RunState.SUCCESS)
    items = [
        SimpleNamespace(name=name, batch=SimpleNamespace(runs=[success]), preflight_note=None)
        for name in ("first", "second", "third")
    ]
    logins = TrackedLogins()
    assert sensor.count_runs(cast(Any, logins), cast(Any, items)) == []
    assert counted == ["first", "second", "third"]
    assert logins.opened == [0, 1]  # one more login after the failure, shared by the rest
    assert logins.closed == [0, 1]
    assert items[0].preflight_note == "pre-flight count unavailable: session expired"
    assert items[1].preflight_note is None


def test_syncs_left_uncounted_when_the_tick_runs_out_are_recorded_next_tick_with_their_counts(
    registry, resources, control, instance, monkeypatch
) -> None:
    three = three_hourly(registry)
    set_up(three, resources, control)
    clock = Clock()
    slow = SlowLogin(resources["snowflake"], clock, 50)  # past count_seconds (45) after one login
    monkeypatch.setattr(sensor, "settings_problem", lambda *_: None)
    first = tick(instance, three, {**resources, "snowflake": slow}, None, ROOMY, clock)
    counted, *left = three.syncs
    recorded = materialized(instance, counted.name)
    assert len(recorded) == 72
    assert all("preflight/rows" in meta for metas in recorded.values() for meta in metas)
    assert not any(materialized(instance, s.name) for s in left)  # never without their counts
    notes = notes_of(first)
    assert "counting in Snowflake ran out of the tick's time" in notes
    assert all(f"'{s.name}'" in notes for s in left)
    assert set(parse_cursor(first.cursor)) == {counted.resolved_pipeline_id}

    second = tick(instance, three, resources, first.cursor, ROOMY, clock)
    for spec in left:
        recorded = materialized(instance, spec.name)
        assert len(recorded) == 72
        assert all("preflight/rows" in meta for metas in recorded.values() for meta in metas)
    assert set(parse_cursor(second.cursor)) == {s.resolved_pipeline_id for s in three.syncs}


def test_a_catch_up_larger_than_a_tick_is_recorded_over_several_ticks_each_run_once(
    registry, resources, control, instance
) -> None:
    """The daemon stores a tick's events after the tick returns (outside its clock): at most
    ``max_runs_per_tick`` runs a tick keeps that bounded; the pipelines left are read first next."""
    three = three_hourly(registry)
    set_up(three, resources, control)
    limits = replace(DEFAULT_LIMITS, max_runs_per_tick=100)
    cursor, recorded_per_tick, notes = None, [], []
    for _ in range(5):
        before = sum(len(materialized(instance, s.name)) for s in three.syncs)
        result = tick(instance, three, resources, cursor, limits)
        cursor = result.cursor
        recorded_per_tick.append(
            sum(len(materialized(instance, s.name)) for s in three.syncs) - before
        )
        notes.append(notes_of(result))
    assert recorded_per_tick == [100, 100, 16, 0, 0]
    assert (
        "runs recorded this tick reached 100; 'ticket_activity_three' are recorded next tick"
        in notes[0]
    )
    for spec in three.syncs:
        partitions = materialized(instance, spec.name)
        assert len(partitions) == 72
        assert all(len(metas) == 1 for metas in partitions.values())  # each run once
        assert all("preflight/rows" in metas[0] for metas in partitions.values())
