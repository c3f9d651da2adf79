"""The JSON schema of a registry as written: what ``dg`` shows editors for a component's ``attributes``.

Derived from the registry's models (:mod:`wsync_dagster.sync.registry.models`): :class:`Registry`'s
fields plus ``defaults:``, each sync an entry that may leave to ``defaults:`` what it inherits.
:func:`document_json_schema` returns it self-contained (no ``$ref``) and template-aware. Pure.
"""

from collections.abc import Iterator, Mapping
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from wsync_dagster.sync.registry.models import Registry, SyncDefaults, SyncSpec, optional_model

# A sync as written: what it may inherit from ``defaults:`` is optional here (the JSON schema's
# view; the loader validates the merged sync as a SyncSpec).
SyncEntry: type[BaseModel] = optional_model(
    SyncSpec, "SyncEntry", keep=frozenset({"name", "description", "sql"})
)


def _document_model() -> type[BaseModel]:
    """The registry as written: :class:`Registry`'s fields, plus ``defaults:``, with entries that
    may leave to the defaults what they inherit. Used for the JSON schema and ``defaults:``."""
    fields: dict[str, Any] = {
        name: (info.rebuild_annotation(), FieldInfo.merge_field_infos(info))
        for name, info in Registry.model_fields.items()
    }
    syncs = Registry.model_fields["syncs"].description
    fields["syncs"] = (list[SyncEntry], Field(description=syncs))
    fields["defaults"] = (
        Optional[SyncDefaults],  # noqa: UP045
        Field(
            default=None,
            description="fields every sync inherits unless it sets them (all but name, "
            "description, sql, pipeline_id and data_model_id); schedule, load_timestamp and tags "
            "merge key by key",
        ),
    )
    order = ["connection", "default_group", "limits", "defaults", "translation", "syncs"]
    return create_model(
        "RegistryDocument",
        __config__=ConfigDict(extra="forbid", title="WarehouseSyncComponent attributes"),
        __doc__="A registry of synced tables: the attributes of a WarehouseSyncComponent.",
        **{name: fields[name] for name in order},
    )


RegistryDocument: type[BaseModel] = _document_model()


def document_json_schema() -> dict[str, Any]:
    """The JSON schema of a registry document: every field typed and described, self-contained.

    ``dg`` embeds it under a ``defs.yaml``'s ``attributes`` (where references to its own
    definitions would not resolve, so there are none) and ``dg check defs`` checks each file with
    it *before* templates are rendered and before the registry's loader runs. So, like Dagster's own
    component schemas (each field ``T | str``), a field that is not a plain string also accepts a
    string (a ``{{ ... }}`` template, or a value the loader will judge), and unknown keys are left
    to the loader, whose messages name the sync and the fix (a misspelt key, a secret written where
    only a variable's name belongs). The schema still refuses a wrong shape (a list for a mapping)
    and a missing required field.
    """
    schema = RegistryDocument.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = definitions[node["$ref"].rsplit("/", 1)[-1]]
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return inline({**target, **rest})
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    document = inline(schema)
    _loosen(document)
    return document


_KEPT_OUTSIDE = ("title", "description", "default")


def _loosen(node: dict[str, Any]) -> None:
    """Leave unknown keys and values that are not plain strings to the loader (see above)."""
    for child in _children(node):
        _loosen(child)
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    plain_string = node.get("type") == "string" and not any(
        key in node for key in ("enum", "const", "pattern", "format")
    )
    if (node.get("type") in ("integer", "number", "boolean", "string") and not plain_string) or (
        "enum" in node or "const" in node
    ):
        typed = {k: node.pop(k) for k in list(node) if k not in _KEPT_OUTSIDE}
        node["anyOf"] = [typed, {"type": "string"}]


def _children(node: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("properties", "additionalProperties", "propertyNames", "items", "anyOf"):
        value = node.get(key)
        if isinstance(value, dict) and key == "properties":
            yield from (v for v in value.values() if isinstance(v, dict))
        elif isinstance(value, dict):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, dict))
