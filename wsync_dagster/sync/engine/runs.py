"""Find and wait for mParticle's runs of many windows at once, reporting each as it ends.

One paged run listing per poll covers every window of a backfill (``pageSize`` 500, filtered to the
logical dates still pending), instead of one status call per partition. Unknown run states are never
taken for success: a window whose run is in a state this code does not know stays pending until the
timeout.

:class:`WindowWatch` yields, after every listing, the windows whose run ended in it, so the caller
reports each partition while the others are still running. Its :class:`Pace` chooses each wait from
what is pending and how long runs take: mParticle executes a pipeline's runs one at a time, oldest
first (docs/warehouse-sync-api.md#catch-up), so the pending windows end in about ``pending`` times one
run's duration. The next listing is due when they are all expected to have ended, and never later
than the longest interval: every partition is reported at most one longest interval after its run
ends, and a 168-hour backfill needs a couple of dozen listings instead of one per run.
"""

import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from wsync_dagster.mparticle import MAX_PAGE_SIZE, PipelineRun, RunState, WarehouseSyncClient
from wsync_dagster.mparticle.polling import ExponentialBackoff, Pacing, poll, poll_each
from wsync_dagster.sync.registry.windows import Window

# Longest wait between listings while several windows are pending: the bound on how late a
# partition is reported after its run ends (a resource setting overrides it).
BACKFILL_MAX_POLL_INTERVAL = 600.0

T = TypeVar("T")


@dataclass(frozen=True)
class WaitSettings:
    timeout: float
    poll_interval: float
    max_poll_interval: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    backfill_max_poll_interval: float = BACKFILL_MAX_POLL_INTERVAL

    def poll(self, fetch: Callable[[], T], done: Callable[[T], bool]) -> tuple[T, int]:
        """:func:`wsync_dagster.mparticle.polling.poll` with these settings and a doubling back-off."""
        return poll(
            fetch,
            done,
            timeout=self.timeout,
            backoff=ExponentialBackoff(self.poll_interval, self.max_poll_interval),
            sleep=self.sleep,
            clock=self.clock,
        )


def is_terminal(run: PipelineRun | None) -> bool:
    """Whether ``run`` exists and has ended."""
    return run is not None and run.is_terminal


def runs_by_window(
    runs: Iterable[PipelineRun], windows: Sequence[Window]
) -> dict[str, PipelineRun]:
    """Each window's run (``logical_date`` = the window's start): a successful one if any, so a
    window loaded once is never taken for failed; otherwise the newest (highest id)."""
    key_of = {w.start: w.key for w in windows}
    found: dict[str, PipelineRun] = {}
    for run in runs:
        key = key_of.get(run.logical_date) if run.logical_date else None
        if key is not None and (key not in found or _rank(run) > _rank(found[key])):
            found[key] = run
    return found


def _rank(run: PipelineRun) -> tuple[bool, int]:
    return run.state is RunState.SUCCESS, run.pipeline_run_id


def list_window_runs(
    client: WarehouseSyncClient, pipeline_id: str, windows: Sequence[Window]
) -> dict[str, PipelineRun]:
    starts = [w.start for w in windows]
    runs = client.iter_pipeline_runs(
        pipeline_id, start=min(starts), end=max(starts), page_size=MAX_PAGE_SIZE
    )
    return runs_by_window(runs, windows)


def _run_seconds(run: PipelineRun) -> float | None:
    if run.start_date and run.end_date and run.end_date > run.start_date:
        return (run.end_date - run.start_date).total_seconds()
    return None


def duration_text(seconds: float) -> str:
    """``2h05m``, ``4m10s`` or ``35s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class WindowProgress:
    """What a wait over many windows knows after each listing: which runs ended, which windows
    are pending, and how long one run takes."""

    windows: Sequence[Window]
    clock: Callable[[], float]
    found: dict[str, PipelineRun] = field(default_factory=dict)
    listings: int = 0
    started: float = field(init=False)
    durations: list[float] = field(default_factory=list)  # runs' own end - start, seconds
    ended_while_waiting: int = 0  # windows first seen ended after the first listing
    last_end_seen: float | None = None  # clock when the latest of those was seen

    def __post_init__(self) -> None:
        self.started = self.clock()

    def pending_windows(self) -> list[Window]:
        return [w for w in self.windows if not is_terminal(self.found.get(w.key))]

    def update(self, runs: Mapping[str, PipelineRun]) -> list[Window]:
        """Take one listing's runs; returns the windows whose run ended since the last one."""
        newly = [w for w in self.windows if is_terminal(runs.get(w.key))]
        newly = [w for w in newly if not is_terminal(self.found.get(w.key))]
        self.found.update(runs)
        for window in newly:
            seconds = _run_seconds(self.found[window.key])
            if seconds is not None:
                self.durations.append(seconds)
        if newly and self.listings > 0:
            self.ended_while_waiting += len(newly)
            self.last_end_seen = self.clock()
        self.listings += 1
        return newly

    @property
    def failed(self) -> int:
        return sum(1 for r in self.found.values() if is_terminal(r) and r.state is RunState.FAILED)

    @property
    def pending(self) -> int:
        return len(self.pending_windows())

    @property
    def done(self) -> int:
        return len(self.windows) - self.pending - self.failed

    def seconds_per_run(self) -> float | None:
        """One run's expected duration: the longer of the runs' median duration and the time per
        run ended while waiting (which also counts queueing behind other runs); None before any
        run has been seen to end."""
        estimates = []
        if self.durations:
            estimates.append(statistics.median(self.durations))
        if self.ended_while_waiting and self.last_end_seen is not None:
            estimates.append((self.last_end_seen - self.started) / self.ended_while_waiting)
        return max(estimates) if estimates else None

    def seconds_left(self) -> float | None:
        """When the pending windows should all have ended: runs go one at a time per pipeline."""
        per_run = self.seconds_per_run()
        return None if per_run is None else self.pending * per_run

    def line(self) -> str:
        """The progress line logged after every listing."""
        left = self.seconds_left()
        if not self.pending:
            eta = "nothing left to wait for"
        elif left is None:
            eta = "time left not known yet (no run seen ending)"
        else:
            eta = f"about {duration_text(left)} left"
        return (
            f"Progress: {self.done} done, {self.failed} failed, {self.pending} pending of "
            f"{len(self.windows)} partition(s) after {duration_text(self.clock() - self.started)}"
            f"; {eta} (listing {self.listings})"
        )


@dataclass
class Pace:
    """The wait before the next listing, chosen from what is pending (a :class:`~wsync_dagster.mparticle.polling.Backoff`).

    Until a run has been seen ending: doubling from ``first``. Then: until the pending windows
    should all have ended, at least ``first``. Never more than ``most`` while one window is pending,
    nor more than ``longest`` while several are: the bound on how late a partition is reported.
    """

    progress: WindowProgress
    first: float
    most: float
    longest: float
    _ramp: ExponentialBackoff = field(init=False)

    def __post_init__(self) -> None:
        self._ramp = ExponentialBackoff(self.first, max(self.most, self.longest))

    def next(self) -> float:
        cap = self.longest if self.progress.pending > 1 else self.most
        left = self.progress.seconds_left()
        if left is None:
            return min(self._ramp.next(), cap)
        return min(max(left, self.first), cap)


class WindowWatch:
    """Poll the windows' runs until all have ended or the timeout passes, yielding after each
    listing the windows whose run ended in it (oldest first).

    A terminal run never changes, so each listing covers only the windows still pending.
    ``observe`` sees all runs found after every listing; ``log`` gets the progress line.
    """

    def __init__(
        self,
        client: WarehouseSyncClient,
        pipeline_id: str,
        windows: Sequence[Window],
        settings: WaitSettings,
        *,
        observe: Callable[[Mapping[str, PipelineRun]], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.pipeline_id = pipeline_id
        self.settings = settings
        self.observe = observe
        self.log = log
        self.progress = WindowProgress(windows, settings.clock)

    @property
    def found(self) -> Mapping[str, PipelineRun]:
        return self.progress.found

    @property
    def polls(self) -> int:
        return self.progress.listings

    def _fetch(self) -> list[Window]:
        runs = list_window_runs(self.client, self.pipeline_id, self.progress.pending_windows())
        newly = self.progress.update(runs)
        if self.observe is not None:
            self.observe(self.progress.found)
        if self.log is not None:
            self.log(self.progress.line())
        return newly

    def __iter__(self) -> Iterator[list[Window]]:
        s = self.settings
        pace = Pace(
            self.progress, s.poll_interval, s.max_poll_interval, s.backfill_max_poll_interval
        )
        pacing = Pacing(s.timeout, pace, s.sleep, s.clock)
        yield from poll_each(self._fetch, lambda _: self.progress.pending == 0, pacing)
