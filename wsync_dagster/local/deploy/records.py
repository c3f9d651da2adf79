"""Read what the deployment recorded, straight from its PostgreSQL database (Dagster's own tables).

The smoke and the benchmark judge the deployment by these rows, not by what the API says: runs with
their start and end times, materialization events per partition, and the failure message of a run.
"""

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_RUN_ID_IN_DESCRIPTION = re.compile(r"mParticle run (\d+)")


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


def failure_message(connection: Any, run_id: str) -> str:
    """The messages of the run's failure events (empty if none), for the report.

    Dagster stores run events under their old names (``PIPELINE_FAILURE`` is ``RUN_FAILURE``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type IN "
            "('PIPELINE_FAILURE', 'STEP_FAILURE', 'ENGINE_EVENT', 'PIPELINE_CANCELED') ORDER BY id",
            (run_id,),
        )
        events = [row[0] for row in cursor.fetchall()]
    messages = []
    for event in events:
        body = json.loads(event)
        message = body.get("user_message") or ""
        if (
            "fail" in message.lower()
            or "interrupt" in message.lower()
            or "cancel" in message.lower()
        ):
            messages.append(message.strip())
    return " | ".join(messages)


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
