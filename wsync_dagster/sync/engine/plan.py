"""The read-only plan of a code location's syncs: what materializing each one would change in
mParticle, and what its pre-flight would say. No Dagster here.

It runs the code a materialization runs, never a copy: :func:`~.reconcile.plan_sync` decides each
resource's action, drift and refusals (catch-up, active slots), :func:`~.pending.pending_windows`
and :func:`~.pending.single_window` choose the windows, and :func:`~.preflight.run_preflight`
counts and judges them with the messages a materialization gives. Nothing is written to mParticle
or to Snowflake and no secret is read: a secret is only checked to be set.

Cost: one token and one listing each of connections, data models and pipelines, whatever the
number of syncs (:class:`~.reads.Reads` with ``listed=True``); then per sync one run listing (when
its pipeline exists) and two Snowflake queries (the column discovery and one grouped count of every
window, up to :data:`MAX_WINDOWS`); ``benchmarks/plan_bench.py`` measures it.

The exit code follows terraform's ``-detailed-exitcode``: 0 nothing to change and no problem, 2
changes pending and no problem, 1 a problem (a check failed, mParticle or the pre-flight would
refuse a materialization). Windows waiting to sync are not changes.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from wsync_dagster.mparticle import Pipeline, WarehouseSyncClient, WarehouseSyncError
from wsync_dagster.sync.engine.context import first_line
from wsync_dagster.sync.engine.guards import future_start_problem
from wsync_dagster.sync.engine.pending import Pending, pending_windows
from wsync_dagster.sync.engine.preflight import (
    WINDOWS_PER_QUERY,
    PreflightError,
    PreflightReport,
    run_preflight,
)
from wsync_dagster.sync.engine.reads import Reads
from wsync_dagster.sync.engine.reconcile import Drift, ResourcePlan, SyncPlan, plan_sync
from wsync_dagster.sync.engine.repair import MARK as REPAIR_MARK
from wsync_dagster.sync.engine.resend import MARK as RESEND_MARK
from wsync_dagster.sync.registry.windows import WindowCount
from wsync_dagster.sync.registry.workspace import BoundSync, Workspace

# Windows one sync's pre-flight counts: one grouped count query holds this many.
MAX_WINDOWS = WINDOWS_PER_QUERY
# One-off pipelines this project makes for a declared sync: ``<pipeline id><mark><window>...``
# (a repair, sync/engine/repair.py; a re-send of a window). They take slots while active.
ONE_OFF_MARKS = (REPAIR_MARK, RESEND_MARK)

PlanAction = Literal["create", "update", "unchanged"]
_ACTIONS: dict[str, PlanAction] = {
    "created": "create",
    "updated": "update",
    "fault cleared": "update",  # a PUT clears the fault (see reconcile._clearing_fault)
    "unchanged": "unchanged",
}
# Which secret each kind of resource sends when it is written, and the registry field naming it.
_SECRETS = {
    "connection": ("password", "password_env"),
    "pipeline": ("partner_feed_key", "feed_key_env"),
}


class ConnectionSource(Protocol):
    """What the plan needs of Snowflake: Dagster's ``SnowflakeResource`` (or the object Dagster
    sets up for it) fits."""

    def get_connection(self) -> contextlib.AbstractContextManager[Any]: ...


@dataclass(frozen=True)
class Check:
    """One thing the plan needed and checked: a credential, a login, a setting."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SecretUse:
    """A secret a write would send: the field, and the environment variable it is read from."""

    field: str
    variable: str


@dataclass(frozen=True)
class ResourceChange:
    """What a materialization would do to one resource."""

    kind: str
    id: str
    action: PlanAction
    drift: tuple[Drift, ...] = ()
    secrets: tuple[SecretUse, ...] = ()
    note: str = ""

    @staticmethod
    def of(plan: ResourcePlan[Any], bound: BoundSync) -> "ResourceChange":
        change = plan.change
        action = _ACTIONS[change.action]
        secrets: tuple[SecretUse, ...] = ()
        if action != "unchanged" and change.kind in _SECRETS:
            sent, named_by = _SECRETS[change.kind]
            holder = bound.registry.connection if change.kind == "connection" else bound.spec
            secrets = (SecretUse(sent, getattr(holder, named_by)),)
        note = change.note.lstrip("; ").strip()
        if change.action == "fault cleared":
            note = f"fault cleared {note}".strip()
        return ResourceChange(change.kind, change.id, action, plan.drift(), secrets, note)


@dataclass(frozen=True)
class PreflightOutcome:
    """What the pre-flight of a sync's next windows found (or why it did not run)."""

    pending: Pending | None
    report: PreflightReport | None = None
    refused: str | None = None
    counts: tuple[WindowCount, ...] = ()
    not_run: str | None = None

    @property
    def all_counts(self) -> tuple[WindowCount, ...]:
        return self.report.counts if self.report is not None else self.counts


@dataclass(frozen=True)
class SyncOutcome:
    """The plan of one sync: its resources, its pre-flight, and what would be refused."""

    bound: BoundSync
    where: str
    resources: tuple[ResourceChange, ...]
    preflight: PreflightOutcome
    refusals: tuple[str, ...] = ()
    error: str | None = None

    @property
    def name(self) -> str:
        return self.bound.name

    @property
    def changes(self) -> bool:
        return any(r.action != "unchanged" for r in self.resources)

    @property
    def problems(self) -> tuple[str, ...]:
        found = [*self.refusals]
        if self.error:
            found.append(self.error)
        if self.preflight.refused:
            found.append(self.preflight.refused)
        if self.preflight.not_run:
            found.append(self.preflight.not_run)
        return tuple(found)


@dataclass(frozen=True)
class OtherPipeline:
    """A pipeline of the workspace that no registry declares."""

    id: str
    name: str
    active: bool
    one_off_of: str | None = None
    """The declared sync whose one-off (repair, re-send) pipeline this is."""


@dataclass(frozen=True)
class Slots:
    """mParticle's active pipelines now, and once every sync of the plan is materialized."""

    limit: int
    owner: str
    now: tuple[str, ...]
    after: tuple[str, ...]
    problem: str | None = None


@dataclass(frozen=True)
class WorkspacePlan:
    """The plan of the selected syncs of a code location."""

    now: datetime | None
    workspace_id: int | None
    checks: tuple[Check, ...]
    syncs: tuple[SyncOutcome, ...]
    unmanaged: tuple[OtherPipeline, ...] = ()
    slots: Slots | None = None
    problems: tuple[str, ...] = field(default=())
    """Problems that are not one sync's: a failed check, the active-pipeline limit."""

    @property
    def all_problems(self) -> tuple[str, ...]:
        return (*self.problems, *(p for s in self.syncs for p in s.problems))

    @property
    def changes(self) -> bool:
        return any(s.changes for s in self.syncs)

    @property
    def exit_code(self) -> int:
        """terraform's ``-detailed-exitcode``: 1 a problem, 2 changes pending, 0 nothing to do."""
        if self.all_problems:
            return 1
        return 2 if self.changes else 0


def failed_checks_problems(checks: Sequence[Check]) -> tuple[str, ...]:
    return tuple(f"{c.name}: {c.detail}" for c in checks if not c.ok)


def one_off_owner(pipeline_id: str, declared: Sequence[str]) -> str | None:
    """The declared pipeline whose one-off (repair, re-send) ``pipeline_id`` is, if any."""
    for own in sorted(declared, key=len, reverse=True):
        if any(pipeline_id.startswith(own + mark) for mark in ONE_OFF_MARKS):
            return own
    return None


def other_pipelines(
    pipelines: Sequence[Pipeline], workspace: Workspace, reads: Reads
) -> tuple[OtherPipeline, ...]:
    """The pipelines of ``pipelines`` that no registry of ``workspace`` declares."""
    declared = {b.pipeline_id: b.name for b in workspace}
    found = []
    for pipeline in sorted(pipelines, key=lambda p: p.id):
        if pipeline.id in declared:
            continue
        owner = one_off_owner(pipeline.id, list(declared))
        found.append(
            OtherPipeline(
                pipeline.id,
                pipeline.name,
                reads.counts_as_active(pipeline),
                declared[owner] if owner else None,
            )
        )
    return tuple(found)


def active_slots(workspace: Workspace, reads: Reads) -> Slots:
    """Active pipelines now and after every declared sync is materialized, over the whole
    workspace (its own pipelines and those no registry declares)."""
    limits = workspace.limits
    now = tuple(reads.active_ids())
    declared = {b.pipeline_id: b.spec for b in workspace}
    after = sorted(
        {p for p in now if p not in declared or declared[p].rotate}
        | {pid for pid, spec in declared.items() if spec.active}
    )
    problem = None
    joining = [p for p in after if p not in now]
    if len(after) > limits.max_active_pipelines and joining:
        names = ", ".join(f"'{declared[p].name}'" for p in joining)
        problem = (
            f"once every sync is materialized, {len(after)} pipelines would be active "
            f"({', '.join(after)}), but {limits.active_owner()} allows "
            f"{limits.max_active_pipelines}: the materializations that activate {names} would be "
            "refused once the limit is reached. Pause a pipeline no registry declares, or set "
            "paused: true (or rotate: true on an on_demand sync) in the registry."
        )
    return Slots(limits.max_active_pipelines, limits.active_owner(), now, tuple(after), problem)


@dataclass
class _Session:
    """What planning the syncs shares: the client, its reads, the Snowflake connection, now."""

    client: WarehouseSyncClient
    reads: Reads
    connection: Any | None
    now: datetime
    max_windows: int
    snowflake_problem: str | None = None


def _windows(session: _Session, bound: BoundSync, exists: bool) -> PreflightOutcome:
    """The windows to pre-flight (mParticle's side: a run listing), or why none can be."""
    spec = bound.spec
    if problem := future_start_problem(spec, session.now):
        return PreflightOutcome(None, refused=problem)
    pipeline_ids = {p.id for p in session.reads.pipelines()}
    try:
        pending = pending_windows(
            session.client, spec, session.now, exists=exists, cap=session.max_windows,
            pipeline_ids=pipeline_ids,
        )  # fmt: skip
    except WarehouseSyncError as error:
        return PreflightOutcome(
            None,
            not_run=f"pre-flight of sync '{spec.name}' not run: reading its runs from mParticle "
            f"failed: {first_line(error)}",
        )
    if session.connection is None:
        why = session.snowflake_problem or "no Snowflake connection"
        return PreflightOutcome(pending, not_run=f"pre-flight of sync '{spec.name}' not run: {why}")
    return PreflightOutcome(pending)


def _preflight(connection: Any, bound: BoundSync, waiting: PreflightOutcome) -> PreflightOutcome:
    """Count and judge ``waiting``'s windows in Snowflake, as a materialization would."""
    if waiting.pending is None or waiting.refused or waiting.not_run:
        return waiting
    cursor = connection.cursor()
    try:
        report = run_preflight(
            cursor,
            bound.spec,
            waiting.pending.windows,
            limit_kind=bound.spec.schedule.interval,
            limits=bound.registry.limits,
        )
    except PreflightError as refused:
        return PreflightOutcome(waiting.pending, refused=str(refused), counts=refused.counts)
    finally:
        cursor.close()
    return PreflightOutcome(waiting.pending, report)


def read_one(session: _Session, bound: BoundSync, where: str) -> SyncOutcome:
    """The mParticle side of one sync's plan (its errors reading become its problem); its
    pre-flight is still to run."""
    try:
        plan: SyncPlan = plan_sync(
            session.client, bound.registry, bound.spec, session.now, session.reads
        )
    except WarehouseSyncError as error:
        message = f"sync '{bound.name}': reading it from mParticle failed: {first_line(error)}"
        return SyncOutcome(bound, where, (), PreflightOutcome(None), error=message)
    resources = tuple(ResourceChange.of(r, bound) for r in plan.resources)
    waiting = _windows(session, bound, exists=plan.pipeline.actual is not None)
    return SyncOutcome(bound, where, resources, waiting, plan.refusals)


def plan_syncs(
    session: _Session, chosen: Sequence[BoundSync], where: Mapping[str, str]
) -> tuple[SyncOutcome, ...]:
    """Every chosen sync's plan, one after the other: mParticle's side, then the pre-flight on the
    plan's one Snowflake connection."""
    planned = []
    for bound in chosen:
        outcome = read_one(session, bound, where.get(bound.name, ""))
        checked = _preflight(session.connection, bound, outcome.preflight)
        planned.append(dataclasses.replace(outcome, preflight=checked))
    return tuple(planned)


def _open_snowflake(
    stack: contextlib.ExitStack, source: ConnectionSource | None
) -> tuple[Any | None, Check]:
    """Log in to Snowflake once for every sync's pre-flight (closed with ``stack``)."""
    if source is None:
        return None, Check("Snowflake login", False, "no Snowflake settings")
    try:
        connection = stack.enter_context(source.get_connection())
    except Exception as error:  # any failure to log in: the plan reports it and goes on
        return None, Check(
            "Snowflake login",
            False,
            f"could not connect ({first_line(error)}); check SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, "
            "SNOWFLAKE_PASSWORD and that the account is reachable",
        )
    return connection, Check("Snowflake login", True, "connected")


def plan_workspace(
    client: WarehouseSyncClient,
    snowflake: ConnectionSource | None,
    workspace: Workspace,
    now: datetime | Callable[[], datetime],
    *,
    selected: Sequence[str] = (),
    where: Mapping[str, str] | None = None,
    checks: Sequence[Check] = (),
    max_windows: int = MAX_WINDOWS,
) -> WorkspacePlan:
    """Plan every sync of ``workspace`` (only the ``selected`` names, when given).

    ``now``: mParticle's current time (or a function giving it, asked once the token is there);
    ``where``: where each sync is declared (sync name -> ``file:line``); ``checks``: checks made
    before (settings, secrets), reported with the plan's own (token, workspace read, Snowflake).
    """
    checks = list(checks)
    try:
        client.authenticate()
    except WarehouseSyncError as error:
        checks.append(Check("mParticle token", False, first_line(error)))
        return WorkspacePlan(
            None, client.workspace_id, tuple(checks), (), problems=failed_checks_problems(checks)
        )
    checks.append(Check("mParticle token", True, "fetched a token for the API credential"))
    reads = Reads(client, listed=True)
    try:
        pipelines = reads.pipelines()
    except WarehouseSyncError as error:
        checks.append(Check("mParticle workspace", False, first_line(error)))
        return WorkspacePlan(
            None, client.workspace_id, tuple(checks), (), problems=failed_checks_problems(checks)
        )
    checks.append(
        Check(
            "mParticle workspace",
            True,
            f"read workspace {client.workspace_id}: {len(pipelines)} pipeline(s)",
        )
    )
    at = now() if callable(now) else now
    chosen = [b for b in workspace if not selected or b.name in selected]
    with contextlib.ExitStack() as stack:
        connection, login = _open_snowflake(stack, snowflake)
        checks.append(login)
        session = _Session(
            client,
            reads,
            connection,
            at,
            max_windows,
            None if login.ok else login.detail,
        )
        outcomes = plan_syncs(session, chosen, where or {})
    slots = active_slots(workspace, reads)
    problems = failed_checks_problems(checks)
    if slots.problem:
        problems = (*problems, slots.problem)
    return WorkspacePlan(
        at,
        client.workspace_id,
        tuple(checks),
        outcomes,
        other_pipelines(pipelines, workspace, reads),
        slots,
        problems,
    )
