"""The code location's single entry point: ``dagster dev -m wsync_dagster.definitions``.

Loading does no I/O beyond reading the registry file (``WSYNC_REGISTRY``, default
``wsync_dagster/syncs.yaml``) and environment variables: no token request, no API call, no Snowflake
query.
"""

import os
from collections.abc import Mapping

import dagster as dg

from wsync_dagster.resources import (
    TargetNotSelected,
    mparticle_resource,
    require_settings,
    selected_target,
    snowflake_resource,
)
from wsync_dagster.sync.assets import build_sync_assets
from wsync_dagster.sync.schedules import build_schedules
from wsync_dagster.sync.specs import load_registry, registry_path


def build_definitions(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """Definitions for the target chosen by ``WSYNC_TARGET`` in ``environ`` (default: os.environ)."""
    environ = os.environ if environ is None else environ
    target = selected_target(environ)
    registry = load_registry(registry_path(environ))
    resources: dict[str, object]
    if target is None:
        resources = {
            key: TargetNotSelected(resource_name=key) for key in ("snowflake", "mparticle")
        }
    else:
        require_settings(target, environ)
        resources = {
            "snowflake": snowflake_resource(target, environ),
            "mparticle": mparticle_resource(target, environ),
        }
    assets = build_sync_assets(registry)
    # In-process executor: a run imports the code location once, not again in a step process.
    # (README, "Deploy": ~16 s saved per run; the waits of a multi-asset run become sequential.)
    return dg.Definitions.merge(
        dg.Definitions(assets=assets, resources=resources, executor=dg.in_process_executor),
        build_schedules(registry, assets),
    )


defs = build_definitions()
