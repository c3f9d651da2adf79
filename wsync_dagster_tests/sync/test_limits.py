"""The registry's ``limits:`` block: validated, and used by the pre-flight and the active-pipeline
rules instead of mParticle's documented numbers."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import (
    Registry,
    RegistryError,
    cross_sync_problems,
    parse_registry,
)
from wsync_dagster_tests.sync.conftest import failure_message, materialize, other_pipeline

SYNC_DOC = Path(__file__).resolve().parents[2] / "docs" / "sync.md"
WRITES = ("POST", "PUT", "DELETE")


def _limited(registry: Registry, **limits: Any) -> Registry:
    return registry.model_copy(update={"limits": Limits.model_validate(limits)})


def _with_limits(limits: Any) -> str:
    """The sample registry (a component file: the registry is its ``attributes``) with ``limits``."""
    document = yaml.safe_load(SAMPLE_REGISTRY.read_text(encoding="utf-8"))
    document["attributes"]["limits"] = limits
    return yaml.safe_dump(document)


def test_without_a_limits_block_mparticle_numbers_apply() -> None:
    limits = parse_registry(SAMPLE_REGISTRY.read_text(encoding="utf-8")).limits
    assert limits.effective_records() == {
        "hourly": 1_000_000, "daily": 24_000_000, "weekly": 40_000_000,
        "monthly": 40_000_000, "on_demand": 24_000_000, "once": 40_000_000,
    }  # fmt: skip
    assert (limits.max_columns, limits.max_active_pipelines) == (100, 5)


def test_the_documented_example_parses_and_overrides_only_what_it_names() -> None:
    """The `limits:` example of docs/sync.md ("Limits")."""
    text = SYNC_DOC.read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(limits:\n.*?)```", text, re.S)
    limits = parse_registry(_with_limits(yaml.safe_load(block)["limits"])).limits
    assert limits.record_limit("hourly") == 2_000_000
    assert limits.record_limit("weekly") == 40_000_000
    assert (limits.max_columns, limits.max_active_pipelines) == (200, 10)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (
            {"records_per_request": {"hourlyy": 5}},
            "registry: limits.records_per_request: 'hourlyy' is not a cadence; use one of hourly, "
            "daily, weekly, monthly, on_demand, once",
        ),
        (
            {"records_per_request": {"daily": 0}},
            "registry: limits.records_per_request: daily: 0 is not a positive whole number; write "
            "your contracted limit, e.g. 24_000_000, or remove the key to use mParticle's default",
        ),
        (
            {"max_columns": "200"},
            "registry: limits.max_columns: '200' is not a positive whole number; write your "
            "contracted limit, e.g. 100, or remove the key to use mParticle's default",
        ),
        (
            {"max_active_pipelines": True},
            "registry: limits.max_active_pipelines: True is not a positive whole number; write "
            "your contracted limit, e.g. 5, or remove the key to use mParticle's default",
        ),
        (
            {"max_rows": 3},
            "registry: limits.max_rows: unknown key; remove it or check its spelling",
        ),
        (
            {"records_per_request": [1]},
            "registry: limits.records_per_request: must map cadence names to records per request, "
            "e.g. {hourly: 2_000_000}",
        ),
    ],
)
def test_bad_limits_are_named_with_their_fix(limits: Any, expected: str) -> None:
    with pytest.raises(RegistryError) as raised:
        parse_registry(_with_limits(limits), "syncs.yaml")
    assert raised.value.problems == [expected]


def test_the_registry_active_limit_counts_against_its_own_syncs(registry) -> None:
    assert cross_sync_problems(_limited(registry, max_active_pipelines=4)) == []
    (problem,) = cross_sync_problems(_limited(registry, max_active_pipelines=3))
    assert problem.startswith("registry: the rotating syncs (high_value_customers, ")
    assert "have no active-pipeline slot to take turns on" in problem
    (problem,) = cross_sync_problems(_limited(registry, max_active_pipelines=2))
    assert problem.startswith("registry: 3 active syncs")
    assert "the registry's limit (limits.max_active_pipelines) allows 2 active pipelines" in problem
    assert "set paused: true on 1 of them" in problem


def test_a_registry_hourly_limit_of_10_refuses_an_11_row_window(
    registry, resources, control: EmulatorControl, snowflake_cursor
) -> None:
    snowflake_cursor.execute("CREATE SCHEMA IF NOT EXISTS WSYNC_DEMO.LOAD")
    snowflake_cursor.execute(
        "CREATE OR REPLACE TABLE WSYNC_DEMO.LOAD.ELEVEN_EVENTS AS SELECT "
        "'u' || SEQ4() AS EMAIL, DATEADD('minute', SEQ4(), "
        "'2026-11-28 09:00:00'::TIMESTAMP_NTZ) AS UPDATED_AT "
        "FROM TABLE(GENERATOR(ROWCOUNT => 11))"
    )
    base = registry.sync("ticket_activity")
    eleven = base.model_copy(
        update={"sql": 'SELECT EMAIL AS "email", UPDATED_AT FROM WSYNC_DEMO.LOAD.ELEVEN_EVENTS'}
    )
    limited = _limited(
        registry.model_copy(update={"syncs": (eleven,)}), records_per_request={"hourly": 10}
    )
    result = materialize(limited, resources, "ticket_activity", ["2026-11-28-09:00"])
    message = failure_message(result)
    assert "holds 11 rows; the registry's hourly limit is 10 per request" in message
    assert "(limits.records_per_request.hourly)" in message
    assert control.request_log() == []  # refused before anything reached mParticle

    roomy = _limited(
        registry.model_copy(update={"syncs": (eleven,)}), records_per_request={"hourly": 11}
    )
    assert materialize(roomy, resources, "ticket_activity", ["2026-11-28-09:00"]).success


def test_a_registry_column_limit_refuses_a_wider_model(registry, resources, control) -> None:
    narrow = _limited(registry, max_columns=5)
    result = materialize(narrow, resources, "customer_scores", ["2026-11-27"])
    assert (
        "returns 7 columns; the registry's limit (limits.max_columns) allows 5"
        in failure_message(result)
    )
    assert control.request_log() == []


def test_a_registry_active_limit_refuses_activating_one_more(registry, resources, control) -> None:
    limited = _limited(registry, max_active_pipelines=2)
    first = materialize(limited, resources, "ticket_activity", ["2026-11-28-10:00"])
    assert first.success, failure_message(first)
    with resources["mparticle"].open_client() as client:
        client.create_pipeline(other_pipeline("other"))
    control.clear_request_log()
    result = materialize(limited, resources, "customer_scores", ["2026-11-27"])
    message = failure_message(result)
    assert "would be active pipeline number 3" in message
    assert "the registry's limit (limits.max_active_pipelines) allows 2" in message
    assert not [e for e in control.request_log() if e["method"] in WRITES]
