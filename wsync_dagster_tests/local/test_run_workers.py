"""Runs executed by run worker processes (``local/materialize.py: execute_in_workers``), at once or
a few at a time, on one SQLite-backed Dagster instance: outcomes read back from it, and no run left
"started"."""

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from wsync_dagster.local import materialize
from wsync_dagster.local.materialize import (
    create_job_run,
    execute_in_workers,
    job_origin,
    run_outcome,
)
from wsync_dagster_tests.local import worker_defs

LOCATION = worker_defs.__name__
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def instance(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def _runs(instance: dg.DagsterInstance, *names: str) -> list[dg.DagsterRun]:
    job = worker_defs.defs.resolve_job_def("worker_job")
    origin = job_origin(LOCATION, "worker_job", str(ROOT))
    return [
        create_job_run(job, dg.AssetKey(name), (), instance=instance, origin=origin)
        for name in names
    ]


def _execute(
    instance: dg.DagsterInstance,
    runs: list[dg.DagsterRun],
    location: str,
    at_once: int | None = None,
) -> None:
    execute_in_workers(
        runs,
        instance=instance,
        dagster_home=Path(instance.root_directory),
        location_module=location,
        environment={"PYTHONPATH": str(ROOT)},
        at_once=at_once,
    )


def test_runs_execute_at_once_in_workers_and_report_back(instance) -> None:
    runs = _runs(instance, "ok", "fails", "ok")
    _execute(instance, runs, LOCATION)
    outcomes = [run_outcome(instance, run.run_id) for run in runs]
    assert [o.status for o in outcomes] == [
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.SUCCESS,
    ]
    assert [len(o.materializations) for o in outcomes] == [1, 0, 1]
    assert outcomes[1].failure == "the source table is missing: create it, then materialize again"
    listed = instance.get_runs(filters=dg.RunsFilter(job_name="worker_job"))
    assert {r.run_id for r in listed} == {r.run_id for r in runs}


def test_at_most_at_once_workers_run_together_in_the_order_given(instance) -> None:
    """One at a time: the second run starts only after the first ended, as a pool of one would."""
    runs = _runs(instance, "fails", "ok")
    _execute(instance, runs, LOCATION, at_once=1)
    first, second = (instance.get_run_record_by_id(run.run_id) for run in runs)
    assert first is not None and second is not None
    assert first.dagster_run.status is dg.DagsterRunStatus.FAILURE
    assert second.dagster_run.status is dg.DagsterRunStatus.SUCCESS
    assert first.end_time is not None and second.start_time is not None
    assert first.end_time <= second.start_time


def test_a_held_worker_never_let_go_executes_nothing(instance) -> None:
    """A worker beyond ``at_once`` loads, then waits for GO: stdin closing first (its parent gone)
    ends it with the run never started."""
    (run,) = _runs(instance, "ok")
    home = Path(instance.root_directory)
    argv = materialize.run_worker_argv(LOCATION, home, run.run_id, wait_for_go=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home)}
    ended = subprocess.run(argv, stdin=subprocess.DEVNULL, env=env, timeout=120, check=False)
    assert ended.returncode == 1
    current = instance.get_run_by_id(run.run_id)
    assert current is not None and current.status is dg.DagsterRunStatus.NOT_STARTED


def test_a_worker_that_cannot_load_the_code_location_fails_its_run_with_the_reason(
    instance, capfd
) -> None:
    (run,) = _runs(instance, "ok")
    _execute(instance, [run], "wsync_dagster_tests.local.no_such_module")
    outcome = run_outcome(instance, run.run_id)
    assert outcome.status is dg.DagsterRunStatus.FAILURE
    assert outcome.failure is not None and "exited with code 1 before the run ended" in (
        outcome.failure
    )
    assert "No module named 'wsync_dagster_tests.local.no_such_module'" in capfd.readouterr().err


def test_a_worker_whose_parent_dies_interrupts_its_run(instance, tmp_path: Path) -> None:
    """The parent is SIGKILLed while the run waits: the worker's stdin closes, it interrupts the
    run, and the run ends failed instead of staying "started" for ever."""
    (run,) = _runs(instance, "waits")
    started = tmp_path / "started.fifo"
    os.mkfifo(started)
    argv = materialize.run_worker_argv(LOCATION, Path(instance.root_directory), run.run_id)
    # A parent of our own: it starts the worker (stdin a pipe it never writes) and is then killed.
    parent = subprocess.Popen(
        [
            sys.executable, "-c",
            "import subprocess, sys; subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE).wait()",
            *argv,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), worker_defs.STARTED_FIFO: str(started)},
    )  # fmt: skip
    assert parent.stdout is not None
    with started.open(encoding="utf-8") as fifo:  # blocks until the asset runs
        word, worker = fifo.readline().split()
    assert word == "started"
    parent.kill()
    parent.wait()
    try:
        output = _read_until_end(parent.stdout.fileno(), within=120.0)
    finally:  # a worker that failed the test must not outlive it
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(worker), signal.SIGKILL)
    current = instance.get_run_by_id(run.run_id)
    assert current is not None and current.status is dg.DagsterRunStatus.FAILURE, output


def _read_until_end(fd: int, within: float) -> str:
    """Everything written to the pipe ``fd`` until its last writer closed it (the worker holds the
    write end until it exits), failing after ``within`` seconds instead of waiting for ever."""
    deadline = time.monotonic() + within
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        assert ready, f"the worker did not stop within {within:.0f} s of its parent's death"
        if not (chunk := os.read(fd, 65536)):
            return b"".join(chunks).decode(errors="replace")
        chunks.append(chunk)
