"""Read what the deployment recorded, straight from its PostgreSQL database (Dagster's own tables).

The smoke and the benchmark judge the deployment by these rows, not by what the API says: runs with
their start and end times, materialization events per partition, why a run failed, and the
automatic retries of a failed run.
"""

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import yaml

from wsync_dagster.local.deploy.cluster import DEPLOY_DIR

_RUN_ID_IN_DESCRIPTION = re.compile(r"mParticle run (\d+)")
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
# Tags Dagster itself puts on runs: whether a failed run will be retried and by which run (see
# docs/deploy.md, "Run retries"), and the code server a dequeued run was handed to.
WILL_RETRY = "dagster/will_retry"
AUTO_RETRY_RUN_ID = "dagster/auto_retry_run_id"
GRPC_INFO = ".dagster/grpc_info"
# How far the daemon that retries failed runs has read run-failure events (Dagster's kvs table).
RETRY_DAEMON_CURSOR = "EVENT_LOG_CONSUMER_CURSOR-PIPELINE_FAILURE"


@dataclass(frozen=True)
class RunRow:
    run_id: str
    status: str
    start: float | None
    end: float | None
    backfill_id: str | None


def runs(connection: Any) -> dict[str, RunRow]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status, start_time, end_time, backfill_id FROM runs")
        return {row[0]: RunRow(*row) for row in cursor.fetchall()}


def run_status(connection: Any, run_id: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        row = cursor.fetchone()
        return row[0] if row else None


def table_counts(connection: Any) -> dict[str, int]:
    """Rows in Dagster's main tables: proof that the records live in PostgreSQL."""
    counts = {}
    with connection.cursor() as cursor:
        for table in ("runs", "event_logs", "bulk_actions", "daemon_heartbeats"):
            cursor.execute(f"SELECT count(*) FROM {table}")  # table names are ours, not input
            counts[table] = int(cursor.fetchone()[0])
    return counts


def materializations(connection: Any, asset_path: Sequence[str]) -> list[tuple[str, str, str]]:
    """(run id, partition or "", mParticle run id) of every materialization of ``asset_path``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT run_id, partition, event FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
            (json.dumps(list(asset_path)),),
        )
        rows = cursor.fetchall()
    found = []
    for run_id, partition, event in rows:
        match = _RUN_ID_IN_DESCRIPTION.search(event)
        found.append((run_id, partition or "", match.group(1) if match else ""))
    return found


def per_partition(rows: Iterable[tuple[str, str, str]]) -> Counter[str]:
    return Counter(partition for _run, partition, _mp in rows)


def failure_messages(connection: Any, run_id: str) -> list[str]:
    """What went wrong in run ``run_id``, oldest first (empty if nothing failed): each failed step's
    error (a ``dagster.Failure``'s description, else the exception's first line), each engine event
    that carries an error (e.g. the queue's "Caught an unrecoverable error while dequeuing"), the
    run's own failure (run monitoring's "Run timed out ... to start" among them) or cancellation,
    and every engine event after that (what Dagster did about it, e.g. "Retrying the run")."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type IN "
            "('STEP_FAILURE', 'ENGINE_EVENT', 'PIPELINE_FAILURE', 'PIPELINE_CANCELED') ORDER BY id",
            (run_id,),
        )
        rows = [row[0] for row in cursor.fetchall()]
    messages = []
    run_ended = False
    for raw in rows:
        entry = dg.deserialize_value(raw, dg.EventLogEntry)
        event = entry.dagster_event
        if event is None:
            continue
        error = None
        if event.is_engine_event:
            # An engine event says what went wrong (it carries an error) or, once the run has
            # failed, what Dagster did about it ("Retrying the run", "Not retrying run since ...").
            error = event.engine_event_data.error
            if error is None and not run_ended:
                continue
            text = event.message or entry.user_message
        elif event.is_step_failure:
            step_failure = event.step_failure_data
            user = step_failure.user_failure_data
            described = user.description if user is not None else None
            text = described or (event.message or "")
            error = None if described else step_failure.error
        else:
            run_ended = True
            text = event.message or entry.user_message
            run_failure = event.job_failure_data if event.is_job_failure else None
            error = run_failure.error if run_failure is not None else None
        if error is not None and error.message.strip():
            text = f"{text} {error.message.strip().splitlines()[0]}".strip()
        messages.append(" ".join(text.split()))
    return messages


def failure_message(connection: Any, run_id: str) -> str:
    """:func:`failure_messages` on one line."""
    return " | ".join(failure_messages(connection, run_id))


def run_tags(connection: Any, run_id: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, value FROM run_tags WHERE run_id = %s", (run_id,))
        return dict(cursor.fetchall())


def tagged_runs(connection: Any, key: str, value: str) -> list[str]:
    """The runs tagged ``key: value``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT run_id FROM run_tags WHERE key = %s AND value = %s ORDER BY id", (key, value)
        )
        return [row[0] for row in cursor.fetchall()]


def attempts(connection: Any, run_id: str) -> list[str]:
    """``run_id`` followed by the automatic retries the daemon launched for it, oldest first
    (deploy/dagster.yaml's ``run_retries``)."""
    chain = [run_id]
    while (retry := run_tags(connection, chain[-1]).get(AUTO_RETRY_RUN_ID)) and retry not in chain:
        chain.append(retry)
    return chain


def settled(connection: Any, run_id: str) -> bool:
    """Whether ``run_id`` and its automatic retries have ended with no retry still to come.

    When run retries are enabled, Dagster tags a failed run ``dagster/will_retry`` (``true`` or
    ``false``) as it records the failure, and the retry's id once the daemon has launched it."""
    chain = attempts(connection, run_id)
    if any(run_status(connection, r) not in TERMINAL for r in chain):
        return False
    if run_status(connection, chain[-1]) != "FAILURE" or not retries_enabled():
        return True
    return run_tags(connection, chain[-1]).get(WILL_RETRY) == "false" or retry_passed_over(
        connection, chain[-1]
    )


def retry_passed_over(connection: Any, run_id: str) -> bool:
    """Whether Dagster's retry daemon went past the failure of ``run_id`` without retrying it,
    although the run is tagged ``dagster/will_retry: true``.

    The daemon reads new run-failure events every few seconds, then each run's record, and retries
    the runs whose record says FAILURE; it persists how far it read only after it has tagged the
    retries it launched. Dagster writes the failure event before the run's status, so a daemon that
    reads in between takes the run for unfinished, does not retry it, and never reads that event
    again (docs/deploy.md, "Run retries")."""
    tags = run_tags(connection, run_id)
    if tags.get(WILL_RETRY) != "true" or AUTO_RETRY_RUN_ID in tags:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(id) FROM event_logs WHERE run_id = %s "
            "AND dagster_event_type = 'PIPELINE_FAILURE'",
            (run_id,),
        )
        failure = cursor.fetchone()[0]
        cursor.execute("SELECT value FROM kvs WHERE key = %s", (RETRY_DAEMON_CURSOR,))
        read = cursor.fetchone()
    return failure is not None and read is not None and int(read[0]) >= failure


def retries_enabled() -> bool:
    """Whether the deployment's instance (deploy/dagster.yaml) retries failed runs."""
    config = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text(encoding="utf-8"))
    retries = config.get("run_retries") or {}
    return bool(retries.get("enabled")) and int(retries.get("max_retries") or 0) > 0


def starting_runs(connection: Any) -> dict[str, bool]:
    """Runs the queue has dequeued (STARTING) that have no run worker yet, and whether each was
    handed to the code server (Dagster tags it with the server's address just before)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.run_id, EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.run_id "
            "AND t.key = %s) FROM runs r WHERE r.status = 'STARTING'",
            (GRPC_INFO,),
        )
        return {run_id: bool(handed) for run_id, handed in cursor.fetchall()}


def overlaps(rows: Iterable[RunRow]) -> list[tuple[str, str]]:
    """Pairs of runs whose [start, end] intervals overlap (runs without both times are skipped)."""
    timed = sorted((r for r in rows if r.start and r.end), key=lambda r: r.start or 0.0)
    pairs = []
    for earlier, later in itertools.pairwise(timed):
        if (later.start or 0.0) < (earlier.end or 0.0):
            pairs.append((earlier.run_id, later.run_id))
    return pairs


def peak_concurrency(rows: Iterable[RunRow]) -> int:
    """The most runs that were executing at one instant."""
    edges = []
    for row in rows:
        if row.start and row.end:
            edges += [(row.start, 1), (row.end, -1)]
    peak = current = 0
    for _when, delta in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += delta
        peak = max(peak, current)
    return peak
