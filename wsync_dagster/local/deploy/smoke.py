"""``python3 dev.py deploy --smoke``: start the local deployment, exercise it, judge it, stop it.

Everything goes through Dagster's GraphQL API (what the UI does) and the run queue; the verdict is
read from PostgreSQL and from the emulator's request log (:mod:`~wsync_dagster.local.deploy.judge`).
On the emulator's manual clock, so every mParticle run is due exactly when a materialization waits
for it.

Phase 1 queues, at once: a backfill of the last ``hourly_partitions`` closed hours of every hourly
sync (one run, ``BackfillPolicy.single_run()``), two single-partition runs of every other interval
sync (same pool: the second must wait for the first) and one run of every on-demand sync, the
rotating ones included (they share one pool, limited to the active-pipeline slots the permanent
syncs leave, so most of them wait in the queue for a slot).
The daemon first exits while launching the first of those runs, after the queue has marked it
STARTING and before the code server has it (:mod:`~wsync_dagster.local.deploy.chaos`): run
monitoring must fail that run after ``start_timeout_seconds`` and the daemon retry it
(deploy/dagster.yaml, ``run_retries``). Then ``dagster-daemon`` is SIGKILLed twice and restarted:
once as soon as the backfill has its run (the run still queued, the backfill's bookkeeping half
done), once while that run executes. The smoke waits for every automatic retry.
Phase 2 restarts the code server while a run is executing; that run must succeed, or fail with a
message and be retried (automatically, else by the smoke) with success.

The smoke prints one line per sync it launched with its result, and every failed run's error.
"""

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from wsync_dagster.local.deploy import chaos, records
from wsync_dagster.local.deploy.cluster import LocalDeployment, wait_until
from wsync_dagster.local.deploy.graphql import DagsterGraphQL, ready_api
from wsync_dagster.local.deploy.judge import (
    Launched,
    Verdict,
    backfill_run_ids,
    judge,
    judge_sensor,
)
from wsync_dagster.local.process import LocalServiceError
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.partitions import partitions_for
from wsync_dagster.sync.registry.specs import SyncSpec

RUN_TIMEOUT = 600.0
SMOKE_RERUN_OF = "wsync/smoke_rerun_of"  # on a run the smoke launched for one Dagster passed over


def closed_partitions(deployment: LocalDeployment, spec: SyncSpec, count: int) -> tuple[str, ...]:
    """The last ``count`` partitions of ``spec`` that closed by the emulator's start time."""
    keys = partitions_for(spec.schedule).get_partition_keys(
        current_time=deployment.stack.sample.anchor
    )
    return tuple(keys[-count:])


def queue_phase_one(
    deployment: LocalDeployment, api: DagsterGraphQL, hourly_partitions: int
) -> list[Launched]:
    launched = []
    # Rotating syncs first: the first run the queue launches is the one the armed daemon crash
    # drops (see daemon_crash_at_launch), as SIGKILL once dropped a rotating sync's run.
    specs = sorted(deployment.stack.served_workspace().specs(), key=lambda spec: not spec.rotate)
    for spec in specs:
        path = naming.asset_key(spec).path
        if spec.schedule.interval == "hourly":
            item = Launched(spec, closed_partitions(deployment, spec, hourly_partitions))
            item.backfill_id = api.launch_backfill(path, list(item.partitions))
        elif spec.schedule.is_interval:
            # The oldest of three is kept for the code-server restart (phase 2).
            item = Launched(spec, closed_partitions(deployment, spec, 3))
            item.run_ids = [api.launch_materialization(path, key) for key in item.partitions[1:]]
        else:
            item = Launched(spec, ())
            item.run_ids = [api.launch_materialization(path)]
        launched.append(item)
    return launched


def daemon_crash_at_launch(
    deployment: LocalDeployment, connection: Any, verdict: Verdict
) -> str | None:
    """Wait for the armed daemon crash (chaos.py) to drop a run it was launching; start a new
    daemon. Returns the dropped run: STARTING, never handed to the code server."""
    daemon = deployment.services["daemon"]
    wait_until(lambda: not daemon.running, RUN_TIMEOUT, "the daemon to crash launching a run")
    dropped = [run_id for run_id, handed in records.starting_runs(connection).items() if not handed]
    deployment.restart_service("daemon")
    verdict.notes.append(
        f"dagster-daemon exited while launching run(s) {[r[:8] for r in dropped]} (after the "
        f"queue marked them STARTING); restarted as pid {deployment.dagster_pid('daemon')}"
    )
    return dropped[0] if len(dropped) == 1 else None


def judge_dropped_run(connection: Any, run_id: str | None, verdict: Verdict) -> None:
    """Run monitoring failed the dropped run, and it ran again with success: retried by the daemon,
    or by the smoke when Dagster's retry daemon passed over it (rerun_passed_over)."""
    if run_id is None:
        verdict.check("the daemon crash dropped exactly one run", False, "see the notes")
        return
    attempts = records.attempts(connection, run_id)
    chain = " -> ".join(f"{r[:8]} {records.run_status(connection, r)}" for r in attempts)
    for rerun in records.tagged_runs(connection, SMOKE_RERUN_OF, attempts[-1]):
        attempts += records.attempts(connection, rerun)
        chain += f" -> {rerun[:8]} {records.run_status(connection, attempts[-1])} (the smoke's)"
    message = records.failure_message(connection, run_id)
    verdict.check(
        "the run the daemon dropped while launching it was failed by run monitoring and run again",
        "seconds to start" in message
        and len(attempts) > 1
        and records.run_status(connection, attempts[-1]) == "SUCCESS",
        f"{chain}; {message[:200]!r}",
    )


def rerun_passed_over(
    api: DagsterGraphQL, connection: Any, launched: list[Launched], verdict: Verdict
) -> list[str]:
    """Run again each run Dagster's retry daemon passed over (records.retry_passed_over), as the
    daemon should have; the smoke says so in its notes. Returns the new runs."""
    reruns = []
    for item in launched:
        if item.backfill_id is not None:
            continue  # a backfill's run is the backfill's to retry: judged as it ends
        for chain in [records.attempts(connection, r) for r in item.run_ids]:
            if not records.retry_passed_over(connection, chain[-1]):
                continue
            partition = records.run_tags(connection, chain[-1]).get("dagster/partition")
            rerun = api.launch_materialization(
                naming.asset_key(item.spec).path, partition, tags={SMOKE_RERUN_OF: chain[-1]}
            )
            item.run_ids.append(rerun)
            item.interrupted += chain  # superseded by the rerun
            reruns.append(rerun)
            verdict.notes.append(
                f"Dagster's retry daemon passed over run {chain[-1][:8]} of {item.spec.name} "
                f"(tagged dagster/will_retry: true, never retried); the smoke ran it again as "
                f"{rerun[:8]}"
            )
    return reruns


def kill_daemon_when(
    deployment: LocalDeployment,
    connection: Any,
    when: Callable[[], str | None],
    what: str,
    verdict: Verdict,
) -> None:
    """Wait until ``when`` returns a state (not None), SIGKILL the daemon, start a new one."""
    state: list[str | None] = [None]

    def reached() -> bool:
        state[0] = when()
        return state[0] is not None

    wait_until(reached, RUN_TIMEOUT, what, interval=0.1)
    starting = records.starting_runs(connection)
    old = deployment.kill_service("daemon")
    deployment.start_service("daemon")
    dropped = [run_id[:8] for run_id, handed in starting.items() if not handed]
    verdict.notes.append(
        f"dagster-daemon (pid {old}) SIGKILLed {what} (state then: {state[0]}; runs being "
        f"launched: {len(starting)}, not yet handed to the code server: {dropped or 'none'}); "
        f"restarted as pid {deployment.dagster_pid('daemon')}"
    )


def daemon_kills(
    deployment: LocalDeployment, connection: Any, backfill_id: str, verdict: Verdict
) -> None:
    def has_run() -> str | None:
        ids = backfill_run_ids(connection, backfill_id)
        return records.run_status(connection, ids[0]) if ids else None

    def run_executing() -> str | None:
        ids = backfill_run_ids(connection, backfill_id)
        status = records.run_status(connection, ids[0]) if ids else None
        return status if status in ({"STARTED"} | records.TERMINAL) else None

    kill_daemon_when(
        deployment, connection, has_run, "once the backfill had submitted its run", verdict
    )
    kill_daemon_when(
        deployment, connection, run_executing, "while the backfill's run executed", verdict
    )


def wait_for_runs(connection: Any, run_ids: list[str]) -> None:
    """Wait until every run has ended, and every automatic retry of a failed one too."""
    wait_until(
        lambda: all(records.settled(connection, r) for r in run_ids),
        RUN_TIMEOUT,
        f"{len(run_ids)} run(s) and their automatic retries to finish",
        interval=0.5,
    )


def wait_for_backfill(api: DagsterGraphQL, backfill_id: str) -> str:
    status: list[str] = [""]

    def done() -> bool:
        status[0] = api.backfill_status(backfill_id)
        return status[0] not in ("REQUESTED", "CANCELING", "FAILING")

    wait_until(done, RUN_TIMEOUT, f"backfill {backfill_id} to finish", interval=0.5)
    return status[0]


def code_server_restart(
    deployment: LocalDeployment, api: DagsterGraphQL, connection: Any, item: Launched
) -> tuple[list[str], bool, str]:
    """Restart the code server while a run of ``item`` executes.

    The run either survives, or fails and is retried automatically. With the default run launcher
    (run workers are children of the code server) the retry may be launched on the server being
    stopped and fail too ("Tried to start a run on a server after telling it to shut down"): then
    the smoke runs the partition again itself. Returns the runs it launched (the run, and that
    rerun if there is one), whether the last attempt succeeded, and what happened."""
    path = naming.asset_key(item.spec).path
    partition = item.partitions[0]
    run_id = api.launch_materialization(path, partition)
    wait_until(
        lambda: records.run_status(connection, run_id) in ({"STARTED"} | records.TERMINAL),
        RUN_TIMEOUT,
        f"run {run_id} to start",
        interval=0.1,
    )
    state = records.run_status(connection, run_id)
    deployment.restart_service("code-server")
    wait_until(api.location_loaded_after_reload, 180, "the code location to load again")
    wait_for_runs(connection, [run_id])
    status = records.run_status(connection, run_id)
    outcome = f"run {run_id[:8]} was {state} at the restart and ended {status}"
    if status == "SUCCESS":
        return [run_id], True, outcome + " (survived)"
    message = records.failure_message(connection, run_id) or "(no failure event)"
    outcome += f" with: {message[:300]!r}"
    attempts = records.attempts(connection, run_id)
    last = records.run_status(connection, attempts[-1])
    if len(attempts) > 1:
        retries = " -> ".join(f"{r[:8]} {records.run_status(connection, r)}" for r in attempts[1:])
        outcome += f"; retried automatically: {retries}"
    if last == "SUCCESS":
        return [run_id], True, outcome
    rerun = api.launch_materialization(path, partition)
    wait_for_runs(connection, [rerun])
    last = records.run_status(connection, records.attempts(connection, rerun)[-1])
    return [run_id, rerun], last == "SUCCESS", f"{outcome}; a new run ended {last}"


# Long enough for a run worker to start on a loaded 2-core machine (30-40 s measured), so a run that
# is merely slow to start is not taken for the dropped one.
SMOKE_START_TIMEOUT_SECONDS = 90


def run_smoke(
    workdir: Path, hourly_partitions: int = 24, out: Callable[[str], None] = print
) -> int:
    verdict = Verdict()
    started = verdict.started
    crash = workdir / "crash-at-next-launch"
    instance = {
        **chaos.instance_settings(crash),
        # The dropped run waits this long for run monitoring to fail it (production keeps
        # deploy/dagster.yaml's 180 s): the mechanism is the same, the smoke 90 s shorter.
        "run_monitoring": {"start_timeout_seconds": SMOKE_START_TIMEOUT_SECONDS},
    }
    with LocalDeployment(workdir, manual_clock=True, instance=instance) as deployment:
        out(f"[deploy] up in {time.monotonic() - started:.0f} s: {deployment.webserver_url}")
        api = ready_api(deployment)
        connection = deployment.postgres.settings.connect()
        connection.autocommit = True
        try:
            exercise(deployment, api, connection, hourly_partitions, crash, verdict)
            verdict.check("records in PostgreSQL", True, str(records.table_counts(connection)))
        finally:
            connection.close()
        processes = live_processes(deployment.pids())
        stopping = time.monotonic()
    survivors = [p.pid for p in processes if p.is_running()]
    verdict.check(
        "no process outlived the deployment",
        not survivors,
        f"{len(processes)} processes stopped in {time.monotonic() - stopping:.0f} s"
        + (f"; still running: {survivors}" if survivors else ""),
    )
    verdict.notes.append(f"smoke wall time {time.monotonic() - started:.0f} s")
    for line in verdict.lines():
        out(line)
    out(f"[deploy] smoke {'passed' if verdict.passed else 'FAILED'}")
    return 0 if verdict.passed else 1


def live_processes(pids: set[int]) -> list[psutil.Process]:
    """``pids`` as processes (``is_running`` also compares start times: no pid-reuse mix-ups)."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            found.append(psutil.Process(pid))
    return found


def exercise(
    deployment: LocalDeployment,
    api: DagsterGraphQL,
    connection: Any,
    hourly_partitions: int,
    crash: Path,
    verdict: Verdict,
) -> None:
    verdict.mark("deployment up, code location loaded, daemons healthy")
    crash.touch()  # the daemon's next launch exits the daemon (chaos.py)
    launched = queue_phase_one(deployment, api, hourly_partitions)
    verdict.mark("phase 1 queued")
    try:
        run_phases(deployment, api, connection, launched, verdict)
    except LocalServiceError as error:  # a wait timed out: judge and report what there is
        verdict.check("every wait of the smoke ended in time", False, str(error))
    judge(deployment, connection, launched, verdict)
    judge_sensor(deployment, connection, launched, verdict)
    verdict.mark("runs sensor caught up")


def run_phases(
    deployment: LocalDeployment,
    api: DagsterGraphQL,
    connection: Any,
    launched: list[Launched],
    verdict: Verdict,
) -> None:
    dropped = daemon_crash_at_launch(deployment, connection, verdict)
    backfills = [item for item in launched if item.backfill_id is not None]
    for item in backfills:
        assert item.backfill_id is not None
        if item is backfills[0]:
            daemon_kills(deployment, connection, item.backfill_id, verdict)
    verdict.mark("daemon killed and restarted twice")
    backfill_runs = [
        r for i in backfills if i.backfill_id for r in backfill_run_ids(connection, i.backfill_id)
    ]
    wait_for_runs(connection, [r for item in launched for r in item.run_ids] + backfill_runs)
    wait_for_runs(connection, rerun_passed_over(api, connection, launched, verdict))
    verdict.mark("phase 1 runs done")
    judge_dropped_run(connection, dropped, verdict)
    # Phase 2 overlaps the backfill daemon's next pass (it notices the finished run every 30 s).
    target = next((i for i in launched if i.spec.schedule.is_interval and not i.backfill_id), None)
    if target is not None:
        run_ids, succeeded, outcome = code_server_restart(deployment, api, connection, target)
        verdict.check(
            "code server restarted mid-run: the run survived, or failed with a message and its "
            "automatic retry (or a rerun) succeeded",
            succeeded and "(no failure event)" not in outcome,
            outcome,
        )
        target.run_ids += run_ids
        # With a rerun, the interrupted run and all its attempts are superseded by it.
        target.interrupted += [a for r in run_ids[:-1] for a in records.attempts(connection, r)]
        verdict.mark("phase 2 (code-server restart) done")
    for item in backfills:
        assert item.backfill_id is not None
        status = wait_for_backfill(api, item.backfill_id)
        verdict.check(
            f"{item.spec.name}: backfill completed", status.startswith("COMPLETED"), status
        )
    verdict.mark("backfill completed")
