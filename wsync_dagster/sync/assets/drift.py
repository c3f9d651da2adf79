"""The ``matches_registry`` check: do mParticle's connection, data model and pipeline of a sync
still match the registry?

One per sync, not partitioned, WARN, not blocking (a drifted sync still runs; it syncs with what
mParticle has). Two things evaluate it:

* the **drift sensor** (:mod:`wsync_dagster.sync.observe.drift`), between materializations, from
  the read-only plan of each sync (:func:`~wsync_dagster.sync.engine.reconcile.plan_sync`): it
  fails naming each drifted field with mParticle's and the registry's values, and the two ways out;
* every **materialization**, right after its reconcile made mParticle match the registry: it
  passes, naming what reconcile changed (a partitioned run records that verdict under each of its
  partitions, see :func:`evaluation_after_reconcile`; the latest evaluation is the check's state).

The runs sensor adds ``wsync/drift`` to each run it records that started after the drift sensor
first saw the drift the latest evaluation reports (``wsync/drift_seen_at``, on mParticle's clock):
such a run used mParticle's version, not the registry's (:class:`DriftState`). A run that started
between the change in mParticle and the tick that saw it is not marked: that is at most one drift
interval.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import dagster as dg

from wsync_dagster.mparticle import PipelineRun
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.checks import Verdict
from wsync_dagster.sync.assets.metadata import Wsync
from wsync_dagster.sync.engine.plan_report import plain, sql_diff
from wsync_dagster.sync.engine.reconcile import Reconciled, SyncPlan

SHOWN_VALUE = 120  # characters of a drifted value in the check's description
FINGERPRINT = "fingerprint"


def drift_check_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        naming.CHECK_MATCHES_REGISTRY,
        asset=key,
        blocking=False,
        description="mParticle's connection, data model and pipeline of this sync match the "
        "registry (checked by the drift sensor between materializations, and by each "
        "materialization after it reconciles).",
    )


def _short(value: object) -> str:
    text = repr(plain(value))
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 4] + "...'"


def drifted(plan: SyncPlan) -> list[str]:
    """One line per resource that differs from the registry (``kind id: field, field``), and per
    resource missing from mParticle."""
    found = []
    for resource in plan.resources:
        change = resource.change
        if change.action == "created":
            found.append(f"{change.kind} {change.id}: missing in mParticle")
        elif drift := resource.drift():
            found.append(f"{change.kind} {change.id}: {', '.join(d.field for d in drift)}")
    return found


def never_created(plan: SyncPlan) -> bool:
    """The sync's own data model and pipeline do not exist: nothing was ever materialized (or
    everything was deleted), so there is nothing to compare."""
    return plan.model.actual is None and plan.pipeline.actual is None


def registry_verdict(
    plan: SyncPlan, key: dg.AssetKey, where: str = "the registry", seen_at: float | None = None
) -> Verdict:
    """``matches_registry`` from a read-only plan: passes when no resource would be written but
    to clear a fault; fails naming each drifted field and the two ways out. ``seen_at``: when the
    drift was first seen (mParticle's clock, epoch seconds), recorded on a failure."""
    lines = drifted(plan)
    metadata: dict[str, Any] = {Wsync.DRIFT: "; ".join(lines)}
    details: list[str] = []
    for resource in plan.resources:
        for drift in resource.drift():
            details.append(
                f"{resource.change.kind} {resource.change.id}: {drift.field} is "
                f"{_short(drift.current)} in mParticle, {_short(drift.declared)} in the registry"
            )
            if drift.field == "sql_query":
                metadata["sql_diff"] = dg.MetadataValue.md(f"```diff\n{sql_diff(drift)}\n```")
    details += [line for line in lines if line.endswith("missing in mParticle")]
    metadata[FINGERPRINT] = hashlib.sha256("\n".join(details).encode()).hexdigest()[:16]
    if not lines:
        return Verdict(
            naming.CHECK_MATCHES_REGISTRY,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="mParticle's connection, data model and pipeline match the registry.",
            metadata=metadata,
        )
    if seen_at is not None:
        metadata[Wsync.DRIFT_SEEN_AT] = seen_at
    description = (
        f"mParticle no longer matches the registry for sync '{plan.spec.name}':\n"
        + "\n".join(f"- {d}" for d in details)
        + f"\nTwo ways out: materialize {key.to_user_string()} to put the registry's version back "
        f"in mParticle, or change {where} to what mParticle has now. Runs recorded meanwhile "
        "carry wsync/drift."
    )
    return Verdict(
        naming.CHECK_MATCHES_REGISTRY,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def reconciled_verdict(reconciled: Reconciled) -> Verdict:
    """``matches_registry`` right after a reconcile: mParticle matches the registry now."""
    written = [c.describe() for c in reconciled.changes if c.action != "unchanged"]
    description = "mParticle's connection, data model and pipeline match the registry" + (
        f" (this materialization wrote: {'; '.join(written)})." if written else "."
    )
    return Verdict(
        naming.CHECK_MATCHES_REGISTRY,
        passed=True,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={Wsync.DRIFT: "", FINGERPRINT: hashlib.sha256(b"").hexdigest()[:16]},
    )


def _selected(context: dg.AssetExecutionContext) -> bool:
    check = dg.AssetCheckKey(context.asset_key, naming.CHECK_MATCHES_REGISTRY)
    return check in context.selected_asset_check_keys


def evaluation_after_reconcile(
    context: dg.AssetExecutionContext, reconciled: Reconciled
) -> list[dg.AssetCheckEvaluation]:
    """A partitioned sync's ``matches_registry`` once its reconcile ran (when the run selected
    it); the partition reporter yields the check's output.

    The check is not partitioned, but Dagster plans a check of a partitioned run once per
    partition of the run and keeps each plan as a "planned" execution until an evaluation names
    that partition: the one verdict is therefore recorded under each of the run's partitions.
    """
    if not _selected(context):
        return []
    verdict = reconciled_verdict(reconciled)
    return [
        verdict.evaluation(context.asset_key, partition) for partition in context.partition_keys
    ]


def result_after_reconcile(
    context: dg.AssetExecutionContext, reconciled: Reconciled
) -> list[dg.AssetCheckResult]:
    """An unpartitioned sync's ``matches_registry`` once its reconcile ran (when selected)."""
    return [reconciled_verdict(reconciled).result(context.asset_key)] if _selected(context) else []


def latest_evaluation(
    instance: dg.DagsterInstance, key: dg.AssetKey
) -> dg.AssetCheckEvaluation | None:
    """The latest recorded ``matches_registry`` evaluation of ``key`` (one query), if any."""
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(key, naming.CHECK_MATCHES_REGISTRY)
    )
    evaluation = record.evaluation if record is not None else None
    return evaluation if isinstance(evaluation, dg.AssetCheckEvaluation) else None


@dataclass(frozen=True)
class DriftState:
    """What the latest ``matches_registry`` of a sync says, for the runs the runs sensor records."""

    drift: str | None = None
    seen_at: float | None = None

    @staticmethod
    def of(instance: dg.DagsterInstance, key: dg.AssetKey) -> "DriftState":
        """From the latest evaluation on record of ``key`` (one query)."""
        latest = latest_evaluation(instance, key)
        if latest is None or latest.passed:
            return DriftState()
        drift = Wsync.DRIFT.read(latest.metadata) or "drifted"
        return DriftState(drift, Wsync.DRIFT_SEEN_AT.read(latest.metadata))

    def metadata_for(self, run: PipelineRun) -> dict[str, Any]:
        """``{wsync/drift: ...}`` when ``run`` started after the drift was seen, else ``{}``."""
        if self.drift is None:
            return {}
        started = run.start_date
        if self.seen_at is not None and started is not None and started.timestamp() < self.seen_at:
            return {}
        return {Wsync.DRIFT: self.drift}


def is_news(verdict: Verdict, latest: dg.AssetCheckEvaluation | None) -> bool:
    """Whether ``verdict`` says something the latest evaluation on record does not."""
    if latest is None or latest.passed != verdict.passed:
        return True
    recorded = latest.metadata.get(FINGERPRINT)
    return getattr(recorded, "value", recorded) != verdict.metadata.get(FINGERPRINT)
