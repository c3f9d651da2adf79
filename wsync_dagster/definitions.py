"""The code location's single entry point: ``dagster dev -m wsync_dagster.definitions``.

Loading does no I/O: it reads environment variables (which target, which settings) and nothing else —
no token request, no API call, no Snowflake query.
"""

import os
from collections.abc import Mapping

import dagster as dg

from wsync_dagster.resources import (
    TargetNotSelected,
    require_settings,
    selected_target,
    snowflake_resource,
)


def build_definitions(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """Definitions for the target chosen by ``WSYNC_TARGET`` in ``environ`` (default: os.environ)."""
    environ = os.environ if environ is None else environ
    target = selected_target(environ)
    resources: dict[str, object]
    if target is None:
        resources = {"snowflake": TargetNotSelected(resource_name="snowflake")}
    else:
        require_settings(target, environ)
        resources = {"snowflake": snowflake_resource(target, environ)}
    return dg.Definitions(resources=resources)


defs = build_definitions()
