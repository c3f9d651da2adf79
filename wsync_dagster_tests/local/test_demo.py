"""The main job on the embedded default, and the local registry that keeps it from going stale."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from wsync_dagster.local.demo import run_demo
from wsync_dagster.local.sample_data import SampleConfig, current_hour
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.local.stack import local_registry, rebase_schedule, write_registry
from wsync_dagster.sync.assets.naming import (
    CHECK_COLUMN_SCHEMA,
    CHECK_MATCHES_REGISTRY,
    CHECK_PREFLIGHT_PARITY,
    CHECK_ROW_VOLUME,
    CHECK_ROWS_MAPPED,
)
from wsync_dagster.sync.engine.reconcile import ReconcileError, check_catch_up
from wsync_dagster.sync.registry.cadences import cadence
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Schedule, load_registry

ANCHOR = datetime(2027, 3, 14, 9, 0, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("interval", "start", "expected"),
    [
        (
            "hourly",
            datetime(2026, 1, 1, 0, 15, tzinfo=UTC),
            datetime(2027, 3, 11, 9, 15, tzinfo=UTC),
        ),
        ("daily", datetime(2026, 1, 1, 6, 30, tzinfo=UTC), datetime(2027, 3, 4, 6, 30, tzinfo=UTC)),
        (
            "weekly",
            datetime(2026, 1, 7, 12, 5, tzinfo=UTC),
            datetime(2027, 2, 10, 12, 5, tzinfo=UTC),
        ),
        (
            "monthly",
            datetime(2026, 1, 4, 0, 0, tzinfo=UTC),
            datetime(2026, 12, 4, 0, 0, tzinfo=UTC),
        ),
        (
            "on_demand",
            datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
            datetime(2027, 3, 4, 0, 0, tzinfo=UTC),
        ),
    ],
)
def test_rebasing_keeps_the_grid_and_lands_within_catch_up(interval, start, expected) -> None:
    moved = rebase_schedule(Schedule(interval=interval, start=start), ANCHOR)
    assert moved.start == expected
    assert (moved.start.minute, moved.start.hour if interval != "hourly" else 0) == (
        start.minute,
        start.hour if interval != "hourly" else 0,
    )
    if interval == "weekly":
        assert moved.start.weekday() == start.weekday()
    if (catch_up := cadence(interval).catch_up) is not None:
        assert moved.start >= catch_up.earliest_start(ANCHOR)


def test_the_local_registry_follows_the_seeded_data() -> None:
    rebased = local_registry(load_registry(SAMPLE_REGISTRY), ANCHOR)
    assert rebased.sync("ticket_activity").schedule.start == ANCHOR - timedelta(days=3)
    assert rebased.sync("customer_scores").schedule.start == datetime(2027, 3, 4, tzinfo=UTC)
    assert rebased.connection.user == "fake"
    assert [s.sql for s in rebased.syncs] == [s.sql for s in load_registry(SAMPLE_REGISTRY).syncs]


def test_the_demo_still_runs_when_the_registry_dates_are_weeks_old(tmp_path: Path, capsys) -> None:
    """Weeks after syncs.yaml was written, its hourly start is beyond mParticle's 7-day catch-up.

    Moving the registry's dates back is the same as moving the clock ahead (Dagster's own clock
    cannot be moved). The demo must not care: it rebases the registry onto the data it seeds.
    """
    stale = load_registry(SAMPLE_REGISTRY)
    stale = stale.model_copy(
        update={
            "syncs": tuple(
                s.model_copy(
                    update={"schedule": s.schedule.model_copy(
                        update={"start": s.schedule.start - timedelta(weeks=6)}
                    )}
                )
                for s in stale.syncs
            )
        }
    )  # fmt: skip
    source = write_registry(stale, tmp_path / "stale-syncs.yaml")
    anchor = current_hour()
    with pytest.raises(ReconcileError, match="older than mParticle's hourly catch-up limit"):
        check_catch_up(stale.sync("ticket_activity"), anchor)

    home = tmp_path / "dagster_home"
    code = run_demo(
        tmp_path / "work",
        home,
        SampleConfig(anchor=anchor),
        manual_clock=True,
        registry_source=source,
    )
    out = capsys.readouterr().out
    assert code == 0, out
    last_hour = (anchor - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M")
    assert re.search(rf"^ticket_activity +{last_hour} ", out, re.M)
    assert "churn_risk_alerts" in out and "Enriched profiles" in out
    rotating = [s.name for s in stale.syncs if s.rotate]
    assert len(stale.syncs) >= 8 and len(rotating) >= 6
    assert all(re.search(rf"^{name} +- +[\d,]+ +\d+ ", out, re.M) for name in rotating), out
    peak = re.search(r"Peak active pipelines in the workspace: (\d) \(limit 5\)", out)
    assert peak is not None and int(peak.group(1)) <= 5
    assert "rotating pipelines were activated" in out and "all paused again" in out
    assert out.count("  MPID ") == 3

    instance = dg.DagsterInstance.from_config(str(home))
    hourly = instance.get_materialized_partitions(dg.AssetKey(["mparticle", "ticket_activity"]))
    assert len(hourly) == 6 and last_hour in hourly
    daily = instance.get_materialized_partitions(dg.AssetKey(["mparticle", "customer_scores"]))
    assert daily == {(anchor - timedelta(days=1)).strftime("%Y-%m-%d")}


def _rotating_registry(slots: int):
    """The sample's rotating syncs alone, on a workspace of ``slots``."""
    sample = load_registry(SAMPLE_REGISTRY)
    return sample.model_copy(
        update={
            "syncs": tuple(s for s in sample.syncs if s.rotate),
            "limits": Limits(max_active_pipelines=slots),
        }
    )


def test_rotating_syncs_run_as_jobs_of_the_demo_instance_with_their_checks(
    tmp_path: Path, capfd
) -> None:
    """Six rotating syncs on two slots, two run workers at a time: each is a run of
    wsync_on_demand_job in the demo's DAGSTER_HOME (listed in the UI's Runs page), its checks
    evaluated, no run waited for a slot in mParticle, and no process prints a traceback (runs in
    threads of one process deadlocked or printed sqlite3 errors)."""
    registry = _rotating_registry(slots=2)
    assert len(registry.syncs) == 6
    source = write_registry(registry, tmp_path / "rotating.yaml")
    home = tmp_path / "dagster_home"
    code = run_demo(
        tmp_path / "work", home, SampleConfig(anchor=current_hour()), True, registry_source=source
    )
    out, err = capfd.readouterr()
    assert code == 0, out + err
    for trouble in ("Traceback", "Exception in thread", "ProgrammingError", "Fatal Python error"):
        assert trouble not in out + err, out + err
    assert "Materializing 6 rotating syncs, 2 at a time" in out
    # Started all at once, the runs beyond the slots waited in mParticle's count, each moving the
    # shared manual clock: on a busy CI machine two of seven ran out of their 4 hours of it before
    # a slot was freed.
    assert "waiting for a slot" not in out and "tries (the workspace was full)" not in out, out
    peak = re.search(r"Peak active pipelines in the workspace: (\d) \(limit 2\)", out)
    assert peak is not None and int(peak.group(1)) <= 2, out

    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="wsync_on_demand_job"))
    keys = {dg.AssetKey(["mparticle", s.name]) for s in registry.syncs}
    assert len(runs) == 6 and {k for r in runs for k in r.asset_selection or ()} == keys
    assert all(r.status is dg.DagsterRunStatus.SUCCESS for r in runs)
    checks = {
        CHECK_PREFLIGHT_PARITY,
        CHECK_ROWS_MAPPED,
        CHECK_ROW_VOLUME,
        CHECK_COLUMN_SCHEMA,
        CHECK_MATCHES_REGISTRY,  # passed by each materialization after its reconcile
    }
    for run in runs:
        evaluations = instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        data = [e.dagster_event.asset_check_evaluation_data for e in evaluations if e.dagster_event]
        assert {d.check_name for d in data} == checks, run.asset_selection
        assert all(d.passed for d in data)
        materialized = instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        assert len(materialized) == 1
