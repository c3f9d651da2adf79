"""Pipelines: create, replace (checked against their model on the warehouse), read and delete.

A pipeline body is checked in two rounds under the lock with the warehouse's ``LIMIT 0`` check
between them, so the warehouse round trip never holds the lock.
"""

from datetime import datetime
from typing import Any

from wsync_dagster.emulator.backend.activity import counts_as_active
from wsync_dagster.emulator.backend.catalog import (
    Collection,
    Connections,
    check_body_workspace,
    check_new_id,
    check_same_id,
    credentials_of,
    find,
    partner_feed_id,
)
from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.clock import format_instant, parse_schedule_instant
from wsync_dagster.emulator.errors import ApiError, bad_request
from wsync_dagster.emulator.limits import (
    CATCH_UP_WORDS,
    INTERVAL_SCHEDULES,
)
from wsync_dagster.emulator.model import Pipeline
from wsync_dagster.emulator.resources import TIMESTAMP_TYPES, PipelineBody, validate
from wsync_dagster.emulator.schedule import (
    earliest_allowed_start,
    first_interval_after,
    interval_at,
)
from wsync_dagster.emulator.warehouse import (
    Credentials,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)


class Pipelines(Collection[Pipeline]):
    """The pipelines of the workspace and the checks that tie them to connections and models."""

    kind = "Pipeline"

    def __init__(self, store: Store, connections: Connections, warehouse: Warehouse) -> None:
        super().__init__(store)
        self._connections = connections
        self._warehouse = warehouse

    def _items(self) -> dict[str, Pipeline]:
        return self._store.pipelines

    def delete(self, resource_id: str) -> None:
        with self._store.lock:
            find(self._store.pipelines, self.kind, resource_id)
            del self._store.pipelines[resource_id]
            del self._store.runs[resource_id]
            self._store.observe_activity()

    def put(self, body: Any, resource_id: str | None = None) -> dict[str, Any]:
        """Create or replace a pipeline: checked, its model run on the warehouse, checked again."""
        fields = validate(body, PipelineBody)
        check_body_workspace(self._store, fields)
        with self._store.lock:
            credentials, sql, ts_field = self._prepare(fields, resource_id)
        columns = self._model_columns(fields, credentials, sql)
        model_id = fields["data_model_id"]
        max_columns = self._store.config.max_model_columns
        if len(columns) > max_columns:
            raise bad_request(
                f"The data model {model_id} returns {len(columns)} columns; "
                f"the limit is {max_columns}."
            )
        if ts_field.lower() not in {c.lower() for c in columns}:
            raise bad_request(
                f"The data model {model_id} has no column {ts_field} "
                f"(its load_timestamp_field_name); columns: {', '.join(columns)}."
            )
        with self._store.lock:
            self._prepare(fields, resource_id)
            return self._commit(fields, resource_id).to_json()

    def _model_columns(
        self, fields: dict[str, Any], credentials: Credentials | None, sql: str
    ) -> list[str]:
        """The model's columns on the connection's warehouse (no lock held); faults the
        connection when the warehouse cannot be reached."""
        connection_id = fields["connection_id"]
        try:
            if credentials is None:
                raise WarehouseUnavailable("the emulator only reaches Snowflake warehouses")
            columns = self._warehouse.columns(credentials, sql)
        except WarehouseUnavailable as error:
            self._connections.set_faulted(connection_id, True)
            raise ApiError(
                505, f"Could not connect to the warehouse of connection {connection_id}: {error}"
            ) from None
        except WarehouseError as error:
            self._connections.set_faulted(connection_id, False)
            raise bad_request(
                f"The data model {fields['data_model_id']} failed in the warehouse: {error}"
            ) from None
        self._connections.set_faulted(connection_id, False)
        return columns

    def _schedule_of(
        self, fields: dict[str, Any], existing: Pipeline | None
    ) -> tuple[datetime, datetime | None]:
        if fields["schedule_start_time"] is not None:
            start = parse_schedule_instant(fields["schedule_start_time"])
        elif existing is not None:
            start = existing.start
        else:
            start = self._store.clock.now().replace(second=0, microsecond=0)
        end = fields["schedule_end_time"]
        return start, parse_schedule_instant(end) if end is not None else None

    def _prepare(
        self, fields: dict[str, Any], pipeline_id: str | None
    ) -> tuple[Credentials | None, str, str]:
        """Every check that needs no warehouse; returns what the ``LIMIT 0`` check needs."""
        store = self._store
        if pipeline_id is None:
            check_new_id(store.pipelines, "Pipeline", fields["id"])
            existing = None
        else:
            existing = find(store.pipelines, "Pipeline", pipeline_id)
            check_same_id(fields, pipeline_id)
        problems: list[str] = []
        connection = store.connections.get(fields["connection_id"])
        model = store.models.get(fields["data_model_id"])
        if connection is None:
            problems.append(f"Connection {fields['connection_id']} does not exist.")
        if model is None:
            problems.append(f"Data model {fields['data_model_id']} does not exist.")
        if connection is not None and model is not None:
            kind = connection.fields["type"]
            ts_type = model.fields["load_timestamp_field_type"]
            if ts_type not in TIMESTAMP_TYPES[kind]:
                problems.append(
                    f"load_timestamp_field_type {ts_type} of data model {model.fields['id']} is "
                    f"not valid for a {kind} connection ({', '.join(TIMESTAMP_TYPES[kind])})."
                )
        problems += self._schedule_problems(fields, existing)
        if problems:
            raise bad_request(*problems)
        assert connection is not None and model is not None
        return (
            credentials_of(connection),
            model.fields["sql_query"],
            model.fields["load_timestamp_field_name"],
        )

    def _schedule_problems(self, fields: dict[str, Any], existing: Pipeline | None) -> list[str]:
        start, end = self._schedule_of(fields, existing)
        interval = fields["schedule_interval"]
        problems: list[str] = []
        if end is not None and end <= start:
            problems.append("schedule_end_time must be later than schedule_start_time.")
        if interval == "monthly" and start.day > 28:
            problems.append(
                f"A monthly schedule must start on day 1-28 of a month (got day {start.day}): "
                "later days do not exist in every month."
            )
        if interval == "once" and end is None and start > self._store.clock.now():
            problems.append(
                "A once pipeline without schedule_end_time syncs schedule_start_time up to its "
                "creation, so the start must not be in the future."
            )
        if not (fields["is_active"] and not fields["is_draft"]):
            return problems
        problems += self._active_limit_problems(fields)
        if interval in INTERVAL_SCHEDULES:
            problems += self._catch_up_problems(fields, existing, start)
        return problems

    def _active_limit_problems(self, fields: dict[str, Any]) -> list[str]:
        """At most ``max_active_pipelines`` (5 by default) may run on schedule at once: checked on
        a create and on a PUT alike, so re-activating a paused pipeline can be refused too."""
        active = [
            p
            for p in self._store.pipelines.values()
            if p.id != fields["id"] and counts_as_active(p, self._store.runs[p.id])
        ]
        allowed = self._store.config.max_active_pipelines
        if len(active) < allowed:
            return []
        return [
            f"Workspace {self._store.config.workspace_id} already has {len(active)} active "
            f"pipelines ({', '.join(p.id for p in active)}); the limit is {allowed}. "
            "Pause or delete one first."
        ]

    def _catch_up_problems(
        self, fields: dict[str, Any], existing: Pipeline | None, start: datetime
    ) -> list[str]:
        """The first interval still to run must be within the interval's catch-up limit."""
        interval = fields["schedule_interval"]
        first = self._first_pending_interval(fields, existing, start)
        first_start = interval_at(start, interval, first)[0]
        earliest = earliest_allowed_start(self._store.clock.now(), interval)
        if first_start >= earliest:
            return []
        what = (
            f"schedule_start_time {format_instant(start)}"
            if first == 0
            else f"The first interval still to run ({format_instant(first_start)})"
        )
        return [
            f"{what} is older than the {interval} catch-up limit of "
            f"{CATCH_UP_WORDS[interval]}: the earliest allowed start is "
            f"{format_instant(earliest)}."
        ]

    def _first_pending_interval(
        self, fields: dict[str, Any], existing: Pipeline | None, start: datetime
    ) -> int:
        """Where the grid continues: after the latest scheduled run's logical date, if any."""
        if existing is None:
            return 0
        if existing.start == start and existing.interval == fields["schedule_interval"]:
            return existing.next_interval
        runs = self._store.runs[existing.id]
        scheduled = [r.logical_date for r in runs if r.run_type == "scheduled"]
        if not scheduled or fields["schedule_interval"] not in INTERVAL_SCHEDULES:
            return 0
        return first_interval_after(start, fields["schedule_interval"], max(scheduled))

    def _commit(self, fields: dict[str, Any], pipeline_id: str | None) -> Pipeline:
        store = self._store
        existing = None if pipeline_id is None else store.pipelines[pipeline_id]
        start, end = self._schedule_of(fields, existing)
        if fields["schedule_interval"] in INTERVAL_SCHEDULES:
            next_interval = self._first_pending_interval(fields, existing, start)
        else:
            next_interval = 0
        key = fields["partner_feed_key"]
        if existing is None:
            pipeline = Pipeline(fields, store.audit(), start, end, partner_feed_id(key))
            store.pipelines[pipeline.id] = pipeline
            store.runs[pipeline.id] = []
        else:
            pipeline = existing
            pipeline.fields, pipeline.start, pipeline.end = fields, start, end
            pipeline.partner_feed_id = partner_feed_id(key)
            pipeline.is_faulted, pipeline.faulted_reason = False, None
            pipeline.audit.touch(store.clock.now(), store.config.credential_email)
        pipeline.next_interval = next_interval
        store.observe_activity()
        store.changed.notify_all()
        return pipeline
