"""The drift sensor: between materializations, does mParticle still hold what the registry says?

Every :data:`DRIFT_INTERVAL_SECONDS`, one tick plans every sync read-only
(:func:`~wsync_dagster.sync.engine.reconcile.plan_sync`, the code a materialization's reconcile
runs) and records each sync's ``matches_registry`` check (:mod:`wsync_dagster.sync.assets.drift`)
when its verdict differs from the one on record: a failed WARN evaluation naming each drifted field
and the two ways out, or a passing one once they match again. It names the pipelines no registry
declares in its log. It writes nothing to mParticle.

Cost: the tick reads mParticle's connections, data models and pipelines with one listing each
(:class:`~wsync_dagster.sync.engine.reads.Reads`), whatever the number of syncs; a token is
fetched only when the cached one expires. At one tick every 10 minutes that is 3 x 144 = 432 API
calls a day (a drifted pipeline that would become active adds a status call per active ``once``
pipeline), plus one query on Dagster's instance per sync and tick. The runs sensor, every 30 s,
costs one run listing per pipeline and tick: a drift check in each of its ticks would have cost
3 x 2,880 = 8,640 calls a day for a slowly changing fact.
"""

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import WarehouseSyncError
from wsync_dagster.resources import MParticleResource, settings_problem
from wsync_dagster.sync.assets.drift import (
    is_news,
    latest_evaluation,
    never_created,
    registry_verdict,
)
from wsync_dagster.sync.assets.metadata import Wsync
from wsync_dagster.sync.engine.context import first_line
from wsync_dagster.sync.engine.plan import other_pipelines
from wsync_dagster.sync.engine.reads import Reads
from wsync_dagster.sync.engine.reconcile import plan_sync
from wsync_dagster.sync.observe.batch import ObserveLimits
from wsync_dagster.sync.observe.reading import (
    DEFAULT_LIMITS,
    WORKSPACE_ERRORS,
    Watched,
    small_budget,
)
from wsync_dagster.sync.registry.workspace import Workspace

_log = logging.getLogger("wsync_dagster.drift")
DRIFT_SENSOR_NAME = "wsync_drift_sensor"
DRIFT_INTERVAL_SECONDS = 600
TICKS_PER_DAY = 24 * 3600 // DRIFT_INTERVAL_SECONDS
CALLS_PER_TICK = 3  # one listing each of connections, data models, pipelines


@dataclass(frozen=True)
class DriftWatch:
    """What the drift sensor compares: every sync (each with its own registry and its asset's
    key) and the workspace they share; ``where`` names each sync's registry file for messages."""

    workspace: Workspace
    watched: Sequence[Watched]
    where: dict[str, str] = field(default_factory=dict)
    limits: ObserveLimits = DEFAULT_LIMITS
    clock: Callable[[], float] = time.monotonic


@dataclass
class DriftTick:
    """The outcome of one evaluation."""

    events: list[dg.AssetCheckEvaluation] = field(default_factory=list)
    drifted: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    api_requests: int = 0


def first_seen(latest: dg.AssetCheckEvaluation | None, now: datetime) -> float:
    """When the drift was first seen: kept from the latest evaluation while it failed, else now."""
    if latest is not None and not latest.passed:
        seen = Wsync.DRIFT_SEEN_AT.read(latest.metadata)
        if seen is not None:
            return seen
    return now.timestamp()


def drift_tick(
    instance: dg.DagsterInstance, watch: DriftWatch, mparticle: MParticleResource
) -> DriftTick:
    """Compare every watched sync with mParticle; the evaluations to record (only the news)."""
    tick = DriftTick()
    if not watch.watched:
        return tick
    with small_budget(mparticle, watch.limits).open_client() as client:
        before = client.stats.requests
        reads = Reads(client, listed=True)
        now = mparticle.now()
        for index, (bound, key) in enumerate(watch.watched):
            try:
                plan = plan_sync(client, bound.registry, bound.spec, now, reads)
            except WORKSPACE_ERRORS as error:
                rest = ", ".join(f"'{b.name}'" for b, _ in watch.watched[index:])
                tick.notes.append(f"mParticle refused the reads ({first_line(error)}); {rest} wait")
                break
            except WarehouseSyncError as error:
                tick.notes.append(f"could not read '{bound.name}': {first_line(error)}; next tick")
                continue
            latest = latest_evaluation(instance, key)
            if never_created(plan) and latest is None:
                tick.notes.append(f"'{bound.name}' is not in mParticle yet: nothing to compare")
                continue
            where = watch.where.get(bound.name) or "the registry"
            verdict = registry_verdict(plan, key, where, first_seen(latest, now))
            if not verdict.passed:
                tick.drifted[bound.name] = str(verdict.metadata.get(Wsync.DRIFT, ""))
            if is_news(verdict, latest):
                tick.events.append(verdict.evaluation(key))
        try:
            others = other_pipelines(reads.pipelines(), watch.workspace, reads)
        except WarehouseSyncError as error:
            tick.notes.append(f"could not list the workspace's pipelines: {first_line(error)}")
            others = ()
        tick.unmanaged = [
            f"{p.id} ({'active' if p.active else 'paused'}"
            + (f"; one-off of '{p.one_off_of}'" if p.one_off_of else "")
            + ")"
            for p in others
        ]
        tick.api_requests = client.stats.requests - before
    return tick


def build_drift_sensor(watch: DriftWatch) -> dg.SensorDefinition:
    """The sensor recording each sync's ``matches_registry`` (see the module doc)."""

    @dg.sensor(
        name=DRIFT_SENSOR_NAME,
        minimum_interval_seconds=DRIFT_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Compares each sync's connection, data model and pipeline in mParticle with "
        "the registry (read-only, three listings a tick) and records the matches_registry check "
        "when the answer changes; names the pipelines no registry declares.",
    )
    def wsync_drift_sensor(
        context: dg.SensorEvaluationContext, mparticle: MParticleResource
    ) -> dg.SensorResult | dg.SkipReason:
        if problem := settings_problem(mparticle):
            return dg.SkipReason(problem)
        started = watch.clock()
        tick = drift_tick(context.instance, watch, mparticle)
        summary: dict[str, Any] = {
            "syncs": len(watch.watched),
            "drifted": tick.drifted,
            "recorded": len(tick.events),
            "api_requests": tick.api_requests,
            "unmanaged_pipelines": tick.unmanaged,
            "seconds": round(watch.clock() - started, 3),
        }
        if tick.notes:
            summary["notes"] = tick.notes
        text = json.dumps(summary)
        context.log.info(f"{DRIFT_SENSOR_NAME}: {text}")
        if tick.unmanaged:
            context.log.info(
                f"{DRIFT_SENSOR_NAME}: pipelines no registry declares (they take active slots "
                f"while active): {', '.join(tick.unmanaged)}"
            )
        skip = dg.SkipReason(text) if not tick.events else None
        return dg.SensorResult(asset_events=tick.events, skip_reason=skip)

    return wsync_drift_sensor
