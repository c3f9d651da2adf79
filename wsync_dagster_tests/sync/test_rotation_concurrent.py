"""Acceptance: 2 interval syncs and 12 rotating on-demand syncs, the 12 materialized at once.

In-process ``materialize`` cannot enforce a Dagster pool, so all 12 reach mParticle together: this
is the worst case the pool normally spares mParticle. mParticle's count and its 400 on a sixth
active pipeline keep the workspace within 5; every rotating sync waits for a slot and succeeds.
"""

from concurrent.futures import ThreadPoolExecutor

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster_tests.sync.conftest import failure_message, materialize, snowflake_for
from wsync_dagster_tests.sync.rotating import hooked_mparticle, with_rotating

ROTATING = 12


def test_twelve_rotating_syncs_at_once_never_make_a_sixth_active_pipeline(
    registry, local_snowflake: LocalSnowflake, slow_control: EmulatorControl
) -> None:
    rotating = with_rotating(registry, ROTATING, ("customer_scores", "ticket_activity"))
    resources = {
        "snowflake": snowflake_for(local_snowflake),
        # Every waiting thread moves the shared manual clock: give slot waits a day of it. The
        # threads share one interpreter, so holders and waiters slow down together: the 12 took
        # 6.5 h of it on a quiet 2-core machine and 6.8 h with four busy loops beside the test.
        "mparticle": hooked_mparticle(
            slow_control, poll_interval_seconds=30.0, max_poll_interval_seconds=60.0,
            run_timeout_seconds=24 * 3600.0,
        ),
    }  # fmt: skip
    for name, key in (("customer_scores", "2026-11-27"), ("ticket_activity", "2026-11-28-10:00")):
        interval = materialize(rotating, resources, name, [key])
        assert interval.success, failure_message(interval)

    names = [s.name for s in rotating.syncs if s.rotate]
    with ThreadPoolExecutor(max_workers=ROTATING) as pool:
        results = list(pool.map(lambda n: materialize(rotating, resources, n), names))
    failed = [failure_message(r) for r in results if not r.success]
    assert failed == []

    activity = slow_control.activity()
    assert max(e["active_count"] for e in activity["events"]) == activity["peak_active"]
    assert activity["peak_active"] <= 5
    assert activity["active"] == ["wsync-customer-scores", "wsync-ticket-activity"]
    turns = [e for e in activity["events"] if e["active"] and "rotating" in e["pipeline_id"]]
    assert len(turns) >= ROTATING  # each rotating pipeline was active at least once
    refused = [
        e
        for e in slow_control.request_log()
        if e["method"] == "PUT" and e["status"] == 400 and "rotating" in e["path"]
    ]
    print(f"peak {activity['peak_active']}; {len(refused)} activations refused and retried")
