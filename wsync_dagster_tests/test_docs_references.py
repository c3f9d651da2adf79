"""What the docs and docstrings cite exists: a page or docstring naming a moved module fails here.

Read: ``docs/*.md``, ``deploy/``, ``benchmarks/``, ``dev.py`` and every file of ``wsync_dagster/``
(docstrings, comments and strings alike). Four kinds of citation are checked:

* **A repository path**: ``wsync_dagster/...``, ``wsync_dagster_tests/...``, ``benchmarks/...``,
  ``deploy/...``, ``docs/...``, or a path inside the package: a ``.py`` file, or a folder of two parts
  or more (``sync/assets/steps.py``, ``local/defs/``, as docs/architecture.md writes them): a file or
  folder of that name exists (under ``wsync_dagster/``, ``wsync_dagster/sync/``, the citing file's
  folder or ``wsync_dagster_tests/``).
* **``path.py: name``** in one code span (``sync/engine/runs.py: Pace``): ``name`` is defined or
  imported at the top level of that file, or defined in one of its classes.
* **``wsync_dagster.a.b``** in a page of ``docs/``: a module of the package, or a name defined in one.
* **A Sphinx role naming our code** (``:func:`~.reconcile.plan_sync```, ``:mod:`wsync_dagster.x```,
  ``:class:`Window```): it resolves to a module of the package and a name defined there, the
  relative form from the citing module's package or one of its parents, a bare name in the citing
  module (or what it imports).

A failure names the file, the line and what it cites.
"""

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wsync_dagster"

TOP_LEVEL = ("wsync_dagster_tests", "wsync_dagster", "benchmarks", "deploy", "docs")
INSIDE_PACKAGE = (
    "sync",
    "local",
    "emulator",
    "mparticle",
    "defs",
    "registry",
    "engine",
    "assets",
    "observe",
    "routes",
    "backend",
)
# A path starts a word (not inside a URL or another path) and ends on a letter, digit or `/`.
_REPO_PATH = re.compile(rf"(?<![\w/.-])((?:{'|'.join(TOP_LEVEL)})/[\w./-]*[\w/])")
# A file (`sync/assets/steps.py`), or a folder of two parts or more (`local/defs/`): a lone `sync/`
# or `routes/` in an indented file tree is a folder of whatever the tree nests it in.
_PACKAGE_PATH = re.compile(
    rf"(?<![\w/.-])((?:{'|'.join(INSIDE_PACKAGE)})/(?:[\w-]+/)+(?=[\s`),;:])"
    rf"|(?:{'|'.join(INSIDE_PACKAGE)})/(?:[\w-]+/)*[\w-]+\.py\b)"
)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_PATH_NAME = re.compile(r"^([\w./-]+\.py): ?(\w+(?:\.\w+)?)(?:\(\))?$")
_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|exc|obj):`~?([\w.]+)`")
_TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".txt", ".toml"}


def _cited_files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "dev.py", *sorted((ROOT / "docs").glob("*.md"))]
    for folder in (PACKAGE, ROOT / "benchmarks", ROOT / "deploy"):
        found += sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and p.suffix in _TEXT_SUFFIXES and "__pycache__" not in p.parts
        )
    return found


def _lines(text: str) -> Iterator[tuple[int, str]]:
    yield from enumerate(text.splitlines(), start=1)


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def _resolve_path(cited: str, by: Path) -> Path | None:
    """The file or folder ``cited`` names, from the repository root or inside the package."""
    cited = cited.rstrip("/")
    roots = (
        [ROOT]
        if cited.split("/", 1)[0] in TOP_LEVEL
        else [PACKAGE, PACKAGE / "sync", by.parent, ROOT / "wsync_dagster_tests"]
    )
    for root in roots:
        candidate = root / cited
        if candidate.exists():
            return candidate
    return None


def _path_problems(path: Path, text: str) -> Iterator[str]:
    for number, line in _lines(text):
        cited = [m.group(1) for m in _REPO_PATH.finditer(line)]
        cited += [m.group(1) for m in _PACKAGE_PATH.finditer(line)]
        for one in cited:
            if _resolve_path(one, path) is None:
                yield f"{_where(path, number)}: cites {one}, which does not exist"


@dataclass(frozen=True)
class ModuleNames:
    """What one module of ours binds: at top level, in each class, and where its imports come from."""

    top: frozenset[str]
    classes: dict[str, frozenset[str]]
    bases: dict[str, tuple[str, ...]]
    imported_from: dict[str, str]  # name -> the module of ours it was imported from


def _bound(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, ast.If | ast.Try):
        inner = [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
        inner += [s for h in getattr(node, "handlers", []) for s in h.body]
        return {name for s in inner for name in _bound(s)}
    return set()


@functools.cache
def _names(module_file: Path) -> ModuleNames:
    tree = ast.parse(module_file.read_text(encoding="utf-8"), filename=str(module_file))
    top: set[str] = set()
    classes: dict[str, frozenset[str]] = {}
    bases: dict[str, tuple[str, ...]] = {}
    imported_from: dict[str, str] = {}
    for node in tree.body:
        top |= _bound(node)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wsync_dagster"):
            for alias in node.names:
                imported_from[alias.asname or alias.name] = node.module or ""
        if isinstance(node, ast.ClassDef):
            members = {name for s in node.body for name in _bound(s)}
            # instance attributes set in methods (`self.x = ...`)
            members |= {
                n.attr
                for n in ast.walk(node)
                if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id == "self"
                and isinstance(n.ctx, ast.Store)
            }
            classes[node.name] = frozenset(members)
            bases[node.name] = tuple(b.id for b in node.bases if isinstance(b, ast.Name))
    return ModuleNames(frozenset(top), classes, bases, imported_from)


def _members(module_file: Path, class_name: str) -> frozenset[str]:
    """What a class of ours defines, its own and inherited from its bases in the package."""
    names = _names(module_file)
    found = set(names.classes.get(class_name, frozenset()))
    for base in names.bases.get(class_name, ()):
        if base in names.classes:
            found |= _members(module_file, base)
        elif base in names.imported_from and (base_file := _module_file(names.imported_from[base])):
            found |= _members(base_file, base)
    return frozenset(found)


def _module_file(dotted: str) -> Path | None:
    parts = dotted.split(".")
    if not parts or parts[0] != "wsync_dagster":
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _our_module_names() -> frozenset[str]:
    """The last part of every module and package name of ours (``observe``, ``batch``, ...)."""
    return frozenset(
        p.parent.name if p.name == "__init__.py" else p.stem for p in PACKAGE.rglob("*.py")
    )


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _defines(module_file: Path, rest: list[str]) -> bool:
    """Whether ``rest`` (``name`` or ``Class.member``) is defined in ``module_file``."""
    names = _names(module_file)
    if not rest:
        return True
    if rest[0] not in names.top:
        return False
    if len(rest) == 1 or rest[0] not in names.classes:
        return True  # a name imported from elsewhere, or an attribute of a non-class: accepted
    return rest[1] in _members(module_file, rest[0])


def _in_any_class(module_file: Path, name: str) -> bool:
    return any(name in _members(module_file, c) for c in _names(module_file).classes)


def _resolves(dotted: str) -> bool:
    """Whether ``wsync_dagster.a.b.name`` is a module of the package or a name defined in one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_file = _module_file(".".join(parts[:cut]))
        if module_file is not None:
            return _defines(module_file, parts[cut:])
    return False


def _role_problems(path: Path, text: str) -> Iterator[str]:
    if path.suffix != ".py":
        return
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    # Relative names resolve from the citing module, its package, or one of the package's parents.
    scopes = [module]
    scope = package
    while scope:
        scopes.append(scope)
        scope = scope.rpartition(".")[0]
    for number, line in _lines(text):
        for match in _ROLE.finditer(line):
            target = match.group(1)
            if target.startswith("."):
                ok = any(_resolves(f"{s}{target}") for s in scopes)
            elif target.startswith("wsync_dagster."):
                ok = _resolves(target)
            elif "." not in target:
                # A bare name: defined or imported by the citing module, or a member of one of its
                # classes (Sphinx looks in the class whose docstring cites it).
                ok = target in _names(path).top or _in_any_class(path, target)
            elif target.split(".", 1)[0] in _names(path).top:
                ok = _defines(path, target.split("."))  # Class.member of the citing module
            elif target.split(".", 1)[0] in _our_module_names():
                # `module.name` with a module of ours the citing module does not import
                ok = any(_resolves(f"{s}.{target}") for s in scopes)
            else:
                continue  # another library's name (dagster.Failure, snowflake.connector, ...)
            if not ok:
                yield f"{_where(path, number)}: cites {match.group(0)}, which does not resolve"


_DOTTED = re.compile(r"(?<![\w.])(wsync_dagster(?:\.\w+)+)")


def _dotted_problems(path: Path, text: str) -> Iterator[str]:
    """In a page of docs/, ``wsync_dagster.a.b`` names a module of ours or a name defined in one."""
    if path.suffix != ".md":
        return
    for number, line in _lines(text):
        for match in _DOTTED.finditer(line):
            if not _resolves(match.group(1)):
                yield f"{_where(path, number)}: cites {match.group(1)}, which does not resolve"


def _path_name_problems(path: Path, text: str) -> Iterator[str]:
    for number, line in _lines(text):
        for span in _CODE_SPAN.finditer(line):
            match = _PATH_NAME.match(span.group(2).strip())
            if match is None:
                continue
            cited, name = match.groups()
            module_file = _resolve_path(cited, path)
            if module_file is None or not module_file.is_file():
                yield f"{_where(path, number)}: cites {cited}, which does not exist"
            elif not (_defines(module_file, name.split(".")) or _in_any_class(module_file, name)):
                yield f"{_where(path, number)}: cites {cited}: {name}, not defined in that file"


def _problems(path: Path, text: str) -> list[str]:
    """What ``text``, written at ``path``, cites that does not exist."""
    return [
        *_path_problems(path, text),
        *_path_name_problems(path, text),
        *_role_problems(path, text),
        *_dotted_problems(path, text),
    ]


def test_every_citation_resolves() -> None:
    problems = [
        problem
        for path in _cited_files()
        for problem in _problems(path, path.read_text(encoding="utf-8"))
    ]
    assert not problems, "Stale citations (fix the text, or the name it cites):\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("see `sync/specs.py` for the models", "cites sync/specs.py, which does not exist"),
        ("see wsync_dagster/sync/sensor.py", "cites wsync_dagster/sync/sensor.py, which does not"),
        ("the sample, `local/defs/nowhere/`", "cites local/defs/nowhere/, which does not exist"),
        ("an indented tree's `routes/` and `sync/`", None),
        ("`sync/engine/runs.py: Pacer` polls", "sync/engine/runs.py: Pacer, not defined"),
        ("`sync/engine/runs.py: Pace` polls", None),
        ("`sync/engine/runs.py: WindowWatch.progress`", None),
        (":func:`~.engine.reconcile.no_such_thing`", "does not resolve"),
        (":func:`~.engine.reconcile.plan_sync`", None),
        (":mod:`wsync_dagster.sync.rotation`", "does not resolve"),
        (":func:`observe.read_batch`", "does not resolve"),
        (":func:`registry.specs.load_registry`", None),
        (":class:`wsync_dagster.sync.registry.windows.Window`", None),
        ("metadata `mparticle/run_id`, asset mparticle/customer_scores", None),
    ],
)
def test_the_checker_catches_a_stale_citation(text: str, problem: str | None) -> None:
    """Each kind of citation, stale and current, as if written in a module of the package."""
    found = _problems(PACKAGE / "sync" / "observe" / "sensor.py", f"A probe.\n\n{text}\n")
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0], found


def test_a_page_naming_a_moved_module_is_caught() -> None:
    page = ROOT / "docs" / "probe.md"
    text = "`wsync_dagster.sync.sensor` moved; `wsync_dagster.sync.observe.sensor` did not.\n"
    assert _problems(page, text) == [
        "docs/probe.md:1: cites wsync_dagster.sync.sensor, which does not resolve"
    ]


_MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_markdown_link_to_a_repository_file_resolves() -> None:
    """README.md and docs/*.md link to pages and files by relative path: each must exist."""
    problems = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for target in _MD_LINK.findall(line):
                path = target.split("#", 1)[0]
                if not path or "://" in path or path.startswith("mailto:"):
                    continue
                if not (page.parent / path).exists():
                    problems.append(f"{_where(page, number)}: links {target}")
    assert not problems, "\n".join(problems)


def test_the_readme_is_a_front_door() -> None:
    """At most 300 lines, with the two commands; the reference lives in docs/ (issue 17)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert "python3 dev.py demo" in text and "python3 dev.py test" in text
