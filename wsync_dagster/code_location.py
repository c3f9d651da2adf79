"""Assemble a code location's Definitions from the registry and a set of resources.

Shared by the production code location (:mod:`wsync_dagster.definitions`) and the local one
(:mod:`wsync_dagster.local.definitions`). Importing this module builds nothing; each entry point
calls :func:`build_definitions` with its own resources.
"""

import os
from collections.abc import Mapping

import dagster as dg

from wsync_dagster.resources import production_resources
from wsync_dagster.sync.assets import build_sync_assets
from wsync_dagster.sync.schedules import build_schedules
from wsync_dagster.sync.sensor import build_runs_sensor
from wsync_dagster.sync.specs import load_registry, registry_path


def build_definitions(
    environ: Mapping[str, str] | None = None, *, resources: Mapping[str, object] | None = None
) -> dg.Definitions:
    """The assets, jobs and schedules of the registry ``environ`` names (default: os.environ).

    Loading does no I/O beyond reading the registry file (``WSYNC_REGISTRY``, default
    ``wsync_dagster/syncs.yaml``) and environment variables: no token request, no API call, no
    Snowflake query. ``resources`` binds the ``snowflake`` and ``mparticle`` keys; by default they
    are the production resources of the target ``WSYNC_TARGET`` chooses (see
    :mod:`wsync_dagster.resources`).
    """
    environ = os.environ if environ is None else environ
    registry = load_registry(registry_path(environ))
    bound = dict(production_resources(environ) if resources is None else resources)
    assets = build_sync_assets(registry)
    # One process per run: the run worker has already imported the code location (~5 s); a step
    # process per asset would import it again. See the README's "Deploy" section for the numbers.
    return dg.Definitions.merge(
        dg.Definitions(
            assets=assets,
            resources=bound,
            sensors=[build_runs_sensor(registry, environ)],
            executor=dg.in_process_executor,
        ),
        build_schedules(registry, assets),
    )
