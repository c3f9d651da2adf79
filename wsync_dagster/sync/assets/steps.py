"""The steps every sync materialization shares: its context, pre-flight and reconcile.

Each step turns what can go wrong into a :class:`dagster.Failure` whose text says what to fix.
"""

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource

from wsync_dagster.mparticle import WarehouseSyncClient, WarehouseSyncError
from wsync_dagster.resources import MParticleResource
from wsync_dagster.sync.engine.context import EngineContext, SyncFailure, first_line
from wsync_dagster.sync.engine.preflight import PreflightError, PreflightReport, run_preflight
from wsync_dagster.sync.engine.reconcile import Reconciled, ReconcileError, reconcile
from wsync_dagster.sync.engine.runs import WaitSettings
from wsync_dagster.sync.registry.cadences import CadenceName
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster.sync.registry.windows import Window
from wsync_dagster.sync.registry.workspace import Workspace

__all__ = ["SyncContext", "as_failure", "fail", "first_line", "preflight", "reconcile_sync"]


@dataclass(frozen=True)
class SyncContext:
    """What one materialization works with."""

    registry: Registry
    spec: SyncSpec
    snowflake: SnowflakeResource
    mparticle: MParticleResource
    log: Any
    workspace: Workspace

    def engine(self) -> EngineContext:
        """The engine's view of this materialization (no Dagster)."""
        return EngineContext(
            self.registry, self.spec, self.wait_settings(), self.log, self.mparticle.now,
            self.workspace,
        )  # fmt: skip

    def wait_settings(self) -> WaitSettings:
        m = self.mparticle
        return WaitSettings(
            timeout=m.run_timeout_seconds,
            poll_interval=m.poll_interval_seconds,
            max_poll_interval=m.max_poll_interval_seconds,
            sleep=m.sleep,
            clock=m.monotonic,
            backfill_max_poll_interval=m.backfill_max_poll_interval_seconds,
        )


def fail(message: str, **metadata: Any) -> dg.Failure:
    """A Failure that retrying would not fix: the message says what to change."""
    return dg.Failure(description=message, metadata=metadata, allow_retries=False)


@contextlib.contextmanager
def as_failure() -> Iterator[None]:
    """The engine's :class:`SyncFailure` as the Dagster Failure it stands for."""
    try:
        yield
    except SyncFailure as error:
        raise fail(error.message, **error.metadata) from error


@contextlib.contextmanager
def snowflake_cursor(ctx: SyncContext) -> Iterator[Any]:
    """A cursor on Dagster's Snowflake connection; failing to connect is a clear Failure."""
    stack = contextlib.ExitStack()
    try:
        connection = stack.enter_context(ctx.snowflake.get_connection())
    except Exception as error:
        raise fail(
            f"Could not connect to Snowflake for the pre-flight of sync '{ctx.spec.name}' "
            f"({first_line(error)}). Check the Snowflake settings "
            "(SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PASSWORD) and that the account is "
            "reachable. Nothing was sent to mParticle."
        ) from error
    with stack:
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


def preflight(
    ctx: SyncContext,
    windows: Sequence[Window],
    kind: CadenceName | None = None,
    label: str = "Pre-flight",
    recount: Sequence[Window] = (),
) -> PreflightReport:
    """Pre-flight ``windows`` in Snowflake and log what it found; a refusal is a Failure.

    ``recount``: earlier windows counted in the same query, for the late_rows check."""
    with snowflake_cursor(ctx) as cursor:
        try:
            report = run_preflight(
                cursor,
                ctx.spec,
                windows,
                limit_kind=kind,
                limits=ctx.registry.limits,
                recount=recount,
            )
        except PreflightError as error:
            raise fail(str(error)) from error
    total = sum(c.rows for c in report.counts)
    recounted = (
        f", {len(report.recounts)} earlier window(s) recounted for late rows"
        if report.recounts
        else ""
    )
    ctx.log.info(
        f"{label} of {len(windows)} window(s): {total:,} rows, limit {report.limit:,} per "
        f"window, {len(report.columns)} columns, identities {', '.join(report.identity_columns)}"
        f"{recounted} ({report.queries} queries, {report.seconds:.2f} s)"
    )
    return report


def reconcile_sync(ctx: SyncContext, client: WarehouseSyncClient) -> Reconciled:
    """Create or update the sync's connection, data model and pipeline; log each change."""
    try:
        result = reconcile(client, ctx.registry, ctx.spec, ctx.mparticle.now())
    except ReconcileError as error:
        raise fail(str(error)) from error
    except WarehouseSyncError as error:
        raise fail(
            f"Setting up sync '{ctx.spec.name}' in mParticle failed: {str(error).rstrip('.')}. "
            "Fix what the error names (the registry entry, the connection settings, the mParticle "
            "credentials or their reachability), then materialize again."
        ) from error
    for change in result.changes:
        ctx.log.info(f"Reconcile: {change.describe()}")
    return result
