"""WarehouseSyncComponent loaded from YAML in a temporary dg project, and its translator."""

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from wsync_dagster.code_location import sync_components
from wsync_dagster.component import (
    WarehouseSyncComponent,
    WarehouseSyncLoadError,
    WarehouseSyncScaffolder,
)
from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.local.resources import LOCAL_MPARTICLE
from wsync_dagster.local.sample_defs import sample_components
from wsync_dagster.local.snowflake import LOCAL_PASSWORD
from wsync_dagster.sync.assets.translator import WarehouseSyncProps, WarehouseSyncTranslator
from wsync_dagster.sync.engine.reconcile import check_catch_up
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, RegistryError
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import materializations

TYPE = "wsync_dagster.WarehouseSyncComponent"


def make_project(root: Path, monkeypatch: pytest.MonkeyPatch, defs: dict[str, str]) -> Path:
    """A dg project under ``root`` whose ``defs/<path>`` files are ``defs``; importable."""
    package = f"wsync_tmp_{uuid.uuid4().hex[:8]}"
    (root / "pyproject.toml").write_text(
        f'[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "{package}"\n'
        'registry_modules = ["wsync_dagster"]\n'
    )
    for path in (root / package, root / package / "defs"):
        path.mkdir(parents=True)
        (path / "__init__.py").write_text("")
    for relative, text in defs.items():
        target = root / package / "defs" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    monkeypatch.syspath_prepend(str(root))
    return root


def component_yaml(registry: Registry, **changes: Any) -> str:
    """``registry`` as a component file (its syncs' fields changed by ``changes`` per sync name)."""
    document = registry.model_dump(mode="json", exclude_defaults=True)
    for entry in document["syncs"]:
        entry.update(changes.get(entry["name"], {}))
    return yaml.safe_dump({"type": TYPE, "attributes": document}, sort_keys=False)


def test_a_component_from_yaml_materializes_against_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry, resources: dict[str, Any]
) -> None:
    daily = registry.model_copy(update={"syncs": (registry.sync("customer_scores"),)})
    project = make_project(tmp_path, monkeypatch, {"crm/defs.yaml": component_yaml(daily)})
    defs = dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=project), dg.Definitions(resources=resources)
    )
    key = dg.AssetKey(["mparticle", "customer_scores"])
    asset = defs.resolve_assets_def(key)
    assert asset.partitions_def is not None
    last = asset.partitions_def.get_partition_keys(current_time=SAMPLE_ANCHOR)[-1]

    result = materialize_partitions([asset], [last])

    assert result.success
    assert list(materializations(result)) == [last]
    spec = asset.specs_by_key[key]
    assert [d.asset_key for d in spec.deps] == [
        dg.AssetKey(["snowflake", "wsync_demo", "crm", "customer_scores"])
    ]
    references = spec.metadata["dagster/code_references"].code_references
    assert references[0].file_path.endswith("crm/defs.yaml") and references[0].line_number


def test_a_bad_field_names_the_yaml_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    text = component_yaml(registry, ticket_activity={"shedule": "hourly"})
    project = make_project(tmp_path, monkeypatch, {"support/defs.yaml": text})
    with pytest.raises(Exception) as raised:  # dagster wraps it with the component tree
        dg.load_from_defs_folder(path_within_project=project)
    line = text.splitlines().index("    shedule: hourly") + 1
    message = "".join(str(e) for e in _chain(raised.value))
    assert f"support/defs.yaml:{line}: sync 'ticket_activity': shedule: unknown key" in message


def test_a_secret_written_as_a_template_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    monkeypatch.setenv("THE_FEED_KEY", "s3cret-value")
    text = component_yaml(registry, churn_risk_alerts={"feed_key_env": "{{ env.THE_FEED_KEY }}"})
    project = make_project(tmp_path, monkeypatch, {"crm/defs.yaml": text})
    with pytest.raises(Exception) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    message = "".join(str(e) for e in _chain(raised.value))
    assert (
        "sync 'churn_risk_alerts': feed_key_env: write the environment variable's name" in message
    )
    assert "s3cret-value" not in message


def test_rules_across_syncs_hold_across_component_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    first = component_yaml(registry)  # three active syncs
    second = registry.model_copy(
        update={
            "syncs": tuple(
                s.model_copy(update={"name": f"{s.name}_copy", "pipeline_id": None})
                for s in registry.syncs
            )
        }
    )
    clash = {"customer_scores_copy": {"pipeline_id": "wsync-customer-scores"}}
    project = make_project(
        tmp_path,
        monkeypatch,
        {"a/defs.yaml": first, "b/defs.yaml": component_yaml(second, **clash)},
    )
    tree = dg.ComponentTree.for_project(project)
    with pytest.raises(RegistryError) as raised:
        sync_components(tree)
    problems = raised.value.problems
    assert any(
        p.startswith("sync 'customer_scores_copy' (b/defs.yaml:")
        and "pipeline id 'wsync-customer-scores' is already used by sync 'customer_scores' "
        "(a/defs.yaml:"
        in p
        for p in problems
    ), problems
    assert any("6 active syncs" in p for p in problems), problems
    # dg's own loader (no wsync code location around it) enforces the same rules.
    with pytest.raises(Exception) as loaded:
        dg.load_from_defs_folder(path_within_project=project)
    assert "6 active syncs" in "".join(str(e) for e in _chain(loaded.value))


class TeamTranslator(WarehouseSyncTranslator):
    def get_asset_spec(self, sync: WarehouseSyncProps) -> dg.AssetSpec:
        spec = super().get_asset_spec(sync)
        return spec.replace_attributes(
            key=dg.AssetKey(["crm_activation", sync.name]), group_name="activation"
        )

    def get_source_asset_key(self, table: str) -> dg.AssetKey:
        return dg.AssetKey(["dbt", table.split(".")[-1].lower()])


def test_a_translator_rekeys_and_regroups_the_sync_assets(registry: Registry) -> None:
    component = WarehouseSyncComponent(registry, translator=TeamTranslator())
    specs = {s.key: s for asset in component.build_assets() for s in asset.specs}
    scores = specs[dg.AssetKey(["crm_activation", "customer_scores"])]
    assert scores.group_name == "activation"
    assert [d.asset_key for d in scores.deps] == [dg.AssetKey(["dbt", "customer_scores"])]
    assert scores.partitions_def is not None  # the factory keeps the pipeline's grid
    assert [key for _, key in component.sync_keys()] == list(specs)


def scaffold(project: Path, name: str, scaffolder: WarehouseSyncScaffolder) -> Path:
    (package,) = [p for p in project.iterdir() if p.name.startswith("wsync_tmp_")]
    target = package / "defs" / name
    scaffolder.scaffold(
        dg.ScaffoldRequest(
            type_name=TYPE,
            target_path=target,
            scaffold_format="yaml",
            project_root=project,
            params=None,
        )
    )
    return target


def test_the_scaffolded_starter_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path, monkeypatch, {})
    target = scaffold(project, "web-orders", WarehouseSyncScaffolder())
    assert (target / "defs.yaml").read_text().startswith("# A registry of synced tables")
    defs = dg.load_from_defs_folder(path_within_project=project)
    keys = {k for a in defs.assets or () if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    assert keys == {dg.AssetKey(["mparticle", "web_orders"])}
    # The syncs' resources are bound once per defs folder, so the starter loads on its own.
    assert (target.parent / "wsync_resources.py").exists()
    dg.Definitions.validate_loadable(defs)
    # Its start was computed when scaffolding: mParticle would create its pipeline today.
    (component,) = dg.ComponentTree.for_project(project).get_all_components(
        of_type=WarehouseSyncComponent
    )
    check_catch_up(component.registry.sync("web_orders"), datetime.now(UTC))


def test_the_starter_starts_a_week_back_and_is_not_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scaffolded = datetime(2027, 3, 10, 15, 30, tzinfo=UTC)
    project = make_project(tmp_path, monkeypatch, {})
    target = scaffold(project, "web_orders", WarehouseSyncScaffolder(now=lambda: scaffolded))
    text = (target / "defs.yaml").read_text()
    assert "paused" not in text  # a paused sync runs nothing: the starter syncs when materialized
    (component,) = dg.ComponentTree.for_project(project).get_all_components(
        of_type=WarehouseSyncComponent
    )
    spec = component.registry.sync("web_orders")
    assert spec.schedule.start == datetime(2027, 3, 3, tzinfo=UTC)
    assert not spec.paused and spec.schedule.interval == "daily"
    check_catch_up(spec, scaffolded)


def test_the_sample_registry_names_no_local_secret() -> None:
    (component,) = sample_components()
    assert [s.name for s in component.registry.syncs][:3] == [
        "customer_scores",
        "ticket_activity",
        "churn_risk_alerts",
    ]
    assert sum(s.rotate for s in component.registry.syncs) == 6  # the rotating on-demand syncs
    secrets = {component.registry.connection.password_env} | {
        s.feed_key_env for s in component.registry.syncs
    }
    assert LOCAL_PASSWORD not in secrets and LOCAL_MPARTICLE.feed_key not in secrets


def _chain(error: BaseException | None) -> list[BaseException]:
    found = []
    while error is not None:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


# --- registry errors from the component: the defs.yaml's own lines, first ---------------------------


def test_dagster_raises_the_registry_error_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    text = component_yaml(registry, ticket_activity={"shedule": "hourly"})
    project = make_project(tmp_path, monkeypatch, {"support/defs.yaml": text})
    with pytest.raises(WarehouseSyncLoadError) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    # Not wrapped in Dagster's component-tree error: the registry's lines are the message.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert str(raised.value).startswith(f"{raised.value.source}: 1 problem(s) in the sync registry")
    assert raised.value.source.endswith("support/defs.yaml")


def _line(text: str, fragment: str, occurrence: int = 0) -> int:
    return [i + 1 for i, line in enumerate(text.splitlines()) if fragment in line][occurrence]


def test_a_duplicate_key_in_a_defs_yaml_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    text = component_yaml(registry)
    text = text.replace(
        "    database: WSYNC_DEMO\n", "    database: WSYNC_DEMO\n    database: OTHER\n"
    )
    text = text.replace(
        "    feed_key_env: MPARTICLE_FEED_KEY_CRM\n",
        "    feed_key_env: MPARTICLE_FEED_KEY_CRM\n    environment: development\n"
        "    environment: production\n",
        1,
    )
    project = make_project(tmp_path, monkeypatch, {"crm/defs.yaml": text})
    with pytest.raises(WarehouseSyncLoadError) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    first_db, second_db = _line(text, "database: WSYNC_DEMO"), _line(text, "database: OTHER")
    first_env, second_env = _line(text, "environment: development"), _line(text, "production")
    assert raised.value.problems == [
        f"registry: connection.database: duplicate key, written on line {first_db} and again on "
        f"line {second_db}; YAML keeps only the last one and drops the other silently: keep "
        "exactly one",
        f"sync 'customer_scores': environment: duplicate key, written on line {first_env} and "
        f"again on line {second_env}; YAML keeps only the last one and drops the other silently: "
        "keep exactly one",
    ]
    assert raised.value.lines == [second_db, second_env]
    assert f"crm/defs.yaml:{second_env}: sync 'customer_scores': environment:" in str(raised.value)


def test_syncs_written_twice_in_a_defs_yaml_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    text = component_yaml(registry) + "  syncs: []\n"
    project = make_project(tmp_path, monkeypatch, {"crm/defs.yaml": text})
    with pytest.raises(WarehouseSyncLoadError) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    assert raised.value.problems[0].startswith(
        f"registry: syncs: duplicate key, written on line {_line(text, 'syncs:')} and again on "
        f"line {_line(text, 'syncs:', 1)}"
    )


def test_templates_render_in_non_secret_fields_and_quoted_values_stay_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    monkeypatch.setenv("TEAM_DATABASE", "TEAM_DB")
    document = yaml.safe_load(component_yaml(registry))
    document["attributes"]["connection"].update(
        database="{{ env.TEAM_DATABASE }}", source_account_id="12345"
    )
    project = make_project(tmp_path, monkeypatch, {"crm/defs.yaml": yaml.safe_dump(document)})
    (component,) = dg.ComponentTree.for_project(project).get_all_components(
        of_type=WarehouseSyncComponent
    )
    assert component.registry.connection.database == "TEAM_DB"
    # Only templates are rendered: a quoted number is not turned into an int on the way.
    assert component.registry.connection.source_account_id == "12345"


def test_a_registry_file_goes_through_the_same_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    monkeypatch.setenv("TEAM_DATABASE", "TEAM_DB")
    document = yaml.safe_load(component_yaml(registry))
    document["attributes"]["connection"]["database"] = "{{ env.TEAM_DATABASE }}"
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(document["attributes"], sort_keys=False))
    component = WarehouseSyncComponent.from_registry_file(path)
    assert component.registry.connection.database == "TEAM_DB"
    text = path.read_text()
    assert component.lines["ticket_activity"] == _line(text, "name: ticket_activity")
    path.write_text(text.replace("name: ticket_activity", "name: ticket_activity\n  shedule: x"))
    with pytest.raises(WarehouseSyncLoadError) as raised:
        WarehouseSyncComponent.from_registry_file(path)
    assert raised.value.problems == [
        "sync 'ticket_activity': shedule: unknown key; remove it or check its spelling"
    ]


# --- translation: asset attributes in YAML, templated per sync -------------------------------------

TRANSLATION = {
    "key": "crm/{{ sync.name }}",
    "group_name": "{{ sync.tags.domain }}_syncs",
    "tags": {"cadence": "{{ sync.schedule.interval }}", "team": "growth"},
    "kinds": ["snowflake", "mparticle", "reverse_etl"],
}


def translated_project(
    root: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry, translation: dict[str, Any]
) -> tuple[Path, str]:
    document = yaml.safe_load(component_yaml(registry))
    document["attributes"]["translation"] = translation
    text = yaml.safe_dump(document, sort_keys=False)
    return make_project(root, monkeypatch, {"crm/defs.yaml": text}), text


def test_a_translation_rekeys_regroups_and_tags_each_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    project, _ = translated_project(tmp_path, monkeypatch, registry, TRANSLATION)
    defs = dg.load_from_defs_folder(path_within_project=project)
    specs = {
        s.key: s for a in defs.assets or () if isinstance(a, dg.AssetsDefinition) for s in a.specs
    }
    scores = specs[dg.AssetKey(["crm", "customer_scores"])]
    tickets = specs[dg.AssetKey(["crm", "ticket_activity"])]
    assert (scores.group_name, tickets.group_name) == ("crm_syncs", "support_syncs")
    # Tags merge into the translator's: the sync's own and wsync/* stay.
    assert scores.tags["cadence"] == "daily" and tickets.tags["cadence"] == "hourly"
    assert scores.tags["team"] == "growth" and scores.tags["domain"] == "crm"
    assert scores.tags["wsync/pipeline"] == "wsync-customer-scores"
    assert scores.kinds == {"snowflake", "mparticle", "reverse_etl"}
    assert scores.partitions_def is not None  # what the factory sets, no translation changes
    assert not any(key.path[0] == "mparticle" for key in specs)


def test_a_bad_translation_template_names_the_sync_the_field_and_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    translation = {**TRANSLATION, "group_name": "{{ sync.nmae }}"}
    project, text = translated_project(tmp_path, monkeypatch, registry, translation)
    with pytest.raises(WarehouseSyncLoadError) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    (problem,) = raised.value.problems
    assert problem.startswith(
        "sync 'customer_scores': translation.group_name: '{{ sync.nmae }}' cannot be applied: "
    )
    assert "nmae" in problem.split("cannot be applied: ")[1]  # what the template got wrong
    assert "A template sees sync (this sync's fields" in problem
    assert raised.value.lines == [_line(text, "group_name:")]


def test_a_translation_that_gives_two_syncs_one_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    project, _ = translated_project(tmp_path, monkeypatch, registry, {"key": "crm/all"})
    with pytest.raises(WarehouseSyncLoadError) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    assert raised.value.problems == [
        "sync 'ticket_activity': its asset key 'crm/all' is already the key of sync "
        "'customer_scores': every sync needs its own (translation.key: use {{ sync.name }} in it)"
    ]


# --- rules across the components of a code location (one mParticle workspace) ---------------------


def renamed(registry: Registry, suffix: str, **changes: Any) -> Registry:
    """``registry`` with each sync renamed (and its ids with it), its fields changed by ``changes``."""
    syncs = tuple(
        s.model_copy(update={"name": f"{s.name}{suffix}", **changes}) for s in registry.syncs
    )
    return registry.model_copy(update={"syncs": syncs})


def components_of(project: Path) -> list[WarehouseSyncComponent]:
    return sync_components(dg.ComponentTree.for_project(project))


def test_the_active_limit_counts_every_components_permanent_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    permanent = registry.model_copy(update={"syncs": registry.syncs[:3]})
    a, b = component_yaml(permanent), component_yaml(renamed(permanent, "_b"))
    project = make_project(tmp_path, monkeypatch, {"a/defs.yaml": a, "b/defs.yaml": b})
    with pytest.raises(WarehouseSyncLoadError) as raised:
        components_of(project)
    (problem,) = raised.value.problems
    assert problem.startswith(
        "code location: 6 active syncs (customer_scores, ticket_activity, churn_risk_alerts, "
        "customer_scores_b, ticket_activity_b, churn_risk_alerts_b) but mParticle allows 5"
    )
    assert "write that number in limits.max_active_pipelines" in problem
    assert f"customer_scores (a/defs.yaml:{_line(a, 'name: customer_scores')})" in problem
    assert f"churn_risk_alerts_b (b/defs.yaml:{_line(b, 'name: churn_risk_alerts_b')})" in problem


def test_rotating_syncs_need_a_slot_left_by_every_component(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    # a: the sample (3 permanent, 6 rotating: fine alone); b: 2 more permanent syncs.
    b_registry = renamed(registry.model_copy(update={"syncs": registry.syncs[:2]}), "_b")
    a, b = component_yaml(registry), component_yaml(b_registry)
    project = make_project(tmp_path, monkeypatch, {"a/defs.yaml": a, "b/defs.yaml": b})
    with pytest.raises(WarehouseSyncLoadError) as raised:
        components_of(project)
    (problem,) = raised.value.problems
    assert problem.startswith("code location: the rotating syncs (high_value_customers, ")
    assert "customer_scores_b, ticket_activity_b are active for ever and mParticle allows 5" in (
        problem
    )
    assert f"ticket_activity_b (b/defs.yaml:{_line(b, 'name: ticket_activity_b')})" in problem


def test_components_declaring_different_limits_are_refused_naming_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    one = registry.model_copy(update={"syncs": registry.syncs[:1]})
    limited = one.model_copy(update={"limits": Limits(max_active_pipelines=10)})
    files = {
        "a/defs.yaml": component_yaml(limited),
        "b/defs.yaml": component_yaml(renamed(one, "_b")),
    }
    project = make_project(tmp_path, monkeypatch, files)
    with pytest.raises(WarehouseSyncLoadError) as raised:
        components_of(project)
    assert raised.value.problems == [
        "code location: its registries declare different limits (a/defs.yaml: "
        "{max_active_pipelines: 10}; b/defs.yaml: none, i.e. mParticle's), but the limits "
        "belong to the one mParticle workspace they all sync into: write the same limits: "
        "block (your workspace's contract) in each"
    ]
    # The same contracted limits in both: six permanent syncs fit a limit of 10.
    permanent = limited.model_copy(update={"syncs": registry.syncs[:3]})
    files = {
        "a/defs.yaml": component_yaml(permanent),
        "b/defs.yaml": component_yaml(renamed(permanent, "_b")),
    }
    (tmp_path / "same").mkdir()
    project = make_project(tmp_path / "same", monkeypatch, files)
    assert len(components_of(project)) == 2
