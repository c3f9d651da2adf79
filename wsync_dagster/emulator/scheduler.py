"""Creates due runs and executes them: synchronously on demand (settle), or on a worker thread.

With a ``real`` clock a worker thread keeps the emulator moving off the request path. With a
``manual`` clock nothing happens until the admin API settles or moves the clock; moving it forward
steps through every instant at which something is due (an interval closing, a simulated run
finishing), so runs start and end at the emulator times they would have in reality.
"""

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from wsync_dagster.emulator.backend import Backend
from wsync_dagster.emulator.runner import RunOutcome, RunPlan, execute_run

log = logging.getLogger("wsync_dagster.emulator")

# Longest the worker sleeps between looks at the clock (so clock moves are seen promptly).
WORKER_POLL_SECONDS = 1.0


class Scheduler:
    """Runs the backend's due work; ``settle`` may be called from any thread."""

    def __init__(self, backend: Backend, after_runs: Callable[[], None] | None = None) -> None:
        """``after_runs`` is called when a burst of runs has ended (to save the state file)."""
        self.backend = backend
        self._after_runs = after_runs
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        # One clock move at a time: two concurrent moves stepping through due instants would
        # otherwise set the clock back and forth.
        self._moving = threading.RLock()

    def _execute(self, plan: RunPlan) -> None:
        backend = self.backend
        try:
            outcome = execute_run(
                plan,
                backend.warehouse,
                lambda rows: backend.runs.ingest(plan, rows),
                backend.config.fetch_batch_rows,
            )
        except Exception as error:  # a bug must fail the run, not leave it claimed forever
            log.exception("run %s of %s crashed", plan.run_id, plan.pipeline_id)
            outcome = RunOutcome(failure=f"The emulator failed to execute the run: {error!r}")
        backend.runs.finish(plan, outcome)

    def _drain(self) -> int:
        """Execute everything due at the current clock time; returns how many runs ended."""
        done = 0
        while (plan := self.backend.runs.next_work()) is not None:
            self._execute(plan)
            done += 1
        return done

    def settle(self) -> int:
        """Create every due run and execute every runnable run before returning.

        Waits for runs that another thread (the worker) is executing. Returns the number of runs
        this call executed.
        """
        done = self._drain()
        while self.backend.runs.busy():
            self.backend.wait(WORKER_POLL_SECONDS)
            done += self._drain()
        if done:
            self._ran()
        return done

    def _ran(self) -> None:
        if self._after_runs is not None:
            self._after_runs()

    def advance_clock(self, seconds: float, settle: bool = True) -> int:
        """Move the clock ``seconds`` past where it is when this move's turn comes."""
        with self._moving:
            return self.move_clock(self.backend.clock.now() + timedelta(seconds=seconds), settle)

    def move_clock(self, target: datetime, settle: bool = True) -> int:
        """Set the clock to ``target``; with ``settle``, process everything due on the way."""
        with self._moving:
            return self._move_clock(target, settle)

    def _move_clock(self, target: datetime, settle: bool) -> int:
        clock = self.backend.clock
        if not settle:
            clock.set(target)
            self.backend.notify()
            return 0
        done = self.settle()
        if clock.mode == "manual":
            while (event := self.backend.runs.next_event_after(clock.now())) is not None and (
                event <= target
            ):
                clock.set(event)
                done += self.settle()
        clock.set(target)
        return done + self.settle()

    # ---------------------------------------------------------------------------------- worker

    def start(self) -> None:
        """Start the worker thread (real clock only; a manual clock moves only by admin calls)."""
        if self.backend.clock.mode != "real" or self._worker is not None:
            return
        self._stop.clear()
        self._worker = threading.Thread(
            target=self._work, name="wsync-emulator-worker", daemon=True
        )
        self._worker.start()

    def _work(self) -> None:
        backend = self.backend
        while not self._stop.is_set():
            if self._drain():
                self._ran()
            now = backend.clock.now()
            event = backend.runs.next_event_after(now)
            timeout = WORKER_POLL_SECONDS
            if event is not None:
                timeout = min(timeout, max(0.0, (event - now).total_seconds()))
            if not self._stop.is_set():
                backend.wait(timeout)

    def stop(self) -> None:
        """Stop the worker and wait for it (a run it is executing finishes first)."""
        self._stop.set()
        self.backend.notify()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
