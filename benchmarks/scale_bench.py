"""Dozens of tables through the deployment: interval syncs plus rotating on-demand syncs on hourly
crons, for hours of the emulator's manual clock. Prints; asserts nothing.

The local deployment (PostgreSQL, ``dagster-daemon``, a gRPC code server, the webserver) serves a
generated registry: ``--interval`` hourly syncs (each pipeline active for ever) and the rest rotating
``on_demand`` syncs spread over ``--crons`` hourly crons (minutes 15, 30, 45, ...), each reading a
generated table of its own (``WSYNC_SCALE.GEN.TABLE_NN``: rows every 20 minutes from three days before
the sample's anchor to the end of the simulated hours), loaded into the Snowflake stand-in as SQL.

Dagster's schedules tick on the wall clock and the emulator's is manual, so the benchmark fires the
ticks itself, the way the daemon would at each simulated instant: it lists every schedule's ticks in
the simulated hours (``futureTicks``), and for each instant in order moves the emulator's clock there
(settling what mParticle runs by then), evaluates each schedule's tick on the code server with the
instance's state (``scheduleDryRun``: the cron schedules see the runs in flight), and queues the run
requests through the run queue with the tags the daemon adds. The schedules themselves stay stopped.
A tick's runs finish before the clock moves to the next instant: on the manual clock Dagster's own
work takes no simulated time, only the waits for mParticle move the clock (an instant the clock has
already passed is an overrun, reported). The runs sensor runs as deployed, on the wall clock.

Reported: Dagster runs and failed runs; the peak of active pipelines (emulator's activity log); due
(sync, tick) pairs never synced (an interval partition without a successful mParticle run recorded in
Dagster; a cron tick with no successful mParticle run of that sync whose window ends between that tick
and the cron's next one, recorded in Dagster); skipped cron syncs; the runs sensor's longest tick
(PostgreSQL's tick records); mParticle API calls and tokens (emulator's request log); Snowflake
queries (the stand-in's count: runs, sensor and seeding); each process's peak memory (RSS with its
children; run workers apart); and the wall time. The last line is::

    scale: syncs=N hours=H runs=R runs_failed=F missed=M peak_active=P sensor_tick_max_s=T wall_s=W

    .venv/bin/python benchmarks/scale_bench.py [--syncs 30] [--hours 6] [--interval 3] [--crons 3]
"""

import argparse
import contextlib
import itertools
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy_bench import MemoryWatch  # noqa: E402

from wsync_dagster.emulator import EmulatorControl  # noqa: E402
from wsync_dagster.local.deploy import records  # noqa: E402
from wsync_dagster.local.deploy.cluster import LocalDeployment, wait_until  # noqa: E402
from wsync_dagster.local.deploy.graphql import ScheduleDriver, ScheduleInfo, ready_api  # noqa: E402
from wsync_dagster.local.deploy.smoke import wait_for_runs  # noqa: E402
from wsync_dagster.local.process import LocalServiceError  # noqa: E402
from wsync_dagster.local.resources import emulator_mparticle  # noqa: E402
from wsync_dagster.local.sample_data import SampleConfig  # noqa: E402
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY  # noqa: E402
from wsync_dagster.mparticle import PipelineRun, RunState  # noqa: E402
from wsync_dagster.sync.assets import naming  # noqa: E402
from wsync_dagster.sync.assets.partitions import partitions_for  # noqa: E402
from wsync_dagster.sync.observe.batch import partition_of  # noqa: E402
from wsync_dagster.sync.observe.sensor import SENSOR_NAME  # noqa: E402
from wsync_dagster.sync.registry.specs import SyncSpec  # noqa: E402

DATABASE = "WSYNC_SCALE"
SCHEMA = f"{DATABASE}.GEN"
ROW_MINUTES = 20  # one row per table every 20 minutes
HISTORY_DAYS = 3
SENSOR_CATCH_UP_SECONDS = 180.0


def table_name(index: int) -> str:
    return f"{SCHEMA}.TABLE_{index:02d}"


def seed_sql(syncs: int, hours: int) -> str:
    """The generated tables, as a seed file: ``{{anchor}}`` is the sample's anchor."""
    rows = (HISTORY_DAYS * 24 + hours + 1) * 60 // ROW_MINUTES
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    ]
    for index in range(1, syncs + 1):
        statements += [
            f"CREATE OR REPLACE TABLE {table_name(index)} (CUSTOMER_ID VARCHAR, EMAIL VARCHAR, "
            "SCORE FLOAT, UPDATED_AT TIMESTAMP_NTZ)",
            f"INSERT INTO {table_name(index)} SELECT 'c{index:02d}-' || (SEQ4() % 97), "
            f"'c{index:02d}-' || (SEQ4() % 97) || '@example.com', UNIFORM(0::FLOAT, 1::FLOAT, "
            f"RANDOM({index})), DATEADD(minute, {ROW_MINUTES} * SEQ4() - {HISTORY_DAYS * 24 * 60}, "
            f"{{{{anchor}}}}) FROM TABLE(GENERATOR(ROWCOUNT => {rows}))",
        ]
    return ";\n".join(statements) + ";\n"


def load_seed(deployment: LocalDeployment, text: str) -> int:
    """Run the seed SQL on the stand-in (the statements a seed folder's ``.sql`` file holds)."""
    anchor = deployment.stack.sample.anchor.strftime("'%Y-%m-%d %H:%M:%S'::TIMESTAMP_NTZ")
    connection = deployment.stack.snowflake.connect()
    try:
        statements = [s.strip() for s in text.replace("{{anchor}}", anchor).split(";") if s.strip()]
        for statement in statements:
            connection.cursor().execute(statement)
    finally:
        connection.close()
    return len(statements)


def crons(count: int) -> list[str]:
    return [f"{minute} * * * *" for minute in range(15, 60, 45 // max(count, 1))][:count]


def scale_registry(workdir: Path, syncs: int, interval: int, cron_count: int) -> Path:
    """``interval`` hourly syncs and ``syncs - interval`` rotating on-demand syncs on the crons,
    each over its own generated table; the sample registry's connection."""
    document = yaml.safe_load(SAMPLE_REGISTRY.read_text(encoding="utf-8"))["attributes"]
    anchor_day = "2026-11-25T00:00:00Z"  # rebased onto the sample anchor by the local stack
    entries = []
    on_crons = itertools.cycle(crons(cron_count))
    for index in range(1, syncs + 1):
        rotating = index > interval
        schedule: dict[str, Any] = {"interval": "on_demand" if rotating else "hourly",
                                    "start": anchor_day}  # fmt: skip
        if rotating:
            schedule["cron"] = next(on_crons)
        entry: dict[str, Any] = {
            "name": f"{'rotating' if rotating else 'hourly'}_{index:02d}",
            "description": f"Generated table {index} of the scale benchmark.",
            "sql": f'SELECT CUSTOMER_ID AS "customer_id", EMAIL AS "email", SCORE AS '
            f'"scale_score_{index:02d}", UPDATED_AT FROM {table_name(index)}',
            "load_timestamp": {"column": "UPDATED_AT", "type": "timestamp_ntz"},
            "schedule": schedule,
            "feed_key_env": "MPARTICLE_FEED_KEY_SCALE",
        }
        if rotating:
            entry["rotate"] = True
        entries.append(entry)
    document["syncs"] = entries
    path = workdir / f"scale{syncs}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


class ScaleMemory(MemoryWatch):
    """The deployment's processes, plus the emulator and the Snowflake stand-in."""

    def _targets(self) -> dict[str, int]:
        targets = super()._targets()
        stack = self.deployment.stack
        for name, service in (("emulator", stack.emulator), ("snowflake", stack.snowflake)):
            if service is not None and service.pid is not None:
                targets[name] = service.pid
        return targets


@dataclass
class Driven:
    """What the benchmark fired."""

    ticks: list[tuple[datetime, str]] = field(default_factory=list)  # (instant, schedule)
    run_ids: list[str] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)
    overruns: list[tuple[datetime, float]] = field(default_factory=list)
    hour_seconds: list[float] = field(default_factory=list)


def drive(
    deployment: LocalDeployment,
    driver: ScheduleDriver,
    connection: Any,
    start: datetime,
    hours: int,
) -> Driven:
    """Fire every schedule tick in ``start .. start + hours`` (exclusive) in time order."""
    control = EmulatorControl(deployment.stack.emulator_url)
    schedules = driver.schedules()
    end = start + timedelta(hours=hours)
    planned: list[tuple[float, ScheduleInfo]] = [
        (t, schedule)
        for schedule in schedules
        for t in driver.ticks(schedule.name, start.timestamp(), end.timestamp())
    ]
    driven = Driven()
    hour_started, hour = time.monotonic(), 0
    for timestamp, group in itertools.groupby(sorted(planned, key=lambda p: p[0]), lambda p: p[0]):
        instant = datetime.fromtimestamp(timestamp, UTC)
        if instant >= start + timedelta(hours=hour + 1):
            driven.hour_seconds.append(time.monotonic() - hour_started)
            hour_started, hour = time.monotonic(), hour + 1
        now = control.clock()
        if now < instant:
            control.set_clock(instant)  # settles: mParticle runs what is due by then
        elif now > instant:
            driven.overruns.append((instant, (now - instant).total_seconds()))
        launched = []
        for _t, schedule in group:
            driven.ticks.append((instant, schedule.name))
            result = driver.evaluate(schedule, timestamp)
            if result.skip_reason:
                driven.skipped_lines.append(
                    f"{instant:%H:%M} {schedule.name}: {result.skip_reason}"
                )
            launched += [driver.launch(schedule, run) for run in result.runs]
        wait_for_runs(connection, launched)
        driven.run_ids += launched
        print(f"  {instant:%Y-%m-%d %H:%M} {len(launched)} run(s) done", flush=True)
    driven.hour_seconds.append(time.monotonic() - hour_started)
    if control.clock() < end:
        control.set_clock(end)
    return driven


def mparticle_runs(
    deployment: LocalDeployment, specs: list[SyncSpec]
) -> dict[str, list[PipelineRun]]:
    mparticle = emulator_mparticle(deployment.stack.emulator_url, manual_clock=False)
    with mparticle.open_client() as client:
        return {
            s.name: list(client.iter_pipeline_runs(s.resolved_pipeline_id, page_size=500))
            for s in specs
        }


def recorded_run_ids(connection: Any, spec: SyncSpec) -> set[str]:
    return {
        mp for _run, _p, mp in records.materializations(connection, naming.asset_key(spec).path)
    }


@dataclass(frozen=True)
class Missed:
    pairs: int
    due: int
    examples: list[str]


def missed_pairs(
    connection: Any,
    specs: list[SyncSpec],
    runs: dict[str, list[PipelineRun]],
    start: datetime,
    hours: int,
) -> Missed:
    """Due (sync, tick) pairs never synced, recorded in Dagster (by a run or the runs sensor)."""
    end = start + timedelta(hours=hours)
    due = 0
    missing: list[str] = []
    for spec in specs:
        recorded = recorded_run_ids(connection, spec)
        ok = [r for r in runs[spec.name]
              if r.state is RunState.SUCCESS and str(r.pipeline_run_id) in recorded]  # fmt: skip
        cron = spec.schedule.parsed_cron
        if cron is not None:
            for tick in cron.ticks(start, end - timedelta(minutes=1)):
                following = cron.next_after(tick)
                due += 1
                if not any(r.data_interval_end and tick <= r.data_interval_end < following
                           for r in ok):  # fmt: skip
                    missing.append(f"{spec.name}@{tick:%H:%M}")
        elif spec.schedule.is_interval:
            partitions = partitions_for(spec.schedule)
            synced = {partition_of(partitions, r) for r in ok}
            for key in partitions.get_partition_keys(current_time=end):
                # due: the partition whose interval closes at a tick in start .. end (exclusive)
                if start <= partitions.time_window_for_partition_key(key).end < end:
                    due += 1
                    if key not in synced:
                        missing.append(f"{spec.name}@{key}")
    return Missed(len(missing), due, missing[:8])


def run_costs(connection: Any) -> dict[str, float | None]:
    """Medians over the runs: starting a run worker (Dagster's RUN_STARTING to RUN_START), and one
    step of a rotating and of an interval sync (STEP_START to its end)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT run_id, step_key, dagster_event_type, "
            "extract(epoch from timestamp at time zone 'UTC') FROM event_logs WHERE "
            "dagster_event_type IN ('PIPELINE_STARTING', 'PIPELINE_START', 'STEP_START', "
            "'STEP_SUCCESS', 'STEP_FAILURE')"
        )
        rows = cursor.fetchall()
    at: dict[tuple[str, str | None, str], float] = {
        (run, step, kind): float(when) for run, step, kind, when in rows
    }
    starts = [at[(r, None, "PIPELINE_START")] - t for (r, _s, k), t in at.items()
              if k == "PIPELINE_STARTING" and (r, None, "PIPELINE_START") in at]  # fmt: skip
    steps: dict[str, list[float]] = {"rotating": [], "hourly": []}
    for (run, step, kind), started in at.items():
        if kind != "STEP_START" or step is None:
            continue
        end = at.get((run, step, "STEP_SUCCESS"), at.get((run, step, "STEP_FAILURE")))
        kind_of = "rotating" if "rotating" in step else "hourly"
        if end is not None:
            steps[kind_of].append(end - started)

    def median(values: list[float]) -> float | None:
        return round(sorted(values)[len(values) // 2], 1) if values else None

    return {
        "run_start_s": median(starts),
        "rotating_step_s": median(steps["rotating"]),
        "hourly_step_s": median(steps["hourly"]),
    }


def sensor_ticks(connection: Any) -> list[float]:
    """Durations (s) of the runs sensor's ticks, from Dagster's tick records."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tick_body FROM job_ticks WHERE type = 'SENSOR'")
        bodies = [json.loads(row[0]) for row in cursor.fetchall()]
    durations = []
    for body in bodies:
        if body.get("instigator_name", body.get("job_name")) != SENSOR_NAME:
            continue
        started, ended = body.get("timestamp"), body.get("end_timestamp")
        if started is not None and ended is not None:
            durations.append(float(ended) - float(started))
    return durations


def longest_sensor_ticks(connection: Any, count: int = 3) -> list[str]:
    """The runs sensor's longest ticks: when, how long, and what the tick said it did."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tick_body FROM job_ticks WHERE type = 'SENSOR'")
        bodies = [json.loads(row[0]) for row in cursor.fetchall()]
    timed = [
        (float(b["end_timestamp"]) - float(b["timestamp"]), b)
        for b in bodies
        if b.get("end_timestamp") is not None and b.get("timestamp") is not None
    ]
    lines = []
    for seconds, body in sorted(timed, key=lambda t: -t[0])[:count]:
        said = body.get("skip_reason") or f"{len(body.get('run_ids') or [])} run(s) requested"
        when = datetime.fromtimestamp(float(body["timestamp"]), UTC)
        lines.append(f"{when:%H:%M:%S} {seconds:.1f} s: {str(said)[:300]}")
    return lines


def wait_for_sensor(
    connection: Any, specs: list[SyncSpec], runs: dict[str, list[PipelineRun]]
) -> bool:
    """Until every successful mParticle run is recorded in Dagster (bounded)."""

    def caught_up() -> bool:
        return all(
            {str(r.pipeline_run_id) for r in runs[s.name] if r.state is RunState.SUCCESS}
            <= recorded_run_ids(connection, s)
            for s in specs
        )

    with contextlib.suppress(LocalServiceError):
        wait_until(caught_up, SENSOR_CATCH_UP_SECONDS, "the runs sensor to record every run", 2.0)
        return True
    return False


def measure(
    workdir: Path, syncs: int, hours: int, interval: int, cron_count: int
) -> dict[str, Any]:
    began = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    source = scale_registry(workdir, syncs, interval, cron_count)
    sample = SampleConfig()
    with LocalDeployment(
        workdir, manual_clock=True, registry_source=source, sample=sample
    ) as deployment:
        statements = load_seed(deployment, seed_sql(syncs, hours))
        api = ready_api(deployment)
        up = time.monotonic() - began
        connection = deployment.postgres.settings.connect()
        connection.autocommit = True
        specs = deployment.stack.served_workspace().specs()
        control = EmulatorControl(deployment.stack.emulator_url)
        queries_before = deployment.stack.snowflake.query_count()
        start = control.clock()
        print(f"up in {up:.0f} s ({statements} seed statements); simulating {hours} h from "
              f"{start:%Y-%m-%d %H:%M}", flush=True)  # fmt: skip
        with ScaleMemory(deployment) as memory:
            simulated = time.monotonic()
            driven = drive(deployment, ScheduleDriver(api), connection, start, hours)
            runs = mparticle_runs(deployment, specs)
            caught_up = wait_for_sensor(connection, specs, runs)
            simulated = time.monotonic() - simulated
        all_runs = list(records.runs(connection).values())
        failures = {
            r.run_id: records.failure_message(connection, r.run_id)[:400]
            for r in all_runs
            if r.status != "SUCCESS"
        }
        missed = missed_pairs(connection, specs, runs, start, hours)
        ticks = sensor_ticks(connection)
        costs = run_costs(connection)
        longest = longest_sensor_ticks(connection)
        log = control.request_log()
        activity = control.activity()
        queries = deployment.stack.snowflake.query_count() - queries_before
        connection.close()
    statuses = Counter(r.status for r in all_runs)
    return {
        "syncs": syncs,
        "hours": hours,
        "runs": len(all_runs),
        "runs_failed": sum(n for s, n in statuses.items() if s != "SUCCESS"),
        "run_statuses": dict(statuses),
        "failed_runs": failures,
        "schedule_ticks": len(driven.ticks),
        "cron_syncs_skipped": sum(line.count("skipped:") for line in driven.skipped_lines),
        "missed": missed.pairs,
        "due_pairs": missed.due,
        "missed_examples": missed.examples,
        "overruns": len(driven.overruns),
        "peak_active": activity["peak_active"],
        "sensor_ticks": len(ticks),
        "sensor_tick_max_s": round(max(ticks, default=0.0), 1),
        "sensor_tick_median_s": round(sorted(ticks)[len(ticks) // 2], 1) if ticks else None,
        "sensor_caught_up": caught_up,
        "sensor_longest": longest,
        **costs,
        "api_calls": sum(not r["path"].startswith("/oauth") for r in log),
        "tokens": sum(r["path"].startswith("/oauth") for r in log),
        "snowflake_queries": queries,
        "mparticle_runs": sum(len(v) for v in runs.values()),
        "memory_MB": {k: round(v) for k, v in sorted(memory.peaks.items())},
        "startup_s": round(up),
        "simulated_hours_s": round(simulated),
        "hour_s": [round(s) for s in driven.hour_seconds],
        "wall_s": round(time.monotonic() - began),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--syncs", type=int, default=30)
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--interval", type=int, default=3, help="hourly syncs among them")
    parser.add_argument("--crons", type=int, default=1, help="distinct hourly crons")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wsync-scale-bench-") as tmp:
        result = measure(Path(tmp), args.syncs, args.hours, args.interval, args.crons)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(
        f"scale: syncs={result['syncs']} hours={result['hours']} runs={result['runs']} "
        f"runs_failed={result['runs_failed']} missed={result['missed']} "
        f"peak_active={result['peak_active']} sensor_tick_max_s={result['sensor_tick_max_s']} "
        f"wall_s={result['wall_s']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
