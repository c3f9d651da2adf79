"""Repair a window whose interval run failed: load exactly that window once more, never twice.

mParticle never re-runs an interval whose run failed, and an interval pipeline cannot be asked to
(only ``on_demand`` pipelines take triggers: docs/warehouse-sync-api.md#trigger). A repair is a
``once`` pipeline over exactly the window (#once: one run over ``schedule_start_time`` ...
``schedule_end_time``, filtered with the same inclusive ``BETWEEN`` as interval runs, #query-wrapping),
on the same connection and data model, with a deterministic id ``<pipeline id>-repair-<YYYYMMDDHHMM>``
so a repair interrupted by a crash is found again and attached to, never duplicated:

* no repair pipeline yet: check the 5-active-pipeline limit (#limits), create it, wait for its run;
* its run succeeded: the window is loaded. The pipeline is kept, paused, as mParticle's own record
  that the window was repaired (deleting a pipeline deletes its runs, #pipelines); a ``once`` pipeline
  stops counting as active when its run ends, and paused it never counts. Materializing again
  re-reports that run instead of loading the window again;
* its run failed: it is deleted, so the next materialization can try afresh;
* its run is still in progress at the timeout: it stays, and the next materialization attaches to it.

A window is repaired only when its interval run failed and no run of the window succeeded.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from wsync_dagster.mparticle import (
    NotFoundError,
    Pipeline,
    PipelineRun,
    RunState,
    ScheduleInterval,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster.sync.engine.reads import Reads
from wsync_dagster.sync.engine.reconcile import desired_pipeline
from wsync_dagster.sync.engine.runs import WaitSettings, is_terminal
from wsync_dagster.sync.registry.specs import Registry, SyncSpec

MARK = "-repair-"
NEXT_STEP = (
    "materialize the partition again once the cause is fixed: wsync repairs the window with a "
    "one-off pipeline"
)


class RepairError(Exception):
    """The repair could not be started (no free active-pipeline slot); nothing was created."""


def one_off_pipeline(
    client: WarehouseSyncClient,
    registry: Registry,
    spec: SyncSpec,
    pipeline_id: str,
    purpose: str,
    window: tuple[datetime, datetime],
    active: bool,
) -> Pipeline:
    """A ``once`` pipeline over exactly ``window`` on the sync's connection and data model (with
    its feed key), named for ``purpose`` ("repair", "re-send")."""
    start, end = window
    base = desired_pipeline(spec, registry, client.workspace_id, True)
    return base.model_copy(
        update={
            "id": pipeline_id,
            "name": f"{spec.name} {purpose} {start:%Y-%m-%dT%H:%MZ} (wsync_dagster)",
            "is_active": active,
            "schedule_interval": ScheduleInterval.ONCE,
            "schedule_start_time": start,
            "schedule_end_time": end,
        }
    )


def repair_pipeline_id(pipeline_id: str, window_start: datetime) -> str:
    return f"{pipeline_id}{MARK}{window_start:%Y%m%d%H%M}"


@dataclass(frozen=True)
class Repair:
    """How one window's repair stands after this materialization."""

    pipeline_id: str
    failed_run: PipelineRun
    run: PipelineRun | None
    reason: str | None = None  # why the repair run failed
    reused: bool = False  # an earlier successful repair, re-reported


@dataclass(frozen=True)
class Repairer:
    client: WarehouseSyncClient
    registry: Registry
    spec: SyncSpec
    settings: WaitSettings
    log: Callable[[str], None]

    def repair(self, start: datetime, end: datetime, failed_run: PipelineRun) -> Repair:
        repair_id = repair_pipeline_id(self.spec.resolved_pipeline_id, start)
        existing = self._existing(repair_id)
        if existing is not None:
            runs = list(self.client.iter_pipeline_runs(repair_id, page_size=10))
            done = next((r for r in runs if r.state is RunState.SUCCESS), None)
            if done is not None:
                self._retire(existing)
                return Repair(repair_id, failed_run, done, reused=True)
            if runs and all(is_terminal(r) for r in runs):  # a failed repair left by a crash
                self.log(f"Deleting the failed repair pipeline {repair_id} before trying again")
                self.client.delete_pipeline(repair_id)
                existing = None
            else:
                self.log(f"Attaching to repair pipeline {repair_id}, already under way")
        if existing is None:
            self._check_slot(repair_id)
            existing = self.client.create_pipeline(self._desired(repair_id, start, end, True))
            self.log(
                f"Created repair pipeline {repair_id} (once, {start:%Y-%m-%dT%H:%M:%SZ} .. "
                f"{end:%Y-%m-%dT%H:%M:%SZ}) for failed run {failed_run.pipeline_run_id}"
            )
        return self._finish(existing, failed_run)

    def _existing(self, repair_id: str) -> Pipeline | None:
        try:
            return self.client.get_pipeline(repair_id)
        except NotFoundError:
            return None

    def _desired(self, repair_id: str, start: datetime, end: datetime, active: bool) -> Pipeline:
        return one_off_pipeline(
            self.client, self.registry, self.spec, repair_id, "repair", (start, end), active
        )

    def _check_slot(self, repair_id: str) -> None:
        allowed = self.registry.limits
        active = Reads(self.client).active_ids()
        if len(active) >= allowed.max_active_pipelines:
            raise RepairError(
                f"repairing needs a one-off pipeline ({repair_id}), which would be active pipeline "
                f"number {len(active) + 1}, but {allowed.active_owner()} allows "
                f"{allowed.max_active_pipelines}: "
                f"{', '.join(sorted(active))} are active. Pause one of them, then materialize the "
                "partition again. Nothing was created."
            )

    def _finish(self, pipeline: Pipeline, failed_run: PipelineRun) -> Repair:
        runs, _ = self.settings.poll(
            lambda: list(self.client.iter_pipeline_runs(pipeline.id, page_size=10)),
            lambda found: bool(found) and is_terminal(found[0]),
        )
        run = runs[0] if runs else None
        if run is not None and run.state is RunState.SUCCESS:
            self._retire(pipeline)
            return Repair(pipeline.id, failed_run, run)
        if run is not None and run.state is RunState.FAILED:
            reason = self.client.get_pipeline(pipeline.id).faulted_reason or "no reason given"
            self.client.delete_pipeline(pipeline.id)
            self.log(f"Repair run {run.pipeline_run_id} failed; deleted {pipeline.id}: {reason}")
            return Repair(pipeline.id, failed_run, run, reason=reason)
        return Repair(pipeline.id, failed_run, run)

    def _retire(self, pipeline: Pipeline) -> None:
        """Pause a repair whose run succeeded: it stays as the record, taking no active slot."""
        if not pipeline.is_active:
            return
        assert pipeline.schedule_end_time is not None
        retired = self._desired(
            pipeline.id, pipeline.schedule_start_time, pipeline.schedule_end_time, False
        )
        try:
            self.client.update_pipeline(retired)
        except WarehouseSyncError as error:  # its run has ended: it counts as inactive anyway
            self.log(f"Could not pause the finished repair pipeline {pipeline.id}: {error}")
