"""The package's import rules, checked on the source (docs/architecture.md, "Import rules").

* Production (everything outside ``local/`` and ``emulator/``) never imports the local stand-ins, not
  even lazily inside a function: a team deploying the package must not get them on its code path.
* The emulator is a leaf: it imports nothing of ours outside itself, so it speaks the API on its own
  and cannot agree with a client bug.
* The client (``mparticle/``) knows no Dagster and nothing of ours outside itself.
* Layers point one way: ``mparticle`` <- ``resources`` <- ``sync`` <- ``definitions``.

Every import statement counts, wherever it stands (module level, function body, ``if TYPE_CHECKING``),
and so does ``importlib.import_module("...")`` with a literal name. A violation names the file, the
line and the import.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "wsync_dagster"
PACKAGE = "wsync_dagster"


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str
    from_names: bool = False

    def where(self, root: Path) -> str:
        # `from a.b import c, d` names the module a.b once for both (c and d may be submodules).
        module = self.module.rsplit(".", 1)[0] if self.from_names else self.module
        return f"{self.path.relative_to(root.parent)}:{self.line}: imports {module}"


def _dotted_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _dotted_name(path, root).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                base = (package or _dotted_name(path, root)).split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            # Inside the package, name what was imported (`from wsync_dagster.local import stack`
            # imports wsync_dagster.local.stack), which may be a submodule.
            inside = _within(module, PACKAGE)
            names = [f"{module}.{a.name}" for a in node.names] if inside else [module]
            for name in names:
                yield Import(path, node.lineno, name, from_names=inside and module != PACKAGE)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(path, node.lineno, node.args[0].value)


def _within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _area(path: Path, root: Path) -> str:
    """The top-level part of the package a file belongs to: 'local', 'emulator', 'mparticle', ..."""
    relative = path.relative_to(root)
    return relative.parts[0].removesuffix(".py") if len(relative.parts) >= 1 else ""


# What each area may not import (module prefixes), and why.
LOCAL = (f"{PACKAGE}.local", f"{PACKAGE}.emulator")
FORBIDDEN: dict[str, tuple[tuple[str, ...], str]] = {
    "mparticle": (
        (
            "dagster",
            "dagster_snowflake",
            *LOCAL,
            f"{PACKAGE}.resources",
            f"{PACKAGE}.sync",
            f"{PACKAGE}.definitions",
        ),
        "the client knows no Dagster and nothing of ours above it",
    ),
    "resources": (
        (*LOCAL, f"{PACKAGE}.sync", f"{PACKAGE}.definitions"),
        "resources sit on the client only; the local target's resources live in local/",
    ),
    "sync": (
        (*LOCAL, f"{PACKAGE}.definitions"),
        "production never imports the local stand-ins",
    ),
    "definitions": (LOCAL, "production never imports the local stand-ins"),
}


# The layers of sync/ point one way: registry <- engine <- assets <- observe. The registry and the
# engine know no Dagster: the engine takes the client, a Snowflake cursor, a clock and a log.
SYNC = f"{PACKAGE}.sync"
ABOVE_SYNC = (f"{PACKAGE}.component", f"{PACKAGE}.code_location", f"{PACKAGE}.definitions")
SYNC_LAYERS: dict[str, tuple[tuple[str, ...], str]] = {
    "registry": (
        ("dagster", "dagster_snowflake", f"{SYNC}.engine", f"{SYNC}.assets", f"{SYNC}.observe",
         f"{PACKAGE}.resources", *ABOVE_SYNC),
        "the registry is pure: no Dagster, nothing above it",
    ),
    "engine": (
        ("dagster", "dagster_snowflake", f"{SYNC}.assets", f"{SYNC}.observe",
         f"{PACKAGE}.resources", *ABOVE_SYNC),
        "the engine imports no Dagster: it takes the client, a cursor, a clock and a log",
    ),
    "assets": ((f"{SYNC}.observe", *ABOVE_SYNC), "sync/ layers point one way"),
    "observe": (ABOVE_SYNC, "sync/ layers point one way"),
}  # fmt: skip
COMPAT = "compat.py"


def _sync_layer(path: Path, root: Path) -> str | None:
    parts = path.relative_to(root).parts
    return parts[1] if len(parts) > 2 and parts[0] == "sync" else None


def violations(root: Path = PACKAGE_ROOT) -> list[str]:
    """Every import in the package under ``root`` that breaks a rule, as 'file:line: ...'."""
    found: dict[str, None] = {}  # ordered, one entry per statement and rule
    for path in sorted(root.rglob("*.py")):
        area = _area(path, root)
        layer = _sync_layer(path, root)
        for imp in _imports(path, root):
            private = imp.module.startswith("dagster._")
            if private and path.relative_to(root).as_posix() != COMPAT:
                found[
                    f"{imp.where(root)} (Dagster's private API lives only in {COMPAT}, "
                    "each use explained)"
                ] = None
            if layer in SYNC_LAYERS and _within(imp.module, *SYNC_LAYERS[layer][0]):
                found[f"{imp.where(root)} ({SYNC_LAYERS[layer][1]})"] = None
            if area == "emulator":
                if _within(imp.module, PACKAGE) and not _within(imp.module, f"{PACKAGE}.emulator"):
                    found[f"{imp.where(root)} (the emulator imports nothing of ours)"] = None
                continue
            if area == "local":
                continue
            forbidden, why = FORBIDDEN.get(area, (LOCAL, "production never imports local/"))
            if _within(imp.module, *forbidden):
                found[f"{imp.where(root)} ({why})"] = None
    return list(found)


def test_the_package_keeps_its_import_rules() -> None:
    problems = violations()
    assert not problems, "import rules broken:\n" + "\n".join(problems)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "resources.py",
            "import os\n\ndef f():\n    from wsync_dagster.local import stack\n",
            "wsync_dagster/resources.py:4: imports wsync_dagster.local (",
        ),
        (
            "sync/assets/factory.py",
            "import importlib\nimportlib.import_module('wsync_dagster.emulator')\n",
            "wsync_dagster/sync/assets/factory.py:2: imports wsync_dagster.emulator",
        ),
        (
            "definitions.py",
            "from wsync_dagster import local\n",
            "wsync_dagster/definitions.py:1: imports wsync_dagster.local",
        ),
        (
            "emulator/server.py",
            "from wsync_dagster.local.process import ServiceProcess\n",
            "wsync_dagster/emulator/server.py:1: imports wsync_dagster.local.process",
        ),
        (
            "emulator/app.py",
            "from wsync_dagster.mparticle import models\n",
            "wsync_dagster/emulator/app.py:1: imports wsync_dagster.mparticle",
        ),
        (
            "mparticle/client.py",
            "import dagster as dg\n",
            "wsync_dagster/mparticle/client.py:1: imports dagster",
        ),
        (
            "sync/engine/reconcile.py",
            "import dagster as dg\n",
            "wsync_dagster/sync/engine/reconcile.py:1: imports dagster (the engine imports no Dagster",
        ),
        (
            "sync/registry/specs.py",
            "from wsync_dagster.sync.engine import runs\n",
            "wsync_dagster/sync/registry/specs.py:1: imports wsync_dagster.sync.engine (the registry",
        ),
        (
            "sync/observe/sensor.py",
            "from dagster._core.execution.backfill import BulkActionsFilter\n",
            "wsync_dagster/sync/observe/sensor.py:1: imports dagster._core.execution.backfill "
            "(Dagster's private API lives only in compat.py",
        ),
        (
            "sync/engine/runs.py",
            "from ...local import stack\n",
            "wsync_dagster/sync/engine/runs.py:1: imports wsync_dagster.local (",
        ),
    ],
)
def test_a_bad_import_is_named_with_file_and_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    root = _tree(tmp_path, {name: text})
    problems = violations(root)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_allowed_imports_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "local/stack.py": "from wsync_dagster.sync.registry.specs import Registry\n"
            "from wsync_dagster.emulator import EmulatorControl\n",
            "emulator/app.py": "from wsync_dagster.emulator.state import Backend\nimport starlette\n",
            "sync/assets/factory.py": "import dagster\nfrom wsync_dagster.mparticle import PipelineRun\n",
            "sync/engine/rotation.py": "from wsync_dagster.sync.registry.specs import SyncSpec\n",
            "compat.py": "from dagster._core.execution.api import execute_run\n",
            "definitions.py": "from wsync_dagster.sync.assets.factory import build\n",
        },
    )
    assert violations(root) == []


def test_the_tests_use_dagsters_private_api_only_through_compat() -> None:
    tests = Path(__file__).resolve().parent
    found = [
        f"{path.relative_to(tests.parent)}:{imp.line}: imports {imp.module}"
        for path in sorted(tests.rglob("*.py"))
        for imp in _imports(path, tests)
        if imp.module.startswith("dagster._")
    ]
    assert not found, "import wsync_dagster.compat instead:\n" + "\n".join(found)
