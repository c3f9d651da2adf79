"""deploy/alerting/alert_policies.yaml, checked without a Dagster+ organization.

Dagster+ validates a policy document only when it is synced, so this test checks what can be
checked here: event types and notification services against the Dagster+ API models that ship with
the pinned ``dg`` CLI (dagster-rest-resources), the document rules of Dagster+'s alert policies
YAML reference (one event category per policy, options only where they apply), the code location's
name, and that every asset selection picks exactly the sync assets of a registry (not the Snowflake
tables they read).
"""

import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster_rest_resources.__generated__.enums import AlertPolicyEventType
from dagster_rest_resources.schemas.alert_policy import (
    DgApiAlertPolicyOptions,
    DgApiEmailNotification,
    DgApiEmailOwnersNotification,
    DgApiMicrosoftTeamsNotification,
    DgApiPagerdutyNotification,
    DgApiSlackNotification,
)
from pydantic import BaseModel

from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.assets.translator import WarehouseSyncTranslator, source_tables
from wsync_dagster.sync.registry.specs import Registry

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "deploy" / "alerting" / "alert_policies.yaml"

# Dagster+'s alert policies YAML reference: the keys of a policy, the event categories that may
# share a policy, the targets (with their fields) and which options apply to which events.
POLICY_KEYS = {
    "name",
    "description",
    "enabled",
    "event_types",
    "alert_targets",
    "notification_service",
    "policy_options",
    "tags",
}
REQUIRED_KEYS = {"name", "enabled", "event_types", "notification_service"}
CATEGORIES = {
    "job": {"JOB_FAILURE", "JOB_SUCCESS", "JOB_LONG_RUNNING"},
    "asset events": {
        "ASSET_MATERIALIZATION_SUCCESS",
        "ASSET_MATERIALIZATION_FAILURE",
        "ASSET_CHECK_PASSED",
        "ASSET_CHECK_EXECUTION_FAILURE",
        "ASSET_CHECK_SEVERITY_WARN",
        "ASSET_CHECK_SEVERITY_ERROR",
        "ASSET_FRESHNESS_PASS",
        "ASSET_FRESHNESS_WARN",
        "ASSET_FRESHNESS_FAIL",
    },
    "asset health": {"ASSET_HEALTH_HEALTHY", "ASSET_HEALTH_WARNING", "ASSET_HEALTH_DEGRADED"},
    "asset schema": {"ASSET_TABLE_SCHEMA_CHANGE"},
    "schedule/sensor": {"TICK_FAILURE"},
    "infrastructure": {"AGENT_UNAVAILABLE", "CODE_LOCATION_ERROR", "CODE_LOCATION_DEPLOY_SUCCESS"},
    "insights": {"INSIGHTS_CONSUMPTION_EXCEEDED", "METRIC_MONITOR_ALERT"},
}
TARGETS: dict[str, tuple[set[str], set[str]]] = {  # target -> (its fields, categories it serves)
    "run_result_target": ({"jobs", "tags", "location_names"}, {"job"}),
    "asset_selection_target": ({"asset_selection"}, {"asset events", "asset health"}),
    "asset_key_target": ({"asset_key"}, {"asset events", "asset health"}),
    "asset_group_target": (
        {"asset_group", "location_name", "repo_name"},
        {"asset events", "asset health"},
    ),
    "schedule_or_sensor_target": (
        {"schedules_or_sensors", "location_names", "types"},
        {"schedule/sensor"},
    ),
    "code_location_target": ({"location_names"}, {"infrastructure"}),
}
SERVICES: dict[str, type[BaseModel]] = {
    "email": DgApiEmailNotification,
    "email_owners": DgApiEmailOwnersNotification,
    "slack": DgApiSlackNotification,
    "microsoft_teams": DgApiMicrosoftTeamsNotification,
    "pagerduty": DgApiPagerdutyNotification,
}
TICK_ONLY_OPTIONS = {"consecutive_failure_threshold"}
RENOTIFY_EVENTS = {"TICK_FAILURE", "AGENT_UNAVAILABLE", "CODE_LOCATION_ERROR"}


def _policies() -> list[dict[str, Any]]:
    document = yaml.safe_load(POLICIES.read_text(encoding="utf-8"))
    assert list(document) == ["alert_policies"]
    return document["alert_policies"]


def _category(event: str) -> str:
    return next(name for name, events in CATEGORIES.items() if event in events)


def _ids(policies: list[dict[str, Any]]) -> list[str]:
    return [p["name"] for p in policies]


@pytest.mark.parametrize("policy", _policies(), ids=_ids(_policies()))
def test_each_policy_follows_the_alert_policy_reference(policy: dict[str, Any]) -> None:
    assert REQUIRED_KEYS <= set(policy) <= POLICY_KEYS, sorted(policy)
    events = policy["event_types"]
    known = {e.value for e in AlertPolicyEventType}
    assert events and set(events) <= known, set(events) - known
    # every event type of the reference is one the pinned Dagster+ API knows
    assert set().union(*CATEGORIES.values()) <= known
    [category] = {_category(e) for e in events}  # one category per policy

    for target in policy.get("alert_targets", []):
        [(kind, fields)] = target.items()
        allowed, serves = TARGETS[kind]
        assert set(fields) <= allowed and category in serves, (kind, fields, category)

    [(service, settings)] = policy["notification_service"].items()
    SERVICES[service].model_validate(settings)

    options = policy.get("policy_options", {})
    assert set(options) <= set(DgApiAlertPolicyOptions.model_fields), sorted(options)
    DgApiAlertPolicyOptions.model_validate(options)
    if TICK_ONLY_OPTIONS & set(options):
        assert set(events) == {"TICK_FAILURE"}
        assert 1 <= options["consecutive_failure_threshold"] <= 100
    if "renotify_interval_minutes" in options:
        assert set(events) <= RENOTIFY_EVENTS and options["renotify_interval_minutes"] >= 1


def test_policies_cover_every_signal_the_project_emits_once() -> None:
    policies = _policies()
    assert len(set(_ids(policies))) == len(policies)
    events = [e for p in policies for e in p["event_types"]]
    assert sorted(events) == sorted(
        {
            "JOB_FAILURE",
            "ASSET_MATERIALIZATION_FAILURE",
            "ASSET_CHECK_SEVERITY_ERROR",
            "ASSET_CHECK_SEVERITY_WARN",
            "ASSET_FRESHNESS_WARN",
            "ASSET_FRESHNESS_FAIL",
            "TICK_FAILURE",
            "CODE_LOCATION_ERROR",
        }
    )


def test_location_names_are_the_code_locations() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    name = pyproject["tool"]["dg"]["project"]["code_location_name"]
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text(encoding="utf-8"))
    assert workspace["load_from"][0]["grpc_server"]["location_name"] == name
    for policy in _policies():
        for target in policy.get("alert_targets", []):
            [(_, fields)] = target.items()
            assert fields.get("location_names", [name]) == [name], policy["name"]


REGISTRY = {
    "connection": {
        "source_account_id": "xy12345",
        "region": "us-east-1.aws",
        "warehouse": "MPARTICLE_WH",
        "database": "ANALYTICS",
        "role": "MPARTICLE_SYNC",
        "user": "MPARTICLE_SYNC",
        "password_env": "MPARTICLE_SNOWFLAKE_PASSWORD",
    },
    "syncs": [
        {
            "name": "orders_daily",
            "description": "Daily order totals per customer.",
            "sql": 'SELECT CUSTOMER_ID AS "customer_id", TOTAL AS "order_total", UPDATED_AT '
            "FROM ANALYTICS.SALES.ORDERS",
            "load_timestamp": {"column": "UPDATED_AT"},
            "schedule": {"interval": "daily", "start": "2026-11-01T00:00:00Z"},
            "feed_key_env": "MPARTICLE_FEED_KEY_SALES",
        },
        {
            "name": "vip_flags",
            "description": "On-demand VIP flags.",
            "sql": 'SELECT EMAIL AS "email", VIP AS "vip", UPDATED_AT FROM ANALYTICS.CRM.VIPS',
            "load_timestamp": {"column": "UPDATED_AT"},
            "schedule": {"interval": "on_demand", "start": "2026-11-01T00:00:00Z"},
            "environment": "production",
            "feed_key_env": "MPARTICLE_FEED_KEY_CRM",
        },
    ],
}


def test_asset_selections_pick_exactly_the_sync_assets() -> None:
    registry = Registry.model_validate(REGISTRY)
    translator = WarehouseSyncTranslator()
    tables = {t for spec in registry.syncs for t in source_tables(spec, registry)}
    # the Snowflake tables as materializable assets too: a dbt project would make them so
    upstream = [
        dg.asset(key=translator.get_source_asset_key(t), kinds={"snowflake"})(lambda: None)
        for t in sorted(tables)
    ]
    unused = {key: dg.ResourceDefinition.none_resource() for key in ("snowflake", "mparticle")}
    defs = dg.Definitions(assets=[*build_sync_assets(registry), *upstream], resources=unused)
    graph = defs.resolve_asset_graph()
    syncs = {dg.AssetKey(["mparticle", "orders_daily"]), dg.AssetKey(["mparticle", "vip_flags"])}
    selections = [
        fields["asset_selection"]
        for policy in _policies()
        for target in policy.get("alert_targets", [])
        for kind, fields in target.items()
        if kind == "asset_selection_target"
    ]
    assert selections
    for selection in selections:
        assert dg.AssetSelection.from_string(selection).resolve(graph) == syncs, selection
    # the production-only filter docs/alerting.md suggests (the registry's environment tag)
    production = 'kind:"mparticle" and tag:"wsync/environment"="production"'
    assert dg.AssetSelection.from_string(production).resolve(graph) == {
        dg.AssetKey(["mparticle", "vip_flags"])
    }
