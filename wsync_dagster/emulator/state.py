"""The emulator's backend: every resource, run, profile, token, fault and log entry, behind one lock.

Routes (``app.py``) only parse requests, call one method here and serialize what it returns; the
scheduler (``scheduler.py``) drives runs through :meth:`Backend.next_work` and
:meth:`Backend.finish`. Warehouse queries never run under the lock: a method that needs one
validates and snapshots under the lock, queries, then re-validates and commits under the lock.
"""

import collections
import secrets
import threading
import zlib
from datetime import datetime, timedelta
from typing import Any, TypeVar

from wsync_dagster.emulator.clock import (
    Clock,
    epoch_ms,
    format_instant,
    parse_iso_instant,
    parse_schedule_instant,
    whole_seconds,
)
from wsync_dagster.emulator.config import EmulatorConfig
from wsync_dagster.emulator.errors import ApiError, TokenError, bad_request, not_found
from wsync_dagster.emulator.faults import Faults
from wsync_dagster.emulator.limits import (
    CATCH_UP_WORDS,
    INTERVAL_SCHEDULES,
    MAX_ACTIVE_PIPELINES,
    MAX_MODEL_COLUMNS,
    SCHEDULE_INTERVALS,
)
from wsync_dagster.emulator.mapping import USER_IDENTITY_COLUMNS, MappedRow
from wsync_dagster.emulator.model import Audit, Connection, DataModel, Pipeline, Run
from wsync_dagster.emulator.profiles import PROFILE_FIELDS, ProfileStore
from wsync_dagster.emulator.resources import (
    DATA_MODEL,
    DATA_MODEL_ALIASES,
    PIPELINE,
    TIMESTAMP_TYPES,
    connection_schema,
    validate,
)
from wsync_dagster.emulator.runner import RunOutcome, RunPlan
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
    check_model_sql,
    window_literals,
    window_predicate,
)

AUDIENCE = "https://api.mparticle.com"
REQUEST_LOG_SIZE = 100_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
RUN_QUERY_PARAMS = frozenset({"currentPage", "pageSize", "startDate", "endDate"})

_R = TypeVar("_R", Connection, DataModel, Pipeline)


def partner_feed_id(key: str) -> int:
    """A stable feed id derived from the feed's server-to-server key."""
    return 1000 + zlib.crc32(key.encode()) % 9000


class Backend:
    """State of one emulator. Thread-safe: every public method takes the lock."""

    def __init__(self, config: EmulatorConfig, clock: Clock, warehouse: Warehouse) -> None:
        self.config = config
        self.clock = clock
        self.warehouse = warehouse
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self.profiles = ProfileStore(config.seed)
        self.reset()

    # ----------------------------------------------------------------------------------- admin

    def reset(self) -> None:
        """Forget everything: resources, runs, profiles, tokens, faults, log, limits, clock."""
        with self._lock:
            self._generation += 1
            self._connections: dict[str, Connection] = {}
            self._models: dict[str, DataModel] = {}
            self._pipelines: dict[str, Pipeline] = {}
            self._runs: dict[str, list[Run]] = {}
            self._next_run_id = 1
            self._tokens: dict[str, datetime] = {}
            self.faults = Faults()
            self._log: collections.deque[dict[str, Any]] = collections.deque(
                maxlen=REQUEST_LOG_SIZE
            )
            self.record_limits = dict(self.config.record_limits)
            self.profiles.reset()
            self.clock.reset()
            self._changed.notify_all()

    def is_warehouse_down(self) -> bool:
        return self.faults.warehouse_unreachable

    def clock_json(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"now": format_instant(now), "epoch_ms": epoch_ms(now), "mode": self.clock.mode}

    def update_faults(self, body: Any) -> dict[str, Any]:
        with self._lock:
            self.faults.update(body)
            return self.faults.to_json()

    def clear_faults(self) -> dict[str, Any]:
        with self._lock:
            self.faults = Faults()
            return self.faults.to_json()

    def faults_json(self) -> dict[str, Any]:
        with self._lock:
            return self.faults.to_json()

    def set_record_limits(self, body: Any) -> dict[str, int]:
        if not isinstance(body, dict) or not body:
            raise bad_request("Send a JSON object of schedule_interval -> record limit.")
        problems = [
            f"{name}: expected one of {', '.join(SCHEDULE_INTERVALS)} and a positive integer."
            for name, value in body.items()
            if name not in SCHEDULE_INTERVALS
            or not isinstance(value, int)
            or isinstance(value, bool)
            or value < 1
        ]
        if problems:
            raise bad_request(*problems)
        with self._lock:
            self.record_limits.update(body)
            return dict(self.record_limits)

    def limits_json(self) -> dict[str, int]:
        with self._lock:
            return dict(self.record_limits)

    def record_request(self, method: str, path: str, status: int | None, authorized: bool) -> None:
        with self._lock:
            self._log.append(
                {"method": method, "path": path, "status": status, "authorized": authorized}
            )

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._lock:
            self._log.clear()

    def all_profiles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [profile.to_json() for profile in self.profiles]

    # ------------------------------------------------------------------------ faults per call

    def take_request_fault(self, method: str, path: str) -> ApiError | None:
        """The injected 429/5xx for this API call, if one is armed (uses it up)."""
        with self._lock:
            if self.faults.throttle.take(method, path):
                retry_after = str(self.faults.throttle.retry_after)
                return ApiError(
                    429,
                    "Too many requests (injected by the emulator).",
                    headers={"Retry-After": retry_after},
                )
            if self.faults.server_error.take(method, path):
                status = self.faults.server_error.status
                return ApiError(status, f"Server error {status} (injected by the emulator).")
            return None

    def take_token_delay(self) -> float:
        with self._lock:
            return self.faults.take_token_delay()

    def take_dropped_trigger(self) -> bool:
        with self._lock:
            if self.faults.dropped_triggers > 0:
                self.faults.dropped_triggers -= 1
                return True
            return False

    def _run_state_override(self) -> str | None:
        if self.faults.unknown_state_reads > 0:
            self.faults.unknown_state_reads -= 1
            return self.faults.unknown_state
        return None

    # ------------------------------------------------------------------------------------ auth

    def issue_token(self, body: Any) -> dict[str, Any]:
        """The client-credentials grant (spec §1, §7 #19)."""
        if not isinstance(body, dict):
            raise TokenError(400, "invalid_request", "The request body must be a JSON object.")
        for name in ("client_id", "client_secret", "audience", "grant_type"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise TokenError(400, "invalid_request", f"Missing required parameter: {name}")
        if body["grant_type"] != "client_credentials":
            raise TokenError(
                400, "invalid_request", f"Unsupported grant_type: {body['grant_type']}"
            )
        if body["audience"] != AUDIENCE:
            raise TokenError(
                400,
                "invalid_request",
                f"Service not found: {body['audience']} (the audience must be {AUDIENCE})",
            )
        with self._lock:
            if self.faults.token_failures > 0:
                self.faults.token_failures -= 1
                raise TokenError(500, "server_error", "Token endpoint failure (injected).")
            if (body["client_id"], body["client_secret"]) != (
                self.config.client_id,
                self.config.client_secret,
            ):
                raise TokenError(401, "access_denied", "Unauthorized")
            token = secrets.token_urlsafe(32)
            self._tokens[token] = self.clock.now() + timedelta(seconds=self.config.token_ttl)
        return {"access_token": token, "expires_in": self.config.token_ttl, "token_type": "Bearer"}

    def token_valid(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries an issued, unexpired bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expires = self._tokens.get(token.strip())
            return expires is not None and self.clock.now() < expires

    # ------------------------------------------------------------------------------- resources

    def check_workspace(self, workspace_id: str) -> None:
        if workspace_id != str(self.config.workspace_id):
            raise not_found(f"Workspace {workspace_id} not found.")

    def _body_workspace(self, fields: dict[str, Any]) -> None:
        if fields["workspace_id"] != self.config.workspace_id:
            raise bad_request(
                f"workspace_id {fields['workspace_id']} does not match the workspace of the URL "
                f"({self.config.workspace_id})."
            )

    def _audit(self) -> Audit:
        return Audit(self.clock.now(), self.config.credential_email)

    @staticmethod
    def _get(collection: dict[str, _R], kind: str, resource_id: str) -> _R:
        found = collection.get(resource_id)
        if found is None:
            raise not_found(f"{kind} {resource_id} not found.")
        return found

    @staticmethod
    def _check_new_id(collection: dict[str, Any], kind: str, resource_id: str) -> None:
        if resource_id in collection:
            raise bad_request(f"{kind} {resource_id} already exists.")

    @staticmethod
    def _check_same_id(fields: dict[str, Any], resource_id: str) -> None:
        if fields["id"] != resource_id:
            raise bad_request(
                f"The body's id {fields['id']!r} does not match the URL's id {resource_id!r}."
            )

    def _users(self, field: str, resource_id: str) -> list[str]:
        return [p.id for p in self._pipelines.values() if p.fields[field] == resource_id]

    # connections

    def list_connections(self, kind: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                c.to_json()
                for c in self._connections.values()
                if kind is None or c.fields["type"] == kind
            ]

    def get_connection(self, connection_id: str) -> dict[str, Any]:
        with self._lock:
            return self._get(self._connections, "Connection", connection_id).to_json()

    def put_connection(self, body: Any, connection_id: str | None = None) -> dict[str, Any]:
        """Create (``connection_id`` None) or fully replace a connection."""
        schema = connection_schema(body)
        fields = validate(body, schema)
        self._body_workspace(fields)
        with self._lock:
            if connection_id is None:
                self._check_new_id(self._connections, "Connection", fields["id"])
                connection = Connection(fields, schema, self._audit())
                self._connections[fields["id"]] = connection
            else:
                connection = self._get(self._connections, "Connection", connection_id)
                self._check_same_id(fields, connection_id)
                connection.fields, connection.schema = fields, schema
                connection.is_faulted = False
                connection.audit.touch(self.clock.now(), self.config.credential_email)
            return connection.to_json()

    def delete_connection(self, connection_id: str) -> None:
        with self._lock:
            self._get(self._connections, "Connection", connection_id)
            if users := self._users("connection_id", connection_id):
                raise bad_request(
                    f"Connection {connection_id} is used by pipeline(s) {', '.join(users)}; "
                    "delete or change them first."
                )
            del self._connections[connection_id]

    # data models

    def list_data_models(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m.to_json() for m in self._models.values()]

    def get_data_model(self, model_id: str) -> dict[str, Any]:
        with self._lock:
            return self._get(self._models, "Data model", model_id).to_json()

    def put_data_model(self, body: Any, model_id: str | None = None) -> dict[str, Any]:
        """Create (``model_id`` None) or fully replace a data model."""
        fields = validate(body, DATA_MODEL, DATA_MODEL_ALIASES)
        self._body_workspace(fields)
        try:
            check_model_sql(fields["sql_query"])
        except ValueError as error:
            raise bad_request(f"{error}.") from None
        with self._lock:
            if model_id is None:
                self._check_new_id(self._models, "Data model", fields["id"])
                model = DataModel(fields, self._audit())
                self._models[fields["id"]] = model
            else:
                model = self._get(self._models, "Data model", model_id)
                self._check_same_id(fields, model_id)
                model.fields = fields
                model.audit.touch(self.clock.now(), self.config.credential_email)
            return model.to_json()

    def delete_data_model(self, model_id: str) -> None:
        with self._lock:
            self._get(self._models, "Data model", model_id)
            if users := self._users("data_model_id", model_id):
                raise bad_request(
                    f"Data model {model_id} is used by pipeline(s) {', '.join(users)}; "
                    "delete or change them first."
                )
            del self._models[model_id]

    # pipelines

    def list_pipelines(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p.to_json() for p in self._pipelines.values()]

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            return self._get(self._pipelines, "Pipeline", pipeline_id).to_json()

    def put_pipeline(self, body: Any, pipeline_id: str | None = None) -> dict[str, Any]:
        """Create (``pipeline_id`` None) or fully replace a pipeline.

        The model is validated against its connection on the warehouse (``LIMIT 0``) between two
        checks under the lock, so the warehouse round trip never holds the lock.
        """
        fields = validate(body, PIPELINE)
        self._body_workspace(fields)
        with self._lock:
            credentials, sql, ts_field = self._prepare_pipeline(fields, pipeline_id)
        connection_id = fields["connection_id"]
        try:
            if credentials is None:
                raise WarehouseUnavailable("the emulator only reaches Snowflake warehouses")
            columns = self.warehouse.columns(credentials, sql)
        except WarehouseUnavailable as error:
            self._set_connection_faulted(connection_id, True)
            raise ApiError(
                505, f"Could not connect to the warehouse of connection {connection_id}: {error}"
            ) from None
        except WarehouseError as error:
            self._set_connection_faulted(connection_id, False)
            raise bad_request(
                f"The data model {fields['data_model_id']} failed in the warehouse: {error}"
            ) from None
        self._set_connection_faulted(connection_id, False)
        if len(columns) > MAX_MODEL_COLUMNS:
            raise bad_request(
                f"The data model {fields['data_model_id']} returns {len(columns)} columns; "
                f"the limit is {MAX_MODEL_COLUMNS}."
            )
        if ts_field.lower() not in {c.lower() for c in columns}:
            raise bad_request(
                f"The data model {fields['data_model_id']} has no column {ts_field} "
                f"(its load_timestamp_field_name); columns: {', '.join(columns)}."
            )
        with self._lock:
            self._prepare_pipeline(fields, pipeline_id)
            return self._commit_pipeline(fields, pipeline_id).to_json()

    def _set_connection_faulted(self, connection_id: str, faulted: bool) -> None:
        with self._lock:
            if (connection := self._connections.get(connection_id)) is not None:
                connection.is_faulted = faulted

    def _schedule_of(
        self, fields: dict[str, Any], existing: Pipeline | None
    ) -> tuple[datetime, datetime | None]:
        now = self.clock.now()
        if fields["schedule_start_time"] is not None:
            start = parse_schedule_instant(fields["schedule_start_time"])
        elif existing is not None:
            start = existing.start
        else:
            start = now.replace(second=0, microsecond=0)
        end = fields["schedule_end_time"]
        return start, parse_schedule_instant(end) if end is not None else None

    def _prepare_pipeline(
        self, fields: dict[str, Any], pipeline_id: str | None
    ) -> tuple[Credentials | None, str, str]:
        """Every check that needs no warehouse; returns what the ``LIMIT 0`` check needs."""
        if pipeline_id is None:
            self._check_new_id(self._pipelines, "Pipeline", fields["id"])
            existing = None
        else:
            existing = self._get(self._pipelines, "Pipeline", pipeline_id)
            self._check_same_id(fields, pipeline_id)
        problems: list[str] = []
        connection = self._connections.get(fields["connection_id"])
        model = self._models.get(fields["data_model_id"])
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
            _credentials(connection),
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
        now = self.clock.now()
        if interval == "once" and end is None and start > now:
            problems.append(
                "A once pipeline without schedule_end_time syncs schedule_start_time up to its "
                "creation, so the start must not be in the future."
            )
        if not (fields["is_active"] and not fields["is_draft"]):
            return problems
        active = [
            p
            for p in self._pipelines.values()
            if p.id != fields["id"] and self._counts_as_active(p)
        ]
        if len(active) >= MAX_ACTIVE_PIPELINES:
            problems.append(
                f"Workspace {self.config.workspace_id} already has {len(active)} active pipelines "
                f"({', '.join(p.id for p in active)}); the limit is {MAX_ACTIVE_PIPELINES}. "
                "Pause or delete one first."
            )
        if interval in INTERVAL_SCHEDULES:
            first = self._first_pending_interval(fields, existing, start)
            first_start = interval_at(start, interval, first)[0]
            earliest = earliest_allowed_start(now, interval)
            if first_start < earliest:
                what = (
                    f"schedule_start_time {format_instant(start)}"
                    if first == 0
                    else f"The first interval still to run ({format_instant(first_start)})"
                )
                problems.append(
                    f"{what} is older than the {interval} catch-up limit of "
                    f"{CATCH_UP_WORDS[interval]}: the earliest allowed start is "
                    f"{format_instant(earliest)}."
                )
        return problems

    def _first_pending_interval(
        self, fields: dict[str, Any], existing: Pipeline | None, start: datetime
    ) -> int:
        """Where the grid continues: after the latest scheduled run's logical date, if any."""
        if existing is None:
            return 0
        if existing.start == start and existing.interval == fields["schedule_interval"]:
            return existing.next_interval
        scheduled = [r.logical_date for r in self._runs[existing.id] if r.run_type == "scheduled"]
        if not scheduled or fields["schedule_interval"] not in INTERVAL_SCHEDULES:
            return 0
        return first_interval_after(start, fields["schedule_interval"], max(scheduled))

    def _counts_as_active(self, pipeline: Pipeline) -> bool:
        if not pipeline.runs_on_schedule:
            return False
        if pipeline.interval == "once":
            return not any(not r.in_progress for r in self._runs[pipeline.id])
        return True

    def _commit_pipeline(self, fields: dict[str, Any], pipeline_id: str | None) -> Pipeline:
        existing = None if pipeline_id is None else self._pipelines[pipeline_id]
        start, end = self._schedule_of(fields, existing)
        if fields["schedule_interval"] in INTERVAL_SCHEDULES:
            next_interval = self._first_pending_interval(fields, existing, start)
        else:
            next_interval = 0
        key = fields["partner_feed_key"]
        if existing is None:
            pipeline = Pipeline(fields, self._audit(), start, end, partner_feed_id(key))
            self._pipelines[pipeline.id] = pipeline
            self._runs[pipeline.id] = []
        else:
            pipeline = existing
            pipeline.fields, pipeline.start, pipeline.end = fields, start, end
            pipeline.partner_feed_id = partner_feed_id(key)
            pipeline.is_faulted, pipeline.faulted_reason = False, None
            pipeline.audit.touch(self.clock.now(), self.config.credential_email)
        pipeline.next_interval = next_interval
        self._changed.notify_all()
        return pipeline

    def delete_pipeline(self, pipeline_id: str) -> None:
        with self._lock:
            self._get(self._pipelines, "Pipeline", pipeline_id)
            del self._pipelines[pipeline_id]
            del self._runs[pipeline_id]

    # ------------------------------------------------------------------------- trigger, status

    def trigger(self, pipeline_id: str) -> dict[str, Any]:
        """Request an on-demand run (§7 #4/#5)."""
        with self._lock:
            pipeline = self._get(self._pipelines, "Pipeline", pipeline_id)
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
            runs = self._runs[pipeline_id]
            if any(r.in_progress for r in runs):
                raise bad_request(f"Pipeline {pipeline_id} is already in progress.")
            now = whole_seconds(self.clock.now())
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
            run_id=self._next_run_id,
            pipeline_id=pipeline.id,
            workspace_id=self.config.workspace_id,
            logical_date=logical,
            data_interval_start=start,
            data_interval_end=end,
            run_type="manual" if manual else "scheduled",
            externally_triggered=manual,
            state="triggered" if manual else "queued",
            audit=Audit(self.clock.now(), self.config.credential_email),
        )
        self._next_run_id += 1
        self._runs[pipeline.id].append(run)
        self._changed.notify_all()
        return run

    def status(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            pipeline = self._get(self._pipelines, "Pipeline", pipeline_id)
            connection = self._connections.get(pipeline.fields["connection_id"])
            runs = self._runs[pipeline_id]
            latest = max(runs, key=lambda r: (r.logical_date, r.run_id), default=None)
            return {
                "pipeline_id": pipeline_id,
                "workspace_id": self.config.workspace_id,
                "is_faulted": pipeline.is_faulted,
                "is_connection_faulted": bool(connection and connection.is_faulted),
                "is_connection_active": connection is not None,
                "is_active": pipeline.fields["is_active"],
                "latest_pipeline_run": (
                    latest.to_json(self._run_state_override()) if latest else None
                ),
            }

    def list_runs(self, pipeline_id: str, query: dict[str, str]) -> dict[str, Any]:
        """One page of runs, newest ``logical_date`` first (§7 #15)."""
        unknown = sorted(set(query) - RUN_QUERY_PARAMS)
        if unknown:
            raise bad_request(f"Unknown query parameter(s): {', '.join(unknown)}.")
        page = _positive_int(query, "currentPage", 1, None)
        size = _positive_int(query, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        low = _instant_param(query, "startDate")
        high = _instant_param(query, "endDate")
        with self._lock:
            self._get(self._pipelines, "Pipeline", pipeline_id)
            runs = [
                r
                for r in self._runs[pipeline_id]
                if (low is None or r.logical_date >= low)
                and (high is None or r.logical_date <= high)
            ]
            runs.sort(key=lambda r: (r.logical_date, r.run_id), reverse=True)
            chosen = runs[(page - 1) * size : page * size]
            return {"items": [r.to_json(self._run_state_override()) for r in chosen]}

    def get_run(self, pipeline_id: str, run_id: str) -> dict[str, Any]:
        with self._lock:
            self._get(self._pipelines, "Pipeline", pipeline_id)
            for run in self._runs[pipeline_id]:
                if str(run.run_id) == run_id:
                    return run.to_json(self._run_state_override())
            raise not_found(f"Pipeline run {run_id} of pipeline {pipeline_id} not found.")

    # -------------------------------------------------------------------------------- profiles

    def check_profile_scope(self, org_id: str, account_id: str, workspace_id: str) -> None:
        expected = (self.config.org_id, self.config.account_id, self.config.workspace_id)
        if (org_id, account_id, workspace_id) != tuple(str(v) for v in expected):
            raise not_found(f"No workspace {workspace_id} in account {account_id} of org {org_id}.")

    def profile(self, mpid: str, fields: tuple[str, ...]) -> dict[str, Any]:
        with self._lock:
            try:
                found = self.profiles.get(int(mpid))
            except ValueError:
                raise bad_request(f"mpid must be a 64-bit integer (got {mpid!r}).") from None
            if found is None:
                raise not_found(f"No profile with mpid {mpid}.")
            return found.to_json(fields)

    def resolve(self, body: Any, fields: tuple[str, ...]) -> dict[str, Any]:
        """Look a profile up by one identity (``POST /userprofile/v1/resolve/...``)."""
        identity_type, value = _resolve_request(body)
        with self._lock:
            found = self.profiles.resolve(identity_type, value)
            if found is None:
                raise not_found(f"No profile with {identity_type} {value!r}.")
            return found.to_json(fields)

    # ------------------------------------------------------------------------------ scheduling

    def _create_due_runs(self, now: datetime) -> None:
        for pipeline in self._pipelines.values():
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
            elif pipeline.interval == "once" and not self._runs[pipeline.id]:
                end = pipeline.end or pipeline.audit.created_on.replace(microsecond=0)
                if end <= now:
                    self._new_run(pipeline, pipeline.start, pipeline.start, end, manual=False)

    def _finish_time(self, run: Run) -> datetime:
        assert run.start_date is not None
        return run.start_date + timedelta(seconds=self.config.run_seconds)

    def _plan(self, pipeline: Pipeline, run: Run) -> RunPlan:
        model = self._models[pipeline.fields["data_model_id"]].fields
        connection = self._connections[pipeline.fields["connection_id"]]
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
            generation=self._generation,
            pipeline_id=pipeline.id,
            limit_name=limit.replace("_", "-"),
            record_limit=self.record_limits[limit],
            credentials=_credentials(connection),
            sql=model["sql_query"],
            timestamp_field=model["load_timestamp_field_name"],
            predicate=window_predicate(model["load_timestamp_field_name"], bounds),
            window=f"{format_instant(run.data_interval_start)} .. "
            f"{format_instant(run.data_interval_end)}",
            forced_failure=self.faults.take_run_failure(pipeline.id),
        )

    def next_work(self) -> RunPlan | None:
        """Create due runs, start what may start, and claim one run whose work is due now.

        Returns None when nothing can be executed at the current clock time.
        """
        with self._lock:
            now = self.clock.now()
            self._create_due_runs(now)
            for pipeline in self._pipelines.values():
                runs = self._runs[pipeline.id]
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
        if plan.generation != self._generation:
            return None
        for run in self._runs.get(plan.pipeline_id, ()):
            if run.run_id == plan.run_id:
                return run
        return None

    def ingest(self, plan: RunPlan, rows: list[MappedRow]) -> bool:
        """Upsert one batch of a run's rows; False when the run is gone (reset, deleted)."""
        with self._lock:
            if self._claimed_run(plan) is None:
                return False
            now_ms = epoch_ms(self.clock.now())
            for row in rows:
                self.profiles.upsert(row, now_ms)
            return True

    def finish(self, plan: RunPlan, outcome: RunOutcome) -> None:
        """Record how a claimed run ended, and fault its pipeline/connection if it failed."""
        with self._lock:
            run = self._claimed_run(plan)
            if run is None:
                self._changed.notify_all()
                return
            now = self.clock.now()
            run.claimed = False
            run.state = "failed" if outcome.failure else "success"
            run.end_date = now
            run.records_extracted, run.records_mapped = outcome.extracted, outcome.mapped
            run.audit.touch(now, run.audit.created_by)
            pipeline = self._pipelines[plan.pipeline_id]
            if outcome.failure:
                pipeline.is_faulted, pipeline.faulted_reason = True, outcome.failure
            if plan.credentials is not None and not plan.forced_failure:
                connection = self._connections.get(pipeline.fields["connection_id"])
                if connection is not None:
                    connection.is_faulted = outcome.warehouse_unavailable
            self._changed.notify_all()

    def next_event_after(self, now: datetime) -> datetime | None:
        """The next instant after ``now`` at which the scheduler has something to do."""
        with self._lock:
            events: list[datetime] = []
            for pipeline in self._pipelines.values():
                if not pipeline.runs_on_schedule:
                    continue
                if pipeline.interval in INTERVAL_SCHEDULES:
                    high = interval_at(pipeline.start, pipeline.interval, pipeline.next_interval)[1]
                    if pipeline.end is None or high <= pipeline.end:
                        events.append(high)
                elif pipeline.interval == "once" and not self._runs[pipeline.id]:
                    events.append(pipeline.end or pipeline.audit.created_on)
                events += [
                    self._finish_time(r) for r in self._runs[pipeline.id] if r.state == "running"
                ]
            later = [event for event in events if event > now]
            return min(later, default=None)

    def busy(self) -> bool:
        """Whether another thread is executing a run right now."""
        with self._lock:
            return any(r.claimed for runs in self._runs.values() for r in runs)

    def wait(self, timeout: float | None) -> None:
        """Block until the state changes (a run finishes, a pipeline changes) or ``timeout``."""
        with self._changed:
            self._changed.wait(timeout)

    def notify(self) -> None:
        with self._changed:
            self._changed.notify_all()


def _credentials(connection: Connection) -> Credentials | None:
    """What the emulator logs in to the warehouse with; None for a warehouse it cannot reach."""
    if connection.fields["type"] != "snowflake":
        return None
    fields = connection.fields
    return Credentials(
        fields["source_account_id"], fields["user"], fields["password"], fields["database"]
    )


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


def parse_fields(raw: str | None) -> tuple[str, ...]:
    """The Profile API's required ``fields`` query parameter."""
    if not raw:
        raise bad_request(f"The query parameter fields is required ({', '.join(PROFILE_FIELDS)}).")
    fields = tuple(f.strip() for f in raw.split(",") if f.strip())
    unknown = [f for f in fields if f not in PROFILE_FIELDS]
    if unknown or not fields:
        raise bad_request(
            f"Unknown fields: {', '.join(unknown)}; known: {', '.join(PROFILE_FIELDS)}."
        )
    return fields


_RESOLVE_TYPES = tuple(dict.fromkeys(USER_IDENTITY_COLUMNS.values()))


def _resolve_request(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    unknown = sorted(set(body) - {"environment_type", "identity"})
    if unknown:
        raise bad_request(f"Unknown field(s): {', '.join(unknown)}.")
    if body.get("environment_type") not in ("development", "production"):
        raise bad_request("environment_type must be development or production.")
    identity = body.get("identity")
    if not isinstance(identity, dict) or set(identity) != {"type", "value"}:
        raise bad_request('identity must be an object {"type": ..., "value": ...}.')
    kind, value = identity["type"], identity["value"]
    if kind not in _RESOLVE_TYPES:
        raise bad_request(
            f"identity.type must be one of {', '.join(_RESOLVE_TYPES)} (got {kind!r})."
        )
    if not isinstance(value, str) or not value:
        raise bad_request("identity.value must be a non-empty string.")
    return kind, value
