"""What the project's way of syncing costs, against the local stack. Prints numbers; asserts nothing.

1. **Backfill** of N hourly partitions (default 168: mParticle's 7-day hourly catch-up) of the sample
   ``ticket_activity`` sync, its schedule starting N hours before the anchor (the sample's 3 days of
   ticket activity are copied back in time so every partition holds rows), materialized

   * **the project's way**: one Dagster run over the whole range (the single-run backfill policy: the
     ``dagster/asset_partition_range_start/end`` tags Dagster's backfill daemon sets);
   * **naively**: one Dagster run per partition (N ``materialize`` calls, oldest first, one after the
     other), the token cache cleared before each to model Dagster's default run launcher, which
     starts a process per run.

   Both start from nothing: the emulator is reset before each (no connection, data model, pipeline,
   run, profile or token; clock back at the anchor), so both create the pipeline and wait for
   mParticle's catch-up. The emulator runs as its own process on a manual clock and each run takes
   ``--run-seconds`` of it; the resource's ``sleep`` advances that clock (the emulator then executes
   the runs that fall due), so nothing waits on real time. Counted: tokens and API calls from the
   emulator's request log; Snowflake statements and connections by wrapping the connector in this
   process; the runs' own metadata (``preflight/queries``, ``wsync/api_requests``, ...) as a
   cross-check. Dagster's instance is in memory (``--instance sqlite``: SQLite files, as under
   ``dagster dev``, which adds a per-run storage cost the naive way pays per partition).
   Reporting (``report_lag.py``): when the first partition was reported, and the longest and mean
   lag from a run's end to its partition's materialization, in emulator time; then the adaptive
   polling targets: at most 30 run listings, API calls at least 20x fewer than one run per
   partition, every lag within the longest poll interval.
3. **Late-row detection** (``late_rows_cost.py``): Snowflake queries per materialization of the
   scheduled path (one partition per run) and per steady-state runs sensor tick, with the recount of
   the windows before (``recount_windows`` default) and without it (0). Target: no extra query.
2. **Definition load** with 2 and with N declared tables (default 100; every cadence, 5 active, the
   rest paused): registries written to a temp dir, each loaded in a fresh process (forked from one
   that has imported the code location's modules, whose import cost is reported once), timing
   ``build_definitions`` and ``Definitions.validate_loadable`` (median of ``--repeats``). POSIX only.

    .venv/bin/python benchmarks/sync_bench.py [--partitions N] [--tables N] [--repeats N]
        [--run-seconds S] [--instance memory|sqlite] [--late-rows-partitions N]
"""

import argparse
import copy
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import dagster as dg
from definition_load import report_definitions, run_definitions
from late_rows_cost import Cost, measure_late_rows, report_late_rows
from report_lag import ReportTiming, report_timing
from sync_meter import METER, Meter, MeteredEmulatorClock, instrument_snowflake

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.local.resources import emulator_clock_mparticle, local_snowflake_resource
from wsync_dagster.local.sample_data import (
    TICKET_ACTIVITY,
    TICKET_ACTIVITY_DAYS,
    SampleConfig,
    current_hour,
)
from wsync_dagster.local.stack import LocalStack, local_registry
from wsync_dagster.mparticle import PipelineRun, clear_token_cache
from wsync_dagster.resources import MParticleResource
from wsync_dagster.sync.assets.factory import build_sync_asset
from wsync_dagster.sync.assets.translator import WarehouseSyncProps
from wsync_dagster.sync.registry.cadences import cadence
from wsync_dagster.sync.registry.specs import Registry

SYNC = "ticket_activity"
_REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)
_HOURLY = cadence("hourly").catch_up
assert _HOURLY is not None
HOURLY_CATCH_UP = int((_REFERENCE - _HOURLY.earliest_start(_REFERENCE)).total_seconds() // 3600)
# The step's counters, on the one asset observation each materialization step logs.
RUN_LEVEL = ("preflight/queries", "wsync/api_requests", "wsync/token_requests", "wsync/run_polls")
# Poll as the resource does by default against mParticle (the tests poll less, to run faster).
POLLING = {
    name: MParticleResource.model_fields[name].default
    for name in (
        "poll_interval_seconds",
        "max_poll_interval_seconds",
        "backfill_max_poll_interval_seconds",
    )
}
# Only log lines at WARNING and above on the console; every event still goes to the instance.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


# ------------------------------------------------------------------------------------ backfill


@dataclass
class Outcome:
    """One way of doing the backfill, measured."""

    name: str
    dagster_runs: int
    seconds: float
    meter: Meter  # what the Dagster side did during this way's runs
    emulator_seconds: float
    requests: Counter[str] = field(default_factory=Counter)
    preflight_queries: int = 0
    client_api_requests: int = 0
    client_token_requests: int = 0
    run_polls: int = 0
    materialized: int = 0
    rows: list[int] = field(default_factory=list)  # pre-flight count of each partition
    failures: list[str] = field(default_factory=list)
    timing: ReportTiming | None = None  # when the partitions were reported (see report_lag.py)

    @property
    def own_seconds(self) -> float:
        """Wall time less waiting on mParticle's runs and the harness's clock reads."""
        return self.seconds - self.meter.wait_seconds - self.meter.clock_seconds

    @property
    def token_requests(self) -> int:
        return self.requests["token"]

    @property
    def snowflake_queries(self) -> int:
        return sum(self.meter.snowflake_statements.values())

    @property
    def api_calls(self) -> int:
        return sum(n for kind, n in self.requests.items() if kind != "token")


def classify(entry: dict[str, Any]) -> str:
    path = entry["path"]
    if path == "/oauth/token":
        return "token"
    if path.endswith("/status/runs"):
        return "run listing"
    return entry["method"]


def extend_ticket_activity(stack: LocalStack, hours: int) -> int:
    """Copy the sample's ticket activity back in time, whole spans at a time, so that every one of
    the ``hours`` before the anchor holds rows; returns the rows in those hours."""
    anchor = stack.sample.anchor
    earliest = f"{anchor - timedelta(hours=hours):%Y-%m-%d %H:%M:%S}"
    span = TICKET_ACTIVITY_DAYS * 24
    shifts = " UNION ALL ".join(f"SELECT {k * span} AS H" for k in range(1, -(-hours // span)))
    connection = stack.snowflake.connect()
    try:
        cursor = connection.cursor()
        if shifts:
            cursor.execute(
                f"INSERT INTO {TICKET_ACTIVITY} SELECT EMAIL, TICKETS_OPENED, TICKETS_RESOLVED, "
                "AVG_FIRST_RESPONSE_MINUTES, LAST_TICKET_PRIORITY, CSAT_SCORE, "
                f"DATEADD('hour', -S.H, UPDATED_AT) FROM {TICKET_ACTIVITY}, ({shifts}) S "
                f"WHERE DATEADD('hour', -S.H, UPDATED_AT) >= '{earliest}'"
            )
        (rows,) = cursor.execute(
            f"SELECT COUNT(*) FROM {TICKET_ACTIVITY} WHERE UPDATED_AT >= '{earliest}'"
        ).fetchone()
        return rows
    finally:
        connection.close()


def backfill_registry(stack: LocalStack, hours: int) -> Registry:
    """The local registry's ticket_activity alone, starting ``hours`` before the anchor."""
    local = local_registry(stack.registries[0], stack.sample.anchor)
    spec = local.sync(SYNC)
    start = stack.sample.anchor - timedelta(hours=hours)
    schedule = spec.schedule.model_copy(update={"start": start, "end": None})
    return local.model_copy(update={"syncs": (spec.model_copy(update={"schedule": schedule}),)})


def measure(
    name: str,
    control: EmulatorControl,
    runs: Callable[[], Iterator[dg.ExecuteInProcessResult]],
    instance: dg.DagsterInstance,
    mparticle_runs: Callable[[], list[PipelineRun]],
) -> Outcome:
    control.reset()  # nothing in mParticle, clock back at the anchor
    clear_token_cache()  # the emulator forgot its tokens
    METER.reset()
    clock_start = control.clock()
    wall_start = time.time()
    started = time.perf_counter()
    results = list(runs())
    seconds = time.perf_counter() - started
    outcome = Outcome(
        name=name,
        dagster_runs=len(results),
        seconds=seconds,
        meter=copy.copy(METER),
        emulator_seconds=(control.clock() - clock_start).total_seconds(),
        requests=Counter(classify(e) for e in control.request_log()),
    )
    outcome.timing = report_timing(
        instance,
        [r.run_id for r in results],
        mparticle_runs(),  # read after the request log: not counted
        METER.timeline,
        clock_start,
        wall_start,
    )
    for result in results:
        events = result.get_asset_materialization_events()
        outcome.materialized += len(events)
        for event in events:
            rows = event.step_materialization_data.materialization.metadata["preflight/rows"]
            outcome.rows.append(int(cast(Any, getattr(rows, "value", rows))))
        if not result.success:
            outcome.failures.append(f"run {result.run_id} failed")
        for event in result.all_events:
            if event.event_type_value != "ASSET_OBSERVATION":
                continue
            metadata = event.asset_observation_data.asset_observation.metadata
            meta = {
                key: int(cast(Any, getattr(v, "value", v)))
                for key, v in metadata.items()
                if key in RUN_LEVEL
            }
            outcome.preflight_queries += meta["preflight/queries"]
            outcome.client_api_requests += meta["wsync/api_requests"]
            outcome.client_token_requests += meta["wsync/token_requests"]
            outcome.run_polls += meta["wsync/run_polls"]
    return outcome


INSTANCES = {
    "memory": "Dagster's in-memory instance",
    "sqlite": "a SQLite instance in a temp dir, as under dagster dev",
}


@contextmanager
def dagster_instance(kind: str, root: Path) -> Iterator[dg.DagsterInstance]:
    """Where the runs' events go: in memory, or SQLite files like ``dagster dev``'s."""
    if kind == "memory":
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance
        return
    root.mkdir(parents=True, exist_ok=True)
    (root / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    with dg.DagsterInstance.from_config(str(root)) as instance:
        yield instance


def run_backfill(
    partitions: int,
    run_seconds: float,
    instance_kind: str,
    workdir: Path,
    late_rows_partitions: int,
) -> tuple[Outcome, Outcome, list[Cost]]:
    anchor = current_hour()
    print(f"Starting the local stack (anchor {anchor:%Y-%m-%dT%H:%M}Z) ...", flush=True)
    sample = SampleConfig(anchor=anchor)
    with LocalStack(workdir, sample, manual_clock=True, run_seconds=run_seconds) as stack:
        rows = extend_ticket_activity(stack, partitions)
        registry = backfill_registry(stack, partitions)
        environment = stack.environment()
        os.environ.update(environment)  # the connection password and feed key, read via EnvVar
        control = EmulatorControl(stack.emulator_url)
        resources = {
            "snowflake": local_snowflake_resource(stack.snowflake.host, stack.snowflake.port),
            "mparticle": emulator_clock_mparticle(
                stack.emulator_url,
                MeteredEmulatorClock,
                run_timeout_seconds=max(4 * 3600.0, 3 * partitions * run_seconds),
                **POLLING,
            ),
        }
        asset = build_sync_asset(WarehouseSyncProps(registry.sync(SYNC), registry))
        assert isinstance(asset.partitions_def, dg.TimeWindowPartitionsDefinition)
        keys = asset.partitions_def.get_partition_keys(current_time=anchor)
        print(
            f"  {len(keys)} hourly partitions {keys[0]} .. {keys[-1]}, {rows:,} rows in those hours;"
            f"\n  emulator runs take {run_seconds:g} s of emulator time each; polls start at "
            f"{POLLING['poll_interval_seconds']:g} s and wait at most "
            f"{POLLING['max_poll_interval_seconds']:g} s for one partition,"
            f"\n  {POLLING['backfill_max_poll_interval_seconds']:g} s while several are pending;"
            f"\n  Dagster runs in this process, events to {INSTANCES[instance_kind]}",
            flush=True,
        )

        with dagster_instance(instance_kind, workdir / "dagster_home") as instance:

            def one_run(keys: Sequence[str]) -> dg.ExecuteInProcessResult:
                return materialize_partitions(
                    [asset], keys, resources=resources, instance=instance, run_config=QUIET
                )

            # Warm-up (not measured): Dagster's first run in a process pays one-off costs that
            # would otherwise land on the single project run only.
            control.reset()
            clear_token_cache()
            one_run(keys[-1:])

            def mparticle_runs() -> list[PipelineRun]:
                with resources["mparticle"].open_client() as client:
                    return list(client.iter_pipeline_runs(registry.sync(SYNC).resolved_pipeline_id))

            project = measure(
                "project (1 run)", control, lambda: iter([one_run(keys)]), instance, mparticle_runs
            )
            print(f"  project way done in {project.seconds:.1f} s", flush=True)

            def per_partition() -> Iterator[dg.ExecuteInProcessResult]:
                for key in keys:
                    clear_token_cache()  # a fresh run process has no cached token
                    yield one_run([key])

            naive = measure(
                f"naive ({len(keys)} runs)", control, per_partition, instance, mparticle_runs
            )
            print(f"  naive way done in {naive.seconds:.1f} s\n", flush=True)

        late = measure_late_rows(
            registry,
            SYNC,
            keys[-late_rows_partitions:],
            resources,
            control,
            lambda: dagster_instance(instance_kind, workdir / "dagster_home_late"),
            run_config=QUIET,
        )
        print("  late-row detection measured\n", flush=True)
    return project, naive, late


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"


def _ratio(naive: float, project: float) -> str:
    return f"{naive / project:.1f}x" if project else "-"


BACKFILL_NOTES = """\
  Counted: token requests and API calls from the emulator's request log (every non-admin request);
  Snowflake queries as every cursor.execute of the Snowflake connector in this (the Dagster)
  process; the emulator's own extraction queries are mParticle's work, the same either way, and not
  counted. Waiting on mParticle = the resource's sleeps, each advancing the emulator's clock while
  it executes the runs that fall due. The naive runs go one after the other in this one process:
  the token cache is cleared before each, but the HTTP connection pool, the imports and the loaded
  definitions are shared, so a real run-per-process backfill costs more (see the end)."""


def report_backfill(project: Outcome, naive: Outcome, partitions: int, run_seconds: float) -> None:
    print(
        f"1. Backfill of {partitions} hourly partitions of '{SYNC}'\n   (pipeline creation and "
        "mParticle's catch-up included in both)"
    )
    if project.rows:
        print(
            f"  {sum(project.rows):,} rows synced, {min(project.rows)} to {max(project.rows)} per "
            "partition\n  (pre-flight counts; a row on an hour boundary is in both windows)"
        )
    rows: list[tuple[str, float, float, str]] = [
        ("Dagster runs", project.dagster_runs, naive.dagster_runs, "d"),
        ("partitions materialized", project.materialized, naive.materialized, "d"),
        ("wall time, s", project.seconds, naive.seconds, ".2f"),
        (
            "  of it waiting on mParticle runs, s",
            project.meter.wait_seconds,
            naive.meter.wait_seconds,
            ".2f",
        ),
        (
            "  of it reading the emulator clock, s",
            project.meter.clock_seconds,
            naive.meter.clock_seconds,
            ".2f",
        ),
        ("  the rest (Dagster, pre-flight, API), s", project.own_seconds, naive.own_seconds, ".2f"),
        ("emulator-clock time, s", project.emulator_seconds, naive.emulator_seconds, ".0f"),
        ("token requests", project.token_requests, naive.token_requests, "d"),
        ("mParticle API calls (excl. token)", project.api_calls, naive.api_calls, "d"),
    ]
    rows += [
        (f"  {kind}", project.requests[kind], naive.requests[kind], "d")
        for kind in ("GET", "POST", "PUT", "DELETE", "run listing")
        if project.requests[kind] or naive.requests[kind]
    ]
    p, n = project.meter, naive.meter
    rows += [
        ("waits (clock advances)", p.waits, n.waits, "d"),
        ("clock reads (harness HTTP calls)", p.clock_reads, n.clock_reads, "d"),
        ("Snowflake queries (cursor.execute)", project.snowflake_queries, naive.snowflake_queries, "d"),
        *(
            (f"  {kind}", p.snowflake_statements[kind], n.snowflake_statements[kind], "d")
            for kind in sorted(p.snowflake_statements | n.snowflake_statements)
        ),
        ("  per preflight/queries metadata", project.preflight_queries, naive.preflight_queries, "d"),
        ("Snowflake connections opened", p.snowflake_connections, n.snowflake_connections, "d"),
    ]  # fmt: skip
    print(
        f"{'':40}{'project (1 run)':>17}{f'naive ({naive.dagster_runs} runs)':>18}{'naive/project':>15}"
    )
    for label, a, b, fmt in rows:
        print(f"{label:40}{a:>17{fmt}}{b:>18{fmt}}{_ratio(b, a):>15}")
    print(
        f"  Emulator-clock time: project {_duration(project.emulator_seconds)}, naive "
        f"{_duration(naive.emulator_seconds)} (each mParticle run takes {run_seconds:g} s;\n  "
        "mParticle runs a pipeline's runs one at a time, oldest first)."
    )
    print(
        "  The client's own count (wsync/api_requests + wsync/token_requests metadata, summed per "
        f"run):\n  project {project.client_api_requests} + {project.client_token_requests}, "
        f"naive {naive.client_api_requests} + {naive.client_token_requests}."
    )
    print(BACKFILL_NOTES)
    for outcome in (project, naive):
        if outcome.failures or outcome.materialized != partitions:
            print(
                f"  WARNING {outcome.name}: {outcome.materialized} of {partitions} partitions "
                f"materialized; {'; '.join(outcome.failures[:3])}"
            )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def report_reporting(project: Outcome, naive: Outcome) -> None:
    """When partitions were reported, and the targets of adaptive polling."""
    p, n = project.timing, naive.timing
    assert p is not None and n is not None
    print("\n  Reporting as runs end (emulator seconds unless said; partitions with a run end)")
    rows = [
        ("time to the first reported partition", p.first_report_s, n.first_report_s),
        ("  the same, wall seconds", p.first_report_wall_s, n.first_report_wall_s),
        ("longest lag, run end to report", p.max_lag_s, n.max_lag_s),
        ("mean lag, run end to report", p.mean_lag_s, n.mean_lag_s),
    ]
    for label, a, b in rows:
        print(f"{label:40}{_seconds(a):>17}{_seconds(b):>18}")
    longest = POLLING["backfill_max_poll_interval_seconds"]
    listings = project.requests["run listing"]
    ratio = naive.api_calls / project.api_calls if project.api_calls else 0.0
    lag_ok = p.max_lag_s is not None and p.max_lag_s <= longest
    print(
        "  Targets (one run): run listings "
        f"{listings} (at most 30: {'met' if listings <= 30 else 'MISSED'}); API calls "
        f"{ratio:.1f}x fewer than one run per partition (at least 20x: "
        f"{'met' if ratio >= 20 else 'MISSED'}); longest lag {_seconds(p.max_lag_s)} s (at most "
        f"the {longest:g} s longest poll interval: {'met' if lag_ok else 'MISSED'})."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--partitions",
        type=int,
        default=HOURLY_CATCH_UP,
        help=f"hourly partitions to backfill (default and most: {HOURLY_CATCH_UP}, the catch-up)",
    )
    parser.add_argument(
        "--tables", type=int, default=100, help="declared tables vs 2 (default 100)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="fresh loads per registry (median)")
    parser.add_argument(
        "--late-rows-partitions",
        type=int,
        default=24,
        help="hourly partitions materialized one per run with and without the late-row recount "
        "(default 24)",
    )
    parser.add_argument(
        "--instance",
        choices=sorted(INSTANCES),
        default="memory",
        help="where the backfill runs' events go (default memory; sqlite adds Dagster's per-run "
        "storage cost, which the naive way pays per partition, and takes longer)",
    )
    parser.add_argument(
        "--run-seconds",
        type=float,
        default=60.0,
        help="emulator-clock seconds each mParticle run takes (default 60)",
    )
    args = parser.parse_args()
    if not 1 <= args.partitions <= HOURLY_CATCH_UP:
        parser.error(f"--partitions must be 1..{HOURLY_CATCH_UP} (mParticle's hourly catch-up)")
    if args.tables < 3:
        parser.error("--tables must be at least 3 (it is compared with 2)")
    warnings.filterwarnings("ignore", category=dg.BetaWarning)  # the single-run backfill policy
    instrument_snowflake()
    with tempfile.TemporaryDirectory(prefix="wsync-sync-bench-") as tmp:
        project, naive, late = run_backfill(
            args.partitions,
            args.run_seconds,
            args.instance,
            Path(tmp) / "stack",
            min(args.late_rows_partitions, args.partitions),
        )
        report_backfill(project, naive, args.partitions, args.run_seconds)
        report_reporting(project, naive)
        report_late_rows(late)
        times = run_definitions((2, args.tables), args.repeats, Path(tmp))
        report_definitions(times, args.repeats)
    per_process = times.startup + times.median(2, "build")
    print(
        f"\nUnder Dagster's default run launcher each of the naive way's {naive.dagster_runs} runs is "
        "a process that\nfirst loads the code location: at least "
        f"{per_process:.1f} s each here (start, imports, cold build; see 2.),\n"
        f"~{naive.dagster_runs * per_process:.0f} s more in all, not in the naive wall time above "
        "(less if runs overlap on several cores).\nThe project's one run pays it once."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
