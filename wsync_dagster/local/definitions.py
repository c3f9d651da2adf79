"""The local code location: ``dg dev -m wsync_dagster.local.definitions`` (``python3 dev.py ui``).

The sample's defs folder (``wsync_dagster/local/defs/``: the demo's registry and the sample
warehouse's tables), assembled like the production code location
(:func:`wsync_dagster.code_location.build_definitions`: a job and a schedule per interval sync, the runs sensor) and
bound to the local stand-ins (:func:`wsync_dagster.local.resources.local_resources`). When the local
stack runs (:class:`wsync_dagster.local.stack.LocalStack`), it names its sample data's anchor in
``WSYNC_LOCAL_SAMPLE_ANCHOR`` and the sync components are rebased onto it (mParticle refuses
hourly starts older than 7 days, so the registry's fixed dates would go stale);
``WSYNC_LOCAL_REGISTRY`` replaces the sample registry with another file (tests, the deployment).
Without the launcher's settings it still loads, and every run refuses, saying how to start it.
"""

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import dagster as dg

import wsync_dagster.local.defs
from wsync_dagster.code_location import build_definitions, registry_secrets
from wsync_dagster.component import WarehouseSyncComponent
from wsync_dagster.local.resources import local_resources
from wsync_dagster.local.sample_defs import sample_components
from wsync_dagster.local.stack import local_registry

ANCHOR_VAR = "WSYNC_LOCAL_SAMPLE_ANCHOR"
REGISTRY_VAR = "WSYNC_LOCAL_REGISTRY"


def local_sync_components(
    environ: Mapping[str, str] | None = None,
    components: Sequence[WarehouseSyncComponent] | None = None,
) -> list[WarehouseSyncComponent]:
    """The sync components the local code location serves (``components``, else the registry file
    ``WSYNC_LOCAL_REGISTRY`` names, else the defs folder's), rebased onto the sample anchor."""
    environ = os.environ if environ is None else environ
    source = environ.get(REGISTRY_VAR)
    if components is not None:
        components = list(components)
    elif source:
        components = [WarehouseSyncComponent.from_registry_file(Path(source))]
    else:
        components = sample_components()
    if anchor := environ.get(ANCHOR_VAR):
        at = datetime.fromisoformat(anchor)
        components = [c.with_registry(local_registry(c.registry, at)) for c in components]
    return components


def build_local_definitions(
    environ: Mapping[str, str] | None = None,
    components: Sequence[WarehouseSyncComponent] | None = None,
) -> dg.Definitions:
    """The local code location, from ``environ`` (default os.environ); ``components`` replaces the
    sample's sync components, as in production."""
    environ = os.environ if environ is None else environ
    served = local_sync_components(environ, components)
    secrets = registry_secrets(c.registry for c in served)
    return build_definitions(
        environ,
        defs_module=wsync_dagster.local.defs,
        resources=local_resources(environ, secrets),
        components=served,
    )


defs = build_local_definitions()
