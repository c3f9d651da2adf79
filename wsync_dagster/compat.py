"""Every use of Dagster's private API (``dagster._...``), in one place, each with why it is needed.

Dagster may move or change anything under ``dagster._`` in any release. Keeping those imports here
means an upgrade breaks one module, loudly: ``wsync_dagster_tests/test_compat.py`` imports this module
and exercises each name, and ``wsync_dagster_tests/test_import_rules.py`` fails when a ``dagster._``
import appears anywhere else in the package. Upgrading Dagster means: bump the pins in
pyproject.toml, run those tests, fix this module, and update :data:`VERIFIED_WITH`.
"""

import itertools
from datetime import datetime

import dagster as dg

# The embedded default's demo runs each sync through its named job *as a run of the local code
# location* (wsync_dagster/local/materialize.py: listed under that job in the UI, which can
# re-execute it). ``RemoteJobOrigin`` and the origins it is built from say where the UI finds the
# job; ``instance.create_run_for_job`` takes one, but no public function builds it. ``execute_run``
# executes a run that already exists in an instance (created by the demo's process, executed by a
# run worker process); the public ``materialize``/``execute_job`` always create their own run. It
# takes an ``IJob``: ``InMemoryJob`` wraps the job definition the worker loaded.
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run

# The runs sensor waits for unfinished backfills before recording their partitions (a backfill
# counts a partition as done only when one of its own runs reports it). Dagster 1.13 exposes
# ``DagsterInstance.get_backfills(filters=...)`` publicly, but not the filter and status types it takes.
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill
from dagster._core.execution.execution_result import ExecutionResult
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)

# Tests read a partitioned check's execution records to prove no synced partition is left "planned"
# (a check result Dagster expected and never got); the record status enum is not exported.
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

# Tests check that none leaves Dagster's current definitions-state storage set: a schedule or sensor
# context built without ``with`` enters a second instance that is only exited when the context is
# garbage-collected, which then puts back the storage of an instance already gone, and every later
# Definitions load in the process fails ("Attempted to resolve undefined DagsterInstance weakref").
from dagster._core.storage.defs_state.base import DefsStateStorage
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

# Tests check that every cron the registry reads (wsync_dagster/sync/registry/cron.py, which may not
# import Dagster) is one Dagster's schedules accept, ticking at the same instants. Dagster exports
# neither its cron check nor its tick iterator.
from dagster._utils.schedules import cron_string_iterator, is_valid_cron_string

# The Dagster release these names were checked against (the pin in pyproject.toml).
VERIFIED_WITH = "1.13.27"

__all__ = [
    "VERIFIED_WITH",
    "AssetCheckExecutionRecordStatus",
    "BulkActionStatus",
    "BulkActionsFilter",
    "DefsStateStorage",
    "ExecutionResult",
    "InMemoryJob",
    "LoadableTargetOrigin",
    "ManagedGrpcPythonEnvCodeLocationOrigin",
    "PartitionBackfill",
    "RemoteJobOrigin",
    "RemoteRepositoryOrigin",
    "cron_string_iterator",
    "cron_ticks",
    "current_defs_state_storage",
    "execute_run",
    "is_valid_cron_string",
    "requested_backfills",
]


def current_defs_state_storage() -> object | None:
    """The definitions-state storage Dagster would use for a load in this context (None: none)."""
    return DefsStateStorage.get()


def requested_backfills(instance: dg.DagsterInstance, limit: int) -> list[PartitionBackfill]:
    """The backfills not yet finished (status REQUESTED), newest first, at most ``limit``."""
    return list(
        instance.get_backfills(
            filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]), limit=limit
        )
    )


def cron_ticks(cron: str, after: datetime, count: int) -> list[datetime]:
    """The first ``count`` ticks of ``cron`` (UTC) strictly after ``after``, as Dagster's schedules
    tick."""
    ticks = cron_string_iterator(after.timestamp(), cron, "UTC")
    return list(itertools.islice((t for t in ticks if t > after), count))
