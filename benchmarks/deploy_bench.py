"""What the production deployment costs (``python3 dev.py deploy``'s stack). Prints; asserts nothing.

1. **Executor**: one partition of the daily sync, materialized through the queue with the in-process
   executor and with the multiprocess executor (selected per run with run config, so the same code
   location serves both); from the run's events in PostgreSQL: queued -> run worker started ->
   step started -> step done -> run done. Since the code location pins ``in_process_executor``
   (``wsync_dagster/code_location.py``), the multiprocess rows print "not selectable";
   docs/deploy.md's comparison was measured with Dagster's default executor, before that line was
   added.
2. **Scale**: N hourly syncs (copies of the sample's ``ticket_activity``, each its own pipeline and
   pool, in a generated registry) x M hourly partitions, one backfill each, all queued at once.
   Reported: Dagster runs, peak concurrent runs, mParticle API calls and token requests (emulator's
   request log), Snowflake queries (the runs' ``preflight/queries`` metadata), wall time, and the
   peak memory (RSS, with children) of every Dagster process and of PostgreSQL, run workers apart
   (all at once, and the largest one).

On the emulator's manual clock: mParticle's runs cost no real time, so what is measured is Dagster.
M is at most 72: the sample warehouse holds 3 days of ticket activity.

    .venv/bin/python benchmarks/deploy_bench.py [--scale 5x24,5x72] [--skip-executor]
"""

import argparse
import contextlib
import re
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wsync_dagster.emulator import EmulatorControl  # noqa: E402
from wsync_dagster.local.deploy import records  # noqa: E402
from wsync_dagster.local.deploy.cluster import SERVICES, LocalDeployment  # noqa: E402
from wsync_dagster.local.deploy.graphql import GraphQLError, ready_api  # noqa: E402
from wsync_dagster.local.deploy.smoke import (  # noqa: E402
    closed_partitions,
    wait_for_backfill,
    wait_for_runs,
)
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY  # noqa: E402
from wsync_dagster.sync.assets.factory import naming  # noqa: E402

_QUERIES = re.compile(
    r'"entry_data": \{"__class__": "IntMetadataEntryData", "value": (\d+)\}, '
    r'"label": "preflight/queries"'
)
# Dagster stores run events under their old names: PIPELINE_START is RUN_START, and so on.
_RUN_WORKER = re.compile(r"spawn_main|execute_run")
_EVENTS = ("PIPELINE_ENQUEUED", "PIPELINE_START", "STEP_START", "STEP_SUCCESS", "PIPELINE_SUCCESS")


class MemoryWatch:
    """Peak RSS (a process plus its children) of each watched process, sampled every 0.5 s."""

    def __init__(self, deployment: LocalDeployment) -> None:
        self.deployment = deployment
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _targets(self) -> dict[str, int]:
        targets = {}
        for name in SERVICES:
            try:
                targets[name] = self.deployment.dagster_pid(name)
            except Exception:
                continue
        server = self.deployment.postgres.server
        if server is not None and server.pid is not None:
            targets["postgres"] = server.pid
        return targets

    def _sample(self, name: str, pid: int) -> None:
        process = psutil.Process(pid)
        tree = [process, *process.children(recursive=True)]
        # Run workers: the code server starts each run in a multiprocessing child (default launcher).
        workers = [p for p in tree if _RUN_WORKER.search(" ".join(p.cmdline()))]
        own = sum(p.memory_info().rss for p in tree if p not in workers) / 2**20
        self.peaks[name] = max(self.peaks.get(name, 0.0), own)
        if workers:
            rss = [p.memory_info().rss / 2**20 for p in workers]
            self.peaks["run_workers"] = max(self.peaks.get("run_workers", 0.0), sum(rss))
            self.peaks["one_run_worker"] = max(self.peaks.get("one_run_worker", 0.0), *rss)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, pid in self._targets().items():
                with contextlib.suppress(psutil.Error):
                    self._sample(name, pid)

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def event_times(connection: Any, run_id: str) -> dict[str, float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dagster_event_type, min(timestamp) FROM event_logs WHERE run_id = %s "
            "GROUP BY dagster_event_type",
            (run_id,),
        )
        rows: list[tuple[str, datetime]] = cursor.fetchall()
    return {kind: when.timestamp() for kind, when in rows if kind}


def measure_executors(workdir: Path) -> None:
    print("\n== executor: one daily partition through the queue", flush=True)
    with LocalDeployment(workdir) as deployment:
        api = ready_api(deployment)
        connection = deployment.postgres.settings.connect()
        connection.autocommit = True
        spec = next(s for s in deployment.stack.served_workspace().specs()
                    if s.schedule.interval == "daily")  # fmt: skip
        keys = closed_partitions(deployment, spec, 4)
        path = naming.asset_key(spec).path
        print(f"{'executor':<14}{'queue->worker':>14}{'worker->step':>14}{'step':>8}"
              f"{'step->end':>11}{'total':>8}")  # fmt: skip
        for key, executor in zip(keys, ("in_process", "multiprocess") * 2, strict=True):
            try:
                run_id = api.launch_materialization(
                    path, key, run_config={"execution": {"config": {executor: {}}}}
                )
            except GraphQLError as error:  # the code location pins its executor
                print(f"{executor:<14} not selectable: {str(error)[:120]}")
                continue
            wait_for_runs(connection, [run_id])
            t = event_times(connection, run_id)
            if not all(kind in t for kind in _EVENTS):
                print(
                    f"{executor:<14} run {run_id[:8]} ended {records.run_status(connection, run_id)}"
                )
                continue
            print(
                f"{executor:<14}{t['PIPELINE_START'] - t['PIPELINE_ENQUEUED']:>13.1f}s"
                f"{t['STEP_START'] - t['PIPELINE_START']:>13.1f}s"
                f"{t['STEP_SUCCESS'] - t['STEP_START']:>7.1f}s"
                f"{t['PIPELINE_SUCCESS'] - t['STEP_SUCCESS']:>10.1f}s"
                f"{t['PIPELINE_SUCCESS'] - t['PIPELINE_ENQUEUED']:>7.1f}s",
                flush=True,
            )
        connection.close()


def scale_registry(workdir: Path, syncs: int) -> Path:
    """The sample registry's hourly sync copied ``syncs`` times (own name, pipeline and pool)."""
    registry = yaml.safe_load(SAMPLE_REGISTRY.read_text(encoding="utf-8"))
    hourly = next(s for s in registry["syncs"] if s["schedule"]["interval"] == "hourly")
    registry["syncs"] = [{**hourly, "name": f"{hourly['name']}_{i + 1}"} for i in range(syncs)]
    path = workdir / f"syncs.bench{syncs}.yaml"
    path.write_text(yaml.safe_dump(registry, sort_keys=False), encoding="utf-8")
    return path


def measure_scale(workdir: Path, syncs: int, partitions: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    source = scale_registry(workdir, syncs)
    with LocalDeployment(workdir, registry_source=source) as deployment:
        api = ready_api(deployment)
        connection = deployment.postgres.settings.connect()
        connection.autocommit = True
        specs = deployment.stack.served_workspace().specs()
        with MemoryWatch(deployment) as memory:
            started = time.monotonic()
            backfills = [
                api.launch_backfill(
                    naming.asset_key(s).path, list(closed_partitions(deployment, s, partitions))
                )
                for s in specs
            ]
            statuses = [wait_for_backfill(api, b) for b in backfills]
            wall = time.monotonic() - started
        runs = list(records.runs(connection).values())
        log = EmulatorControl(deployment.stack.emulator_url).request_log()
        queries = 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT run_id, event FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            )
            per_run: dict[str, int] = {}
            for run_id, event in cursor.fetchall():
                if match := _QUERIES.search(event):
                    per_run[run_id] = max(per_run.get(run_id, 0), int(match.group(1)))
            queries = sum(per_run.values())
        materialized = sum(len(records.materializations(connection, naming.asset_key(s).path))
                           for s in specs)  # fmt: skip
        connection.close()
    return {
        "NxM": f"{syncs}x{partitions}",
        "backfills": ",".join(sorted(set(statuses))),
        "runs": len(runs),
        "ok": sum(r.status == "SUCCESS" for r in runs),
        "peak": records.peak_concurrency(runs),
        "mat": materialized,
        "api": sum(not r["path"].startswith("/oauth") for r in log),
        "tokens": sum(r["path"].startswith("/oauth") for r in log),
        "sf_q": queries,
        "wall_s": round(wall, 1),
        **{f"{k}_MB": round(v) for k, v in sorted(memory.peaks.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="5x24,5x72", help="comma-separated NxM")
    parser.add_argument("--skip-executor", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wsync-deploy-bench-") as tmp:
        if not args.skip_executor:
            measure_executors(Path(tmp) / "executor")
        rows = []
        for shape in filter(None, args.scale.split(",")):
            n, m = (int(part) for part in shape.lower().split("x"))
            print(f"\n== scale {n} syncs x {m} partitions", flush=True)
            rows.append(measure_scale(Path(tmp) / shape, n, m))
            print(rows[-1], flush=True)
    if rows:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        print("\n" + " | ".join(columns))
        for row in rows:
            print(" | ".join(str(row.get(c, "")) for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
