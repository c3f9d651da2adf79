"""The embedded default's state folders come from the working directory or WSYNC_HOME, never from
where the package is installed (local/paths.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Imports the installed copy and prints every state folder the entry points would use.
_STATE_FOLDERS = """
import json, sys
import wsync_dagster
from wsync_dagster.local import demo
from wsync_dagster.local.deploy import cluster
# As local/deploy/__main__.py computes its --workdir default:
parser_default = cluster.PROJECT_ROOT / ".wsync" / "deploy"
print(json.dumps({
    "package": wsync_dagster.__file__,
    "demo workdir": str(demo.WORKDIR),
    "DAGSTER_HOME": str(demo.DAGSTER_HOME),
    "deploy workdir": str(parser_default),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as a non-editable install lays it out: in site-packages, no checkout around."""
    site = tmp_path_factory.mktemp("venv") / "lib" / "python3" / "site-packages"
    shutil.copytree(
        ROOT / "wsync_dagster", site / "wsync_dagster", ignore=shutil.ignore_patterns("__pycache__")
    )
    return site


def state_folders(site: Path, cwd: Path, **env: str) -> dict[str, Path]:
    cwd.mkdir(parents=True, exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "-c", _STATE_FOLDERS],
        cwd=cwd,
        env={**keep, "PYTHONPATH": str(site), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = {name: Path(path) for name, path in json.loads(result.stdout).items()}
    assert found.pop("package").is_relative_to(site)  # the copy, not this checkout
    return found


def test_state_lives_in_the_working_directory_not_in_the_install(
    installed: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    found = state_folders(installed, work)
    prefix = installed.parents[2]  # the environment the package is installed in
    assert found == {
        "demo workdir": work / ".wsync",
        "DAGSTER_HOME": work / ".dagster_home",
        "deploy workdir": work / ".wsync" / "deploy",
    }
    assert not [path for path in found.values() if path.is_relative_to(prefix)]


def test_wsync_home_moves_the_state(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "state"
    found = state_folders(installed, tmp_path / "work", WSYNC_HOME=str(home))
    assert found["demo workdir"] == home / ".wsync"
    assert found["DAGSTER_HOME"] == home / ".dagster_home"
    assert found["deploy workdir"] == home / ".wsync" / "deploy"
