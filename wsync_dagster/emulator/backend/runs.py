"""Runs: the on-demand trigger, status and run listing, and the scheduling state.

The scheduler (:mod:`wsync_dagster.emulator.scheduler`) drives runs through :meth:`Runs.next_work`,
:meth:`Runs.ingest` and :meth:`Runs.finish`; nothing here talks to the warehouse.
"""

from datetime import datetime, timedelta
from typing import Any

from wsync_dagster.emulator.backend.catalog import credentials_of, find
from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.clock import epoch_ms, format_instant, parse_iso_instant, whole_seconds
from wsync_dagster.emulator.errors import bad_request, not_found
from wsync_dagster.emulator.limits import INTERVAL_SCHEDULES
from wsync_dagster.emulator.mapping import MappedRow
from wsync_dagster.emulator.model import Audit, Pipeline, Run
from wsync_dagster.emulator.runner import RunOutcome, RunPlan
from wsync_dagster.emulator.schedule import interval_at
from wsync_dagster.emulator.warehouse import window_literals, window_predicate

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
RUN_QUERY_PARAMS = frozenset({"currentPage", "pageSize", "startDate", "endDate"})


class Runs:
    """Every pipeline's runs; thread-safe like the rest of the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _run_state_override(self) -> str | None:
        if self._store.faults.unknown_state_reads > 0:
            self._store.faults.unknown_state_reads -= 1
            return self._store.faults.unknown_state
        return None

    def trigger(self, pipeline_id: str) -> dict[str, Any]:
        """Request an on-demand run (``POST pipelines/{id}/trigger``)."""
        with self._store.lock:
            pipeline = find(self._store.pipelines, "Pipeline", pipeline_id)
            if pipeline.interval != "on_demand":
                raise bad_request(
                    f"Pipeline {pipeline_id} has schedule_interval {pipeline.interval}; only "
                    "on_demand pipelines can be triggered."
                )
            if pipeline.fields["is_draft"]:
                raise bad_request(
                    f"Pipeline {pipeline_id} is a draft (is_draft: true); it cannot be triggered."
                )
            if not pipeline.fields["is_active"]:
                raise bad_request(
                    f"Pipeline {pipeline_id} is paused (is_active: false); it cannot be triggered."
                )
            runs = self._store.runs[pipeline_id]
            if any(r.in_progress for r in runs):
                raise bad_request(f"Pipeline {pipeline_id} is already in progress.")
            now = whole_seconds(self._store.clock.now())
            done = [r.data_interval_end for r in runs if r.state == "success"]
            window_start = max(done) if done else pipeline.start
            if window_start > now:
                raise bad_request(
                    f"Pipeline {pipeline_id} starts at {format_instant(window_start)}; there is "
                    "nothing to sync before then."
                )
            run = self._new_run(pipeline, now, window_start, now, manual=True)
            return {"pipeline_run_id": run.run_id, "status": "trigger_requested"}

    def _new_run(
        self,
        pipeline: Pipeline,
        logical: datetime,
        start: datetime,
        end: datetime,
        *,
        manual: bool,
    ) -> Run:
        run = Run(
            run_id=self._store.next_run_id,
            pipeline_id=pipeline.id,
            workspace_id=self._store.config.workspace_id,
            logical_date=logical,
            data_interval_start=start,
            data_interval_end=end,
            run_type="manual" if manual else "scheduled",
            externally_triggered=manual,
            state="triggered" if manual else "queued",
            audit=Audit(self._store.clock.now(), self._store.config.credential_email),
        )
        self._store.next_run_id += 1
        self._store.runs[pipeline.id].append(run)
        self._store.changed.notify_all()
        return run

    def status(self, pipeline_id: str) -> dict[str, Any]:
        with self._store.lock:
            pipeline = find(self._store.pipelines, "Pipeline", pipeline_id)
            connection = self._store.connections.get(pipeline.fields["connection_id"])
            runs = self._store.runs[pipeline_id]
            latest = max(runs, key=lambda r: (r.logical_date, r.run_id), default=None)
            return {
                "pipeline_id": pipeline_id,
                "workspace_id": self._store.config.workspace_id,
                "is_faulted": pipeline.is_faulted,
                "is_connection_faulted": bool(connection and connection.is_faulted),
                "is_connection_active": connection is not None,
                "is_active": pipeline.fields["is_active"],
                "latest_pipeline_run": (
                    latest.to_json(self._run_state_override()) if latest else None
                ),
            }

    def list_runs(self, pipeline_id: str, query: dict[str, str]) -> dict[str, Any]:
        """One page of runs, newest ``logical_date`` first."""
        unknown = sorted(set(query) - RUN_QUERY_PARAMS)
        if unknown:
            raise bad_request(f"Unknown query parameter(s): {', '.join(unknown)}.")
        page = _positive_int(query, "currentPage", 1, None)
        size = _positive_int(query, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        low = _instant_param(query, "startDate")
        high = _instant_param(query, "endDate")
        with self._store.lock:
            find(self._store.pipelines, "Pipeline", pipeline_id)
            runs = [
                r
                for r in self._store.runs[pipeline_id]
                if (low is None or r.logical_date >= low)
                and (high is None or r.logical_date <= high)
            ]
            runs.sort(key=lambda r: (r.logical_date, r.run_id), reverse=True)
            chosen = runs[(page - 1) * size : page * size]
            return {"items": [r.to_json(self._run_state_override()) for r in chosen]}

    def get_run(self, pipeline_id: str, run_id: str) -> dict[str, Any]:
        with self._store.lock:
            find(self._store.pipelines, "Pipeline", pipeline_id)
            for run in self._store.runs[pipeline_id]:
                if str(run.run_id) == run_id:
                    return run.to_json(self._run_state_override())
            raise not_found(f"Pipeline run {run_id} of pipeline {pipeline_id} not found.")

    def _create_due_runs(self, now: datetime) -> None:
        for pipeline in self._store.pipelines.values():
            if not pipeline.runs_on_schedule:
                continue
            if pipeline.interval in INTERVAL_SCHEDULES:
                while True:
                    low, high = interval_at(
                        pipeline.start, pipeline.interval, pipeline.next_interval
                    )
                    if high > now or (pipeline.end is not None and high > pipeline.end):
                        break
                    self._new_run(pipeline, low, low, high, manual=False)
                    pipeline.next_interval += 1
            elif pipeline.interval == "once" and not self._store.runs[pipeline.id]:
                end = pipeline.end or pipeline.audit.created_on.replace(microsecond=0)
                if end <= now:
                    self._new_run(pipeline, pipeline.start, pipeline.start, end, manual=False)

    def _finish_time(self, run: Run) -> datetime:
        assert run.start_date is not None
        return run.start_date + timedelta(seconds=self._store.config.run_seconds)

    def _plan(self, pipeline: Pipeline, run: Run) -> RunPlan:
        model = self._store.models[pipeline.fields["data_model_id"]].fields
        connection = self._store.connections[pipeline.fields["connection_id"]]
        bounds = window_literals(
            run.data_interval_start,
            run.data_interval_end,
            model["load_timestamp_field_type"],
            model["load_timestamp_field_time_zone"],
            model["load_timestamp_field_time_offset"] or 0,
        )
        # A triggered run has the on-demand limit, whatever the pipeline's interval is now.
        limit = "on_demand" if run.run_type == "manual" else pipeline.interval
        return RunPlan(
            run_id=run.run_id,
            generation=self._store.generation,
            pipeline_id=pipeline.id,
            limit_name=limit.replace("_", "-"),
            record_limit=self._store.record_limits[limit],
            credentials=credentials_of(connection),
            sql=model["sql_query"],
            timestamp_field=model["load_timestamp_field_name"],
            predicate=window_predicate(model["load_timestamp_field_name"], bounds),
            window=f"{format_instant(run.data_interval_start)} .. "
            f"{format_instant(run.data_interval_end)}",
            forced_failure=self._store.faults.take_run_failure(pipeline.id),
        )

    def next_work(self) -> RunPlan | None:
        """Create due runs, start what may start, and claim one run whose work is due now.

        Returns None when nothing can be executed at the current clock time.
        """
        with self._store.lock:
            now = self._store.clock.now()
            self._create_due_runs(now)
            for pipeline in self._store.pipelines.values():
                runs = self._store.runs[pipeline.id]
                running = next((r for r in runs if r.state == "running"), None)
                if running is None and pipeline.runs_on_schedule:
                    waiting = [r for r in runs if r.state in ("triggered", "queued")]
                    if waiting:
                        running = min(waiting, key=lambda r: (r.logical_date, r.run_id))
                        running.state, running.start_date = "running", now
                        running.audit.touch(now, running.audit.created_by)
                if (
                    running is not None
                    and not running.claimed
                    and self._finish_time(running) <= now
                ):
                    running.claimed = True
                    return self._plan(pipeline, running)
            return None

    def _claimed_run(self, plan: RunPlan) -> Run | None:
        if plan.generation != self._store.generation:
            return None
        for run in self._store.runs.get(plan.pipeline_id, ()):
            if run.run_id == plan.run_id:
                return run
        return None

    def ingest(self, plan: RunPlan, rows: list[MappedRow]) -> bool:
        """Upsert one batch of a run's rows; False when the run is gone (reset, deleted)."""
        with self._store.lock:
            if self._claimed_run(plan) is None:
                return False
            now_ms = epoch_ms(self._store.clock.now())
            for row in rows:
                self._store.profiles.upsert(row, now_ms)
            return True

    def finish(self, plan: RunPlan, outcome: RunOutcome) -> None:
        """Record how a claimed run ended, and fault its pipeline/connection if it failed."""
        with self._store.lock:
            run = self._claimed_run(plan)
            if run is None:
                self._store.changed.notify_all()
                return
            now = self._store.clock.now()
            run.claimed = False
            run.state = "failed" if outcome.failure else "success"
            run.end_date = now
            run.records_extracted, run.records_mapped = outcome.extracted, outcome.mapped
            run.audit.touch(now, run.audit.created_by)
            pipeline = self._store.pipelines[plan.pipeline_id]
            if outcome.failure:
                pipeline.is_faulted, pipeline.faulted_reason = True, outcome.failure
            self._store.observe_activity()  # a once pipeline stops counting when its run ends
            if plan.credentials is not None and not plan.forced_failure:
                connection = self._store.connections.get(pipeline.fields["connection_id"])
                if connection is not None:
                    connection.is_faulted = outcome.warehouse_unavailable
            self._store.changed.notify_all()

    def next_event_after(self, now: datetime) -> datetime | None:
        """The next instant after ``now`` at which the scheduler has something to do."""
        with self._store.lock:
            events: list[datetime] = []
            for pipeline in self._store.pipelines.values():
                if not pipeline.runs_on_schedule:
                    continue
                if pipeline.interval in INTERVAL_SCHEDULES:
                    high = interval_at(pipeline.start, pipeline.interval, pipeline.next_interval)[1]
                    if pipeline.end is None or high <= pipeline.end:
                        events.append(high)
                elif pipeline.interval == "once" and not self._store.runs[pipeline.id]:
                    events.append(pipeline.end or pipeline.audit.created_on)
                events += [
                    self._finish_time(r)
                    for r in self._store.runs[pipeline.id]
                    if r.state == "running"
                ]
            later = [event for event in events if event > now]
            return min(later, default=None)

    def busy(self) -> bool:
        """Whether another thread is executing a run right now."""
        with self._store.lock:
            return any(r.claimed for runs in self._store.runs.values() for r in runs)


def _positive_int(query: dict[str, str], name: str, default: int, maximum: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (maximum is not None and int(raw) > maximum):
        upper = f" and at most {maximum}" if maximum else ""
        raise bad_request(f"{name} must be an integer of at least 1{upper} (got {raw!r}).")
    return int(raw)


def _instant_param(query: dict[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return parse_iso_instant(raw)
    except ValueError:
        raise bad_request(
            f"{name} must be an ISO-8601 instant such as 2023-02-01T00:00:00Z (got {raw!r})."
        ) from None
