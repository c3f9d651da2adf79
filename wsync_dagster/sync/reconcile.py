"""Make mParticle's connection, data model and pipeline match a declared sync.

Create what is missing, update what drifted, leave what matches (an up-to-date sync costs three GETs and
no write). Before a write that mParticle would refuse — a 6th active pipeline, a start older than the
catch-up limit — raise :class:`ReconcileError` instead of sending it.

Secrets (the warehouse password, the feed key) are masked in mParticle's responses, so they cannot be
compared; they are read (through ``dagster.EnvVar``) only when a create or update must send them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypeVar

import dagster as dg
from pydantic import SecretStr

from wsync_dagster.mparticle import (
    Connection,
    ConnectionType,
    DataModel,
    DataModelType,
    Environment,
    LoadTimestampType,
    NotFoundError,
    Pipeline,
    RunState,
    ScheduleInterval,
    WarehouseSyncClient,
)
from wsync_dagster.sync.cadences import cadence
from wsync_dagster.sync.limits import Limits
from wsync_dagster.sync.specs import Registry, SyncSpec

Action = Literal["created", "updated", "unchanged"]

CONNECTION_FIELDS = (
    "name", "type", "source_account_id", "region", "warehouse", "database", "role", "user",
    "snowflake_aws_iam_user_arn", "snowflake_aws_external_id",
)  # fmt: skip
DATA_MODEL_FIELDS = (
    "name", "type", "sql_query", "load_timestamp_field_name", "load_timestamp_field_type",
    "load_timestamp_field_time_zone", "load_timestamp_field_time_offset",
)  # fmt: skip
PIPELINE_FIELDS = (
    "name", "is_active", "is_draft", "connection_id", "data_model_id", "schedule_interval",
    "schedule_start_time", "schedule_end_time", "environment",
)  # fmt: skip


class ReconcileError(Exception):
    """mParticle would refuse the change, or a secret it needs is not set. Nothing was written."""


@dataclass(frozen=True)
class Change:
    kind: Literal["connection", "data model", "pipeline"]
    id: str
    action: Action
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.kind} {self.id}: {self.action}{detail}"


@dataclass(frozen=True)
class Reconciled:
    pipeline: Pipeline
    changes: tuple[Change, ...]

    @property
    def wrote(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)


def _secret(env_name: str, what: str) -> str:
    value = dg.EnvVar(env_name).get_value()
    if not value:
        raise ReconcileError(
            f"{what} is read from the environment variable {env_name}, which is not set; set it "
            "where the Dagster run executes. Nothing was sent to mParticle."
        )
    return value


def desired_connection(registry: Registry, workspace_id: int, with_secret: bool) -> Connection:
    settings = registry.connection
    return Connection(
        id=settings.id,
        name=settings.name,
        workspace_id=workspace_id,
        type=ConnectionType.SNOWFLAKE,
        source_account_id=settings.source_account_id,
        region=settings.region,
        warehouse=settings.warehouse,
        database=settings.database,
        role=settings.role,
        user=settings.user,
        password=SecretStr(
            _secret(settings.password_env, f"The password of Snowflake user {settings.user}")
        )
        if with_secret
        else None,
        snowflake_aws_iam_user_arn=settings.snowflake_aws_iam_user_arn,
        snowflake_aws_external_id=settings.snowflake_aws_external_id,
    )


def desired_data_model(spec: SyncSpec, workspace_id: int) -> DataModel:
    stamp = spec.load_timestamp
    return DataModel(
        id=spec.resolved_data_model_id,
        name=f"{spec.name} (wsync_dagster)",
        workspace_id=workspace_id,
        type=DataModelType.SQL,
        sql_query=spec.sql.strip(),
        load_timestamp_field_name=stamp.column,
        load_timestamp_field_type=LoadTimestampType(stamp.type),
        load_timestamp_field_time_zone=stamp.time_zone,
        load_timestamp_field_time_offset=stamp.offset_seconds,
    )


def desired_pipeline(
    spec: SyncSpec, registry: Registry, workspace_id: int, with_secret: bool
) -> Pipeline:
    return Pipeline(
        id=spec.resolved_pipeline_id,
        name=f"{spec.name} (wsync_dagster)",
        workspace_id=workspace_id,
        is_active=spec.active,
        is_draft=False,
        connection_id=registry.connection.id,
        data_model_id=spec.resolved_data_model_id,
        partner_feed_key=SecretStr(
            _secret(spec.feed_key_env, f"The feed key of sync '{spec.name}'")
        )
        if with_secret
        else None,
        schedule_interval=ScheduleInterval(spec.schedule.interval),
        schedule_start_time=spec.schedule.start,
        schedule_end_time=spec.schedule.end,
        environment=Environment(spec.environment),
    )


def drifted_fields(desired: object, actual: object, fields: tuple[str, ...]) -> tuple[str, ...]:
    def norm(value: object) -> object:
        value = getattr(value, "value", value)  # enums compare by value
        return value.strip() if isinstance(value, str) else value

    return tuple(f for f in fields if norm(getattr(desired, f)) != norm(getattr(actual, f)))


def check_catch_up(spec: SyncSpec, now: datetime) -> None:
    """Refuse a new (or re-activated) interval pipeline whose start mParticle would reject."""
    interval = spec.schedule.interval
    catch_up = cadence(interval).catch_up
    if catch_up is None:
        return
    earliest = catch_up.earliest_start(now)
    if spec.schedule.start < earliest:
        raise ReconcileError(
            f"sync '{spec.name}': schedule.start {spec.schedule.start:%Y-%m-%dT%H:%M:%SZ} is older "
            f"than mParticle's {interval} catch-up limit ({catch_up.text}); the earliest start it "
            f"accepts now is {earliest:%Y-%m-%dT%H:%M:%SZ}. Move schedule.start forward (data "
            "before it can be loaded once with a 'once' sync). Nothing was sent to mParticle."
        )


def counts_as_active(client: WarehouseSyncClient, pipeline: Pipeline) -> bool:
    """Active and not a draft; a ``once`` pipeline stops counting once its run has ended
    (see docs/warehouse-sync-api.md)."""
    if not pipeline.is_active or pipeline.is_draft:
        return False
    if pipeline.schedule_interval != "once":
        return True
    latest = client.get_pipeline_status(pipeline.id).latest_pipeline_run
    return latest is None or latest.state not in (RunState.SUCCESS, RunState.FAILED)


def check_active_limit(
    client: WarehouseSyncClient, spec: SyncSpec, allowed: Limits | None = None
) -> None:
    """Refuse to make ``spec`` one active pipeline too many in the workspace (mParticle allows 5
    unless the registry's ``limits`` say otherwise)."""
    allowed = allowed or Limits()
    others = [
        p.id
        for p in client.list_pipelines()
        if p.id != spec.resolved_pipeline_id and counts_as_active(client, p)
    ]
    if len(others) >= allowed.max_active_pipelines:
        raise ReconcileError(
            f"sync '{spec.name}' would be active pipeline number {len(others) + 1} in the workspace, "
            f"but {allowed.active_owner()} allows {allowed.max_active_pipelines}: "
            f"{', '.join(sorted(others))} are active. Pause one of them (is_active false), or set "
            "paused: true on this sync. Nothing was sent to mParticle."
        )


M = TypeVar("M", Connection, DataModel, Pipeline)


@dataclass(frozen=True)
class _Plan(Generic[M]):
    """What to do with one resource, decided from a GET before anything is written."""

    change: Change
    actual: M | None
    build: Callable[[bool], M]
    create: Callable[[M], M]
    update: Callable[[M], M]

    def desired(self) -> M | None:
        """The object to send (secrets included), or None when nothing is to be written."""
        return None if self.change.action == "unchanged" else self.build(True)

    def apply(self, desired: M | None) -> M:
        if desired is None:
            assert self.actual is not None
            return self.actual
        if self.change.action == "created":
            return self.create(desired)
        return self.update(desired)


def _plan(
    kind: Literal["connection", "data model", "pipeline"],
    resource_id: str,
    get: Callable[[str], M],
    build: Callable[[bool], M],
    fields: tuple[str, ...],
    create: Callable[[M], M],
    update: Callable[[M], M],
) -> _Plan[M]:
    try:
        actual = get(resource_id)
    except NotFoundError:
        return _Plan(Change(kind, resource_id, "created"), None, build, create, update)
    drift = drifted_fields(build(False), actual, fields)
    action: Action = "updated" if drift else "unchanged"
    return _Plan(Change(kind, resource_id, action, drift), actual, build, create, update)


def reconcile(
    client: WarehouseSyncClient, registry: Registry, spec: SyncSpec, now: datetime
) -> Reconciled:
    """Bring the connection, data model and pipeline of ``spec`` in line with the registry.

    Reads all three first, checks every write mParticle would refuse and resolves every secret the
    writes need, and only then writes: a refusal leaves mParticle exactly as it was.
    """
    workspace = client.workspace_id
    connection = _plan(
        "connection",
        registry.connection.id,
        client.get_connection,
        lambda secret: desired_connection(registry, workspace, secret),
        CONNECTION_FIELDS,
        client.create_connection,
        client.update_connection,
    )
    model = _plan(
        "data model",
        spec.resolved_data_model_id,
        client.get_data_model,
        lambda _secret: desired_data_model(spec, workspace),
        DATA_MODEL_FIELDS,
        client.create_data_model,
        client.update_data_model,
    )
    pipeline = _plan(
        "pipeline",
        spec.resolved_pipeline_id,
        client.get_pipeline,
        lambda secret: desired_pipeline(spec, registry, workspace, secret),
        PIPELINE_FIELDS,
        client.create_pipeline,
        client.update_pipeline,
    )

    if pipeline.change.action != "unchanged" and spec.active:
        actual = pipeline.actual
        becomes_active = actual is None or not actual.is_active or actual.is_draft
        if actual is None or becomes_active or actual.schedule_start_time != spec.schedule.start:
            check_catch_up(spec, now)
        if becomes_active:
            check_active_limit(client, spec, registry.limits)

    # Every secret a write needs is read before the first write.
    desired = (connection.desired(), model.desired(), pipeline.desired())
    connection.apply(desired[0])
    model.apply(desired[1])
    result = pipeline.apply(desired[2])
    return Reconciled(result, (connection.change, model.change, pipeline.change))
