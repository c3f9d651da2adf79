"""The `dg` CLI on this project and on a project using the component, from an empty environment."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wsync_dagster.local.dg_project import write_local_project
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY

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
    """The production defs folder ships no sync: no asset, no job, the sensors over nothing."""
    listed = run_dg("list", "defs", "--json", cwd=ROOT, home=tmp_path / "home")
    assert listed.returncode == 0, listed.stderr[-3000:]
    found = json.loads(listed.stdout)
    assert found.get("assets", []) == [] and found.get("jobs", []) == []
    assert sorted(s["name"] for s in found["sensors"]) == [
        "wsync_drift_sensor",
        "wsync_runs_sensor",
    ]


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


@pytest.fixture
def project_with_a_bad_field(tmp_path: Path) -> tuple[Path, int]:
    """A dg project whose one WarehouseSyncComponent misspells a field; and that field's line."""
    root = tmp_path / "project"
    package = root / "teamproj"
    (package / "defs" / "crm").mkdir(parents=True)
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
    lines = SAMPLE_REGISTRY.read_text().splitlines()
    at = lines.index("    - name: ticket_activity") + 1
    lines.insert(at, "      shedule: hourly")
    (package / "defs" / "crm" / "defs.yaml").write_text("\n".join(lines) + "\n")
    return root, at + 1


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
