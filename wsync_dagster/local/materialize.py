"""Materialize sync assets, a partition range in one run; runs of named jobs, in worker processes.

Shared by the demo, the Dagster-tier tests and the benchmarks:

- :func:`materialize_partitions` runs one Dagster run over the given partition keys: one key as a
  plain partitioned run, several as a single-run backfill (the ``dagster/asset_partition_range_*``
  tags that Dagster's backfill daemon sets for assets with ``BackfillPolicy.single_run()``).
- :func:`create_job_run` creates the same run as a run of a named job of a code location (the
  demo's runs, which the UI lists under their job and can re-execute); :func:`execute_job_run`
  executes it in this process.
- :func:`execute_in_workers` executes created runs at once (or a few at a time), each in its own
  *run worker* process (``python -m wsync_dagster.local.materialize``) on the same Dagster
  instance, as Dagster's own run launcher does: one process per run. Runs must not share a
  process: Dagster configures Python's process-wide logging at the start of each run
  (``logging.config.dictConfig``, which closes every handler of the process, another run's
  included), and two runs started from threads of one process deadlock on those locks while they
  write to the instance. SQLite storage serves several processes (file locks); see docs/local.md.
- :func:`run_outcome` reads what a run did back from the instance, wherever it ran.

Creating and executing a run with its code location's origin has no public API; the private
pieces come from :mod:`wsync_dagster.compat`. The emulator's manual-clock resource is
:func:`wsync_dagster.local.resources.emulator_clock_mparticle`.
"""

import argparse
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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
from wsync_dagster.emulator.lifecycle import EXIT_WITH_PARENT_FLAG
from wsync_dagster.sync.assets.metadata import RunTags

# The name Dagster gives the repository of a module's Definitions.
SINGLETON_REPOSITORY = "__repository__"
RUN_WORKER_MODULE = "wsync_dagster.local.materialize"
# How long stopped run workers get to record their run as failed before they are killed.
WORKER_STOP_SECONDS = 30.0
# How often a full set of workers is checked for one that ended (the next run then starts).
WORKER_POLL_SECONDS = 0.1
# A held worker (WAIT_FOR_GO_FLAG) executes its run once this arrives on its stdin.
WAIT_FOR_GO_FLAG = "--wait-for-go"
GO = b"g"


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
    run ``tags`` beside the partition range's (e.g. ``wsync/resend``).

    Without an ``instance``, the run gets an ephemeral one, disposed before returning (the result
    keeps the run's events): left to the garbage collector, its in-memory SQLite connection would be
    closed in whatever thread collects it, which SQLite refuses when the run ran in another thread.
    """
    if instance is None:
        with dg.DagsterInstance.ephemeral() as owned:
            return materialize_partitions(
                assets, partition_keys, resources=resources, instance=owned,
                run_config=run_config, tags=tags,
            )  # fmt: skip
    return dg.materialize(
        assets,
        resources=resources,
        run_config=run_config,
        partition_key=partition_keys[0] if len(partition_keys) == 1 else None,
        tags={**partition_range_tags(partition_keys), **(tags or {})},
        instance=instance,
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


def create_job_run(
    job: dg.JobDefinition,
    asset_key: dg.AssetKey,
    partition_keys: Sequence[str],
    *,
    instance: dg.DagsterInstance,
    origin: RemoteJobOrigin,
    run_config: Any = None,
) -> dg.DagsterRun:
    """A run (not started) of the named ``job`` for ``asset_key`` over ``partition_keys``.

    Unlike :func:`materialize_partitions` (an ephemeral job), the run belongs to ``job`` in the code
    location ``origin`` names, so the UI lists it under that job and can re-execute it. The UI lists
    it at once, as "not started", until a process executes it.
    """
    tags: dict[str, str] = partition_range_tags(partition_keys)
    if len(partition_keys) == 1:
        tags = {RunTags.PARTITION: partition_keys[0]}
    return instance.create_run_for_job(
        job_def=job.get_subset(asset_selection={asset_key}),
        run_config=run_config,
        tags=tags,
        asset_selection=frozenset({asset_key}),
        remote_job_origin=origin,
    )


def execute_job_run(
    job: dg.JobDefinition, run: dg.DagsterRun, instance: dg.DagsterInstance
) -> ExecutionResult:
    """Execute ``run`` (created by :func:`create_job_run` for ``job``) in this process.

    The code location's jobs run their steps in the run's own process (in_process_executor), which
    is what running a job from memory needs. Only one run at a time per process (module doc).
    """
    return execute_run(InMemoryJob(job), run, instance)


@dataclass(frozen=True)
class RunOutcome:
    """What a run did, read back from the instance that recorded it."""

    run_id: str
    job_name: str
    status: dg.DagsterRunStatus
    materializations: tuple[dg.AssetMaterialization, ...]
    failure: str | None
    """The first failed step's own message (its ``Failure``), or why the run failed without one."""

    @property
    def success(self) -> bool:
        return self.status is dg.DagsterRunStatus.SUCCESS


def _step_failure(instance: dg.DagsterInstance, run_id: str) -> str | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        if event is None or event.step_failure_data is None:
            continue
        error = event.step_failure_data.error
        if error is not None:
            while error.cause is not None and "Failure" not in (error.cls_name or ""):
                error = error.cause
            # Dagster writes "<module>.<class>: <message>"; the message is what the user needs.
            text = error.message.strip()
            qualified, separator, message = text.partition(": ")
            if separator and qualified.rsplit(".", 1)[-1] == error.cls_name:
                return message
            return text
    return None


def _run_failure(instance: dg.DagsterInstance, run_id: str) -> str | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
        if entry.dagster_event is not None and entry.dagster_event.message:
            return entry.dagster_event.message.strip()
    return None


def run_outcome(instance: dg.DagsterInstance, run_id: str) -> RunOutcome:
    """The run's status, its materializations and, when it failed, why."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise KeyError(f"no run {run_id} in the Dagster instance at {instance.root_directory}")
    materializations = tuple(
        entry.asset_materialization
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if entry.asset_materialization is not None
    )
    failure = None
    if run.status is not dg.DagsterRunStatus.SUCCESS:
        failure = (
            _step_failure(instance, run_id)
            or _run_failure(instance, run_id)
            or f"the run ended {run.status.value} (see the Dagster UI: python3 dev.py ui)"
        )
    return RunOutcome(run_id, run.job_name, run.status, materializations, failure)


def run_worker_argv(
    location_module: str, dagster_home: Path, run_id: str, wait_for_go: bool = False
) -> list[str]:
    """The command of a run worker: execute ``run_id`` of ``dagster_home``'s instance, loading its
    job from the code location module ``location_module`` (its ``defs``). ``wait_for_go``: load,
    then wait for :data:`GO` on stdin before executing."""
    return [
        sys.executable, "-m", RUN_WORKER_MODULE,
        "--location", location_module,
        "--dagster-home", str(dagster_home),
        run_id, EXIT_WITH_PARENT_FLAG,
        *([WAIT_FOR_GO_FLAG] if wait_for_go else []),
    ]  # fmt: skip


def execute_in_workers(
    runs: Sequence[dg.DagsterRun],
    *,
    instance: dg.DagsterInstance,
    dagster_home: Path,
    location_module: str,
    environment: Mapping[str, str],
    at_once: int | None = None,
) -> None:
    """Execute ``runs``, each in its own run worker process, and wait until all ended.

    At most ``at_once`` runs execute together (all of them when it is ``None``): the next starts
    when one ends, in the order given, as a Dagster pool with that limit would let them. Every
    worker is started at once all the same, and those beyond ``at_once`` load the code location
    (most of a worker's start) and then wait for :data:`GO` on stdin, so a run that is let go starts
    at once. The workers inherit this process's stdout and stderr (their run logs interleave, each line naming
    its run) and see ``environment`` on top of this process's. A worker that ends without ending
    its run (killed, or it could not load the code location) has its run marked failed with the
    reason, so no run is left "started" for ever. If this process is interrupted, the workers are
    stopped (their runs fail, saying so) before the interruption goes on.
    """
    env = {**os.environ, **environment, "DAGSTER_HOME": str(dagster_home)}
    limit = len(runs) if at_once is None else max(at_once, 1)
    hold = limit < len(runs)
    workers: list[tuple[dg.DagsterRun, subprocess.Popen[bytes]]] = []
    try:
        for run in runs:
            argv = run_worker_argv(location_module, dagster_home, run.run_id, wait_for_go=hold)
            # stdin: a pipe written at most GO; it closes when this process dies, however it dies,
            # and the worker then interrupts its run (EXIT_WITH_PARENT_FLAG).
            workers.append((run, subprocess.Popen(argv, env=env, stdin=subprocess.PIPE)))
        held = [process for _, process in workers] if hold else []
        going = [] if hold else [process for _, process in workers]
        while True:
            while held and sum(process.poll() is None for process in going) < limit:
                going.append(_let_go(held.pop(0)))
            live = [process for process in going if process.poll() is None]
            if not live:
                break
            _wait_for_one(live)
    finally:
        _stop([process for _, process in workers])
        for run, process in workers:
            _fail_if_unfinished(instance, run, process.returncode)


def _let_go(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Tell a held worker to execute its run (one that already exited has nothing to hear)."""
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        process.stdin.write(GO)
        process.stdin.flush()
    return process


def _wait_for_one(live: Sequence[subprocess.Popen[bytes]]) -> None:
    """Return once one of ``live`` has ended (at once when none is left)."""
    while live and all(process.poll() is None for process in live):
        with contextlib.suppress(subprocess.TimeoutExpired):
            live[0].wait(timeout=WORKER_POLL_SECONDS)


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    live = [p for p in processes if p.poll() is None]
    for process in live:
        process.terminate()  # the worker turns SIGTERM into an interruption of its run
    for process in live:
        try:
            process.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for process in processes:
        if process.stdin is not None:
            process.stdin.close()


def _fail_if_unfinished(
    instance: dg.DagsterInstance, run: dg.DagsterRun, returncode: int | None
) -> None:
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.is_finished:
        return
    instance.report_run_failed(
        current,
        message=(
            f"The run worker process ({RUN_WORKER_MODULE}) exited with code {returncode} before "
            "the run ended; its output is in the terminal that started it."
        ),
    )


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _interrupt_when_parent_exits() -> None:
    """Interrupt the run once stdin (a pipe the parent never writes) reaches end-of-file.

    Reads the raw file descriptor: a thread blocked in ``sys.stdin.buffer.read`` holds the buffer's
    lock, and the interpreter aborts at exit when it cannot take it ("could not acquire lock for
    <stdin> at interpreter shutdown"). The SIGINT goes to the main thread itself, so that a wait
    there (a poll's sleep, a socket read) is interrupted at once.
    """
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def watch() -> None:
        while os.read(0, 4096):
            pass
        signal.pthread_kill(main_thread, signal.SIGINT)

    threading.Thread(target=watch, name="interrupt-with-parent", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """The run worker: execute one created run, then exit 0 if it succeeded, 1 if not."""
    parser = argparse.ArgumentParser(prog=f"python -m {RUN_WORKER_MODULE}")
    parser.add_argument("run_id")
    parser.add_argument("--location", required=True, help="code location module (its `defs`)")
    parser.add_argument("--dagster-home", required=True, type=Path)
    parser.add_argument(EXIT_WITH_PARENT_FLAG, action="store_true", dest="exit_with_parent")
    parser.add_argument(WAIT_FOR_GO_FLAG, action="store_true", dest="wait_for_go")
    args = parser.parse_args(argv)
    # Stopped or orphaned, the run ends as an interrupted (failed) run instead of staying "started".
    signal.signal(signal.SIGTERM, _interrupt)
    if args.exit_with_parent and not args.wait_for_go:
        _interrupt_when_parent_exits()
    instance = dg.DagsterInstance.from_config(str(args.dagster_home))
    run = instance.get_run_by_id(args.run_id)
    if run is None:
        parser.error(f"no run {args.run_id} in the Dagster instance at {args.dagster_home}")
    defs = getattr(importlib.import_module(args.location), "defs", None)
    if not isinstance(defs, dg.Definitions):
        parser.error(f"{args.location} has no Definitions named `defs`")
    job = defs.resolve_job_def(run.job_name)
    if args.wait_for_go:
        try:
            if not os.read(0, len(GO)):
                return 1  # the parent is gone (or stopped everything) before letting this run go
        except KeyboardInterrupt:  # stopped while held: the run never started
            return 1
        if args.exit_with_parent:
            _interrupt_when_parent_exits()
    result = execute_job_run(job, run, instance)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
