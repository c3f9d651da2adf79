"""Assemble a code location's Definitions from the defs folder and a set of resources.

Shared by the production code location (:mod:`wsync_dagster.definitions`) and the local one
(:mod:`wsync_dagster.local.definitions`). Importing this module builds nothing; each entry point
calls :func:`build_definitions` with its own resources.
"""

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import dagster as dg

import wsync_dagster.defs
from wsync_dagster.component import WarehouseSyncComponent, check_across, registry_errors_first
from wsync_dagster.resources import production_resources
from wsync_dagster.sync.assets.schedules import build_schedules
from wsync_dagster.sync.observe.sensor import build_runs_sensor

PACKAGE_ROOT = Path(__file__).resolve().parent


def defs_tree() -> dg.ComponentTree:
    """The component tree of ``wsync_dagster/defs``, as ``dg`` loads it (``[tool.dg]``). Built from
    the package itself, so an installed package (no pyproject.toml beside it) loads the same."""
    return dg.ComponentTree.from_module(
        defs_module=wsync_dagster.defs, project_root=PACKAGE_ROOT.parent
    )


def sync_components(tree: dg.ComponentTree | None = None) -> list[WarehouseSyncComponent]:
    """Every WarehouseSyncComponent of the defs folder, checked together (:func:`check_across`)."""
    with registry_errors_first():
        components = (tree or defs_tree()).get_all_components(of_type=WarehouseSyncComponent)
        check_across(components)
    return components


def build_definitions(
    environ: Mapping[str, str] | None = None,
    *,
    resources: Mapping[str, object] | None = None,
    components: Sequence[WarehouseSyncComponent] | None = None,
) -> dg.Definitions:
    """The defs folder's definitions, one job per cadence over all its syncs, and ``resources``.

    Loading does no I/O beyond reading the defs folder and environment variables: no token request,
    no API call, no Snowflake query. ``resources`` binds the ``snowflake`` and ``mparticle`` keys; by
    default they are the production resources of the target ``WSYNC_TARGET`` chooses (see
    :mod:`wsync_dagster.resources`). ``components`` replaces the defs folder's sync components (the
    local code location passes them rebased onto its sample data).
    """
    environ = os.environ if environ is None else environ
    bound = dict(production_resources(environ) if resources is None else resources)
    tree = defs_tree()
    with _quiet_loader(), registry_errors_first():
        folder = sync_components(tree)
        defs = tree.build_defs()
    if components is not None:
        check_across(components)
        defs = _replace_sync_assets(defs, folder, components)
    else:
        components = folder
    syncs = [pair for component in components for pair in component.sync_keys()]
    # The runs sensor watches every sync's pipeline, whichever component declares it.
    every_sync = components[0].registry.model_copy(
        update={"syncs": tuple(spec for spec, _ in syncs)}
    )
    return dg.Definitions.merge(
        defs,
        dg.Definitions(
            resources=bound,
            sensors=[build_runs_sensor(every_sync, environ)],
            # One process per run: the run worker has already imported the code location (~5 s);
            # a step process per asset would import it again. See the README's "Deploy" section.
            executor=dg.in_process_executor,
        ),
        build_schedules(syncs),
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
    assets = [asset for component in new for asset in component.build_assets()]
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
