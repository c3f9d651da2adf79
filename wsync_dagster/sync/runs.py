"""Find and wait for mParticle's runs of many windows at once.

One paged run listing per poll covers every window of a backfill (``pageSize`` 500, filtered to the
backfill's logical dates), instead of one status call per partition. Unknown run states are never taken
for success: a window whose run is in a state this code does not know stays pending until the timeout.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from wsync_dagster.mparticle import PipelineRun, RunState, WarehouseSyncClient
from wsync_dagster.mparticle.polling import ExponentialBackoff, poll
from wsync_dagster.sync.windows import Window

LISTING_PAGE_SIZE = 500

T = TypeVar("T")


@dataclass(frozen=True)
class WaitSettings:
    timeout: float
    poll_interval: float
    max_poll_interval: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]

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
    return run is not None and run.state in (RunState.SUCCESS, RunState.FAILED)


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
        pipeline_id, start=min(starts), end=max(starts), page_size=LISTING_PAGE_SIZE
    )
    return runs_by_window(runs, windows)


def wait_for_windows(
    client: WarehouseSyncClient,
    pipeline_id: str,
    windows: Sequence[Window],
    settings: WaitSettings,
    observe: Callable[[Mapping[str, PipelineRun]], None] | None = None,
) -> tuple[Mapping[str, PipelineRun], int]:
    """Poll until every window's run is terminal or the timeout passes; returns (runs, polls).

    Windows still without a terminal run at the timeout are simply absent or non-terminal in the
    result; the caller reports them. A terminal run never changes, so each poll lists only the
    range of logical dates still pending. ``observe`` sees the runs found after every poll.
    """
    found: dict[str, PipelineRun] = {}

    def fetch() -> dict[str, PipelineRun]:
        pending = [w for w in windows if not is_terminal(found.get(w.key))]
        found.update(list_window_runs(client, pipeline_id, pending))
        if observe is not None:
            observe(found)
        return found

    return settings.poll(fetch, lambda runs: all(is_terminal(runs.get(w.key)) for w in windows))
