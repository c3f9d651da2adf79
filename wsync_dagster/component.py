"""``WarehouseSyncComponent``: the registry of synced tables as a Dagster component.

A ``defs.yaml`` with ``type: wsync_dagster.WarehouseSyncComponent`` declares, under ``attributes``,
a registry: the shared Snowflake ``connection`` and the list of ``syncs`` (see the README's "Add a
synced table" and ``wsync_dagster/defs/warehouse_sync/defs.yaml``). The attributes are validated by
the registry's own models (:mod:`wsync_dagster.sync.registry.specs`), so a problem names the sync, the field
and the fix, prefixed with the ``defs.yaml`` file and line. ``{{ env.X }}`` templates work in
non-secret fields; secrets are only ever named (``password_env``, ``feed_key_env``).

Rules across syncs (unique names and ids, at most five active pipelines) hold within a component on
load, and across every component of the code location in
:func:`wsync_dagster.code_location.build_definitions` (see :func:`check_across`).
"""

import copy
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

import wsync_dagster.defs
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.assets.translator import WarehouseSyncProps, WarehouseSyncTranslator
from wsync_dagster.sync.registry.specs import (
    Registry,
    RegistryError,
    SyncSpec,
    cross_sync_problems,
    load_registry,
    validate_registry,
)
from wsync_dagster.sync.registry.workspace import BoundSync, Workspace


class WarehouseSyncAttributes(BaseModel):
    """The shape ``dg`` checks before loading; the registry's models check the rest."""

    model_config = ConfigDict(extra="allow")

    connection: dict[str, Any] = Field(
        description="the Snowflake connection mParticle uses (id, account, region, warehouse, "
        "database, role, user, password_env)"
    )
    syncs: list[dict[str, Any]] = Field(description="one entry per synced table")
    default_group: str = Field(default="mparticle_sync", description="group of the sync assets")


def _templated_secret_names(document: Mapping[str, Any]) -> list[str]:
    """``*_env`` fields written as a template: rendering one would put the secret's value into the
    definitions, so they must hold the variable's name."""
    entries: list[tuple[str, Any]] = [("connection", document.get("connection"))]
    syncs = document.get("syncs")
    if isinstance(syncs, list):
        entries += [(f"sync '{s.get('name', i)}'", s) for i, s in enumerate(syncs) if s]
    problems = []
    for where, entry in entries:
        if not isinstance(entry, Mapping):
            continue
        for field, value in entry.items():
            if str(field).endswith("_env") and isinstance(value, str) and "{{" in value:
                problems.append(
                    f"{where}: {field}: write the environment variable's name (e.g. "
                    f"{field.removesuffix('_env').upper()}_VAR), not a template: a secret's value "
                    "never goes into the definitions"
                )
    return problems


class WarehouseSyncScaffolder(dg.Scaffolder):
    """``dg scaffold defs wsync_dagster.WarehouseSyncComponent <name>``: a registry with one paused
    sync named after the folder, ready to edit."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = request.target_path.name.lower().replace("-", "_")
        if request.scaffold_format != "yaml" or request.append:
            dg.scaffold_component(request, {"connection": {}, "syncs": []})
            return
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(
            STARTER.format(type=request.type_name, name=name, slug=name.replace("_", "-")),
            encoding="utf-8",
        )
        _scaffold_resources(request.target_path.parent)


RESOURCES_FILE = "wsync_resources.py"
RESOURCES_STARTER = '''\
"""The resources every WarehouseSyncComponent in this defs folder uses (written once by
`dg scaffold defs wsync_dagster.WarehouseSyncComponent ...`): Snowflake and mParticle as the
target WSYNC_TARGET names, with settings and secrets read from the environment."""

import os

import dagster as dg

from wsync_dagster.resources import production_resources


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=production_resources(os.environ))
'''


def _scaffold_resources(defs_folder: Path) -> None:
    """Bind the syncs' resources in a project's defs folder, once. Not in this package's own defs
    folder: its code locations bind theirs (:mod:`wsync_dagster.code_location`)."""
    own = Path(wsync_dagster.defs.__file__).resolve().parent
    if defs_folder.resolve() == own or any(defs_folder.rglob(RESOURCES_FILE)):
        return
    (defs_folder / RESOURCES_FILE).write_text(RESOURCES_STARTER, encoding="utf-8")


STARTER = textwrap.dedent(
    """\
    # A registry of synced tables: each entry keeps one Snowflake query synced into mParticle
    # user profiles (one Dagster asset, mparticle/<name>). See the README's "Add a synced table".
    # Secrets are never written here: *_env fields name the environment variables holding them.
    type: {type}

    attributes:
      connection:
        id: {slug}-snowflake
        name: Snowflake ({name})
        source_account_id: xy12345      # your Snowflake account locator
        region: us-east-1.aws
        warehouse: MPARTICLE_WH
        database: ANALYTICS
        role: MPARTICLE_SYNC
        user: MPARTICLE_SYNC
        password_env: MPARTICLE_SNOWFLAKE_PASSWORD

      syncs:
        - name: {name}
          description: >
            What this table adds to profiles, and who relies on it.
          owners: [team:data]
          sql: |
            SELECT
              CUSTOMER_ID AS "customer_id",
              EMAIL AS "email",
              UPDATED_AT
            FROM ANALYTICS.CRM.CUSTOMERS
          load_timestamp: {{column: UPDATED_AT, type: timestamp_ntz}}
          schedule: {{interval: daily, start: 2026-01-01T00:00:00Z}}
          environment: development
          feed_key_env: MPARTICLE_FEED_KEY
          paused: true   # created inactive; set false when the first backfill looks right
    """
)


@dg.scaffold_with(WarehouseSyncScaffolder)
class WarehouseSyncComponent(dg.Component):
    """Keeps Snowflake tables synced into mParticle profiles through the Warehouse Sync API: one
    partitioned asset per sync, on exactly its pipeline's interval grid.

    Customise the assets with a translator: pass ``translator=`` or subclass and override
    :meth:`get_translator`.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        translator: WarehouseSyncTranslator | None = None,
        yaml_path: Path | None = None,
        lines: Mapping[str, int] | None = None,
    ) -> None:
        self.registry = registry
        self.translator = translator
        self.yaml_path = yaml_path
        self.lines = dict(lines or {})

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return WarehouseSyncAttributes

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Self:
        resolution = context.resolution_context
        tree = resolution.source_position_tree
        source = tree.position.filename if tree else str(context.path / "defs.yaml")
        raw = attributes.model_dump() if attributes is not None else None
        if isinstance(raw, Mapping) and (problems := _templated_secret_names(raw)):
            raise RegistryError(source, problems)
        document: Any = resolution.resolve_value(raw, as_type=object)

        def locate(loc: Sequence[str | int]) -> int | None:
            if tree is None:
                return None
            position, _ = tree.lookup_closest_and_path(["attributes", *loc], None)
            return position.start.line

        registry = validate_registry(document, source, locate)
        lines = {
            spec.name: line
            for index, spec in enumerate(registry.syncs)
            if (line := locate(["syncs", index])) is not None
        }
        return cls(registry, yaml_path=Path(source) if tree else None, lines=lines)

    @classmethod
    def from_registry_file(cls, path: Path, **kwargs: Any) -> Self:
        """A component from a registry file (bare, or a ``defs.yaml`` of this component)."""
        return cls(load_registry(path), yaml_path=path, **kwargs)

    def with_registry(self, registry: Registry) -> Self:
        """This component over another registry (same translator and source file)."""
        moved = copy.copy(self)
        moved.registry = registry
        return moved

    def get_translator(self) -> WarehouseSyncTranslator:
        return self.translator or WarehouseSyncTranslator()

    def props(self) -> list[WarehouseSyncProps]:
        return [
            WarehouseSyncProps(spec, self.registry, self.yaml_path, self.lines.get(spec.name))
            for spec in self.registry.syncs
        ]

    def build_assets(self, workspace: Workspace | None = None) -> list[dg.AssetsDefinition]:
        """The sync assets; ``workspace``: every registry of the code location (default: this one
        alone), whose leftover rotating pipelines a rotating materialization pauses."""
        return build_sync_assets(self.registry, self.get_translator(), self.props(), workspace)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        workspace = None
        if self.yaml_path is not None:  # in a defs folder: the rules hold across its instances
            every = context.component_tree.get_all_components(of_type=WarehouseSyncComponent)
            check_across(every)
            workspace = workspace_of(every)
        return dg.Definitions(assets=self.build_assets(workspace))

    def sync_keys(self) -> list[tuple[SyncSpec, dg.AssetKey]]:
        """Each sync with the key of its asset."""
        translator = self.get_translator()
        return [(p.spec, translator.get_asset_spec(p).key) for p in self.props()]

    def watched_syncs(self) -> list[tuple[BoundSync, dg.AssetKey]]:
        """Each sync, bound to this component's registry, with the key of its asset: what the runs
        sensor records, under the key the translator gave the asset."""
        return [(BoundSync(self.registry, spec), key) for spec, key in self.sync_keys()]

    def label(self, spec: SyncSpec) -> str:
        path = self.yaml_path
        where = f"{path.parent.name}/{path.name}" if path else "<component>"
        line = self.lines.get(spec.name)
        return f"sync '{spec.name}' ({where}:{line})" if line else f"sync '{spec.name}' ({where})"


def workspace_of(components: Iterable[WarehouseSyncComponent]) -> Workspace:
    """Every sync of ``components``, each with its own component's registry."""
    return Workspace.of(component.registry for component in components)


def check_across(components: Iterable[WarehouseSyncComponent]) -> None:
    """The rules across syncs, over every component of a code location: unique names and ids, at
    most five active pipelines. Each problem names the syncs and the files that declare them."""
    components = list(components)
    if len(components) < 2:
        return
    labels: dict[int, str] = {}
    syncs: list[SyncSpec] = []
    for component in components:
        for spec in component.registry.syncs:
            labels[id(spec)] = component.label(spec)
            syncs.append(spec)
    merged = components[0].registry.model_copy(update={"syncs": tuple(syncs)})
    if problems := cross_sync_problems(merged, lambda spec: labels[id(spec)]):
        raise RegistryError("code location (all WarehouseSyncComponent instances)", problems)
