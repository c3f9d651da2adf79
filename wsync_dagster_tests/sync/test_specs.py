import textwrap
from pathlib import Path

import pytest

from wsync_dagster.sync.specs import DEFAULT_REGISTRY, RegistryError, load_registry, parse_registry

CONNECTION = """
connection:
  source_account_id: xy12345
  region: us-east-1.aws
  warehouse: WH
  database: DB
  role: R
  user: U
  password_env: SNOWFLAKE_SYNC_PASSWORD
"""


def sync(name: str = "orders", **overrides: str) -> str:
    fields = {
        "description": "Orders per customer.",
        "sql": 'SELECT CUSTOMER_ID AS "customer_id", UPDATED_AT FROM DB.S.ORDERS',
        "load_timestamp": "{column: UPDATED_AT, type: timestamp_ntz}",
        "schedule": "{interval: daily, start: 2026-11-01T00:00:00Z}",
        "feed_key_env": "FEED_KEY",
        **overrides,
    }
    lines = [f"  - name: {name}"] + [f"    {k}: {v}" for k, v in fields.items() if v != "DROP"]
    return "\n".join(lines)


def registry(*syncs: str) -> str:
    return CONNECTION + "syncs:\n" + "\n".join(syncs or (sync(),)) + "\n"


def problems(text: str) -> list[str]:
    with pytest.raises(RegistryError) as raised:
        parse_registry(text, "test.yaml")
    return raised.value.problems


def test_the_default_registry_is_valid_and_declares_the_sample_tables() -> None:
    loaded = load_registry(DEFAULT_REGISTRY)
    assert [s.name for s in loaded.syncs] == [
        "customer_scores",
        "ticket_activity",
        "churn_risk_alerts",
    ]
    assert {s.schedule.interval for s in loaded.syncs} == {"daily", "hourly", "on_demand"}


def test_a_good_entry_parses_with_derived_ids() -> None:
    spec = parse_registry(registry()).sync("orders")
    assert spec.resolved_pipeline_id == "wsync-orders"
    assert spec.resolved_data_model_id == "wsync-orders-model"
    assert spec.schedule.start.isoformat() == "2026-11-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (sync(shedule="x"), "sync 'orders': shedule: unknown key; remove it or check its spelling"),
        (
            sync(schedule="{interval: hourlyy, start: 2026-11-01T00:00:00Z}"),
            "sync 'orders': schedule.interval: 'hourlyy' is not allowed; use one of 'hourly'",
        ),
        (
            sync(sql='"WITH x AS (SELECT 1) SELECT * FROM x"'),
            "sync 'orders': sql: must be a single SELECT statement",
        ),
        (sync(sql='"SELECT * FROM t; DELETE FROM t"'), "uses DELETE"),
        (
            sync(
                schedule="{interval: daily, start: 2026-11-02T00:00:00Z, end: 2026-11-01T00:00:00Z}"
            ),
            "sync 'orders': schedule: end (2026-11-01T00:00:00Z) must be after start",
        ),
        (
            sync(schedule="{interval: monthly, start: 2026-01-31T00:00:00Z}"),
            "day 31 does not exist in every month: start on day 1-28",
        ),
        (
            sync(schedule="{interval: daily, start: 2026-11-01T00:00:00+02:00}"),
            "mParticle schedules are in UTC",
        ),
        (sync(schedule="{interval: daily, start: 2026-11-01T00:00:30Z}"), "must be a whole minute"),
        (sync(schedule="{interval: once, start: 2026-11-01T00:00:00Z}"), "set schedule.end"),
        (sync(feed_key_env="my-key"), "feed_key_env: must be an environment variable name"),
        (
            sync(load_timestamp="{column: TS, type: epoch}"),
            "load_timestamp.type: 'epoch' is not allowed",
        ),
        (sync(load_timestamp="{column: TS, time_zone: Mars/Olympus}"), "is not an IANA time zone"),
        (sync(description="DROP"), "sync 'orders': description: required but missing; add it"),
        (sync(name="Orders"), "sync 'Orders': name: must be snake_case"),
        (sync(deps="[mparticle/x]"), "only on_demand syncs do"),
    ],
)
def test_each_problem_names_the_sync_the_field_and_the_fix(entry: str, expected: str) -> None:
    found = problems(registry(entry))
    assert len(found) == 1, found
    assert expected in found[0]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(registry(sync(shedule="x"), sync("refunds", sql='"DROP TABLE t"')))
    assert len(found) == 2
    assert found[0].startswith("sync 'orders'") and found[1].startswith("sync 'refunds'")


def test_duplicate_names_are_refused() -> None:
    found = problems(registry(sync(), sync()))
    assert found == [
        "sync 'orders': name 'orders' is already used by sync 'orders'; give each sync its own",
        "sync 'orders': pipeline id 'wsync-orders' is already used by sync 'orders'; give each sync its own",
        "sync 'orders': data model id 'wsync-orders-model' is already used by sync 'orders'; give each sync its own",
    ]


def test_a_sixth_active_pipeline_is_refused_but_a_paused_one_is_fine() -> None:
    six = [sync(f"t{i}") for i in range(6)]
    (found,) = problems(registry(*six))
    assert "6 active syncs" in found and "allows 5 active pipelines" in found
    assert "paused: true" in found
    six[5] = sync("t5", paused="true")
    assert len(parse_registry(registry(*six)).syncs) == 6


def test_unreadable_and_malformed_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"cannot read the registry \(No such file"):
        load_registry(tmp_path / "missing.yaml")
    with pytest.raises(RegistryError, match="not valid YAML") as raised:
        parse_registry("syncs: [", "bad.yaml")
    assert "line 1, column 9:\n    syncs: [\n" in str(raised.value)  # quotes the line, points at it
    with pytest.raises(RegistryError, match="must be a mapping"):
        parse_registry("- 1", "list.yaml")
    with pytest.raises(RegistryError, match="connection: required but missing"):
        parse_registry("syncs: []")


def test_the_message_lists_problems_one_per_line() -> None:
    text = registry(sync(shedule="x"), sync("refunds", shedule="y"))
    with pytest.raises(RegistryError) as raised:
        parse_registry(text, "syncs.yaml")
    assert str(raised.value) == textwrap.dedent(
        """\
        syncs.yaml: 2 problem(s) in the sync registry:
          - syncs.yaml:17: sync 'orders': shedule: unknown key; remove it or check its spelling
          - syncs.yaml:24: sync 'refunds': shedule: unknown key; remove it or check its spelling"""
    )


def test_a_bad_file_names_the_line_of_each_problem(tmp_path: Path) -> None:
    text = registry(sync(), sync("refunds", shedule="y"))
    path = tmp_path / "defs.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError) as raised:
        load_registry(path)
    line = text.splitlines().index("    shedule: y") + 1
    assert raised.value.lines == [line]
    assert f"  - {path}:{line}: sync 'refunds': shedule: unknown key" in str(raised.value)


def test_a_component_file_is_a_registry_under_attributes() -> None:
    body = textwrap.indent(registry(sync(feed_key="abc123")), "  ")
    text = f"type: wsync_dagster.WarehouseSyncComponent\nattributes:\n{body}"
    with pytest.raises(RegistryError) as raised:
        parse_registry(text, "defs.yaml")
    (problem,) = raised.value.problems
    assert problem.startswith("sync 'orders': feed_key: unknown key, and secrets never go in")
    assert raised.value.lines == [text.splitlines().index("      feed_key: abc123") + 1]
