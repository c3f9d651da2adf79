import textwrap
from pathlib import Path

import pytest

from wsync_dagster.sync.registry.specs import (
    DEFAULT_REGISTRY,
    RegistryError,
    load_registry,
    parse_registry,
)
from wsync_dagster.sync.registry.strict_yaml import load_strict

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
        "high_value_customers",
        "loyal_customers",
        "customer_first_names",
        "urgent_ticket_contacts",
        "unhappy_support_contacts",
        "slow_response_contacts",
    ]
    assert [s.name for s in loaded.syncs if s.rotate] == [s.name for s in loaded.syncs][3:]
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
    with pytest.raises(RegistryError, match="must be a mapping"):
        parse_registry("just text", "scalar.yaml")
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


def test_a_duplicate_key_in_a_sync_is_refused_naming_sync_key_and_lines() -> None:
    text = registry(sync(), sync("refunds", sql='"SELECT 1 AS A"'))
    # A second sql: key in 'refunds': YAML alone would silently keep the last one.
    text = text.replace('sql: "SELECT 1 AS A"', 'sql: "SELECT 1 AS A"\n    sql: "SELECT 2 AS B"')
    lines = text.splitlines()
    first, second = (
        i + 1 for i, line in enumerate(lines) if "SELECT 1 AS A" in line or "2 AS B" in line
    )
    assert problems(text) == [
        f"sync 'refunds': sql: duplicate key, written on line {first} and again on line {second}; "
        "YAML keeps only the last one and drops the other silently: keep exactly one"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # nested inside a sync's mapping
            registry(
                sync(schedule="{interval: daily, interval: hourly, start: 2026-11-01T00:00:00Z}")
            ),
            "sync 'orders': schedule.interval: duplicate key, written twice on line 15",
        ),
        (  # at the top of the document
            registry() + "default_group: a\ndefault_group: b\n",
            "registry: default_group: duplicate key, written on line 17 and again on line 18",
        ),
        (  # in the connection
            registry().replace("  role: R\n", "  role: R\n  role: S\n"),
            "registry: connection.role: duplicate key, written on line 7 and again on line 8",
        ),
        (  # in a sync's tags, three levels down
            registry(sync(tags="{team: a, team: b}")),
            "sync 'orders': tags.team: duplicate key, written twice on line 17",
        ),
    ],
)
def test_duplicate_keys_are_refused_at_any_depth(text: str, expected: str) -> None:
    (found,) = problems(text)
    assert found.startswith(expected), found


def test_every_duplicate_key_is_reported_and_merge_keys_still_work() -> None:
    text = registry(sync(), sync("refunds")).replace(
        "feed_key_env: FEED_KEY", "feed_key_env: FEED_KEY\n    feed_key_env: OTHER_KEY"
    )
    found = problems(text)
    assert [p.split(":")[0] for p in found] == ["sync 'orders'", "sync 'refunds'"]
    # A YAML merge key (<<) overriding a merged value is not a duplicate.
    anchored = registry(
        sync(schedule="&s {interval: daily, start: 2026-11-01T00:00:00Z}"),
        sync("refunds", schedule="{<<: *s, interval: hourly}"),
    )
    assert parse_registry(anchored).sync("refunds").schedule.interval == "hourly"


def test_both_parsers_find_the_same_duplicates() -> None:
    text = registry(sync(tags="{team: a, team: b}"), sync("refunds")) + "syncs: []\n"
    fast, pure = load_strict(text), load_strict(text, fast=False)
    assert fast == pure
    assert [d.describe().split(":")[:2] for d in fast[1]] == [
        ["sync 'orders'", " tags.team"],
        ["registry", " syncs"],
    ]


def test_sql_ending_in_a_line_comment_is_refused_at_load() -> None:
    block = (
        '|\n      SELECT CUSTOMER_ID AS "customer_id", UPDATED_AT\n      FROM DB.S.ORDERS -- all\n'
    )
    (found,) = problems(registry(sync(sql=block)))
    assert found.startswith("sync 'orders': sql: ends in a -- comment"), found
    assert "remove the comment or write it as /* ... */" in found


def test_a_field_error_does_not_hide_cross_sync_problems() -> None:
    six = [sync(f"t{i}") for i in range(5)] + [sync("t5", shedule="x")]
    found = problems(registry(*six, sync("t0", description="DROP")))
    assert found[:2] == [
        "sync 't5': shedule: unknown key; remove it or check its spelling",
        "sync 't0': description: required but missing; add it",
    ]
    assert found[2].startswith("sync 't0': name 't0' is already used by sync 't0'")
    assert any(p.startswith("registry: 7 active syncs (t0, t1, t2, t3, t4, t5, t0)") for p in found)


def test_cross_sync_rules_use_what_an_invalid_sync_still_declares() -> None:
    text = registry(
        sync(pipeline_id="shared"),
        sync("refunds", pipeline_id="shared", paused="maybe"),  # paused invalid: counted active
        "  - 42",  # not a mapping at all: only its own error
        sync("bad", pipeline_id="no spaces allowed"),  # invalid id: not compared
    )
    assert problems(text) == [
        "sync 'refunds': paused: Input should be a valid boolean, unable to interpret input",
        "syncs[2]: Input should be a valid dictionary or instance of SyncSpec",
        "sync 'bad': pipeline_id: may only contain letters, digits, '_' and '-'",
        "sync 'refunds': pipeline id 'shared' is already used by sync 'orders'; give each sync its own",
    ]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("{interval: hourly, start: 2026-11-01T00:00:00Z}", 24),
        ("{interval: daily, start: 2026-11-01T00:00:00Z}", 1),
        ("{interval: monthly, start: 2026-11-01T00:00:00Z}", 1),
        ("{interval: on_demand, start: 2026-11-01T00:00:00Z}", 0),
    ],
)
def test_late_rows_recount_one_day_of_windows_by_default(schedule: str, expected: int) -> None:
    [spec] = parse_registry(registry(sync(schedule=schedule))).syncs
    assert spec.recount_windows is None and spec.late_row_windows == expected


def test_recount_windows_is_set_per_sync_and_checked() -> None:
    [spec] = parse_registry(registry(sync(recount_windows="3"))).syncs
    assert spec.late_row_windows == 3
    [off] = parse_registry(registry(sync(recount_windows="0"))).syncs
    assert off.late_row_windows == 0
    assert problems(registry(sync(recount_windows="-1"))) == [
        "sync 'orders': recount_windows: Input should be greater than or equal to 0"
    ]
    on_demand = sync(
        recount_windows="2", schedule="{interval: on_demand, start: 2026-11-01T00:00:00Z}"
    )
    [problem] = problems(registry(on_demand))
    assert "recount_windows applies to interval syncs" in problem and "remove it" in problem
