"""Materialize sync assets in-process, a partition range in one run.

Shared by the demo, the Dagster-tier tests and the benchmarks: :func:`materialize_partitions` runs
one Dagster run over the given partition keys: one key as a plain partitioned run, several as a
single-run backfill (the ``dagster/asset_partition_range_*`` tags that Dagster's backfill daemon sets
for assets with ``BackfillPolicy.single_run()``). :func:`run_job` does the same as a run of a named
job of a code location (the demo's runs, which the UI can re-execute); creating a run with its
code location's origin has no public API, so it uses Dagster's internal run creation. The emulator's manual-clock resource is
:func:`wsync_dagster.local.resources.emulator_clock_mparticle`.
"""

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from wsync_dagster.compat import (
    ExecutionResult,
    InMemoryJob,
    LoadableTargetOrigin,
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
    execute_run,
)
from wsync_dagster.sync.assets.metadata import RunTags

# The name Dagster gives the repository of a module's Definitions.
SINGLETON_REPOSITORY = "__repository__"


def partition_range_tags(partition_keys: Sequence[str]) -> dict[str, str]:
    """Run tags that make one run cover ``partition_keys`` (oldest first); none for a single key."""
    if len(partition_keys) < 2:
        return {}
    return {RunTags.RANGE_START: partition_keys[0], RunTags.RANGE_END: partition_keys[-1]}


def materialize_partitions(
    assets: Sequence[dg.AssetsDefinition],
    partition_keys: Sequence[str] = (),
    *,
    resources: Mapping[str, object] | None = None,
    instance: dg.DagsterInstance | None = None,
    run_config: Any = None,
    tags: Mapping[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """One Dagster run of ``assets`` over ``partition_keys`` (none: an unpartitioned run), with
    run ``tags`` beside the partition range's (e.g. ``wsync/resend``)."""
    return dg.materialize(
        assets,
        resources=resources,
        run_config=run_config,
        partition_key=partition_keys[0] if len(partition_keys) == 1 else None,
        tags={**partition_range_tags(partition_keys), **(tags or {})},
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def job_origin(location_name: str, job_name: str, working_directory: str) -> RemoteJobOrigin:
    """Where the UI finds ``job_name``: the code location ``location_name`` as ``dg dev -m
    <module>`` names it (the module), in its single repository."""
    code_location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=location_name,
            working_directory=working_directory,
        ),
        location_name=location_name,
    )
    return RemoteRepositoryOrigin(code_location, SINGLETON_REPOSITORY).get_job_origin(job_name)


def run_job(
    job: dg.JobDefinition,
    asset_key: dg.AssetKey,
    partition_keys: Sequence[str],
    *,
    instance: dg.DagsterInstance,
    origin: RemoteJobOrigin,
    run_config: Any = None,
) -> ExecutionResult:
    """One run of the named ``job`` for ``asset_key`` over ``partition_keys``, in this process.

    Unlike :func:`materialize_partitions` (an ephemeral job), the run belongs to ``job`` in the code
    location ``origin`` names, so the UI lists it under that job and can re-execute it.
    """
    # The code location's jobs run their steps in the run's own process (in_process_executor), which
    # is what running a job from memory needs.
    subset = job.get_subset(asset_selection={asset_key})
    tags: dict[str, str] = partition_range_tags(partition_keys)
    if len(partition_keys) == 1:
        tags = {RunTags.PARTITION: partition_keys[0]}
    run = instance.create_run_for_job(
        job_def=subset,
        run_config=run_config,
        tags=tags,
        asset_selection=frozenset({asset_key}),
        remote_job_origin=origin,
    )
    return execute_run(InMemoryJob(subset), run, instance)
