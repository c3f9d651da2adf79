"""Re-send windows that already synced: load each once more, on request, with a one-off pipeline.

mParticle runs each interval once (docs/warehouse-sync-api.md#interval-grid). Rows stamped into a
window after its run (late rows), and values corrected in place, never reach mParticle by
themselves, and an interval pipeline cannot be asked to run a window again (only ``on_demand``
pipelines take triggers, #trigger). A re-send is :mod:`repair <wsync_dagster.sync.engine.repair>`'s
sibling: a ``once`` pipeline over exactly the window (#once: one run over ``schedule_start_time`` ...
``schedule_end_time``, the same inclusive ``BETWEEN`` as interval runs, #query-wrapping), on the same
connection and data model, so its run extracts every row Snowflake holds in the window now.

* **One pipeline per window**, ``<pipeline id>-resend-<YYYYMMDDHHMM>-<token>`` (the token names the
  materialization that made it). Each window's record then carries mParticle's own counts for that
  window (a run shared by several windows would only give their total).
* **An active slot while it runs**: a ``once`` pipeline counts toward the workspace's active limit
  until its run ends (#limits). Each is created active only once mParticle counts a free slot, with
  the same wait rotation uses (:func:`wsync_dagster.sync.engine.rotation.wait_for_slot`), so a re-send
  of many windows takes turns on the free slots and never makes one pipeline too many.
* **Nothing left behind**: a pipeline whose run ended is deleted once the window is reported.
  Deleting a pipeline deletes its runs (#pipelines), so the record of the load is the partition's
  materialization in Dagster (run id, counts, window, ``wsync/resend_pipeline_id``), and the
  attributes on the profiles. A pipeline a crash or a timeout left behind is found by its prefix at
  the next re-send of the sync: deleted when its run has ended, attached to when it is still
  running for a window being re-sent. At most the free slots' worth of re-send pipelines can be
  left (those still running when a materialization gave up waiting).

No Dagster here: :mod:`wsync_dagster.sync.assets.interval` decides which windows to re-send (after a
pre-flight that refuses a window over the ``once`` record limit) and reports each as it ends.
"""

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from wsync_dagster.mparticle import (
    NotFoundError,
    Pipeline,
    PipelineRun,
    RunState,
    WarehouseSyncClient,
    WarehouseSyncError,
)
from wsync_dagster.mparticle.polling import ExponentialBackoff
from wsync_dagster.sync.engine.context import Log, SyncFailure, first_line
from wsync_dagster.sync.engine.repair import one_off_pipeline
from wsync_dagster.sync.engine.rotation import SlotClaim, wait_for_slot
from wsync_dagster.sync.engine.runs import WaitSettings, is_terminal
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster.sync.registry.windows import Window

MARK = "-resend-"
RESEND_TAG_TEXT = "run tag wsync/resend=true"


def resend_prefix(pipeline_id: str) -> str:
    """What the ids of a sync's re-send pipelines start with."""
    return f"{pipeline_id}{MARK}"


def resend_pipeline_id(pipeline_id: str, window: Window, token: str) -> str:
    return f"{resend_prefix(pipeline_id)}{window.start:%Y%m%d%H%M}-{token}"


@dataclass(frozen=True)
class Resent:
    """How one window's re-send ended in this materialization.

    ``run`` is the re-send's run (None when none was seen); ``problem`` says why the window was
    not re-sent, or None when its run succeeded.
    """

    window: Window
    pipeline_id: str | None
    run: PipelineRun | None
    problem: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.problem is None and self.run is not None and self.run.state is RunState.SUCCESS


@dataclass
class Resender:
    """Re-sends windows of one sync; ``token`` makes its pipeline ids its own (e.g. the Dagster
    run id's first characters)."""

    client: WarehouseSyncClient
    registry: Registry
    spec: SyncSpec
    settings: WaitSettings
    log: Log
    token: str

    @property
    def _prefix(self) -> str:
        return resend_prefix(self.spec.resolved_pipeline_id)

    def resend(self, windows: Sequence[Window]) -> Iterator[Resent]:
        """Re-send ``windows`` (oldest first), yielding each window's outcome as its run ends;
        every window is yielded once. Each pipeline whose run ended is deleted after its window
        was yielded (reported)."""
        settings = self.settings
        deadline = settings.clock() + settings.timeout
        in_flight = self._leftovers(windows)
        todo = [w for w in windows if w.key not in in_flight]
        for index, window in enumerate(todo):
            pipeline_id = resend_pipeline_id(self.spec.resolved_pipeline_id, window, self.token)
            remaining = max(deadline - settings.clock(), 0.0)
            try:
                self._take_slot(window, pipeline_id, remaining)
            except (SyncFailure, WarehouseSyncError) as error:
                reason = error.message if isinstance(error, SyncFailure) else first_line(error)
                for left in todo[index:]:
                    yield Resent(left, None, None, f"{left.key}: not re-sent: {reason}")
                break
            in_flight[window.key] = (window, pipeline_id)
            yield from self._ended(in_flight)
        backoff = ExponentialBackoff(settings.poll_interval, settings.max_poll_interval)
        while in_flight:
            remaining = deadline - settings.clock()
            if remaining <= 0:
                break
            settings.sleep(min(backoff.next(), remaining))
            yield from self._ended(in_flight)
        for window, pipeline_id in in_flight.values():  # still running at the deadline
            run = self._latest(pipeline_id)
            state = "not started" if run is None else f"still '{run.pipeline_run_state}'"
            yield Resent(
                window,
                pipeline_id,
                run,
                f"{window.key}: re-send pipeline {pipeline_id} is {state} after "
                f"{settings.timeout:.0f} s; materialize the partition again with "
                f"{RESEND_TAG_TEXT} to attach to it",
            )

    def _leftovers(self, windows: Sequence[Window]) -> dict[str, tuple[Window, str]]:
        """Clear the sync's re-send pipelines left by a crash or a timeout: delete those whose run
        ended; attach to those still running for a window being re-sent (returned by key)."""
        by_span: dict[tuple[datetime, datetime | None], Window] = {
            (w.start, w.end): w for w in windows
        }
        attached: dict[str, tuple[Window, str]] = {}
        for pipeline in self.client.list_pipelines():
            if not pipeline.id.startswith(self._prefix):
                continue
            run = self._latest(pipeline.id)
            running = pipeline.is_active and not pipeline.is_draft and not is_terminal(run)
            window = by_span.get((pipeline.schedule_start_time, pipeline.schedule_end_time))
            if not running:
                self._delete(pipeline.id, "left over from an earlier re-send")
            elif window is not None and window.key not in attached:
                self.log.info(f"Re-send: attaching to {pipeline.id}, already under way")
                attached[window.key] = (window, pipeline.id)
        return attached

    def _take_slot(self, window: Window, pipeline_id: str, timeout: float) -> None:
        desired = self._desired(window, pipeline_id)
        claim = SlotClaim(
            pipeline_id=pipeline_id,
            take=lambda: self.client.create_pipeline(desired),
            who=f"Re-sending window {window.key} of '{self.spec.name}'",
            what=f"re-send pipeline {pipeline_id}",
            instead="Nothing was created for this window. Pause a pipeline, or materialize the "
            f"partition again later with {RESEND_TAG_TEXT}.",
        )
        settings = dataclasses.replace(self.settings, timeout=timeout)
        tries = wait_for_slot(self.client, claim, self.registry.limits, settings, self.log)
        waited = f" after {tries} tries (the workspace was full)" if tries > 1 else ""
        self.log.info(
            f"Re-send: created {pipeline_id} (once, {window.describe()}) for {window.key}{waited}"
        )

    def _desired(self, window: Window, pipeline_id: str) -> Pipeline:
        return one_off_pipeline(
            self.client,
            self.registry,
            self.spec,
            pipeline_id,
            "re-send",
            (window.start, window.end),
            True,
        )

    def _latest(self, pipeline_id: str) -> PipelineRun | None:
        try:
            return self.client.get_pipeline_status(pipeline_id).latest_pipeline_run
        except NotFoundError:
            return None

    def _ended(self, in_flight: dict[str, tuple[Window, str]]) -> Iterator[Resent]:
        """The windows in flight whose run has ended (one status read each), each deleted once
        yielded."""
        for key, (window, pipeline_id) in list(in_flight.items()):
            run = self._latest(pipeline_id)
            if not is_terminal(run):
                continue
            assert run is not None
            del in_flight[key]
            if run.state is RunState.SUCCESS:
                self.log.info(
                    f"Re-send: run {run.pipeline_run_id} of {pipeline_id} read "
                    f"{run.records_extracted or 0:,} rows of {window.key}"
                )
                yield Resent(window, pipeline_id, run)
            else:
                reason = self._reason(pipeline_id)
                yield Resent(
                    window,
                    pipeline_id,
                    run,
                    f"{window.key}: re-send run {run.pipeline_run_id} ({pipeline_id}) failed: "
                    f"{reason}; fix the cause, then materialize the partition again with "
                    f"{RESEND_TAG_TEXT}",
                )
            self._delete(pipeline_id, "its run has ended and the window is reported")

    def _reason(self, pipeline_id: str) -> str:
        try:
            return self.client.get_pipeline(pipeline_id).faulted_reason or "no reason given"
        except WarehouseSyncError as error:
            return f"the reason could not be read ({first_line(error)})"

    def _delete(self, pipeline_id: str, why: str) -> None:
        try:
            self.client.delete_pipeline(pipeline_id)
        except NotFoundError:
            return
        except WarehouseSyncError as error:  # left behind: the next re-send deletes it
            self.log.warning(f"Re-send: could not delete {pipeline_id} ({first_line(error)})")
            return
        self.log.info(f"Re-send: deleted {pipeline_id}: {why}")
