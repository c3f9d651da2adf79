"""The read-only plan against the live emulator and the sample warehouse: actions, drift, pre-flight
verdicts, refusals, windows, credentials, and that it writes nothing."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.local.resources import LOCAL_MPARTICLE, local_snowflake_resource
from wsync_dagster.mparticle import DataModel, WarehouseSyncClient
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.assets.partitions import partitions_for
from wsync_dagster.sync.engine.pending import closed_windows
from wsync_dagster.sync.engine.plan import Check, WorkspacePlan, plan_workspace
from wsync_dagster.sync.engine.plan_report import document, render_text
from wsync_dagster.sync.engine.reconcile import reconcile
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, Schedule
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import failure_message, mparticle_for, other_pipeline

TOKEN_PATH = "/oauth/token"
DAILY, HOURLY, ON_DEMAND = "customer_scores", "ticket_activity", "churn_risk_alerts"


def writes(control: EmulatorControl) -> list[tuple[str, str]]:
    """The POST/PUT/DELETE calls in the emulator's request log, but the OAuth token exchange
    (a POST that writes nothing in the workspace)."""
    return [
        (e["method"], e["path"])
        for e in control.request_log()
        if e["method"] in ("POST", "PUT", "DELETE") and e["path"] != TOKEN_PATH
    ]


def workspace_objects(client: WarehouseSyncClient) -> dict[str, Any]:
    """Everything mParticle holds of the workspace's connections, data models and pipelines."""
    return {
        "connections": [c.model_dump(mode="json") for c in client.list_connections()],
        "data_models": [m.model_dump(mode="json") for m in client.list_data_models()],
        "pipelines": [p.model_dump(mode="json") for p in client.list_pipelines()],
    }


def plan_of(
    registry: Registry, resources: dict[str, Any], mparticle: Any = None, **options: Any
) -> WorkspacePlan:
    mparticle = mparticle or resources["mparticle"]
    with mparticle.open_client() as client:
        return plan_workspace(
            client, resources["snowflake"], Workspace.of([registry]), mparticle.now, **options
        )


def set_up(registry: Registry, resources: dict[str, Any], control: EmulatorControl) -> None:
    """What materializations would have made: every sync reconciled; catch-up run."""
    with resources["mparticle"].open_client() as client:
        for spec in registry.syncs:
            reconcile(client, registry, spec, SAMPLE_ANCHOR)
    control.settle()


def with_sync(registry: Registry, name: str, **changes: Any) -> Registry:
    spec = registry.sync(name).model_copy(update=changes)
    return registry.model_copy(
        update={"syncs": tuple(spec if s.name == name else s for s in registry.syncs)}
    )


def actions(plan: WorkspacePlan) -> dict[str, list[str]]:
    return {s.name: [r.action for r in s.resources] for s in plan.syncs}


def test_a_fresh_workspace_plans_a_create_of_every_resource_and_writes_nothing(
    registry, resources, control
) -> None:
    control.clear_request_log()
    plan = plan_of(registry, resources)
    assert plan.exit_code == 2, render_text(plan)
    assert actions(plan) == {s.name: ["create"] * 3 for s in registry.syncs}
    assert all(c.ok for c in plan.checks), plan.checks
    assert writes(control) == []
    with resources["mparticle"].open_client() as client:
        assert workspace_objects(client) == {"connections": [], "data_models": [], "pipelines": []}
    # Secrets are named, never read: only "will be sent".
    text = render_text(plan)
    assert "password from MPARTICLE_SNOWFLAKE_PASSWORD: will be sent" in text
    assert "partner_feed_key from MPARTICLE_FEED_KEY_CRM: will be sent" in text
    assert LOCAL_MPARTICLE.feed_key not in text
    # A new hourly pipeline's catch-up windows are all pending, and pre-flighted in one count.
    hourly = next(s for s in plan.syncs if s.name == HOURLY)
    assert hourly.preflight.pending is not None and hourly.preflight.report is not None
    assert hourly.preflight.pending.pending == 72 == len(hourly.preflight.report.counts)
    assert hourly.preflight.report.queries == 2


def test_after_reconcile_nothing_changes_and_mparticle_is_left_exactly_as_it_was(
    registry, resources, control
) -> None:
    set_up(registry, resources, control)
    with resources["mparticle"].open_client() as client:
        before = workspace_objects(client)
    control.clear_request_log()
    plan = plan_of(registry, resources)
    assert plan.exit_code == 0, render_text(plan)
    assert writes(control) == []
    # The plan read the workspace with one listing per collection, whatever the number of syncs.
    listings = [e["path"] for e in control.request_log() if e["method"] == "GET"]
    for collection in ("connections", "data-models", "pipelines"):
        assert sum(p.endswith(f"/{collection}") for p in listings) == 1, collection
    assert not [p for p in listings if "/data-models/" in p or "/connections/" in p]
    with resources["mparticle"].open_client() as client:
        assert workspace_objects(client) == before
    # Every closed window has synced: each interval sync's pre-flight samples the latest one.
    daily = next(s for s in plan.syncs if s.name == DAILY).preflight
    assert daily.pending is not None and daily.pending.sample and daily.pending.pending == 0
    assert "sample window 2026-11-27" in render_text(plan)


def test_a_data_model_changed_behind_dagsters_back_is_an_update_that_names_the_field(
    registry, resources, control
) -> None:
    set_up(registry, resources, control)
    spec = registry.sync(DAILY)
    with resources["mparticle"].open_client() as client:
        model = client.get_data_model(spec.resolved_data_model_id)
        edited = model.sql_query.replace("LIFETIME_VALUE", "LIFETIME_VALUE * 2")
        client.update_data_model(
            DataModel.model_validate(model.model_dump() | {"sql_query": edited})
        )
    control.clear_request_log()
    plan = plan_of(registry, resources)
    assert plan.exit_code == 2
    assert actions(plan)[DAILY] == ["unchanged", "update", "unchanged"]
    changed = next(s for s in plan.syncs if s.name == DAILY).resources[1]
    assert [d.field for d in changed.drift] == ["sql_query"]
    assert changed.drift[0].current == edited and changed.drift[0].declared == spec.sql.strip()
    text = render_text(plan)
    assert "~ data model wsync-customer-scores-model: update" in text
    assert '-  LIFETIME_VALUE * 2 AS "lifetime_value",' in text
    assert '+  LIFETIME_VALUE AS "lifetime_value",' in text
    assert writes(control) == []
    # The plan is what a materialization's reconcile then does.
    with resources["mparticle"].open_client() as client:
        done = reconcile(client, registry, spec, SAMPLE_ANCHOR)
    assert [(c.kind, c.action, c.fields) for c in done.changes] == [
        ("connection", "unchanged", ()),
        ("data model", "updated", ("sql_query",)),
        ("pipeline", "unchanged", ()),
    ]
    assert plan_of(registry, resources).exit_code == 0


def test_a_record_limit_under_a_window_gives_the_message_a_materialization_gives(
    registry, resources, control
) -> None:
    tight = registry.model_copy(update={"limits": Limits(records_per_request={"daily": 100})})
    plan = plan_of(tight, resources, selected=[DAILY])
    assert plan.exit_code == 1
    refused = next(s for s in plan.syncs if s.name == DAILY).preflight.refused
    assert refused is not None
    assert refused.startswith("Pre-flight refused sync 'customer_scores'; nothing was sent")
    assert "the registry's daily limit is 100 per request" in refused
    # A materialization of the latest window refuses with the same lines.
    asset = next(a for a in build_sync_assets(tight) if a.key.path[-1] == DAILY)
    result = materialize_partitions([asset], ["2026-11-27"], resources=resources)
    assert not result.success
    line = next(line for line in refused.splitlines() if "window 2026-11-27 " in line)
    assert line in failure_message(result)


def test_windows_waiting_to_sync_are_not_changes(registry, resources, control) -> None:
    hourly = registry.model_copy(update={"syncs": (registry.sync(HOURLY),)})
    set_up(hourly, resources, control)
    control.advance(2 * 3600, settle=False)  # two more hours closed; mParticle has not run them
    plan = plan_of(hourly, resources)
    assert plan.exit_code == 0, render_text(plan)
    pending = plan.syncs[0].preflight.pending
    assert pending is not None and not pending.sample
    assert [w.key for w in pending.windows] == ["2026-11-28-12:00", "2026-11-28-13:00"]
    assert "2 pending window(s) 2026-11-28-12:00 .. 2026-11-28-13:00" in render_text(plan)


def test_the_on_demand_window_starts_where_the_last_success_ended(
    registry, resources, control
) -> None:
    only = registry.model_copy(update={"syncs": (registry.sync(ON_DEMAND),)})
    set_up(only, resources, control)
    with resources["mparticle"].open_client() as client:
        run = client.trigger_pipeline(only.syncs[0].resolved_pipeline_id)
        control.advance(60)
        ended = client.get_pipeline_run(only.syncs[0].resolved_pipeline_id, run.pipeline_run_id)
    assert ended.data_interval_end is not None
    control.advance(3600)
    plan = plan_of(only, resources)
    window = plan.syncs[0].preflight.pending.windows[0]  # type: ignore[union-attr]
    assert window.start == ended.data_interval_end
    assert window.end == control.clock()


def test_a_sixth_active_pipeline_is_a_problem_counting_those_no_registry_declares(
    registry, resources, control
) -> None:
    with resources["mparticle"].open_client() as client:
        for spec in registry.syncs[:2]:  # the connection and a model the others use
            reconcile(client, registry, spec, SAMPLE_ANCHOR)
        for name in ("team-a-1", "team-a-2", "team-a-3"):
            client.create_pipeline(other_pipeline(name))
    control.clear_request_log()
    plan = plan_of(registry, resources)
    assert plan.exit_code == 1
    assert plan.slots is not None
    assert len(plan.slots.now) == 5 and len(plan.slots.after) == 6
    assert plan.slots.problem is not None and "6 pipelines would be active" in plan.slots.problem
    assert {p.id for p in plan.unmanaged} == {"team-a-1", "team-a-2", "team-a-3"}
    assert all(p.active for p in plan.unmanaged)
    assert "  - team-a-1 (team-a-1; active)" in render_text(plan)
    assert writes(control) == []


def test_a_start_beyond_the_catch_up_limit_is_refused(registry, resources, control) -> None:
    spec = registry.sync(HOURLY)
    old = spec.schedule.model_copy(update={"start": SAMPLE_ANCHOR - timedelta(days=8)})
    stale = with_sync(registry, HOURLY, schedule=old)
    plan = plan_of(stale, resources, selected=[HOURLY])
    assert plan.exit_code == 1
    refusals = plan.syncs[0].refusals
    assert len(refusals) == 1 and "older than mParticle's hourly catch-up limit" in refusals[0]


@pytest.mark.parametrize(
    ("interval", "start"),
    [
        ("hourly", datetime(2026, 11, 25, 0, 15, tzinfo=UTC)),
        ("daily", datetime(2026, 10, 1, 6, 30, tzinfo=UTC)),
        ("daily", datetime(2026, 10, 1, 0, 0, tzinfo=UTC)),
        ("weekly", datetime(2025, 6, 4, 12, 5, tzinfo=UTC)),
        ("monthly", datetime(2022, 1, 28, 0, 0, tzinfo=UTC)),
    ],
)
def test_closed_windows_are_the_assets_partitions(interval: str, start: datetime) -> None:
    schedule = Schedule.model_validate({"interval": interval, "start": start})
    windows, closed = closed_windows(schedule, SAMPLE_ANCHOR, 20)
    keys = partitions_for(schedule).get_partition_keys(current_time=SAMPLE_ANCHOR)
    assert closed == len(keys)
    assert [w.key for w in windows] == keys[-20:]
    last = partitions_for(schedule).time_window_for_partition_key(keys[-1])
    assert (windows[-1].start, windows[-1].end) == (last.start, last.end)


def test_only_the_selected_syncs_are_planned_and_the_document_has_a_list_of_syncs(
    registry, resources, control
) -> None:
    plan = plan_of(registry, resources, selected=[DAILY, ON_DEMAND])
    assert [s.name for s in plan.syncs] == [DAILY, ON_DEMAND]
    found = json.loads(json.dumps(document(plan)))
    assert found["exit_code"] == 2 and found["version"] == 1
    assert [s["name"] for s in found["syncs"]] == [DAILY, ON_DEMAND]
    assert all(r["action"] == "create" for s in found["syncs"] for r in s["resources"])
    secret = found["syncs"][0]["resources"][0]["secrets"]
    assert secret == [
        {"field": "password", "variable": "MPARTICLE_SNOWFLAKE_PASSWORD", "status": "will be sent"}
    ]
    assert found["summary"] == {"create": 5, "update": 0, "unchanged": 0, "problems": 0}
    assert found["text"] == render_text(plan)


def test_a_rejected_credential_fails_its_check_without_showing_the_secret(
    registry, resources, control
) -> None:
    wrong = mparticle_for(control, client_secret="not-the-secret-XYZ")
    plan = plan_of(registry, resources, mparticle=wrong)
    assert plan.exit_code == 1
    token = next(c for c in plan.checks if c.name == "mParticle token")
    assert not token.ok and "401" in token.detail
    assert "not-the-secret-XYZ" not in json.dumps(document(plan))
    assert writes(control) == []


def test_a_snowflake_that_refuses_the_login_fails_its_check_and_the_preflights(
    registry, resources, control
) -> None:
    unreachable = local_snowflake_resource("127.0.0.1", 9)  # discard port: nothing listens
    broken = {**resources, "snowflake": unreachable.model_copy(update={"login_timeout": 2})}
    plan = plan_of(registry, broken, selected=[DAILY])
    assert plan.exit_code == 1
    login = next(c for c in plan.checks if c.name == "Snowflake login")
    assert not login.ok and "SNOWFLAKE_ACCOUNT" in login.detail
    assert plan.syncs[0].preflight.not_run is not None
    assert actions(plan)[DAILY] == ["create"] * 3  # mParticle was still read


def test_checks_made_before_are_reported_and_a_failed_one_is_a_problem(
    registry, resources, control
) -> None:
    missing = Check("registry secrets", False, "MPARTICLE_FEED_KEY_CRM is not set")
    plan = plan_of(registry, resources, checks=[missing], selected=[DAILY])
    assert plan.exit_code == 1
    assert "registry secrets: MPARTICLE_FEED_KEY_CRM is not set" in plan.all_problems
    assert "FAILED registry secrets" in render_text(plan)


def test_one_off_pipelines_are_named_with_their_sync(registry, resources, control) -> None:
    only = registry.model_copy(update={"syncs": (registry.sync(DAILY),)})
    set_up(only, resources, control)
    pipeline_id = only.syncs[0].resolved_pipeline_id
    with resources["mparticle"].open_client() as client:
        pipeline = client.get_pipeline(pipeline_id)
        repair = pipeline.model_copy(
            update={"id": f"{pipeline_id}-repair-202611270000", "is_active": False}
        )
        client.create_pipeline(repair.model_copy(update={"partner_feed_key": "us1-x"}))
    plan = plan_of(only, resources)
    assert [(p.id, p.active, p.one_off_of) for p in plan.unmanaged] == [
        (f"{pipeline_id}-repair-202611270000", False, DAILY)
    ]


def test_a_materialization_records_matches_registry_passed(registry, resources, control) -> None:
    asset = next(a for a in build_sync_assets(registry) if a.key.path[-1] == ON_DEMAND)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_partitions([asset], resources=resources, instance=instance)
    assert result.success, failure_message(result)
    key = dg.AssetCheckKey(asset.key, "matches_registry")
    record = instance.get_latest_asset_check_evaluation_record(key)
    assert record is not None and record.evaluation is not None
    assert record.evaluation.passed
    assert "this materialization wrote" in (record.evaluation.description or "")


def test_docs_plan_md_describes_every_key_of_the_json_document(
    registry, resources, control
) -> None:
    """docs/plan.md's schema tables name every key the document has (top level and per sync)."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "plan.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)?", docs, re.M))
    names = {name for pair in documented for name in pair if name}
    found = document(plan_of(registry, resources, selected=[DAILY]))
    assert set(found) <= names, set(found) - names
    assert set(found["syncs"][0]) <= names, set(found["syncs"][0]) - names
