"""The `dg` CLI on this project and on a project using the component, from an empty environment."""

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from wsync_dagster.component import WarehouseSyncComponent
from wsync_dagster.local.dg_project import write_local_project
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.sync.engine.reconcile import check_catch_up

ROOT = Path(__file__).resolve().parents[1]
DG = str(Path(sys.executable).parent / "dg")


def run_dg(
    *args: str, cwd: Path, home: Path, copy_first: bool = False
) -> subprocess.CompletedProcess[str]:
    """``dg`` with no setting or secret in the environment (only PATH, HOME, PYTHONPATH);
    ``copy_first``: ``cwd`` holds a copy of the package, imported instead of this checkout's."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(
            [str(cwd), str(ROOT)] if copy_first else [str(ROOT), str(cwd)]
        ),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [DG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_dg_lists_an_empty_production_location(tmp_path: Path) -> None:
    """The production defs folder ships no sync: no asset, no job, the runs sensor over nothing."""
    listed = run_dg("list", "defs", "--json", cwd=ROOT, home=tmp_path / "home")
    assert listed.returncode == 0, listed.stderr[-3000:]
    found = json.loads(listed.stdout)
    assert found.get("assets", []) == [] and found.get("jobs", []) == []
    assert [s["name"] for s in found["sensors"]] == ["wsync_runs_sensor"]


def test_dg_list_defs_on_the_local_location_shows_each_sync_with_its_source_table(
    tmp_path: Path,
) -> None:
    project = write_local_project(tmp_path / "project")
    listed = run_dg("list", "defs", "--json", cwd=project, home=tmp_path / "home")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assets = {a["asset_key"]: a for a in json.loads(listed.stdout)["assets"]}
    expected = {
        "mparticle/customer_scores": "snowflake/wsync_demo/crm/customer_scores",
        "mparticle/ticket_activity": "snowflake/wsync_demo/support/ticket_activity",
        "mparticle/churn_risk_alerts": "snowflake/wsync_demo/crm/customer_scores",
    }
    for key, source_table in expected.items():
        assert assets[key]["dependency_keys"] == [source_table]
        # Where the component declares the sync: its registry entry in the local defs folder.
        assert assets[key]["source"].startswith(
            "wsync_dagster/local/defs/warehouse_sync/defs.yaml:"
        )
        assert source_table in assets
    assert assets["mparticle/churn_risk_alerts"]["automation_condition"]["label"] == "eager"


def test_dg_check_defs_checks_the_local_defs_folder(tmp_path: Path) -> None:
    """What `dev.py test` runs: a mistake in the sample's YAML fails it, with file and line."""
    project = write_local_project(tmp_path / "project")
    # A copy of the package in place of the link, so that the mistake stays in the copy.
    (project / "wsync_dagster").unlink()
    shutil.copytree(
        ROOT / "wsync_dagster",
        project / "wsync_dagster",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    registry = project / "wsync_dagster" / "local" / "defs" / "warehouse_sync" / "defs.yaml"
    lines = registry.read_text().splitlines()
    at = lines.index("    - name: ticket_activity") + 1
    lines.insert(at, "      shedule: hourly")
    registry.write_text("\n".join(lines) + "\n")
    checked = run_dg("check", "defs", cwd=project, home=tmp_path / "home", copy_first=True)
    assert checked.returncode == 1
    output = checked.stdout + checked.stderr
    assert f"warehouse_sync/defs.yaml:{at + 1}: sync 'ticket_activity': shedule: unknown key" in (
        output
    ), output[-3000:]


def make_project(root: Path, defs_yaml: str | None = None) -> Path:
    """A dg project ``teamproj`` under ``root`` using the component; ``defs_yaml`` in defs/crm/."""
    package = root / "teamproj"
    (package / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "teamproj"\n'
        'registry_modules = ["wsync_dagster"]\n'
    )
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n"
        "defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    if defs_yaml is not None:
        (package / "defs" / "crm").mkdir()
        (package / "defs" / "crm" / "defs.yaml").write_text(defs_yaml)
    return root


@pytest.fixture
def project_with_a_bad_field(tmp_path: Path) -> tuple[Path, int]:
    """A dg project whose one WarehouseSyncComponent misspells a field; and that field's line."""
    lines = SAMPLE_REGISTRY.read_text().splitlines()
    at = lines.index("    - name: ticket_activity") + 1
    lines.insert(at, "      shedule: hourly")
    return make_project(tmp_path / "project", "\n".join(lines) + "\n"), at + 1


def test_dg_check_defs_points_at_the_yaml_line(
    project_with_a_bad_field: tuple[Path, int], tmp_path: Path
) -> None:
    root, line = project_with_a_bad_field
    checked = run_dg("check", "defs", cwd=root, home=tmp_path / "home")
    assert checked.returncode == 1
    output = checked.stdout + checked.stderr
    assert (
        f"teamproj/defs/crm/defs.yaml:{line}: sync 'ticket_activity': shedule: unknown key; "
        "remove it or check its spelling" in output
    ), output[-3000:]


def test_dg_lists_the_component_type(project_with_a_bad_field: tuple[Path, int], tmp_path: Path):
    root, _ = project_with_a_bad_field
    components = run_dg("list", "components", "--json", cwd=root, home=tmp_path / "home")
    assert components.returncode == 0, components.stderr[-3000:]
    listed = {c["key"]: c["summary"] for c in json.loads(components.stdout)["items"]}
    assert listed["wsync_dagster.WarehouseSyncComponent"].startswith("Keeps Snowflake tables")


def test_dg_check_defs_refuses_a_duplicate_key_with_the_registrys_lines_first(
    tmp_path: Path,
) -> None:
    lines = SAMPLE_REGISTRY.read_text().splitlines()
    at = lines.index("    - name: ticket_activity") + 1
    first = next(i for i in range(at, len(lines)) if "environment: development" in lines[i])
    lines.insert(first + 1, "      environment: production")
    root = make_project(tmp_path / "project", "\n".join(lines) + "\n")
    checked = run_dg("check", "defs", cwd=root, home=tmp_path / "home")
    assert checked.returncode == 1
    output = checked.stdout + checked.stderr
    expected = (
        f"teamproj/defs/crm/defs.yaml:{first + 2}: sync 'ticket_activity': environment: duplicate "
        f"key, written on line {first + 1} and again on line {first + 2}; YAML keeps only the last "
        "one and drops the other silently: keep exactly one"
    )
    assert expected in output, output[-3000:]
    # The registry's lines come first: no component-tree wrapper, no stack trace before them.
    assert "ComponentTreeException" not in output
    assert output.index(expected) < output.index("Stack Trace")


def test_dg_json_schema_types_each_sync_and_the_connection(
    project_with_a_bad_field: tuple[Path, int], tmp_path: Path
) -> None:
    root, _ = project_with_a_bad_field
    inspected = run_dg(
        "utils",
        "inspect-component",
        "wsync_dagster.WarehouseSyncComponent",
        "--defs-yaml-json-schema",
        cwd=root,
        home=tmp_path / "home",
    )
    assert inspected.returncode == 0, inspected.stderr[-3000:]
    schema = json.loads(inspected.stdout)
    attributes = schema["properties"]["attributes"]
    assert "$ref" not in json.dumps(attributes)  # self-contained where dg embeds it
    sync = attributes["properties"]["syncs"]["items"]
    fields = sync["properties"]
    for name in ("name", "description", "sql", "schedule", "load_timestamp", "feed_key_env"):
        assert fields[name]["description"], name
    assert sync["required"] == ["name", "description", "sql"]  # the rest may come from defaults
    interval = fields["schedule"]["anyOf"][0]["properties"]["interval"]
    assert "on_demand" in json.dumps(interval) and "hourly" in json.dumps(interval)
    connection = attributes["properties"]["connection"]
    assert "environment variable" in connection["properties"]["password_env"]["description"]
    assert "password_env" in connection["required"]
    assert {"defaults", "translation", "limits"} <= set(attributes["properties"])


def test_dg_scaffold_writes_a_starter_that_loads_and_starts_within_the_catch_up_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "project")
    scaffolded = run_dg(
        "scaffold",
        "defs",
        "wsync_dagster.WarehouseSyncComponent",
        "web_orders",
        cwd=root,
        home=tmp_path / "home",
    )
    assert scaffolded.returncode == 0, scaffolded.stderr[-3000:]
    monkeypatch.syspath_prepend(str(root))
    tree = dg.ComponentTree.for_project(root)
    (component,) = tree.get_all_components(of_type=WarehouseSyncComponent)
    check_catch_up(component.registry.sync("web_orders"), datetime.now(UTC))
    assert not component.registry.sync("web_orders").paused
    assert (root / "teamproj" / "defs" / "wsync_resources.py").exists()
