"""YAML loading that refuses duplicate keys, which YAML parsers otherwise resolve silently (last wins).

A registry with two ``sql:`` keys in one sync would load the second one, so a reviewer could approve
one model while another is synced. :func:`load_strict` parses with libyaml where PyYAML has it (the
fast path), then, before building any Python object, walks the parsed node tree once and records
every mapping key that appears twice, with its line and the name of the sync it is in.

``dg`` parses a ``defs.yaml`` itself, keeping the last of two keys, so the component also reads its
own file with :func:`duplicate_keys`. In a component's document (``type`` and ``attributes``), keys
are named from the registry, i.e. from ``attributes``.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# libyaml's parser where PyYAML was built with it: about 5x faster than the pure-Python one.
_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class DuplicateKey:
    """A mapping key written twice: ``path`` is dotted from the sync (or the document root)."""

    sync: str | None
    path: str
    line: int
    first_line: int

    def describe(self) -> str:
        where = f"sync '{self.sync}'" if self.sync else "registry"
        lines = (
            f"twice on line {self.line}"
            if self.line == self.first_line
            else f"on line {self.first_line} and again on line {self.line}"
        )
        return (
            f"{where}: {self.path}: duplicate key, written {lines}; YAML keeps only the last one "
            "and drops the other silently: keep exactly one"
        )


class _DuplicateKeyCheck:
    """Mixed into a safe loader: checks the whole node tree before constructing the document."""

    duplicates: list[DuplicateKey]

    def construct_document(self, node: Node) -> Any:
        self.duplicates = sorted(_duplicates(node), key=lambda d: d.line)
        return super().construct_document(node)  # pyright: ignore[reportAttributeAccessIssue]


class _FastLoader(_DuplicateKeyCheck, _BASE_LOADER):
    pass


class _PureLoader(_DuplicateKeyCheck, yaml.SafeLoader):
    pass


def load_strict(text: str, fast: bool = True) -> tuple[Any, list[DuplicateKey]]:
    """The document in ``text`` and every duplicate key in it (the document keeps the last ones).

    ``fast=False`` uses the pure-Python parser, whose syntax errors quote the line and point at the
    column.
    """
    loader = (_FastLoader if fast else _PureLoader)(text)
    try:
        return loader.get_single_data(), getattr(loader, "duplicates", [])
    finally:
        loader.dispose()


def _scalar_value(mapping: Node, key: str) -> Node | None:
    """The value node under scalar ``key`` in ``mapping`` (the first one), None if absent."""
    if isinstance(mapping, MappingNode):
        for k, v in mapping.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return v
    return None


def duplicate_keys(text: str) -> list[DuplicateKey]:
    """Every duplicate key in every YAML document of ``text`` (a ``defs.yaml`` may hold several),
    by line. Raises ``yaml.YAMLError`` when ``text`` is not YAML."""
    found: list[DuplicateKey] = []
    for root in yaml.compose_all(text, Loader=_BASE_LOADER):
        if root is not None:
            found += _duplicates(root)
    return sorted(found, key=lambda d: d.line)


def _registry(root: Node) -> Node:
    """The registry in a document: its ``attributes`` if it is a component's, else the root."""
    attributes = _scalar_value(root, "attributes")
    if attributes is not None and _scalar_value(root, "type") is not None:
        return attributes
    return root


def _sync_names(registry: Node) -> dict[int, str]:
    """id(node) of each entry under the registry's ``syncs`` -> its ``name`` (if a scalar)."""
    syncs = _scalar_value(registry, "syncs")
    names: dict[int, str] = {}
    for item in syncs.value if isinstance(syncs, SequenceNode) else ():
        if isinstance(name := _scalar_value(item, "name"), ScalarNode):
            names[id(item)] = name.value
    return names


def _label(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _duplicates(root: Node) -> Iterator[DuplicateKey]:
    """Each key that repeats within one mapping, anywhere under ``root`` (aliases visited once).

    Runs before construction on every registry load, so it stays lean: scalars are never pushed,
    and a path is only spelled out for a duplicate.
    """
    registry = _registry(root)
    names = _sync_names(registry)
    seen: set[int] = set()
    stack: list[tuple[Node, str | None, tuple[str | int, ...]]] = [(root, None, ())]
    while stack:
        node, sync, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node is registry:  # keys are named from the registry
            path = ()
        if id(node) in names:  # a sync's entry: its keys are named from the sync
            sync, path = names[id(node)], ()
        if isinstance(node, SequenceNode):
            stack.extend(
                (item, sync, (*path, i))
                for i, item in enumerate(node.value)
                if not isinstance(item, ScalarNode)
            )
            continue
        if not isinstance(node, MappingNode):  # only the document itself can be a scalar
            continue
        first: dict[tuple[str, str], ScalarNode] = {}
        for key, value in node.value:
            scalar = isinstance(key, ScalarNode)
            if scalar and key.tag != _MERGE_TAG:
                earlier = first.setdefault((key.tag, key.value), key)
                if earlier is not key:
                    yield DuplicateKey(
                        sync,
                        _label((*path, key.value)),
                        key.start_mark.line + 1,
                        earlier.start_mark.line + 1,
                    )
            if not isinstance(value, ScalarNode):
                stack.append((value, sync, (*path, key.value if scalar else "?")))
