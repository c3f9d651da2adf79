"""WarehouseSyncComponent loaded from YAML in a temporary dg project, and its translator."""

import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from wsync_dagster.code_location import sync_components
from wsync_dagster.component import WarehouseSyncComponent, WarehouseSyncScaffolder
from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.local.resources import LOCAL_MPARTICLE
from wsync_dagster.local.sample_defs import sample_components
from wsync_dagster.local.snowflake import LOCAL_PASSWORD
from wsync_dagster.sync.assets.translator import WarehouseSyncProps, WarehouseSyncTranslator
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


def test_the_scaffolded_starter_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path, monkeypatch, {})
    (defs_dir,) = [p for p in project.iterdir() if p.name.startswith("wsync_tmp_")]
    target = defs_dir / "defs" / "web-orders"
    WarehouseSyncScaffolder().scaffold(
        dg.ScaffoldRequest(
            type_name=TYPE,
            target_path=target,
            scaffold_format="yaml",
            project_root=project,
            params=None,
        )
    )
    assert (target / "defs.yaml").read_text().startswith("# A registry of synced tables")
    defs = dg.load_from_defs_folder(path_within_project=project)
    keys = {k for a in defs.assets or () if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    assert keys == {dg.AssetKey(["mparticle", "web_orders"])}
    # The syncs' resources are bound once per defs folder, so the starter loads on its own.
    assert (target.parent / "wsync_resources.py").exists()
    dg.Definitions.validate_loadable(defs)


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
