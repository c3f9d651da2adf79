"""Make mParticle's connection, data model and pipeline match a declared sync.

Create what is missing, update what drifted, leave what matches (an up-to-date sync costs three GETs and
no write). Before a write that mParticle would refuse — a 6th active pipeline, a start older than the
catch-up limit — raise :class:`ReconcileError` instead of sending it.

Secrets (the warehouse password, the feed key) are masked in mParticle's responses, so they cannot be
compared; they are read (through ``dagster.EnvVar``) only when a create or update must send them.

Creates are idempotent. Two first materializations that run at once (two syncs sharing the
connection, two launches of one sync, in any processes) both read a 404 and both create; mParticle
creates atomically and refuses the later duplicate id with a 400. A create refused with a 400 is
therefore followed by a read: if the resource exists now, it is adopted like one found by the first
read (left as it is when it matches, updated when it drifted); if it still does not exist, the 400
was about something else and is raised. No lock is needed, only the server's atomic create.
"""

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import SecretStr

from wsync_dagster.mparticle import (
    BadRequestError,
    Connection,
    ConnectionType,
    DataModel,
    DataModelType,
    Environment,
    LoadTimestampType,
    NotFoundError,
    Pipeline,
    ScheduleInterval,
    WarehouseSyncClient,
)
from wsync_dagster.sync.engine.reads import Reads
from wsync_dagster.sync.registry.cadences import cadence
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, SyncSpec

Action = Literal["created", "updated", "unchanged", "fault cleared"]

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
    note: str = ""

    def describe(self) -> str:
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.kind} {self.id}: {self.action}{detail}{self.note}"


@dataclass(frozen=True)
class Reconciled:
    pipeline: Pipeline
    changes: tuple[Change, ...]


def _secret(env_name: str, what: str) -> str:
    value = os.environ.get(env_name)
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


def check_active_limit(
    client: WarehouseSyncClient,
    spec: SyncSpec,
    allowed: Limits | None = None,
    reads: Reads | None = None,
) -> None:
    """Refuse to make ``spec`` one active pipeline too many in the workspace (mParticle allows 5
    unless the registry's ``limits`` say otherwise). ``reads``: a plan's shared reads."""
    allowed = allowed or Limits()
    others = (reads or Reads(client)).active_ids(besides=(spec.resolved_pipeline_id,))
    if len(others) >= allowed.max_active_pipelines:
        raise ReconcileError(
            f"sync '{spec.name}' would be active pipeline number {len(others) + 1} in the workspace, "
            f"but {allowed.active_owner()} allows {allowed.max_active_pipelines}: "
            f"{', '.join(sorted(others))} are active. Pause one of them (is_active false), or set "
            "paused: true on this sync. Nothing was sent to mParticle."
        )


M = TypeVar("M", Connection, DataModel, Pipeline)
Kind = Literal["connection", "data model", "pipeline"]


@dataclass(frozen=True)
class Drift:
    """One field whose value in mParticle differs from the registry's."""

    field: str
    current: object
    declared: object


@dataclass(frozen=True)
class Resource(Generic[M]):
    """One mParticle object a sync needs: how to read, build, create and update it.

    ``build(with_secret)`` returns the declared object; with ``with_secret`` it carries the secret
    read from the environment (only a write needs it; mParticle masks secrets, so they are never
    compared).
    """

    kind: Kind
    id: str
    get: Callable[[str], M]
    build: Callable[[bool], M]
    fields: tuple[str, ...]
    create: Callable[[M], M]
    update: Callable[[M], M]

    def compare(self, actual: M) -> Change:
        """Whether ``actual`` must be updated (secrets cannot be compared, so are not read)."""
        drift = drifted_fields(self.build(False), actual, self.fields)
        return Change(self.kind, self.id, "updated" if drift else "unchanged", drift)

    def drift(self, actual: M | None) -> tuple[Drift, ...]:
        """Each drifted field with its current and declared values (nothing for a create)."""
        if actual is None:
            return ()
        declared = self.build(False)
        return tuple(
            Drift(name, _plain(getattr(actual, name)), _plain(getattr(declared, name)))
            for name in drifted_fields(declared, actual, self.fields)
        )


def _plain(value: object) -> object:
    return getattr(value, "value", value)


@dataclass(frozen=True)
class ResourcePlan(Generic[M]):
    """What a materialization would do to one resource, decided from a GET before any write."""

    resource: Resource[M]
    change: Change
    actual: M | None

    @staticmethod
    def read(resource: Resource[M]) -> "ResourcePlan[M]":
        try:
            actual = resource.get(resource.id)
        except NotFoundError:
            return ResourcePlan(resource, Change(resource.kind, resource.id, "created"), None)
        return ResourcePlan(resource, resource.compare(actual), actual)

    @property
    def writes(self) -> bool:
        return self.change.action != "unchanged"

    def drift(self) -> tuple[Drift, ...]:
        return self.resource.drift(self.actual)

    def desired(self) -> M | None:
        """The object to send (secrets included), or None when nothing is to be written."""
        return self.resource.build(True) if self.writes else None

    def apply(self, desired: M | None) -> tuple[M, Change]:
        """Write ``desired``; the resource as stored, and what was done to it."""
        if desired is None:
            assert self.actual is not None
            return self.actual, self.change
        if self.change.action == "created":
            return self._create_or_adopt(desired)
        return self.resource.update(desired), self.change

    def _create_or_adopt(self, desired: M) -> tuple[M, Change]:
        """Create; if a concurrent reconcile created it first, adopt that one (see the module doc).

        A retried POST whose first attempt did create the resource lands here too. An update
        racing another update of the same resource is harmless: both send the same desired state
        (a full replace), so the second changes nothing the first did not.
        """
        try:
            return self.resource.create(desired), self.change
        except BadRequestError as refused:
            try:
                actual = self.resource.get(self.change.id)
            except NotFoundError:
                raise refused from None
        change = self.resource.compare(actual)
        if change.action == "unchanged":
            return actual, change
        return self.resource.update(desired), change


def _clearing_fault(plan: ResourcePlan[Pipeline]) -> ResourcePlan[Pipeline]:
    """A faulted pipeline is written even if it matches: a PUT clears the fault.

    A failed run faults its pipeline (docs/warehouse-sync-api.md#faults), and only a PUT of the
    pipeline clears it. Reconcile runs when a materialization starts, so the fault it clears is left
    from an earlier run; the runs themselves keep their state, and the Change names the old reason.
    """
    actual = plan.actual
    if actual is None or not actual.is_faulted:
        return plan
    was = f" (was: {actual.faulted_reason or 'no reason given'})"
    change = plan.change
    if change.action == "unchanged":
        change = Change(change.kind, change.id, "fault cleared", (), was)
    else:
        change = Change(
            change.kind, change.id, change.action, change.fields, f"; fault cleared{was}"
        )
    return dataclasses.replace(plan, change=change)


def _holding_rotation(plan: ResourcePlan[Pipeline], spec: SyncSpec) -> ResourcePlan[Pipeline]:
    """A rotating sync's pipeline is created paused, and its ``is_active`` is never drift.

    Rotation (sync/engine/rotation.py) activates the pipeline around a run and pauses it after; a
    reconcile of a concurrent materialization must neither pause it under a run nor activate it: it
    keeps whatever mParticle has.
    """
    actual = plan.actual
    if not spec.rotate or actual is None:
        return plan
    declared = plan.resource.build

    def build(secret: bool) -> Pipeline:
        return declared(secret).model_copy(update={"is_active": actual.is_active})

    resource = dataclasses.replace(plan.resource, build=build)
    return ResourcePlan(resource, resource.compare(actual), actual)


@dataclass(frozen=True)
class SyncPlan:
    """What reconciling one sync would do, read from mParticle without writing anything.

    ``refusals`` are what mParticle would refuse (a start older than the catch-up limit, a 6th
    active pipeline): :func:`apply_plan` raises them before any write, and a read-only plan shows
    them as they are.
    """

    spec: SyncSpec
    connection: ResourcePlan[Connection]
    model: ResourcePlan[DataModel]
    pipeline: ResourcePlan[Pipeline]
    refusals: tuple[str, ...] = ()

    @property
    def resources(self) -> tuple[ResourcePlan[Any], ...]:
        return (self.connection, self.model, self.pipeline)

    @property
    def writes(self) -> bool:
        return any(r.writes for r in self.resources)


def _resources(
    client: WarehouseSyncClient, registry: Registry, spec: SyncSpec, reads: Reads
) -> tuple[Resource[Connection], Resource[DataModel], Resource[Pipeline]]:
    workspace = client.workspace_id
    return (
        Resource(
            "connection", registry.connection.id, reads.connection,
            lambda secret: desired_connection(registry, workspace, secret), CONNECTION_FIELDS,
            client.create_connection, client.update_connection,
        ),
        Resource(
            "data model", spec.resolved_data_model_id, reads.data_model,
            lambda _secret: desired_data_model(spec, workspace), DATA_MODEL_FIELDS,
            client.create_data_model, client.update_data_model,
        ),
        Resource(
            "pipeline", spec.resolved_pipeline_id, reads.pipeline,
            lambda secret: desired_pipeline(spec, registry, workspace, secret), PIPELINE_FIELDS,
            client.create_pipeline, client.update_pipeline,
        ),
    )  # fmt: skip


def _refusals(
    reads: Reads,
    registry: Registry,
    spec: SyncSpec,
    plan: ResourcePlan[Pipeline],
    now: datetime,
) -> tuple[str, ...]:
    """What mParticle would refuse of this pipeline write (checked only when it would be made)."""
    if plan.change.action in ("unchanged", "fault cleared") or not spec.active:
        return ()
    actual = plan.actual
    becomes_active = actual is None or not actual.is_active or actual.is_draft
    found: list[str] = []
    for check, needed in (
        (lambda: check_catch_up(spec, now), actual is None or becomes_active
         or actual.schedule_start_time != spec.schedule.start),
        (lambda: check_active_limit(reads.client, spec, registry.limits, reads), becomes_active),
    ):  # fmt: skip
        if needed:
            try:
                check()
            except ReconcileError as refused:
                found.append(str(refused))
    return tuple(found)


def plan_sync(
    client: WarehouseSyncClient,
    registry: Registry,
    spec: SyncSpec,
    now: datetime,
    reads: Reads | None = None,
) -> SyncPlan:
    """Read the connection, data model and pipeline of ``spec`` and decide what to write; writes
    nothing and reads no secret (three GETs, plus a pipeline listing when a pipeline would become
    active). ``reads``: reads shared by the plans of several syncs (see :class:`Reads`)."""
    reads = reads or Reads(client)
    connection, model, pipeline = (
        ResourcePlan.read(r) for r in _resources(client, registry, spec, reads)
    )
    pipeline = _clearing_fault(_holding_rotation(pipeline, spec))
    refusals = _refusals(reads, registry, spec, pipeline, now)
    return SyncPlan(spec, connection, model, pipeline, refusals)


def apply_plan(plan: SyncPlan) -> Reconciled:
    """Make the writes ``plan`` decided. A refusal, or a secret a write needs that is not set,
    raises :class:`ReconcileError` before the first write: mParticle is left exactly as it was."""
    if plan.refusals:
        raise ReconcileError("\n".join(plan.refusals))
    # Every secret a write needs is read before the first write.
    desired = (plan.connection.desired(), plan.model.desired(), plan.pipeline.desired())
    _, connection_change = plan.connection.apply(desired[0])
    _, model_change = plan.model.apply(desired[1])
    result, pipeline_change = plan.pipeline.apply(desired[2])
    return Reconciled(result, (connection_change, model_change, pipeline_change))


def reconcile(
    client: WarehouseSyncClient, registry: Registry, spec: SyncSpec, now: datetime
) -> Reconciled:
    """Bring the connection, data model and pipeline of ``spec`` in line with the registry.

    Plan, then apply (:func:`plan_sync`, :func:`apply_plan`): reads all three first, checks every
    write mParticle would refuse and resolves every secret the writes need, and only then writes: a
    refusal leaves mParticle exactly as it was. The ``plan`` command runs the same
    :func:`plan_sync`, so what it shows is what a materialization does.
    """
    return apply_plan(plan_sync(client, registry, spec, now))
