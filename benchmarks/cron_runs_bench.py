"""How one cron tick's due rotating syncs should map to Dagster runs, measured through the
deployment (PostgreSQL, daemon, code server). Prints; asserts nothing.

``--syncs`` rotating on-demand syncs (copies of the sample's ``high_value_customers`` model), all due
at one tick, on a workspace of ``--slots`` active pipelines (the registry's
``limits.max_active_pipelines``; no permanent sync, so all of them are free and the rotating pool gets
that limit). The emulator runs on its **real** clock and each mParticle run takes ``--run-seconds``,
so the waits cost real time as they do against mParticle. Three shapes, each queued at once through
the run queue (GraphQL, as the daemon queues a schedule's run requests):

* ``per_tick``: one run for every due sync; its steps run one after the other (in-process executor);
* ``per_sync``: one run per sync; the rotating pool starts ``slots`` of them at a time;
* ``per_slot``: one run per free slot, the syncs dealt round-robin (``cron_schedules.run_groups``,
  what the cron schedules request), each run's syncs one after the other.

Per shape: the wall time from the tick to the last sync's materialization, the mean and the worst
sync latency (tick to its materialization), the runs (each one run worker process that imports the
code location), the median cost of starting one (Dagster's ``RUN_STARTING`` to ``RUN_START``), the
peak of active pipelines (emulator's activity log), mParticle calls, and the run workers' peak
memory. A warm-up tick first creates every pipeline, so each shape finds them made; the shapes then
alternate ``--repeat`` times.

    .venv/bin/python benchmarks/cron_runs_bench.py [--syncs 12] [--slots 2] [--run-seconds 5]
"""

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy_bench import MemoryWatch  # noqa: E402

from wsync_dagster.emulator import EmulatorControl  # noqa: E402
from wsync_dagster.local.deploy import records  # noqa: E402
from wsync_dagster.local.deploy.cluster import LocalDeployment  # noqa: E402
from wsync_dagster.local.deploy.graphql import DagsterGraphQL, ready_api  # noqa: E402
from wsync_dagster.local.deploy.smoke import wait_for_runs  # noqa: E402
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY  # noqa: E402
from wsync_dagster.sync.assets import naming  # noqa: E402
from wsync_dagster.sync.assets.cron_schedules import CronSync, run_groups  # noqa: E402
from wsync_dagster.sync.registry.specs import SyncSpec  # noqa: E402

TEMPLATE = "high_value_customers"
CRON = "15 * * * *"
SHAPES = ("per_tick", "per_sync", "per_slot")


def bench_registry(workdir: Path, syncs: int, slots: int) -> Path:
    """The sample registry with ``syncs`` rotating copies of the template on ``CRON``, in a
    workspace of ``slots`` active pipelines."""
    document = yaml.safe_load(SAMPLE_REGISTRY.read_text(encoding="utf-8"))["attributes"]
    template = next(s for s in document["syncs"] if s["name"] == TEMPLATE)
    document["syncs"] = [
        {
            **template,
            "name": f"rotating_{i:02d}",
            "schedule": {**template["schedule"], "cron": CRON},
        }
        for i in range(1, syncs + 1)
    ]
    document["limits"] = {"max_active_pipelines": slots}
    path = workdir / "cron_runs.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def groups(specs: list[SyncSpec], shape: str, slots: int) -> list[list[SyncSpec]]:
    if shape == "per_tick":
        return [specs]
    if shape == "per_sync":
        return [[s] for s in specs]
    due = [CronSync(s, naming.asset_key(s)) for s in specs]
    return [[c.spec for c in run] for run in run_groups(due, slots)]


def event_times(connection: Any, run_ids: list[str]) -> list[tuple[str, str, str | None, float]]:
    """(run id, event type, asset key or None, epoch seconds) of the runs' events that matter."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT run_id, dagster_event_type, asset_key, "
            "extract(epoch from timestamp at time zone 'UTC') FROM event_logs "
            "WHERE run_id = ANY(%s) AND dagster_event_type IN ('PIPELINE_ENQUEUED', "
            "'PIPELINE_STARTING', 'PIPELINE_START', 'ASSET_MATERIALIZATION')",
            (run_ids,),
        )
        return [(r, kind, key, float(at)) for r, kind, key, at in cursor.fetchall()]


def one_tick(
    deployment: LocalDeployment,
    api: DagsterGraphQL,
    connection: Any,
    specs: list[SyncSpec],
    shape: str,
    slots: int,
) -> dict[str, Any]:
    control = EmulatorControl(deployment.stack.emulator_url)
    calls_before = len(control.request_log())
    activity_before = len(control.activity()["events"])
    job = naming.cron_stem(CRON) + "_job"
    tick = datetime.now().astimezone().isoformat()
    with MemoryWatch(deployment) as memory:
        started = time.monotonic()
        run_ids = [
            api.launch_run(
                job,
                [naming.asset_key(s).path for s in run],
                {"wsync/cron_tick": tick, "bench/shape": shape},
            )
            for run in groups(specs, shape, slots)
        ]
        wait_for_runs(connection, run_ids)
        wall = time.monotonic() - started
    statuses = [records.run_status(connection, r) for r in run_ids]
    events = event_times(connection, run_ids)
    enqueued = min(at for _r, kind, _k, at in events if kind == "PIPELINE_ENQUEUED")
    latencies = [at - enqueued for _r, kind, _k, at in events if kind == "ASSET_MATERIALIZATION"]
    starting = {r: at for r, kind, _k, at in events if kind == "PIPELINE_STARTING"}
    start_costs = [at - starting[r] for r, kind, _k, at in events
                   if kind == "PIPELINE_START" and r in starting]  # fmt: skip
    log = control.request_log()[calls_before:]
    activity = control.activity()["events"][activity_before:]
    return {
        "shape": shape,
        "runs": len(run_ids),
        "ok": statuses.count("SUCCESS"),
        "synced": len(latencies),
        "wall_s": round(wall, 1),
        "last_sync_s": round(max(latencies, default=0.0), 1),
        "mean_sync_s": round(statistics.fmean(latencies), 1) if latencies else None,
        "run_start_s": round(statistics.median(start_costs), 1) if start_costs else None,
        "peak_active": max((e["active_count"] for e in activity), default=0),
        "api_calls": sum(not r["path"].startswith("/oauth") for r in log),
        "workers_MB": round(memory.peaks.get("run_workers", 0.0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--syncs", type=int, default=12)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--run-seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="wsync-cron-runs-") as tmp:
        workdir = Path(tmp)
        source = bench_registry(workdir, args.syncs, args.slots)
        with LocalDeployment(
            workdir, manual_clock=False, registry_source=source, run_seconds=args.run_seconds
        ) as deployment:
            api = ready_api(deployment)
            connection = deployment.postgres.settings.connect()
            connection.autocommit = True
            specs = deployment.stack.served_workspace().specs()
            print(
                f"warm-up: {one_tick(deployment, api, connection, specs, 'per_slot', args.slots)}"
            )
            for _ in range(args.repeat):
                for shape in SHAPES:
                    rows.append(one_tick(deployment, api, connection, specs, shape, args.slots))
                    print(rows[-1], flush=True)
            connection.close()
    columns = list(rows[0]) if rows else []
    print("\n" + " | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    print(
        f"\n{args.syncs} rotating syncs due at one tick, {args.slots} free slots, mParticle runs of "
        f"{args.run_seconds:g} s. Floors: one slot at a time {args.syncs * args.run_seconds:.0f} s; "
        f"all slots {-(-args.syncs // args.slots) * args.run_seconds:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
