"""A tiny code location for the run-worker tests (``wsync_dagster_tests/local/test_run_workers.py``).

``ok`` materializes; ``fails`` raises a ``Failure``; ``waits`` blocks until interrupted, so a test
can stop its worker mid-run.
"""

import os
import threading

import dagster as dg

STARTED_FIFO = "WSYNC_TEST_STARTED_FIFO"
"""A FIFO ``waits`` writes "started <pid>" to once it runs (the test reads it instead of polling)."""


@dg.asset
def ok() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset
def fails() -> None:
    raise dg.Failure("the source table is missing: create it, then materialize again")


@dg.asset
def waits() -> None:
    with open(os.environ[STARTED_FIFO], "w", encoding="utf-8") as fifo:
        fifo.write(f"started {os.getpid()}\n")
    threading.Event().wait()  # until the worker is interrupted (no timeout: the test stops it)


defs = dg.Definitions(
    assets=[ok, fails, waits],
    jobs=[dg.define_asset_job("worker_job", selection=[ok, fails, waits])],
    executor=dg.in_process_executor,
)
