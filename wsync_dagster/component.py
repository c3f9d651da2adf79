"""``WarehouseSyncComponent``: the registry of synced tables as a Dagster component.

A ``defs.yaml`` with ``type: wsync_dagster.WarehouseSyncComponent`` declares, under ``attributes``,
a registry: the shared Snowflake ``connection``, ``syncs`` (one entry per synced table), and
optionally ``defaults`` (fields every sync inherits), ``translation`` (asset attributes templated per
sync), ``limits`` and ``default_group``. Every field is documented in ``docs/registry.md``.

The attributes' type is the registry's models (:mod:`wsync_dagster.sync.registry.models`): ``dg``
shows their JSON schema, and :meth:`WarehouseSyncComponent.load` validates them with the registry's
one loader (:func:`wsync_dagster.sync.registry.specs.validate_registry`), after rendering
``{{ env.X }}`` templates, so that a problem names the sync, the field and the fix, prefixed with the
``defs.yaml`` file and line; keys written twice in that file are refused too. Secrets are only ever
named (``password_env``, ``feed_key_env``), never templated.

Rules across syncs (unique names and ids, the active-pipeline limit) hold within a component on load,
and across every component of the code location (:func:`check_across`), whose registries all sync
into one mParticle workspace and so must declare the same ``limits``.
"""

import contextlib
import copy
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import dagster as dg
import yaml

# dagster's component loader wraps any error from a component in a ComponentTreeException that
# shows the component tree first and the cause after a stack trace; one that already is a
# ComponentTreeException it lets through as it is. Not underscored, but not exported by `dagster`
# either: wsync_dagster_tests/test_dg.py fails if an upgrade changes how `dg check defs` shows it.
from dagster.components.core.component_tree import ComponentTreeException
from dagster_shared.yaml_utils.source_position import SourcePositionTree
from pydantic import BaseModel, ConfigDict

import wsync_dagster.defs
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.assets.translation import TemplatedTranslator, TranslationError
from wsync_dagster.sync.assets.translator import WarehouseSyncProps, WarehouseSyncTranslator
from wsync_dagster.sync.registry import rules
from wsync_dagster.sync.registry.cadences import cadence
from wsync_dagster.sync.registry.schema import document_json_schema
from wsync_dagster.sync.registry.specs import (
    Registry,
    RegistryError,
    SyncSpec,
    Translation,
    parse_registry,
    registry_locator,
    validate_registry,
)
from wsync_dagster.sync.registry.strict_yaml import DuplicateKey, duplicate_keys
from wsync_dagster.sync.registry.workspace import Workspace


def _registry_schema(schema: dict[str, Any]) -> None:
    schema.clear()
    schema.update(document_json_schema())


class WarehouseSyncAttributes(BaseModel):
    """The attributes as ``dg`` hands them to :meth:`WarehouseSyncComponent.load`.

    Its JSON schema is the registry's (every field typed and described; see
    :func:`wsync_dagster.sync.registry.schema.document_json_schema`). It accepts any mapping itself:
    ``dg`` validates attributes before rendering their templates, and would word problems its own
    way, so the registry's loader checks them in :meth:`WarehouseSyncComponent.load`, after
    rendering, with the registry's messages.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_registry_schema)


class WarehouseSyncLoadError(RegistryError, ComponentTreeException):
    """A registry problem, raised where Dagster loads the component: Dagster shows it as it is, the
    registry's lines first (see the import of ``ComponentTreeException`` above)."""

    @classmethod
    def of(cls, error: RegistryError) -> "WarehouseSyncLoadError":
        if isinstance(error, cls):
            return error
        return cls(error.source, error.problems, error.lines)


@contextlib.contextmanager
def registry_errors_first() -> Iterator[None]:
    """Re-raise a registry error from here with no traceback of the loader's frames below: a code
    location that fails to import then shows a few frames and the registry's lines, not dozens of
    Dagster frames and a chained exception."""
    try:
        yield
    except RegistryError as error:
        # A new exception: contextlib would give the same one its old traceback back.
        raise type(error)(error.source, error.problems, error.lines) from None


class WarehouseSyncScaffolder(dg.Scaffolder):
    """``dg scaffold defs wsync_dagster.WarehouseSyncComponent <name>``: a registry with one daily
    sync named after the folder, whose start is computed when scaffolding (7 days back, well
    inside mParticle's catch-up limit for a new pipeline)."""

    START_DAYS_BACK = 7

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = request.target_path.name.lower().replace("-", "_")
        if request.scaffold_format != "yaml" or request.append:
            dg.scaffold_component(request, {"connection": {}, "syncs": []})
            return
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(self.starter(request.type_name, name))
        _scaffold_resources(request.target_path.parent)

    def starter(self, type_name: str, name: str) -> str:
        daily = cadence("daily")
        assert daily.catch_up is not None
        today = self.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=self.START_DAYS_BACK)
        assert start >= daily.catch_up.earliest_start(self.now())
        return STARTER.format(
            type=type_name,
            name=name,
            slug=name.replace("_", "-"),
            start=f"{start:%Y-%m-%dT%H:%M:%SZ}",
            days=self.START_DAYS_BACK,
            catch_up=daily.catch_up.text,
        )


RESOURCES_FILE = "wsync_resources.py"
RESOURCES_STARTER = '''\
"""The resources every WarehouseSyncComponent in this defs folder uses (written once by
`dg scaffold defs wsync_dagster.WarehouseSyncComponent ...`): the real Snowflake and mParticle,
with settings read from the environment through dagster.EnvVar. With a setting missing, a run refuses
and names it (docs/configuration.md lists them all)."""

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
    # A registry of synced tables: each entry keeps one Snowflake query synced into mParticle user
    # profiles (one Dagster asset, mparticle/<name>). Every field is described in wsync_dagster's
    # docs/registry.md. Secrets are never written here: *_env fields name the environment
    # variables that hold them.
    #
    # Materializing the asset creates this connection, data model and pipeline in the mParticle
    # workspace the resources point at, then syncs each closed day into its development environment.
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
          # {days} days before the day this file was scaffolded. A fixed date: mParticle refuses a
          # new daily pipeline that starts more than {catch_up} back (its catch-up limit).
          schedule: {{interval: daily, start: {start}}}
          environment: development      # production once the development profiles look right
          feed_key_env: MPARTICLE_FEED_KEY
    """
)


@dg.scaffold_with(WarehouseSyncScaffolder)
class WarehouseSyncComponent(dg.Component):
    """Keeps Snowflake tables synced into mParticle profiles through the Warehouse Sync API: one
    partitioned asset per sync, on exactly its pipeline's interval grid.

    Customise the assets in YAML with ``translation:`` (templated per sync), or with a translator in
    Python: pass ``translator=`` or subclass and override :meth:`get_translator`.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        translator: WarehouseSyncTranslator | None = None,
        yaml_path: Path | None = None,
        lines: Mapping[str, int] | None = None,
        templates: dg.ResolutionContext | None = None,
        translation_lines: Mapping[str, int] | None = None,
    ) -> None:
        self.registry = registry
        self.translator = translator
        self.yaml_path = yaml_path
        self.lines = dict(lines or {})
        # What a ``translation:`` template sees besides the sync: the scope of the file it is in.
        self.templates = templates or dg.ResolutionContext.default()
        self.translation_lines = dict(translation_lines or {})

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return WarehouseSyncAttributes

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Self:
        resolution = context.resolution_context
        tree = resolution.source_position_tree
        source = tree.position.filename if tree else str(context.path / "defs.yaml")
        raw = attributes.model_dump() if attributes is not None else None

        def locate(loc: Sequence[str | int]) -> int | None:
            if tree is None:
                return None
            position, _ = tree.lookup_closest_and_path(["attributes", *loc], None)
            return position.start.line

        try:
            registry = validate_registry(
                raw,
                source,
                locate,
                render=resolution.resolve_value,
                duplicates=_duplicates_in_own_file(tree),
            )
        except RegistryError as error:
            raise WarehouseSyncLoadError.of(error) from None
        return cls(
            registry,
            yaml_path=Path(source) if tree else None,
            lines=_sync_lines(registry, locate),
            templates=resolution.at_path("attributes").at_path("translation"),
            translation_lines=_translation_lines(locate),
        )

    @classmethod
    def from_registry_file(cls, path: Path, **kwargs: Any) -> Self:
        """A component from a registry file (bare, or a ``defs.yaml`` of this component), read by
        the same loader, with the same template scope (``env``, ...), as ``dg`` loads it."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            problem = f"cannot read the registry ({error.strerror})"
            raise WarehouseSyncLoadError(str(path), [problem]) from None
        templates = dg.ResolutionContext.default()
        try:
            registry = parse_registry(text, str(path), render=templates.resolve_value)
        except RegistryError as error:
            raise WarehouseSyncLoadError.of(error) from None
        locate = registry_locator(text)
        return cls(
            registry,
            yaml_path=path,
            lines=_sync_lines(registry, locate),
            templates=templates,
            translation_lines=_translation_lines(locate),
            **kwargs,
        )

    def with_registry(self, registry: Registry) -> Self:
        """This component over another registry (same translator and source file)."""
        moved = copy.copy(self)
        moved.registry = registry
        return moved

    def get_translator(self) -> WarehouseSyncTranslator:
        """The Python translator (override it, or pass ``translator=``); the registry's YAML
        ``translation:`` is applied on top of it."""
        return self.translator or WarehouseSyncTranslator()

    def _translator(self) -> WarehouseSyncTranslator:
        base = self.get_translator()
        translation = self.registry.translation
        if translation is None:
            return base
        return TemplatedTranslator(base, translation, self.templates, self.translation_lines.get)

    def props(self) -> list[WarehouseSyncProps]:
        return [
            WarehouseSyncProps(spec, self.registry, self.yaml_path, self.lines.get(spec.name))
            for spec in self.registry.syncs
        ]

    def build_assets(self, workspace: Workspace | None = None) -> list[dg.AssetsDefinition]:
        """The sync assets; ``workspace``: every registry of the code location (default: this one
        alone), whose leftover rotating pipelines a rotating materialization pauses."""
        self.sync_keys()  # the translation's problems, named with the registry's file and line
        return build_sync_assets(self.registry, self._translator(), self.props(), workspace)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        workspace = None
        if self.yaml_path is not None:  # in a defs folder: the rules hold across its instances
            every = context.component_tree.get_all_components(of_type=WarehouseSyncComponent)
            check_across(every)
            workspace = workspace_of(every)
        return dg.Definitions(assets=self.build_assets(workspace))

    def sync_keys(self) -> list[tuple[SyncSpec, dg.AssetKey]]:
        """Each sync with the key of its asset; a translation that gives two syncs one key, or
        that cannot be applied, is a :class:`WarehouseSyncLoadError`."""
        translator = self._translator()
        keys: list[tuple[SyncSpec, dg.AssetKey]] = []
        try:
            keys = [(p.spec, translator.get_asset_spec(p).key) for p in self.props()]
        except TranslationError as error:
            raise WarehouseSyncLoadError(self._source, [error.problem], [error.line]) from None
        owner: dict[dg.AssetKey, str] = {}
        for spec, key in keys:
            if key in owner:
                problem = (
                    f"sync '{spec.name}': its asset key {key.to_user_string()!r} is already the key "
                    f"of sync '{owner[key]}': every sync needs its own (translation.key: use "
                    "{{ sync.name }} in it)"
                )
                line = self.translation_lines.get("key") or self.lines.get(spec.name)
                raise WarehouseSyncLoadError(self._source, [problem], [line])
            owner[key] = spec.name
        return keys

    @property
    def _source(self) -> str:
        return str(self.yaml_path) if self.yaml_path else "<component>"

    def where(self, spec: SyncSpec) -> str | None:
        """Where ``spec`` is declared: ``<folder>/<file>:<line>``, or the file alone."""
        path = self.yaml_path
        if path is None:
            return None
        line = self.lines.get(spec.name)
        return (
            f"{path.parent.name}/{path.name}:{line}" if line else f"{path.parent.name}/{path.name}"
        )

    def label(self, spec: SyncSpec) -> str:
        return f"sync '{spec.name}' ({self.where(spec) or '<component>'})"


def _duplicates_in_own_file(tree: SourcePositionTree | None) -> list[DuplicateKey]:
    """The keys the component's own ``defs.yaml`` writes twice, in its document. ``dg`` parsed the
    file keeping the last of each, so it is read again, strictly."""
    if tree is None:
        return []
    try:
        text = Path(tree.position.filename).read_text(encoding="utf-8")
        found = duplicate_keys(text)
    except (OSError, yaml.YAMLError):  # not a file on disk, or not YAML that dg would have read
        return []
    first, last = tree.position.start.line, tree.position.end.line
    return [d for d in found if first <= d.line <= last]


def _sync_lines(
    registry: Registry, locate: Callable[[Sequence[str | int]], int | None]
) -> dict[str, int]:
    return {
        spec.name: line
        for index, spec in enumerate(registry.syncs)
        if (line := locate(["syncs", index])) is not None
    }


def _translation_lines(locate: Callable[[Sequence[str | int]], int | None]) -> dict[str, int]:
    lines = {field: locate(["translation", field]) for field in Translation.model_fields}
    return {field: line for field, line in lines.items() if line is not None}


def workspace_of(components: Iterable[WarehouseSyncComponent]) -> Workspace:
    """Every sync of ``components``, each with its own component's registry."""
    return Workspace.of(component.registry for component in components)


def check_across(components: Iterable[WarehouseSyncComponent]) -> None:
    """The rules across the registries of a code location, which all sync into one mParticle
    workspace: the same ``limits``, unique names and ids, and the active-pipeline limit counted over
    every permanent sync of every registry. Each problem names the syncs and where each is
    declared (file and line)."""
    components = list(components)
    if len(components) < 2:
        return
    problems = _limits_disagree(components)
    declared = {
        id(spec): component for component in components for spec in component.registry.syncs
    }
    workspace = workspace_of(components)
    problems += rules.cross_sync_problems(
        workspace.specs(),
        # With different limits, no count of free slots means anything.
        None if problems else workspace.limits,
        label=lambda spec: declared[id(spec)].label(spec),
        where=lambda spec: declared[id(spec)].where(spec),
        scope="code location",
    )
    if problems:
        raise WarehouseSyncLoadError(
            "code location (all WarehouseSyncComponent instances)", problems
        )


def _limits_disagree(components: Sequence[WarehouseSyncComponent]) -> list[str]:
    """One problem when the registries declare different ``limits``, naming each file."""
    files: dict[str, list[str]] = {}
    for component in components:
        declared = component.registry.limits.model_dump(mode="json", exclude_defaults=True)
        text = (
            yaml.safe_dump(declared, default_flow_style=True, width=1000).strip()
            if declared
            else ""
        )
        where = component.where(component.registry.syncs[0]) if component.registry.syncs else None
        name = where.rsplit(":", 1)[0] if where else "<component>"
        files.setdefault(text or "none, i.e. mParticle's", []).append(name)
    if len(files) < 2:
        return []
    each = "; ".join(f"{', '.join(names)}: {what}" for what, names in files.items())
    return [
        f"code location: its registries declare different limits ({each}), but the limits belong "
        "to the one mParticle workspace they all sync into: write the same limits: block (your "
        "workspace's contract) in each"
    ]
