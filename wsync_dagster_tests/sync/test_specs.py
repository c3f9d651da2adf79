import textwrap
from pathlib import Path

import pytest
import yaml

from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.sync.registry.specs import (
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
    loaded = load_registry(SAMPLE_REGISTRY)
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


# --- defaults: fields every sync inherits (issue 20, item 4) ---------------------------------------

DEFAULTS = """
defaults:
  owners: [team:crm]
  tags: {domain: crm}
  load_timestamp: {column: UPDATED_AT, type: timestamp_ntz}
  schedule: {interval: on_demand, start: 2026-11-01T00:00:00Z}
  rotate: true
  feed_key_env: FEED_KEY
"""


def short(name: str, *extra: str) -> str:
    """A sync that writes only what is its own (name, description, sql) plus ``extra`` lines."""
    lines = [
        f"  - name: {name}",
        f"    description: The {name} slice.",
        f'    sql: SELECT CUSTOMER_ID AS "customer_id", UPDATED_AT FROM DB.S.{name.upper()}',
        *(f"    {line}" for line in extra),
    ]
    return "\n".join(lines)


def with_defaults(*syncs: str, defaults: str = DEFAULTS) -> str:
    return CONNECTION + defaults + "syncs:\n" + "\n".join(syncs) + "\n"


def test_syncs_inherit_defaults_and_merge_mappings_key_by_key() -> None:
    text = with_defaults(
        short("vip"),
        short("churned", "tags: {slice: churned}", "schedule: {start: 2026-11-20T00:00:00Z}"),
        short("daily_scores", "schedule: {interval: daily}", "rotate: false", "owners: [a@b.co]"),
    )
    loaded = parse_registry(text)
    vip, churned, daily = loaded.syncs
    assert vip.rotate and vip.schedule.interval == "on_demand" and vip.feed_key_env == "FEED_KEY"
    assert vip.load_timestamp.column == "UPDATED_AT" and vip.owners == ("team:crm",)
    # Mappings merge key by key: the sync's keys win, the others are inherited.
    assert churned.tags == {"domain": "crm", "slice": "churned"}
    assert churned.schedule.interval == "on_demand"
    assert churned.schedule.start.isoformat() == "2026-11-20T00:00:00+00:00"
    # Everything else is replaced.
    assert daily.schedule.interval == "daily" and not daily.rotate and daily.owners == ("a@b.co",)


def test_a_wrong_default_is_reported_once_on_its_own_line() -> None:
    defaults = DEFAULTS.replace("interval: on_demand", "interval: sometimes")
    text = with_defaults(short("vip"), short("churned"), defaults=defaults)
    with pytest.raises(RegistryError) as raised:
        parse_registry(text, "syncs.yaml")
    assert raised.value.problems == [
        "registry: defaults.schedule.interval: 'sometimes' is not allowed; use one of 'hourly', "
        "'daily', 'weekly', 'monthly', 'on_demand' or 'once'"
    ]
    assert raised.value.lines == [
        text.splitlines().index("  schedule: {interval: sometimes, start: 2026-11-01T00:00:00Z}")
        + 1
    ]


def test_an_inherited_value_that_breaks_a_sync_names_the_sync_and_the_default() -> None:
    # rotate: true is inherited by a daily sync, which cannot rotate.
    text = with_defaults(short("vip"), short("scores", "schedule: {interval: daily}"))
    (problem,) = problems(text)
    assert problem.startswith("sync 'scores': rotate: true applies to on_demand syncs only")
    # A field error inherited from defaults says so, and points at the defaults' line.
    defaults = DEFAULTS + "  load_timestamp: {column: UPDATED_AT, type: epoch}\n"
    defaults = defaults.replace("  load_timestamp: {column: UPDATED_AT, type: timestamp_ntz}\n", "")
    text = with_defaults(
        short("vip", "load_timestamp: {type: date}"), short("churned"), defaults=defaults
    )
    with pytest.raises(RegistryError) as raised:
        parse_registry(text, "syncs.yaml")
    # Reported once, in defaults (the sync that sets its own type is fine).
    assert raised.value.problems == [
        "registry: defaults.load_timestamp.type: 'epoch' is not allowed; use one of "
        "'timestamp_ltz', 'timestamp_ntz', 'timestamp_tz', 'datetime', 'date', "
        "'timestamp_unixtime_ms' or 'timestamp_unixtime_s'"
    ]


def test_a_sync_missing_what_defaults_do_not_give_is_named() -> None:
    text = with_defaults(short("vip"), defaults=DEFAULTS.replace("  feed_key_env: FEED_KEY\n", ""))
    assert problems(text) == ["sync 'vip': feed_key_env: required but missing; add it"]


def test_what_is_each_syncs_own_cannot_be_a_default() -> None:
    defaults = DEFAULTS + "  sql: SELECT 1 AS A\n  pipeline_id: shared\n"
    text = with_defaults(short("vip"), defaults=defaults)
    assert problems(text) == [
        "registry: defaults.sql: a sync never inherits its sql (nor its data_model_id, "
        "description, name or pipeline_id): write it in each sync",
        "registry: defaults.pipeline_id: a sync never inherits its pipeline_id (nor its "
        "data_model_id, description, name or sql): write it in each sync",
    ]


def test_cross_sync_rules_see_inherited_values() -> None:
    # Six syncs inherit "active for ever" (rotate: false) from defaults: one too many.
    defaults = DEFAULTS.replace("rotate: true", "rotate: false")
    text = with_defaults(*[short(f"t{i}") for i in range(6)], defaults=defaults)
    (problem,) = problems(text)
    assert problem.startswith("registry: 6 active syncs (t0, t1, t2, t3, t4, t5)")
    assert "Declared at: t0 (test.yaml:" in problem and "limits.max_active_pipelines" in problem


# --- templates, and what a field error says --------------------------------------------------------


def test_templates_are_rendered_where_a_renderer_is_given_and_refused_otherwise() -> None:
    text = registry().replace("database: DB", 'database: "{{ team_db }}"')
    rendered = parse_registry(text, render=lambda t: "ANALYTICS" if "team_db" in t else t)
    assert rendered.connection.database == "ANALYTICS"
    assert problems(text) == [
        "registry: connection.database: templates are rendered only where the registry loads as "
        "a component (dg, the code locations, WarehouseSyncComponent.from_registry_file)"
    ]


def test_a_template_that_renders_nothing_or_fails_names_the_field() -> None:
    text = registry(sync(environment='"{{ missing }}"')).replace("role: R", 'role: "{{ boom }}"')

    def render(template: str) -> object:
        if "boom" in template:
            raise ValueError("Exception occurred while evaluating template.\nZeroDivisionError")
        return None

    with pytest.raises(RegistryError) as raised:
        parse_registry(text, "t.yaml", render=render)
    assert raised.value.problems == [
        "registry: connection.role: the template '{{ boom }}' failed: ZeroDivisionError",
        "sync 'orders': environment: the template '{{ missing }}' rendered nothing; set what it "
        "reads (e.g. the environment variable) or write the value",
    ]


def test_duplicate_keys_are_reported_with_the_other_problems() -> None:
    text = registry(sync(shedule="x")).replace("  role: R\n", "  role: R\n  role: S\n")
    found = problems(text)
    assert [p.split(":")[:2] for p in found] == [
        ["registry", " connection.role"],
        ["sync 'orders'", " shedule"],
    ]


# --- docs/registry.md stays true to the models -----------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "registry.md"


def test_every_field_is_described_and_documented() -> None:
    from wsync_dagster.sync.registry.limits import Limits
    from wsync_dagster.sync.registry.models import (
        ConnectionSettings,
        LoadTimestamp,
        Registry,
        Schedule,
        SyncSpec,
        Translation,
    )

    rows = {line.split("|")[1].strip() for line in DOCS.read_text().splitlines() if "|" in line}
    for model in (Registry, ConnectionSettings, SyncSpec, LoadTimestamp, Schedule, Translation,
                  Limits):  # fmt: skip
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            if model is not Registry:  # the top-level fields have their own sections
                assert f"`{name}`" in rows, f"{model.__name__}.{name} is not in {DOCS.name}"
            else:
                assert f"## `{name}`" in DOCS.read_text() or name == "default_group", name


def test_the_defaults_example_in_the_docs_loads_as_it_says() -> None:
    text = DOCS.read_text()
    example = text.split("`defaults:` holds the fields")[1].split("```yaml\n")[1].split("```")[0]
    example = example.replace(
        "  connection: {...}\n", textwrap.indent(CONNECTION.strip(), "  ") + "\n"
    )
    document = yaml.safe_load(example)["attributes"]
    loaded = parse_registry(yaml.safe_dump(document))
    vip, loyal = loaded.syncs
    assert (
        vip.rotate and vip.schedule.interval == "on_demand" and vip.owners == ("team:growth-data",)
    )
    assert loyal.tags == {"domain": "crm", "slice": "loyal"}
    assert loyal.schedule.interval == "on_demand" and loyal.schedule.start.day == 25
