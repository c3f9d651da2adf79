"""Rotation: an ``on_demand`` sync with ``rotate: true`` holds an active-pipeline slot only while it runs.

mParticle allows a few active pipelines per workspace (5 unless the registry's ``limits`` say
otherwise; docs/warehouse-sync-api.md#limits), and a paused pipeline does not count. A rotating
sync's pipeline is therefore kept paused, and each materialization:

1. pauses the registry's rotating pipelines that an earlier, crashed materialization left active
   with no run in flight (:func:`sweep`), so a crash never holds a slot for ever;
2. waits for a free slot, counted in mParticle (every pipeline of the workspace, those made outside
   this project included) and activates its pipeline; a 400 because another client took the last
   slot in between is waited out like a full workspace, within ``run_timeout_seconds``
   (:func:`activate`);
3. triggers a run, or attaches to the one in flight (:func:`trigger`);
4. waits for it, then pauses the pipeline again whatever happened (:func:`holding_slot`).

Dagster queues rotating materializations before they reach mParticle: they all share one pool,
:data:`ROTATING_POOL`, whose limit a deployment sets to the free slots (see docs/rotation.md).
mParticle's count, not the pool, is what keeps the workspace within its limit; the pool only keeps
the queue in Dagster instead of in polling loops.
"""

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from wsync_dagster.mparticle import (
    BadRequestError,
    NotFoundError,
    Pipeline,
    PipelineRun,
    TriggerResult,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster.sync.engine.context import EngineContext, Log, SyncFailure, first_line
from wsync_dagster.sync.engine.reads import counts_as_active
from wsync_dagster.sync.engine.reconcile import desired_pipeline
from wsync_dagster.sync.engine.runs import WaitSettings
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster.sync.registry.workspace import Workspace

# The one Dagster pool of every rotating sync; its limit is the free active-pipeline slots.
ROTATING_POOL = "wsync/rotating-slots"

# A trigger refused because a concurrent sweep or materialization paused the pipeline in between
# is retried after activating again, this many times.
TRIGGER_ATTEMPTS = 3
# An activation refused this many times in a row while the count showed a free slot is refused
# for another reason than the limit: the materialization fails with mParticle's message.
REFUSALS_WITH_ROOM = 3
# A rotating pipeline written (activated) this recently is never swept: it may be a live
# materialization's, between its activation and its trigger.
SWEEP_GRACE = timedelta(minutes=2)


def rotating_pool_limit(workspace: Workspace) -> int:
    """The limit to give :data:`ROTATING_POOL`: the slots the permanent syncs of every registry of
    the code location leave.

    Pipelines made outside this project take slots too; subtract them when setting the limit (if
    the pool is too large, rotating materializations wait in mParticle's count instead)."""
    return workspace.free_slots()


def run_in_flight(client: WarehouseSyncClient, pipeline_id: str) -> PipelineRun | None:
    """The pipeline's latest run if it is still triggered, queued or running."""
    try:
        latest = client.get_pipeline_status(pipeline_id).latest_pipeline_run
    except NotFoundError:
        return None
    return latest if latest is not None and latest.in_progress else None


def _write(
    client: WarehouseSyncClient, registry: Registry, spec: SyncSpec, active: bool
) -> Pipeline:
    desired = desired_pipeline(spec, registry, client.workspace_id, with_secret=True)
    return client.update_pipeline(desired.model_copy(update={"is_active": active}))


def _written_lately(pipeline: Pipeline, now: datetime) -> bool:
    changed = pipeline.last_modified_on or pipeline.created_on
    return changed is not None and now - changed < SWEEP_GRACE


def sweep(client: WarehouseSyncClient, workspace: Workspace, log: Log, now: datetime) -> list[str]:
    """Pause the rotating pipelines of every registry left active with no run in flight; their ids.

    Each is written with its own registry's connection and feed key, whichever component declares it.

    One left active by a crashed materialization is found here by the next rotating
    materialization of any sync, and by the runs sensor's next tick. A pipeline written less than
    :data:`SWEEP_GRACE` before ``now`` (mParticle's clock) is left alone: a live materialization
    may have just activated it and be about to trigger (if it is paused anyway, its
    :func:`trigger` activates it again).
    """
    rotating = {bound.pipeline_id: bound for bound in workspace.rotating()}
    paused = []
    for pipeline in client.list_pipelines():
        bound = rotating.get(pipeline.id)
        if bound is None or not pipeline.is_active or _written_lately(pipeline, now):
            continue
        if run_in_flight(client, pipeline.id):
            continue
        _write(client, bound.registry, bound.spec, active=False)
        paused.append(pipeline.id)
    if paused:
        log.warning(
            f"Rotation: paused {', '.join(paused)}, left active with no run in flight (a "
            "materialization that crashed before pausing it)"
        )
    return paused


@dataclass(frozen=True)
class SlotClaim:
    """A pipeline that needs one of the workspace's active-pipeline slots, and how to take it.

    Attributes:
        pipeline_id: The pipeline that becomes active.
        take: The write that makes it active (a PUT of ``is_active: true``, or the create of an
            active pipeline); mParticle refuses it with a 400 when the workspace is full.
        who: Names the claimant at the start of a sentence ("Rotating sync 'x'").
        what: Names the pipeline in a sentence ("the pipeline of rotating sync 'x'").
        instead: What was not done, and what to do, when no slot frees up in time.
    """

    pipeline_id: str
    take: Callable[[], object]
    who: str
    what: str
    instead: str


@dataclass(frozen=True)
class _Attempt:
    """One try at taking a slot: done, or what was holding the slots (and mParticle's refusal when
    it refused an activation that the count said had room)."""

    done: bool
    active: tuple[str, ...] = ()
    refused_with_room: BadRequestError | None = None


def _others_active(
    client: WarehouseSyncClient, pipelines: list[Pipeline], own: str
) -> tuple[str, ...]:
    return tuple(sorted(p.id for p in pipelines if p.id != own and counts_as_active(client, p)))


def _try_take(client: WarehouseSyncClient, claim: SlotClaim, allowed: int, log: Log) -> _Attempt:
    own = claim.pipeline_id
    pipelines = client.list_pipelines()
    if any(p.id == own and p.is_active and not p.is_draft for p in pipelines):
        return _Attempt(True)  # already active: a concurrent materialization, or a lost answer
    others = _others_active(client, pipelines, own)
    if len(others) >= allowed:
        return _Attempt(False, others)
    try:
        claim.take()
    except BadRequestError as refused:
        # Another client took the last slot between the count and the write (the write's other
        # fields were checked before), so the limit is what is new. Count again and wait.
        again = _others_active(client, client.list_pipelines(), own)
        log.info(f"mParticle refused to activate {own}, waiting for a slot: {first_line(refused)}")
        return _Attempt(False, again, refused if len(again) < allowed else None)
    return _Attempt(True)


def wait_for_slot(
    client: WarehouseSyncClient,
    claim: SlotClaim,
    limits: Limits,
    settings: WaitSettings,
    log: Log,
) -> int:
    """Take a slot: wait until fewer than the limit are active, counted in mParticle (every
    pipeline of the workspace), then make the claim's write; the tries it took.

    A refused write is waited out like a full workspace; refused :data:`REFUSALS_WITH_ROOM` times
    in a row while the count says a slot is free, it is not about the limit, and fails. Never
    more than ``settings.timeout`` seconds; a :class:`SyncFailure` then names who holds the slots.
    """
    refusals: list[BadRequestError] = []

    def attempt_once() -> _Attempt:
        attempt = _try_take(client, claim, limits.max_active_pipelines, log)
        if attempt.refused_with_room is None:
            refusals.clear()
            return attempt
        refusals.append(attempt.refused_with_room)
        if len(refusals) >= REFUSALS_WITH_ROOM:
            raise SyncFailure(
                f"mParticle refused {len(refusals)} times to activate {claim.what} although "
                f"fewer than {limits.max_active_pipelines} pipelines were active: "
                f"{first_line(refusals[-1])}"
            ) from refusals[-1]
        return attempt

    attempt, tries = settings.poll(attempt_once, lambda a: a.done)
    if not attempt.done:
        raise SyncFailure(
            f"{claim.who} found no free active-pipeline slot within {settings.timeout:.0f} s: "
            f"{', '.join(attempt.active)} are active and {limits.active_owner()} allows "
            f"{limits.max_active_pipelines}. {claim.instead}"
        )
    return tries


def activate(ctx: EngineContext, client: WarehouseSyncClient) -> int:
    """Take a slot for the rotating sync's pipeline (:func:`wait_for_slot`); the tries it took."""
    spec = ctx.spec
    claim = SlotClaim(
        pipeline_id=spec.resolved_pipeline_id,
        take=lambda: _write(client, ctx.registry, spec, active=True),
        who=f"Rotating sync '{spec.name}'",
        what=f"the pipeline of rotating sync '{spec.name}'",
        instead="Nothing was triggered. Lower the Dagster pool limit of "
        f"'{ROTATING_POOL}', pause a pipeline, or materialize again later.",
    )
    tries = wait_for_slot(client, claim, ctx.registry.limits, ctx.wait, ctx.log)
    ctx.log.info(
        f"Rotation: activated {spec.resolved_pipeline_id}"
        + (f" after {tries} tries (the workspace was full)" if tries > 1 else "")
    )
    return tries


def trigger(ctx: EngineContext, client: WarehouseSyncClient) -> TriggerResult:
    """Trigger (or attach to the run in flight); activate again if the pipeline was paused by a
    concurrent sweep or materialization between the activation and the trigger."""
    pipeline_id = ctx.spec.resolved_pipeline_id
    for attempt in range(TRIGGER_ATTEMPTS):
        try:
            return client.trigger_pipeline(pipeline_id)
        except BadRequestError as refused:
            if attempt + 1 == TRIGGER_ATTEMPTS or client.get_pipeline(pipeline_id).is_active:
                raise SyncFailure(
                    f"Triggering rotating sync '{ctx.spec.name}' in mParticle failed: {refused}"
                ) from refused
            ctx.log.info("Rotation: the pipeline was paused before the trigger; activating again")
            activate(ctx, client)
        except WarehouseSyncError as error:
            raise SyncFailure(
                f"Triggering '{ctx.spec.name}' in mParticle failed: {error}"
            ) from error
    raise AssertionError("unreachable")


@dataclass
class Slot:
    """What the materialization holding the slot waits for (the run it triggered or attached to)."""

    run_id: int | None = None


def release(ctx: EngineContext, client: WarehouseSyncClient, slot: Slot) -> None:
    """Pause the pipeline again, unless a run other than this materialization's is in flight: that
    run belongs to a concurrent materialization of the same sync, which pauses it when it ends."""
    pipeline_id = ctx.spec.resolved_pipeline_id
    other = run_in_flight(client, pipeline_id)
    if other is not None and other.pipeline_run_id != slot.run_id:
        ctx.log.info(
            f"Rotation: left {pipeline_id} active: run {other.pipeline_run_id} of another "
            "materialization is in flight"
        )
        return
    _write(client, ctx.registry, ctx.spec, active=False)
    ctx.log.info(f"Rotation: paused {pipeline_id}; its slot is free")


@contextlib.contextmanager
def holding_slot(ctx: EngineContext, client: WarehouseSyncClient) -> Iterator[Slot]:
    """Sweep, take a slot and activate; pause again on the way out, whatever happened."""
    try:
        sweep(client, ctx.workspace, ctx.log, ctx.now())
    except WarehouseSyncError as error:  # a failed sweep frees nothing, but blocks nothing either
        ctx.log.warning(f"Rotation: the sweep of leftover active pipelines failed: {error}")
    activate(ctx, client)
    slot = Slot()
    try:
        yield slot
    finally:
        try:
            release(ctx, client, slot)
        except Exception as error:  # a secret gone, mParticle unreachable: logged, never masking
            # The run's own outcome (or error) stands; the next rotating materialization's sweep
            # pauses what is left active.
            ctx.log.error(
                f"Rotation: could not pause {ctx.spec.resolved_pipeline_id} ({first_line(error)}); "
                "the next rotating materialization pauses it"
            )
