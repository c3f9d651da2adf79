"""The deployment smoke's verdict (:mod:`~wsync_dagster.local.deploy.smoke`): what it launched, the
checks on what PostgreSQL and the emulator recorded, and the report it prints.

A run the daemon retried automatically (deploy/dagster.yaml's ``run_retries``: a run that never
started, or whose worker died) counts by its last attempt; the failed attempts are reported with
their error, and what they recorded before failing is left out of the per-partition counts, as for
the run the code-server restart interrupts.
"""

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.deploy import records
from wsync_dagster.local.deploy.cluster import LocalDeployment, wait_until
from wsync_dagster.local.process import LocalServiceError
from wsync_dagster.local.resources import emulator_mparticle
from wsync_dagster.mparticle import RunState
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.partitions import partitions_for
from wsync_dagster.sync.engine.rotation import rotating_pool_limit
from wsync_dagster.sync.observe.batch import partition_of
from wsync_dagster.sync.registry.specs import SyncSpec

SENSOR_CATCH_UP_SECONDS = 120.0  # the sensor ticks every 30 s; a tick's batch is bounded


@dataclass
class Launched:
    """What the smoke queued for one sync."""

    spec: SyncSpec
    partitions: tuple[str, ...]
    run_ids: list[str] = field(default_factory=list)  # the runs queued (a backfill's: its run)
    backfill_id: str | None = None
    interrupted: list[str] = field(default_factory=list)  # by the code-server restart

    @property
    def what(self) -> str:
        schedule = self.spec.schedule
        if self.backfill_id is not None:
            return f"{schedule.interval}, backfill of {len(self.partitions)} partitions"
        if schedule.is_interval:
            return f"{schedule.interval}, {len(self.partitions)} partitions"
        return f"{schedule.interval}{', rotating' if self.spec.rotate else ''}"


@dataclass
class Verdict:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # one line per sync launched
    failures: list[str] = field(default_factory=list)  # one line per failed run
    started: float = field(default_factory=time.monotonic)

    def mark(self, what: str) -> None:
        self.notes.append(f"{time.monotonic() - self.started:5.0f} s  {what}")

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _name, ok, _detail in self.checks)

    def lines(self) -> list[str]:
        marks = [
            f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}" for name, ok, detail in self.checks
        ]
        runs = ["[deploy] runs, one line per sync launched:", *(f"  {r}" for r in self.runs)]
        failed = [f"[deploy] failed runs: {len(self.failures) or 'none'}"]
        failed += [f"  {line}" for line in self.failures]
        return [*marks, *(f"  - {note}" for note in self.notes), *runs, *failed]


def backfill_run_ids(connection: Any, backfill_id: str) -> list[str]:
    return [r.run_id for r in records.runs(connection).values() if r.backfill_id == backfill_id]


def launched_runs(connection: Any, item: Launched) -> list[list[str]]:
    """Each run the smoke (or the backfill) launched for ``item``, with its automatic retries."""
    run_ids = list(item.run_ids)
    if item.backfill_id is not None:
        run_ids += backfill_run_ids(connection, item.backfill_id)
    return [records.attempts(connection, run_id) for run_id in run_ids]


def judge(
    deployment: LocalDeployment, connection: Any, launched: list[Launched], verdict: Verdict
) -> None:
    """The checks on what PostgreSQL and the emulator recorded, and the per-sync report."""
    all_runs = records.runs(connection)
    triggers = [
        r for r in EmulatorControl(deployment.stack.emulator_url).request_log()
        if r["method"] == "POST" and "/pipelines/" in r["path"]
    ]  # fmt: skip
    for item in launched:
        name = item.spec.name
        chains = launched_runs(connection, item)
        if item.backfill_id is not None:
            verdict.check(
                f"{name}: backfill submitted exactly one run",
                len(chains) == 1,
                f"{len(chains)} run(s) for {len(item.partitions)} partitions",
            )
        # A failed attempt that was retried counts by its retry, like an interrupted run.
        item.interrupted += [r for chain in chains for r in chain[:-1] if r not in item.interrupted]
        rows = [all_runs[r] for chain in chains for r in chain if r in all_runs]
        final = [all_runs[c[-1]] for c in chains if c[-1] in all_runs]
        final = [r for r in final if r.run_id not in item.interrupted]
        bad = [f"{r.run_id[:8]}={r.status}" for r in final if r.status != "SUCCESS"]
        verdict.check(
            f"{name}: every run succeeded, itself or by its automatic retry",
            not bad and bool(final),
            ", ".join(bad),
        )
        if not item.spec.rotate:  # the rotating syncs share one pool: judged together below
            pairs = records.overlaps(rows)
            verdict.check(
                f"{name}: pool {naming.pool_name(item.spec)} ran one at a time",
                not pairs,
                f"{len(rows)} run(s)"
                + (f", overlapping: {describe(rows, pairs)}" if pairs else ""),
            )
        mine = judge_materializations(connection, item, triggers, verdict)
        verdict.runs.append(run_line(item, chains, all_runs, mine))
    judge_rotation(deployment, connection, launched, verdict)
    report_failures(connection, launched, verdict)


def run_line(
    item: Launched, chains: list[list[str]], all_runs: dict[str, records.RunRow], triggers: int
) -> str:
    """``name (what): RESULT: run STATUS[ -> retry STATUS], ...[; N trigger POST(s)]``."""

    def status(run_id: str) -> str:
        row = all_runs.get(run_id)
        return row.status if row is not None else "MISSING"

    finals = [status(c[-1]) for c in chains if c[-1] not in item.interrupted]
    result = "SUCCESS" if finals and all(s == "SUCCESS" for s in finals) else "FAILURE"
    runs = ", ".join(
        " -> ".join(f"{r[:8]} {status(r)}" for r in chain)
        + (" (interrupted)" if chain[-1] in item.interrupted else "")
        for chain in chains
    )
    line = f"{item.spec.name} ({item.what}): {result}: {runs or 'no run'}"
    return line if item.spec.schedule.is_interval else f"{line}; {triggers} trigger POST(s)"


def report_failures(connection: Any, launched: list[Launched], verdict: Verdict) -> None:
    """Every run of the deployment that did not succeed, with its error (all of them, not only the
    smoke's: a run something else started fails the same way)."""
    owner = {}
    for item in launched:
        for chain in launched_runs(connection, item):
            owner |= {run_id: item.spec.name for run_id in chain}
    for row in sorted(records.runs(connection).values(), key=lambda r: r.start or 0.0):
        if row.status in ("FAILURE", "CANCELED"):
            message = records.failure_message(connection, row.run_id) or "(no failure event)"
            retry = records.run_tags(connection, row.run_id).get(records.AUTO_RETRY_RUN_ID)
            then = f" [retried as {retry[:8]}]" if retry else ""
            sync = owner.get(row.run_id, "?")
            verdict.failures.append(f"{row.run_id[:8]} {sync} {row.status}{then}: {message}")


def judge_rotation(
    deployment: LocalDeployment, connection: Any, launched: list[Launched], verdict: Verdict
) -> None:
    """The rotating syncs, together: their shared pool held them to the free slots, mParticle never
    counted more active pipelines than it allows, and every rotating pipeline ends paused."""
    rotating = [item for item in launched if item.spec.rotate]
    if not rotating:
        return
    workspace = deployment.stack.served_workspace()
    limit = rotating_pool_limit(workspace)
    all_runs = records.runs(connection)
    rows = [
        all_runs[run_id]
        for item in rotating
        for chain in launched_runs(connection, item)
        for run_id in chain
        if run_id in all_runs
    ]
    peak = records.peak_concurrency(rows)
    verdict.check(
        f"pool {naming.ROTATING_POOL} held the {len(rotating)} rotating syncs to {limit} at once",
        peak <= limit,
        f"peak {peak} concurrent run(s) of {len(rows)}",
    )
    activity = EmulatorControl(deployment.stack.emulator_url).activity()
    allowed = workspace.limits.max_active_pipelines
    left = sorted({item.spec.resolved_pipeline_id for item in rotating} & set(activity["active"]))
    verdict.check(
        "mParticle never had more active pipelines than it allows; rotating ones end paused",
        activity["peak_active"] <= allowed and not left,
        f"peak {activity['peak_active']} active of {allowed}; left active: {left or 'none'}",
    )


def describe(rows: list[records.RunRow], pairs: list[tuple[str, str]]) -> str:
    by_id = {r.run_id: r for r in rows}
    return "; ".join(
        " vs ".join(
            f"{by_id[i].run_id[:8]} {by_id[i].status} {by_id[i].start:.1f}-{by_id[i].end:.1f}"
            for i in pair
        )
        for pair in pairs
    )


def judge_materializations(
    connection: Any, item: Launched, triggers: list[dict[str, Any]], verdict: Verdict
) -> int:
    """The materialization checks of ``item``; the trigger POSTs its pipeline received."""
    name = item.spec.name
    pipeline = item.spec.resolved_pipeline_id
    trigger_path = re.compile(rf"/pipelines/{re.escape(pipeline)}(/trigger)?$")
    mine = [t for t in triggers if trigger_path.search(t["path"])]
    every = records.materializations(connection, naming.asset_key(item.spec).path)
    # A run killed by the code-server restart may have recorded its partition before it died.
    rows = [row for row in every if row[0] not in item.interrupted]
    if item.spec.schedule.is_interval:
        # Each mechanism records a partition at most once: Dagster runs (run id set) and the runs
        # sensor (no run id). Both may hold the same mParticle run when a partition the sensor
        # already recorded is materialized again on purpose (the rerun after the code-server
        # restart); "one mParticle run per window" below checks that they agree.
        counts = records.per_partition([r for r in rows if r[0]])
        by_sensor = records.per_partition([r for r in rows if not r[0]])
        wanted = set(item.partitions)
        lost = sorted(wanted - set(counts) - set(by_sensor))
        doubled = sorted(
            k
            for k, n in (counts + by_sensor).items()
            if n > 1 and (counts[k] > 1 or by_sensor[k] > 1)
        )
        verdict.check(
            f"{name}: one materialization per partition",
            not lost and not doubled,
            f"{len(wanted & set(counts))}/{len(wanted)} partitions, lost {lost}, doubled {doubled}",
        )
        runs_per_window = {p: {mp for _r, q, mp in every if q == p} for p in counts}
        several = sorted(p for p, ids in runs_per_window.items() if len(ids) != 1)
        verdict.check(
            f"{name}: one mParticle run per window, no trigger",
            not mine and not several,
            f"{len(mine)} trigger POST(s); windows with other than one run: {several}",
        )
    else:
        verdict.check(
            f"{name}: one trigger, one materialization",
            len(mine) == 1 and len(rows) == 1,
            f"{len(mine)} trigger POST(s), {len(rows)} materialization(s)",
        )
    return len(mine)


def successful_partitions(deployment: LocalDeployment, spec: SyncSpec) -> set[str]:
    """The partitions of ``spec`` whose mParticle run succeeded, as mParticle lists them."""
    partitions = partitions_for(spec.schedule)
    with emulator_mparticle(deployment.stack.emulator_url, manual_clock=False).open_client() as c:
        runs = list(c.iter_pipeline_runs(spec.resolved_pipeline_id, page_size=500))
    keys = (partition_of(partitions, r) for r in runs if r.state is RunState.SUCCESS)
    return {key for key in keys if key is not None}


def _recorded(connection: Any, path: Sequence[str]) -> set[str]:
    return {p for _run, p, _mp in records.materializations(connection, path)}


def judge_sensor(
    deployment: LocalDeployment, connection: Any, launched: list[Launched], verdict: Verdict
) -> None:
    """The runs sensor records every run mParticle made, the catch-up runs no Dagster run asked
    for included: each successful run's partition ends up materialized, by a run or the sensor."""
    for item in launched:
        if not item.spec.schedule.is_interval:
            continue
        expected = successful_partitions(deployment, item.spec)
        path = naming.asset_key(item.spec).path
        with contextlib.suppress(LocalServiceError):
            wait_until(
                lambda want=expected, path=path: want <= _recorded(connection, path),
                SENSOR_CATCH_UP_SECONDS,
                "the runs sensor",
            )
        found = _recorded(connection, path)
        by_sensor = {p for run, p, _mp in records.materializations(connection, path) if not run}
        verdict.check(
            f"{item.spec.name}: the runs sensor recorded mParticle's other runs",
            found == expected and bool(by_sensor - set(item.partitions)),
            f"{len(expected)} successful mParticle runs; {len(found)} partitions materialized, "
            f"{len(by_sensor)} of them by the sensor; missing {sorted(expected - found)[:5]}, "
            f"never synced {sorted(found - expected)[:5]}",
        )
