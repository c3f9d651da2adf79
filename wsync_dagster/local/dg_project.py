"""``dg`` on the local code location: ``python -m wsync_dagster.local.dg_project check defs``.

``dg`` takes its project from ``[tool.dg]`` in pyproject.toml, which names one defs folder and one
code location: the production ones (``wsync_dagster/defs/``, ``wsync_dagster.definitions``). To run
``dg`` on the local code location (the sample: ``wsync_dagster/local/defs/``,
``wsync_dagster.local.definitions``) the same way, this writes that second project's configuration
in a temporary folder, links the package into it (``dg`` finds a project's modules under its
root), and runs ``dg`` there with the arguments given. ``python3 dev.py test`` runs ``check defs``
with it: the local defs folder's YAML is checked against the component's schema, then the code
location is loaded and validated, exactly as ``dg check defs`` does for production.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import wsync_dagster

PROJECT = """\
[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "wsync_dagster"
defs_module = "wsync_dagster.local.defs"
code_location_target_module = "wsync_dagster.local.definitions"
code_location_name = "wsync_dagster_local"
registry_modules = ["wsync_dagster"]
"""


def write_local_project(root: Path) -> Path:
    """A dg project at ``root`` for the local code location; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PROJECT, encoding="utf-8")
    package = Path(wsync_dagster.__file__).resolve().parent
    (root / "wsync_dagster").symlink_to(package, target_is_directory=True)
    return root


def run_dg(args: list[str], root: Path) -> int:
    """``dg <args>`` in the local project at ``root`` (written by :func:`write_local_project`)."""
    dg = str(Path(sys.executable).parent / "dg")
    return subprocess.run([dg, *args], cwd=root, env=dict(os.environ), check=False).returncode


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="wsync-local-dg-") as folder:
        return run_dg(argv, write_local_project(Path(folder) / "project"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
