"""The main job on the embedded default (``python3 dev.py demo``) and the UI on it (``dev.py ui``).

The demo starts the local stack (Snowflake stand-in, mParticle emulator, seeded sample warehouse),
records the seeded source tables as updated, materializes through the sync jobs
(docs/jobs-and-schedules.md) the most recent closed partitions of every demo asset — the hourly table as
a multi-partition backfill in one run — and the on-demand assets: the permanent ones one by one,
then every rotating one at once, so that they take turns on the free active-pipeline slots (each run
in its own run worker process, as Dagster's run launcher would: see ``local/materialize.py``). It prints
what happened, the peak number of active pipelines (from the emulator's activity log) and three
enriched profiles read back through the Profile API, and stops everything. Runs land in the
project-local ``DAGSTER_HOME`` (``.dagster_home/``), which ``dev.py ui`` opens in the Dagster UI,
under their jobs in the local code location, so the UI can re-execute them.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from wsync_dagster.component import WarehouseSyncComponent
from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.definitions import (
    REGISTRY_VAR,
    build_local_definitions,
    local_sync_components,
)
from wsync_dagster.local.materialize import (
    RunOutcome,
    create_job_run,
    execute_in_workers,
    execute_job_run,
    job_origin,
    run_outcome,
)
from wsync_dagster.local.paths import state_root
from wsync_dagster.local.process import LocalServiceError, run_in_foreground
from wsync_dagster.local.sample_data import SampleConfig
from wsync_dagster.local.seed import SeedError
from wsync_dagster.local.stack import LocalStack, running_stack
from wsync_dagster.mparticle import Profile, WarehouseSyncError
from wsync_dagster.resources import MParticleResource, SettingsError
from wsync_dagster.sync.assets.metadata import DagsterKeys, MParticle
from wsync_dagster.sync.engine.rotation import rotating_pool_limit
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import RegistryError, SyncSpec
from wsync_dagster.sync.registry.workspace import Workspace

PROJECT_ROOT = state_root()  # WSYNC_HOME, else the working directory (local/paths.py)
WORKDIR = PROJECT_ROOT / ".wsync"
DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
LOCAL_LOCATION = "wsync_dagster.local.definitions"
SEED_VAR = "WSYNC_LOCAL_SEED"
SEED_FOLDER = "seed"
HOURLY_BACKFILL = 6
SHOWN_PROFILES = 3


@dataclass(frozen=True)
class Step:
    """One materialization the demo asks for."""

    spec: SyncSpec
    key: dg.AssetKey
    job: str
    partition_keys: tuple[str, ...]

    def describe(self) -> str:
        if not self.partition_keys:
            return f"{self.spec.name} ({self.spec.schedule.interval})"
        keys = self.partition_keys
        span = keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]} ({len(keys)} partitions)"
        return f"{self.spec.name} [{span}]"


def seed_source(environ: Mapping[str, str] | None = None, workdir: Path = WORKDIR) -> Path | None:
    """The folder of your own tables that ``demo``, ``ui`` and ``launch`` seed after the sample:
    ``WSYNC_LOCAL_SEED`` when set (it must be a folder), else ``<workdir>/seed/`` if it exists."""
    environ = os.environ if environ is None else environ
    if named := environ.get(SEED_VAR):
        return Path(named).expanduser().resolve()
    default = workdir / SEED_FOLDER
    return default if default.is_dir() else None


def registry_override(environ: Mapping[str, str] | None = None) -> Path | None:
    """The registry file ``WSYNC_LOCAL_REGISTRY`` names, which ``demo``, ``ui`` and ``launch`` serve
    instead of the sample registry (a ``defs.yaml`` of the component, or a bare registry)."""
    environ = os.environ if environ is None else environ
    named = environ.get(REGISTRY_VAR)
    return Path(named).expanduser().resolve() if named else None


def prepare_dagster_home(path: Path = DAGSTER_HOME, forget: bool = False) -> Path:
    """A project-local DAGSTER_HOME shared by the demo and `dagster dev`; telemetry off (offline).

    ``forget``: the emulator started empty, so the history (materializations of runs it no longer
    has, the runs sensor's cursor) describes an mParticle that is gone; it is cleared.
    """
    if forget and path.exists():
        stale = [child for child in path.iterdir() if child.name != "dagster.yaml"]
        for child in stale:
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        if stale:
            print(f"  the emulator started empty: cleared the earlier Dagster history in {path}")
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return path


def _job_of(defs: dg.Definitions, key: dg.AssetKey) -> str:
    """The sync job that materializes ``key`` (see docs/jobs-and-schedules.md)."""
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("wsync_") and key in job.asset_layer.executable_asset_keys:
            return job.name
    raise KeyError(f"no sync job materializes {key.to_user_string()}")


def plan(
    defs: dg.Definitions, components: Sequence[WarehouseSyncComponent], now: Any
) -> list[Step]:
    """The latest closed partition of each interval sync (hourly: the last few, in one run)."""
    steps = []
    for spec, key in (pair for c in components for pair in c.sync_keys()):
        job = _job_of(defs, key)
        if not spec.schedule.is_interval:
            steps.append(Step(spec, key, job, ()))
            continue
        partitions = defs.resolve_assets_def(key).partitions_def
        assert partitions is not None
        keys = partitions.get_partition_keys(current_time=now)
        take = HOURLY_BACKFILL if spec.schedule.interval == "hourly" else 1
        steps.append(Step(spec, key, job, tuple(keys[-take:])))
    return steps


def _create_run(defs: dg.Definitions, step: Step, instance: dg.DagsterInstance) -> dg.DagsterRun:
    """The step's run of its sync job (not started), under the local code location's job."""
    return create_job_run(
        defs.resolve_job_def(step.job),  # resolved with the definitions' resources bound
        step.key,
        step.partition_keys,
        instance=instance,
        origin=job_origin(LOCAL_LOCATION, step.job, str(PROJECT_ROOT)),
        # Our own INFO lines (pre-flight, reconcile) and warnings; not Dagster's step-by-step DEBUG.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )


def materialize(defs: dg.Definitions, step: Step, instance: dg.DagsterInstance) -> RunOutcome:
    """One run of the step's sync job, executed in this process."""
    run = _create_run(defs, step, instance)
    execute_job_run(defs.resolve_job_def(step.job), run, instance)
    return run_outcome(instance, run.run_id)


def report_source_tables(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Record the freshly seeded source tables as updated (what a dbt or Fivetran run would do), so
    the lineage shows them materialized and automation downstream of them sees the change."""
    for spec in defs.resolve_all_asset_specs():
        if DagsterKeys.TABLE_NAME in spec.metadata:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=spec.key, description="Seeded by the demo (local sample warehouse)."
                )
            )


def _summary_rows(outcome: RunOutcome) -> list[tuple[str, ...]]:
    rows = []
    for materialization in outcome.materializations:
        meta = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        rows.append(
            (
                materialization.asset_key.path[-1],
                materialization.partition or "-",
                f"{meta.get('preflight/rows', 0):,}",
                str(meta.get(MParticle.RUN_ID, "")),
                str(meta.get(MParticle.RUN_TYPE, "")),  # materialized runs all succeeded
                f"{meta.get('mparticle/records_extracted', 0):,}",
                f"{meta.get('mparticle/records_mapped', 0):,}",
            )
        )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(line.format(*row) for row in [header, *rows])


def _profile_text(profile: Profile) -> str:
    identities = ", ".join(f"{i.type}={i.value}" for i in profile.user_identities)
    attributes = "\n".join(
        f"      {name}: {value}" for name, value in sorted(profile.user_attributes.items())
    )
    return f"  MPID {profile.mpid}  ({identities})\n{attributes}"


def enriched_profiles(mparticle: MParticleResource, emulator_url: str) -> list[Profile]:
    """The profiles with the most attributes, each read back through the Profile API."""
    stored = EmulatorControl(emulator_url).profiles()
    richest = sorted(stored, key=lambda p: (-len(p.get("user_attributes") or {}), p["mpid"]))
    with mparticle.open_client() as client:
        return [client.get_profile(int(p["mpid"])) for p in richest[:SHOWN_PROFILES]]


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in os.environ (where dagster.EnvVar reads secrets at run time), then restored."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(
    workdir: Path = WORKDIR,
    dagster_home: Path = DAGSTER_HOME,
    sample: SampleConfig | None = None,
    manual_clock: bool = False,
    registry_source: Path | None = None,
    seed: Path | None = None,
) -> int:
    """Run the demo; 0 when every sync succeeded, 1 with an explanation otherwise.

    ``seed``: a folder of your own tables loaded after the sample (``python -m wsync_dagster.local
    demo`` passes :func:`seed_source`)."""
    started = time.monotonic()
    # The single-run backfill policy is deliberate; keep Dagster's "beta" notice out of the demo.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    print("Starting the embedded default: Snowflake stand-in + mParticle emulator on 127.0.0.1 ...")
    try:
        with LocalStack(workdir, sample, registry_source, manual_clock, seed=seed) as stack:
            environment = stack.environment()
            with _environment(environment):
                home = prepare_dagster_home(dagster_home, forget=stack.fresh)
                return _demo(stack, environment, home, started)
    except (
        LocalServiceError,
        SeedError,
        SettingsError,
        RegistryError,
        WarehouseSyncError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _outcome(step: Step, outcome: RunOutcome) -> tuple[list[tuple[str, ...]], list[str]]:
    failure = [] if outcome.success else [f"{step.describe()}: {outcome.failure}"]
    return _summary_rows(outcome), failure


def _materialize_rotating(
    defs: dg.Definitions,
    workspace: Workspace,
    steps: Sequence[Step],
    instance: dg.DagsterInstance,
    environment: Mapping[str, str],
    dagster_home: Path,
) -> tuple[list[tuple[str, ...]], list[str]]:
    """The rotating syncs, as many at once as there are free slots, as the deployment's Dagster
    pool (:data:`~wsync_dagster.sync.engine.rotation.ROTATING_POOL`) lets them: each next run
    starts when one ends (sync/engine/rotation.py takes and frees the slots in mParticle).

    Each is a run of its sync job in the demo's instance, executed by its own run worker process
    (:func:`wsync_dagster.local.materialize.execute_in_workers`: runs must not share a process).
    Started all at once, the runs beyond the free slots would wait in mParticle's count: on the
    manual clock each waiting run moves the shared clock forward while the runs holding the slots
    work at the machine's pace, and on a busy machine waits ran out of their hours of emulator time
    before a slot was freed.
    """
    if not steps:
        return [], []
    slots = rotating_pool_limit(workspace)
    print(
        f"Materializing {len(steps)} rotating syncs, {slots} at a time: they take turns on the "
        f"{slots} active-pipeline slot(s) the permanent syncs leave ...",
        flush=True,
    )
    runs = [_create_run(defs, step, instance) for step in steps]
    execute_in_workers(
        runs,
        instance=instance,
        dagster_home=dagster_home,
        location_module=LOCAL_LOCATION,
        environment=environment,
        at_once=slots,
    )
    rows: list[tuple[str, ...]] = []
    failures: list[str] = []
    for step, run in zip(steps, runs, strict=True):
        rows_of, failure = _outcome(step, run_outcome(instance, run.run_id))
        rows += rows_of
        failures += failure
    return rows, failures


def _print_activity(emulator_url: str, limits: Limits, rotating: Sequence[SyncSpec]) -> None:
    """The most pipelines ever active at once, from the emulator's activity log."""
    activity = EmulatorControl(emulator_url).activity()
    ids = {s.resolved_pipeline_id for s in rotating}
    left = sorted(ids & set(activity["active"]))
    turns = sum(1 for e in activity["events"] if e["active"] and e["pipeline_id"] in ids)
    print(
        f"\nPeak active pipelines in the workspace: {activity['peak_active']} (limit "
        f"{limits.max_active_pipelines}); {len(ids)} rotating pipelines were "
        f"activated {turns} time(s) and are "
        + (f"still active: {', '.join(left)}" if left else "all paused again")
    )


def _print_stack(stack: LocalStack) -> None:
    """What was seeded, and where the stand-ins listen (docs/local.md: query the warehouse)."""
    assert stack.summary is not None
    for table in stack.summary.tables:
        print(f"  seeded {table.name}: {table.rows:,} rows")
    for seeded in stack.seeded:
        print(f"  {seeded.describe()}")
    for line in stack.addresses():
        print(f"  {line}")


def _demo(
    stack: LocalStack, environment: Mapping[str, str], dagster_home: Path, started: float
) -> int:
    _print_stack(stack)
    defs = build_local_definitions(environment)
    components = local_sync_components(environment)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    report_source_tables(defs, instance)

    steps = plan(defs, components, stack.sample.anchor)
    rows: list[tuple[str, ...]] = []
    failures: list[str] = []
    for step in [s for s in steps if not s.spec.rotate]:
        print(f"Materializing {step.describe()} with {step.job} ...", flush=True)
        rows_of, failure = _outcome(step, materialize(defs, step, instance))
        rows += rows_of
        failures += failure
    workspace = Workspace.of(c.registry for c in components)
    rotating = [s for s in steps if s.spec.rotate]
    rows_of, failure = _materialize_rotating(
        defs, workspace, rotating, instance, environment, dagster_home
    )
    rows += rows_of
    failures += failure

    _print_activity(stack.emulator_url, workspace.limits, [s.spec for s in rotating])
    print()
    header = ("asset", "partition", "pre-flight", "run id", "run type", "extracted", "mapped")
    print(_table(header, rows))
    if failures:
        print("\nFailed:\n" + "\n".join(failures), file=sys.stderr)
        return 1

    mparticle = (defs.resources or {})["mparticle"]
    assert isinstance(mparticle, MParticleResource)
    print("\nEnriched profiles, read back through the Profile API:")
    for profile in enriched_profiles(mparticle, stack.emulator_url):
        print(_profile_text(profile))
    print(
        f"\nDone in {time.monotonic() - started:.1f} s; stopped the local stack. "
        "See it in the Dagster UI: python3 dev.py ui"
    )
    return 0


def run_ui(extra: Sequence[str]) -> int:
    """`dg dev` on the local code location, with the demo's DAGSTER_HOME; ``extra`` goes to it."""
    print("Starting the embedded default for the Dagster UI ...")
    try:
        with LocalStack(WORKDIR, registry_source=registry_override(), seed=seed_source()) as stack:
            environment: Mapping[str, str] = {
                **os.environ,
                **stack.environment(),
                "DAGSTER_HOME": str(prepare_dagster_home(forget=stack.fresh)),
            }
            host = [] if {"-h", "--host"} & set(extra) else ["--host", "127.0.0.1"]
            command = [
                str(Path(sys.executable).parent / "dg"), "dev",
                "-m", LOCAL_LOCATION, *host, *extra,
            ]  # fmt: skip
            _print_stack(stack)
            print("  Ctrl-C stops the UI and the stack; `python3 dev.py launch` runs a job on it")
            try:
                return run_in_foreground(command, dict(environment), PROJECT_ROOT)
            except KeyboardInterrupt:
                return 0
    except (LocalServiceError, SeedError, RegistryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _dg_launch(environment: Mapping[str, str], dagster_home: Path, extra: Sequence[str]) -> int:
    command = [str(Path(sys.executable).parent / "dg"), "launch", "-m", LOCAL_LOCATION, *extra]
    env = {**os.environ, **environment, "DAGSTER_HOME": str(dagster_home)}
    print(f"$ dg launch -m {LOCAL_LOCATION} {' '.join(extra)}", flush=True)
    try:
        return subprocess.run(command, env=env, cwd=PROJECT_ROOT).returncode
    except KeyboardInterrupt:
        return 130


def run_launch(
    extra: Sequence[str],
    workdir: Path = WORKDIR,
    dagster_home: Path = DAGSTER_HOME,
    seed: Path | None = None,
    registry_source: Path | None = None,
) -> int:
    """``dg launch`` on the local code location (``extra``: its arguments, e.g. ``--job
    wsync_daily_customer_scores_job --partition 2026-11-30``), the run recorded in the demo's
    DAGSTER_HOME.

    Runs against the stack ``python3 dev.py ui`` keeps on ``workdir`` when there is one (the UI
    shows the run at once); otherwise starts the stack for the launch and stops it afterwards.
    """
    if (attached := running_stack(workdir)) is not None:
        print(f"Using the local stack of process {attached.pid} (python3 dev.py ui) ...")
        return _dg_launch(attached.environment, dagster_home, extra)
    print("Starting the embedded default for the launch (no `python3 dev.py ui` is running) ...")
    try:
        with LocalStack(workdir, registry_source=registry_source, seed=seed) as stack:
            _print_stack(stack)
            home = prepare_dagster_home(dagster_home, forget=stack.fresh)
            return _dg_launch(stack.environment(), home, extra)
    except (LocalServiceError, SeedError, RegistryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
