"""The `dg` CLI on this project and on a project using the component, from an empty environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wsync_dagster.sync.registry.specs import DEFAULT_REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DG = str(Path(sys.executable).parent / "dg")


def run_dg(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """``dg`` with no target or secrets in the environment (only PATH, HOME, PYTHONPATH)."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), str(cwd)) if p),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [DG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_dg_list_defs_shows_each_sync_with_its_source_table(tmp_path: Path) -> None:
    listed = run_dg("list", "defs", "--json", cwd=ROOT, home=tmp_path / "home")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assets = {a["asset_key"]: a for a in json.loads(listed.stdout)["assets"]}
    expected = {
        "mparticle/customer_scores": "snowflake/wsync_demo/crm/customer_scores",
        "mparticle/ticket_activity": "snowflake/wsync_demo/support/ticket_activity",
        "mparticle/churn_risk_alerts": "snowflake/wsync_demo/crm/customer_scores",
    }
    for key, source_table in expected.items():
        assert assets[key]["dependency_keys"] == [source_table]
        # Where the component declares the sync: its registry entry in the defs folder.
        assert assets[key]["source"].startswith("wsync_dagster/defs/warehouse_sync/defs.yaml:")
        assert source_table in assets
    assert assets["mparticle/churn_risk_alerts"]["automation_condition"]["label"] == "eager"


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
    lines = DEFAULT_REGISTRY.read_text().splitlines()
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
