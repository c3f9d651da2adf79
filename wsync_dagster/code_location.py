"""Assemble a code location's Definitions from a defs folder and a set of resources.

Shared by the production code location (:mod:`wsync_dagster.definitions`, defs folder
``wsync_dagster/defs/``) and the local one (:mod:`wsync_dagster.local.definitions`, defs folder
``wsync_dagster/local/defs/``, the sample). Importing this module builds nothing; each entry point
calls :func:`build_definitions` with its own defs folder and resources.
"""

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType

import dagster as dg

import wsync_dagster.defs
from wsync_dagster.alerting import alert_definitions
from wsync_dagster.component import (
    WarehouseSyncComponent,
    check_across,
    registry_errors_first,
    workspace_of,
)
from wsync_dagster.resources import production_resources
from wsync_dagster.sync.assets.cron_schedules import build_cron_schedules
from wsync_dagster.sync.assets.schedules import build_schedules
from wsync_dagster.sync.observe.drift import DriftWatch, build_drift_sensor
from wsync_dagster.sync.observe.sensor import RunsWatch, build_runs_sensor
from wsync_dagster.sync.registry.specs import Registry
from wsync_dagster.sync.registry.workspace import BoundSync

PACKAGE_ROOT = Path(__file__).resolve().parent


def defs_tree(defs_module: ModuleType = wsync_dagster.defs) -> dg.ComponentTree:
    """The component tree of a defs folder (default ``wsync_dagster/defs``, which ``dg`` loads
    through ``[tool.dg]``). Built from the package itself, so an installed package (no
    pyproject.toml beside it) loads the same."""
    return dg.ComponentTree.from_module(defs_module=defs_module, project_root=PACKAGE_ROOT.parent)


def sync_components(tree: dg.ComponentTree | None = None) -> list[WarehouseSyncComponent]:
    """Every WarehouseSyncComponent of a defs folder (default: the production one), checked
    together (:func:`check_across`)."""
    with _quiet_loader(), registry_errors_first():
        components = (tree or defs_tree()).get_all_components(of_type=WarehouseSyncComponent)
        check_across(components)
    return components


def registry_secrets(registries: Iterable[Registry]) -> dict[str, str]:
    """Every secret the registries name, as variable name -> what names it (``password_env`` of
    each connection, ``feed_key_env`` of each sync), for the settings check of the resources."""
    uses: dict[str, dict[tuple[str, str], list[str]]] = {}
    for registry in registries:
        named = [
            (registry.connection.password_env, "password_env", "connection", registry.connection.id)
        ]
        named += [(s.feed_key_env, "feed_key_env", "sync", s.name) for s in registry.syncs]
        for variable, field, kind, name in named:
            uses.setdefault(variable, {}).setdefault((field, kind), []).append(name)
    return {
        variable: "; ".join(_named(*use) for use in by_use.items())
        for variable, by_use in uses.items()
    }


def registry_files(components: Iterable[WarehouseSyncComponent]) -> dict[str, str]:
    """Each sync's name -> the file that declares it (``folder/defs.yaml``), for messages."""
    return {
        spec.name: f"{path.parent.name}/{path.name}"
        for component in components
        if (path := component.yaml_path) is not None
        for spec in component.registry.syncs
    }


def _named(use: tuple[str, str], names: list[str]) -> str:
    """e.g. ``feed_key_env of syncs 'a', 'b'``."""
    field, kind = use
    names = list(dict.fromkeys(names))
    return f"{field} of {kind}{'s' if len(names) > 1 else ''} " + ", ".join(f"'{n}'" for n in names)


def build_definitions(
    environ: Mapping[str, str] | None = None,
    *,
    defs_module: ModuleType = wsync_dagster.defs,
    resources: Mapping[str, object] | None = None,
    components: Sequence[WarehouseSyncComponent] | None = None,
) -> dg.Definitions:
    """The defs folder's definitions, the jobs and schedules of its syncs (a job and a schedule per
    interval sync, a job per other cadence, a schedule per cron: docs/jobs-and-schedules.md), the
    runs and drift sensors, the optional run-failure webhook (:mod:`wsync_dagster.alerting`, only
    when configured), and ``resources``.

    Loading does no I/O beyond reading the defs folder and environment variables: no token request,
    no API call, no Snowflake query; and it never fails for a missing setting. ``resources`` binds
    the ``snowflake`` and ``mparticle`` keys; by default they are the production resources
    (:func:`wsync_dagster.resources.production_resources`), checked against every secret the syncs
    name. ``components`` replaces the defs folder's sync components (the local code location passes
    them rebased onto its sample data). A defs folder without any sync loads too: no job, and the
    runs and drift sensors over nothing.
    """
    environ = os.environ if environ is None else environ
    tree = defs_tree(defs_module)
    with _quiet_loader(), registry_errors_first():
        folder = sync_components(tree)
        defs = tree.build_defs()
    if components is not None:
        check_across(components)
        defs = _replace_sync_assets(defs, folder, components)
    else:
        components = folder
    if resources is None:
        resources = production_resources(environ, registry_secrets(c.registry for c in components))
    bound = dict(resources)
    keyed = [(component, component.sync_keys()) for component in components]
    syncs = [pair for _, keys in keyed for pair in keys]
    # The runs and drift sensors watch every sync's pipeline, each with its own component's
    # registry (a code location with no sync gets sensors over nothing).
    observed = [(BoundSync(c.registry, spec), key) for c, keys in keyed for spec, key in keys]
    workspace = workspace_of(components)
    drift = DriftWatch(workspace, observed, registry_files(components))
    return dg.Definitions.merge(
        defs,
        dg.Definitions(
            resources=bound,
            sensors=[build_runs_sensor(RunsWatch(workspace, observed)), build_drift_sensor(drift)],
            # One process per run: the run worker has already imported the code location (~5 s);
            # a step process per asset would import it again. See docs/deploy.md, "Executor".
            executor=dg.in_process_executor,
        ),
        build_schedules(syncs),
        # One schedule per distinct cron of the on_demand syncs (docs/scale.md).
        build_cron_schedules(syncs, workspace),
        # The optional run-failure webhook (docs/alerting.md): nothing unless it is configured.
        alert_definitions(environ),
    )


@contextlib.contextmanager
def _quiet_loader() -> Iterator[None]:
    """Dagster 1.13's defs-folder loader warns, on every load, that the APIs it uses itself (code
    references, module loading) are beta or preview; those warnings say nothing about this project."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=".*(LocalFileCodeReference|CodeReferencesMetadataValue|load_definitions_from_"
            "modules?).* is currently in (beta|preview)",
        )
        yield


def _replace_sync_assets(
    defs: dg.Definitions,
    old: Sequence[WarehouseSyncComponent],
    new: Sequence[WarehouseSyncComponent],
) -> dg.Definitions:
    """``defs`` with the assets of the ``old`` components swapped for those of the ``new`` ones."""
    old_keys = {key for component in old for _, key in component.sync_keys()}
    kept = [
        asset
        for asset in defs.assets or ()
        if not (isinstance(asset, dg.AssetsDefinition) and set(asset.keys) & old_keys)
    ]
    workspace = workspace_of(new)
    assets = [asset for component in new for asset in component.build_assets(workspace)]
    return dg.Definitions(
        assets=[*kept, *assets],
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=defs.resources,
        metadata=defs.metadata,
        component_tree=defs.component_tree,
    )
