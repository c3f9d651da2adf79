"""The registry of synced tables: its one loader, run before anything else happens.

A registry is the ``attributes`` of a ``WarehouseSyncComponent`` in a ``defs.yaml`` (the sample:
``wsync_dagster/local/defs/warehouse_sync/defs.yaml``). Whether the component loads it (``dg``, the code
locations) or a bare file is read (:func:`load_registry`), it goes through
:func:`validate_registry`: duplicate keys, secrets written as templates, templates rendered,
``defaults:`` applied, the models checked (:mod:`wsync_dagster.sync.registry.models`), then the rules
across syncs (:mod:`wsync_dagster.sync.registry.rules`). A bad registry fails with one line per
problem, each naming the sync, the field and the fix, prefixed with ``file:line`` where the YAML's
positions are known. Pure: reading the file is the only I/O.

The models are re-exported here, where the rest of the package imports them from.
"""

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from wsync_dagster.sync.registry import rules
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.models import (
    OWN_FIELDS,
    SLUG,
    ConnectionSettings,
    Environment,
    LoadTimestamp,
    LoadTimestampType,
    Registry,
    Schedule,
    SyncDefaults,
    SyncSpec,
    Translation,
)
from wsync_dagster.sync.registry.strict_yaml import DuplicateKey, load_strict

__all__ = [
    "ConnectionSettings",
    "Environment",
    "LoadTimestamp",
    "LoadTimestampType",
    "Locate",
    "Registry",
    "RegistryError",
    "Render",
    "Schedule",
    "SyncSpec",
    "Translation",
    "cross_sync_problems",
    "load_registry",
    "parse_registry",
    "registry_locator",
    "validate_registry",
    "yaml_line_locator",
]


class RegistryError(ValueError):
    """The registry cannot be used. ``problems`` holds one line per problem; ``lines`` the line of
    each in ``source`` where known (the message then says ``source:line`` before the problem)."""

    def __init__(
        self, source: str, problems: list[str], lines: Sequence[int | None] | None = None
    ) -> None:
        self.source = source
        self.problems = problems
        self.lines = list(lines or [None] * len(problems))
        where = [f"{source}:{line}: " if line else "" for line in self.lines]
        text = "\n".join(f"  - {w}{p}" for w, p in zip(where, problems, strict=True))
        super().__init__(f"{source}: {len(problems)} problem(s) in the sync registry:\n{text}")


Locate = Callable[[Sequence[str | int]], int | None]
"""The line (1-based) of the registry value at a location such as ``("syncs", 0, "sql")``."""
Render = Callable[[str], Any]
"""Renders one ``{{ ... }}`` template (the component's template scope: ``env``, ...)."""

Loc = tuple[str | int, ...]
# Rendered per sync when the assets are built (they see the sync), never when loading.
_RENDERED_LATER = "translation"
_SECRET_WORDS = ("password", "secret", "token", "key", "private")


def cross_sync_problems(registry: Registry, label: rules.Label = rules.sync_label) -> list[str]:
    """Problems no single sync of ``registry`` has on its own: shared names or ids, too many
    active pipelines. ``label`` names a sync in the messages."""
    return rules.cross_sync_problems(registry.syncs, registry.limits, label)


class _Problems:
    """Problems found so far, each with its line (None when unknown)."""

    def __init__(self, source: str, locate: Locate | None) -> None:
        self.source = source
        self.locate = locate
        self.texts: list[str] = []
        self.lines: list[int | None] = []
        # Where a template failed or rendered nothing: the model's error there would say it again.
        self.bad_templates: set[Loc] = set()

    def add(
        self, text: str, at: Sequence[str | int] | None = None, line: int | None = None
    ) -> None:
        self.texts.append(text)
        if line is None and at is not None and self.locate is not None:
            line = self.locate(at)
        self.lines.append(line)

    def error(self) -> RegistryError:
        return RegistryError(self.source, self.texts, self.lines)


def _where(loc: Loc, document: Any) -> tuple[str, Loc]:
    """Who a location belongs to (``sync 'x'``, ``syncs[3]`` or ``registry``) and the field path
    inside it."""
    if len(loc) >= 2 and loc[0] == "syncs" and isinstance(loc[1], int):
        index = loc[1]
        syncs = document.get("syncs") if isinstance(document, Mapping) else None
        name = None
        if isinstance(syncs, list) and index < len(syncs) and isinstance(syncs[index], Mapping):
            name = syncs[index].get("name")
        return (f"sync '{name}'" if name else f"syncs[{index}]"), loc[2:]
    return "registry", loc


def _unknown_key(field: str) -> str:
    name = field.rsplit(".", 1)[-1].lower()
    if any(word in name for word in _SECRET_WORDS) and not name.endswith("_env"):
        return (
            "unknown key, and secrets never go in the registry: put the value in an environment "
            "variable and write that variable's name in the *_env field (password_env, feed_key_env)"
        )
    return "unknown key; remove it or check its spelling"


def _own_fields_but(field: str | int) -> str:
    others = sorted(OWN_FIELDS - {field})
    return ", ".join(others[:-1]) + f" or {others[-1]}"


def _describe(error: ErrorDetails, document: Any, prefix: Loc = ()) -> str:
    """One problem as 'where: what; fix', naming the sync when the error is inside one."""
    where, loc = _where((*prefix, *error["loc"]), document)
    field = ".".join(str(part) for part in loc)
    kind = error["type"]
    if (
        kind == "extra_forbidden"
        and len(loc) == 2
        and loc[0] == "defaults"
        and loc[1] in OWN_FIELDS
    ):
        message = (
            f"a sync never inherits its {loc[1]} (nor its {_own_fields_but(loc[1])}): write it in "
            "each sync"
        )
    elif kind == "extra_forbidden":
        message = _unknown_key(field)
    elif kind == "missing":
        message = "required but missing; add it"
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        message = f"{error['input']!r} is not allowed; use one of {expected}"
    else:
        message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {field}: {message}" if field else f"{where}: {message}"


def _templated_secrets(document: Mapping[str, Any], problems: _Problems) -> bool:
    """``*_env`` fields written as a template: rendering one would put the secret's value into the
    definitions, so they must hold the variable's name. The value is never repeated. Whether any
    was found."""
    found = False
    entries: list[tuple[Loc, Any]] = [(("connection",), document.get("connection"))]
    entries.append((("defaults",), document.get("defaults")))
    syncs = document.get("syncs")
    if isinstance(syncs, list):
        entries += [(("syncs", i), s) for i, s in enumerate(syncs)]
    for loc, entry in entries:
        if not isinstance(entry, Mapping):
            continue
        for field, value in entry.items():
            if str(field).endswith("_env") and isinstance(value, str) and "{{" in value:
                where, path = _where((*loc, field), document)
                problems.add(
                    f"{where}: {'.'.join(map(str, path))}: write the environment variable's name "
                    f"(e.g. {str(field).removesuffix('_env').upper()}_VAR), not a template: a "
                    "secret's value never goes into the definitions",
                    (*loc, field),
                )
                found = True
    return found


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _rendered(
    value: Any, loc: Loc, render: Render | None, document: Any, problems: _Problems
) -> Any:
    """``value`` with each template in it rendered (strings without one are left as written)."""
    rest = (document, problems)
    if isinstance(value, Mapping):
        return {
            k: v if (*loc, k) == (_RENDERED_LATER,) else _rendered(v, (*loc, k), render, *rest)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rendered(v, (*loc, i), render, *rest) for i, v in enumerate(value)]
    if not _is_template(value):
        return value
    where, path = _where(loc, document)
    field = ".".join(map(str, path))
    if render is None:
        problems.add(
            f"{where}: {field}: templates are rendered only where the registry loads as a "
            "component (dg, the code locations, WarehouseSyncComponent.from_registry_file)",
            loc,
        )
        return value
    try:
        rendered = render(value)
    except Exception as error:  # a template's own failure, reported with the field it is in
        reason = [line for line in str(error).splitlines() if line.strip()] or [
            type(error).__name__
        ]
        problems.add(f"{where}: {field}: the template {value!r} failed: {reason[-1]}", loc)
        return value
    if rendered is None:
        problems.add(
            f"{where}: {field}: the template {value!r} rendered nothing; set what it reads "
            "(e.g. the environment variable) or write the value",
            loc,
        )
        problems.bad_templates.add(loc)
    return rendered


def _merged(defaults: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` over ``defaults``: mappings merge key by key, every other value is replaced."""
    merged = dict(defaults)
    for key, value in entry.items():
        inherited = merged.get(key)
        if isinstance(inherited, Mapping) and isinstance(value, Mapping):
            merged[key] = _merged(inherited, value)
        else:
            merged[key] = value
    return merged


def _inherited(loc: Loc, raw_syncs: Any, defaults: Any) -> Loc | None:
    """The path in ``defaults:`` that the value at ``loc`` (inside a merged sync) came from, or
    None when the sync writes it itself."""
    if not (len(loc) >= 3 and loc[0] == "syncs" and isinstance(loc[1], int)):
        return None
    if not isinstance(raw_syncs, list) or not isinstance(defaults, Mapping):
        return None
    node: Any = raw_syncs[loc[1]]
    given: Any = defaults
    for depth, part in enumerate(loc[2:]):
        if not isinstance(given, Mapping) or part not in given:
            return None
        if not isinstance(node, Mapping) or part not in node:
            return loc[2 : 3 + depth]
        node, given = node[part], given[part]
    return None


def _validate_defaults(defaults: Any, document: Any, problems: _Problems) -> set[str]:
    """Check ``defaults:`` on its own (each field's type and rule); the fields it got wrong."""
    wrong = {str(bad[1]) for bad in problems.bad_templates if bad[:1] == ("defaults",) and bad[1:]}
    if defaults is None:
        return wrong
    try:
        SyncDefaults.model_validate(defaults)
    except ValidationError as error:
        for detail in error.errors():
            loc = ("defaults", *detail["loc"])
            wrong.add(str(loc[1]) if len(loc) > 1 else "")
            if not any(loc[: len(bad)] == bad for bad in problems.bad_templates):
                problems.add(_describe(detail, document, ("defaults",)), loc)
    return wrong


def validate_registry(
    document: Any,
    source: str = "<registry>",
    locate: Locate | None = None,
    *,
    render: Render | None = None,
    duplicates: Sequence[DuplicateKey] = (),
) -> Registry:
    """The registry ``document`` (parsed YAML) declares, or a :class:`RegistryError` listing every
    problem, each on its line when ``locate`` knows where the values are.

    ``render`` renders ``{{ ... }}`` templates (none are allowed without it); ``duplicates`` are the
    keys the file wrote twice, reported with the other problems.
    """
    problems = _Problems(source, locate)
    for duplicate in duplicates:
        problems.add(duplicate.describe(), line=duplicate.line)
    if not isinstance(document, Mapping):
        problems.add("must be a mapping with 'connection' and 'syncs'")
        raise problems.error()
    if _templated_secrets(document, problems):
        raise problems.error()  # nothing is rendered while a secret is written as a template
    raw_syncs = document.get("syncs")
    document = _rendered(document, (), render, document, problems)
    defaults = document.get("defaults")
    wrong_defaults = _validate_defaults(defaults, document, problems)
    body = {key: value for key, value in document.items() if key != "defaults"}
    syncs = body.get("syncs")
    if isinstance(defaults, Mapping) and isinstance(syncs, list):
        body["syncs"] = [_merged(defaults, s) if isinstance(s, Mapping) else s for s in syncs]
    try:
        registry = Registry.model_validate(body)
    except ValidationError as error:
        for detail in error.errors():
            loc = tuple(detail["loc"])
            if any(loc[: len(bad)] == bad for bad in problems.bad_templates):
                continue  # said already: the template there failed or rendered nothing
            text = _describe(detail, body)
            from_defaults = _inherited(loc, raw_syncs, defaults)
            if from_defaults is None:
                problems.add(text, loc)
            elif str(from_defaults[0]) not in wrong_defaults:  # else reported once, in defaults
                path = ".".join(map(str, from_defaults))
                problems.add(
                    f"{text} (inherited from defaults.{path})", ("defaults", *from_defaults)
                )
        for text in _salvaged_cross_sync_problems(body, source, locate):
            problems.add(text)
        raise problems.error() from None
    if problems.texts:
        raise problems.error()
    where = _where_declared(registry.syncs, source, locate)
    if found := rules.cross_sync_problems(registry.syncs, registry.limits, where=where):
        for text in found:
            problems.add(text)
        raise problems.error()
    return registry


def _where_declared(syncs: Sequence[SyncSpec], source: str, locate: Locate | None) -> rules.Where:
    """Where each of ``syncs`` (the registry's, in order) is declared: ``source:line``."""
    places: dict[int, str] = {}
    for index, spec in enumerate(syncs):
        if locate is not None and (line := locate(("syncs", index))) is not None:
            places[id(spec)] = f"{source}:{line}"
    return lambda spec: places.get(id(spec))


def _salvaged_spec(raw: Any) -> SyncSpec | None:
    """A sync as far as the cross-sync rules need it: validated, or else what it still declares.

    An invalid sync keeps its raw name and those of its ids, ``paused`` and ``rotate`` that are valid
    on their own (an invalid ``paused`` or ``rotate`` counts as active for ever, the default);
    without a string name it is left out.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        return None
    try:
        return SyncSpec.model_validate(raw)
    except ValidationError:
        pass
    declared: dict[str, Any] = {
        field: value.strip()
        for field in ("pipeline_id", "data_model_id")
        if isinstance(value := raw.get(field), str) and SLUG.match(value.strip())
    }
    declared["name"] = raw["name"].strip()
    declared["paused"] = raw.get("paused") is True
    declared["rotate"] = raw.get("rotate") is True
    return SyncSpec.model_construct(**declared)


def _salvaged_cross_sync_problems(
    body: Mapping[str, Any], source: str, locate: Locate | None
) -> list[str]:
    """The cross-sync rules over an invalid registry's syncs, so that a field error does not hide
    them: the syncs that validate, plus the names, ids and ``paused`` of those that do not."""
    syncs = body.get("syncs")
    if not isinstance(syncs, list):
        return []
    try:
        limits = Limits.model_validate(body.get("limits") or {})
    except ValidationError:
        limits = Limits()
    places: dict[int, str] = {}
    salvaged: list[SyncSpec] = []
    for index, raw in enumerate(syncs):
        if (spec := _salvaged_spec(raw)) is not None:
            salvaged.append(spec)
            if locate is not None and (line := locate(("syncs", index))) is not None:
                places[id(spec)] = f"{source}:{line}"
    return rules.cross_sync_problems(salvaged, limits, where=lambda spec: places.get(id(spec)))


def _load_yaml(text: str) -> tuple[Any, list[DuplicateKey]]:
    try:
        return load_strict(text)
    except yaml.YAMLError:
        # The pure-Python parser describes a syntax error better (it quotes the line and points at
        # the column); rerun it for the message.
        return load_strict(text, fast=False)


def yaml_line_locator(text: str, prefix: Sequence[str | int] = ()) -> Locate:
    """Lines of the values in YAML ``text`` (registry locations under ``prefix``); the nearest
    enclosing value's line when the location itself does not exist (a missing key)."""
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

    def locate(loc: Sequence[str | int]) -> int | None:
        node = root
        line = node.start_mark.line + 1 if node is not None else None
        for part in (*prefix, *loc):
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                node = None
            if node is None:
                break
            line = node.start_mark.line + 1
        return line

    return locate


def _is_component_file(document: Any) -> bool:
    return isinstance(document, Mapping) and "type" in document and "attributes" in document


def registry_locator(text: str) -> Locate:
    """Lines of the registry's values in YAML ``text``: a bare registry, or a component file."""
    root = yaml.safe_load(text) if text.strip() else None
    return yaml_line_locator(text, ("attributes",) if _is_component_file(root) else ())


def parse_registry(text: str, source: str = "<registry>", render: Render | None = None) -> Registry:
    """A registry from YAML ``text``: a bare registry, or a component file (``type`` and
    ``attributes``) whose attributes are one. ``render`` renders its templates."""
    try:
        document, duplicates = _load_yaml(text)
    except yaml.YAMLError as error:
        raise RegistryError(source, [f"not valid YAML: {error}"]) from None
    prefix: tuple[str, ...] = ()
    if _is_component_file(document):
        document, prefix = document["attributes"], ("attributes",)
    try:
        return validate_registry(document, source, render=render, duplicates=duplicates)
    except RegistryError:
        # Only a bad registry pays for a second parse that keeps the lines.
        locate = yaml_line_locator(text, prefix)
        return validate_registry(document, source, locate, render=render, duplicates=duplicates)


def load_registry(path: Path, render: Render | None = None) -> Registry:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryError(str(path), [f"cannot read the registry ({error.strerror})"]) from None
    return parse_registry(text, str(path), render)
