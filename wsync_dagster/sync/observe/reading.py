"""What a runs-sensor tick reads from mParticle: each watched pipeline's runs after its mark, several
pipelines at a time on the tick's one client, within the tick's time budget; a pipeline the tick
could not read (its time ran out, mParticle refused, a read was left behind) is read first next
time. ``sensor.py`` counts and records what this returns (docs/observation.md).
"""

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RunState,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster.resources import MParticleResource
from wsync_dagster.sync.assets.in_flight import job_assets
from wsync_dagster.sync.engine.context import first_line
from wsync_dagster.sync.engine.reasons import attribute
from wsync_dagster.sync.observe.batch import Batch, Mark, ObserveLimits, read_batch
from wsync_dagster.sync.registry.specs import SyncSpec
from wsync_dagster.sync.registry.windows import WindowCount
from wsync_dagster.sync.registry.workspace import BoundSync, Workspace

DEFAULT_LIMITS = ObserveLimits()
WAIT_STEP_SECONDS = 1.0


# A sync the sensor watches, with its own registry, and the key of its asset.
Watched = tuple[BoundSync, dg.AssetKey]


@dataclass
class Observed:
    """One sync's batch, and what the tick learned about it."""

    bound: BoundSync
    key: dg.AssetKey
    batch: Batch
    reasons: dict[int, str] = field(default_factory=dict)  # failed runs' reasons, by run id
    counts: dict[int, WindowCount] = field(default_factory=dict)
    # the windows before the batch's, recounted in the same query for late rows (by partition)
    recounts: dict[str, WindowCount] = field(default_factory=dict)
    preflight_note: str | None = None
    schema: dict[str, Any] = field(default_factory=dict)  # the column schema, when discovered

    @property
    def spec(self) -> SyncSpec:
        return self.bound.spec


@dataclass(frozen=True)
class RunsWatch:
    """What the runs sensor watches, built once when the code location loads: every sync (each with
    its own registry and its asset's key), the workspace they share, and what a tick may spend."""

    workspace: Workspace
    watched: Sequence[Watched]
    limits: ObserveLimits = DEFAULT_LIMITS
    clock: Callable[[], float] = time.monotonic

    def jobs(self) -> dict[str, frozenset[dg.AssetKey]]:
        """The assets of each job of the watched syncs, for the runs in flight that have no asset
        selection (:mod:`wsync_dagster.sync.assets.in_flight`)."""
        return job_assets((bound.spec, key) for bound, key in self.watched)


@dataclass
class Tick:
    """The outcome of one evaluation, before it becomes a SensorResult."""

    marks: dict[str, Mark]
    limits: ObserveLimits = DEFAULT_LIMITS
    read_first: Sequence[str] = ()
    """Pipelines to read before the others: those the previous tick left unread (from the
    cursor); after :func:`read_runs`, those this tick left unread."""
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.AssetObservation] = field(
        default_factory=list
    )
    notes: list[str] = field(default_factory=list)
    listings: int = 0
    recorded: int = 0
    duplicates: int = 0


def small_budget(mparticle: MParticleResource, limits: ObserveLimits) -> MParticleResource:
    """The resource with a retry budget a sensor can afford (it must end well inside its timeout)."""
    return mparticle.model_copy(
        update={
            "retry_budget_seconds": min(
                mparticle.retry_budget_seconds, limits.retry_budget_seconds
            ),
            "max_attempts": min(mparticle.max_attempts, limits.max_attempts),
        }
    )


# Errors that are about the credential or the whole workspace, not one pipeline: reading the other
# pipelines would only fail the same way (or make the throttling worse), so the rest wait a tick.
WORKSPACE_ERRORS = (AuthenticationError, PermissionDeniedError, RateLimitedError)


@dataclass
class PipelineRead:
    """One pipeline's read: its batch and its failed runs' reasons, or the error that stopped it."""

    batch: Batch | None = None
    reasons: dict[int, str] = field(default_factory=dict)
    error: WarehouseSyncError | None = None


def read_pipeline(
    client: WarehouseSyncClient, bound: BoundSync, mark: Mark | None, limits: ObserveLimits
) -> PipelineRead:
    """The runs of one pipeline after ``mark`` (:func:`read_batch`) and each failed run's reason."""
    try:
        batch = read_batch(client, bound.pipeline_id, mark, limits, floor=bound.spec.schedule.start)
        # Each failed run's own reason where it can be told apart (see sync/engine/reasons.py).
        failed = [r for r in batch.runs if r.state is RunState.FAILED]
        return PipelineRead(batch, attribute(client, bound.pipeline_id, failed))
    except WarehouseSyncError as error:
        return PipelineRead(error=error)


@dataclass
class Reads:
    """Where a tick's reading ended: what each pipeline read gave (by index into the watched
    syncs), which were never started or left behind, and why reading stopped early."""

    outcomes: dict[int, PipelineRead] = field(default_factory=dict)
    unread: list[int] = field(default_factory=list)
    left_behind: list[int] = field(default_factory=list)
    budget_spent: bool = False
    refused: WarehouseSyncError | None = None


def read_order(watched: Sequence[Watched], first: Sequence[str]) -> list[int]:
    """Indexes into ``watched``: the pipelines ``first`` names (the ones the previous tick could not
    read), then the others, each group in the registry's order. So when ticks are cut short, the
    pipelines at the end of the list take their turn instead of waiting for ever."""
    wanted = set(first)
    ahead = [i for i, (bound, _) in enumerate(watched) if bound.pipeline_id in wanted]
    rest = [i for i, (bound, _) in enumerate(watched) if bound.pipeline_id not in wanted]
    return ahead + rest


def read_runs(client: WarehouseSyncClient, watch: RunsWatch, tick: Tick) -> list[Observed]:
    """Each pipeline's batch, ``limits.parallel_listings`` pipelines at a time, within the budget.

    One pipeline's trouble never stops the others: a pipeline that does not exist yet (a sync never
    materialized) has nothing to record, and one whose listing fails after the client's retries
    (5xx, timeout) is skipped this tick; either keeps its cursor and is named once in the notes. A
    slow pipeline holds one reader, not the tick. No read starts after ``limits.tick_seconds``,
    and the tick stops waiting for reads still going at ``limits.abandon_seconds``. Only an error
    about the credential or the whole workspace (401, 403, 429) stops new reads. Pipelines left
    unread are named once, kept in ``tick.read_first`` and read first next tick.
    """
    watched, limits, clock = watch.watched, tick.limits, watch.clock
    started = clock()
    queue = deque(read_order(watched, tick.read_first))
    reads = Reads()
    running: dict[Future[PipelineRead], int] = {}
    workers = max(1, limits.parallel_listings)
    readers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wsync-runs-sensor")
    try:
        while queue or running:
            while queue and reads.refused is None and len(running) < workers:
                if clock() - started > limits.tick_seconds:
                    reads.budget_spent = True
                    break
                index = queue.popleft()
                bound = watched[index][0]
                mark = tick.marks.get(bound.pipeline_id)
                running[readers.submit(read_pipeline, client, bound, mark, limits)] = index
            if not running:
                break
            left = limits.abandon_seconds - (clock() - started)
            # At most a second at a time, so that the tick's own clock decides when to give up.
            timeout = min(max(left, 0.0), WAIT_STEP_SECONDS)
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                reads.outcomes[index] = outcome = future.result()
                if isinstance(outcome.error, WORKSPACE_ERRORS) and reads.refused is None:
                    reads.refused = outcome.error
            if left <= 0:
                break  # what is still being read is left behind
    finally:
        # Reads not started are dropped; one still going ends on its own (its result unused).
        readers.shutdown(wait=False, cancel_futures=True)
    reads.unread, reads.left_behind = list(queue), list(running.values())
    return sort_reads(watch, tick, reads)


def sort_reads(watch: RunsWatch, tick: Tick, reads: Reads) -> list[Observed]:
    """The batches read, in the registry's order; a note naming each pipeline left out, once."""
    watched, limits = watch.watched, tick.limits
    observed: list[Observed] = []
    not_created: list[str] = []
    turned_away: list[int] = []
    for index in sorted(reads.outcomes):
        bound, key = watched[index]
        spec, pipeline_id, outcome = bound.spec, bound.pipeline_id, reads.outcomes[index]
        if isinstance(outcome.error, NotFoundError):
            not_created.append(f"'{spec.name}' ({pipeline_id})")
        elif isinstance(outcome.error, WORKSPACE_ERRORS):
            turned_away.append(index)
        elif outcome.error is not None:
            tick.notes.append(
                f"could not read the runs of '{spec.name}' ({pipeline_id}): "
                f"{first_line(outcome.error)}; it is read again next tick, the other syncs are not "
                "held up"
            )
        elif outcome.batch is not None:
            batch = outcome.batch
            tick.listings += batch.listings
            if batch.unreadable:
                tick.notes.append(
                    f"'{spec.name}': more runs share one logical date than a listing holds "
                    f"({limits.page_size}); they cannot be ordered and are not recorded"
                )
            observed.append(Observed(bound, key, batch, outcome.reasons))
    if not_created:
        tick.notes.append(
            f"no pipeline in mParticle yet for {', '.join(not_created)}: nothing to record until "
            "a first materialization creates it"
        )

    def names(indexes: Sequence[int]) -> str:
        return ", ".join(f"'{watched[i][0].name}'" for i in sorted(indexes))

    if reads.refused is not None:
        waiting = [*turned_away, *reads.unread]
        refusal = first_line(reads.refused)
        tick.notes.append(
            f"mParticle refused to list runs ({refusal}); {names(waiting)} wait a tick"
        )
    elif reads.unread and reads.budget_spent:
        tick.notes.append(
            f"time budget spent ({limits.tick_seconds:g} s); {names(reads.unread)} wait a tick "
            "and are read first then"
        )
    if reads.left_behind:
        tick.notes.append(
            f"still reading {names(reads.left_behind)} after {limits.abandon_seconds:g} s; left "
            "behind, read first next tick"
        )
    left_out = sorted({*turned_away, *reads.unread, *reads.left_behind})
    tick.read_first = [watched[i][0].pipeline_id for i in left_out]
    return observed
