"""A registry's YAML ``translation:`` block, applied on top of a :class:`WarehouseSyncTranslator`.

``translation:`` (:class:`wsync_dagster.sync.registry.models.Translation`) sets asset attributes for
every sync of a registry with templates that see the sync, as dagster-fivetran's and dagster-sling's
``translation`` do: ``key: "crm/{{ sync.name }}"``, ``group_name: "{{ sync.tags.domain }}"``. Each
template is rendered once per sync with ``sync`` (the registry entry), ``spec`` (the asset spec the
Python translator made) and the component's template scope (``env``, ...). ``tags`` and ``metadata``
merge into the spec's; the other fields replace it. The Python translator stays for what YAML cannot
express (a computed key, automation, ...).
"""

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from wsync_dagster.sync.assets.translator import WarehouseSyncProps, WarehouseSyncTranslator
from wsync_dagster.sync.registry.models import Translation

Locate = Callable[[str], int | None]
"""The line of a ``translation:`` field (``key``, ``tags``, ...) in the component's file."""


class TranslationError(ValueError):
    """A ``translation:`` field cannot be applied to a sync: ``problem`` says which, why and the
    fix; ``line`` is the field's line in the component's file, when known."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


class TemplatedTranslator(WarehouseSyncTranslator):
    """``base``'s asset specs with a registry's ``translation:`` applied on top."""

    def __init__(
        self,
        base: WarehouseSyncTranslator,
        translation: Translation,
        templates: dg.ResolutionContext,
        locate: Locate | None = None,
    ) -> None:
        self.base = base
        self.translation = translation
        self.templates = templates
        self.locate = locate or (lambda field: None)

    def get_asset_spec(self, sync: WarehouseSyncProps) -> dg.AssetSpec:
        spec = self.base.get_asset_spec(sync)
        scope = self.templates.with_scope(sync=sync.spec, spec=spec)
        for field in _ORDER:
            written = getattr(self.translation, field)
            if written is None or written == {}:  # not written: the spec keeps its own
                continue
            try:
                spec = _APPLY[field](spec, _render(written, scope))
            except Exception as error:  # a template or a value Dagster refuses, named with its sync
                raise TranslationError(
                    _problem(sync, field, written, error), self.locate(field)
                ) from None
        return spec

    def get_metadata(self, sync: WarehouseSyncProps) -> dict[str, object]:
        return self.base.get_metadata(sync)

    def get_source_asset_key(self, table: str) -> dg.AssetKey:
        return self.base.get_source_asset_key(table)

    def get_source_asset_spec(self, table: str) -> dg.AssetSpec:
        return self.base.get_source_asset_spec(table)


def _render(value: Any, scope: dg.ResolutionContext) -> Any:
    """``value`` with every template in it rendered (other strings are left as written)."""
    if isinstance(value, Mapping):
        return {k: _render(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render(v, scope) for v in value]
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        rendered = scope.resolve_value(value)
        if rendered is None or rendered == "":
            raise ValueError("it rendered nothing")
        return rendered
    return value


def _key(spec: dg.AssetSpec, value: Any) -> dg.AssetSpec:
    if isinstance(value, list) and value and all(isinstance(p, str) and p for p in value):
        return spec.replace_attributes(key=dg.AssetKey(value))
    if not isinstance(value, str) or not value.strip("/"):
        raise ValueError(f"a key is 'a/b/c' or a list of parts, not {value!r}")
    return spec.replace_attributes(key=dg.AssetKey.from_user_string(value.strip("/")))


def _key_prefix(spec: dg.AssetSpec, value: Any) -> dg.AssetSpec:
    parts = value.split("/") if isinstance(value, str) else value
    if not isinstance(parts, list) or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"a key prefix is 'a/b' or a list of parts, not {value!r}")
    return spec.replace_attributes(key=spec.key.with_prefix(parts))


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, not {value!r}")
    return [str(item) for item in value]


_APPLY: dict[str, Callable[[dg.AssetSpec, Any], dg.AssetSpec]] = {
    "key": _key,
    "key_prefix": _key_prefix,
    "group_name": lambda spec, value: spec.replace_attributes(group_name=str(value)),
    "description": lambda spec, value: spec.replace_attributes(description=str(value)),
    "owners": lambda spec, value: spec.replace_attributes(owners=_strings(value, "owners")),
    "kinds": lambda spec, value: spec.replace_attributes(kinds=set(_strings(value, "kinds"))),
    "tags": lambda spec, value: spec.merge_attributes(tags={k: str(v) for k, v in value.items()}),
    "metadata": lambda spec, value: spec.merge_attributes(metadata=dict(value)),
}
# The key before its prefix: a prefix then applies to a templated key too.
_ORDER = tuple(_APPLY)


def _problem(sync: WarehouseSyncProps, field: str, written: Any, error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    reason = (lines[-1] if lines else type(error).__name__).rstrip(".")
    return (
        f"sync '{sync.name}': translation.{field}: {written!r} cannot be applied: {reason}. A "
        "template sees sync (this sync's fields, e.g. sync.name, sync.schedule.interval, "
        "sync.tags), spec (the asset spec before the translation) and env"
    )
