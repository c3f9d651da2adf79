"""The emulator's records: resources, runs and their audit fields, and how each is serialized."""

import dataclasses
from datetime import datetime
from typing import Any

from wsync_dagster.emulator.clock import format_audit, format_instant
from wsync_dagster.emulator.resources import DataModelBody, PipelineBody, masked

IN_PROGRESS_STATES = ("triggered", "queued", "running")
TERMINAL_STATES = ("success", "failed")


@dataclasses.dataclass
class Audit:
    """``created_on``/``created_by`` and ``last_modified_on``/``last_modified_by`` (null until changed)."""

    created_on: datetime
    created_by: str
    last_modified_on: datetime | None = None
    last_modified_by: str | None = None

    def touch(self, now: datetime, by: str) -> None:
        self.last_modified_on = now
        self.last_modified_by = by

    def to_json(self) -> dict[str, Any]:
        return {
            "created_on": format_audit(self.created_on),
            "created_by": self.created_by,
            "last_modified_on": (
                format_audit(self.last_modified_on) if self.last_modified_on else None
            ),
            "last_modified_by": self.last_modified_by,
        }


@dataclasses.dataclass
class Connection:
    """A warehouse connection; ``fields`` are the validated request fields."""

    fields: dict[str, Any]
    # The request fields the API never shows (masked).
    secrets: frozenset[str]
    audit: Audit
    is_faulted: bool = False

    def to_json(self) -> dict[str, Any]:
        public = masked(self.fields, self.secrets)
        head = {key: public.pop(key) for key in ("id", "name", "workspace_id")}
        return {**head, "is_faulted": self.is_faulted, **public, **self.audit.to_json()}


@dataclasses.dataclass
class DataModel:
    """A SQL data model; ``fields`` are the validated request fields (example spellings)."""

    fields: dict[str, Any]
    audit: Audit

    def to_json(self) -> dict[str, Any]:
        body = dict(self.fields)
        if body["load_timestamp_field_time_offset"] is None:
            body["load_timestamp_field_time_offset"] = 0
        return {**masked(body, DataModelBody.SECRETS), **self.audit.to_json()}


@dataclasses.dataclass
class Pipeline:
    """A pipeline with its parsed schedule and where its grid has got to."""

    fields: dict[str, Any]
    audit: Audit
    start: datetime
    end: datetime | None
    partner_feed_id: int
    is_faulted: bool = False
    faulted_reason: str | None = None
    # Index of the next interval of the grid to create a scheduled run for.
    next_interval: int = 0

    @property
    def id(self) -> str:
        return self.fields["id"]

    @property
    def interval(self) -> str:
        return self.fields["schedule_interval"]

    @property
    def runs_on_schedule(self) -> bool:
        """Active and not a draft: the scheduler may create and start its runs."""
        return self.fields["is_active"] and not self.fields["is_draft"]

    def to_json(self) -> dict[str, Any]:
        public = masked(self.fields, PipelineBody.SECRETS)
        return {
            "id": public["id"],
            "name": public["name"],
            "workspace_id": public["workspace_id"],
            "is_active": public["is_active"],
            "is_draft": public["is_draft"],
            "is_faulted": self.is_faulted,
            "faulted_reason": self.faulted_reason,
            "connection_id": public["connection_id"],
            "data_model_id": public["data_model_id"],
            "partner_feed_id": self.partner_feed_id,
            "partner_feed_key": public["partner_feed_key"],
            "schedule_start_time": format_instant(self.start),
            "schedule_end_time": format_instant(self.end) if self.end else None,
            "schedule_interval": public["schedule_interval"],
            "environment": public["environment"],
            **self.audit.to_json(),
        }


@dataclasses.dataclass
class Run:
    """One pipeline run (the run object of ``docs/warehouse-sync-api.md``)."""

    run_id: int
    pipeline_id: str
    workspace_id: int
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    run_type: str  # scheduled | manual
    externally_triggered: bool
    state: str
    audit: Audit
    start_date: datetime | None = None
    end_date: datetime | None = None
    records_extracted: int | None = None
    records_mapped: int | None = None
    # True while a thread executes it against the warehouse.
    claimed: bool = False

    @property
    def in_progress(self) -> bool:
        return self.state in IN_PROGRESS_STATES

    def to_json(self, state: str | None = None) -> dict[str, Any]:
        """The run object; ``state`` overrides ``pipeline_run_state`` (the unknown-state fault)."""
        return {
            "pipeline_run_id": self.run_id,
            "id": self.pipeline_id,
            "workspace_id": self.workspace_id,
            "logical_date": format_instant(self.logical_date),
            "start_date": format_instant(self.start_date) if self.start_date else None,
            "end_date": format_instant(self.end_date) if self.end_date else None,
            "data_interval_start": format_instant(self.data_interval_start),
            "data_interval_end": format_instant(self.data_interval_end),
            "pipeline_run_type": self.run_type,
            "pipeline_run_state": state or self.state,
            "is_externally_triggered": self.externally_triggered,
            "records_extracted": self.records_extracted,
            "records_mapped": self.records_mapped,
            "event_batches_generated": self.records_mapped,
            **self.audit.to_json(),
        }
