"""Dagster's private API (``dagster._…``), imported in this one module, each use explained.

Dagster 1.13 has no public API for what is below. Everything else imports it from here, so an
upgrade of the pinned Dagster pair has one file to check (``wsync_dagster_tests/test_import_rules.py``
keeps ``dagster._`` imports out of every other module).

Creating and executing a run of a *named job of a code location* (``wsync_dagster/local/
materialize.py``: the demo's runs, listed under their jobs in the UI, which can re-execute them):

- ``RemoteJobOrigin`` and the origins it is built from say where the UI finds the job: the code
  location ``dg dev -m <module>`` serves. ``DagsterInstance.create_run_for_job`` takes one, but no
  public function builds it.
- ``execute_run`` executes a run that already exists in an instance (created by the demo's own
  process, executed by a run worker process); the public ``materialize``/``execute_job`` always
  create their own run. It takes an ``IJob``: ``InMemoryJob`` wraps a job definition the worker
  loaded from the code location module. ``ExecutionResult`` is what it returns.
"""

from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run
from dagster._core.execution.execution_result import ExecutionResult
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

__all__ = [
    "ExecutionResult",
    "InMemoryJob",
    "LoadableTargetOrigin",
    "ManagedGrpcPythonEnvCodeLocationOrigin",
    "RemoteJobOrigin",
    "RemoteRepositoryOrigin",
    "execute_run",
]
